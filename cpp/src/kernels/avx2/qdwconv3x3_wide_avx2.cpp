// qdwconv3x3_wide_s1/s2_avx2_8c: the int8 depthwise kernel for int16 weights in -255..255 (a layer
// whose weights had a zero point: legacy uint8 .tflite files) on AVX2, the shared kernel
// (kernels/int8/qdwconv3x3.h) over 8 channels per block. Products of |x - zp| <= 255 and such
// weights overflow int16, so each input and weight sits in its own int32 lane (the input
// sign-extended, the weight zero-extended: its bits in the low half, 0 in the high half) and
// vpmaddwd's lo x lo + hi x hi is exactly x * w. Requantisation as every AVX2 int8 kernel
// (QVecAvx2). Partial channel blocks go through small buffers (AVX2 has no byte-masked loads).
#include "kernels/simd/qvec_avx2.h"
#include "kernels/int8/qdwconv3x3.h"

namespace mbf {
namespace {

// The first m (< 8) values at p, zero-padded to 16 bytes (AVX2 has no byte- or word-masked loads).
template <class T>
MBF_INLINE __m128i load_first(const T* p, int m) {
  alignas(16) T t[16 / sizeof(T)] = {};
  for (int j = 0; j < m; ++j) t[j] = p[j];
  return _mm_load_si128(reinterpret_cast<const __m128i*>(t));
}

struct QVecAvx2Wide : QVecAvx2 {
  static constexpr int kDwLanes = 8;
  static constexpr int kDwPixels = 8;  // 8 accumulators + 3 weights + 3 streamed inputs of 16 ymm
  using DwMask = int;                  // active leading channels, 0..8
  using DwX = __m256i;                 // 8 int32
  using DwAcc = __m256i;
  static MBF_INLINE DwMask dw_mask_first(int n) { return n >= kDwLanes ? kDwLanes : (n < 0 ? 0 : n); }
  static MBF_INLINE DwX dw_zero_x() { return _mm256_setzero_si256(); }
  static MBF_INLINE DwX dw_set_zx(std::int32_t zx) { return _mm256_set1_epi32(zx); }
  static MBF_INLINE DwX dw_load_x(const std::uint8_t* p, DwMask m, DwX zx) {
    const __m128i b = m >= kDwLanes ? _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)) : load_first(p, m);
    return _mm256_sub_epi32(_mm256_cvtepu8_epi32(b), zx);
  }
  static MBF_INLINE DwX dw_load_w(const std::int16_t* p, DwMask m) {
    const __m128i v = m >= kDwLanes ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)) : load_first(p, m);
    return _mm256_cvtepu16_epi32(v);
  }
  static MBF_INLINE DwAcc dw_load_bias(const std::int32_t* p, DwMask m) {
    return _mm256_maskload_epi32(p, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kAvx2MaskTable + 8 - m)));
  }
  static MBF_INLINE DwAcc dw_madd(DwAcc acc, DwX x, DwX w) { return _mm256_add_epi32(acc, _mm256_madd_epi16(x, w)); }
  static MBF_INLINE void dw_store(std::uint8_t* o, DwAcc acc, const float* scale, const Params& q, DwMask m) {
    const __m256i mask = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kAvx2MaskTable + 8 - m));
    store_bytes(o, requant(acc, _mm256_maskload_ps(scale, mask), q), m);
  }
};

}  // namespace
}  // namespace mbf

MBF_DEFINE_QDWCONV3X3(QVecAvx2Wide, qdwconv3x3_wide_s1_avx2_8c, qdwconv3x3_wide_s2_avx2_8c)
