// The int8 vector layer for AVX-512 F/BW/VL: requantisation of 16 int32 lanes to uint8, and the
// operations of the int8 depthwise kernel (16 channels per block: uint8 inputs widened to int16,
// minus the zero point, multiplied by int16 weights in int16 (exact: |x - zp| * |w| <= 255 * 128),
// widened to int32 and summed). Included only by translation units with the avx512 flags.
#pragma once

#include "kernels/simd/vec_avx512.h"  // <immintrin.h>, with GCC 12's warning silenced
#include "mobilenet_fast/kernels.h"

namespace mbf {
namespace {

struct QVecAvx512 {
  struct Params {
    __m512 lo, hi;  // clamp of acc * scale in the float domain: [min - zp, max - zp]
    __m512i zp;
  };
  static MBF_INLINE Params params(QuantOut q) {
    return {_mm512_set1_ps(static_cast<float>(q.min - q.zero_point)),
            _mm512_set1_ps(static_cast<float>(q.max - q.zero_point)), _mm512_set1_epi32(q.zero_point)};
  }
  // clamp(zp + rne(acc * scale)) of 16 lanes, as bytes (the values are 0..255).
  static MBF_INLINE __m128i requant(__m512i acc, __m512 scale, const Params& q) {
    __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), scale);
    y = _mm512_min_ps(_mm512_max_ps(y, q.lo), q.hi);
    return _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(y), q.zp));
  }

  // ---- depthwise
  static constexpr int kDwLanes = 16;
  static constexpr int kDwPixels = 8;  // 8 accumulators + 3 weights + 3 streamed inputs
  using DwMask = __mmask16;
  using DwX = __m256i;    // 16 int16
  using DwAcc = __m512i;  // 16 int32
  static MBF_INLINE DwMask dw_mask_first(int n) {
    return static_cast<DwMask>(n >= kDwLanes ? 0xFFFFu : n <= 0 ? 0u : (1u << n) - 1u);
  }
  static MBF_INLINE DwX dw_zero_x() { return _mm256_setzero_si256(); }
  static MBF_INLINE DwX dw_set_zx(std::int32_t zx) { return _mm256_set1_epi16(static_cast<short>(zx)); }
  static MBF_INLINE DwX dw_load_x(const std::uint8_t* p, DwMask m, DwX zx) {
    return _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_maskz_loadu_epi8(m, p)), zx);
  }
  static MBF_INLINE DwX dw_load_w(const std::int16_t* p, DwMask m) { return _mm256_maskz_loadu_epi16(m, p); }
  static MBF_INLINE DwAcc dw_load_bias(const std::int32_t* p, DwMask m) { return _mm512_maskz_loadu_epi32(m, p); }
  static MBF_INLINE DwAcc dw_madd(DwAcc acc, DwX x, DwX w) {
    return _mm512_add_epi32(acc, _mm512_cvtepi16_epi32(_mm256_mullo_epi16(x, w)));
  }
  static MBF_INLINE void dw_store(std::uint8_t* o, DwAcc acc, const float* scale, const Params& q, DwMask m) {
    _mm_mask_storeu_epi8(o, m, requant(acc, _mm512_maskz_loadu_ps(m, scale), q));
  }
};

// The depthwise operations for int16 weights in -255..255 (weights that had a zero point: a legacy
// uint8 .tflite), whose products with |x - zp| <= 255 overflow int16: each input and weight in its
// own int32 lane, the input sign-extended, the weight zero-extended (its bits in the low half, 0 in
// the high half), so vpmaddwd's lo x lo + hi x hi is exactly x * w. Same register budget.
struct QVecAvx512Wide : QVecAvx512 {
  using DwX = __m512i;  // 16 int32 lanes
  static MBF_INLINE DwX dw_zero_x() { return _mm512_setzero_si512(); }
  static MBF_INLINE DwX dw_set_zx(std::int32_t zx) { return _mm512_set1_epi32(zx); }
  static MBF_INLINE DwX dw_load_x(const std::uint8_t* p, DwMask m, DwX zx) {
    return _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p)), zx);
  }
  static MBF_INLINE DwX dw_load_w(const std::int16_t* p, DwMask m) {
    return _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
  }
  static MBF_INLINE DwAcc dw_madd(DwAcc acc, DwX x, DwX w) { return _mm512_add_epi32(acc, _mm512_madd_epi16(x, w)); }
};

}  // namespace
}  // namespace mbf
