// The int8 MobileNetV1 network, planned once and run in C++ (the arithmetic of the int8 kernels;
// the parameters come from mobilenet_fast.quantization): the float32 input is quantised to
// uint8, the stem runs as the int8 GEMM over 3x3x3 patches (padding: the input zero point), then
// 13 x (int8 depthwise 3x3, int8 pointwise GEMM), the global average pool in int32 sums
// requantised to uint8, and the classifier as the int8 GEMM with float32 logits. Every
// intermediate is uint8 and every sum exact, so the logits are the same bits on every ISA and for
// any thread count or batch split.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mobilenet_fast/aligned_buffer.h"
#include "mobilenet_fast/kernels.h"
#include "mobilenet_fast/plan.h"  // Pads, kMaxThreads
#include "mobilenet_fast/thread_pool.h"

namespace mbf {

// One quantised conv layer: int8 weights in the canonical layout (stem HWIO [3][3][3][C],
// depthwise [3][3][C], pointwise and classifier [Cin][Cout]), int32 biases at the accumulator's
// scale, per-channel float32 multipliers (input scale x weight scale / output scale; for the
// classifier input scale x weight scale, the logit scale), the output's zero point and clamp.
//
// weight_offset d: the layer's weights are weights + d (int8 + d, so in -255..255 for |d| <= 128):
// weights with a zero point, as legacy uint8 .tflite files have, shifted into int8. A GEMM layer
// then adds d x (the sum of each input row's uint8 codes) to the row's accumulators (the
// kernels' row_add; the bias absorbs -zero point x K x d), a depthwise layer runs int16 weights
// on the table's qdwconv3x3_wide_s1/_s2 (AVX-512's int32-lane kernel, else the scalar one).
struct QLayerParams {
  std::vector<std::int8_t> weights;
  std::vector<std::int32_t> bias;
  std::vector<float> multiplier;
  QuantOut out{0, 0, 255};
  std::int32_t weight_offset = 0;
};

struct QPlanBlock {
  int stride = 1;
  Pads pads{1, 1, 1, 1};
  int out_channels = 0;  // of the pointwise layer
  QLayerParams dw, pw;
};

struct QPlanSpec {
  int in_h = 0, in_w = 0;
  float input_scale = 1.0f;  // q = clamp(rne(x * (1 / input_scale)) + input_zero_point, 0, 255)
  std::int32_t input_zero_point = 0;
  // Divide by input_scale instead (rne(x / input_scale)): how onnxruntime's QuantizeLinear
  // rounds, for a model imported from a quantised ONNX file; the reciprocal is LiteRT's way.
  bool input_divide = false;
  int stem_stride = 2;
  Pads stem_pads{0, 0, 1, 1};
  int stem_channels = 0;
  QLayerParams stem;
  std::vector<QPlanBlock> blocks;
  // The pool: its input's scale and zero point (the last block's output) and its output's.
  double pool_in_scale = 1.0, pool_out_scale = 1.0;
  std::int32_t pool_in_zero_point = 0, pool_out_zero_point = 0;
  // Round the pool's average half up, in integers: (sum of codes + HW / 2) / HW - what TFLite's
  // quantised AVERAGE_POOL_2D computes (LiteRT's XNNPACK and its builtin kernel alike), which
  // requires the same scale and zero point on both sides. Default: the float32 multiplier
  // in_scale / (HW x out_scale) and round half to even.
  bool pool_half_up = false;
  int num_classes = 0;  // 0: feature extractor (the pooled uint8 features, dequantised)
  QLayerParams fc;
};

class QPlan {
 public:
  // Checks every shape and parameter (InputError naming the problem), packs the weights for
  // `kernels`, allocates the buffers for `threads` images in flight.
  QPlan(const QPlanSpec& spec, const KernelTable& kernels, int threads = 1);
  ~QPlan();
  QPlan(const QPlan&) = delete;
  QPlan& operator=(const QPlan&) = delete;

  int in_h() const { return in_h_; }
  int in_w() const { return in_w_; }
  int num_classes() const { return num_classes_; }
  int feature_channels() const { return feature_channels_; }
  int threads() const { return threads_; }
  const char* isa() const { return kernels_.isa; }
  // GEMM layers (stem, pointwise, classifier) whose weights are pair-limited (qgemm_pairs_fit),
  // which run on the table's qgemm_pairs kernel, and all GEMM layers. Same results either way.
  int pair_limited_layers() const { return pair_layers_; }
  int gemm_layers() const { return gemm_layers_; }

  // input [batch][in_h][in_w][3] float32 (normalised) -> [batch][num_classes] float32 logits, or
  // with features_only (or no classifier) the dequantised pooled features. False (and nothing
  // useful in output) if an input value is NaN or infinite.
  bool run(const float* input, int batch, float* output, bool features_only);

 private:
  struct Block {
    Conv2dGeom dw;
    AlignedArray<unsigned char> dw_packed, pw_packed;
    QuantOut dw_out, pw_out;
    std::int32_t dw_in_zp = 0, pw_in_zp = 0;
    int pw_channels = 0;
    bool pw_pairs = false;
    bool dw_wide = false;        // int16 weights (a weight offset): the table's qdwconv3x3_wide_s1/_s2
    std::int32_t pw_offset = 0;  // QLayerParams::weight_offset of the pointwise layer
  };
  struct Buffers {
    AlignedArray<std::uint8_t> a, b, patches, pooled;
    AlignedArray<std::int32_t> row_add;  // a GEMM's d x row sums (layers with a weight offset)
  };
  static std::size_t pixels_of(const Conv2dGeom& g);
  bool run_image(const float* input, float* output, bool features, Buffers& buf, ThreadPool* pool);
  void gemm_split(int m, int n, int k, const std::uint8_t* a, const unsigned char* packed, std::uint8_t* c,
                  QuantOut q, bool pairs, std::int32_t offset, Buffers& buf, ThreadPool* pool);
  // Packs a GEMM layer (K x N), its weight offset folded into the bias (InputError where the
  // accumulator could overflow int32), for the table's qgemm (qgemm_pack).
  static void pack_gemm_layer(const KernelTable& kernels, const QLayerParams& p, int k, int n,
                              std::int32_t input_zero_point, AlignedArray<unsigned char>& packed,
                              const std::string& name);
  // Whether B[K][N] may run on qgemm_pairs, counted in pair_layers_ / gemm_layers_.
  bool use_pairs(int k, int n, const std::int8_t* b);

  const KernelTable& kernels_;
  int in_h_, in_w_, num_classes_, feature_channels_, threads_;
  float input_scale_;
  std::int32_t input_zp_;
  bool input_divide_ = false;
  Conv2dGeom stem_;
  AlignedArray<unsigned char> stem_packed_, fc_packed_;
  QuantOut stem_out_;
  bool stem_pairs_ = false, fc_pairs_ = false;
  std::int32_t stem_offset_ = 0, fc_offset_ = 0;
  bool pool_half_up_ = false;
  int pair_layers_ = 0, gemm_layers_ = 0;
  std::vector<Block> blocks_;
  float pool_multiplier_;
  double pool_out_scale_;
  std::int32_t pool_in_zp_, pool_out_zp_;
  std::vector<Buffers> buffers_;
  std::unique_ptr<ThreadPool> pool_;
  std::mutex mutex_;
};

}  // namespace mbf
