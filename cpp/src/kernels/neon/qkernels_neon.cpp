// int8 kernels on NEON without extensions (aarch64 and armv7): the shared int8 GEMM
// (kernels/int8/qgemm.h) and depthwise (kernels/int8/qdwconv3x3.h) on the widening vector layer
// QVecNeon (kernels/simd/qvec_neon.h). The depthwise multiplies with vmlal_s16, exact for any
// int16 weights, so it is also the table's kernel for zero-pointed weights (qdwconv3x3_wide_*).
#include "kernels/simd/qvec_neon.h"
#include "kernels/int8/qgemm.h"
#include "kernels/int8/qdwconv3x3.h"

static_assert(mbf::QVecNeon::kMr == mbf::kQgemmMrNeon && mbf::QVecNeon::kCols * mbf::QVecNeon::kChunks == mbf::kQgemmNrNeon,
              "tile");

MBF_DEFINE_QGEMM(QVecNeon, qgemm_neon, qgemm_neon_f32)
MBF_DEFINE_QDWCONV3X3(QVecNeon, qdwconv3x3_s1_neon_8c, qdwconv3x3_s2_neon_8c)
