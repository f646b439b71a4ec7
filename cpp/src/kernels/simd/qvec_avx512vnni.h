// The int8 vector layer for AVX-512 VNNI: vpdpbusd multiplies 4 uint8 activations by 4 int8
// weights and adds the four products to an int32 lane, exactly (no intermediate saturation).
// Included only by translation units compiled with the avx512vnni flags (cpp/CMakeLists.txt).
#pragma once

#include "kernels/simd/qvec_avx512.h"
#include "kernels/simd/vec_common.h"
#include "mobilenet_fast/kernels.h"

namespace mbf {
namespace {

// The requantisation is AVX-512's (QVecAvx512).
struct QVecAvx512Vnni : QVecAvx512 {
  static constexpr int kCols = 16;   // output columns per accumulator (one int32 lane each)
  static constexpr int kChunks = 2;  // accumulators per tile row: NR = 32
  static constexpr int kMr = 14;     // 28 accumulators + 2 weight registers + 1 broadcast
  using Acc = __m512i;
  using W = __m512i;  // one k group (4 values) of kCols columns
  using A = __m512i;  // 4 activations of one row, in every lane
  static MBF_INLINE Acc init(const std::int32_t* bias) { return _mm512_loadu_si512(bias); }
  static MBF_INLINE W load_w(const std::int8_t* p) { return _mm512_loadu_si512(p); }
  static MBF_INLINE A broadcast_a(const std::uint8_t* p) {
    std::int32_t v;
    __builtin_memcpy(&v, p, sizeof v);
    return _mm512_set1_epi32(v);
  }
  static MBF_INLINE Acc dot(Acc acc, A a, W w) { return _mm512_dpbusd_epi32(acc, a, w); }
  // c[0..cols) = clamp(zp + rne((acc + add) * scale)); the bias is in the accumulator already.
  static MBF_INLINE void store(std::uint8_t* c, Acc acc, const std::int32_t*, const float* scale, const Params& q,
                               int cols, std::int32_t add) {
    const __m128i b = requant(_mm512_add_epi32(acc, _mm512_set1_epi32(add)), _mm512_loadu_ps(scale), q);
    if (cols >= kCols) _mm_storeu_si128(reinterpret_cast<__m128i*>(c), b);
    else _mm_mask_storeu_epi8(c, static_cast<__mmask16>((1u << cols) - 1u), b);
  }
  // c[0..cols) = float32(acc + add) * scale.
  static MBF_INLINE void store_f32(float* c, Acc acc, const std::int32_t*, const float* scale, int cols,
                                   std::int32_t add) {
    const __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc, _mm512_set1_epi32(add))),
                                   _mm512_loadu_ps(scale));
    if (cols >= kCols) _mm512_storeu_ps(c, y);
    else _mm512_mask_storeu_ps(c, static_cast<__mmask16>((1u << cols) - 1u), y);
  }
};

}  // namespace
}  // namespace mbf
