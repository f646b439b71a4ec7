// Pointwise (1x1) convolution GEMM, float32: C = clamp(A x B + bias) with MR x NR register tiles
// over the weight panels packed by pack_gemm_weights (NR = 2 vectors, bias first, columns past N
// zero); one implementation for every vector layer V. Included only by an ISA's translation unit.
//
// Per k step a tile loads one NR-float row of the panel (2 vectors), broadcasts one A element per
// row and issues 2 * MR multiply-adds (V::kGemmLaneFma: loads four k values of a row at once and
// multiplies by lane instead, so one A load serves four k steps). Row remainders use the tile of
// exactly that height; a last panel narrower than NR columns is computed in full (its packed
// weights are zero) and stored masked. Every element is a sum over k in increasing order, so the
// tiling never changes the bits of the result.
//
// Loop nest: blocks of panels (at most V::kGemmBlockBytes of packed weights, so the block stays in
// L2) x row tiles of MR x panels of the block. The MR x K slice of A is reused from L1/L2 across
// the panels of a block; the block of weights is reused from L2 across the row tiles. With
// V::kGemmPrefetch, while a block is computed its tiles prefetch the next block into L2 in equal
// shares: for the 7x7 layers (only a few row tiles, 2-4 MB of weights coming from L3) this smooths
// the weight stream instead of stalling the first row tile of every block on L3 (measured +10-20%
// on 49x1024x1024 and 49x512x1024 with AVX-512).
#pragma once

#include <utility>

#include "kernels/kernels_internal.h"
#include "kernels/simd/vec_common.h"

namespace mbf {
namespace {

template <class V>
struct GemmTile {
  using Vec = typename V::Vec;
  using Mask = typename V::Mask;
  // c[0..rows)[cols] = clamp(bias + a x panel): all NR columns when `full`, else the lanes of lo
  // (first vector) and hi (second). While it computes, the tile prefetches pf_lines cache lines
  // from pf into L2 (one per k step; pf_lines <= k).
  using Fn = void (*)(int k, const float* a, Index lda, const float* panel, float* c, Index ldc, Vec vmin,
                      Vec vmax, bool full, Mask lo, Mask hi, const char* pf, int pf_lines);
};

// One k step of an MR x NR tile: two weight vectors, one broadcast per row, 2*MR FMAs.
template <class V, int MR>
MBF_INLINE void gemm_step(const float* a, Index lda, int p, const float* w, typename V::Vec* acc0,
                          typename V::Vec* acc1) {
  const typename V::Vec b0 = V::load(w);
  const typename V::Vec b1 = V::load(w + V::kLanes);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    const typename V::Vec x = V::broadcast(a + i * lda + p);
    acc0[i] = V::fma(x, b0, acc0[i]);
    acc1[i] = V::fma(x, b1, acc1[i]);
  }
}

// Four k steps with one vector load of A per row and multiply-adds by lane (V::fma_lane).
template <class V, int MR>
MBF_INLINE void gemm_step4_lanes(const float* a, Index lda, int p, const float* w, typename V::Vec* acc0,
                                 typename V::Vec* acc1) {
  using Vec = typename V::Vec;
  constexpr int kNr = 2 * V::kLanes;
  Vec av[MR];
  for (int i = 0; i < MR; ++i) av[i] = V::load(a + i * lda + p);
  auto lane = [&](auto l) MBF_LAMBDA_INLINE {
    constexpr int kL = decltype(l)::value;
    const Vec b0 = V::load(w + kL * kNr), b1 = V::load(w + kL * kNr + V::kLanes);
    for (int i = 0; i < MR; ++i) {
      acc0[i] = V::template fma_lane<kL>(acc0[i], b0, av[i]);
      acc1[i] = V::template fma_lane<kL>(acc1[i], b1, av[i]);
    }
  };
  lane(Count<0>{});
  lane(Count<1>{});
  lane(Count<2>{});
  lane(Count<3>{});
}

template <class V, int MR>
void gemm_tile(int k, const float* a, Index lda, const float* panel, float* c, Index ldc, typename V::Vec vmin,
               typename V::Vec vmax, bool full, typename V::Mask lo, typename V::Mask hi, const char* pf,
               int pf_lines) {
  using Vec = typename V::Vec;
  constexpr int L = V::kLanes, kNr = 2 * L;
  Vec acc0[MR], acc1[MR];
  const Vec bias0 = V::load(panel);
  const Vec bias1 = V::load(panel + L);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    acc0[i] = bias0;
    acc1[i] = bias1;
  }
  const float* w = panel + kNr;
  int p = 0;
  if constexpr (V::kGemmPrefetch) {
    for (; p < pf_lines; ++p, w += kNr) {
      V::prefetch_l2(pf + 64 * static_cast<Index>(p));
      gemm_step<V, MR>(a, lda, p, w, acc0, acc1);
    }
  }
  if constexpr (V::kGemmLaneFma) {
    for (; p + 4 <= k; p += 4, w += 4 * kNr) gemm_step4_lanes<V, MR>(a, lda, p, w, acc0, acc1);
  }
#pragma GCC unroll 2
  for (; p < k; ++p, w += kNr) gemm_step<V, MR>(a, lda, p, w, acc0, acc1);
  if (full) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      V::store(c + i * ldc, clamp<V>(acc0[i], vmin, vmax));
      V::store(c + i * ldc + L, clamp<V>(acc1[i], vmin, vmax));
    }
  } else {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      V::store_masked(c + i * ldc, clamp<V>(acc0[i], vmin, vmax), lo);
      V::store_masked(c + i * ldc + L, clamp<V>(acc1[i], vmin, vmax), hi);
    }
  }
}

