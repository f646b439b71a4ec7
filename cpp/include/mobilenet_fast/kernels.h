// Kernel signatures shared by every ISA. All tensors are NHWC float32, one image at a time.
//
// Every convolution kernel takes the full geometry (explicit four-sided padding and stride), an
// output row range [row_begin, row_end) so a thread pool can split the work, and a fused clamp
// (ReLU6 is {0, 6}; a linear output is {-inf, +inf}). Bias (BatchNorm folded) is always applied.
#pragma once

#include <array>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace mbf {

// Raised for arguments that are inconsistent; bound to mobilenet_fast.errors.InputError.
struct InputError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

struct Clamp {
  float min;
  float max;
};

// Geometry of a 3x3 convolution over one image.
struct Conv2dGeom {
  int in_h = 0, in_w = 0;
  int in_channels = 0;   // depthwise: channels of input and output
  int out_channels = 0;  // depthwise: equal to in_channels
  int out_h = 0, out_w = 0;
  int stride = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
};

// Fills out_h/out_w from the input size, stride and pads; throws InputError if the geometry is
// impossible (non-positive sizes, pads >= kernel, output smaller than one pixel).
void complete_geometry(Conv2dGeom& g);
// The completed geometry of a 3x3 conv; pads are (top, left, bottom, right).
Conv2dGeom conv_geometry(int in_h, int in_w, int in_channels, int out_channels, int stride,
                         const std::array<int, 4>& pads);

// Depthwise 3x3: weights [3][3][C], bias [C].
using dwconv3x3_fn = void (*)(const Conv2dGeom& g, const float* input, const float* weights,
                              const float* bias, float* output, int row_begin, int row_end,
                              Clamp clamp);
// Standard 3x3 conv (the stem): weights HWIO [3][3][Cin][Cout], bias [Cout].
using conv3x3_fn = void (*)(const Conv2dGeom& g, const float* input, const float* weights,
                            const float* bias, float* output, int row_begin, int row_end,
                            Clamp clamp);
// C[M][N] (row stride ldc) = clamp(A[M][K] (row stride lda) x B + bias), where B and bias were
// packed by pack_gemm_weights() with this table's nr.
using gemm_fn = void (*)(int m, int n, int k, const float* a, std::ptrdiff_t lda,
                         const float* packed_b, float* c, std::ptrdiff_t ldc, Clamp clamp);
// out[C] = mean over hw pixels of in[hw][C].
using global_avg_pool_fn = void (*)(const float* input, int hw, int channels, float* output);
// out[n] = softmax(in[n]).
using softmax_fn = void (*)(const float* input, int n, float* output);

// True when none of the n values is NaN or +-Inf.
bool all_finite(const float* x, std::size_t n);

// Number of floats pack_gemm_weights() writes for a K x N weight matrix and panel width nr.
std::size_t packed_gemm_size(int k, int n, int nr);
// Packs B[K][N] and bias[N] (bias may be null: zeros) into ceil(N/nr) panels, each holding nr
// bias values followed by K rows of nr weights; columns past N are zero.
void pack_gemm_weights(int k, int n, int nr, const float* b, const float* bias, float* packed);

// The kernel families: one entry point each in a KernelTable, one or more variants each in the
// variant table (kernels/variants.cpp).
enum class KernelFamily : int {
  dwconv3x3_s1,
  dwconv3x3_s2,
  conv3x3_stem,
  gemm,
  global_avg_pool,
  softmax,
};
constexpr int kKernelFamilies = 6;
// "dwconv3x3_s1", "gemm", ...
const char* family_name(KernelFamily f);

// The kernels one ISA level runs, a variant per family, chosen once at run time from the variant
// table by the CPU's features (see dispatch.h).
struct KernelTable {
  const char* isa;
  dwconv3x3_fn dwconv3x3_s1;
  dwconv3x3_fn dwconv3x3_s2;
  conv3x3_fn conv3x3_stem;
  gemm_fn gemm;
  int gemm_mr;
  int gemm_nr;
  global_avg_pool_fn global_avg_pool;
  softmax_fn softmax;
  // Name of the variant behind each entry, indexed by KernelFamily (e.g. "gemm_14x32_avx512").
  const char* variant[kKernelFamilies];
};

}  // namespace mbf
