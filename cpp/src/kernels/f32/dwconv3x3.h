// Depthwise 3x3 convolution, stride 1 and 2, NHWC float32: one implementation for every vector
// layer V (kernels/simd/vec_<isa>.h). Included only by an ISA's translation unit, after its vector
// header; MBF_DEFINE_DWCONV3X3 defines the named entry points there.
//
// Channels in blocks of V::kLanes (one register), output pixels in blocks of up to V::kDwPixels
// (one accumulator each); the inputs of a kernel row are loaded once per block and feed every tap
// that uses them. Loop order: channel tiles of V::kDwTileChannels, vertical strips of output
// columns sized so that three input rows of a strip stay in L1 (V::kDwStripBytes), the output rows
// of the requested range, the pixel blocks of the strip, the channel blocks of the tile. Input and
// output are walked in contiguous runs of a tile's channels, each output row finds two of its
// three input rows in L1, and a tile's weights stay in L1.
//
// Padding costs no branch per pixel: an input column in the padding is a masked load with no
// active lane (no memory access, zeros), and a kernel row in the padding is skipped once per
// block. Bias and clamp are applied in registers before the single store of each output vector.
// A channel count that is not a multiple of the lane count ends with a masked block; with
// V::kDwAlignedHead and C a multiple of the lanes, a narrower first block makes every other
// block's loads aligned to the vector size (unaligned 64-byte loads always cross a cache line).
#pragma once

#include "kernels/kernels_internal.h"
#include "kernels/simd/vec_common.h"