// tiles[r] computes r rows (tiles[0] unused).
template <class V, std::size_t... R>
constexpr auto make_gemm_tiles(std::index_sequence<R...>) {
  using Fn = typename GemmTile<V>::Fn;
  struct Table {
    Fn fn[sizeof...(R)];
  };
  return Table{{(R == 0 ? nullptr : &gemm_tile<V, static_cast<int>(R == 0 ? 1 : R)>)...}};
}

template <class V, class Tiles>
void gemm(int m, int n, int k, const float* a, Index lda, const float* packed, float* c, Index ldc, Clamp clamp,
          const Tiles& tiles) {
  constexpr int L = V::kLanes, kMr = V::kGemmMr, kNr = 2 * L;
  if (m <= 0 || n <= 0) return;
  const typename V::Vec vmin = V::set1(clamp.min);
  const typename V::Vec vmax = V::set1(clamp.max);
  const int panels = (n + kNr - 1) / kNr;
  const Index panel_stride = static_cast<Index>(k + 1) * kNr;
  Index block = V::kGemmBlockBytes / (panel_stride * static_cast<Index>(sizeof(float)));
  if (block < 1) block = 1;
  const Index row_tiles = (m + kMr - 1) / kMr;
  for (int jb = 0; jb < panels; jb += static_cast<int>(block)) {
    const int je = panels - jb < block ? panels : jb + static_cast<int>(block);
    // The next block of panels [je, jn) is prefetched into L2 in equal shares by the tiles of
    // this block (none after the last block).
    const int jn = panels - je < block ? panels : je + static_cast<int>(block);
    const char* next = reinterpret_cast<const char*>(packed + je * panel_stride);
    const Index next_lines = V::kGemmPrefetch ? (jn - je) * panel_stride * static_cast<Index>(sizeof(float)) / 64 : 0;
    const Index calls = row_tiles * (je - jb);
    const Index share = (next_lines + calls - 1) / calls;
    Index prefetched = 0;
    for (int i0 = 0, rows = 0; i0 < m; i0 += rows) {
      rows = m - i0 < kMr ? m - i0 : kMr;
      // A tile of r < 4 rows runs at the FMA latency (4 cycles per k step for 2r FMAs), so a
      // last MR+1 .. MR+3 rows are split evenly rather than run as MR + (1..3).
      if (m - i0 > kMr && m - i0 < kMr + 4) rows = (m - i0 + 1) / 2;
      const typename GemmTile<V>::Fn tile = tiles.fn[rows];
      const float* ai = a + i0 * lda;
      float* ci = c + i0 * ldc;
      for (int j = jb; j < je; ++j) {
        const int cols = n - j * kNr;
        std::ptrdiff_t lines = next_lines - prefetched;
        if (lines > share) lines = share;
        if (lines > k) lines = k;
        tile(k, ai, lda, packed + j * panel_stride, ci + j * kNr, ldc, vmin, vmax, cols >= kNr, V::mask_first(cols),
             V::mask_first(cols - L), next + 64 * prefetched, static_cast<int>(lines));
        prefetched += lines;
      }
    }
  }
}

}  // namespace
}  // namespace mbf

// Defines the GEMM entry point NAME for vector layer VEC with the shared tiles of every height.
#define MBF_DEFINE_GEMM(VEC, NAME)                                                                       \
  namespace mbf {                                                                                       \
  void NAME(int m, int n, int k, const float* a, std::ptrdiff_t lda, const float* packed, float* c,       \
            std::ptrdiff_t ldc, Clamp clamp) {                                                          \
    static constexpr auto kTiles = make_gemm_tiles<VEC>(std::make_index_sequence<VEC::kGemmMr + 1>{});  \
    gemm<VEC>(m, n, k, a, lda, packed, c, ldc, clamp, kTiles);                                          \
  }                                                                                                     \
  }
