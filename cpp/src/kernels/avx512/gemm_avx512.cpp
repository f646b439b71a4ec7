// Pointwise (1x1) convolution GEMM for AVX-512F: C = clamp(A x B + bias) with 14x32 register
// tiles over the packed weight panels (two zmm columns x 14 rows = 28 accumulators).
//
// Per k step the microkernel loads one 32-float row of the panel (2 zmm), broadcasts one A element
// per row and issues 28 FMAs: 16 loads for 14 FMA cycles, well under the two load ports.
// MR = 14 divides every MobileNetV1 row count at 224x224 except 7x7 (= 3*14 + 7).
//
// Loop nest: blocks of panels (at most kPanelBlockBytes of packed weights, so the block stays in L2)
//   x row tiles of 14 x panels of the block. The 14 x K slice of A is reused from L1/L2 across the
// panels of a block; the block of weights is reused from L2 across the row tiles. While a block is
// computed, its tiles prefetch the next block into L2 in equal shares: for the 7x7 layers (only 4
// row tiles, 2-4 MB of weights coming from L3) this smooths the weight stream instead of stalling
// the first row tile of every block on L3 (measured +10-20% on 49x1024x1024 and 49x512x1024).
//
// No shared inline functions or templates from headers here (see kernels_internal.h): everything
// below is intrinsics and templates with internal linkage.
// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own _mm512_undefined_ps() (GCC
// bug 105593, fixed in 13): silence it for the header only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include "kernels/kernels_internal.h"

namespace mbf {
namespace {

constexpr int kMr = kGemmMrAvx512;
constexpr int kNr = kGemmNrAvx512;
static_assert(kNr == 32, "the AVX-512 GEMM tile is two zmm wide");
static_assert(kMr == 14, "gemm_avx512 dispatches row remainders 1..13");

// Packed weights per block of panels swept by one row tile (kept in L2).
constexpr std::ptrdiff_t kPanelBlockBytes = 384 << 10;

// One k step of an MR x 32 tile: two weight vectors, one broadcast per row, 2*MR FMAs.
template <int MR>
inline void step_mrx32(const float* a, std::ptrdiff_t lda, int p, const float* w, __m512* acc0,
                       __m512* acc1) {
  const __m512 b0 = _mm512_loadu_ps(w);
  const __m512 b1 = _mm512_loadu_ps(w + 16);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    const __m512 x = _mm512_set1_ps(a[i * lda + p]);
    acc0[i] = _mm512_fmadd_ps(x, b0, acc0[i]);
    acc1[i] = _mm512_fmadd_ps(x, b1, acc1[i]);
  }
}

// MR rows x 32 columns: c[0..MR)[0..nc) = clamp(bias + a[0..MR)[0..k) x panel).
// full stores whole rows; otherwise the stores are masked by lo/hi. While it computes, the tile
// prefetches pf_lines cache lines from pf into L2 (one per k step; pf_lines <= k), so the driver
// can stream the next block of weights in from L3 spread over the current block's work.
template <int MR>
void tile_mrx32(int k, const float* a, std::ptrdiff_t lda, const float* panel, float* c,
                std::ptrdiff_t ldc, __m512 vmin, __m512 vmax, bool full, __mmask16 lo, __mmask16 hi,
                const char* pf, int pf_lines) {
  __m512 acc0[MR], acc1[MR];
  const __m512 bias0 = _mm512_loadu_ps(panel);
  const __m512 bias1 = _mm512_loadu_ps(panel + 16);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    acc0[i] = bias0;
    acc1[i] = bias1;
  }
  const float* w = panel + kNr;
  int p = 0;
  for (; p < pf_lines; ++p, w += kNr) {
    _mm_prefetch(pf + 64 * static_cast<std::ptrdiff_t>(p), _MM_HINT_T1);
    step_mrx32<MR>(a, lda, p, w, acc0, acc1);
  }
#pragma GCC unroll 2
  for (; p < k; ++p, w += kNr) step_mrx32<MR>(a, lda, p, w, acc0, acc1);
  if (full) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      _mm512_storeu_ps(c + i * ldc, _mm512_min_ps(_mm512_max_ps(acc0[i], vmin), vmax));
      _mm512_storeu_ps(c + i * ldc + 16, _mm512_min_ps(_mm512_max_ps(acc1[i], vmin), vmax));
    }
  } else {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      _mm512_mask_storeu_ps(c + i * ldc, lo, _mm512_min_ps(_mm512_max_ps(acc0[i], vmin), vmax));
      _mm512_mask_storeu_ps(c + i * ldc + 16, hi, _mm512_min_ps(_mm512_max_ps(acc1[i], vmin), vmax));
    }
  }
}

using tile_fn = void (*)(int, const float*, std::ptrdiff_t, const float*, float*, std::ptrdiff_t, __m512,
                         __m512, bool, __mmask16, __mmask16, const char*, int);

// Row remainders use the tile of exactly that height.
const tile_fn kTiles[kMr + 1] = {
    nullptr,          tile_mrx32<1>,  tile_mrx32<2>,  tile_mrx32<3>,  tile_mrx32<4>,
    tile_mrx32<5>,    tile_mrx32<6>,  tile_mrx32<7>,  tile_mrx32<8>,  tile_mrx32<9>,
    tile_mrx32<10>,   tile_mrx32<11>, tile_mrx32<12>, tile_mrx32<13>, tile_mrx32<14>,
};

}  // namespace

void gemm_14x32_avx512(int m, int n, int k, const float* a, std::ptrdiff_t lda, const float* packed,
                       float* c, std::ptrdiff_t ldc, Clamp clamp) {
  if (m <= 0 || n <= 0) return;
  const __m512 vmin = _mm512_set1_ps(clamp.min);
  const __m512 vmax = _mm512_set1_ps(clamp.max);
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
      // last 15..17 rows are split evenly (8+7 .. 9+8) rather than run as 14 + (1..3).
      if (m - i0 > kMr && m - i0 < kMr + 4) rows = (m - i0 + 1) / 2;
      const tile_fn tile = kTiles[rows];
      const float* ai = a + i0 * lda;
      float* ci = c + i0 * ldc;
      for (int j = jb; j < je; ++j) {
        const int cols = n - j * kNr;
        const bool full = cols >= kNr;
        const __mmask16 lo = cols >= 16 ? static_cast<__mmask16>(0xFFFF)
                                        : static_cast<__mmask16>((1u << cols) - 1u);
        const __mmask16 hi = full ? static_cast<__mmask16>(0xFFFF)
                             : cols > 16 ? static_cast<__mmask16>((1u << (cols - 16)) - 1u)
                                         : static_cast<__mmask16>(0);
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
