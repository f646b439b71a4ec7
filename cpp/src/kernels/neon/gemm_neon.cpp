// The float32 GEMM on NEON: the shared kernel (kernels/f32/gemm.h) over panels of 8 columns.
// aarch64: gemm_8x8_neon, 8x8 tiles with multiply-adds by lane (fmla v.s[l]: one A load per row
// serves four k steps). armv7: gemm_4x8_neon32, 4x8 tiles, one broadcast per row and k step.
// (The armv7 tile used to be written out with named accumulators because GCC kept an array of
// them in memory; the shared tile's k loop, checked with objdump under GCC 12, keeps all eight in
// q registers with no stack access, so it needs no special case.)
#include "kernels/simd/vec_neon.h"
#include "kernels/f32/gemm.h"

static_assert(mbf::VecNeon::kGemmMr == mbf::kGemmMrNeon && 2 * mbf::VecNeon::kLanes == mbf::kGemmNrNeon, "tile");

#if defined(__aarch64__)
MBF_DEFINE_GEMM(VecNeon, gemm_8x8_neon)
#else
MBF_DEFINE_GEMM(VecNeon, gemm_4x8_neon32)
#endif
