// The int8 pointwise GEMM (uint8 activations x int8 weights -> requantised uint8): one
// implementation for every int8 vector layer QV (kernels/simd/qvec_<isa>.h). Included only by an
// ISA's translation unit, after its vector header.
//
// Weights come packed by pack_qgemm_weights (panels of NR = QV::kCols * QV::kChunks columns:
// NR int32 biases, NR float32 scales, then K/4 groups of NR columns x 4 consecutive k values).
// A tile of MR rows x NR columns keeps MR * kChunks accumulators; per k group it loads kChunks
// weight registers, broadcasts 4 activations of each row and issues one dot-product step per
// accumulator. The sums are exact int32 whatever the ISA, and the requantisation (float32
// multiply, clamp, round to nearest even) is the same float operations on every ISA, so every
// variant gives the same bits as the scalar reference. A last k group shorter than 4 is read
// through a zeroed copy (never past the row).
#pragma once

#include <type_traits>
#include <utility>

#include "kernels/kernels_internal.h"
#include "kernels/simd/vec_common.h"

namespace mbf {
namespace {

// Output policies: requantised uint8, or float32(acc) * scale.
struct QgemmToU8 {
  using T = std::uint8_t;
};
struct QgemmToF32 {
  using T = float;
};

template <class QV, class Out>
using QgemmTileFn = void (*)(int k, const std::uint8_t* a, Index lda, const unsigned char* panel, typename Out::T* c,
                             Index ldc, const typename QV::Params& q, int cols, const std::int32_t* row_add);

template <class QV, int MR, class Out>
void qgemm_tile(int k, const std::uint8_t* a, Index lda, const unsigned char* panel, typename Out::T* c, Index ldc,
                const typename QV::Params& q, int cols, const std::int32_t* row_add) {
  constexpr int NC = QV::kChunks, L = QV::kCols, NR = NC * L;
  const auto* bias = reinterpret_cast<const std::int32_t*>(panel);
  const auto* scale = reinterpret_cast<const float*>(panel + sizeof(std::int32_t) * NR);
  const auto* w = reinterpret_cast<const std::int8_t*>(panel + 2 * sizeof(std::int32_t) * NR);
  // Every loop over the tile is unrolled (constant bounds, #pragma GCC unroll): an accumulator
  // array indexed by a run-time value is kept in memory by GCC 12, which stored and reloaded all
  // 28 accumulators on every k step (measured: about 40% of the vpdpbusd peak, from ~190 GOP/s).
  typename QV::Acc acc[MR][NC];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NC; ++v) acc[i][v] = QV::init(bias + v * L);
  const int full = k / kQgemmKr, rest = k % kQgemmKr;
  for (int g = 0; g < full; ++g, w += NR * kQgemmKr) {
    typename QV::W wv[NC];
#pragma GCC unroll 4
    for (int v = 0; v < NC; ++v) wv[v] = QV::load_w(w + v * L * kQgemmKr);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const typename QV::A x = QV::broadcast_a(a + i * lda + g * kQgemmKr);
#pragma GCC unroll 4
      for (int v = 0; v < NC; ++v) acc[i][v] = QV::dot(acc[i][v], x, wv[v]);
    }
  }
  if (rest) {
    typename QV::W wv[NC];
#pragma GCC unroll 4
    for (int v = 0; v < NC; ++v) wv[v] = QV::load_w(w + v * L * kQgemmKr);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      std::uint8_t t[kQgemmKr] = {0, 0, 0, 0};
      for (int r = 0; r < rest; ++r) t[r] = a[i * lda + full * kQgemmKr + r];
      const typename QV::A x = QV::broadcast_a(t);
#pragma GCC unroll 4
      for (int v = 0; v < NC; ++v) acc[i][v] = QV::dot(acc[i][v], x, wv[v]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    const std::int32_t r = row_add ? row_add[i] : 0;
#pragma GCC unroll 4
    for (int v = 0; v < NC; ++v) {
      if (v * L >= cols) continue;
      if constexpr (std::is_same_v<Out, QgemmToF32>)
        QV::store_f32(c + i * ldc + v * L, acc[i][v], bias + v * L, scale + v * L, cols - v * L, r);
      else
        QV::store(c + i * ldc + v * L, acc[i][v], bias + v * L, scale + v * L, q, cols - v * L, r);
    }
  }
}

template <class QV, class Out, std::size_t... R>
constexpr auto make_qgemm_tiles(std::index_sequence<R...>) {
  struct Table {
    QgemmTileFn<QV, Out> fn[sizeof...(R)];
  };
  return Table{{(R == 0 ? nullptr : &qgemm_tile<QV, static_cast<int>(R == 0 ? 1 : R), Out>)...}};
}

template <class QV, class Out, class Tiles>
void qgemm(int m, int n, int k, const std::uint8_t* a, Index lda, const void* packed, typename Out::T* c, Index ldc,
           QuantOut out, const std::int32_t* row_add, const Tiles& tiles) {
  constexpr int NR = QV::kCols * QV::kChunks, kMr = QV::kMr;
  if (m <= 0 || n <= 0) return;
  const typename QV::Params q = QV::params(out);
  const int panels = (n + NR - 1) / NR;
  const Index groups = (k + kQgemmKr - 1) / kQgemmKr;
  const Index panel_bytes = NR * (2 * static_cast<Index>(sizeof(std::int32_t)) + groups * kQgemmKr);
  const auto* base = static_cast<const unsigned char*>(packed);
  for (int i0 = 0, rows = 0; i0 < m; i0 += rows) {
    rows = m - i0 < kMr ? m - i0 : kMr;
    if (m - i0 > kMr && m - i0 < kMr + 4) rows = (m - i0 + 1) / 2;  // no tile of 1..3 rows at the end
    const QgemmTileFn<QV, Out> tile = tiles.fn[rows];
    for (int j = 0; j < panels; ++j)
      tile(k, a + i0 * lda, lda, base + j * panel_bytes, c + i0 * ldc + j * NR, ldc, q, n - j * NR,
           row_add ? row_add + i0 : nullptr);
  }
}

}  // namespace
}  // namespace mbf

// Defines the int8 GEMM entry points NAME (uint8 output) and NAME_F32 (float32 output) for int8
// vector layer QVEC.
#define MBF_DEFINE_QGEMM(QVEC, NAME, NAME_F32)                                                           \
  namespace mbf {                                                                                       \
  void NAME(int m, int n, int k, const std::uint8_t* a, std::ptrdiff_t lda, const void* packed, std::uint8_t* c, \
            std::ptrdiff_t ldc, QuantOut out, const std::int32_t* row_add) {                            \
    static constexpr auto kTiles = make_qgemm_tiles<QVEC, QgemmToU8>(std::make_index_sequence<QVEC::kMr + 1>{}); \
    qgemm<QVEC, QgemmToU8>(m, n, k, a, lda, packed, c, ldc, out, row_add, kTiles);                      \
  }                                                                                                     \
  void NAME_F32(int m, int n, int k, const std::uint8_t* a, std::ptrdiff_t lda, const void* packed, float* c, \
                std::ptrdiff_t ldc, const std::int32_t* row_add) {                                      \
    static constexpr auto kTiles = make_qgemm_tiles<QVEC, QgemmToF32>(std::make_index_sequence<QVEC::kMr + 1>{}); \
    qgemm<QVEC, QgemmToF32>(m, n, k, a, lda, packed, c, ldc, QuantOut{0, 0, 255}, row_add, kTiles);     \
  }                                                                                                     \
  }
