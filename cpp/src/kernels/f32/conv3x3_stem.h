// The standard 3x3 convolution of the stem (any Cin, any Cout, stride 1 or 2), NHWC float32 with
// HWIO weights: one implementation for every vector layer V. Included only by an ISA's
// translation unit, after its vector header.
//
// Output channels are vectorised (chunks of V::kStemVectors registers per pixel, the last one
// masked when Cout is not a multiple of the lanes), V::kStemPixels output pixels share every
// weight load, and each input value is broadcast once per pixel. For a kernel row, the taps
// (kw, ci) are contiguous in both the input (3 * Cin floats from the window's first pixel) and the
// HWIO weights, so the loop runs over j = kw * Cin + ci in [j_begin, j_end): the whole row for
// interior pixels, the columns inside the image for border pixels. Every vector layer adds the
// products in the same order (kernel rows, then j), so the results are the same bits.
#pragma once

#include "kernels/kernels_internal.h"
#include "kernels/simd/vec_common.h"

namespace mbf {
namespace {

// Output columns whose three taps all fall inside a row of width in_w: [lo, hi), with lo <= hi.
struct Columns {
  int lo, hi;
};
MBF_INLINE Columns interior_columns(int in_w, int out_w, int stride, int pad_left) {
  Columns c;
  c.lo = imin(pad_left, out_w);  // pad_left is 0 or 1: column 0 is a border column iff it is 1
  const int last = in_w - 3 + pad_left;  // largest ow * stride with the right tap inside
  c.hi = last < 0 ? 0 : imin(last / stride + 1, out_w);
  if (c.hi < c.lo) c.hi = c.lo;
  return c;
}

// P output pixels x NV vectors of output channels (the last one masked by m when kMasked).
template <class V, int P, int NV, bool kMasked>
MBF_INLINE void stem_block(const Conv2dGeom& g, const float* const row[3], int kh_begin, int kh_end, Index x0,
                           Index x_step, int j_begin, int j_end, const float* w, const float* bias,
                           typename V::Vec lo, typename V::Vec hi, typename V::Mask m, float* o) {
  using Vec = typename V::Vec;
  constexpr int L = V::kLanes;
  const Index Ci = g.in_channels, Co = g.out_channels;
  Vec acc[P][NV];
  for (int v = 0; v < NV; ++v) {
    const Vec b = (kMasked && v == NV - 1) ? V::load_masked(bias + v * L, m) : V::load(bias + v * L);
    for (int p = 0; p < P; ++p) acc[p][v] = b;
  }
  for (int kh = kh_begin; kh < kh_end; ++kh) {
    const float* x = row[kh];
    const float* wr = w + kh * 3 * Ci * Co;
    for (int j = j_begin; j < j_end; ++j) {
      Vec wv[NV];
      for (int v = 0; v < NV; ++v)
        wv[v] = (kMasked && v == NV - 1) ? V::load_masked(wr + j * Co + v * L, m) : V::load(wr + j * Co + v * L);
      for (int p = 0; p < P; ++p) {
        const Vec xb = V::broadcast(x + x0 + p * x_step + j);
        for (int v = 0; v < NV; ++v) acc[p][v] = V::fma(xb, wv[v], acc[p][v]);
      }
    }
  }
  for (int p = 0; p < P; ++p)
    for (int v = 0; v < NV; ++v) {
      const Vec r = clamp<V>(acc[p][v], lo, hi);
      if (kMasked && v == NV - 1) V::store_masked(o + p * Co + v * L, r, m);
      else V::store(o + p * Co + v * L, r);
    }
}

// One output row, NV vectors of output channels starting at w / bias / orow.
template <class V, int NV, bool kMasked>
void stem_row_channels(const Conv2dGeom& g, const float* const row[3], int kh_begin, int kh_end, Columns cols,
                       const float* w, const float* bias, typename V::Vec lo, typename V::Vec hi,
                       typename V::Mask m, float* orow) {
  const Index Ci = g.in_channels, Co = g.out_channels, S = g.stride;
  auto border = [&](int ow) {
    const int iw0 = ow * g.stride - g.pad_left;
    const int kw_begin = imax(0, -iw0), kw_end = imin(3, g.in_w - iw0);
    // x0 may be -Ci (left pad) but j starts at kw_begin * Ci, so every index read is inside the row
    stem_block<V, 1, NV, kMasked>(g, row, kh_begin, kh_end, iw0 * Ci, 0, kw_begin * static_cast<int>(Ci),
                                  kw_end * static_cast<int>(Ci), w, bias, lo, hi, m, orow + ow * Co);
  };
  for (int ow = 0; ow < cols.lo; ++ow) border(ow);
  for_pixel_blocks<V::kStemPixels>(cols.lo, cols.hi, [&](auto count, int ow) MBF_LAMBDA_INLINE {
    constexpr int P = decltype(count)::value;
    stem_block<V, P, NV, kMasked>(g, row, kh_begin, kh_end, (ow * S - g.pad_left) * Ci, S * Ci, 0,
                                  3 * static_cast<int>(Ci), w, bias, lo, hi, m, orow + ow * Co);
  });
  for (int ow = cols.hi; ow < g.out_w; ++ow) border(ow);
}

template <class V>
void conv3x3_stem(const Conv2dGeom& g, const float* in, const float* w, const float* bias, float* out,
                  int row_begin, int row_end, Clamp c) {
  constexpr int L = V::kLanes, NV = V::kStemVectors;
  static_assert(NV >= 2, "the remainder chunks below use 2 vectors");
  const int Co = g.out_channels;
  const Index in_row = static_cast<Index>(g.in_w) * g.in_channels;
  const Index out_row = static_cast<Index>(g.out_w) * Co;
  const Columns cols = interior_columns(g.in_w, g.out_w, g.stride, g.pad_left);
  const typename V::Vec lo = V::set1(c.min), hi = V::set1(c.max);
  const typename V::Mask all = V::mask_all();
  for (int oh = row_begin; oh < row_end; ++oh) {
    const int ih0 = oh * g.stride - g.pad_top;
    const int kh_begin = imax(0, -ih0), kh_end = imin(3, g.in_h - ih0);
    // Rows outside the image are skipped (kh_begin / kh_end); point them at the middle row.
    const float* mid = in + (ih0 + 1) * in_row;
    const float* row[3] = {kh_begin == 0 ? mid - in_row : mid, mid, kh_end == 3 ? mid + in_row : mid};
    float* orow = out + oh * out_row;
    int c0 = 0;
    for (; c0 + NV * L <= Co; c0 += NV * L)
      stem_row_channels<V, NV, false>(g, row, kh_begin, kh_end, cols, w + c0, bias + c0, lo, hi, all, orow + c0);
    if constexpr (NV > 2) {
      for (; c0 + 2 * L <= Co; c0 += 2 * L)
        stem_row_channels<V, 2, false>(g, row, kh_begin, kh_end, cols, w + c0, bias + c0, lo, hi, all, orow + c0);
    }
    const int rem = Co - c0;
    if (rem > L)
      stem_row_channels<V, 2, true>(g, row, kh_begin, kh_end, cols, w + c0, bias + c0, lo, hi,
                                    V::mask_first(rem - L), orow + c0);
    else if (rem == L)
      stem_row_channels<V, 1, false>(g, row, kh_begin, kh_end, cols, w + c0, bias + c0, lo, hi, all, orow + c0);
    else if (rem > 0)
      stem_row_channels<V, 1, true>(g, row, kh_begin, kh_end, cols, w + c0, bias + c0, lo, hi, V::mask_first(rem),
                                    orow + c0);
  }
}

}  // namespace
}  // namespace mbf

#define MBF_DEFINE_CONV3X3_STEM(VEC, NAME)                                                               \
  namespace mbf {                                                                                       \
  void NAME(const Conv2dGeom& g, const float* in, const float* w, const float* bias, float* out,          \
            int row_begin, int row_end, Clamp c) {                                                      \
    conv3x3_stem<VEC>(g, in, w, bias, out, row_begin, row_end, c);                                      \
  }                                                                                                     \
  }
