#include "mobilenet_fast/plan.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

namespace mbf {

namespace {

constexpr Clamp kRelu6{0.0f, 6.0f};
constexpr Clamp kLinear{-std::numeric_limits<float>::infinity(),
                        std::numeric_limits<float>::infinity()};

void expect_size(const std::vector<float>& v, std::size_t n, const std::string& what) {
  if (v.size() != n)
    throw InputError(what + " has " + std::to_string(v.size()) + " values, expected " +
                     std::to_string(n));
}

std::size_t pixels(const Conv2dGeom& g) { return static_cast<std::size_t>(g.out_h) * g.out_w; }

}  // namespace

Plan::Plan(const PlanSpec& spec, const KernelTable& kernels)
    : kernels_(kernels), in_h_(spec.in_h), in_w_(spec.in_w), num_classes_(spec.num_classes) {
  if (spec.in_h < 3 || spec.in_w < 3 || spec.in_h > 16384 || spec.in_w > 16384)
    throw InputError("input size " + std::to_string(spec.in_h) + "x" + std::to_string(spec.in_w) +
                     " is outside 3..16384");
  if (spec.blocks.empty()) throw InputError("a plan needs at least one block");
  stem_.in_h = spec.in_h;
  stem_.in_w = spec.in_w;
  stem_.in_channels = 3;
  stem_.out_channels = spec.stem_channels;
  stem_.stride = spec.stem_stride;
  stem_.pad_top = spec.stem_pads[0];
  stem_.pad_left = spec.stem_pads[1];
  stem_.pad_bottom = spec.stem_pads[2];
  stem_.pad_right = spec.stem_pads[3];
  complete_geometry(stem_);
  expect_size(spec.stem_weights, 27u * spec.stem_channels, "stem weights");
  expect_size(spec.stem_bias, spec.stem_channels, "stem bias");
  stem_weights_ = spec.stem_weights;
  stem_bias_ = spec.stem_bias;

  std::size_t largest = static_cast<std::size_t>(spec.in_h) * spec.in_w * 3;
  largest = std::max(largest, pixels(stem_) * stem_.out_channels);
  int h = stem_.out_h, w = stem_.out_w, c = stem_.out_channels;
  for (std::size_t i = 0; i < spec.blocks.size(); ++i) {
    const PlanBlockSpec& b = spec.blocks[i];
    const std::string name = "block " + std::to_string(i);
    Layer L;
    L.dw.in_h = h;
    L.dw.in_w = w;
    L.dw.in_channels = L.dw.out_channels = c;
    L.dw.stride = b.stride;
    L.dw.pad_top = b.pads[0];
    L.dw.pad_left = b.pads[1];
    L.dw.pad_bottom = b.pads[2];
    L.dw.pad_right = b.pads[3];
    try {
      complete_geometry(L.dw);
    } catch (const InputError& e) {
      throw InputError(name + " depthwise: " + e.what());
    }
    L.dw_stride2 = b.stride == 2;
    expect_size(b.dw_weights, 9u * c, name + " depthwise weights");
    expect_size(b.dw_bias, c, name + " depthwise bias");
    L.dw_weights = b.dw_weights;
    L.dw_bias = b.dw_bias;
    if (b.out_channels <= 0) throw InputError(name + " pointwise: output channels must be positive");
    expect_size(b.pw_weights, static_cast<std::size_t>(c) * b.out_channels, name + " pointwise weights");
    expect_size(b.pw_bias, b.out_channels, name + " pointwise bias");
    L.pw_out = b.out_channels;
    L.pw_packed.reset(packed_gemm_size(c, b.out_channels, kernels_.gemm_nr));
    pack_gemm_weights(c, b.out_channels, kernels_.gemm_nr, b.pw_weights.data(), b.pw_bias.data(),
                      L.pw_packed.data());
    largest = std::max(largest, pixels(L.dw) * c);
    largest = std::max(largest, pixels(L.dw) * b.out_channels);
    h = L.dw.out_h;
    w = L.dw.out_w;
    c = b.out_channels;
    layers_.push_back(std::move(L));
  }
  feature_channels_ = c;
  if (num_classes_ < 0) throw InputError("num_classes must be >= 0");
  if (num_classes_ > 0) {
    expect_size(spec.fc_weights, static_cast<std::size_t>(c) * num_classes_, "classifier weights");
    expect_size(spec.fc_bias, num_classes_, "classifier bias");
    fc_packed_.reset(packed_gemm_size(c, num_classes_, kernels_.gemm_nr));
    pack_gemm_weights(c, num_classes_, kernels_.gemm_nr, spec.fc_weights.data(),
                      spec.fc_bias.data(), fc_packed_.data());
  }
  half_ = round_up_to_line(largest);
  arena_.reset(2 * half_);
  pooled_.assign(static_cast<std::size_t>(c), 0.0f);
}

void Plan::run(const float* input, int batch, float* output, bool features_only) {
  std::lock_guard<std::mutex> lock(mutex_);
  const bool features = features_only || num_classes_ == 0;
  const int out_stride = features ? feature_channels_ : num_classes_;
  const std::size_t image = static_cast<std::size_t>(in_h_) * in_w_ * 3;
  float* a = arena_.data();
  float* b = arena_.data() + half_;
  for (int n = 0; n < batch; ++n) {
    kernels_.conv3x3_stem(stem_, input + n * image, stem_weights_.data(), stem_bias_.data(), a, 0,
                          stem_.out_h, kRelu6);
    for (const Layer& L : layers_) {
      const dwconv3x3_fn dw = L.dw_stride2 ? kernels_.dwconv3x3_s2 : kernels_.dwconv3x3_s1;
      dw(L.dw, a, L.dw_weights.data(), L.dw_bias.data(), b, 0, L.dw.out_h, kRelu6);
      const int m = L.dw.out_h * L.dw.out_w;
      kernels_.gemm(m, L.pw_out, L.dw.in_channels, b, L.dw.in_channels, L.pw_packed.data(), a,
                    L.pw_out, kRelu6);
    }
    const Layer& last = layers_.back();
    float* out = output + static_cast<std::ptrdiff_t>(n) * out_stride;
    if (features) {
      kernels_.global_avg_pool(a, last.dw.out_h * last.dw.out_w, feature_channels_, out);
    } else {
      kernels_.global_avg_pool(a, last.dw.out_h * last.dw.out_w, feature_channels_, pooled_.data());
      kernels_.gemm(1, num_classes_, feature_channels_, pooled_.data(), feature_channels_,
                    fc_packed_.data(), out, num_classes_, kLinear);
    }
  }
}

}  // namespace mbf
