// The int8 pointwise GEMM (uint8 activations x int8 weights -> requantised uint8). For every ISA
// table: pack with the table's panel width, run table.qgemm, and require the exact bytes of a
// naive reference that works from the unpacked weights (int64 sums, the requantisation written
// out in float32). Integer sums are exact, so every ISA must agree to the bit. Each case runs
// twice: on table.qgemm with any weights, and on table.qgemm_pairs with pair-limited weights
// (|w[2j]| + |w[2j+1]| <= 128, drawn to reach the limit often: the int16 saturation edge of
// vpmaddubsw on AVX2).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/kernels_internal.h"
#include "net_layers.h"
#include "test_support.h"

namespace mbf_test {
namespace {

struct QgemmCase {
  int m, n, k;
  std::ptrdiff_t lda, ldc;
  std::int32_t in_zp;
  mbf::QuantOut out;
  bool bias;
  int wmax = 127;           // weights uniform in [-wmax, wmax]
  float fixed_scale = 0.f;  // > 0: every column's scale (a power of two makes many exact ties)
  bool pairs = false;       // pair-limited weights, run on table.qgemm_pairs
};

// Makes B[K][N] pair-limited: the second weight of a pair that exceeds the limit is cut to what
// the first leaves, so |w0| + |w1| is exactly 128 for those pairs.
void limit_pairs(std::vector<std::int8_t>& b, int k, int n) {
  for (int p = 0; p + 1 < k; p += 2)
    for (int j = 0; j < n; ++j) {
      const int w0 = b[static_cast<std::size_t>(p) * n + j];
      std::int8_t& w1 = b[static_cast<std::size_t>(p + 1) * n + j];
      const int room = mbf::kQgemmPairLimit - std::abs(w0);
      if (std::abs(int(w1)) > room) w1 = static_cast<std::int8_t>(w1 < 0 ? -room : room);
    }
}

std::string describe(const QgemmCase& c) {
  return "qgemm m=" + std::to_string(c.m) + " n=" + std::to_string(c.n) + " k=" + std::to_string(c.k) +
         " lda=" + std::to_string(c.lda) + " ldc=" + std::to_string(c.ldc) + " in_zp=" + std::to_string(c.in_zp) +
         " out zp/min/max=" + std::to_string(c.out.zero_point) + "/" + std::to_string(c.out.min) + "/" +
         std::to_string(c.out.max) + (c.bias ? "" : " no-bias") + (c.pairs ? " pairs" : "");
}

// The requantisation as the header of kernels.h specifies it.
std::uint8_t reference_requant(std::int64_t acc, float scale, mbf::QuantOut q) {
  float y = static_cast<float>(static_cast<std::int32_t>(acc)) * scale;
  const float lo = static_cast<float>(q.min - q.zero_point), hi = static_cast<float>(q.max - q.zero_point);
  y = y < lo ? lo : (y > hi ? hi : y);
  return static_cast<std::uint8_t>(q.zero_point + static_cast<std::int32_t>(std::nearbyint(y)));
}

void check_qgemm(const std::string& isa, const QgemmCase& c, std::uint32_t seed) {
  SCOPED_TRACE(describe(c));
  const mbf::KernelTable& t = table(isa);
  ASSERT_NE(t.qgemm, nullptr);
  Rng rng(seed);
  constexpr std::uint8_t kPad = 0xA5;
  std::vector<std::uint8_t> a(static_cast<std::size_t>(c.m) * c.lda, kPad);
  for (int i = 0; i < c.m; ++i)
    for (int p = 0; p < c.k; ++p) a[i * c.lda + p] = static_cast<std::uint8_t>(rng.next() & 0xFF);
  std::vector<std::int8_t> b(static_cast<std::size_t>(c.k) * c.n);
  for (auto& x : b) x = static_cast<std::int8_t>(static_cast<int>(rng.next() % (2 * c.wmax + 1)) - c.wmax);
  if (c.pairs) {
    limit_pairs(b, c.k, c.n);
    ASSERT_TRUE(mbf::qgemm_pairs_fit(c.k, c.n, b.data()));
  }
  const mbf::qgemm_fn gemm = c.pairs ? t.qgemm_pairs : t.qgemm;
  const mbf::qgemm_f32_fn gemm_f32 = c.pairs ? t.qgemm_pairs_f32 : t.qgemm_f32;
  const int mr = c.pairs ? t.qgemm_pairs_mr : t.qgemm_mr;
  std::vector<std::int32_t> bias(c.n);
  const std::uint32_t bias_range = c.fixed_scale > 0 ? 401 : 200001;
  for (auto& x : bias) x = static_cast<std::int32_t>(rng.next() % bias_range) - static_cast<std::int32_t>(bias_range / 2);
  // Scales that map the typical accumulator range onto a few hundred steps, so outputs span the
  // clamp and many values are ties or near ties after the multiply.
  std::vector<float> scale(c.n);
  for (auto& s : scale)
    s = c.fixed_scale > 0 ? c.fixed_scale : rng.uniform(0.5f, 4.0f) / (64.0f * std::sqrt(static_cast<float>(c.k)) * 40.0f);
  std::vector<unsigned char> packed(mbf::qgemm_packed_bytes(t, c.k, c.n) + 64);
  mbf::qgemm_pack(t, c.k, c.n, b.data(), c.bias ? bias.data() : nullptr, scale.data(), c.in_zp,
                          packed.data());
  const std::vector<unsigned char> packed_copy(packed);
  const std::vector<std::uint8_t> a_copy(a);

  // Two passes: no row_add, then one int32 per row added to every column (the weight-zero-point
  // correction of a legacy uint8 layer: values of either sign, up to d * 255 * K).
  std::vector<std::int32_t> radd(static_cast<std::size_t>(c.m));
  for (auto& x : radd) x = static_cast<std::int32_t>(rng.next() % 400001) - 200000;
  for (int pass = 0; pass < 2; ++pass) {
    SCOPED_TRACE(pass ? "with row_add" : "without row_add");
    const std::int32_t* row_add = pass ? radd.data() : nullptr;
    std::vector<std::uint8_t> want(static_cast<std::size_t>(c.m) * c.ldc, kPad);
    std::vector<float> want_f32(static_cast<std::size_t>(c.m) * c.ldc, -7.0f);
    for (int i = 0; i < c.m; ++i)
      for (int j = 0; j < c.n; ++j) {
        std::int64_t acc = (c.bias ? bias[j] : 0) + (row_add ? row_add[i] : 0);
        for (int p = 0; p < c.k; ++p)
          acc += (static_cast<std::int64_t>(a[i * c.lda + p]) - c.in_zp) * b[static_cast<std::size_t>(p) * c.n + j];
        want[i * c.ldc + j] = reference_requant(acc, scale[j], c.out);
        want_f32[i * c.ldc + j] = static_cast<float>(static_cast<std::int32_t>(acc)) * scale[j];
      }
    // The float32-output entry of the same kernel: float32(acc) * scale, bit for bit.
    std::vector<float> got_f32(want_f32.size(), -7.0f);
    gemm_f32(c.m, c.n, c.k, a.data(), c.lda, packed.data(), got_f32.data(), c.ldc, row_add);
    for (std::size_t i = 0; i < want_f32.size(); ++i)
      if (std::memcmp(&got_f32[i], &want_f32[i], sizeof(float)) != 0) {
        ADD_FAILURE() << "float output " << i << ": got " << got_f32[i] << ", want " << want_f32[i];
        break;
      }

    // The whole matrix, then the rows split in uneven chunks (as threads would): same bytes.
    std::vector<std::uint8_t> got(want.size(), kPad), split(want.size(), kPad);
    gemm(c.m, c.n, c.k, a.data(), c.lda, packed.data(), got.data(), c.ldc, c.out, row_add);
    const int cuts[] = {0, std::min(c.m, 1), std::min(c.m, 1 + mr), std::min(c.m, c.m / 2 + 1), c.m};
    for (int s = 0; s + 1 < 5; ++s)
      if (cuts[s + 1] > cuts[s])
        gemm(cuts[s + 1] - cuts[s], c.n, c.k, a.data() + cuts[s] * c.lda, c.lda, packed.data(),
             split.data() + cuts[s] * c.ldc, c.ldc, c.out, row_add ? row_add + cuts[s] : nullptr);
    int bad = 0;
    for (std::size_t i = 0; i < want.size() && bad < 5; ++i)
      if (got[i] != want[i] || split[i] != want[i]) {
        ++bad;
        ADD_FAILURE() << "byte " << i << " (row " << i / c.ldc << ", col " << i % c.ldc << "): got "
                      << int(got[i]) << ", split " << int(split[i]) << ", want " << int(want[i]);
      }
  }
  EXPECT_EQ(a, a_copy) << "the input was modified";
  EXPECT_EQ(packed, packed_copy) << "the packed weights were modified";
}

class Qgemm : public testing::TestWithParam<std::tuple<std::string, bool>> {
 protected:
  const std::string& isa() const { return std::get<0>(GetParam()); }
  bool pairs() const { return std::get<1>(GetParam()); }
  int mr() const { return pairs() ? table(isa()).qgemm_pairs_mr : table(isa()).qgemm_mr; }
  void check(QgemmCase c, std::uint32_t seed) const {
    c.pairs = pairs();
    check_qgemm(isa(), c, seed);
  }
};

// Every remainder of the register tile and of the k groups of 4, with and without zero points.
TEST_P(Qgemm, Remainders) {
  const mbf::KernelTable& t = table(isa());
  std::vector<int> ms, ns;
  for (int m = 1; m <= mr() + 4; ++m) ms.push_back(m);
  ms.push_back(3 * mr() + 2);
  for (int n = 1; n <= t.qgemm_nr + 1; ++n) ns.push_back(n);
  ns.push_back(2 * t.qgemm_nr + 3);
  std::vector<int> ks{1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33};
  if (quick_mode()) ks = {1, 3, 4, 9};
  const mbf::QuantOut outs[] = {{0, 0, 255}, {7, 7, 200}, {128, 0, 255}, {3, 10, 12}};
  const std::int32_t zps[] = {0, 3, 128, 255};
  std::uint32_t seed = 1;
  std::size_t i = 0;
  for (int k : ks)
    for (int m : ms)
      for (int n : ns) {
        check({m, n, k, k, n, zps[i % 4], outs[(i / 4) % 4], (i % 5) != 0}, seed++);
        ++i;
      }
}

// Long k: odd and even numbers of 16-k chunks (the pipelined dot-product kernel runs its k loop two
// chunks per iteration and reads one chunk ahead), with a k group tail, and k past 4096 (where it
// hands over to the shared kernel).
TEST_P(Qgemm, LongK) {
  const mbf::KernelTable& t = table(isa());
  std::uint32_t seed = 80;
  for (int k : {48, 64, 80, 83, 4095, 4100})
    for (int m : {1, mr() + 1})
      check({m, t.qgemm_nr + 3, k, k + 1, t.qgemm_nr + 3, 9, {128, 0, 255}, true}, seed++);
}

// Rounding: weights in -1..1 and a scale of 1/8 put about one output in eight exactly halfway
// between two integers, where round-to-nearest-even differs from rounding half away from zero.
TEST_P(Qgemm, TiesRoundToEven) {
  const mbf::KernelTable& t = table(isa());
  std::uint32_t seed = 50;
  for (int k : {1, 2, 3, 4, 5, 8})
    for (int m : {1, mr(), mr() + 1}) {
      QgemmCase c{m, 2 * t.qgemm_nr + 1, k, k, 2 * t.qgemm_nr + 1, 0, {128, 0, 255}, true};
      c.wmax = 1;
      c.fixed_scale = 0.125f;
      check(c, seed++);
    }
}

// Row strides larger than the matrix: the padding bytes of A must not matter, those of C stay.
TEST_P(Qgemm, StridedOperands) {
  const mbf::KernelTable& t = table(isa());
  std::uint32_t seed = 100;
  for (int m : {1, mr(), 2 * mr() + 3})
    for (int n : {1, t.qgemm_nr, 3 * t.qgemm_nr + 5})
      for (int k : {3, 32, 67})
        for (int extra : {1, 13}) check({m, n, k, k + extra, n + extra, 1, {5, 0, 250}, true}, seed++);
}

// Every pointwise layer of MobileNetV1 alpha 0.25-1.0 at 224 (and 128 in quick mode), ReLU6-like
// clamp in the quantised domain.
TEST_P(Qgemm, MobileNetLayers) {
  std::uint32_t seed = 500;
  for (double alpha : {0.25, 0.5, 0.75, 1.0}) {
    if (quick_mode() && alpha != 0.25) continue;
    for (const auto& L : mbf_support::mobilenet_v1_layers(alpha, quick_mode() ? 128 : 224, quick_mode() ? 128 : 224)) {
      const int m = L.out_h() * L.out_w(), k = L.in_channels, n = L.out_channels;
      if (L.kind == "pwconv") check({m, n, k, k, n, 0, {0, 0, 255}, true}, seed++);
      if (L.kind == "dense") check({1, n, k, k, n, 0, {120, 0, 255}, true}, seed++);
    }
  }
}

// Extreme operands: all activations 255 and weights -127 / 127 at the largest MobileNet K, the
// worst case of the int16 widening (AVX2) and of the dot-product lanes; for the pairs kernels,
// pairs (127, 1) and (64, 64) times the sign, whose products fill int16 to 32640.
TEST_P(Qgemm, ExtremeOperands) {
  const mbf::KernelTable& t = table(isa());
  for (int sign : {1, -1}) {
    const int m = mr() + 1, n = t.qgemm_nr + 3, k = 1024;
    std::vector<std::uint8_t> a(static_cast<std::size_t>(m) * k, 255);
    std::vector<std::int8_t> b(static_cast<std::size_t>(k) * n, static_cast<std::int8_t>(127 * sign));
    std::int64_t wsum = 127 * k;
    if (pairs()) {
      static const int kPattern[4] = {127, 1, 64, 64};
      for (int p = 0; p < k; ++p)
        for (int j = 0; j < n; ++j) b[static_cast<std::size_t>(p) * n + j] = static_cast<std::int8_t>(kPattern[p % 4] * sign);
      wsum = 128 * (k / 2);
      ASSERT_TRUE(mbf::qgemm_pairs_fit(k, n, b.data()));
    }
    std::vector<float> scale(n, 1.0f / 4096.0f);
    std::vector<unsigned char> packed(mbf::qgemm_packed_bytes(t, k, n));
    mbf::qgemm_pack(t, k, n, b.data(), nullptr, scale.data(), 0, packed.data());
    std::vector<std::uint8_t> c(static_cast<std::size_t>(m) * n);
    const mbf::QuantOut q{100, 0, 255};
    (pairs() ? t.qgemm_pairs : t.qgemm)(m, n, k, a.data(), k, packed.data(), c.data(), n, q, nullptr);
    const std::uint8_t want = reference_requant(static_cast<std::int64_t>(255) * wsum * sign, 1.0f / 4096.0f, q);
    for (std::uint8_t v : c) ASSERT_EQ(int(v), int(want)) << "sign " << sign;
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, Qgemm, testing::Combine(testing::ValuesIn(isas_under_test()), testing::Bool()),
                         [](const testing::TestParamInfo<std::tuple<std::string, bool>>& info) {
                           return std::get<0>(info.param) + (std::get<1>(info.param) ? "_pairs" : "_general");
                         });

// The pair limit itself, at its edges.
TEST(QgemmPacking, PairLimit) {
  auto fit = [](std::vector<std::int8_t> b, int k, int n) { return mbf::qgemm_pairs_fit(k, n, b.data()); };
  EXPECT_TRUE(fit({64, 64}, 2, 1));
  EXPECT_TRUE(fit({127, 1}, 2, 1));
  EXPECT_TRUE(fit({-127, -1}, 2, 1));
  EXPECT_TRUE(fit({-64, 64}, 2, 1));
  EXPECT_FALSE(fit({64, 65}, 2, 1));
  EXPECT_FALSE(fit({127, -2}, 2, 1));
  EXPECT_TRUE(fit({-128, 0}, 2, 1));  // 255 * -128 = -32640 fits int16
  EXPECT_FALSE(fit({-128, -1}, 2, 1));
  EXPECT_TRUE(fit({127}, 1, 1));                     // an odd K's last value pairs with 0
  EXPECT_TRUE(fit({1, 127, 127, 1, 0, 0}, 3, 2));    // pairs run down k: (1, 127) and (127, 1)
  EXPECT_FALSE(fit({100, 0, 100, 0}, 2, 2));         // column 0: (100, 100)
  EXPECT_TRUE(fit({100, 100, 0, 0, 100, 100}, 3, 2));  // (100, 0) per column, then (100, 0) as the odd tail
  EXPECT_TRUE(fit({0, 100, 100, 0}, 4, 1));           // pairs start at even k: (0, 100), (100, 0)
}

TEST(QgemmPacking, RefusesBadScalesAndOverflowingBias) {
  const std::int8_t b[4] = {127, 127, 127, 127};
  std::vector<unsigned char> packed(mbf::packed_qgemm_bytes(4, 1, 8));
  for (float s : {0.0f, -1.0f, std::nanf(""), INFINITY}) {
    const float scale[1] = {s};
    EXPECT_THROW(mbf::pack_qgemm_weights(4, 1, 8, b, nullptr, scale, 0, packed.data()), mbf::InputError) << s;
  }
  const float one[1] = {1.0f};
  const std::int32_t big[1] = {INT32_MIN + 10};
  EXPECT_THROW(mbf::pack_qgemm_weights(4, 1, 8, b, big, one, 255, packed.data()), mbf::InputError);
  EXPECT_THROW(mbf::pack_qgemm_weights(4, 1, 65, b, nullptr, one, 0, packed.data()), mbf::InputError);
  EXPECT_NO_THROW(mbf::pack_qgemm_weights(4, 1, 8, b, nullptr, one, 255, packed.data()));
  std::vector<unsigned char> k16(mbf::packed_qgemm_k16_bytes(4, 1));
  EXPECT_THROW(mbf::pack_qgemm_weights_k16(4, 1, b, big, one, 255, k16.data()), mbf::InputError);
  const float zero[1] = {0.0f};
  EXPECT_THROW(mbf::pack_qgemm_weights_k16(4, 1, b, nullptr, zero, 0, k16.data()), mbf::InputError);
}

// The k-major int16 layout (the NEON widening GEMM's; tested through the kernels on ARM, its
// bytes here on every build): per panel of 8 columns the corrected biases, the scales, then K
// rounded up to 8 rows of 8 int16 weights, zeros past K and N.
TEST(QgemmPacking, K16Layout) {
  const int k = 11, n = 10;
  std::vector<std::int8_t> b(static_cast<std::size_t>(k) * n);
  for (int i = 0; i < k * n; ++i) b[static_cast<std::size_t>(i)] = static_cast<std::int8_t>(i % 251 - 120);
  std::vector<std::int32_t> bias(n);
  std::vector<float> scale(n);
  for (int j = 0; j < n; ++j) {
    bias[static_cast<std::size_t>(j)] = 1000 * j - 3;
    scale[static_cast<std::size_t>(j)] = 0.5f + j;
  }
  const std::int32_t zp = 7;
  ASSERT_EQ(mbf::packed_qgemm_k16_panel_bytes(k), 8u * (8 + 16 * 2));
  std::vector<unsigned char> p(mbf::packed_qgemm_k16_bytes(k, n));
  ASSERT_EQ(p.size(), 2 * mbf::packed_qgemm_k16_panel_bytes(k));
  mbf::pack_qgemm_weights_k16(k, n, b.data(), bias.data(), scale.data(), zp, p.data());
  for (int j = 0; j < 16; ++j) {
    const unsigned char* panel = p.data() + (j / 8) * mbf::packed_qgemm_k16_panel_bytes(k);
    const int col = j % 8;
    std::int32_t got_bias;
    float got_scale;
    std::memcpy(&got_bias, panel + 4 * col, 4);
    std::memcpy(&got_scale, panel + 32 + 4 * col, 4);
    std::int64_t sum = 0;
    for (int q = 0; q < k; ++q) sum += j < n ? b[static_cast<std::size_t>(q) * n + j] : 0;
    EXPECT_EQ(got_bias, j < n ? bias[static_cast<std::size_t>(j)] - zp * sum : 0) << j;
    EXPECT_EQ(got_scale, j < n ? scale[static_cast<std::size_t>(j)] : 1.0f) << j;
    for (int q = 0; q < 16; ++q) {
      std::int16_t w;
      std::memcpy(&w, panel + 64 + 2 * (q * 8 + col), 2);
      EXPECT_EQ(w, (j < n && q < k) ? b[static_cast<std::size_t>(q) * n + j] : 0) << j << " " << q;
    }
  }
}

}  // namespace
}  // namespace mbf_test
