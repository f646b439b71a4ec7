// qgemm_5x16c4_neon_i8mm: the shared int8 GEMM (kernels/int8/qgemm.h) with usdot (Armv8.6 i8mm:
// uint8 x int8 directly; this file alone is built with +i8mm, and runs only where HWCAP2_I8MM
// says so). Same panels and tile as the dot-product kernel, no input offset.
#include "kernels/simd/qvec_neon.h"
#include "kernels/int8/qgemm.h"

MBF_DEFINE_QGEMM(QVecNeonI8mm, qgemm_neon_i8mm, qgemm_neon_i8mm_f32)
