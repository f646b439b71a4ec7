// qdwconv3x3_s1/s2_avx2_16c: int8 depthwise 3x3 on AVX2 with vpmaddwd on pairs of taps.
//
// The inputs of 16 channels are widened to int16 minus the input zero point (a tap outside the
// image is then exactly 0, what a padding of zero points gives). Two taps of the same channel are
// interleaved (vpunpcklwd / vpunpckhwd) and multiplied by the matching interleaved weight pair
// with vpmaddwd, which adds the two products into one int32 lane: 16 multiply-adds per
// instruction, exact (|x - zp| <= 255, |w| <= 128). The 9 taps form 5 pairs: rows 0 and 1 of each
// kernel column (3 pairs), row 2's columns 0 and 1, and row 2's column 2 with a zero weight. For
// each input column the kernel builds the row-0/1 pair and the row-2 pair (this column and the
// next) once and reuses them for every output pixel that reads that column (3 with stride 1).
//
// The unpacks work inside 128-bit lanes, so the "lo" accumulator holds channels 0-3 and 8-11 and
// the "hi" one 4-7 and 12-15; the biases and scales are loaded in that order, and the signed
// saturating pack of lo with hi puts the 16 results back in channel order. Requantisation: the
// float32 operations of every int8 kernel (kernels/simd/qvec_avx2.h), so the bits equal the
// scalar reference's. Weights arrive packed by pack_qdwconv3x3_weights (9 x C int16); the pairs
// are interleaved per call into a small per-thread buffer (9 x C values, negligible beside a row).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/kernels_internal.h"
#include "kernels/simd/vec_common.h"

namespace mbf {
namespace {

constexpr int kLanes = 16;

// One block of 16 channels: the 5 interleaved weight pairs (lo, hi), the biases and the scales
// in the accumulators' lane order.
struct alignas(32) DwBlock {
  __m256i w[5][2];
  __m256i bias[2];
  __m256 scale[2];
};

void prepare(int C, const std::int16_t* w, const std::int32_t* bias, const float* scale, std::vector<DwBlock>& out) {
  const int blocks = (C + kLanes - 1) / kLanes;
  out.resize(static_cast<std::size_t>(blocks));
  for (int b = 0; b < blocks; ++b) {
    const int c0 = b * kLanes, m = std::min(kLanes, C - c0);
    alignas(32) std::int16_t t[9][kLanes] = {};
    alignas(32) std::int32_t bb[kLanes] = {};
    alignas(32) float ss[kLanes] = {};
    for (int tap = 0; tap < 9; ++tap)
      for (int j = 0; j < m; ++j) t[tap][j] = w[static_cast<std::ptrdiff_t>(tap) * C + c0 + j];
    for (int j = 0; j < m; ++j) {
      bb[j] = bias[c0 + j];
      ss[j] = scale[c0 + j];
    }
    auto tap = [&](int i) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(t[i])); };
    DwBlock& P = out[static_cast<std::size_t>(b)];
    auto pair = [&](int i, __m256i a, __m256i c) {
      P.w[i][0] = _mm256_unpacklo_epi16(a, c);
      P.w[i][1] = _mm256_unpackhi_epi16(a, c);
    };
    pair(0, tap(0), tap(3));  // (row 0, row 1) of kernel column 0
    pair(1, tap(1), tap(4));
    pair(2, tap(2), tap(5));
    pair(3, tap(6), tap(7));  // row 2: columns 0 and 1
    pair(4, tap(8), _mm256_setzero_si256());  // row 2, column 2 (its partner is multiplied by 0)
    const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(bb));
    const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(bb + 8));
    P.bias[0] = _mm256_permute2x128_si256(b0, b1, 0x20);  // channels 0-3, 8-11
    P.bias[1] = _mm256_permute2x128_si256(b0, b1, 0x31);  // channels 4-7, 12-15
    const __m256 s0 = _mm256_load_ps(ss), s1 = _mm256_load_ps(ss + 8);
    P.scale[0] = _mm256_permute2f128_ps(s0, s1, 0x20);
    P.scale[1] = _mm256_permute2f128_ps(s0, s1, 0x31);
  }
}

// The pairs of one input column: rows 0/1 (v) and row 2 with the next column (h), lo and hi.
struct Column {
  __m256i v0, v1, h0, h1;
};

struct Row {
  const std::uint8_t* r[3];  // null: the row is outside the image
  int in_w, C, m;            // m: channels of this block (<= 16)
  const std::uint8_t* end;   // end of the input: no 16-byte load may pass it
  __m256i zx;
};

// 16 channels of row r at input column iw, widened to int16 minus the zero point; 0 outside the
// image. A partial block (m < 16) reads the next pixel's channels where that stays inside the
// input (their weights are 0), else goes through a zeroed buffer.
MBF_INLINE __m256i load_x(const Row& R, int row, int iw) {
  const std::uint8_t* base = R.r[row];
  if (!base || iw < 0 || iw >= R.in_w) return _mm256_setzero_si256();
  const std::uint8_t* p = base + static_cast<std::ptrdiff_t>(iw) * R.C;
  __m128i b;
  if (R.m == kLanes || p + kLanes <= R.end) {
    b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  } else {
    alignas(16) std::uint8_t t[kLanes] = {};
    std::memcpy(t, p, static_cast<std::size_t>(R.m));
    b = _mm_load_si128(reinterpret_cast<const __m128i*>(t));
  }
  return _mm256_sub_epi16(_mm256_cvtepu8_epi16(b), R.zx);
}

