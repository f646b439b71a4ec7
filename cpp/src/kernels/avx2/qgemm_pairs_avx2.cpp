// qgemm_pairs_12x8c4_avx2: the shared int8 GEMM (kernels/int8/qgemm.h) on AVX2 with vpmaddubsw,
// for pair-limited weights only (qgemm_pairs_fit; kernels/simd/qvec_avx2_pairs.h).
#include "kernels/simd/qvec_avx2_pairs.h"
#include "kernels/int8/qgemm.h"

static_assert(mbf::QVecAvx2Pairs::kMr == mbf::kQgemmPairsMrAvx2 && 8 == mbf::kQgemmNrAvx2, "tile");
MBF_DEFINE_QGEMM(QVecAvx2Pairs, qgemm_pairs_12x8c4_avx2, qgemm_pairs_12x8c4_avx2_f32)
