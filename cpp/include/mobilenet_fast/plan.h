// A Plan owns the folded, packed weights of one MobileNetV1 and the activation arena for one
// input size, and runs the whole network in C++.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "mobilenet_fast/aligned_buffer.h"
#include "mobilenet_fast/kernels.h"
#include "mobilenet_fast/thread_pool.h"

namespace mbf {

// The activation arena and its workspaces (cpp/src/plan_arena.h).
template <typename T>
struct Workspace;
template <typename T>
class PlanArena;

using Pads = std::array<int, 4>;  // top, left, bottom, right

constexpr int kMaxThreads = 256;
// Largest buffer (in floats) a Plan allocates: every activation, packed weight matrix and band
// buffer holds fewer than 2^31 values, so no index inside a kernel can overflow an int.
constexpr std::size_t kMaxBufferFloats = (std::size_t{1} << 31) - 1;

// Allocation failure with a message saying what could not be allocated (bound to MemoryError).
class OutOfMemory : public std::bad_alloc {
 public:
  explicit OutOfMemory(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

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
  float act_max = 6.0f;             // every conv ends in clamp(0, act_max): 6 = ReLU6, +inf = ReLU
  std::vector<float> fc_weights;    // [feature_channels][num_classes]
  std::vector<float> fc_bias;       // [num_classes]
};

// How the Plan spreads work over its threads and keeps intermediates in cache:
// - one image at a time (batch < threads): every layer is split over the pool, by output rows
//   (stem, depthwise, pointwise with many rows) or by weight panels (pointwise on small maps);
// - batch >= threads: each thread runs whole images with its own workspace, no synchronisation;
// - a depthwise layer whose output would not stay in cache is fused with the pointwise layer
//   after it: a band of depthwise output rows goes to a small per-thread buffer and straight into
//   the GEMM, so the full intermediate never exists.
// Every output value is computed by the same kernel calls in the same order whatever the split,
// so results are bitwise identical for any thread count and batch size.
class Plan {
 public:
  // Validates that every shape chains (throws InputError naming the layer) and that no buffer
  // would hold kMaxBufferFloats or more values (InputError, before allocating anything), then
  // packs weights and allocates every buffer a run needs (run() allocates nothing); an
  // allocation failure throws OutOfMemory saying how much was needed. threads in 1..kMaxThreads.
  Plan(const PlanSpec& spec, const KernelTable& kernels, int threads = 1);
  ~Plan();
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  int in_h() const { return in_h_; }
  int in_w() const { return in_w_; }
  int num_classes() const { return num_classes_; }
  int feature_channels() const { return feature_channels_; }
  const char* isa() const { return kernels_.isa; }
  int threads() const { return threads_; }
  // Floats of activation memory: per workspace two ping-pong buffers and the band buffers.
  std::size_t arena_floats() const;

  // input [batch][in_h][in_w][3] -> output [batch][num_classes] logits, or with
  // features_only (or num_classes == 0) [batch][feature_channels] pooled features.
  // Serialised by a mutex: one Plan may be shared between threads. fork() waits until runs in
  // progress in other threads have finished (a pthread_atfork handler takes every Plan's mutex),
  // so a child never inherits a locked Plan; the thread pool restarts its workers in the child.
  // With check_finite, returns false (output unspecified) if the input holds NaN or Inf; the
  // check runs inside the stem's row tasks, on input rows the stem is about to read, so it costs
  // almost no memory traffic.
  bool run(const float* input, int batch, float* output, bool features_only, bool check_finite = false);

 private:
  struct Layer {
    Conv2dGeom dw;
    bool dw_stride2;
    std::vector<float> dw_weights, dw_bias;
    int pw_out;
    AlignedBuffer pw_packed;
    int band_rows = 0;  // > 0: fused depthwise+pointwise in bands of this many output rows
  };
  // Returns false if check_finite found NaN/Inf in the input.
  bool run_image(const float* input, float* output, bool features, bool check_finite, Workspace<float>& ws,
                 ThreadPool* pool);
  void run_layer(const Layer& L, const float* in, float* dw_out, float* out, float* bands,
                 ThreadPool* pool);
  void gemm_split(int m, int n, int k, const float* a, const float* packed, float* c, Clamp clamp,
                  ThreadPool* pool, int tasks);
  const KernelTable& kernels_;
  int in_h_, in_w_, num_classes_, feature_channels_;
  Clamp act_;
  Conv2dGeom stem_;
  std::vector<float> stem_weights_, stem_bias_;
  std::vector<Layer> layers_;
  AlignedBuffer fc_packed_;
  int threads_ = 1;
  std::unique_ptr<PlanArena<float>> arena_;  // a workspace per thread; [0] serves the split-image mode
  std::unique_ptr<ThreadPool> pool_;
  std::mutex mutex_;
};

}  // namespace mbf