MBF_INLINE Column column(const Row& R, int iw) {
  const __m256i x0 = load_x(R, 0, iw), x1 = load_x(R, 1, iw);
  const __m256i x2 = load_x(R, 2, iw), x3 = load_x(R, 2, iw + 1);
  return {_mm256_unpacklo_epi16(x0, x1), _mm256_unpackhi_epi16(x0, x1), _mm256_unpacklo_epi16(x2, x3),
          _mm256_unpackhi_epi16(x2, x3)};
}

MBF_INLINE void store(std::uint8_t* o, __m256i a0, __m256i a1, const DwBlock& P, __m256 lo, __m256 hi, __m256i zp,
                      int m) {
  __m256 y0 = _mm256_mul_ps(_mm256_cvtepi32_ps(a0), P.scale[0]);
  __m256 y1 = _mm256_mul_ps(_mm256_cvtepi32_ps(a1), P.scale[1]);
  y0 = _mm256_min_ps(_mm256_max_ps(y0, lo), hi);
  y1 = _mm256_min_ps(_mm256_max_ps(y1, lo), hi);
  const __m256i v0 = _mm256_add_epi32(_mm256_cvtps_epi32(y0), zp);
  const __m256i v1 = _mm256_add_epi32(_mm256_cvtps_epi32(y1), zp);
  const __m256i w16 = _mm256_packs_epi32(v0, v1);  // channels 0-7 | 8-15 as int16
  const __m256i w8 = _mm256_packus_epi16(w16, w16);
  const __m128i b = _mm256_castsi256_si128(_mm256_permute4x64_epi64(w8, 0x08));
  if (m == kLanes) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o), b);
  } else {
    alignas(16) std::uint8_t t[kLanes];
    _mm_store_si128(reinterpret_cast<__m128i*>(t), b);
    std::memcpy(o, t, static_cast<std::size_t>(m));
  }
}

template <int S>
void qdw_avx2_16c(const Conv2dGeom& g, const std::uint8_t* in, std::int32_t input_zero_point, const void* packed,
                  std::uint8_t* out, int row_begin, int row_end, QuantOut q) {
  const int C = g.in_channels;
  const auto* base = static_cast<const unsigned char*>(packed);
  const auto* bias = reinterpret_cast<const std::int32_t*>(base);
  const auto* scale = reinterpret_cast<const float*>(base + sizeof(std::int32_t) * C);
  const auto* w = reinterpret_cast<const std::int16_t*>(base + 2 * sizeof(std::int32_t) * C);
  thread_local std::vector<DwBlock> blocks;
  prepare(C, w, bias, scale, blocks);
  const Index in_row = static_cast<Index>(g.in_w) * C, out_row = static_cast<Index>(g.out_w) * C;
  const std::uint8_t* end = in + static_cast<Index>(g.in_h) * in_row;
  const __m256 lo = _mm256_set1_ps(static_cast<float>(q.min - q.zero_point));
  const __m256 hi = _mm256_set1_ps(static_cast<float>(q.max - q.zero_point));
  const __m256i zp = _mm256_set1_epi32(q.zero_point);
  const __m256i zx = _mm256_set1_epi16(static_cast<short>(input_zero_point));
  for (int oh = row_begin; oh < row_end; ++oh) {
    const int ih0 = oh * S - g.pad_top;
    std::uint8_t* orow = out + oh * out_row;
    for (int c0 = 0; c0 < C; c0 += kLanes) {
      Row R{{}, g.in_w, C, std::min(kLanes, C - c0), end, zx};
      for (int r = 0; r < 3; ++r) {
        const int ih = ih0 + r;
        R.r[r] = ih >= 0 && ih < g.in_h ? in + ih * in_row + c0 : nullptr;
      }
      const DwBlock& P = blocks[static_cast<std::size_t>(c0 / kLanes)];
      int iw = -g.pad_left;
      Column a = column(R, iw), b = column(R, iw + 1), c = column(R, iw + 2);
      for (int ow = 0; ow < g.out_w; ++ow) {
        __m256i acc0 = P.bias[0], acc1 = P.bias[1];
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(a.v0, P.w[0][0]));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(a.v1, P.w[0][1]));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(b.v0, P.w[1][0]));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(b.v1, P.w[1][1]));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(c.v0, P.w[2][0]));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(c.v1, P.w[2][1]));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(a.h0, P.w[3][0]));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(a.h1, P.w[3][1]));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(c.h0, P.w[4][0]));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(c.h1, P.w[4][1]));
        store(orow + static_cast<Index>(ow) * C + c0, acc0, acc1, P, lo, hi, zp, R.m);
        if (ow + 1 == g.out_w) break;
        iw += S;
        if (S == 1) {
          a = b;
          b = c;
        } else {
          a = c;
          b = column(R, iw + 1);
        }
        c = column(R, iw + 2);
      }
    }
  }
}

}  // namespace

void qdwconv3x3_s1_avx2_16c(const Conv2dGeom& g, const std::uint8_t* in, std::int32_t zx, const void* packed,
                            std::uint8_t* out, int row_begin, int row_end, QuantOut q) {
  qdw_avx2_16c<1>(g, in, zx, packed, out, row_begin, row_end, q);
}

void qdwconv3x3_s2_avx2_16c(const Conv2dGeom& g, const std::uint8_t* in, std::int32_t zx, const void* packed,
                            std::uint8_t* out, int row_begin, int row_end, QuantOut q) {
  qdw_avx2_16c<2>(g, in, zx, packed, out, row_begin, row_end, q);
}

}  // namespace mbf
