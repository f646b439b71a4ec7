// Depthwise 3x3 on NEON (aarch64, armv7): the shared kernel (kernels/f32/dwconv3x3.h), 4 channels per q.
#include "kernels/simd/vec_neon.h"
#include "kernels/f32/dwconv3x3.h"

MBF_DEFINE_DWCONV3X3(VecNeon, dwconv3x3_s1_neon_4c, dwconv3x3_s2_neon_4c)
