// AVX2 + FMA depthwise 3x3 (stride 1 and 2), the 3x3 stem convolution and global average pooling.
//
// The same algorithms as kernels/avx512/dwconv_avx512.cpp (read the comments there), on 8-lane
// ymm vectors: channels in blocks of 8, a channel count that is not a multiple of 8 ends with a
// block using _mm256_maskload_ps / _mm256_maskstore_ps (masked-off lanes touch no memory), and the
// register blocking is sized for 16 ymm registers instead of 32 zmm.
//
// No inline function or template shared with other translation units may be used here (see
// kernels_internal.h): everything below is intrinsics and helpers with internal linkage.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/kernels_internal.h"

namespace mbf {
namespace {

using Index = std::ptrdiff_t;

constexpr int kLanes = 8;

#define MBF_INLINE inline __attribute__((always_inline))
#define MBF_LAMBDA_INLINE __attribute__((always_inline))

template <int N>
struct Count {
  static constexpr int value = N;
};

// Lane masks for maskload / maskstore: 8 all-ones then 8 zeros; the mask of the first n lanes
// starts at kMaskTable + 8 - n.
alignas(64) constexpr int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

MBF_INLINE __m256i lane_mask(int n) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMaskTable + kLanes - (n < kLanes ? n : kLanes)));
}

template <bool kMasked>
MBF_INLINE __m256 load(const float* p, __m256i m) {
  if constexpr (kMasked) return _mm256_maskload_ps(p, m);
  else return _mm256_loadu_ps(p);
}

template <bool kMasked>
MBF_INLINE void store(float* p, __m256 v, __m256i m) {
  if constexpr (kMasked) _mm256_maskstore_ps(p, m, v);
  else _mm256_storeu_ps(p, v);
}

MBF_INLINE __m256 clamp(__m256 v, __m256 lo, __m256 hi) { return _mm256_min_ps(_mm256_max_ps(v, lo), hi); }

// Hides a pointer's value from the optimiser. Without it GCC strength-reduces every
// `x + k * C` of a block into its own induction variable, runs out of registers and spills them.
MBF_INLINE void opaque(const float*& p) { __asm__("" : "+r"(p)); }

MBF_INLINE int imin(int a, int b) { return a < b ? a : b; }
MBF_INLINE int imax(int a, int b) { return a > b ? a : b; }

// Calls f(Count<P>{}, first) to cover [begin, end) with blocks of kMax pixels; what is left
// (fewer than kMax) with blocks of kMax / 2, and so on. A remainder of at least half a block is
// covered by one block shifted back to end exactly at `end`: it recomputes a few pixels (writing
// the same values twice) instead of running a chain of small blocks.
template <int kMax, class F>
MBF_INLINE void for_pixel_blocks(int begin, int end, F&& f) {
  int x = begin;
  for (; x + kMax <= end; x += kMax) f(Count<kMax>{}, x);
  if (x == end) return;
  if (end - begin >= kMax) {
    f(Count<kMax>{}, end - kMax);
  } else if constexpr (kMax > 1) {
    for_pixel_blocks<kMax / 2>(x, end, f);
  }
}

// Output columns whose three taps all fall inside a row of width in_w: [lo, hi), with lo <= hi.
struct Columns {
  int lo, hi;
};
Columns interior_columns(int in_w, int out_w, int stride, int pad_left) {
  Columns c;
  c.lo = imin(pad_left, out_w);  // pad_left is 0 or 1: column 0 is a border column iff it is 1
  const int last = in_w - 3 + pad_left;  // largest ow * stride with the right tap inside
  c.hi = last < 0 ? 0 : imin(last / stride + 1, out_w);
  if (c.hi < c.lo) c.hi = c.lo;
  return c;
}

// ------------------------------------------------------------------------- depthwise 3x3

