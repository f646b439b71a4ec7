// int8 depthwise 3x3 on AVX-512 BW: the shared kernel (kernels/int8/qdwconv3x3.h), 16 channels per block.
#include "kernels/simd/qvec_avx512.h"
#include "kernels/int8/qdwconv3x3.h"

MBF_DEFINE_QDWCONV3X3(QVecAvx512, qdwconv3x3_s1_avx512_16c, qdwconv3x3_s2_avx512_16c)
// int16 weights in -255..255 (a layer whose weights had a zero point; QVecAvx512Wide).
MBF_DEFINE_QDWCONV3X3(QVecAvx512Wide, qdwconv3x3_wide_s1_avx512_16c, qdwconv3x3_wide_s2_avx512_16c)
