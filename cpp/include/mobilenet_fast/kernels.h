// Kernel signatures shared by every ISA. All tensors are NHWC float32, one image at a time.
//
// Every convolution kernel takes the full geometry (explicit four-sided padding and stride), an
// output row range [row_begin, row_end) so a thread pool can split the work, and a fused clamp
// (ReLU6 is {0, 6}; a linear output is {-inf, +inf}). Bias (BatchNorm folded) is always applied.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
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

// ---- int8 (quantised) kernels. Activations are uint8 with a per-tensor zero point, weights int8
// symmetric per output channel; products are summed exactly in int32 and requantised with a
// float32 multiplier per output channel, rounded to nearest even, saturated to the clamp.

// Output quantisation of a quantised kernel: q = clamp(zero_point + rne(acc * scale[n]), min, max).
struct QuantOut {
  std::int32_t zero_point;
  std::uint8_t min, max;  // the fused activation in the quantised domain (ReLU6: q(0)..q(6))
};
// C[M][N] (uint8, row stride ldc) = requantise(A[M][K] (uint8, row stride lda) x B + bias
// + row_add[i]), with B, bias and the per-column scales packed by pack_qgemm_weights() with this
// table's qgemm_nr. row_add (null: none) is one int32 per row added to every column's
// accumulator: the weight-zero-point correction d * sum_k A[i][k] of a layer whose weights are
// B + d (legacy uint8 weights with a zero point, QLayerParams::weight_offset).
using qgemm_fn = void (*)(int m, int n, int k, const std::uint8_t* a, std::ptrdiff_t lda, const void* packed_b,
                          std::uint8_t* c, std::ptrdiff_t ldc, QuantOut out, const std::int32_t* row_add);
// The same product with float32 output: C[M][N] = float32(acc) * scale[n] (no clamp), for logits
// (pack the logit scale input_scale * weight_scale as the column scales).
using qgemm_f32_fn = void (*)(int m, int n, int k, const std::uint8_t* a, std::ptrdiff_t lda, const void* packed_b,
                              float* c, std::ptrdiff_t ldc, const std::int32_t* row_add);
// K values per group in the packed int8 weights (one 32-bit lane of a dot-product instruction).
constexpr int kQgemmKr = 4;
// Widest panel pack_qgemm_weights() packs.
constexpr int kMaxQgemmPanel = 64;
// Bytes pack_qgemm_weights() writes for a K x N weight matrix and panel width nr.
std::size_t packed_qgemm_bytes(int k, int n, int nr);
// Packs B[K][N] int8, bias[N] int32 (may be null: zeros) and scale[N] into ceil(N/nr) panels, each
// holding nr int32 biases (bias - input_zero_point * sum_k B[k][n], so the kernels multiply the raw
// uint8 activations), nr float32 scales, then ceil(K/4) groups of nr columns x 4 consecutive k
// values; columns past N and k past K are zero. Throws InputError for a scale that is not a
// positive finite number, or a corrected bias outside int32.
void pack_qgemm_weights(int k, int n, int nr, const std::int8_t* b, const std::int32_t* bias, const float* scale,
                        std::int32_t input_zero_point, void* packed);
// Pair-limited weights: |B[2j][n]| + |B[2j+1][n]| <= kQgemmPairLimit for every column n and pair
// j (an odd K's last value pairs with 0). A uint8 x int8 pair product then fits int16
// (255 * 128 <= 32767), which lets a table's qgemm_pairs kernel (vpmaddubsw on AVX2) sum pairs
// in int16 exactly. qgemm_pairs_fit() says whether B[K][N] is pair-limited.
constexpr int kQgemmPairLimit = 128;
bool qgemm_pairs_fit(int k, int n, const std::int8_t* b);
// The k-major layout of the NEON widening GEMM (KernelTable::qgemm_k16): panels of
// kQgemmK16Nr columns, each kQgemmK16Nr int32 biases (bias - input_zero_point * sum_k B[k][n]),
// kQgemmK16Nr float32 scales, then K rows (rounded up to a multiple of 8, zero rows) of
// kQgemmK16Nr int16 weights; columns past N are zero. Same checks as pack_qgemm_weights.
constexpr int kQgemmK16Nr = 8;
std::size_t packed_qgemm_k16_panel_bytes(int k);
std::size_t packed_qgemm_k16_bytes(int k, int n);
void pack_qgemm_weights_k16(int k, int n, const std::int8_t* b, const std::int32_t* bias, const float* scale,
                            std::int32_t input_zero_point, void* packed);

