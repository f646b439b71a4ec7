// The int8 GEMM vector layer for AVX2 without VNNI on pair-limited weights: vpmaddubsw multiplies
// 32 uint8 activations by 32 int8 weights and adds adjacent products to 16 int16 lanes with
// saturation, so it is exact only if 255 * (|w[2j]| + |w[2j+1]|) <= 32767 for every pair of
// consecutive k values of a column: |w[2j]| + |w[2j+1]| <= 128 (kQgemmPairLimit). Callers check
// that with qgemm_pairs_fit() and use the widening kernel (QVecAvx2) otherwise. vpmaddwd with
// ones then adds the two pairs of a k group into one int32 lane (exact), as vpdpbusd would:
// 3 instructions per 32 multiply-adds instead of 4 for 16 on the widening path. Same packing
// (NR = 8, k groups of 4) and requantisation as QVecAvx2, so either kernel reads the same panels.
#pragma once

#include "kernels/simd/qvec_avx2.h"

namespace mbf {
namespace {

struct QVecAvx2Pairs : QVecAvx2 {
  static constexpr int kCols = 8;
  static constexpr int kChunks = 1;  // NR = 8, as QVecAvx2
  static constexpr int kMr = 12;     // 12 accumulators + weights + ones + broadcast + product of 16 ymm
  using Acc = __m256i;
  using W = __m256i;  // one k group (4 values) of 8 columns
  using A = __m256i;  // 4 activations of one row, in every 32-bit lane
  static MBF_INLINE Acc init(const std::int32_t* bias) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bias));
  }
  static MBF_INLINE W load_w(const std::int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static MBF_INLINE A broadcast_a(const std::uint8_t* p) {
    std::int32_t v;
    __builtin_memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
  }
  static MBF_INLINE Acc dot(Acc acc, A a, W w) {
    const __m256i pairs = _mm256_maddubs_epi16(a, w);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
  }
  // The bias is in the accumulator already.
  static MBF_INLINE void store(std::uint8_t* c, Acc acc, const std::int32_t*, const float* scale, const Params& q,
                               int cols, std::int32_t add) {
    store_bytes(c, requant(_mm256_add_epi32(acc, _mm256_set1_epi32(add)), _mm256_loadu_ps(scale), q), cols);
  }
  static MBF_INLINE void store_f32(float* c, Acc acc, const std::int32_t*, const float* scale, int cols,
                                   std::int32_t add) {
    const __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(acc, _mm256_set1_epi32(add))),
                                   _mm256_loadu_ps(scale));
    if (cols >= kCols) _mm256_storeu_ps(c, y);
    else _mm256_maskstore_ps(c, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kAvx2MaskTable + 8 - cols)), y);
  }
};

}  // namespace
}  // namespace mbf
