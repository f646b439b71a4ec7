// qgemm_6x8c4_avx2: the shared int8 GEMM (kernels/int8/qgemm.h) on AVX2, operands widened to int16.
#include "kernels/simd/qvec_avx2.h"
#include "kernels/int8/qgemm.h"

static_assert(mbf::QVecAvx2::kMr == mbf::kQgemmMrAvx2 && 8 == mbf::kQgemmNrAvx2, "tile");
MBF_DEFINE_QGEMM(QVecAvx2, qgemm_6x8c4_avx2, qgemm_6x8c4_avx2_f32)