// Depthwise 3x3 on uint8 NHWC: out[c] = requantise(bias[c] + sum over the taps inside the image
// of (x - input_zero_point) * w[kh][kw][c]) with the per-channel scales (a tap in the padding adds
// nothing: it is the zero point, i.e. real 0, as in TFLite). Weights, biases and scales packed by
// pack_qdwconv3x3_weights(); the geometry, row range and stride as for the float kernels.
using qdwconv3x3_fn = void (*)(const Conv2dGeom& g, const std::uint8_t* input, std::int32_t input_zero_point,
                               const void* packed, std::uint8_t* output, int row_begin, int row_end, QuantOut out);
// Bytes pack_qdwconv3x3_weights() writes for C channels.
std::size_t packed_qdwconv3x3_bytes(int channels);
// Packs w[3][3][C] int8, bias[C] int32 (null: zeros) and scale[C] (positive, finite; else
// InputError) as C int32 biases, C float32 scales and 9 x C int16 weights.
void pack_qdwconv3x3_weights(int channels, const std::int8_t* w, const std::int32_t* bias, const float* scale,
                             void* packed);
// The same with int16 weights in -255..255 (w - zero point of legacy uint8 weights): only the
// scalar kernel (qdwconv3x3_scalar, int32 products) is exact for those; the SIMD kernels multiply
// in int16 and need |w| <= 128.
void pack_qdwconv3x3_weights(int channels, const std::int16_t* w, const std::int32_t* bias, const float* scale,
                             void* packed);

// The kernel families: one entry point each in a KernelTable, one or more variants each in the
// variant table (kernels/variants.cpp).
enum class KernelFamily : int {
  dwconv3x3_s1,
  dwconv3x3_s2,
  conv3x3_stem,
  gemm,
  global_avg_pool,
  softmax,
  qgemm_u8s8,  // int8 pointwise GEMM: uint8 activations x int8 weights -> requantised uint8
  qdwconv3x3_s1,  // int8 depthwise 3x3, stride 1 / 2
  qdwconv3x3_s2,
  qgemm_u8s8_pairs,  // the int8 GEMM for pair-limited weights only (qgemm_pairs_fit): same packing
};
constexpr int kKernelFamilies = 10;
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
  qgemm_fn qgemm;
  qgemm_f32_fn qgemm_f32;  // the same variant as qgemm, float32 output
  int qgemm_mr;
  int qgemm_nr;
  qdwconv3x3_fn qdwconv3x3_s1;
  qdwconv3x3_fn qdwconv3x3_s2;
  // Valid only for weights that qgemm_pairs_fit(); reads panels packed with qgemm_nr like qgemm
  // (where a level has no faster kernel for such weights, these are qgemm's own entries).
  qgemm_fn qgemm_pairs;
  qgemm_f32_fn qgemm_pairs_f32;
  int qgemm_pairs_mr;
  // Name of the variant behind each entry, indexed by KernelFamily (e.g. "gemm_14x32_avx512").
  const char* variant[kKernelFamilies];
  // Depthwise 3x3 for int16 weights in -255..255 (packed by the int16 pack_qdwconv3x3_weights: a
  // layer whose weights had a zero point), stride 1 / 2: int32-lane kernels on the AVX2 and AVX-512
  // levels, NEON's vmlal_s16 one, else the scalar one (the other SIMD kernels multiply in int16).
  qdwconv3x3_fn qdwconv3x3_wide_s1 = nullptr;
  qdwconv3x3_fn qdwconv3x3_wide_s2 = nullptr;
  // What qgemm / qgemm_pairs subtract from every activation before multiplying (NEON dot
  // product: 128, it multiplies int8 x int8): pack_qgemm_weights for this table with the input
  // zero point minus this offset, which gives it back through the bias. 0 elsewhere.
  int qgemm_input_offset = 0;
  // Whether qgemm / qgemm_pairs read k-major int16 panels (pack_qgemm_weights_k16) instead of
  // pack_qgemm_weights' int8 groups of 4 k.
  bool qgemm_k16 = false;
};

// Packing for a table's qgemm / qgemm_pairs, whatever its layout and input offset: the bytes, the
// stride between panels (of t.qgemm_nr columns), and the packing itself (input_zero_point: the
// activations' real zero point). The bytes include kQgemmPackSlack zeroed bytes after the last
// panel: the pipelined dot-product kernel loads one k group past a panel's last full chunk.
constexpr std::size_t kQgemmPackSlack = 64;
std::size_t qgemm_packed_bytes(const KernelTable& t, int k, int n);
std::size_t qgemm_panel_stride(const KernelTable& t, int k);
void qgemm_pack(const KernelTable& t, int k, int n, const std::int8_t* b, const std::int32_t* bias, const float* scale,
                std::int32_t input_zero_point, void* packed);

}  // namespace mbf
