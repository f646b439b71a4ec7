// AVX2 FMA peak (compiled with -mavx2 -mfma): 12 independent _mm256_fmadd_ps chains, enough for
// two FMA units with 4-5 cycles of latency, leaving registers for the two constants.
#include <immintrin.h>

#include "fma_peak.h"

namespace mbf_bench {

float fma_chains_avx2(long long rounds, float mul, float add) {
  const __m256 m = _mm256_set1_ps(mul), a = _mm256_set1_ps(add);
  __m256 c0 = _mm256_set1_ps(0.0f), c1 = _mm256_set1_ps(0.1f), c2 = _mm256_set1_ps(0.2f);
  __m256 c3 = _mm256_set1_ps(0.3f), c4 = _mm256_set1_ps(0.4f), c5 = _mm256_set1_ps(0.5f);
  __m256 c6 = _mm256_set1_ps(0.6f), c7 = _mm256_set1_ps(0.7f), c8 = _mm256_set1_ps(0.8f);
  __m256 c9 = _mm256_set1_ps(0.9f), c10 = _mm256_set1_ps(1.0f), c11 = _mm256_set1_ps(1.1f);
  for (long long r = 0; r < rounds; ++r) {
    c0 = _mm256_fmadd_ps(c0, m, a);
    c1 = _mm256_fmadd_ps(c1, m, a);
    c2 = _mm256_fmadd_ps(c2, m, a);
    c3 = _mm256_fmadd_ps(c3, m, a);
    c4 = _mm256_fmadd_ps(c4, m, a);
    c5 = _mm256_fmadd_ps(c5, m, a);
    c6 = _mm256_fmadd_ps(c6, m, a);
    c7 = _mm256_fmadd_ps(c7, m, a);
    c8 = _mm256_fmadd_ps(c8, m, a);
    c9 = _mm256_fmadd_ps(c9, m, a);
    c10 = _mm256_fmadd_ps(c10, m, a);
    c11 = _mm256_fmadd_ps(c11, m, a);
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                           _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

}  // namespace mbf_bench

namespace mbf_bench {

// The int8 peak of AVX2 without VNNI as the pairs GEMM computes (qvec_avx2_pairs.h): each step
// is vpmaddubsw (32 uint8 x int8 products, added in pairs), vpmaddwd with ones (pairs of pairs
// into int32) and vpaddd: 32 multiply-adds. The bytes multiplied are the accumulator's own, so
// nothing can be hoisted out of the loop; 12 chains cover the ~7-cycle latency of a step.
float maddubs_chains_avx2(long long rounds, float mul, float add) {
  const __m256i b = _mm256_set1_epi32(static_cast<int>(mul * 1000.0f) | 0x01010101);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[kAvx2Int8Chains];
#pragma GCC unroll 12
  for (int i = 0; i < kAvx2Int8Chains; ++i) acc[i] = _mm256_set1_epi32(static_cast<int>(add * 1e6f) + i);
  for (long long r = 0; r < rounds; ++r) {
#pragma GCC unroll 12
    for (int i = 0; i < kAvx2Int8Chains; ++i)
      acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(_mm256_maddubs_epi16(acc[i], b), ones));
  }
  __m256i s = acc[0];
#pragma GCC unroll 12
  for (int i = 1; i < kAvx2Int8Chains; ++i) s = _mm256_xor_si256(s, acc[i]);
  alignas(32) int lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
  int x = 0;
  for (int i = 0; i < 8; ++i) x ^= lanes[i];
  return static_cast<float>(x);
}

}  // namespace mbf_bench
