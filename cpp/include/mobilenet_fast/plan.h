// A Plan owns the folded, packed weights of one MobileNetV1 and the activation arena for one
// input size, and runs the whole network in C++.
#pragma once

#include <array>
#include <mutex>
#include <vector>

#include "mobilenet_fast/aligned_buffer.h"
#include "mobilenet_fast/kernels.h"

namespace mbf {

using Pads = std::array<int, 4>;  // top, left, bottom, right

struct PlanBlockSpec {
  int stride = 1;
  Pads pads{1, 1, 1, 1};
  int out_channels = 0;
  std::vector<float> dw_weights;  // [3][3][C]
  std::vector<float> dw_bias;     // [C]
  std::vector<float> pw_weights;  // [C][out_channels]
  std::vector<float> pw_bias;     // [out_channels]
};

struct PlanSpec {
  int in_h = 0, in_w = 0;
  int stem_stride = 2;
  Pads stem_pads{0, 0, 1, 1};
  int stem_channels = 0;
  std::vector<float> stem_weights;  // HWIO [3][3][3][stem_channels]
  std::vector<float> stem_bias;
  std::vector<PlanBlockSpec> blocks;
  int num_classes = 0;              // 0: feature extractor
  std::vector<float> fc_weights;    // [feature_channels][num_classes]
  std::vector<float> fc_bias;       // [num_classes]
};

class Plan {
 public:
  // Validates that every shape chains (throws InputError naming the layer), then packs weights.
  Plan(const PlanSpec& spec, const KernelTable& kernels);

  int in_h() const { return in_h_; }
  int in_w() const { return in_w_; }
  int num_classes() const { return num_classes_; }
  int feature_channels() const { return feature_channels_; }
  const char* isa() const { return kernels_.isa; }
  std::size_t arena_floats() const { return arena_.size(); }

  // input [batch][in_h][in_w][3] -> output [batch][num_classes] logits, or with
  // features_only (or num_classes == 0) [batch][feature_channels] pooled features.
  // Serialised by a mutex: one Plan may be shared between threads.
  void run(const float* input, int batch, float* output, bool features_only);

 private:
  struct Layer {
    Conv2dGeom dw;
    bool dw_stride2;
    std::vector<float> dw_weights, dw_bias;
    int pw_out;
    AlignedBuffer pw_packed;
  };
  const KernelTable& kernels_;
  int in_h_, in_w_, num_classes_, feature_channels_;
  Conv2dGeom stem_;
  std::vector<float> stem_weights_, stem_bias_;
  std::vector<Layer> layers_;
  AlignedBuffer fc_packed_;
  AlignedBuffer arena_;  // two ping-pong activation buffers, each starting on a cache line
  std::size_t half_ = 0;
  std::vector<float> pooled_;
  std::mutex mutex_;
};

}  // namespace mbf
