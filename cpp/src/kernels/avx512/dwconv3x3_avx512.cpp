// Depthwise 3x3 on AVX-512: the shared kernel (kernels/f32/dwconv3x3.h), 16 channels per zmm.
#include "kernels/simd/vec_avx512.h"
#include "kernels/f32/dwconv3x3.h"

MBF_DEFINE_DWCONV3X3(VecAvx512, dwconv3x3_s1_avx512_16c, dwconv3x3_s2_avx512_16c)
