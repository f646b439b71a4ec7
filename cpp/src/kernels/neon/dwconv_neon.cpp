// NEON depthwise 3x3 (stride 1 and 2), the 3x3 stem convolution and global average pooling, for
// aarch64 (ARMv8.0 Advanced SIMD) and 32-bit armv7 with NEON + VFPv4 (-mfpu=neon-vfpv4).
//
// Layout and loop order follow the x86 kernels: NHWC; channel tiles and column strips (cache
// blocking), output rows, pixel blocks, 4-channel q-register blocks inside. Output columns whose three taps all lie inside the
// input row ("interior" columns) run through register-blocked code without any padding test; the
// at most one border column on each side goes through a per-pixel path whose tap range is
// computed once. Rows outside the image are skipped by the kernel-row range [kh_begin, kh_end).
// Channels past the last multiple of 4 (C % 4 of them) are done by a scalar tail.
//
// No inline function or template shared with other translation units may be used here (see
// kernels_internal.h): only intrinsics and helpers with internal linkage.
#include <arm_neon.h>

#include <cstddef>

#include "kernels/kernels_internal.h"

namespace mbf {
namespace {

using Index = std::ptrdiff_t;

#define MBF_NEON_INLINE inline __attribute__((always_inline))

#if defined(__aarch64__)
// 32 q registers: 8 accumulators + 3 weights + 3 streamed inputs.
constexpr int kDwPixels = 8;
// 4 pixels x 4 vectors = 16 accumulators + 4 weights + 1 broadcast.
constexpr int kStemPixels = 4;
#else
// 16 q registers: 4 accumulators + 3 weights + 3 inputs.
constexpr int kDwPixels = 4;
// 2 pixels x 4 vectors = 8 accumulators + 4 weights + 1 broadcast.
constexpr int kStemPixels = 2;
#endif
constexpr int kStemVectors = 4;  // 16 output channels per stem chunk

MBF_NEON_INLINE int imin(int a, int b) { return a < b ? a : b; }
MBF_NEON_INLINE int imax(int a, int b) { return a > b ? a : b; }
// Same result as std::min(std::max(v, lo), hi), the scalar reference.
MBF_NEON_INLINE float clamp1(float v, float lo, float hi) {
  const float x = v < lo ? lo : v;
  return hi < x ? hi : x;
}
MBF_NEON_INLINE float32x4_t clamp4(float32x4_t v, float32x4_t lo, float32x4_t hi) {
  return vminq_f32(vmaxq_f32(v, lo), hi);
}

// Output columns whose three taps all fall inside a row of width in_w: [lo, hi), lo <= hi.
struct Columns {
  int lo, hi;
};
Columns interior_columns(int in_w, int out_w, int stride, int pad_left) {
  Columns c;
  c.lo = imin(pad_left, out_w);  // pads are 0 or 1
  const int last = in_w - 3 + pad_left;  // largest ow * stride whose right tap is inside
  c.hi = last < 0 ? 0 : imin(last / stride + 1, out_w);
  if (c.hi < c.lo) c.hi = c.lo;
  return c;
}

// The input rows of output row oh: row[kh] for kh in [kh_begin, kh_end) (others never read and
// pointed at the image start, so no pointer outside the image is formed).
struct Rows {
  const float* row[3];
  int kh_begin, kh_end;
};
Rows input_rows(const float* in, Index in_row, int in_h, int oh, int stride, int pad_top) {
  Rows r;
  const int ih0 = oh * stride - pad_top;
  r.kh_begin = imax(0, -ih0);
  r.kh_end = imin(3, in_h - ih0);
  for (int kh = 0; kh < 3; ++kh)
    r.row[kh] = (kh >= r.kh_begin && kh < r.kh_end) ? in + (ih0 + kh) * in_row : in;
  return r;
}

// ------------------------------------------------------------------------- depthwise 3x3

// P interior output pixels (stride S) of one 4-channel block. x0: offset of the first tap of the
// first pixel in a row. Inputs are streamed (each loaded once per kernel row).
template <int S, int P>
MBF_NEON_INLINE void dw_pixels(const Rows& r, Index c0, Index x0, Index C, const float* w, const float* bias,
                               float32x4_t lo, float32x4_t hi, float* o) {
  float32x4_t acc[P];
  const float32x4_t b = vld1q_f32(bias + c0);
  for (int p = 0; p < P; ++p) acc[p] = b;
  for (int kh = r.kh_begin; kh < r.kh_end; ++kh) {
    const float* x = r.row[kh] + x0 + c0;
    const float* wk = w + 3 * kh * C + c0;
    const float32x4_t w0 = vld1q_f32(wk), w1 = vld1q_f32(wk + C), w2 = vld1q_f32(wk + 2 * C);
    float32x4_t va = vld1q_f32(x);
    float32x4_t vb = S == 1 ? vld1q_f32(x + C) : va;
    for (int p = 0; p < P; ++p) {
      if (S == 2) vb = vld1q_f32(x + (2 * p + 1) * C);
      const float32x4_t vc = vld1q_f32(x + (p * S + 2) * C);
      acc[p] = vfmaq_f32(acc[p], va, w0);
      acc[p] = vfmaq_f32(acc[p], vb, w1);
      acc[p] = vfmaq_f32(acc[p], vc, w2);
      va = S == 1 ? vb : vc;
      vb = vc;
    }
  }
  for (int p = 0; p < P; ++p) vst1q_f32(o + p * C + c0, clamp4(acc[p], lo, hi));
}

// P interior pixels, the 4-channel blocks of [cb, ce).
template <int S, int P>
void dw_interior(const Rows& r, Index x0, Index C, Index cb, Index ce, const float* w, const float* bias,
                 float32x4_t lo, float32x4_t hi, float* o) {
  for (Index c0 = cb; c0 < ce; c0 += 4) dw_pixels<S, P>(r, c0, x0, C, w, bias, lo, hi, o);
}

// One border pixel whose taps are [kw_begin, kw_end) (input column iw0 + kw), the 4-channel
// blocks of [cb, ce).
void dw_border(const Rows& r, int iw0, int kw_begin, int kw_end, Index C, Index cb, Index ce, const float* w,
               const float* bias, float32x4_t lo, float32x4_t hi, float* o) {
  for (Index c0 = cb; c0 < ce; c0 += 4) {
    float32x4_t acc = vld1q_f32(bias + c0);
    for (int kh = r.kh_begin; kh < r.kh_end; ++kh)
      for (int kw = kw_begin; kw < kw_end; ++kw)
        acc = vfmaq_f32(acc, vld1q_f32(r.row[kh] + (iw0 + kw) * C + c0), vld1q_f32(w + (3 * kh + kw) * C + c0));
    vst1q_f32(o + c0, clamp4(acc, lo, hi));
  }
}

// Channels [C4, C) of a whole output row, scalar.
void dw_tail_row(const Conv2dGeom& g, const Rows& r, Index C4, const float* w, const float* bias, Clamp c,
                 float* orow) {
  const Index C = g.in_channels;
  for (int ow = 0; ow < g.out_w; ++ow) {
    const int iw0 = ow * g.stride - g.pad_left;
    const int kw_begin = imax(0, -iw0), kw_end = imin(3, g.in_w - iw0);
    for (Index ch = C4; ch < C; ++ch) {
      float acc = bias[ch];
      for (int kh = r.kh_begin; kh < r.kh_end; ++kh)
        for (int kw = kw_begin; kw < kw_end; ++kw) acc += r.row[kh][(iw0 + kw) * C + ch] * w[(3 * kh + kw) * C + ch];
      orow[ow * C + ch] = clamp1(acc, c.min, c.max);
    }
  }
}

// Cache blocking as in the x86 kernels: channel tiles of at most kDwTileChannels, and within a
// tile vertical strips of output columns whose three input rows (of the tile's channels) take
// about kDwStripBytes, so an input row stays in L1 for the three output rows that read it.
constexpr Index kDwTileChannels = 64;
constexpr Index kDwStripBytes = 16 * 1024;

template <int S>
void dwconv3x3_neon(const Conv2dGeom& g, const float* in, const float* w, const float* bias, float* out,
                    int row_begin, int row_end, Clamp c) {
  const Index C = g.in_channels;
  const Index C4 = C & ~static_cast<Index>(3);
  const Index in_row = static_cast<Index>(g.in_w) * C;
  const Index out_row = static_cast<Index>(g.out_w) * C;
  const float32x4_t lo = vdupq_n_f32(c.min), hi = vdupq_n_f32(c.max);
  const Columns cols = interior_columns(g.in_w, g.out_w, S, g.pad_left);
  for (Index t0 = 0; t0 < C4; t0 += kDwTileChannels) {
    const Index t1 = C4 - t0 < kDwTileChannels ? C4 : t0 + kDwTileChannels;
    const int strip_inputs = static_cast<int>(kDwStripBytes / (3 * static_cast<Index>(sizeof(float)) * (t1 - t0)));
    const int strip = imax(8, ((strip_inputs - 3) / S + 1) / 8 * 8);
    auto border = [&](const Rows& r, int ow, float* orow) {
      const int iw0 = ow * S - g.pad_left;
      dw_border(r, iw0, imax(0, -iw0), imin(3, g.in_w - iw0), C, t0, t1, w, bias, lo, hi, orow + ow * C);
    };
    for (int s0 = 0; s0 < g.out_w; s0 += strip) {
      const int s1 = imin(g.out_w, s0 + strip);
      // [s0, s1) = left border columns, interior [i0, i1), right border columns.
      const int i0 = imin(s1, imax(s0, cols.lo)), i1 = imax(i0, imin(s1, cols.hi));
      for (int oh = row_begin; oh < row_end; ++oh) {
        const Rows r = input_rows(in, in_row, g.in_h, oh, S, g.pad_top);
        float* orow = out + oh * out_row;
        for (int ow = s0; ow < i0; ++ow) border(r, ow, orow);
        int ow = i0;
        for (; ow + kDwPixels <= i1; ow += kDwPixels)
          dw_interior<S, kDwPixels>(r, static_cast<Index>(ow * S - g.pad_left) * C, C, t0, t1, w, bias, lo, hi,
                                    orow + ow * C);
#if defined(__aarch64__)
        for (; ow + 4 <= i1; ow += 4)
          dw_interior<S, 4>(r, static_cast<Index>(ow * S - g.pad_left) * C, C, t0, t1, w, bias, lo, hi,
                            orow + ow * C);
#endif
        for (; ow + 2 <= i1; ow += 2)
          dw_interior<S, 2>(r, static_cast<Index>(ow * S - g.pad_left) * C, C, t0, t1, w, bias, lo, hi,
                            orow + ow * C);
        for (; ow < i1; ++ow)
          dw_interior<S, 1>(r, static_cast<Index>(ow * S - g.pad_left) * C, C, t0, t1, w, bias, lo, hi,
                            orow + ow * C);
        for (ow = i1; ow < s1; ++ow) border(r, ow, orow);
      }
    }
  }
  if (C4 < C) {
    for (int oh = row_begin; oh < row_end; ++oh)
      dw_tail_row(g, input_rows(in, in_row, g.in_h, oh, S, g.pad_top), C4, w, bias, c, out + oh * out_row);
  }
}

// ------------------------------------------------------------------------- stem 3x3 conv

// P output pixels x NV vectors of output channels [c0, c0 + 4 NV). The taps of a kernel row run
// over j = kw * Cin + ci in [j_begin, j_end), input x[x0 + p * x_step + j]; each weight vector is
// loaded once per j and shared by the P pixels, each input value broadcast once.
template <int P, int NV>
MBF_NEON_INLINE void stem_pixels(const Rows& r, Index x0, Index x_step, Index j_begin, Index j_end, Index Ci,
                                 Index Co, Index c0, const float* w, const float* bias, float32x4_t lo,
                                 float32x4_t hi, float* o) {
  float32x4_t acc[P][NV];
  for (int v = 0; v < NV; ++v) {
    const float32x4_t b = vld1q_f32(bias + c0 + 4 * v);
    for (int p = 0; p < P; ++p) acc[p][v] = b;
  }
  for (int kh = r.kh_begin; kh < r.kh_end; ++kh) {
    const float* x = r.row[kh];
    const float* wr = w + kh * 3 * Ci * Co + c0;
    for (Index j = j_begin; j < j_end; ++j) {
      float32x4_t wv[NV];
      for (int v = 0; v < NV; ++v) wv[v] = vld1q_f32(wr + j * Co + 4 * v);
      for (int p = 0; p < P; ++p) {
        const float32x4_t xb = vld1q_dup_f32(x + (x0 + p * x_step + j));
        for (int v = 0; v < NV; ++v) acc[p][v] = vfmaq_f32(acc[p][v], xb, wv[v]);
      }
    }
  }
  for (int p = 0; p < P; ++p)
    for (int v = 0; v < NV; ++v) vst1q_f32(o + p * Co + c0 + 4 * v, clamp4(acc[p][v], lo, hi));
}

// One output row, output channels [c0, c0 + 4 NV).
template <int NV>
void stem_row(const Conv2dGeom& g, const Rows& r, Columns cols, Index c0, const float* w, const float* bias,
              float32x4_t lo, float32x4_t hi, float* orow) {
  const Index Ci = g.in_channels, Co = g.out_channels, S = g.stride;
  auto border = [&](int ow) {
    const int iw0 = ow * g.stride - g.pad_left;
    const int kw_begin = imax(0, -iw0), kw_end = imin(3, g.in_w - iw0);
    stem_pixels<1, NV>(r, iw0 * Ci, 0, kw_begin * Ci, kw_end * Ci, Ci, Co, c0, w, bias, lo, hi, orow + ow * Co);
  };
  for (int ow = 0; ow < cols.lo; ++ow) border(ow);
  int ow = cols.lo;
  for (; ow + kStemPixels <= cols.hi; ow += kStemPixels)
    stem_pixels<kStemPixels, NV>(r, (ow * S - g.pad_left) * Ci, S * Ci, 0, 3 * Ci, Ci, Co, c0, w, bias, lo, hi,
                                 orow + ow * Co);
  for (; ow < cols.hi; ++ow)
    stem_pixels<1, NV>(r, (ow * S - g.pad_left) * Ci, 0, 0, 3 * Ci, Ci, Co, c0, w, bias, lo, hi, orow + ow * Co);
  for (ow = cols.hi; ow < g.out_w; ++ow) border(ow);
}

// Output channels [Co4, Co) of one row, scalar.
void stem_tail_row(const Conv2dGeom& g, const Rows& r, Index Co4, const float* w, const float* bias, Clamp c,
                   float* orow) {
  const Index Ci = g.in_channels, Co = g.out_channels;
  for (int ow = 0; ow < g.out_w; ++ow) {
    const int iw0 = ow * g.stride - g.pad_left;
    const int kw_begin = imax(0, -iw0), kw_end = imin(3, g.in_w - iw0);
    for (Index co = Co4; co < Co; ++co) {
      float acc = bias[co];
      for (int kh = r.kh_begin; kh < r.kh_end; ++kh)
        for (int kw = kw_begin; kw < kw_end; ++kw)
          for (Index ci = 0; ci < Ci; ++ci)
            acc += r.row[kh][(iw0 + kw) * Ci + ci] * w[((3 * kh + kw) * Ci + ci) * Co + co];
      orow[ow * Co + co] = clamp1(acc, c.min, c.max);
    }
  }
}

}  // namespace

void dwconv3x3_s1_neon_4c(const Conv2dGeom& g, const float* in, const float* w, const float* bias, float* out,
                          int row_begin, int row_end, Clamp c) {
  dwconv3x3_neon<1>(g, in, w, bias, out, row_begin, row_end, c);
}

void dwconv3x3_s2_neon_4c(const Conv2dGeom& g, const float* in, const float* w, const float* bias, float* out,
                          int row_begin, int row_end, Clamp c) {
  dwconv3x3_neon<2>(g, in, w, bias, out, row_begin, row_end, c);
}

// Any Cin, any Cout, stride 1 or 2: output channels in chunks of 16 (four q registers), then
// single vectors, then a scalar tail.
void conv3x3_stem_neon(const Conv2dGeom& g, const float* in, const float* w, const float* bias, float* out,
                       int row_begin, int row_end, Clamp c) {
  const Index Co = g.out_channels;
  const Index Co4 = Co & ~static_cast<Index>(3);
  const Index in_row = static_cast<Index>(g.in_w) * g.in_channels;
  const Index out_row = static_cast<Index>(g.out_w) * Co;
  const Columns cols = interior_columns(g.in_w, g.out_w, g.stride, g.pad_left);
  const float32x4_t lo = vdupq_n_f32(c.min), hi = vdupq_n_f32(c.max);
  for (int oh = row_begin; oh < row_end; ++oh) {
    const Rows r = input_rows(in, in_row, g.in_h, oh, g.stride, g.pad_top);
    float* orow = out + oh * out_row;
    Index c0 = 0;
    for (; c0 + 4 * kStemVectors <= Co4; c0 += 4 * kStemVectors)
      stem_row<kStemVectors>(g, r, cols, c0, w, bias, lo, hi, orow);
    for (; c0 < Co4; c0 += 4) stem_row<1>(g, r, cols, c0, w, bias, lo, hi, orow);
    if (Co4 < Co) stem_tail_row(g, r, Co4, w, bias, c, orow);
  }
}

// ------------------------------------------------------------------------- global average pool

// Per block of 4 channels: float32 sums over runs of at most 32 pixels (two accumulators), each
// run's total added to float64 sums; the scalar tail sums in float64 directly.
void global_avg_pool_neon(const float* in, int hw, int channels, float* out) {
  constexpr int kRun = 32;
  const Index C = channels;
  const Index C4 = C & ~static_cast<Index>(3);
  for (Index c0 = 0; c0 < C4; c0 += 4) {
    const float* base = in + c0;
    double sum[4] = {0.0, 0.0, 0.0, 0.0};
    for (int p0 = 0; p0 < hw; p0 += kRun) {
      const int p1 = imin(hw, p0 + kRun);
      float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0;
      int p = p0;
      for (; p + 2 <= p1; p += 2) {
        a0 = vaddq_f32(a0, vld1q_f32(base + p * C));
        a1 = vaddq_f32(a1, vld1q_f32(base + (p + 1) * C));
      }
      if (p < p1) a0 = vaddq_f32(a0, vld1q_f32(base + p * C));
      float s[4];
      vst1q_f32(s, vaddq_f32(a0, a1));
      for (int l = 0; l < 4; ++l) sum[l] += s[l];
    }
    for (int l = 0; l < 4; ++l) out[c0 + l] = static_cast<float>(sum[l] / hw);
  }
  for (Index ch = C4; ch < C; ++ch) {
    double sum = 0.0;
    for (int p = 0; p < hw; ++p) sum += in[p * C + ch];
    out[ch] = static_cast<float>(sum / hw);
  }
}

}  // namespace mbf
