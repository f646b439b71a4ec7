// The packed GEMM behind pointwise convolutions and the classifier. For every ISA table: pack B
// with the table's own panel width, run table.gemm, and compare with gemm_scalar_nr on the same
// packed data and with a naive triple loop on the unpacked B.
#include <algorithm>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "kernels/kernels_internal.h"
#include "net_layers.h"
#include "test_support.h"

namespace mbf_test {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
const mbf::Clamp kAllClamps[] = {kRelu6, kLinear, kNarrow, {0.0f, kInf}, {-kInf, 0.0f}};

struct GemmCase {
  int m, n, k;
  std::ptrdiff_t lda, ldc;
  mbf::Clamp clamp;
  bool bias;
};

std::string describe(const GemmCase& c) {
  return "gemm m=" + std::to_string(c.m) + " n=" + std::to_string(c.n) + " k=" + std::to_string(c.k) +
         " lda=" + std::to_string(c.lda) + " ldc=" + std::to_string(c.ldc) + (c.bias ? "" : " no-bias") + " " +
         clamp_name(c.clamp);
}

// Row cuts for splitting M between "threads": 1 row, then chunks that are not multiples of MR.
std::vector<int> row_cuts(int m, int mr) {
  std::vector<int> cuts{0, 1, 1 + mr, m / 2 + 1, m - 1, m};
  for (int& c : cuts) c = std::min(std::max(c, 0), m);
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  return cuts;
}

// Checks one case; see check_conv in test_conv.cpp for the list of properties. The padding
// columns of A (between k and lda) hold NaN, so reading past K shows in the result; the padding
// columns of C (between n and ldc) must stay untouched.
Outcome check_gemm(const std::string& isa, const GemmCase& c, std::uint32_t seed) {
  const mbf::KernelTable& t = table(isa);
  const int nr = t.gemm_nr;
  Rng rng(seed);
  Buffer a(static_cast<std::size_t>(c.m) * c.lda);
  for (int i = 0; i < c.m; ++i)
    for (int p = 0; p < c.k; ++p) a[i * c.lda + p] = rng.uniform(-3.0f, 3.0f);
  const std::vector<float> a_copy(a.data(), a.data() + a.size());
  const float wb = he_bound(c.k);
  const std::vector<float> b = rng.vec(static_cast<std::size_t>(c.k) * c.n, -wb, wb);
  const std::vector<float> bias = rng.vec(c.n, -1.0f, 1.0f);
  const float* bias_p = c.bias ? bias.data() : nullptr;
  Buffer packed(mbf::packed_gemm_size(c.k, c.n, nr));
  mbf::pack_gemm_weights(c.k, c.n, nr, b.data(), bias_p, packed.data());
  const std::vector<float> packed_copy(packed.data(), packed.data() + packed.size());

  const Expected want = naive_gemm(c.m, c.n, c.k, a.data(), c.lda, b.data(), bias_p, c.clamp);
  const std::size_t size = static_cast<std::size_t>(c.m) * c.ldc;
  Buffer got(size), ref(size);
  t.gemm(c.m, c.n, c.k, a.data(), c.lda, packed.data(), got.data(), c.ldc, c.clamp);
  mbf::gemm_scalar_nr(c.m, c.n, c.k, a.data(), c.lda, packed.data(), ref.data(), c.ldc, c.clamp, nr);

  Checker ck(isa + " " + describe(c) + " (mr " + std::to_string(t.gemm_mr) + ", nr " + std::to_string(nr) + ")");
  for (int i = 0; i < c.m; ++i)
    for (std::ptrdiff_t j = 0; j < c.ldc; ++j) {
      const std::size_t o = static_cast<std::size_t>(i) * c.ldc + j;
      auto at = [&](const char* what) {
        return [&, what] { return std::string(what) + " at row " + std::to_string(i) + " col " + std::to_string(j); };
      };
      if (j >= c.n) {
        ck.untouched(got, o, at("padding column of C"));
        ck.untouched(ref, o, at("scalar: padding column of C"));
        continue;
      }
      const std::size_t e = static_cast<std::size_t>(i) * c.n + j;
      ck.near(got[o], want.value[e], want.magnitude[e], kTol, at("vs naive"));
      ck.near(ref[o], want.value[e], want.magnitude[e], kTol, at("gemm_scalar_nr vs naive"));
      ck.near(got[o], ref[o], want.magnitude[e], kTol, at("vs gemm_scalar_nr"));
    }

  // M split between "threads": each chunk a separate call on offset A and C; exactly the full result.
  Buffer parts(size);
  t.gemm(0, c.n, c.k, a.data(), c.lda, packed.data(), parts.data(), c.ldc, c.clamp);  // empty: no-op
  for (std::size_t j = 0; j < size; ++j) ck.untouched(parts, j, [] { return std::string("after an m=0 call"); });
  const std::vector<int> cuts = row_cuts(c.m, t.gemm_mr);
  for (std::size_t s = 0; s + 1 < cuts.size(); ++s)
    t.gemm(cuts[s + 1] - cuts[s], c.n, c.k, a.data() + cuts[s] * c.lda, c.lda, packed.data(),
           parts.data() + cuts[s] * c.ldc, c.ldc, c.clamp);
  for (std::size_t j = 0; j < size; ++j)
    ck.bits(parts[j], got[j], [&] { return "rows split between calls at row " + std::to_string(j / c.ldc); });

  for (const Buffer* buf : std::initializer_list<const Buffer*>{&a, &packed, &got, &ref, &parts})
    ck.require(buf->guards_intact(), "a guard zone around an operand was overwritten");
  ck.require(std::equal(a_copy.begin(), a_copy.end(), a.data(), same_bits) &&
                 std::equal(packed_copy.begin(), packed_copy.end(), packed.data(), same_bits),
             "A or the packed weights were modified");
  EXPECT_TRUE(ck.result());
  return {ck.failures(), ck.worst()};
}

void check_all(const std::string& isa, const std::vector<GemmCase>& cases, std::uint32_t seed) {
  int failing = 0;
  double worst = 0.0;
  for (std::size_t i = 0; i < cases.size() && failing < 5; ++i) {
    const Outcome o = check_gemm(isa, cases[i], seed + static_cast<std::uint32_t>(i) * 7919u);
    failing += o.failures != 0;
    worst = std::max(worst, o.worst);
  }
  if (failing == 5) ADD_FAILURE() << "stopped after 5 failing cases of " << cases.size();
  report_worst(cases.size(), worst);
}

class Gemm : public testing::TestWithParam<std::string> {};

// The packing contract itself: panels of nr columns, bias first, zero-padded past N.
TEST_P(Gemm, PackingLayout) {
  const int nr = table(GetParam()).gemm_nr;
  ASSERT_GE(nr, 1);
  ASSERT_LE(nr, mbf::kMaxPanelWidth);
  const int k = 3, n = 2 * nr + 1;
  std::vector<float> b(static_cast<std::size_t>(k) * n), bias(n);
  for (int p = 0; p < k; ++p)
    for (int j = 0; j < n; ++j) b[p * n + j] = static_cast<float>(1000 * (p + 1) + j);
  for (int j = 0; j < n; ++j) bias[j] = static_cast<float>(-1 - j);
  std::vector<float> packed(mbf::packed_gemm_size(k, n, nr), -7.0f);
  ASSERT_EQ(packed.size(), static_cast<std::size_t>(3) * nr * (k + 1));
  mbf::pack_gemm_weights(k, n, nr, b.data(), bias.data(), packed.data());
  for (int panel = 0; panel < 3; ++panel)
    for (int j = 0; j < nr; ++j) {
      const int col = panel * nr + j;
      const float* base = packed.data() + static_cast<std::ptrdiff_t>(panel) * nr * (k + 1);
      EXPECT_EQ(base[j], col < n ? bias[col] : 0.0f) << "bias of column " << col;
      for (int p = 0; p < k; ++p)
        EXPECT_EQ(base[(p + 1) * nr + j], col < n ? b[p * n + col] : 0.0f) << "B[" << p << "][" << col << "]";
    }
}

// Every M, N, K remainder of the register tile: m 1..MR+1, n 1..NR+1, and a few beyond.
TEST_P(Gemm, Remainders) {
  const mbf::KernelTable& t = table(GetParam());
  std::vector<int> ms, ns;
  for (int m = 1; m <= t.gemm_mr + 1; ++m) ms.push_back(m);
  ms.push_back(2 * t.gemm_mr + 1);
  ms.push_back(3 * t.gemm_mr + 2);
  for (int n = 1; n <= t.gemm_nr + 1; ++n) ns.push_back(n);
  ns.push_back(2 * t.gemm_nr + 3);
  std::vector<int> ks{1, 2, 3, 4, 5, 8, 9, 16, 17, 33};
  if (quick_mode()) ks = {1, 3, 8, 17};
  std::vector<GemmCase> cases;
  std::size_t i = 0;
  for (int k : ks)
    for (int m : ms)
      for (int n : ns) cases.push_back({m, n, k, k, n, kAllClamps[i++ % 5], true});
  check_all(GetParam(), cases, 11);
}

// Row strides larger than the matrix (lda > k, ldc > n) and a null bias.
TEST_P(Gemm, StridedOperandsAndNoBias) {
  const mbf::KernelTable& t = table(GetParam());
  const int mr = t.gemm_mr, nr = t.gemm_nr;
  std::vector<GemmCase> cases;
  std::size_t i = 0;
  for (int m : {1, mr, mr + 1, 2 * mr + 3, 50})
    for (int n : {1, std::max(1, nr - 1), nr, nr + 1, 3 * nr + 5, 100})
      for (int k : {1, 7, 32, 65})
        for (int extra_a : {0, 1, 7})
          for (int extra_c : {0, 1, 13}) {
            if (quick_mode() && (extra_a + extra_c) % 2) continue;
            const bool bias = (i % 3) != 0;
            cases.push_back({m, n, k, k + extra_a, n + extra_c, kAllClamps[i++ % 5], bias});
          }
  check_all(GetParam(), cases, 22);
}

TEST_P(Gemm, ClampVariants) {
  const mbf::KernelTable& t = table(GetParam());
  std::vector<GemmCase> cases;
  for (const mbf::Clamp& cl : kAllClamps)
    for (int k : {5, 64, 300})
      cases.push_back({3 * t.gemm_mr + 1, 2 * t.gemm_nr + 5, k, k, 2 * t.gemm_nr + 5, cl, true});
  check_all(GetParam(), cases, 33);
}

// Every pointwise layer of MobileNetV1 alpha 0.25/0.5/0.75/1.0 at 224 (ReLU6, M = H*W), and the
// classifier (M = 1, N = 1000, linear).
TEST_P(Gemm, MobileNetLayers) {
  std::vector<GemmCase> cases;
  for (double alpha : {0.25, 0.5, 0.75, 1.0}) {
    if (quick_mode() && alpha != 0.25) continue;
    for (const auto& L : mbf_support::mobilenet_v1_layers(alpha, 224, 224)) {
      const int m = L.out_h() * L.out_w(), k = L.in_channels, n = L.out_channels;
      if (L.kind == "pwconv") cases.push_back({m, n, k, k, n, kRelu6, true});
      if (L.kind == "dense") cases.push_back({1, n, k, k, n, kLinear, true});
    }
  }
  check_all(GetParam(), cases, 44);
}

INSTANTIATE_TEST_SUITE_P(Isa, Gemm, testing::ValuesIn(isas_under_test()), IsaName());

}  // namespace
}  // namespace mbf_test