// P output pixels (stride S) of one block of 8 channels; see dw_block in the AVX-512 file. A
// padding input (left / right) is a maskload with an all-zero mask: zeros, no memory read.
template <int S, int P, bool kMasked>
MBF_INLINE void dw_block(const float* const row[3], bool has_top, bool has_bottom, bool left, bool right,
                         Index x0, Index C, const float* w, const float* bias, __m256 lo, __m256 hi, __m256i m,
                         float* o) {
  constexpr int kInputs = (P - 1) * S + 3;
  const __m256i zero = _mm256_setzero_si256();
  const __m256i m_first = left ? zero : m, m_last = right ? zero : m;
  // A padding input's address is replaced by the next real one (the load is masked off anyway),
  // so that no address outside the row is formed.
  const Index first = left ? x0 + C : x0;
  const Index last = right ? first : x0 + (kInputs - 1) * C;
  __m256 acc[P];
  const __m256 b = load<kMasked>(bias, m);
  for (int p = 0; p < P; ++p) acc[p] = b;
  // Inputs are streamed through three registers (8 accumulators + 3 weights + 3 inputs fit the 16
  // ymm registers; keeping a whole kernel row of inputs live would spill).
  auto one_row = [&](const float* x, int kh) MBF_LAMBDA_INLINE {
    opaque(x);
    const __m256 w0 = load<kMasked>(w + (3 * kh) * C, m);
    const __m256 w1 = load<kMasked>(w + (3 * kh + 1) * C, m);
    const __m256 w2 = load<kMasked>(w + (3 * kh + 2) * C, m);
    auto input = [&](int q) MBF_LAMBDA_INLINE {
      if (q == 0) return _mm256_maskload_ps(x + first, m_first);
      if (q == kInputs - 1) return _mm256_maskload_ps(x + last, m_last);
      return load<kMasked>(x + x0 + q * C, m);
    };
    // Each input is loaded once: with stride 1 the window slides by one (a, b <- b, c), with
    // stride 2 by two (a <- c).
    __m256 a = input(0), b = S == 1 ? input(1) : a;
    for (int p = 0; p < P; ++p) {
      if (S == 2) b = input(2 * p + 1);
      const __m256 c = input(p * S + 2);
      acc[p] = _mm256_fmadd_ps(a, w0, acc[p]);
      acc[p] = _mm256_fmadd_ps(b, w1, acc[p]);
      acc[p] = _mm256_fmadd_ps(c, w2, acc[p]);
      a = S == 1 ? b : c;
      b = c;
    }
  };
  if (has_top) one_row(row[0], 0);
  one_row(row[1], 1);
  if (has_bottom) one_row(row[2], 2);
  for (int p = 0; p < P; ++p) store<kMasked>(o + p * C, clamp(acc[p], lo, hi), m);
}

// Calls f(Count<P>{}, first) for blocks of 8 pixels covering [begin, end), then one block of the
// remaining 1..7.
template <class F>
MBF_INLINE void for_dw_blocks(int begin, int end, F&& f) {
  int x = begin;
  for (; x + 8 <= end; x += 8) f(Count<8>{}, x);
  switch (end - x) {
    case 7: f(Count<7>{}, x); break;
    case 6: f(Count<6>{}, x); break;
    case 5: f(Count<5>{}, x); break;
    case 4: f(Count<4>{}, x); break;
    case 3: f(Count<3>{}, x); break;
    case 2: f(Count<2>{}, x); break;
    case 1: f(Count<1>{}, x); break;
    default: break;
  }
}

// Channels [0, head) form a first, narrower block when that makes every other block's loads
// 32-byte aligned (so none crosses a cache line): possible when all pixels share the input's
// alignment (C % 8 == 0). Measured worth it from C = 128; below, the extra masked block costs
// more than the split loads it saves.
int aligned_head(const float* in, int C) {
  const auto a = reinterpret_cast<std::uintptr_t>(in);
  if (C % kLanes != 0 || C < 16 * kLanes || a % sizeof(float) != 0) return 0;
  return static_cast<int>((32 - a % 32) % 32 / sizeof(float));
}

