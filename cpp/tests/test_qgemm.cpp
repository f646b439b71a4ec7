// The int8 pointwise GEMM (uint8 activations x int8 weights -> requantised uint8). For every ISA
// table: pack with the table's panel width, run table.qgemm, and require the exact bytes of a
// naive reference that works from the unpacked weights (int64 sums, the requantisation written
// out in float32). Integer sums are exact, so every ISA must agree to the bit.
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
};

std::string describe(const QgemmCase& c) {
  return "qgemm m=" + std::to_string(c.m) + " n=" + std::to_string(c.n) + " k=" + std::to_string(c.k) +
         " lda=" + std::to_string(c.lda) + " ldc=" + std::to_string(c.ldc) + " in_zp=" + std::to_string(c.in_zp) +
         " out zp/min/max=" + std::to_string(c.out.zero_point) + "/" + std::to_string(c.out.min) + "/" +
         std::to_string(c.out.max) + (c.bias ? "" : " no-bias");
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
  std::vector<std::int32_t> bias(c.n);
  const std::uint32_t bias_range = c.fixed_scale > 0 ? 401 : 200001;
  for (auto& x : bias) x = static_cast<std::int32_t>(rng.next() % bias_range) - static_cast<std::int32_t>(bias_range / 2);
  // Scales that map the typical accumulator range onto a few hundred steps, so outputs span the
  // clamp and many values are ties or near ties after the multiply.
  std::vector<float> scale(c.n);
  for (auto& s : scale)
    s = c.fixed_scale > 0 ? c.fixed_scale : rng.uniform(0.5f, 4.0f) / (64.0f * std::sqrt(static_cast<float>(c.k)) * 40.0f);
  std::vector<unsigned char> packed(mbf::packed_qgemm_bytes(c.k, c.n, t.qgemm_nr) + 64);
  mbf::pack_qgemm_weights(c.k, c.n, t.qgemm_nr, b.data(), c.bias ? bias.data() : nullptr, scale.data(), c.in_zp,
                          packed.data());
  const std::vector<unsigned char> packed_copy(packed);
  const std::vector<std::uint8_t> a_copy(a);

  std::vector<std::uint8_t> want(static_cast<std::size_t>(c.m) * c.ldc, kPad);
  std::vector<float> want_f32(static_cast<std::size_t>(c.m) * c.ldc, -7.0f);
  for (int i = 0; i < c.m; ++i)
    for (int j = 0; j < c.n; ++j) {
      std::int64_t acc = c.bias ? bias[j] : 0;
      for (int p = 0; p < c.k; ++p)
        acc += (static_cast<std::int64_t>(a[i * c.lda + p]) - c.in_zp) * b[static_cast<std::size_t>(p) * c.n + j];
      want[i * c.ldc + j] = reference_requant(acc, scale[j], c.out);
      want_f32[i * c.ldc + j] = static_cast<float>(static_cast<std::int32_t>(acc)) * scale[j];
    }
  // The float32-output entry of the same kernel: float32(acc) * scale, bit for bit.
  std::vector<float> got_f32(want_f32.size(), -7.0f);
  t.qgemm_f32(c.m, c.n, c.k, a.data(), c.lda, packed.data(), got_f32.data(), c.ldc);
  for (std::size_t i = 0; i < want_f32.size(); ++i)
    if (std::memcmp(&got_f32[i], &want_f32[i], sizeof(float)) != 0) {
      ADD_FAILURE() << "float output " << i << ": got " << got_f32[i] << ", want " << want_f32[i];
      break;
    }

  // The whole matrix, then the rows split in uneven chunks (as threads would): same bytes.
  std::vector<std::uint8_t> got(want.size(), kPad), split(want.size(), kPad);
  t.qgemm(c.m, c.n, c.k, a.data(), c.lda, packed.data(), got.data(), c.ldc, c.out);
  const int cuts[] = {0, std::min(c.m, 1), std::min(c.m, 1 + t.qgemm_mr), std::min(c.m, c.m / 2 + 1), c.m};
  for (int s = 0; s + 1 < 5; ++s)
    if (cuts[s + 1] > cuts[s])
      t.qgemm(cuts[s + 1] - cuts[s], c.n, c.k, a.data() + cuts[s] * c.lda, c.lda, packed.data(),
              split.data() + cuts[s] * c.ldc, c.ldc, c.out);
  int bad = 0;
  for (std::size_t i = 0; i < want.size() && bad < 5; ++i)
    if (got[i] != want[i] || split[i] != want[i]) {
      ++bad;
      ADD_FAILURE() << "byte " << i << " (row " << i / c.ldc << ", col " << i % c.ldc << "): got "
                    << int(got[i]) << ", split " << int(split[i]) << ", want " << int(want[i]);
    }
  EXPECT_EQ(a, a_copy) << "the input was modified";
  EXPECT_EQ(packed, packed_copy) << "the packed weights were modified";
}

