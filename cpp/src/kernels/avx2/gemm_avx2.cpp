// gemm_6x16_avx2: the shared float32 GEMM (kernels/f32/gemm.h) on AVX2 + FMA.
#include "kernels/simd/vec_avx2.h"
#include "kernels/f32/gemm.h"

static_assert(mbf::VecAvx2::kGemmMr == mbf::kGemmMrAvx2 && 2 * mbf::VecAvx2::kLanes == mbf::kGemmNrAvx2, "tile");
MBF_DEFINE_GEMM(VecAvx2, gemm_6x16_avx2)