constexpr int kDwTileBlocks = 16;  // 128 channels, as in the AVX-512 kernels
constexpr int kDwStripBytes = 24 * 1024;

// Loop order as in the AVX-512 kernels: channel tiles, vertical strips, output rows, pixel blocks,
// channel blocks of the tile.
template <int S>
void dwconv3x3_avx2(const Conv2dGeom& g, const float* in, const float* w, const float* bias, float* out,
                    int row_begin, int row_end, Clamp c) {
  const int C = g.in_channels;
  const Index in_row = static_cast<Index>(g.in_w) * C;
  const Index out_row = static_cast<Index>(g.out_w) * C;
  const __m256 lo = _mm256_set1_ps(c.min), hi = _mm256_set1_ps(c.max);
  const __m256i all = lane_mask(kLanes);
  // Only the outermost columns can reach into the padding (the middle tap is always inside).
  const bool left_pad = g.pad_left > 0;
  const bool right_pad = (g.out_w - 1) * S - g.pad_left + 2 >= g.in_w;
  const int head = aligned_head(in, C);
  auto block_end = [&](int c0) { return c0 < head ? head : imin(C, c0 + kLanes); };
  for (int t0 = 0; t0 < C;) {
    int t1 = t0;
    for (int k = 0; k < kDwTileBlocks && t1 < C; ++k) t1 = block_end(t1);
    const int strip_inputs = kDwStripBytes / (3 * static_cast<int>(sizeof(float)) * (t1 - t0));
    const int strip = imax(8, ((strip_inputs - 3) / S + 1) / 8 * 8);
    for (int s0 = 0; s0 < g.out_w; s0 += strip) {
      const int s1 = imin(g.out_w, s0 + strip);
      for (int oh = row_begin; oh < row_end; ++oh) {
        const int ih0 = oh * S - g.pad_top;
        const bool has_top = ih0 >= 0, has_bottom = ih0 + 2 < g.in_h;
        // Rows outside the image are never read; point them at the middle row, always inside.
        const float* mid = in + (ih0 + 1) * in_row;
        const float* rows[3] = {has_top ? mid - in_row : mid, mid, has_bottom ? mid + in_row : mid};
        float* orow = out + oh * out_row;
        for_dw_blocks(s0, s1, [&](auto count, int ow) MBF_LAMBDA_INLINE {
          constexpr int P = decltype(count)::value;
          const bool left = left_pad && ow == 0, right = right_pad && ow + P == g.out_w;
          const Index x0 = static_cast<Index>(ow * S - g.pad_left) * C;
          float* o = orow + ow * C;
          for (int c0 = t0; c0 < t1;) {
            const int c1 = block_end(c0);
            const float* r[3] = {rows[0] + c0, rows[1] + c0, rows[2] + c0};
            if (c1 - c0 == kLanes)
              dw_block<S, P, false>(r, has_top, has_bottom, left, right, x0, C, w + c0, bias + c0, lo, hi, all,
                                    o + c0);
            else
              dw_block<S, P, true>(r, has_top, has_bottom, left, right, x0, C, w + c0, bias + c0, lo, hi,
                                   lane_mask(c1 - c0), o + c0);
            c0 = c1;
          }
        });
      }
    }
    t0 = t1;
  }
}

// ------------------------------------------------------------------------- stem 3x3 conv