class Qgemm : public testing::TestWithParam<std::string> {};

// Every remainder of the register tile and of the k groups of 4, with and without zero points.
TEST_P(Qgemm, Remainders) {
  const mbf::KernelTable& t = table(GetParam());
  std::vector<int> ms, ns;
  for (int m = 1; m <= t.qgemm_mr + 4; ++m) ms.push_back(m);
  ms.push_back(3 * t.qgemm_mr + 2);
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
        check_qgemm(GetParam(), {m, n, k, k, n, zps[i % 4], outs[(i / 4) % 4], (i % 5) != 0}, seed++);
        ++i;
      }
}

// Rounding: weights in -1..1 and a scale of 1/8 put about one output in eight exactly halfway
// between two integers, where round-to-nearest-even differs from rounding half away from zero.
TEST_P(Qgemm, TiesRoundToEven) {
  const mbf::KernelTable& t = table(GetParam());
  std::uint32_t seed = 50;
  for (int k : {1, 2, 3, 4, 5, 8})
    for (int m : {1, t.qgemm_mr, t.qgemm_mr + 1}) {
      QgemmCase c{m, 2 * t.qgemm_nr + 1, k, k, 2 * t.qgemm_nr + 1, 0, {128, 0, 255}, true};
      c.wmax = 1;
      c.fixed_scale = 0.125f;
      check_qgemm(GetParam(), c, seed++);
    }
}

// Row strides larger than the matrix: the padding bytes of A must not matter, those of C stay.
TEST_P(Qgemm, StridedOperands) {
  const mbf::KernelTable& t = table(GetParam());
  std::uint32_t seed = 100;
  for (int m : {1, t.qgemm_mr, 2 * t.qgemm_mr + 3})
    for (int n : {1, t.qgemm_nr, 3 * t.qgemm_nr + 5})
      for (int k : {3, 32, 67})
        for (int extra : {1, 13}) check_qgemm(GetParam(), {m, n, k, k + extra, n + extra, 1, {5, 0, 250}, true}, seed++);
}

// Every pointwise layer of MobileNetV1 alpha 0.25-1.0 at 224 (and 128 in quick mode), ReLU6-like
// clamp in the quantised domain.
TEST_P(Qgemm, MobileNetLayers) {
  std::uint32_t seed = 500;
  for (double alpha : {0.25, 0.5, 0.75, 1.0}) {
    if (quick_mode() && alpha != 0.25) continue;
    for (const auto& L : mbf_support::mobilenet_v1_layers(alpha, quick_mode() ? 128 : 224, quick_mode() ? 128 : 224)) {
      const int m = L.out_h() * L.out_w(), k = L.in_channels, n = L.out_channels;
      if (L.kind == "pwconv") check_qgemm(GetParam(), {m, n, k, k, n, 0, {0, 0, 255}, true}, seed++);
      if (L.kind == "dense") check_qgemm(GetParam(), {1, n, k, k, n, 0, {120, 0, 255}, true}, seed++);
    }
  }
}

// Extreme operands: all activations 255 and weights -127 / 127 at the largest MobileNet K, the
// worst case of the int16 widening (AVX2) and of the dot-product lanes.
TEST_P(Qgemm, ExtremeOperands) {
  const mbf::KernelTable& t = table(GetParam());
  for (int sign : {1, -1}) {
    const int m = t.qgemm_mr + 1, n = t.qgemm_nr + 3, k = 1024;
    std::vector<std::uint8_t> a(static_cast<std::size_t>(m) * k, 255);
    std::vector<std::int8_t> b(static_cast<std::size_t>(k) * n, static_cast<std::int8_t>(127 * sign));
    std::vector<float> scale(n, 1.0f / 4096.0f);
    std::vector<unsigned char> packed(mbf::packed_qgemm_bytes(k, n, t.qgemm_nr));
    mbf::pack_qgemm_weights(k, n, t.qgemm_nr, b.data(), nullptr, scale.data(), 0, packed.data());
    std::vector<std::uint8_t> c(static_cast<std::size_t>(m) * n);
    const mbf::QuantOut q{100, 0, 255};
    t.qgemm(m, n, k, a.data(), k, packed.data(), c.data(), n, q);
    const std::uint8_t want = reference_requant(static_cast<std::int64_t>(255) * 127 * sign * k, 1.0f / 4096.0f, q);
    for (std::uint8_t v : c) ASSERT_EQ(int(v), int(want)) << "sign " << sign;
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, Qgemm, testing::ValuesIn(isas_under_test()), IsaName());

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
}

}  // namespace
}  // namespace mbf_test
