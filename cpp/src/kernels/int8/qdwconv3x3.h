// Depthwise 3x3 convolution on uint8 NHWC, stride 1 and 2: one implementation for every int8
// vector layer QV (its dw_* operations). Included only by an ISA's translation unit.
//
// Weights packed by pack_qdwconv3x3_weights: C int32 biases, C float32 scales, 9 x C int16 weights.
// Channels in blocks of QV::kDwLanes, output pixels in blocks of up to QV::kDwPixels (one
// accumulator each); a kernel row's inputs are streamed through three registers, each loaded once
// per block. Every input is widened to int16 minus the input zero point, so a tap in the padding
// (an input column left or right of the row, a kernel row above or below the image) adds exactly
// nothing: it is skipped, which is what a padding of zero points gives. The products are int16
// (exact: |x - zp| * |w| <= 255 * 128) added to int32 accumulators: exact sums, so the result is
// the same bits on every ISA. Requantisation as for the int8 GEMM.
#pragma once

#include "kernels/kernels_internal.h"
#include "kernels/simd/vec_common.h"

namespace mbf {
namespace {

template <class QV, int S, int P>
MBF_INLINE void qdw_block(const std::uint8_t* const row[3], bool has_top, bool has_bottom, bool left, bool right,
                          Index x0, Index C, const std::int16_t* w, const std::int32_t* bias, const float* scale,
                          typename QV::DwX zx, const typename QV::Params& q, typename QV::DwMask m, std::uint8_t* o) {
  using X = typename QV::DwX;
  constexpr int kInputs = (P - 1) * S + 3;
  typename QV::DwAcc acc[P];
  const typename QV::DwAcc b = QV::dw_load_bias(bias, m);
  for (int p = 0; p < P; ++p) acc[p] = b;
  auto one_row = [&](const std::uint8_t* x, int kh) MBF_LAMBDA_INLINE {
    const X w0 = QV::dw_load_w(w + (3 * kh) * C, m);
    const X w1 = QV::dw_load_w(w + (3 * kh + 1) * C, m);
    const X w2 = QV::dw_load_w(w + (3 * kh + 2) * C, m);
    // The first input of the run is in the padding when `left`, the last one when `right`: they
    // are zeros (x - zp of a zero point) and never loaded, so no address outside the row is read.
    auto input = [&](int qi) MBF_LAMBDA_INLINE {
      if ((qi == 0 && left) || (qi == kInputs - 1 && right)) return QV::dw_zero_x();
      return QV::dw_load_x(x + x0 + qi * C, m, zx);
    };
    X a = input(0), bb = S == 1 ? input(1) : a;
    for (int p = 0; p < P; ++p) {
      if (S == 2) bb = input(2 * p + 1);
      const X c = input(p * S + 2);
      acc[p] = QV::dw_madd(acc[p], a, w0);
      acc[p] = QV::dw_madd(acc[p], bb, w1);
      acc[p] = QV::dw_madd(acc[p], c, w2);
      a = S == 1 ? bb : c;
      bb = c;
    }
  };
  if (has_top) one_row(row[0], 0);
  one_row(row[1], 1);
  if (has_bottom) one_row(row[2], 2);
  for (int p = 0; p < P; ++p) QV::dw_store(o + p * C, acc[p], scale, q, m);
}

template <class QV, int S>
void qdwconv3x3(const Conv2dGeom& g, const std::uint8_t* in, std::int32_t input_zero_point, const void* packed,
                std::uint8_t* out, int row_begin, int row_end, QuantOut qo) {
  constexpr int L = QV::kDwLanes;
  const int C = g.in_channels;
  const auto* base = static_cast<const unsigned char*>(packed);
  const auto* bias = reinterpret_cast<const std::int32_t*>(base);
  const auto* scale = reinterpret_cast<const float*>(base + sizeof(std::int32_t) * C);
  const auto* w = reinterpret_cast<const std::int16_t*>(base + 2 * sizeof(std::int32_t) * C);
  const Index in_row = static_cast<Index>(g.in_w) * C;
  const Index out_row = static_cast<Index>(g.out_w) * C;
  const typename QV::Params q = QV::params(qo);
  const typename QV::DwX zx = QV::dw_set_zx(input_zero_point);
  const bool left_pad = g.pad_left > 0;
  const bool right_pad = (g.out_w - 1) * S - g.pad_left + 2 >= g.in_w;
  for (int oh = row_begin; oh < row_end; ++oh) {
    const int ih0 = oh * S - g.pad_top;
    const bool has_top = ih0 >= 0, has_bottom = ih0 + 2 < g.in_h;
    // Rows outside the image are never read; point them at the middle row, always inside.
    const std::uint8_t* mid = in + (ih0 + 1) * in_row;
    const std::uint8_t* rows[3] = {has_top ? mid - in_row : mid, mid, has_bottom ? mid + in_row : mid};
    std::uint8_t* orow = out + oh * out_row;
    for_dw_blocks<QV::kDwPixels>(0, g.out_w, [&](auto count, int ow) MBF_LAMBDA_INLINE {
      constexpr int P = decltype(count)::value;
      const bool left = left_pad && ow == 0, right = right_pad && ow + P == g.out_w;
      const Index x0 = static_cast<Index>(ow * S - g.pad_left) * C;
      for (int c0 = 0; c0 < C; c0 += L) {
        const std::uint8_t* r[3] = {rows[0] + c0, rows[1] + c0, rows[2] + c0};
        qdw_block<QV, S, P>(r, has_top, has_bottom, left, right, x0, C, w + c0, bias + c0, scale + c0, zx, q,
                            QV::dw_mask_first(C - c0), orow + ow * C + c0);
      }
    });
  }
}

}  // namespace
}  // namespace mbf

// Defines the stride-1 and stride-2 int8 depthwise entry points for int8 vector layer QVEC.
#define MBF_DEFINE_QDWCONV3X3(QVEC, NAME_S1, NAME_S2)                                                    \
  namespace mbf {                                                                                       \
  void NAME_S1(const Conv2dGeom& g, const std::uint8_t* in, std::int32_t zx, const void* packed,          \
               std::uint8_t* out, int row_begin, int row_end, QuantOut q) {                             \
    qdwconv3x3<QVEC, 1>(g, in, zx, packed, out, row_begin, row_end, q);                                 \
  }                                                                                                     \
  void NAME_S2(const Conv2dGeom& g, const std::uint8_t* in, std::int32_t zx, const void* packed,          \
               std::uint8_t* out, int row_begin, int row_end, QuantOut q) {                             \
    qdwconv3x3<QVEC, 2>(g, in, zx, packed, out, row_begin, row_end, q);                                 \
  }                                                                                                     \
  }
