// Pointwise (1x1) convolution GEMM for AVX2 + FMA: C = clamp(A x B + bias) with 6x16 register
// tiles over the packed weight panels (two ymm columns x 6 rows = 12 accumulators, plus two
// weight registers and one broadcast: 15 of the 16 ymm registers).
//
// Loop nest: blocks of panels (at most kPanelBlockBytes of packed weights, so the block stays in L2
// even on CPUs with a 256 KB L2) x row tiles of 6 x panels of the block. The 6 x K slice of A is
// reused from L1 across the panels of a block; the block of weights is reused from L2 across the
// row tiles. While a block is computed, its tiles prefetch the next block into L2 in equal shares
// (the 7x7 layers' 2-4 MB of weights come from L3).
//
// No shared inline functions or templates from headers here (see kernels_internal.h): everything
// below is intrinsics and templates with internal linkage.
#include <immintrin.h>

#include "kernels/kernels_internal.h"

namespace mbf {
namespace {

constexpr int kMr = kGemmMrAvx2;
constexpr int kNr = kGemmNrAvx2;
static_assert(kNr == 16, "the AVX2 GEMM tile is two ymm wide");
static_assert(kMr == 6, "gemm_avx2 dispatches row remainders 1..5");

// Packed weights per block of panels swept by one row tile (kept in L2).
constexpr std::ptrdiff_t kPanelBlockBytes = 128 << 10;

// One k step of an MR x 16 tile: two weight vectors, one broadcast per row, 2*MR FMAs.
template <int MR>
inline void step_mrx16(const float* a, std::ptrdiff_t lda, int p, const float* w, __m256* acc0,
                       __m256* acc1) {
  const __m256 b0 = _mm256_loadu_ps(w);
  const __m256 b1 = _mm256_loadu_ps(w + 8);
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    const __m256 x = _mm256_broadcast_ss(a + i * lda + p);
    acc0[i] = _mm256_fmadd_ps(x, b0, acc0[i]);
    acc1[i] = _mm256_fmadd_ps(x, b1, acc1[i]);
  }
}

// MR rows x 16 columns: c[0..MR)[0..nc) = clamp(bias + a[0..MR)[0..k) x panel).
// full stores whole rows; otherwise the stores are masked by lo/hi (lane sign bits). While it
// computes, the tile prefetches pf_lines cache lines from pf into L2 (one per k step;
// pf_lines <= k), so the driver can stream the next block of weights in from L3.
template <int MR>
void tile_mrx16(int k, const float* a, std::ptrdiff_t lda, const float* panel, float* c,
                std::ptrdiff_t ldc, __m256 vmin, __m256 vmax, bool full, __m256i lo, __m256i hi,
                const char* pf, int pf_lines) {
  __m256 acc0[MR], acc1[MR];
  const __m256 bias0 = _mm256_loadu_ps(panel);
  const __m256 bias1 = _mm256_loadu_ps(panel + 8);
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    acc0[i] = bias0;
    acc1[i] = bias1;
  }
  const float* w = panel + kNr;
  int p = 0;
  for (; p < pf_lines; ++p, w += kNr) {
    _mm_prefetch(pf + 64 * static_cast<std::ptrdiff_t>(p), _MM_HINT_T1);
    step_mrx16<MR>(a, lda, p, w, acc0, acc1);
  }
#pragma GCC unroll 2
  for (; p < k; ++p, w += kNr) step_mrx16<MR>(a, lda, p, w, acc0, acc1);
  if (full) {
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      _mm256_storeu_ps(c + i * ldc, _mm256_min_ps(_mm256_max_ps(acc0[i], vmin), vmax));
      _mm256_storeu_ps(c + i * ldc + 8, _mm256_min_ps(_mm256_max_ps(acc1[i], vmin), vmax));
    }
  } else {
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      _mm256_maskstore_ps(c + i * ldc, lo, _mm256_min_ps(_mm256_max_ps(acc0[i], vmin), vmax));
      _mm256_maskstore_ps(c + i * ldc + 8, hi, _mm256_min_ps(_mm256_max_ps(acc1[i], vmin), vmax));
    }
  }
}

using tile_fn = void (*)(int, const float*, std::ptrdiff_t, const float*, float*, std::ptrdiff_t, __m256,
                         __m256, bool, __m256i, __m256i, const char*, int);

// Row remainders use the tile of exactly that height.
const tile_fn kTiles[kMr + 1] = {
    nullptr, tile_mrx16<1>, tile_mrx16<2>, tile_mrx16<3>, tile_mrx16<4>, tile_mrx16<5>, tile_mrx16<6>,
};

}  // namespace

void gemm_6x16_avx2(int m, int n, int k, const float* a, std::ptrdiff_t lda, const float* packed, float* c,
                    std::ptrdiff_t ldc, Clamp clamp) {
  if (m <= 0 || n <= 0) return;
  const __m256 vmin = _mm256_set1_ps(clamp.min);
  const __m256 vmax = _mm256_set1_ps(clamp.max);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const int panels = (n + kNr - 1) / kNr;
  const std::ptrdiff_t panel_stride = static_cast<std::ptrdiff_t>(k + 1) * kNr;
  std::ptrdiff_t block = kPanelBlockBytes / (panel_stride * static_cast<std::ptrdiff_t>(sizeof(float)));
  if (block < 1) block = 1;
  const std::ptrdiff_t row_tiles = (m + kMr - 1) / kMr;
  for (int jb = 0; jb < panels; jb += static_cast<int>(block)) {
    const int je = panels - jb < block ? panels : jb + static_cast<int>(block);
    // The next block of panels [je, jn) is prefetched into L2 in equal shares by the tiles of
    // this block (none after the last block).
    const int jn = panels - je < block ? panels : je + static_cast<int>(block);
    const char* next = reinterpret_cast<const char*>(packed + je * panel_stride);
    const std::ptrdiff_t next_lines = (jn - je) * panel_stride * static_cast<std::ptrdiff_t>(sizeof(float)) / 64;
    const std::ptrdiff_t calls = row_tiles * (je - jb);
    const std::ptrdiff_t share = (next_lines + calls - 1) / calls;
    std::ptrdiff_t prefetched = 0;
    for (int i0 = 0, rows = 0; i0 < m; i0 += rows) {
      rows = m - i0 < kMr ? m - i0 : kMr;
      // A tile of r < 4 rows runs at the FMA latency (4 cycles per k step for 2r FMAs), so a
      // last 7..9 rows are split evenly (4+3 .. 5+4: 8-9 cycles per k step instead of 10).
      if (m - i0 > kMr && m - i0 < kMr + 4) rows = (m - i0 + 1) / 2;
      const tile_fn tile = kTiles[rows];
      const float* ai = a + i0 * lda;
      float* ci = c + i0 * ldc;
      for (int j = jb; j < je; ++j) {
        const int cols = n - j * kNr;
        const bool full = cols >= kNr;
        // Lane l of the low (high) half is stored when l < cols (l + 8 < cols).
        const __m256i lo = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols), lane);
        const __m256i hi = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols - 8), lane);
        std::ptrdiff_t lines = next_lines - prefetched;
        if (lines > share) lines = share;
        if (lines > k) lines = k;
        tile(k, ai, lda, packed + j * panel_stride, ci + j * kNr, ldc, vmin, vmax, full, lo, hi,
             next + 64 * prefetched, static_cast<int>(lines));
        prefetched += lines;
      }
    }
  }
}

}  // namespace mbf
