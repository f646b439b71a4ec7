// SCAFFOLD, to be replaced by the avx2 GEMM microkernel: forwards to the scalar GEMM.
#include "kernels/kernels_internal.h"

namespace mbf {

void gemm_avx2(int m, int n, int k, const float* a, std::ptrdiff_t lda, const float* packed, float* c,
               std::ptrdiff_t ldc, Clamp clamp) {
  gemm_scalar_nr(m, n, k, a, lda, packed, c, ldc, clamp, kGemmNrAvx2);
}

}  // namespace mbf
