// gemm_14x32_avx512: the shared float32 GEMM (kernels/f32/gemm.h) on AVX-512.
#include "kernels/simd/vec_avx512.h"
#include "kernels/f32/gemm.h"

static_assert(mbf::VecAvx512::kGemmMr == mbf::kGemmMrAvx512 && 2 * mbf::VecAvx512::kLanes == mbf::kGemmNrAvx512, "tile");
MBF_DEFINE_GEMM(VecAvx512, gemm_14x32_avx512)
