// qgemm_u8s8_8x8k16_neon (aarch64) / _4x8k16_neon (armv7): the int8 GEMM of NEON cores without
// the dot product (Cortex-A53 in the Pi 3 and Zero 2, A72 in the Pi 4, armv7), on weights packed
// k-major as int16 (pack_qgemm_weights_k16: per panel of 8 columns, 8 int32 biases, 8 float32
// scales, then K rows of 8 int16 weights). Each k step multiplies the 8 weights of the step by one
// activation of each row taken from a lane (smlal / smlal2 by element): 8 activations of a row are
// loaded and widened once per 8 k, the weights need no widening at all, so the loop is the
// multiply-adds plus one load per k and one widening per row per 8 k. The llvm-mca model
// (bench/arm_model.py) put the earlier widening GEMM (int8 panels of 4 k, vmulq_s16 + vpadalq_s16)
// at 45% of the Cortex-A53's smlal peak: the multiplies' latency stalled the in-order core.
// Products of uint8 activations and weights within int16 are exact in int32; the requantisation
// is the other kernels' (QVecNeon), so the results are the scalar reference's bits.
#include "kernels/simd/qvec_neon.h"

#include <cstring>

#include "kernels/kernels_internal.h"

namespace mbf {
namespace {

constexpr int kNr = kQgemmNrNeonK16;  // 8 columns: two int32x4 accumulators per row
constexpr int kMr = kQgemmMrNeonK16;

template <int MR, bool F32>
void tile(int k, const std::uint8_t* a, Index lda, const unsigned char* panel, void* c, Index ldc,
          const QVecNeon::Params& q, int cols, const std::int32_t* row_add) {
  const auto* bias = reinterpret_cast<const std::int32_t*>(panel);
  const auto* scale = reinterpret_cast<const float*>(panel + sizeof(std::int32_t) * kNr);
  const auto* w = reinterpret_cast<const std::int16_t*>(panel + 2 * sizeof(std::int32_t) * kNr);
  int32x4_t acc[MR][2];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = vdupq_n_s32(0);
  auto step = [&](const int16x8_t* x, int lane_base, const std::int16_t* wk) MBF_LAMBDA_INLINE {
    // k steps lane_base .. lane_base + 3 of the 8 held in x (the low or high half)
    const int16x8_t w0 = vld1q_s16(wk), w1 = vld1q_s16(wk + kNr), w2 = vld1q_s16(wk + 2 * kNr),
                    w3 = vld1q_s16(wk + 3 * kNr);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const int16x4_t xi = lane_base == 0 ? vget_low_s16(x[i]) : vget_high_s16(x[i]);
      acc[i][0] = vmlal_lane_s16(acc[i][0], vget_low_s16(w0), xi, 0);
      acc[i][1] = vmlal_lane_s16(acc[i][1], vget_high_s16(w0), xi, 0);
      acc[i][0] = vmlal_lane_s16(acc[i][0], vget_low_s16(w1), xi, 1);
      acc[i][1] = vmlal_lane_s16(acc[i][1], vget_high_s16(w1), xi, 1);
      acc[i][0] = vmlal_lane_s16(acc[i][0], vget_low_s16(w2), xi, 2);
      acc[i][1] = vmlal_lane_s16(acc[i][1], vget_high_s16(w2), xi, 2);
      acc[i][0] = vmlal_lane_s16(acc[i][0], vget_low_s16(w3), xi, 3);
      acc[i][1] = vmlal_lane_s16(acc[i][1], vget_high_s16(w3), xi, 3);
    }
  };
  int p = 0;
  for (; p + 8 <= k; p += 8, w += 8 * kNr) {
    int16x8_t x[MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) x[i] = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(a + i * lda + p)));
    step(x, 0, w);
    step(x, 4, w + 4 * kNr);
  }
  if (p < k) {  // the last 1..7 k through a zeroed copy (never past the row); packed weights past K are 0
    int16x8_t x[MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      std::uint8_t t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      std::memcpy(t, a + i * lda + p, static_cast<std::size_t>(k - p));
      x[i] = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(t)));
    }
    step(x, 0, w);
    if (k - p > 4) step(x, 4, w + 4 * kNr);
  }
  const int32x4_t b0 = vld1q_s32(bias), b1 = vld1q_s32(bias + 4);
  const float32x4_t s0 = vld1q_f32(scale), s1 = vld1q_f32(scale + 4);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    const int32x4_t r = vdupq_n_s32(row_add ? row_add[i] : 0);
    const int32x4_t v0 = vaddq_s32(vaddq_s32(acc[i][0], b0), r), v1 = vaddq_s32(vaddq_s32(acc[i][1], b1), r);
    if constexpr (F32) {
      float* o = static_cast<float*>(c) + i * ldc;
      QVecNeon::store_f32x4(o, vmulq_f32(vcvtq_f32_s32(v0), s0), cols);
      if (cols > 4) QVecNeon::store_f32x4(o + 4, vmulq_f32(vcvtq_f32_s32(v1), s1), cols - 4);
    } else {
      std::uint8_t* o = static_cast<std::uint8_t*>(c) + i * ldc;
      QVecNeon::store_bytes4(o, QVecNeon::requant(v0, s0, q), cols);
      if (cols > 4) QVecNeon::store_bytes4(o + 4, QVecNeon::requant(v1, s1, q), cols - 4);
    }
  }
}

