// The int8 vector layers for NEON, for the shared int8 GEMM (kernels/int8/qgemm.h) and depthwise
// (kernels/int8/qdwconv3x3.h) kernels. Included only by the NEON translation units.
//
// QVecNeon (aarch64 and armv7, no extension): the requantisation every NEON int8 kernel shares
// (the widening GEMM, kernels/neon/qgemm_neon_k16.cpp, uses it too) and the depthwise operations:
// inputs widened to int16 minus the zero point, multiplied and widened by vmlal_s16 (exact for any
// int16 weights, so it also serves the zero-pointed weights of legacy uint8 files:
// KernelTable::qdwconv3x3_wide_*).
//
// QVecNeonDot (aarch64 + dot product, Armv8.2 ASIMDDP: Cortex-A55/A76, Neoverse N1): sdot of the
// activations as int8 (x - 128, an exclusive-or of the top bit) with the int8 weights, four k per
// int32 lane. The 128 taken off every activation is given back through the bias: the table packs
// with the input zero point minus 128 (KernelTable::qgemm_input_offset).
//
// QVecNeonI8mm (aarch64 + i8mm, Armv8.6: Cortex-A710, Neoverse V1/N2): usdot, uint8 x int8 as they
// are.
//
// Requantisation: the float32 operations of every ISA (kernels/scalar: requantize): int32 ->
// float32 (round to nearest), one float32 multiply, the clamp in the float domain, round half to
// even (vcvtnq on aarch64; armv7 has no such conversion, so it adds and subtracts 1.5 x 2^23, which
// rounds half to even for the clamped |y| <= 255), so every path gives the scalar reference's bits.
#pragma once

#include <arm_neon.h>

#include <cstring>

#include "kernels/simd/vec_common.h"
#include "mobilenet_fast/kernels.h"

namespace mbf {
namespace {

struct QVecNeon {
  struct Params {
    float32x4_t lo, hi;  // clamp of acc * scale in the float domain: [min - zp, max - zp]
    int32x4_t zp;
  };
  static MBF_INLINE Params params(QuantOut q) {
    return {vdupq_n_f32(static_cast<float>(q.min - q.zero_point)),
            vdupq_n_f32(static_cast<float>(q.max - q.zero_point)), vdupq_n_s32(q.zero_point)};
  }
  static MBF_INLINE int32x4_t rne(float32x4_t y) {
#if defined(__aarch64__)
    return vcvtnq_s32_f32(y);
#else
    const float32x4_t magic = vdupq_n_f32(12582912.0f);  // 1.5 x 2^23
    return vcvtq_s32_f32(vsubq_f32(vaddq_f32(y, magic), magic));
#endif
  }
  // zp + rne(clamp(float32(acc) * scale)) of 4 lanes, as int32 (0..255).
  static MBF_INLINE int32x4_t requant(int32x4_t acc, float32x4_t scale, const Params& q) {
    float32x4_t y = vmulq_f32(vcvtq_f32_s32(acc), scale);
    y = vminq_f32(vmaxq_f32(y, q.lo), q.hi);
    return vaddq_s32(rne(y), q.zp);
  }
  // The first n (<= 4) lanes of v (each 0..255) as bytes.
  static MBF_INLINE void store_bytes4(std::uint8_t* c, int32x4_t v, int n) {
    const uint16x4_t h = vqmovun_s32(v);
    const uint8x8_t b = vqmovn_u16(vcombine_u16(h, h));
    if (n >= 4) {
      vst1_lane_u32(reinterpret_cast<std::uint32_t*>(static_cast<void*>(c)), vreinterpret_u32_u8(b), 0);
      return;
    }
    std::uint8_t t[8];
    vst1_u8(t, b);
    for (int j = 0; j < n; ++j) c[j] = t[j];
  }
  static MBF_INLINE void store_f32x4(float* c, float32x4_t y, int n) {
    if (n >= 4) {
      vst1q_f32(c, y);
      return;
    }
    float t[4];
    vst1q_f32(t, y);
    for (int j = 0; j < n; ++j) c[j] = t[j];
  }

