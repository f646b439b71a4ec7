// Depthwise 3x3 on AVX2 + FMA: the shared kernel (kernels/f32/dwconv3x3.h), 8 channels per ymm.
#include "kernels/simd/vec_avx2.h"
#include "kernels/f32/dwconv3x3.h"

MBF_DEFINE_DWCONV3X3(VecAvx2, dwconv3x3_s1_avx2_8c, dwconv3x3_s2_avx2_8c)
