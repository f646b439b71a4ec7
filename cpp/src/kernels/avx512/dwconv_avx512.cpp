// AVX-512 depthwise 3x3 (stride 1 and 2), the 3x3 stem convolution and global average pooling.
//
// Depthwise: channels in blocks of 16 (one zmm), output pixels in blocks of up to 8 (8
// accumulators); the inputs of a kernel row are loaded once per block and feed every tap that
// uses them. Loop order: channel tiles of 128, vertical strips of output columns sized so that
// three input rows of a strip stay in L1, the output rows of the requested range, the pixel
// blocks of the strip, the channel blocks of the tile. Padding costs no branch per pixel: an
// input column in the padding is a load with an all-zero mask (no memory access, zeros), and a
// kernel row in the padding is skipped once per block. Bias and clamp are applied in registers
// before the single store of each output vector. Channel counts that are not a multiple of 16
// end with a masked block; when C is a multiple of 16, a narrower first block makes every other
// block's loads 64-byte aligned (unaligned 64-byte loads always cross a cache line).
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

constexpr int kLanes = 16;

#define MBF_INLINE inline __attribute__((always_inline))
#define MBF_LAMBDA_INLINE __attribute__((always_inline))

template <int N>
struct Count {
  static constexpr int value = N;
};

MBF_INLINE __mmask16 lane_mask(int n) {
  return static_cast<__mmask16>(n >= kLanes ? 0xFFFFu : (1u << n) - 1u);
}

template <bool kMasked>
MBF_INLINE __m512 load(const float* p, __mmask16 m) {
  if constexpr (kMasked) return _mm512_maskz_loadu_ps(m, p);
  else return _mm512_loadu_ps(p);
}

template <bool kMasked>
MBF_INLINE void store(float* p, __m512 v, __mmask16 m) {
  if constexpr (kMasked) _mm512_mask_storeu_ps(p, m, v);
  else _mm512_storeu_ps(p, v);
}

MBF_INLINE __m512 clamp(__m512 v, __m512 lo, __m512 hi) {
  return _mm512_min_ps(_mm512_max_ps(v, lo), hi);
}

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