  // ---- depthwise: 8 channels per block
  static constexpr int kDwLanes = 8;
#if defined(__aarch64__)
  static constexpr int kDwPixels = 8;  // 16 accumulator halves + 3 weights + 3 streamed inputs
#else
  static constexpr int kDwPixels = 4;  // 8 accumulator halves + 3 weights + 3 inputs of 16 q
#endif
  using DwMask = int;  // active leading channels, 0..8
  using DwX = int16x8_t;
  struct DwAcc {
    int32x4_t lo, hi;
  };
  static MBF_INLINE DwMask dw_mask_first(int n) { return n >= kDwLanes ? kDwLanes : (n < 0 ? 0 : n); }
  static MBF_INLINE DwX dw_zero_x() { return vdupq_n_s16(0); }
  static MBF_INLINE DwX dw_set_zx(std::int32_t zx) { return vdupq_n_s16(static_cast<std::int16_t>(zx)); }
  static MBF_INLINE DwX dw_load_x(const std::uint8_t* p, DwMask m, DwX zx) {
    uint8x8_t b;
    if (m >= kDwLanes) {
      b = vld1_u8(p);
    } else {
      std::uint8_t t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int j = 0; j < m; ++j) t[j] = p[j];
      b = vld1_u8(t);
    }
    return vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(b)), zx);
  }
  static MBF_INLINE DwX dw_load_w(const std::int16_t* p, DwMask m) {
    if (m >= kDwLanes) return vld1q_s16(p);
    std::int16_t t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int j = 0; j < m; ++j) t[j] = p[j];
    return vld1q_s16(t);
  }
  static MBF_INLINE DwAcc dw_load_bias(const std::int32_t* p, DwMask m) {
    if (m >= kDwLanes) return {vld1q_s32(p), vld1q_s32(p + 4)};
    std::int32_t t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int j = 0; j < m; ++j) t[j] = p[j];
    return {vld1q_s32(t), vld1q_s32(t + 4)};
  }
  static MBF_INLINE DwAcc dw_madd(DwAcc acc, DwX x, DwX w) {
#if defined(__aarch64__)
    // smlal2 on the high halves directly: vmlal_s16 of vget_high_s16 made GCC 12 move every high
    // half out first (a dup per tap; llvm-mca: A72 51% -> see bench/README.md)
    return {vmlal_s16(acc.lo, vget_low_s16(x), vget_low_s16(w)), vmlal_high_s16(acc.hi, x, w)};
#else
    return {vmlal_s16(acc.lo, vget_low_s16(x), vget_low_s16(w)), vmlal_s16(acc.hi, vget_high_s16(x), vget_high_s16(w))};
#endif
  }
  static MBF_INLINE void dw_store(std::uint8_t* o, DwAcc acc, const float* scale, const Params& q, DwMask m) {
    float s[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    const float* sp = scale;
    if (m < kDwLanes) {
      for (int j = 0; j < m; ++j) s[j] = scale[j];
      sp = s;
    }
    const int32x4_t lo = requant(acc.lo, vld1q_f32(sp), q), hi = requant(acc.hi, vld1q_f32(sp + 4), q);
    const uint8x8_t b = vqmovn_u16(vcombine_u16(vqmovun_s32(lo), vqmovun_s32(hi)));
    if (m >= kDwLanes) {
      vst1_u8(o, b);
      return;
    }
    std::uint8_t t[8];
    vst1_u8(t, b);
    for (int j = 0; j < m; ++j) o[j] = t[j];
  }
};

#if defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)
// sdot: 4 columns per accumulator, 4 chunks (NR = 16), the activations shifted into int8.
// MR = 5: 20 accumulators + 4 weights + the broadcasts of 32 q. MR = 6 spilled two accumulators in
// the k loop; the llvm-mca model (bench/arm_model.py) gives 5 rows 43% of the Cortex-A55's sdot
// peak (6 rows: 38%) and 100% of the A76's (92%). Compiled from this template, sdot by lane
// measured worse in both models (29% / 74%: two more live vectors spill); written by hand and
// software-pipelined it reaches 88% / 100% (qgemm_neon_dotprod_pipelined, the level's GEMM; this
// one serves k > 4096 there, and the i8mm level).
struct QVecNeonDot : QVecNeon {
  static constexpr int kCols = 4;
  static constexpr int kChunks = 4;
  static constexpr int kMr = 5;
  using Acc = int32x4_t;
  using W = int8x16_t;  // one k group (4 values) of 4 columns
  using A = int8x16_t;  // the row's 4 activations - 128, in every 32-bit lane
  static MBF_INLINE Acc init(const std::int32_t* bias) { return vld1q_s32(bias); }
  static MBF_INLINE W load_w(const std::int8_t* p) { return vld1q_s8(p); }
  static MBF_INLINE A broadcast_a(const std::uint8_t* p) {
    std::uint32_t v;
    std::memcpy(&v, p, sizeof v);
    return vreinterpretq_s8_u32(vdupq_n_u32(v ^ 0x80808080u));
  }
  static MBF_INLINE Acc dot(Acc acc, A a, W w) { return vdotq_s32(acc, a, w); }
  // The bias is in the accumulator already.
  static MBF_INLINE void store(std::uint8_t* c, Acc acc, const std::int32_t*, const float* scale, const Params& q,
                               int cols, std::int32_t add) {
    store_bytes4(c, requant(vaddq_s32(acc, vdupq_n_s32(add)), vld1q_f32(scale), q), cols);
  }
  static MBF_INLINE void store_f32(float* c, Acc acc, const std::int32_t*, const float* scale, int cols,
                                   std::int32_t add) {
    store_f32x4(c, vmulq_f32(vcvtq_f32_s32(vaddq_s32(acc, vdupq_n_s32(add))), vld1q_f32(scale)), cols);
  }
};
#endif

#if defined(__aarch64__) && defined(__ARM_FEATURE_MATMUL_INT8)
// usdot: uint8 activations x int8 weights as they are (no input offset).
struct QVecNeonI8mm : QVecNeonDot {
  using A = uint8x16_t;
  static MBF_INLINE A broadcast_a(const std::uint8_t* p) {
    std::uint32_t v;
    std::memcpy(&v, p, sizeof v);
    return vreinterpretq_u8_u32(vdupq_n_u32(v));
  }
  static MBF_INLINE Acc dot(Acc acc, A a, W w) { return vusdotq_s32(acc, a, w); }
};
#endif

}  // namespace
}  // namespace mbf
