// The vector layer for AVX-512 F/BW/VL/DQ: 16 float lanes in a zmm, lane masks in a k register.
// Included only by translation units compiled with the avx512 flags (cpp/CMakeLists.txt).
#pragma once

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

#include "kernels/simd/vec_common.h"

namespace mbf {
namespace {

struct VecAvx512 {
  using Vec = __m512;
  using Mask = __mmask16;  // lane l is active when bit l is set; inactive lanes touch no memory
  static constexpr int kLanes = 16;

  // ---- tuning of the shared kernels (the measurements behind them are in their headers)
  static constexpr int kDwTileChannels = 128;  // 9 x 128 weights stay in L1
  static constexpr int kDwStripBytes = 24 * 1024;
  static constexpr int kDwPixels = 8;            // accumulators per depthwise block
  static constexpr bool kDwPreloadRow = true;    // 32 registers: a kernel row's inputs stay live
  static constexpr bool kDwAlignedHead = true;   // unaligned 64-byte loads always split a line
  static constexpr int kStemVectors = 2;         // output channels per stem chunk: 32
  static constexpr int kStemPixels = 8;
  static constexpr int kGemmMr = 14;             // 14 x 32 tile: 28 accumulators
  static constexpr Index kGemmBlockBytes = 384 << 10;
  static constexpr bool kGemmPrefetch = true;    // stream the next block of weights into L2
  static constexpr bool kGemmLaneFma = false;    // broadcast A from memory instead
  static constexpr bool kPoolTailFloat64 = false;  // last C % lanes channels: a masked block
  static constexpr int kPoolAccumulators = 4;

  static MBF_INLINE Mask mask_first(int n) {
    return static_cast<Mask>(n >= kLanes ? 0xFFFFu : n <= 0 ? 0u : (1u << n) - 1u);
  }
  static MBF_INLINE Mask mask_all() { return static_cast<Mask>(0xFFFF); }
  static MBF_INLINE Mask mask_none() { return 0; }
  MBF_X86_FLOAT_OPS(_mm512)
  static MBF_INLINE Vec broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static MBF_INLINE Vec load_masked(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static MBF_INLINE void store_masked(float* p, Vec v, Mask m) { _mm512_mask_storeu_ps(p, m, v); }
};

}  // namespace
}  // namespace mbf
