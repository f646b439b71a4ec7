// The neon kernel table (aarch64: 8x8 GEMM tiles; armv7: 4x8).
#include "kernels/kernels_internal.h"

namespace mbf {

const KernelTable& neon_kernels() {
  static const KernelTable table = {
      "neon",
      dwconv3x3_s1_neon_4c,
      dwconv3x3_s2_neon_4c,
      conv3x3_stem_neon,
#if defined(__aarch64__)
      gemm_8x8_neon,
#else
      gemm_4x8_neon32,
#endif
      kGemmMrNeon,
      kGemmNrNeon,
      global_avg_pool_neon,
      softmax_scalar,
  };
  return table;
}

}  // namespace mbf