// As the AVX-512 stem: output channels in chunks of 16 (two ymm, the last one masked when
// kMasked), P pixels share each weight load, one broadcast per input value and pixel, the taps of
// a kernel row run over j = kw * Cin + ci in [j_begin, j_end).
template <int P, int NV, bool kMasked>
MBF_INLINE void stem_block(const Conv2dGeom& g, const float* const row[3], int kh_begin, int kh_end, Index x0,
                           Index x_step, int j_begin, int j_end, const float* w, const float* bias, __m256 lo,
                           __m256 hi, __m256i m, float* o) {
  const Index Ci = g.in_channels, Co = g.out_channels;
  __m256 acc[P][NV];
  for (int v = 0; v < NV; ++v) {
    const __m256 b = (kMasked && v == NV - 1) ? _mm256_maskload_ps(bias + v * kLanes, m)
                                              : _mm256_loadu_ps(bias + v * kLanes);
    for (int p = 0; p < P; ++p) acc[p][v] = b;
  }
  for (int kh = kh_begin; kh < kh_end; ++kh) {
    const float* x = row[kh];
    const float* wr = w + kh * 3 * Ci * Co;
    for (int j = j_begin; j < j_end; ++j) {
      __m256 wv[NV];
      for (int v = 0; v < NV; ++v)
        wv[v] = (kMasked && v == NV - 1) ? _mm256_maskload_ps(wr + j * Co + v * kLanes, m)
                                         : _mm256_loadu_ps(wr + j * Co + v * kLanes);
      for (int p = 0; p < P; ++p) {
        const __m256 xb = _mm256_broadcast_ss(x + x0 + p * x_step + j);
        for (int v = 0; v < NV; ++v) acc[p][v] = _mm256_fmadd_ps(xb, wv[v], acc[p][v]);
      }
    }
  }
  for (int p = 0; p < P; ++p)
    for (int v = 0; v < NV; ++v) {
      const __m256 r = clamp(acc[p][v], lo, hi);
      if (kMasked && v == NV - 1) _mm256_maskstore_ps(o + p * Co + v * kLanes, m, r);
      else _mm256_storeu_ps(o + p * Co + v * kLanes, r);
    }
}

// Output pixels per stem block: 6 pixels x 2 vectors = 12 accumulators.
constexpr int kStemPixels = 6;

template <int NV, bool kMasked>
void stem_row_channels(const Conv2dGeom& g, const float* const row[3], int kh_begin, int kh_end, Columns cols,
                       const float* w, const float* bias, __m256 lo, __m256 hi, __m256i m, float* orow) {
  const Index Ci = g.in_channels, Co = g.out_channels, S = g.stride;
  auto border = [&](int ow) {
    const int iw0 = ow * g.stride - g.pad_left;
    const int kw_begin = imax(0, -iw0), kw_end = imin(3, g.in_w - iw0);
    // x0 may be -Ci (left pad) but j starts at kw_begin * Ci, so every index read is inside the row
    stem_block<1, NV, kMasked>(g, row, kh_begin, kh_end, iw0 * Ci, 0, kw_begin * static_cast<int>(Ci),
                               kw_end * static_cast<int>(Ci), w, bias, lo, hi, m, orow + ow * Co);
  };
  for (int ow = 0; ow < cols.lo; ++ow) border(ow);
  for_pixel_blocks<kStemPixels>(cols.lo, cols.hi, [&](auto count, int ow) MBF_LAMBDA_INLINE {
    constexpr int P = decltype(count)::value;
    stem_block<P, NV, kMasked>(g, row, kh_begin, kh_end, (ow * S - g.pad_left) * Ci, S * Ci, 0,
                               3 * static_cast<int>(Ci), w, bias, lo, hi, m, orow + ow * Co);
  });
  for (int ow = cols.hi; ow < g.out_w; ++ow) border(ow);
}

}  // namespace

void dwconv3x3_s1_avx2_8c(const Conv2dGeom& g, const float* in, const float* w, const float* bias, float* out,
                          int row_begin, int row_end, Clamp c) {
  dwconv3x3_avx2<1>(g, in, w, bias, out, row_begin, row_end, c);
}

void dwconv3x3_s2_avx2_8c(const Conv2dGeom& g, const float* in, const float* w, const float* bias, float* out,
                          int row_begin, int row_end, Clamp c) {
  dwconv3x3_avx2<2>(g, in, w, bias, out, row_begin, row_end, c);
}

