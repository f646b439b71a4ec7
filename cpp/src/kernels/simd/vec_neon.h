// The vector layer for NEON: 4 float lanes in a q register, on aarch64 (ARMv8.0 Advanced SIMD,
// 32 q registers) and on 32-bit armv7 with NEON + VFPv4 (16 q registers; cpp/CMakeLists.txt gives
// these translation units -mfpu=neon-vfpv4). NEON has no masked loads: a lane mask is the number
// of active leading lanes, and a partial load or store goes through a small buffer (only channel
// counts that are not a multiple of 4 take that path; every MobileNetV1 layer is a multiple of 8).
#pragma once

#include <arm_neon.h>

#include "kernels/simd/vec_common.h"

namespace mbf {
namespace {

struct VecNeon {
  using Vec = float32x4_t;
  using Mask = int;  // active leading lanes, 0..4
  static constexpr int kLanes = 4;

  // ---- tuning of the shared kernels
  static constexpr int kDwTileChannels = 64;
  static constexpr int kDwStripBytes = 16 * 1024;
  static constexpr bool kDwPreloadRow = false;  // inputs streamed through three registers
  static constexpr bool kDwAlignedHead = false;
#if defined(__aarch64__)
  static constexpr int kDwPixels = 8;       // 8 accumulators + 3 weights + 3 inputs of 32 q
  static constexpr int kStemPixels = 4;     // 4 pixels x 4 vectors = 16 accumulators
  static constexpr int kGemmMr = 8;         // 8 x 8 tile: 16 accumulators + 8 A vectors + 2 weights
  static constexpr bool kGemmLaneFma = true;  // fmla by lane: one A load serves four k steps
#else
  static constexpr int kDwPixels = 4;       // 4 accumulators + 3 weights + 3 inputs of 16 q
  static constexpr int kStemPixels = 2;     // 2 pixels x 4 vectors = 8 accumulators
  static constexpr int kGemmMr = 4;         // 4 x 8 tile: 8 accumulators + 2 weights + 1 broadcast
  static constexpr bool kGemmLaneFma = false;  // armv7 has no fused multiply-add by lane
#endif
  static constexpr int kStemVectors = 4;    // output channels per stem chunk: 16
  static constexpr Index kGemmBlockBytes = 128 << 10;
  static constexpr bool kGemmPrefetch = false;
  static constexpr bool kPoolTailFloat64 = true;  // last C % lanes channels: scalar float64 sums
  static constexpr int kPoolAccumulators = 2;

  static MBF_INLINE Mask mask_first(int n) { return n < 0 ? 0 : n < kLanes ? n : kLanes; }
  static MBF_INLINE Mask mask_all() { return kLanes; }
  static MBF_INLINE Mask mask_none() { return 0; }
  static MBF_INLINE Vec zero() { return vdupq_n_f32(0.0f); }
  static MBF_INLINE Vec set1(float x) { return vdupq_n_f32(x); }
  static MBF_INLINE Vec broadcast(const float* p) { return vld1q_dup_f32(p); }
  static MBF_INLINE Vec load(const float* p) { return vld1q_f32(p); }
  static MBF_INLINE Vec load_masked(const float* p, Mask m) {
    if (m >= kLanes) return vld1q_f32(p);
    float t[kLanes] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int i = 0; i < m; ++i) t[i] = p[i];
    return vld1q_f32(t);
  }
  static MBF_INLINE void store(float* p, Vec v) { vst1q_f32(p, v); }
  static MBF_INLINE void store_masked(float* p, Vec v, Mask m) {
    if (m >= kLanes) {
      vst1q_f32(p, v);
      return;
    }
    float t[kLanes];
    vst1q_f32(t, v);
    for (int i = 0; i < m; ++i) p[i] = t[i];
  }
  static MBF_INLINE Vec fma(Vec a, Vec b, Vec c) { return vfmaq_f32(c, a, b); }  // a * b + c
  static MBF_INLINE Vec add(Vec a, Vec b) { return vaddq_f32(a, b); }
  static MBF_INLINE Vec min(Vec a, Vec b) { return vminq_f32(a, b); }
  static MBF_INLINE Vec max(Vec a, Vec b) { return vmaxq_f32(a, b); }
  static MBF_INLINE void prefetch_l2(const char*) {}
#if defined(__aarch64__)
  // acc + b * a[L]
  template <int L>
  static MBF_INLINE Vec fma_lane(Vec acc, Vec b, Vec a) { return vfmaq_laneq_f32(acc, b, a, L); }
#endif
};

}  // namespace
}  // namespace mbf
