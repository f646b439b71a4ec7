// int8 depthwise 3x3 on AVX2: the shared kernel (kernels/int8/qdwconv3x3.h), 8 channels per block.
#include "kernels/simd/qvec_avx2.h"
#include "kernels/int8/qdwconv3x3.h"

MBF_DEFINE_QDWCONV3X3(QVecAvx2, qdwconv3x3_s1_avx2_8c, qdwconv3x3_s2_avx2_8c)