template <bool F32>
void qgemm_k16(int m, int n, int k, const std::uint8_t* a, Index lda, const void* packed, void* c, Index ldc,
               QuantOut out, const std::int32_t* row_add) {
  using Tile = void (*)(int, const std::uint8_t*, Index, const unsigned char*, void*, Index, const QVecNeon::Params&,
                        int, const std::int32_t*);
  static constexpr Tile kTiles[] = {nullptr, tile<1, F32>, tile<2, F32>, tile<3, F32>, tile<4, F32>
#if defined(__aarch64__)
                                    , tile<5, F32>, tile<6, F32>, tile<7, F32>, tile<8, F32>
#endif
  };
  static_assert(sizeof(kTiles) / sizeof(kTiles[0]) == kMr + 1, "one tile per row count");
  if (m <= 0 || n <= 0) return;
  const QVecNeon::Params q = QVecNeon::params(out);
  const Index panel_bytes = packed_qgemm_k16_panel_bytes(k);
  const auto* base = static_cast<const unsigned char*>(packed);
  const std::size_t elem = F32 ? sizeof(float) : 1;
  for (int i0 = 0, rows = 0; i0 < m; i0 += rows) {
    rows = m - i0 < kMr ? m - i0 : kMr;
    const Tile t = kTiles[rows];
    for (int j = 0, panels = (n + kNr - 1) / kNr; j < panels; ++j)
      t(k, a + i0 * lda, lda, base + j * panel_bytes,
        static_cast<unsigned char*>(c) + (static_cast<std::size_t>(i0) * ldc + static_cast<std::size_t>(j) * kNr) * elem,
        ldc, q, n - j * kNr, row_add ? row_add + i0 : nullptr);
  }
}

}  // namespace

void qgemm_neon_k16(int m, int n, int k, const std::uint8_t* a, std::ptrdiff_t lda, const void* packed,
                    std::uint8_t* c, std::ptrdiff_t ldc, QuantOut out, const std::int32_t* row_add) {
  qgemm_k16<false>(m, n, k, a, lda, packed, c, ldc, out, row_add);
}

void qgemm_neon_k16_f32(int m, int n, int k, const std::uint8_t* a, std::ptrdiff_t lda, const void* packed,
                        float* c, std::ptrdiff_t ldc, const std::int32_t* row_add) {
  qgemm_k16<true>(m, n, k, a, lda, packed, c, ldc, QuantOut{0, 0, 255}, row_add);
}

}  // namespace mbf
