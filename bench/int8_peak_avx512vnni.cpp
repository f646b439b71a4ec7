// AVX-512 VNNI int8 peak (compiled with -mavx512vnni): independent vpdpbusd chains, each step 16
// lanes x 4 uint8 x int8 multiply-adds; 16 chains cover the latency on two 512-bit units.
#include <immintrin.h>

#include "fma_peak.h"

namespace mbf_bench {

float dpbusd_chains_avx512vnni(long long rounds, float mul, float add) {
  const __m512i a = _mm512_set1_epi32(static_cast<int>(mul * 1000.0f) | 0x01010101);
  const __m512i b = _mm512_set1_epi32(static_cast<int>(add * 1e6f) | 0x01010101);
  __m512i acc[kAvx512VnniChains];
#pragma GCC unroll 16
  for (int i = 0; i < kAvx512VnniChains; ++i) acc[i] = _mm512_set1_epi32(i);
  for (long long r = 0; r < rounds; ++r) {
#pragma GCC unroll 16
    for (int i = 0; i < kAvx512VnniChains; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
  }
  int lanes[16];
  __m512i s = acc[0];
#pragma GCC unroll 16
  for (int i = 1; i < kAvx512VnniChains; ++i) s = _mm512_xor_si512(s, acc[i]);
  _mm512_storeu_si512(lanes, s);
  int x = 0;
  for (int i = 0; i < 16; ++i) x ^= lanes[i];
  return static_cast<float>(x);
}

}  // namespace mbf_bench