// Any Cin, any Cout, stride 1 or 2. Output channels in chunks of 16 (two ymm), 6 pixels per block.
void conv3x3_stem_avx2(const Conv2dGeom& g, const float* in, const float* w, const float* bias, float* out,
                       int row_begin, int row_end, Clamp c) {
  const int Co = g.out_channels;
  const Index in_row = static_cast<Index>(g.in_w) * g.in_channels;
  const Index out_row = static_cast<Index>(g.out_w) * Co;
  const Columns cols = interior_columns(g.in_w, g.out_w, g.stride, g.pad_left);
  const __m256 lo = _mm256_set1_ps(c.min), hi = _mm256_set1_ps(c.max);
  const __m256i all = lane_mask(kLanes);
  for (int oh = row_begin; oh < row_end; ++oh) {
    const int ih0 = oh * g.stride - g.pad_top;
    const int kh_begin = imax(0, -ih0), kh_end = imin(3, g.in_h - ih0);
    // Rows outside the image are skipped (kh_begin / kh_end); point them at the middle row.
    const float* mid = in + (ih0 + 1) * in_row;
    const float* row[3] = {kh_begin == 0 ? mid - in_row : mid, mid, kh_end == 3 ? mid + in_row : mid};
    float* orow = out + oh * out_row;
    int c0 = 0;
    for (; c0 + 2 * kLanes <= Co; c0 += 2 * kLanes)
      stem_row_channels<2, false>(g, row, kh_begin, kh_end, cols, w + c0, bias + c0, lo, hi, all, orow + c0);
    const int rem = Co - c0;
    if (rem > kLanes)
      stem_row_channels<2, true>(g, row, kh_begin, kh_end, cols, w + c0, bias + c0, lo, hi,
                                 lane_mask(rem - kLanes), orow + c0);
    else if (rem == kLanes)
      stem_row_channels<1, false>(g, row, kh_begin, kh_end, cols, w + c0, bias + c0, lo, hi, all, orow + c0);
    else if (rem > 0)
      stem_row_channels<1, true>(g, row, kh_begin, kh_end, cols, w + c0, bias + c0, lo, hi, lane_mask(rem),
                                 orow + c0);
  }
}

// ------------------------------------------------------------------------- global average pool

// Per block of 8 channels: four float32 accumulators over runs of at most 32 pixels (each sums at
// most 8 values), each run's total added to a float64 sum.
void global_avg_pool_avx2(const float* in, int hw, int channels, float* out) {
  constexpr int kRun = 32;
  const Index C = channels;
  const __m256d n = _mm256_set1_pd(static_cast<double>(hw));
  for (int c0 = 0; c0 < channels; c0 += kLanes) {
    const __m256i m = lane_mask(channels - c0);
    const float* base = in + c0;
    __m256d sum_lo = _mm256_setzero_pd(), sum_hi = _mm256_setzero_pd();
    for (int p0 = 0; p0 < hw; p0 += kRun) {
      const int p1 = imin(hw, p0 + kRun);
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      int p = p0;
      for (; p + 4 <= p1; p += 4) {
        const float* x = base + p * C;
        a0 = _mm256_add_ps(a0, _mm256_maskload_ps(x, m));
        a1 = _mm256_add_ps(a1, _mm256_maskload_ps(x + C, m));
        a2 = _mm256_add_ps(a2, _mm256_maskload_ps(x + 2 * C, m));
        a3 = _mm256_add_ps(a3, _mm256_maskload_ps(x + 3 * C, m));
      }
      for (; p < p1; ++p) a0 = _mm256_add_ps(a0, _mm256_maskload_ps(base + p * C, m));
      const __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
      sum_lo = _mm256_add_pd(sum_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(s)));
      sum_hi = _mm256_add_pd(sum_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(s, 1)));
    }
    const __m128 mean_lo = _mm256_cvtpd_ps(_mm256_div_pd(sum_lo, n));
    const __m128 mean_hi = _mm256_cvtpd_ps(_mm256_div_pd(sum_hi, n));
    _mm256_maskstore_ps(out + c0, m, _mm256_insertf128_ps(_mm256_castps128_ps256(mean_lo), mean_hi, 1));
  }
}

}  // namespace mbf