namespace mbf {
namespace {

// P consecutive output pixels (stride S) of one block of channels (kMasked: the lanes in m).
// `row[kh]` points at the block's first channel in input row oh*S - pad_top + kh; rows 0 and 2
// are read only when has_top / has_bottom say they are inside the image (the middle one always
// is). x0 is the offset of the input pixel under the first pixel's left tap, C the channel count
// (the pixel stride); w and bias point at the block's channels.
//
// `left` means the block starts at output column 0 and that column's left tap is in the padding,
// `right` that the block's last pixel has its right tap in the padding. Those inputs (the first /
// last of the block's input run, never any other, since only the outermost columns of a row can
// touch the padding) are loaded with no active lane, which yields zeros; the mask is the only
// change, so the block's code is the same for border and interior pixels. (A padding tap thus
// adds 0 * w, which is exactly nothing for any finite weight; only an infinite or NaN weight would
// differ from skipping the tap.) Taps are applied kernel row by kernel row, left to right, so
// every vector layer adds the same products in the same order: the results are the same bits
// whatever the register blocking.
template <class V, int S, int P, bool kMasked>
MBF_INLINE void dw_block(const float* const row[3], bool has_top, bool has_bottom, bool left, bool right,
                         Index x0, Index C, const float* w, const float* bias, typename V::Vec lo,
                         typename V::Vec hi, typename V::Mask m, float* o) {
  using Vec = typename V::Vec;
  using Mask = typename V::Mask;
  constexpr int kInputs = (P - 1) * S + 3;
  const Mask m_first = left ? V::mask_none() : m, m_last = right ? V::mask_none() : m;
  // A padding input's address is replaced by the next real one (the load is masked off anyway),
  // so that no address outside the row is formed.
  const Index first = left ? x0 + C : x0;
  const Index last = right ? first : x0 + (kInputs - 1) * C;
  Vec acc[P];
  const Vec b = load_maybe_masked<V, kMasked>(bias, m);
  for (int p = 0; p < P; ++p) acc[p] = b;
  auto one_row = [&](const float* x, int kh) MBF_LAMBDA_INLINE {
    opaque(x);
    if constexpr (V::kDwPreloadRow) {
      // Enough registers to keep the kernel row's whole input run live, taps applied tap-major so
      // that consecutive FMAs go to different accumulators.
      Vec xv[kInputs];
      xv[0] = V::load_masked(x + first, m_first);
      for (int q = 1; q < kInputs - 1; ++q) xv[q] = load_maybe_masked<V, kMasked>(x + x0 + q * C, m);
      xv[kInputs - 1] = V::load_masked(x + last, m_last);
      for (int k = 0; k < 3; ++k) {
        const Vec wk = load_maybe_masked<V, kMasked>(w + (3 * kh + k) * C, m);
        for (int p = 0; p < P; ++p) acc[p] = V::fma(xv[p * S + k], wk, acc[p]);
      }
    } else {
      // Inputs streamed through three registers (keeping a whole kernel row live would spill).
      const Vec w0 = load_maybe_masked<V, kMasked>(w + (3 * kh) * C, m);
      const Vec w1 = load_maybe_masked<V, kMasked>(w + (3 * kh + 1) * C, m);
      const Vec w2 = load_maybe_masked<V, kMasked>(w + (3 * kh + 2) * C, m);
      auto input = [&](int q) MBF_LAMBDA_INLINE {
        if (q == 0) return V::load_masked(x + first, m_first);
        if (q == kInputs - 1) return V::load_masked(x + last, m_last);
        return load_maybe_masked<V, kMasked>(x + x0 + q * C, m);
      };
      // Each input is loaded once: with stride 1 the window slides by one (a, b <- b, c), with
      // stride 2 by two (a <- c).
      Vec a = input(0), bb = S == 1 ? input(1) : a;
      for (int p = 0; p < P; ++p) {
        if (S == 2) bb = input(2 * p + 1);
        const Vec c = input(p * S + 2);
        acc[p] = V::fma(a, w0, acc[p]);
        acc[p] = V::fma(bb, w1, acc[p]);
        acc[p] = V::fma(c, w2, acc[p]);
        a = S == 1 ? bb : c;
        bb = c;
      }
    }
  };
  if (has_top) one_row(row[0], 0);
  one_row(row[1], 1);
  if (has_bottom) one_row(row[2], 2);
  for (int p = 0; p < P; ++p) store_maybe_masked<V, kMasked>(o + p * C, clamp<V>(acc[p], lo, hi), m);
}

// Channels [0, head) form a first, narrower block when that makes every other block's loads
// aligned to the vector size: possible when all pixels share the input's alignment (C a multiple
// of the lanes). Measured worth it from C = 128 (AVX-512: about 15% there, up to 1.8x on the
// 256..1024-channel layers); at 32 and 64 the extra masked block costs more than the split loads
// it saves.
template <class V>
int dw_aligned_head(const float* in, int C) {
  if constexpr (!V::kDwAlignedHead) {
    return 0;
  } else {
    constexpr int kBytes = V::kLanes * static_cast<int>(sizeof(float));
    const auto a = reinterpret_cast<std::uintptr_t>(in);
    if (C % V::kLanes != 0 || C < 128 || a % sizeof(float) != 0) return 0;
    return static_cast<int>((kBytes - a % kBytes) % kBytes / sizeof(float));
  }
}

template <class V, int S>
void dwconv3x3(const Conv2dGeom& g, const float* in, const float* w, const float* bias, float* out, int row_begin,
               int row_end, Clamp c) {
  constexpr int L = V::kLanes;
  constexpr int kTileBlocks = V::kDwTileChannels / L;
  const int C = g.in_channels;
  const Index in_row = static_cast<Index>(g.in_w) * C;
  const Index out_row = static_cast<Index>(g.out_w) * C;
  const typename V::Vec lo = V::set1(c.min), hi = V::set1(c.max);
  const typename V::Mask all = V::mask_all();
  // Only the outermost columns can reach into the padding (the middle tap is always inside).
  const bool left_pad = g.pad_left > 0;
  const bool right_pad = (g.out_w - 1) * S - g.pad_left + 2 >= g.in_w;
  const int head = dw_aligned_head<V>(in, C);
  auto block_end = [&](int c0) { return c0 < head ? head : imin(C, c0 + L); };
  for (int t0 = 0; t0 < C;) {
    int t1 = t0;
    for (int k = 0; k < kTileBlocks && t1 < C; ++k) t1 = block_end(t1);
    // Strip width in output pixels: a multiple of 8 whose input rows fit the budget, at least 8.
    const int strip_inputs = V::kDwStripBytes / (3 * static_cast<int>(sizeof(float)) * (t1 - t0));
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
        for_dw_blocks<V::kDwPixels>(s0, s1, [&](auto count, int ow) MBF_LAMBDA_INLINE {
          constexpr int P = decltype(count)::value;
          const bool left = left_pad && ow == 0, right = right_pad && ow + P == g.out_w;
          const Index x0 = static_cast<Index>(ow * S - g.pad_left) * C;
          float* o = orow + ow * C;
          for (int c0 = t0; c0 < t1;) {
            const int c1 = block_end(c0);
            const float* r[3] = {rows[0] + c0, rows[1] + c0, rows[2] + c0};
            if (c1 - c0 == L)
              dw_block<V, S, P, false>(r, has_top, has_bottom, left, right, x0, C, w + c0, bias + c0, lo, hi, all,
                                       o + c0);
            else
              dw_block<V, S, P, true>(r, has_top, has_bottom, left, right, x0, C, w + c0, bias + c0, lo, hi,
                                      V::mask_first(c1 - c0), o + c0);
            c0 = c1;
          }
        });
      }
    }
    t0 = t1;
  }
}

}  // namespace
}  // namespace mbf

// Defines the stride-1 and stride-2 entry points (declared in kernels_internal.h) for vector
// layer VEC.
#define MBF_DEFINE_DWCONV3X3(VEC, NAME_S1, NAME_S2)                                                      \
  namespace mbf {                                                                                       \
  void NAME_S1(const Conv2dGeom& g, const float* in, const float* w, const float* bias, float* out,       \
               int row_begin, int row_end, Clamp c) {                                                   \
    dwconv3x3<VEC, 1>(g, in, w, bias, out, row_begin, row_end, c);                                      \
  }                                                                                                     \
  void NAME_S2(const Conv2dGeom& g, const float* in, const float* w, const float* bias, float* out,       \
               int row_begin, int row_end, Clamp c) {                                                   \
    dwconv3x3<VEC, 2>(g, in, w, bias, out, row_begin, row_end, c);                                      \
  }                                                                                                     \
  }
