// Global average pooling, float32 NHWC: out[c] = mean over hw pixels of in[p][c]; one
// implementation for every vector layer V. Included only by an ISA's translation unit.
//
// Per block of channels: V::kPoolAccumulators float32 accumulators over runs of at most 32
// pixels (so each sums only a few values), then each run's total is added to per-lane float64
// sums. Precise for any pixel count and still one pass of cheap float adds. (The float64 sums are
// kept in memory: 2 runs per block at 7x7, so their cost does not show.)
#pragma once

#include "kernels/simd/vec_common.h"

namespace mbf {
namespace {

template <class V, bool kMasked>
MBF_INLINE void pool_block(const float* base, int hw, Index C, typename V::Mask m, float* out) {
  using Vec = typename V::Vec;
  constexpr int kRun = 32, kAcc = V::kPoolAccumulators;
  static_assert(kAcc == 2 || kAcc == 4, "the run total below adds 2 or 4 accumulators");
  double sum[V::kLanes] = {};
  for (int p0 = 0; p0 < hw; p0 += kRun) {
    const int p1 = imin(hw, p0 + kRun);
    Vec acc[kAcc];
    for (int i = 0; i < kAcc; ++i) acc[i] = V::zero();
    int p = p0;
    for (; p + kAcc <= p1; p += kAcc)
      for (int i = 0; i < kAcc; ++i) acc[i] = V::add(acc[i], load_maybe_masked<V, kMasked>(base + (p + i) * C, m));
    for (; p < p1; ++p) acc[0] = V::add(acc[0], load_maybe_masked<V, kMasked>(base + p * C, m));
    Vec s = V::add(acc[0], acc[1]);
    if constexpr (kAcc == 4) s = V::add(s, V::add(acc[2], acc[3]));
    float run[V::kLanes];
    V::store(run, s);
    for (int l = 0; l < V::kLanes; ++l) sum[l] += run[l];
  }
  float mean[V::kLanes];
  for (int l = 0; l < V::kLanes; ++l) mean[l] = static_cast<float>(sum[l] / hw);
  store_maybe_masked<V, kMasked>(out, V::load(mean), m);
}

template <class V>
void global_avg_pool(const float* in, int hw, int channels, float* out) {
  constexpr int L = V::kLanes;
  int c0 = 0;
  for (; c0 + L <= channels; c0 += L) pool_block<V, false>(in + c0, hw, channels, V::mask_all(), out + c0);
  if (c0 == channels) return;
  if constexpr (V::kPoolTailFloat64) {
    // Without masked loads the last channels are summed one at a time, straight into float64.
    for (int ch = c0; ch < channels; ++ch) {
      double sum = 0.0;
      for (int p = 0; p < hw; ++p) sum += in[static_cast<Index>(p) * channels + ch];
      out[ch] = static_cast<float>(sum / hw);
    }
  } else {
    pool_block<V, true>(in + c0, hw, channels, V::mask_first(channels - c0), out + c0);
  }
}

}  // namespace
}  // namespace mbf

#define MBF_DEFINE_GLOBAL_AVG_POOL(VEC, NAME) \
  namespace mbf {                             \
  void NAME(const float* in, int hw, int channels, float* out) { global_avg_pool<VEC>(in, hw, channels, out); } \
  }
