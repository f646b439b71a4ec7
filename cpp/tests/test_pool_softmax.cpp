// Global average pooling and softmax of every ISA table against the scalar table and naive
// double-precision references.
#include <algorithm>
#include <initializer_list>
#include <cmath>
#include <string>
#include <vector>

#include "test_support.h"

namespace mbf_test {
namespace {

class GlobalAvgPool : public testing::TestWithParam<std::string> {};
class Softmax : public testing::TestWithParam<std::string> {};

// A float sum of hw terms legitimately drifts by ~sqrt(hw) ulps; beyond 256 pixels the bound
// grows with it (still far below the 1/hw change a skipped pixel makes at the small sizes).
double pool_tol(int hw) { return kTol * std::max(1.0, std::sqrt(hw / 256.0)); }

TEST_P(GlobalAvgPool, Shapes) {
  const mbf::KernelTable& t = table(GetParam());
  const mbf::KernelTable& s = table("scalar");
  std::vector<int> hws{1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 49, 100, 196, 784, 3136};
  if (!quick_mode()) hws.push_back(12544);
  std::uint32_t seed = 1;
  int failing = 0;
  for (int hw : hws)
    for (int c : {1, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100, 256, 1024}) {
      if (failing >= 5) break;
      if (static_cast<long>(hw) * c > 4000000) continue;
      Rng rng(seed++);
      // ReLU6 outputs are what the network pools; a few negative values keep the sign honest.
      const std::vector<float> x = rng.vec(static_cast<std::size_t>(hw) * c, -0.5f, 6.0f);
      const Buffer in(x);
      Buffer got(c), ref(c);
      t.global_avg_pool(in.data(), hw, c, got.data());
      s.global_avg_pool(in.data(), hw, c, ref.data());
      const Expected want = naive_avg_pool(x.data(), hw, c);
      Checker ck(GetParam() + " global_avg_pool hw=" + std::to_string(hw) + " c=" + std::to_string(c));
      for (int i = 0; i < c; ++i) {
        auto at = [&](const char* what) { return [&, what] { return std::string(what) + " at c=" + std::to_string(i); }; };
        ck.near(got[i], want.value[i], want.magnitude[i], pool_tol(hw), at("vs naive"));
        ck.near(ref[i], want.value[i], want.magnitude[i], pool_tol(hw), at("scalar vs naive"));
        ck.near(got[i], ref[i], want.magnitude[i], pool_tol(hw), at("vs scalar"));
      }
      for (const Buffer* b : std::initializer_list<const Buffer*>{&in, &got, &ref}) ck.require(b->guards_intact(), "a guard zone was overwritten");
      ck.require(std::equal(x.begin(), x.end(), in.data()), "the input was modified");
      EXPECT_TRUE(ck.result());
      failing += ck.failures() != 0;
    }
}

// Softmax: relative error 1e-5 per probability (plus 1e-9 absolute for underflowing tails),
// probabilities summing to 1, no overflow for large logits.
TEST_P(Softmax, Shapes) {
  const mbf::KernelTable& t = table(GetParam());
  const mbf::KernelTable& s = table("scalar");
  struct Range {
    float lo, hi;
  };
  const Range ranges[] = {{-1.0f, 1.0f}, {-10.0f, 10.0f}, {-100.0f, 100.0f}, {80.0f, 120.0f}, {-1e4f, -9.99e3f}};
  std::uint32_t seed = 7;
  for (int n : {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 1000, 1001})
    for (const Range& r : ranges) {
      Rng rng(seed++);
      const std::vector<float> x = rng.vec(n, r.lo, r.hi);
      const Buffer in(x);
      Buffer got(n), ref(n);
      t.softmax(in.data(), n, got.data());
      s.softmax(in.data(), n, ref.data());
      const std::vector<double> want = naive_softmax(x.data(), n);
      Checker ck(GetParam() + " softmax n=" + std::to_string(n) + " logits in [" + Checker::fmt(r.lo) + ", " +
                 Checker::fmt(r.hi) + "]");
      double sum = 0.0;
      for (int i = 0; i < n; ++i) {
        auto at = [&](const char* what) { return [&, what] { return std::string(what) + " at i=" + std::to_string(i); }; };
        const double bound = 1e-5 * want[i] + 1e-9;
        ck.within(got[i], want[i], bound, at("vs naive"));
        ck.within(ref[i], want[i], bound, at("scalar vs naive"));
        ck.within(got[i], ref[i], bound, at("vs scalar"));
        sum += got[i];
      }
      ck.require(std::fabs(sum - 1.0) <= 1e-5, "probabilities sum to " + Checker::fmt(sum));
      for (const Buffer* b : std::initializer_list<const Buffer*>{&in, &got, &ref}) ck.require(b->guards_intact(), "a guard zone was overwritten");
      EXPECT_TRUE(ck.result());
    }
}

INSTANTIATE_TEST_SUITE_P(Isa, GlobalAvgPool, testing::ValuesIn(isas_under_test()), IsaName());
INSTANTIATE_TEST_SUITE_P(Isa, Softmax, testing::ValuesIn(isas_under_test()), IsaName());

}  // namespace
}  // namespace mbf_test
