// The vector layer for AVX2 + FMA: 8 float lanes in a ymm; a lane mask is a ymm whose active
// lanes have their sign bit set (vmaskmovps: inactive lanes touch no memory).
// Included only by translation units compiled with -mavx2 -mfma (cpp/CMakeLists.txt).
#pragma once

#include <immintrin.h>

#include "kernels/simd/vec_common.h"

namespace mbf {
namespace {

// 8 all-ones then 8 zeros: the mask of the first n lanes starts at kAvx2MaskTable + 8 - n.
alignas(64) constexpr std::int32_t kAvx2MaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

struct VecAvx2 {
  using Vec = __m256;
  using Mask = __m256i;
  static constexpr int kLanes = 8;

  // ---- tuning of the shared kernels
  static constexpr int kDwTileChannels = 128;
  static constexpr int kDwStripBytes = 24 * 1024;
  static constexpr int kDwPixels = 8;             // 8 accumulators + 3 weights + 3 inputs of 16 ymm
  static constexpr bool kDwPreloadRow = false;    // inputs streamed through three registers
  static constexpr bool kDwAlignedHead = true;
  static constexpr int kStemVectors = 2;          // output channels per stem chunk: 16
  static constexpr int kStemPixels = 6;           // 6 pixels x 2 vectors = 12 accumulators
  static constexpr int kGemmMr = 6;               // 6 x 16 tile: 12 accumulators + 2 weights + 1 broadcast
  static constexpr Index kGemmBlockBytes = 128 << 10;  // fits a 256 KB L2 too
  static constexpr bool kGemmPrefetch = true;
  static constexpr bool kGemmLaneFma = false;
  static constexpr bool kPoolTailFloat64 = false;  // last C % lanes channels: a masked block
  static constexpr int kPoolAccumulators = 4;

  static MBF_INLINE Mask mask_first(int n) {
    const int k = n < 0 ? 0 : n < kLanes ? n : kLanes;
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kAvx2MaskTable + kLanes - k));
  }
  static MBF_INLINE Mask mask_all() { return _mm256_set1_epi32(-1); }
  static MBF_INLINE Mask mask_none() { return _mm256_setzero_si256(); }
  MBF_X86_FLOAT_OPS(_mm256)
  static MBF_INLINE Vec broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  static MBF_INLINE Vec load_masked(const float* p, Mask m) { return _mm256_maskload_ps(p, m); }
  static MBF_INLINE void store_masked(float* p, Vec v, Mask m) { _mm256_maskstore_ps(p, m, v); }
};

}  // namespace
}  // namespace mbf
