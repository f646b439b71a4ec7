// int8 depthwise on NEON without extensions (aarch64 and armv7): the shared kernel
// (kernels/int8/qdwconv3x3.h) on QVecNeon (kernels/simd/qvec_neon.h), 8 channels per block. It
// multiplies with vmlal_s16, exact for any int16 weights, so it is also the table's kernel for
// zero-pointed weights (qdwconv3x3_wide_*). The widening GEMM is kernels/neon/qgemm_neon_k16.cpp.
#include "kernels/simd/qvec_neon.h"
#include "kernels/int8/qdwconv3x3.h"

MBF_DEFINE_QDWCONV3X3(QVecNeon, qdwconv3x3_s1_neon_8c, qdwconv3x3_s2_neon_8c)
