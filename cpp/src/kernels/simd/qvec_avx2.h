// The int8 vector layer for AVX2 without VNNI. vpmaddubsw (uint8 x int8 -> int16 pairs) would
// saturate: 2 x 255 x 127 > 32767. Both operands are therefore widened to int16 and multiplied
// with vpmaddwd (int16 x int16 -> int32 pairs, exact): a k group of 8 columns x 4 values is two
// registers of 16 int16 (columns 0-3, 4-7), the 4 activations are repeated as int16 in every
// 64-bit lane, and each column collects two partial sums in adjacent int32 lanes, added
// horizontally when the tile is stored. Included only by translation units built with -mavx2.
// (The AVX2 int8 depthwise kernel has its own code: kernels/avx2/qdwconv3x3_avx2_16c.cpp.)
#pragma once

#include <immintrin.h>

#include "kernels/simd/vec_avx2.h"  // kAvx2MaskTable
#include "mobilenet_fast/kernels.h"

namespace mbf {
namespace {

struct QVecAvx2 {
  static constexpr int kCols = 8;
  static constexpr int kChunks = 1;  // NR = 8
  static constexpr int kMr = 6;      // 12 accumulators + 2 weight registers + 1 broadcast of 16 ymm
  struct Acc {
    __m256i lo, hi;  // columns 0-3 / 4-7, two partial sums each
  };
  struct W {
    __m256i lo, hi;
  };
  using A = __m256i;
  struct Params {
    __m256 lo, hi;
    __m256i zp;
  };

  static MBF_INLINE Params params(QuantOut q) {
    return {_mm256_set1_ps(static_cast<float>(q.min - q.zero_point)),
            _mm256_set1_ps(static_cast<float>(q.max - q.zero_point)), _mm256_set1_epi32(q.zero_point)};
  }
  // The bias is added when the partial sums are reduced (integer sums: the order changes nothing).
  static MBF_INLINE Acc init(const std::int32_t*) { return {_mm256_setzero_si256(), _mm256_setzero_si256()}; }
  static MBF_INLINE W load_w(const std::int8_t* p) {
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return {_mm256_cvtepi8_epi16(_mm256_castsi256_si128(b)), _mm256_cvtepi8_epi16(_mm256_extracti128_si256(b, 1))};
  }
  static MBF_INLINE A broadcast_a(const std::uint8_t* p) {
    std::int32_t v;
    __builtin_memcpy(&v, p, sizeof v);
    const __m128i w = _mm_cvtepu8_epi16(_mm_cvtsi32_si128(v));  // a0..a3 as int16 in the low 64 bits
    return _mm256_broadcastq_epi64(w);
  }
  static MBF_INLINE Acc dot(Acc acc, A a, W w) {
    return {_mm256_add_epi32(acc.lo, _mm256_madd_epi16(a, w.lo)), _mm256_add_epi32(acc.hi, _mm256_madd_epi16(a, w.hi))};
  }
  // The row's add (QgemmTileFn's row_add) goes in with the bias.
  static MBF_INLINE void store(std::uint8_t* c, Acc acc, const std::int32_t* bias, const float* scale,
                               const Params& q, int cols, std::int32_t add) {
    store_bytes(c, requant(_mm256_add_epi32(reduce(acc, bias), _mm256_set1_epi32(add)), _mm256_loadu_ps(scale), q),
                cols);
  }
  static MBF_INLINE void store_f32(float* c, Acc acc, const std::int32_t* bias, const float* scale, int cols,
                                   std::int32_t add) {
    const __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(reduce(acc, bias), _mm256_set1_epi32(add))),
                                   _mm256_loadu_ps(scale));
    if (cols >= kCols) _mm256_storeu_ps(c, y);
    else _mm256_maskstore_ps(c, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kAvx2MaskTable + 8 - cols)), y);
  }
  // The 8 column sums plus the bias. hadd: [c0 c1 c4 c5 | c2 c3 c6 c7]; the 64-bit permute puts
  // the columns in order.
  static MBF_INLINE __m256i reduce(Acc acc, const std::int32_t* bias) {
    const __m256i sum = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc.lo, acc.hi), 0xD8);
    return _mm256_add_epi32(sum, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bias)));
  }

  // clamp(zp + rne(acc * scale)) of 8 lanes, as the low 8 bytes (the values are 0..255).
  static MBF_INLINE __m128i requant(__m256i acc, __m256 scale, const Params& q) {
    __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
    y = _mm256_min_ps(_mm256_max_ps(y, q.lo), q.hi);
    const __m256i v = _mm256_add_epi32(_mm256_cvtps_epi32(y), q.zp);
    const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    return _mm_packus_epi16(w16, w16);
  }
  // The first n (<= 8) of the low 8 bytes of b.
  static MBF_INLINE void store_bytes(std::uint8_t* c, __m128i b, int n) {
    if (n >= kCols) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(c), b);
      return;
    }
    alignas(16) std::uint8_t t[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(t), b);
    for (int j = 0; j < n; ++j) c[j] = t[j];
  }
};

}  // namespace
}  // namespace mbf
