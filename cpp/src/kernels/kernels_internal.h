// Declarations of every kernel, for the per-ISA tables, the C++ tests and the benchmarks.
//
// Rule for the ISA translation units (compiled with -mavx2 / -mavx512f ...): use no inline
// function or template shared with other translation units (std::min, std::vector, ...). The
// linker keeps one copy of such functions, and it could be the AVX-512 one, called from the
// scalar path on a CPU without AVX-512. Write small static helpers or intrinsics instead.
#pragma once

#include "mobilenet_fast/kernels.h"

namespace mbf {

// Widest GEMM panel any table packs for.
constexpr int kMaxPanelWidth = 64;

// ---- scalar (portable; the reference of the C++ tests)
void dwconv3x3_scalar(const Conv2dGeom& g, const float* input, const float* weights, const float* bias,
                      float* output, int row_begin, int row_end, Clamp clamp);
void conv3x3_stem_scalar(const Conv2dGeom& g, const float* input, const float* weights, const float* bias,
                         float* output, int row_begin, int row_end, Clamp clamp);
// The scalar GEMM for any panel width (the scalar table uses 8).
void gemm_scalar_nr(int m, int n, int k, const float* a, std::ptrdiff_t lda, const float* packed,
                    float* c, std::ptrdiff_t ldc, Clamp clamp, int panel_width);
void global_avg_pool_scalar(const float* input, int hw, int channels, float* output);
void softmax_scalar(const float* input, int n, float* output);

#if defined(MBF_HAVE_X86_KERNELS)
// ---- AVX2 + FMA (kernels/avx2/)
// Depthwise 3x3, stride 1 / 2, channels in 8-lane vectors (any C: the last block is masked).
void dwconv3x3_s1_avx2_8c(const Conv2dGeom& g, const float* input, const float* weights, const float* bias,
                          float* output, int row_begin, int row_end, Clamp clamp);
void dwconv3x3_s2_avx2_8c(const Conv2dGeom& g, const float* input, const float* weights, const float* bias,
                          float* output, int row_begin, int row_end, Clamp clamp);
// 3x3 conv for any Cin, Cout and stride 1 or 2 (output channels in 8-lane vectors).
void conv3x3_stem_avx2(const Conv2dGeom& g, const float* input, const float* weights, const float* bias,
                       float* output, int row_begin, int row_end, Clamp clamp);
// Mean over hw pixels, any channel count; float32 runs of 32 pixels summed in float64.
void global_avg_pool_avx2(const float* input, int hw, int channels, float* output);
constexpr int kGemmMrAvx2 = 6;
constexpr int kGemmNrAvx2 = 16;
void gemm_6x16_avx2(int m, int n, int k, const float* a, std::ptrdiff_t lda, const float* packed, float* c,
                    std::ptrdiff_t ldc, Clamp clamp);
const KernelTable& avx2_kernels();

// ---- AVX-512 F/BW/VL/DQ (kernels/avx512/)
// Depthwise 3x3, stride 1 / 2, channels in 16-lane vectors (any C: the last block is masked).
void dwconv3x3_s1_avx512_16c(const Conv2dGeom& g, const float* input, const float* weights,
                             const float* bias, float* output, int row_begin, int row_end, Clamp clamp);
void dwconv3x3_s2_avx512_16c(const Conv2dGeom& g, const float* input, const float* weights,
                             const float* bias, float* output, int row_begin, int row_end, Clamp clamp);
// 3x3 conv for any Cin, Cout and stride 1 or 2 (output channels in 16-lane vectors).
void conv3x3_stem_avx512(const Conv2dGeom& g, const float* input, const float* weights, const float* bias,
                         float* output, int row_begin, int row_end, Clamp clamp);
// Mean over hw pixels, any channel count; float32 runs of 32 pixels summed in float64.
void global_avg_pool_avx512(const float* input, int hw, int channels, float* output);
constexpr int kGemmMrAvx512 = 14;
constexpr int kGemmNrAvx512 = 32;
void gemm_14x32_avx512(int m, int n, int k, const float* a, std::ptrdiff_t lda, const float* packed, float* c,
                       std::ptrdiff_t ldc, Clamp clamp);
const KernelTable& avx512_kernels();
#endif

#if defined(MBF_HAVE_NEON_KERNELS)
// ---- NEON (kernels/neon/): aarch64, and armv7 with NEON + VFPv4 (-mfpu=neon-vfpv4)
// Depthwise 3x3, stride 1 / 2, channels in 4-lane q registers (C % 4 channels: scalar tail).
void dwconv3x3_s1_neon_4c(const Conv2dGeom& g, const float* input, const float* weights, const float* bias,
                          float* output, int row_begin, int row_end, Clamp clamp);
void dwconv3x3_s2_neon_4c(const Conv2dGeom& g, const float* input, const float* weights, const float* bias,
                          float* output, int row_begin, int row_end, Clamp clamp);
// 3x3 conv for any Cin, Cout and stride 1 or 2 (output channels in chunks of 16, then 4, then scalar).
void conv3x3_stem_neon(const Conv2dGeom& g, const float* input, const float* weights, const float* bias,
                       float* output, int row_begin, int row_end, Clamp clamp);
// Mean over hw pixels, any channel count; float32 runs of 32 pixels summed in float64.
void global_avg_pool_neon(const float* input, int hw, int channels, float* output);
#if defined(__aarch64__)
constexpr int kGemmMrNeon = 8;  // 32 q registers: 16 accumulators, 8 A vectors, 2 weight vectors
constexpr int kGemmNrNeon = 8;
void gemm_8x8_neon(int m, int n, int k, const float* a, std::ptrdiff_t lda, const float* packed, float* c,
                   std::ptrdiff_t ldc, Clamp clamp);
#else
constexpr int kGemmMrNeon = 4;  // 16 q registers: 8 accumulators, 2 weight vectors, 1 broadcast
constexpr int kGemmNrNeon = 8;
void gemm_4x8_neon32(int m, int n, int k, const float* a, std::ptrdiff_t lda, const float* packed, float* c,
                     std::ptrdiff_t ldc, Clamp clamp);
#endif
const KernelTable& neon_kernels();
#endif

}  // namespace mbf
