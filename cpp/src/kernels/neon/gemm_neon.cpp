// Pointwise (1x1) convolution GEMM for NEON: C = clamp(A x B + bias) over panels of 8 packed
// weight columns (pack_gemm_weights with nr = 8: bias first, columns past n zero).
//
// aarch64 (32 q registers): 8x8 tiles, 16 accumulators + 2 weight vectors + 8 A vectors holding
// four k values of each row; the k loop is unrolled by 4 and uses fmla by lane
// (vfmaq_laneq_f32), so one A load per row serves four k steps.
// armv7 (16 q registers, no fused multiply-add by scalar): 4x8 tiles, 8 accumulators + 2 weight
// vectors + one broadcast (vld1q_dup_f32) per row and k step.
//
// Row remainders use the tile of exactly that height; a last panel narrower than 8 columns is
// computed in full (the packed weights are zero there) and stored through a small buffer.
//
// No shared inline functions or templates from headers here (see kernels_internal.h).
#include <arm_neon.h>

#include <cstddef>

#include "kernels/kernels_internal.h"

namespace mbf {
namespace {

using Index = std::ptrdiff_t;

#if defined(__aarch64__)
constexpr int kMr = kGemmMrNeon;
static_assert(kMr == 8, "the aarch64 tile is 8 rows");
#else
constexpr int kMr = kGemmMrNeon;
static_assert(kMr == 4, "the armv7 tile is 4 rows");
#endif
constexpr int kNr = kGemmNrNeon;
static_assert(kNr == 8, "the NEON GEMM tile is two q registers wide");

// Packed weights per block of panels swept by all row tiles (kept in L2).
constexpr Index kPanelBlockBytes = 128 << 10;

template <int MR>
void tile_mrx8(int k, const float* a, Index lda, const float* panel, float* c, Index ldc, float32x4_t vmin,
               float32x4_t vmax, int cols) {
  float32x4_t acc0[MR], acc1[MR];
  const float32x4_t bias0 = vld1q_f32(panel), bias1 = vld1q_f32(panel + 4);
  for (int i = 0; i < MR; ++i) {
    acc0[i] = bias0;
    acc1[i] = bias1;
  }
  const float* w = panel + kNr;
  int p = 0;
#if defined(__aarch64__)
  for (; p + 4 <= k; p += 4, w += 4 * kNr) {
    float32x4_t av[MR];
    for (int i = 0; i < MR; ++i) av[i] = vld1q_f32(a + i * lda + p);
#define MBF_GEMM_LANE(L)                                                  \
  {                                                                       \
    const float32x4_t b0 = vld1q_f32(w + (L) * kNr);                      \
    const float32x4_t b1 = vld1q_f32(w + (L) * kNr + 4);                  \
    for (int i = 0; i < MR; ++i) {                                        \
      acc0[i] = vfmaq_laneq_f32(acc0[i], b0, av[i], L);                   \
      acc1[i] = vfmaq_laneq_f32(acc1[i], b1, av[i], L);                   \
    }                                                                     \
  }
    MBF_GEMM_LANE(0)
    MBF_GEMM_LANE(1)
    MBF_GEMM_LANE(2)
    MBF_GEMM_LANE(3)
#undef MBF_GEMM_LANE
  }
#endif
  for (; p < k; ++p, w += kNr) {
    const float32x4_t b0 = vld1q_f32(w), b1 = vld1q_f32(w + 4);
    for (int i = 0; i < MR; ++i) {
      const float32x4_t x = vld1q_dup_f32(a + i * lda + p);
      acc0[i] = vfmaq_f32(acc0[i], x, b0);
      acc1[i] = vfmaq_f32(acc1[i], x, b1);
    }
  }
  if (cols >= kNr) {
    for (int i = 0; i < MR; ++i) {
      vst1q_f32(c + i * ldc, vminq_f32(vmaxq_f32(acc0[i], vmin), vmax));
      vst1q_f32(c + i * ldc + 4, vminq_f32(vmaxq_f32(acc1[i], vmin), vmax));
    }
  } else {
    for (int i = 0; i < MR; ++i) {
      float tmp[kNr];
      vst1q_f32(tmp, vminq_f32(vmaxq_f32(acc0[i], vmin), vmax));
      vst1q_f32(tmp + 4, vminq_f32(vmaxq_f32(acc1[i], vmin), vmax));
      float* ci = c + i * ldc;
      for (int j = 0; j < cols; ++j) ci[j] = tmp[j];
    }
  }
}

#if !defined(__aarch64__)
// The full armv7 tile with the accumulators in named variables: GCC keeps an array of eight q
// accumulators in memory on 32-bit ARM (spilling inside the k loop), these stay in registers
// (8 accumulators + 2 weight vectors + 1 broadcast of the 16 q registers).
void tile_4x8(int k, const float* a, Index lda, const float* panel, float* c, Index ldc, float32x4_t vmin,
              float32x4_t vmax, int cols) {
  float32x4_t c00 = vld1q_f32(panel), c01 = vld1q_f32(panel + 4);
  float32x4_t c10 = c00, c11 = c01, c20 = c00, c21 = c01, c30 = c00, c31 = c01;
  const float* a0 = a;
  const float* a1 = a + lda;
  const float* a2 = a + 2 * lda;
  const float* a3 = a + 3 * lda;
  const float* w = panel + kNr;
  for (int p = 0; p < k; ++p, w += kNr) {
    const float32x4_t b0 = vld1q_f32(w), b1 = vld1q_f32(w + 4);
    float32x4_t x = vld1q_dup_f32(a0 + p);
    c00 = vfmaq_f32(c00, x, b0);
    c01 = vfmaq_f32(c01, x, b1);
    x = vld1q_dup_f32(a1 + p);
    c10 = vfmaq_f32(c10, x, b0);
    c11 = vfmaq_f32(c11, x, b1);
    x = vld1q_dup_f32(a2 + p);
    c20 = vfmaq_f32(c20, x, b0);
    c21 = vfmaq_f32(c21, x, b1);
    x = vld1q_dup_f32(a3 + p);
    c30 = vfmaq_f32(c30, x, b0);
    c31 = vfmaq_f32(c31, x, b1);
  }
  const float32x4_t r[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
  for (int i = 0; i < 4; ++i) {
    const float32x4_t v0 = vminq_f32(vmaxq_f32(r[i][0], vmin), vmax);
    const float32x4_t v1 = vminq_f32(vmaxq_f32(r[i][1], vmin), vmax);
    float* ci = c + i * ldc;
    if (cols >= kNr) {
      vst1q_f32(ci, v0);
      vst1q_f32(ci + 4, v1);
    } else {
      float tmp[kNr];
      vst1q_f32(tmp, v0);
      vst1q_f32(tmp + 4, v1);
      for (int j = 0; j < cols; ++j) ci[j] = tmp[j];
    }
  }
}
#endif

using tile_fn = void (*)(int, const float*, Index, const float*, float*, Index, float32x4_t, float32x4_t, int);

#if defined(__aarch64__)
const tile_fn kTiles[kMr + 1] = {nullptr,       tile_mrx8<1>, tile_mrx8<2>, tile_mrx8<3>, tile_mrx8<4>,
                                 tile_mrx8<5>,  tile_mrx8<6>, tile_mrx8<7>, tile_mrx8<8>};
#else
const tile_fn kTiles[kMr + 1] = {nullptr, tile_mrx8<1>, tile_mrx8<2>, tile_mrx8<3>, tile_4x8};
#endif

void gemm_neon(int m, int n, int k, const float* a, Index lda, const float* packed, float* c, Index ldc,
               Clamp clamp) {
  if (m <= 0 || n <= 0) return;
  const float32x4_t vmin = vdupq_n_f32(clamp.min), vmax = vdupq_n_f32(clamp.max);
  const int panels = (n + kNr - 1) / kNr;
  const Index panel_stride = static_cast<Index>(k + 1) * kNr;
  Index block = kPanelBlockBytes / (panel_stride * static_cast<Index>(sizeof(float)));
  if (block < 1) block = 1;
  for (int jb = 0; jb < panels; jb += static_cast<int>(block)) {
    const int je = panels - jb < block ? panels : jb + static_cast<int>(block);
    for (int i0 = 0, rows = 0; i0 < m; i0 += rows) {
      rows = m - i0 < kMr ? m - i0 : kMr;
      const tile_fn tile = kTiles[rows];
      const float* ai = a + i0 * lda;
      float* ci = c + i0 * ldc;
      for (int j = jb; j < je; ++j)
        tile(k, ai, lda, packed + j * panel_stride, ci + j * kNr, ldc, vmin, vmax, n - j * kNr);
    }
  }
}

}  // namespace

#if defined(__aarch64__)
void gemm_8x8_neon(int m, int n, int k, const float* a, std::ptrdiff_t lda, const float* packed, float* c,
                   std::ptrdiff_t ldc, Clamp clamp) {
  gemm_neon(m, n, k, a, lda, packed, c, ldc, clamp);
}
#else
void gemm_4x8_neon32(int m, int n, int k, const float* a, std::ptrdiff_t lda, const float* packed, float* c,
                     std::ptrdiff_t ldc, Clamp clamp) {
  gemm_neon(m, n, k, a, lda, packed, c, ldc, clamp);
}
#endif

}  // namespace mbf
