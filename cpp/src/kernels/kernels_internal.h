// Declarations of every kernel variant, for the variant table (variants.cpp), the C++ tests and
// the benchmarks. Where each one's source lives, and how a new one is added: "Adding a kernel" in
// bench/README.md. The SIMD variants are the shared implementations of kernels/f32/ compiled once
// per ISA (kernels/<isa>/<family>_<isa>.cpp, each with that ISA's flags); the rules those
// translation units follow are in kernels/simd/vec_common.h.
#pragma once

#include <type_traits>

#include "mobilenet_fast/kernels.h"

namespace mbf {

// Function types of the kernel families: `dwconv3x3_kernel name;` declares a kernel.
using dwconv3x3_kernel = std::remove_pointer_t<dwconv3x3_fn>;
using conv3x3_kernel = std::remove_pointer_t<conv3x3_fn>;
using gemm_kernel = std::remove_pointer_t<gemm_fn>;
using global_avg_pool_kernel = std::remove_pointer_t<global_avg_pool_fn>;
using softmax_kernel = std::remove_pointer_t<softmax_fn>;
using qgemm_kernel = std::remove_pointer_t<qgemm_fn>;
using qgemm_f32_kernel = std::remove_pointer_t<qgemm_f32_fn>;
using qdwconv3x3_kernel = std::remove_pointer_t<qdwconv3x3_fn>;

// Widest GEMM panel any table packs for.
constexpr int kMaxPanelWidth = 64;

// ---- scalar (portable; the reference of the C++ tests)
dwconv3x3_kernel dwconv3x3_scalar;
conv3x3_kernel conv3x3_stem_scalar;
// The scalar GEMM for any panel width (the scalar variant, gemm_1x8_scalar, uses 8).
void gemm_scalar_nr(int m, int n, int k, const float* a, std::ptrdiff_t lda, const float* packed,
                    float* c, std::ptrdiff_t ldc, Clamp clamp, int panel_width);
constexpr int kGemmNrScalar = 8;
gemm_kernel gemm_1x8_scalar;
global_avg_pool_kernel global_avg_pool_scalar;
softmax_kernel softmax_scalar;
// The int8 GEMM for any panel width (the scalar variant, qgemm_1x8c4_scalar, uses 8): one row and
// column at a time, the reference of the int8 tests.
// c_u8 (requantised) or, when null, c_f32 (float32(acc) * scale).
void qgemm_scalar_nr(int m, int n, int k, const std::uint8_t* a, std::ptrdiff_t lda, const void* packed,
                     std::uint8_t* c_u8, float* c_f32, std::ptrdiff_t ldc, QuantOut out, int panel_width,
                     const std::int32_t* row_add = nullptr);
constexpr int kQgemmNrScalar = 8;
// clamp(q.zero_point + rne(float32(acc) * scale)): the requantisation every int8 kernel performs.
std::uint8_t requantize(std::int32_t acc, float scale, QuantOut q);
qgemm_kernel qgemm_1x8c4_scalar;
qgemm_f32_kernel qgemm_1x8c4_scalar_f32;
qdwconv3x3_kernel qdwconv3x3_scalar;  // any stride

// ---- SIMD variants, by family. Names say what they are: dwconv3x3_s2_avx2_8c is the stride-2
// depthwise kernel on AVX2 with 8 channels per vector, gemm_14x32_avx512 the GEMM with 14x32
// register tiles on AVX-512. Vector layers: kernels/simd/vec_{avx2,avx512,neon}.h; NEON covers
// aarch64 and armv7 with NEON + VFPv4 (-mfpu=neon-vfpv4).
#if defined(MBF_HAVE_X86_KERNELS)
// Depthwise 3x3 (kernels/f32/dwconv3x3.h), any C: the last channel block is masked.
dwconv3x3_kernel dwconv3x3_s1_avx2_8c, dwconv3x3_s2_avx2_8c, dwconv3x3_s1_avx512_16c, dwconv3x3_s2_avx512_16c;
// 3x3 stem conv (kernels/f32/conv3x3_stem.h) for any Cin, Cout and stride 1 or 2.
conv3x3_kernel conv3x3_stem_avx2, conv3x3_stem_avx512;
// Mean over hw pixels (kernels/f32/global_avg_pool.h), any channel count; float32 runs of 32
// pixels summed in float64.
global_avg_pool_kernel global_avg_pool_avx2, global_avg_pool_avx512;
// GEMM (kernels/f32/gemm.h): MR x NR register tiles over panels packed with nr = NR.
constexpr int kGemmMrAvx2 = 6, kGemmNrAvx2 = 16;
constexpr int kGemmMrAvx512 = 14, kGemmNrAvx512 = 32;
gemm_kernel gemm_6x16_avx2, gemm_14x32_avx512;
// int8 GEMM (kernels/int8/qgemm.h): "c4" = k in groups of 4 (kQgemmKr). AVX2 widens to int16
// (vpmaddwd), AVX-512 VNNI uses vpdpbusd.
constexpr int kQgemmMrAvx2 = 6, kQgemmNrAvx2 = 8;
// Pair-limited weights only (qgemm_pairs_fit): vpmaddubsw + vpmaddwd, same panels as qgemm_6x8c4_avx2.
constexpr int kQgemmPairsMrAvx2 = 12;
qgemm_kernel qgemm_pairs_12x8c4_avx2;
qgemm_f32_kernel qgemm_pairs_12x8c4_avx2_f32;
constexpr int kQgemmMrAvx512Vnni = 14, kQgemmNrAvx512Vnni = 32;
qgemm_kernel qgemm_6x8c4_avx2, qgemm_14x32c4_avx512vnni;
qgemm_f32_kernel qgemm_6x8c4_avx2_f32, qgemm_14x32c4_avx512vnni_f32;
// int8 depthwise 3x3: AVX-512 (kernels/int8/qdwconv3x3.h) with products in int16 (|x - zp| * |w|
// <= 255 * 128 fits) summed in int32; AVX2 (avx2/qdwconv3x3_avx2_16c.cpp) with vpmaddwd on
// interleaved pairs of taps.
qdwconv3x3_kernel qdwconv3x3_s1_avx2_16c, qdwconv3x3_s2_avx2_16c, qdwconv3x3_s1_avx512_16c, qdwconv3x3_s2_avx512_16c;
// int16 weights in -255..255 (KernelTable::qdwconv3x3_wide_s1/_s2 of the AVX2 and AVX-512 levels).
qdwconv3x3_kernel qdwconv3x3_wide_s1_avx2_8c, qdwconv3x3_wide_s2_avx2_8c;
qdwconv3x3_kernel qdwconv3x3_wide_s1_avx512_16c, qdwconv3x3_wide_s2_avx512_16c;
// int8 depthwise 3x3 on AVX-512 VNNI (avx512vnni/qdwconv3x3_avx512vnni.cpp): the three kernel rows of a
// column in one vpdpbusd on raw uint8 inputs (the bias absorbs the input zero point).
qdwconv3x3_kernel qdwconv3x3_s1_avx512vnni_16c, qdwconv3x3_s2_avx512vnni_16c;
#endif

#if defined(MBF_HAVE_NEON_KERNELS)
dwconv3x3_kernel dwconv3x3_s1_neon_4c, dwconv3x3_s2_neon_4c;
conv3x3_kernel conv3x3_stem_neon;
global_avg_pool_kernel global_avg_pool_neon;
#if defined(__aarch64__)
constexpr int kGemmMrNeon = 8, kGemmNrNeon = 8;  // 32 q registers: 16 accumulators, 8 A vectors, 2 weights
gemm_kernel gemm_8x8_neon;
#else
constexpr int kGemmMrNeon = 4, kGemmNrNeon = 8;  // 16 q registers: 8 accumulators, 2 weights, 1 broadcast
gemm_kernel gemm_4x8_neon32;
#endif
// int8: the depthwise with vmlal_s16 (any int16 weights; kernels/neon/qkernels_neon.cpp) and the
// widening GEMM on k-major int16 panels (pack_qgemm_weights_k16), smlal by element
// (kernels/neon/qgemm_neon_k16.cpp).
#if defined(__aarch64__)
constexpr int kQgemmMrNeonK16 = 8, kQgemmNrNeonK16 = kQgemmK16Nr;
#else
constexpr int kQgemmMrNeonK16 = 4, kQgemmNrNeonK16 = kQgemmK16Nr;
#endif
qgemm_kernel qgemm_neon_k16;
qgemm_f32_kernel qgemm_neon_k16_f32;
qdwconv3x3_kernel qdwconv3x3_s1_neon_8c, qdwconv3x3_s2_neon_8c;
#if defined(__aarch64__)
// Dot product (sdot, +dotprod) and i8mm (usdot, +i8mm): 5 x 16 tiles, k in groups of 4.
constexpr int kQgemmMrNeonDot = 5, kQgemmNrNeonDot = 16;
qgemm_kernel qgemm_neon_dotprod, qgemm_neon_i8mm;
qgemm_f32_kernel qgemm_neon_dotprod_f32, qgemm_neon_i8mm_f32;
// Dot product, 4 x 16 tiles with a hand-scheduled k loop (in-order cores: Cortex-A55); the same
// panels and input offset as qgemm_neon_dotprod, which it calls for k > 4096.
constexpr int kQgemmMrNeonDotPipelined = 4;
qgemm_kernel qgemm_neon_dotprod_pipelined;
qgemm_f32_kernel qgemm_neon_dotprod_pipelined_f32;
#endif
#endif

}  // namespace mbf