// P consecutive output pixels (stride S) of one block of 16 channels (kMasked: fewer, lanes in m).
// `row[kh]` points at the block's first channel in input row oh*S - pad_top + kh; rows 0 and 2
// are read only when has_top / has_bottom say they are inside the image (the middle one always
// is). x0 is the offset of the input pixel under the first pixel's left tap, C the channel count
// (the pixel stride); w and bias point at the block's channels.
//
// Padding costs no branch per pixel: `left` means the block starts at output column 0 and that
// column's left tap is in the padding, `right` that the block's last pixel has its right tap in the
// padding. Those inputs (the first / last of the block's input run, never any other, since only
// the outermost columns of a row can touch the padding) are loaded with an all-zero mask, which
// reads no memory and yields zeros; the mask is also the only change, so the block's code is the
// same for border and interior pixels. (A padding tap thus adds 0 * w, which is exactly nothing
// for any finite weight; only an infinite or NaN weight would differ from skipping the tap.) The inputs of a kernel row are loaded once and reused by
// every tap and pixel of the block, and the taps are applied tap-major so that consecutive FMAs go
// to different accumulators.
template <int S, int P, bool kMasked>
MBF_INLINE void dw_block(const float* const row[3], bool has_top, bool has_bottom, bool left, bool right,
                         Index x0, Index C, const float* w, const float* bias, __m512 lo, __m512 hi,
                         __mmask16 m, float* o) {
  constexpr int kInputs = (P - 1) * S + 3;
  const __mmask16 m_first = left ? 0 : m, m_last = right ? 0 : m;
  // A padding input's address is replaced by the next real one (the load is masked off anyway),
  // so that no address outside the row is formed.
  const Index first = left ? x0 + C : x0;
  const Index last = right ? first : x0 + (kInputs - 1) * C;
  __m512 acc[P];
  const __m512 b = load<kMasked>(bias, m);
  for (int p = 0; p < P; ++p) acc[p] = b;
  auto one_row = [&](const float* x, int kh) MBF_LAMBDA_INLINE {
    opaque(x);
    __m512 xv[kInputs];
    xv[0] = _mm512_maskz_loadu_ps(m_first, x + first);
    for (int q = 1; q < kInputs - 1; ++q) xv[q] = load<kMasked>(x + x0 + q * C, m);
    xv[kInputs - 1] = _mm512_maskz_loadu_ps(m_last, x + last);
    for (int k = 0; k < 3; ++k) {
      const __m512 wk = load<kMasked>(w + (3 * kh + k) * C, m);
      for (int p = 0; p < P; ++p) acc[p] = _mm512_fmadd_ps(xv[p * S + k], wk, acc[p]);
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
// 64-byte aligned: possible when all pixels share the input's alignment (C % 16 == 0). Measured
// worth it from C = 128 (about 15% there, up to 1.8x on the 256..1024-channel layers); at 32 and
// 64 the extra masked block costs more than the split loads it saves.
int aligned_head(const float* in, int C) {
  const auto a = reinterpret_cast<std::uintptr_t>(in);
  if (C % kLanes != 0 || C < 8 * kLanes || a % sizeof(float) != 0) return 0;
  return static_cast<int>((64 - a % 64) % 64 / sizeof(float));
}

// Channels per tile: bounds the bytes per pixel of a strip and keeps the tile's 9 x 128 weights
// in L1 (they are reloaded per block).
constexpr int kDwTileBlocks = 8;
// Input bytes a strip's three input rows may occupy, so that they are still in L1 when the next
// output row reads two of them again.
constexpr int kDwStripBytes = 24 * 1024;

// Loop order: channel tiles, then vertical strips of output columns, then the output rows of the
// range, then blocks of up to 8 pixels, then the tile's 16-channel blocks. Input and output are
// walked in contiguous runs of a tile's channels, each output row finds two of its three input
// rows in L1, and a tile's weights stay in L1.
template <int S>
void dwconv3x3_avx512(const Conv2dGeom& g, const float* in, const float* w, const float* bias, float* out,
                      int row_begin, int row_end, Clamp c) {
  const int C = g.in_channels;
  const Index in_row = static_cast<Index>(g.in_w) * C;
  const Index out_row = static_cast<Index>(g.out_w) * C;
  const __m512 lo = _mm512_set1_ps(c.min), hi = _mm512_set1_ps(c.max);
  // Only the outermost columns can reach into the padding (the middle tap is always inside).
  const bool left_pad = g.pad_left > 0;
  const bool right_pad = (g.out_w - 1) * S - g.pad_left + 2 >= g.in_w;
  const int head = aligned_head(in, C);
  auto block_end = [&](int c0) { return c0 < head ? head : imin(C, c0 + kLanes); };
  for (int t0 = 0; t0 < C;) {
    int t1 = t0;
    for (int k = 0; k < kDwTileBlocks && t1 < C; ++k) t1 = block_end(t1);
    // Strip width in output pixels: a multiple of 8 whose input rows fit the budget, at least 8.
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
              dw_block<S, P, false>(r, has_top, has_bottom, left, right, x0, C, w + c0, bias + c0, lo, hi,
                                    0xFFFF, o + c0);
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

// Output channels are vectorised (NV zmm per pixel, the last one masked when kMasked), P output
// pixels share every weight load, and each input value is broadcast once per pixel. For a kernel
// row, the taps (kw, ci) are contiguous in both the input (3 * Cin floats from the window's first
// pixel) and the HWIO weights, so the loop runs over j = kw * Cin + ci in [j_begin, j_end):
// the whole row for interior pixels, the columns inside the image for border pixels.
template <int P, int NV, bool kMasked>
MBF_INLINE void stem_block(const Conv2dGeom& g, const float* const row[3], int kh_begin, int kh_end,
                           Index x0, Index x_step, int j_begin, int j_end, const float* w, const float* bias,
                           __m512 lo, __m512 hi, __mmask16 m, float* o) {
  const Index Ci = g.in_channels, Co = g.out_channels;
  __m512 acc[P][NV];
  for (int v = 0; v < NV; ++v) {
    const __m512 b = (kMasked && v == NV - 1) ? _mm512_maskz_loadu_ps(m, bias + v * kLanes)
                                              : _mm512_loadu_ps(bias + v * kLanes);
    for (int p = 0; p < P; ++p) acc[p][v] = b;
  }
  for (int kh = kh_begin; kh < kh_end; ++kh) {
    const float* x = row[kh];
    const float* wr = w + kh * 3 * Ci * Co;
    for (int j = j_begin; j < j_end; ++j) {
      __m512 wv[NV];
      for (int v = 0; v < NV; ++v)
        wv[v] = (kMasked && v == NV - 1) ? _mm512_maskz_loadu_ps(m, wr + j * Co + v * kLanes)
                                         : _mm512_loadu_ps(wr + j * Co + v * kLanes);
      for (int p = 0; p < P; ++p) {
        const __m512 xb = _mm512_set1_ps(x[x0 + p * x_step + j]);
        for (int v = 0; v < NV; ++v) acc[p][v] = _mm512_fmadd_ps(xb, wv[v], acc[p][v]);
      }
    }
  }
  for (int p = 0; p < P; ++p)
    for (int v = 0; v < NV; ++v) {
      const __m512 r = clamp(acc[p][v], lo, hi);
      if (kMasked && v == NV - 1) _mm512_mask_storeu_ps(o + p * Co + v * kLanes, m, r);
      else _mm512_storeu_ps(o + p * Co + v * kLanes, r);
    }
}

// Output pixels per stem block.
constexpr int kStemPixels = 8;

template <int NV, bool kMasked>
void stem_row_channels(const Conv2dGeom& g, const float* const row[3], int kh_begin, int kh_end, Columns cols,
                       const float* w, const float* bias, __m512 lo, __m512 hi, __mmask16 m, float* orow) {
  const Index Ci = g.in_channels, Co = g.out_channels, S = g.stride;
  auto border = [&](int ow) {
    const int iw0 = ow * g.stride - g.pad_left;
    const int kw_begin = imax(0, -iw0), kw_end = imin(3, g.in_w - iw0);
    // x0 may be -Ci (left pad) but j starts at kw_begin * Ci, so every index read is inside the row
    stem_block<1, NV, kMasked>(g, row, kh_begin, kh_end, iw0 * Ci, 0,
                               kw_begin * static_cast<int>(Ci), kw_end * static_cast<int>(Ci), w, bias, lo,
                               hi, m, orow + ow * Co);
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

void dwconv3x3_s1_avx512_16c(const Conv2dGeom& g, const float* in, const float* w, const float* bias,
                             float* out, int row_begin, int row_end, Clamp c) {
  dwconv3x3_avx512<1>(g, in, w, bias, out, row_begin, row_end, c);
}

void dwconv3x3_s2_avx512_16c(const Conv2dGeom& g, const float* in, const float* w, const float* bias,
                             float* out, int row_begin, int row_end, Clamp c) {
  dwconv3x3_avx512<2>(g, in, w, bias, out, row_begin, row_end, c);
}

// Any Cin, any Cout, stride 1 or 2. Output channels in chunks of 32 (two zmm), 8 pixels per block;
// up to 8 output channels go to the AVX2 kernel.
void conv3x3_stem_avx512(const Conv2dGeom& g, const float* in, const float* w, const float* bias, float* out,
                         int row_begin, int row_end, Clamp c) {
  const int Co = g.out_channels;
  // Up to 8 output channels (alpha 0.25) would leave half of every zmm FMA idle; the AVX2 kernel
  // (8-lane vectors, a plain function of another translation unit) measured about 25% faster.
  if (Co <= 8) {
    conv3x3_stem_avx2(g, in, w, bias, out, row_begin, row_end, c);
    return;
  }
  const Index in_row = static_cast<Index>(g.in_w) * g.in_channels;
  const Index out_row = static_cast<Index>(g.out_w) * Co;
  const Columns cols = interior_columns(g.in_w, g.out_w, g.stride, g.pad_left);
  const __m512 lo = _mm512_set1_ps(c.min), hi = _mm512_set1_ps(c.max);
  for (int oh = row_begin; oh < row_end; ++oh) {
    const int ih0 = oh * g.stride - g.pad_top;
    const int kh_begin = imax(0, -ih0), kh_end = imin(3, g.in_h - ih0);
    const float* row[3] = {nullptr, nullptr, nullptr};
    for (int kh = kh_begin; kh < kh_end; ++kh) row[kh] = in + (ih0 + kh) * in_row;
    float* orow = out + oh * out_row;
    int c0 = 0;
    for (; c0 + 2 * kLanes <= Co; c0 += 2 * kLanes)
      stem_row_channels<2, false>(g, row, kh_begin, kh_end, cols, w + c0, bias + c0, lo, hi, 0xFFFF, orow + c0);
    const int rem = Co - c0;
    if (rem > kLanes)
      stem_row_channels<2, true>(g, row, kh_begin, kh_end, cols, w + c0, bias + c0, lo, hi,
                                 lane_mask(rem - kLanes), orow + c0);
    else if (rem == kLanes)
      stem_row_channels<1, false>(g, row, kh_begin, kh_end, cols, w + c0, bias + c0, lo, hi, 0xFFFF, orow + c0);
    else if (rem > 0)
      stem_row_channels<1, true>(g, row, kh_begin, kh_end, cols, w + c0, bias + c0, lo, hi, lane_mask(rem),
                                 orow + c0);
  }
}

// ------------------------------------------------------------------------- global average pool

// Per block of 16 channels: four float32 accumulators over runs of at most 32 pixels (so each sums
// at most 8 values), then each run's total is added to a float64 sum. Precise for any pixel count
// and still one pass of cheap float adds.
void global_avg_pool_avx512(const float* in, int hw, int channels, float* out) {
  constexpr int kRun = 32;
  const Index C = channels;
  const __m512d n = _mm512_set1_pd(static_cast<double>(hw));
  for (int c0 = 0; c0 < channels; c0 += kLanes) {
    const __mmask16 m = lane_mask(channels - c0);
    const float* base = in + c0;
    __m512d sum_lo = _mm512_setzero_pd(), sum_hi = _mm512_setzero_pd();
    for (int p0 = 0; p0 < hw; p0 += kRun) {
      const int p1 = imin(hw, p0 + kRun);
      __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      int p = p0;
      for (; p + 4 <= p1; p += 4) {
        const float* x = base + p * C;
        a0 = _mm512_add_ps(a0, _mm512_maskz_loadu_ps(m, x));
        a1 = _mm512_add_ps(a1, _mm512_maskz_loadu_ps(m, x + C));
        a2 = _mm512_add_ps(a2, _mm512_maskz_loadu_ps(m, x + 2 * C));
        a3 = _mm512_add_ps(a3, _mm512_maskz_loadu_ps(m, x + 3 * C));
      }
      for (; p < p1; ++p) a0 = _mm512_add_ps(a0, _mm512_maskz_loadu_ps(m, base + p * C));
      const __m512 s = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
      sum_lo = _mm512_add_pd(sum_lo, _mm512_cvtps_pd(_mm512_castps512_ps256(s)));
      sum_hi = _mm512_add_pd(sum_hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1))));
    }
    const __m256 mean_lo = _mm512_cvtpd_ps(_mm512_div_pd(sum_lo, n));
    const __m256 mean_hi = _mm512_cvtpd_ps(_mm512_div_pd(sum_hi, n));
    const __m512 mean = _mm512_castpd_ps(
        _mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(mean_lo)), _mm256_castps_pd(mean_hi), 1));
    _mm512_mask_storeu_ps(out + c0, m, mean);
  }
}

}  // namespace mbf
