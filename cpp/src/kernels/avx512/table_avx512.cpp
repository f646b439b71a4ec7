// The avx512 kernel table.
#include "kernels/kernels_internal.h"

namespace mbf {

const KernelTable& avx512_kernels() {
  static const KernelTable table = {
      "avx512",
      dwconv3x3_s1_avx512_16c,
      dwconv3x3_s2_avx512_16c,
      conv3x3_stem_avx512,
      gemm_14x32_avx512,
      kGemmMrAvx512,
      kGemmNrAvx512,
      global_avg_pool_avx512,
      softmax_scalar,
  };
  return table;
}

}  // namespace mbf
