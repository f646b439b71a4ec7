// Whole-network Plan: random He-scaled MobileNetV1 weights, every ISA against the scalar table and
// against a naive double-precision forward pass; a batch equals the single runs it is made of.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "mobilenet_fast/plan.h"
#include "net_layers.h"
#include "test_support.h"

namespace mbf_test {
namespace {

using mbf_support::NetLayer;

mbf::Pads to_pads(const mbf_support::Pads4& p) { return {p[0], p[1], p[2], p[3]}; }

// Random weights at realistic scale: He-uniform (variance 2 / fan_in) for the ReLU6 layers,
// variance 1 / fan_in for the classifier, small biases (folded BatchNorm shifts).
mbf::PlanSpec random_spec(const std::vector<NetLayer>& layers, std::uint32_t seed) {
  Rng rng(seed);
  mbf::PlanSpec s;
  const NetLayer& stem = layers.at(0);
  s.in_h = stem.in_h;
  s.in_w = stem.in_w;
  s.stem_stride = stem.stride;
  s.stem_pads = to_pads(stem.pads);
  s.stem_channels = stem.out_channels;
  s.stem_weights = rng.vec(27u * stem.out_channels, -he_bound(27), he_bound(27));
  s.stem_bias = rng.vec(stem.out_channels, -0.2f, 0.2f);
  for (std::size_t i = 1; i + 1 < layers.size() && layers[i].kind == "dwconv3x3"; i += 2) {
    const NetLayer& dw = layers[i];
    const NetLayer& pw = layers.at(i + 1);
    mbf::PlanBlockSpec b;
    b.stride = dw.stride;
    b.pads = to_pads(dw.pads);
    b.out_channels = pw.out_channels;
    b.dw_weights = rng.vec(9u * dw.in_channels, -he_bound(9), he_bound(9));
    b.dw_bias = rng.vec(dw.in_channels, -0.2f, 0.2f);
    b.pw_weights = rng.vec(static_cast<std::size_t>(pw.in_channels) * pw.out_channels, -he_bound(pw.in_channels),
                           he_bound(pw.in_channels));
    b.pw_bias = rng.vec(pw.out_channels, -0.2f, 0.2f);
    s.blocks.push_back(std::move(b));
  }
  const NetLayer& last = layers.back();
  if (last.kind == "dense") {
    s.num_classes = last.out_channels;
    s.fc_weights = rng.vec(static_cast<std::size_t>(last.in_channels) * last.out_channels,
                           -he_bound(last.in_channels, 1.0), he_bound(last.in_channels, 1.0));
    s.fc_bias = rng.vec(last.out_channels, -0.1f, 0.1f);
  }
  return s;
}

std::vector<float> to_float(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

// Naive forward pass: double accumulation, float activations between layers (as stored by the
// Plan). Returns the logits, or the pooled features when features_only.
std::vector<double> naive_forward(const mbf::PlanSpec& s, const float* image, bool features_only) {
  const mbf::Conv2dGeom g = mbf::conv_geometry(s.in_h, s.in_w, 3, s.stem_channels, s.stem_stride, s.stem_pads);
  std::vector<float> act =
      to_float(naive_conv3x3(g, image, s.stem_weights.data(), s.stem_bias.data(), kRelu6, false).value);
  int h = g.out_h, w = g.out_w, c = g.out_channels;
  for (const mbf::PlanBlockSpec& b : s.blocks) {
    const mbf::Conv2dGeom d = mbf::conv_geometry(h, w, c, c, b.stride, b.pads);
    act = to_float(naive_conv3x3(d, act.data(), b.dw_weights.data(), b.dw_bias.data(), kRelu6, true).value);
    h = d.out_h;
    w = d.out_w;
    act = to_float(naive_gemm(h * w, b.out_channels, c, act.data(), c, b.pw_weights.data(), b.pw_bias.data(), kRelu6).value);
    c = b.out_channels;
  }
  const std::vector<double> features = naive_avg_pool(act.data(), h * w, c).value;
  if (features_only || s.num_classes == 0) return features;
  const std::vector<float> f = to_float(features);
  return naive_gemm(1, s.num_classes, c, f.data(), c, s.fc_weights.data(), s.fc_bias.data(), kLinear).value;
}

// max |got - want| <= rel * max |want|, reported with the worst index.
testing::AssertionResult close_at_scale(const float* got, const std::vector<double>& want, double rel) {
  double scale = 0.0, worst = -1.0;
  std::size_t at = 0;
  for (double v : want) scale = std::max(scale, std::fabs(v));
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(err <= worst)) {  // NaN becomes the worst
      worst = err;
      at = i;
    }
  }
  if (scale > 0.0 && worst <= rel * scale) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "max |error| " << worst << " at index " << at << " (got " << got[at]
                                     << ", want " << want[at] << ") exceeds " << rel << " x scale " << scale;
}

constexpr double kPlanRel = 1e-4;

struct NetCase {
  double alpha;
  int h, w;
  bool tf_same;
};

std::string describe(const NetCase& n) {
  return "alpha " + Checker::fmt(n.alpha) + " " + std::to_string(n.h) + "x" + std::to_string(n.w) +
         (n.tf_same ? " tf_same" : " symmetric");
}

// One image through the ISA plan and the scalar plan, logits and features; both against the
// naive forward pass, the ISA against scalar.
void check_network(const std::string& isa, const NetCase& n, std::uint32_t seed) {
  SCOPED_TRACE(isa + " " + describe(n));
  const auto layers = mbf_support::mobilenet_v1_layers(n.alpha, n.h, n.w, n.tf_same, 1001);
  const mbf::PlanSpec spec = random_spec(layers, seed);
  Rng rng(seed + 1);
  const Buffer image(rng.vec(static_cast<std::size_t>(n.h) * n.w * 3, -1.0f, 1.0f));
  mbf::Plan plan(spec, table(isa));
  mbf::Plan ref_plan(spec, table("scalar"));
  ASSERT_STREQ(plan.isa(), isa.c_str());
  for (bool features_only : {false, true}) {
    SCOPED_TRACE(features_only ? "features" : "logits");
    const std::size_t out_n = features_only ? plan.feature_channels() : plan.num_classes();
    Buffer got(out_n), ref(out_n);
    plan.run(image.data(), 1, got.data(), features_only);
    ref_plan.run(image.data(), 1, ref.data(), features_only);
    const std::vector<double> want = naive_forward(spec, image.data(), features_only);
    ASSERT_EQ(want.size(), out_n);
    EXPECT_TRUE(close_at_scale(got.data(), want, kPlanRel)) << "ISA vs naive";
    EXPECT_TRUE(close_at_scale(ref.data(), want, kPlanRel)) << "scalar vs naive";
    const std::vector<double> ref_d(ref.data(), ref.data() + out_n);
    EXPECT_TRUE(close_at_scale(got.data(), ref_d, kPlanRel)) << "ISA vs scalar";
    EXPECT_TRUE(got.guards_intact() && ref.guards_intact()) << "the plan wrote outside its output";
  }
}

class PlanNet : public testing::TestWithParam<std::string> {};

TEST_P(PlanNet, SmallResolutions) {
  for (double alpha : {0.25, 1.0})
    for (const NetCase& n : {NetCase{alpha, 32, 32, true}, NetCase{alpha, 45, 61, true}, NetCase{alpha, 64, 64, false}})
      check_network(GetParam(), n, 1234);
}

TEST_P(PlanNet, Resolution224) {
  if (quick_mode()) GTEST_SKIP() << "MBF_TEST_QUICK: 224x224 networks skipped";
  for (double alpha : {0.25, 1.0}) check_network(GetParam(), NetCase{alpha, 224, 224, true}, 4321);
}

// A batch of two gives exactly the two single runs (and runs are repeatable): results must not
// depend on the batch an image comes in.
TEST_P(PlanNet, BatchOfTwoEqualsSingleRuns) {
  const int h = quick_mode() ? 48 : 128, w = quick_mode() ? 40 : 96;
  const auto layers = mbf_support::mobilenet_v1_layers(0.5, h, w, true, 1001);
  const mbf::PlanSpec spec = random_spec(layers, 99);
  mbf::Plan plan(spec, table(GetParam()));
  Rng rng(100);
  const std::size_t image = static_cast<std::size_t>(h) * w * 3;
  const Buffer batch(rng.vec(2 * image, -1.0f, 1.0f));
  for (bool features_only : {false, true}) {
    SCOPED_TRACE(features_only ? "features" : "logits");
    const std::size_t out_n = features_only ? plan.feature_channels() : plan.num_classes();
    Buffer both(2 * out_n), first(out_n), second(out_n), again(out_n);
    plan.run(batch.data(), 2, both.data(), features_only);
    plan.run(batch.data(), 1, first.data(), features_only);
    plan.run(batch.data() + image, 1, second.data(), features_only);
    plan.run(batch.data(), 1, again.data(), features_only);
    Checker ck(GetParam() + " batch of 2");
    for (std::size_t i = 0; i < out_n; ++i) {
      ck.bits(both[i], first[i], [&] { return "image 0 at " + std::to_string(i); });
      ck.bits(both[out_n + i], second[i], [&] { return "image 1 at " + std::to_string(i); });
      ck.bits(again[i], first[i], [&] { return "repeated run at " + std::to_string(i); });
    }
    ck.require(both.guards_intact(), "the plan wrote outside its output");
    EXPECT_TRUE(ck.result());
  }
}

// Any thread count and batch size gives exactly the single-thread results: every output value
// is computed by the same kernel calls whatever the split (rows, weight panels, fused bands,
// one image per thread).
TEST_P(PlanNet, ThreadsAndBatchesGiveIdenticalResults) {
  const int h = quick_mode() ? 64 : 160, w = quick_mode() ? 48 : 136;
  const auto layers = mbf_support::mobilenet_v1_layers(quick_mode() ? 0.25 : 0.75, h, w, true, 1001);
  const mbf::PlanSpec spec = random_spec(layers, 7);
  mbf::Plan single(spec, table(GetParam()), 1);
  const std::size_t image = static_cast<std::size_t>(h) * w * 3;
  const int max_batch = quick_mode() ? 3 : 5;
  Rng rng(8);
  const Buffer batch(rng.vec(max_batch * image, -1.0f, 1.0f));
  const std::size_t out_n = single.num_classes();
  Buffer want(max_batch * out_n);
  single.run(batch.data(), max_batch, want.data(), false);
  for (int threads : {2, 3, 4}) {
    mbf::Plan plan(spec, table(GetParam()), threads);
    ASSERT_EQ(plan.threads(), threads);
    for (int n : {1, 2, max_batch}) {
      Buffer got(n * out_n);
      plan.run(batch.data(), n, got.data(), false);
      Checker ck(GetParam() + " threads " + std::to_string(threads) + " batch " + std::to_string(n));
      for (std::size_t i = 0; i < n * out_n; ++i)
        ck.bits(got[i], want[i], [&] { return "value " + std::to_string(i); });
      ck.require(got.guards_intact(), "the plan wrote outside its output");
      EXPECT_TRUE(ck.result());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, PlanNet, testing::ValuesIn(isas_under_test()), IsaName());

TEST(PlanThreads, RejectsOutOfRangeCounts) {
  const auto layers = mbf_support::mobilenet_v1_layers(0.25, 32, 32, true, 10);
  const mbf::PlanSpec spec = random_spec(layers, 1);
  EXPECT_THROW(mbf::Plan(spec, table("scalar"), 0), mbf::InputError);
  EXPECT_THROW(mbf::Plan(spec, table("scalar"), mbf::kMaxThreads + 1), mbf::InputError);
}

// Sizes whose buffers would hold 2^31 values or more are refused before anything is allocated
// (the weights themselves are small: only the activations grow with the input).
TEST(PlanLimits, HugeInputsAreRefusedBeforeAllocating) {
  const auto layers = mbf_support::mobilenet_v1_layers(1.0, 16384, 16384, true, 10);
  const mbf::PlanSpec spec = random_spec(layers, 1);
  try {
    mbf::Plan plan(spec, table("scalar"), 1);
    FAIL() << "a 16384x16384 alpha 1.0 plan needs 2^31-value activations and must be refused";
  } catch (const mbf::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("2^31"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("16384x16384"), std::string::npos) << e.what();
  }
}

// fork() while another thread is inside run(): the pthread_atfork handler waits for that run, so
// the child inherits an unlocked Plan, and the pool starts new workers there. The child's results
// equal the parent's bit for bit; a deadlock fails the test through the timeout.
TEST(PlanFork, ChildOfABusyMultiThreadedPlanRunsIt) {
  MBF_SKIP_FORK_TEST_UNDER_EMULATOR();
  const int h = 64, w = 48;
  const auto layers = mbf_support::mobilenet_v1_layers(0.25, h, w, true, 10);
  const mbf::PlanSpec spec = random_spec(layers, 5);
  mbf::Plan plan(spec, table("scalar"), 3);
  Rng rng(6);
  const std::vector<float> batch = rng.vec(4u * h * w * 3, -1.0f, 1.0f);
  std::vector<float> want(4u * plan.num_classes());
  plan.run(batch.data(), 4, want.data(), false);

  std::atomic<bool> stop{false};
  std::atomic<int> runs{0};
  std::thread busy([&] {
    std::vector<float> out(want.size());
    while (!stop.load()) {
      plan.run(batch.data(), 1 + runs.load() % 4, out.data(), false);
      runs.fetch_add(1);
    }
  });
  while (runs.load() < 3) std::this_thread::yield();
  for (int child = 0; child < 4; ++child) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      std::vector<float> got(want.size());
      int code = 0;
      for (int n : {1, 4, 2}) {
        std::fill(got.begin(), got.end(), 0.0f);
        plan.run(batch.data(), n, got.data(), false);
        if (std::memcmp(got.data(), want.data(), n * plan.num_classes() * sizeof(float)) != 0) code = 1;
      }
      _exit(code);
    }
    EXPECT_EQ(wait_for_child(pid, 60), 0) << "child " << child << " (-1: deadlock, 1: wrong logits)";
  }
  stop = true;
  busy.join();
}

}  // namespace
}  // namespace mbf_test
