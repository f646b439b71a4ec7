// The avx2 kernel table.
#include "kernels/kernels_internal.h"

namespace mbf {

const KernelTable& avx2_kernels() {
  static const KernelTable table = {
      "avx2",
      dwconv3x3_s1_avx2_8c,
      dwconv3x3_s2_avx2_8c,
      conv3x3_stem_avx2,
      gemm_6x16_avx2,
      kGemmMrAvx2,
      kGemmNrAvx2,
      global_avg_pool_avx2,
      softmax_scalar,
  };
  return table;
}

}  // namespace mbf
