// The int8 depthwise 3x3 (stride 1 and 2). For every ISA table: the exact bytes of a naive
// reference that works from the unpacked weights (padding taps skipped, int64 sums, the
// requantisation written out in float32), for whole outputs and for rows split into ranges (rows
// outside a range untouched), on the MobileNetV1 layers and on small odd shapes with every pad.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/kernels_internal.h"
#include "net_layers.h"
#include "test_support.h"

namespace mbf_test {
namespace {

std::uint8_t requant_ref(std::int64_t acc, float scale, mbf::QuantOut q) {
  float y = static_cast<float>(static_cast<std::int32_t>(acc)) * scale;
  const float lo = static_cast<float>(q.min - q.zero_point), hi = static_cast<float>(q.max - q.zero_point);
  y = y < lo ? lo : (y > hi ? hi : y);
  return static_cast<std::uint8_t>(q.zero_point + static_cast<std::int32_t>(std::nearbyint(y)));
}

struct QdwCase {
  int h, w, c, stride;
  mbf_support::Pads4 pads;
  std::int32_t zx;
  mbf::QuantOut out;
  bool wide = false;  // int16 weights in -255..255 on the table's qdwconv3x3_wide_s1/_s2
};

void check_qdw(const std::string& isa, const QdwCase& k, std::uint32_t seed) {
  mbf::Conv2dGeom g = mbf::conv_geometry(k.h, k.w, k.c, k.c, k.stride, k.pads);
  SCOPED_TRACE("qdwconv3x3 s" + std::to_string(k.stride) + " " + std::to_string(k.h) + "x" + std::to_string(k.w) +
               "x" + std::to_string(k.c) + " pads " + std::to_string(k.pads[0]) + std::to_string(k.pads[1]) +
               std::to_string(k.pads[2]) + std::to_string(k.pads[3]) + " zx " + std::to_string(k.zx) +
               (k.wide ? " wide" : ""));
  const mbf::KernelTable& t = table(isa);
  const mbf::qdwconv3x3_fn fn = k.wide ? (k.stride == 2 ? t.qdwconv3x3_wide_s2 : t.qdwconv3x3_wide_s1)
                                       : (k.stride == 2 ? t.qdwconv3x3_s2 : t.qdwconv3x3_s1);
  ASSERT_NE(fn, nullptr);
  Rng rng(seed);
  const int C = k.c;
  std::vector<std::uint8_t> in(static_cast<std::size_t>(k.h) * k.w * C);
  for (auto& x : in) x = static_cast<std::uint8_t>(rng.next() & 0xFF);
  std::vector<std::int16_t> w(9 * static_cast<std::size_t>(C));  // -128..127, or -255..255 when wide
  for (auto& x : w)
    x = static_cast<std::int16_t>(k.wide ? static_cast<int>(rng.next() % 511) - 255 : static_cast<int>(rng.next() & 0xFF) - 128);
  std::vector<std::int8_t> w8(w.begin(), w.end());
  std::vector<std::int32_t> bias(C);
  for (auto& x : bias) x = static_cast<std::int32_t>(rng.next() % 40001) - 20000;
  std::vector<float> scale(C);
  for (auto& s : scale) s = rng.uniform(0.5f, 2.0f) / 2000.0f;
  std::vector<unsigned char> packed(mbf::packed_qdwconv3x3_bytes(C));
  if (k.wide)
    mbf::pack_qdwconv3x3_weights(C, w.data(), bias.data(), scale.data(), packed.data());
  else
    mbf::pack_qdwconv3x3_weights(C, w8.data(), bias.data(), scale.data(), packed.data());

  const std::size_t out_size = static_cast<std::size_t>(g.out_h) * g.out_w * C;
  std::vector<std::uint8_t> want(out_size);
  for (int oh = 0; oh < g.out_h; ++oh)
    for (int ow = 0; ow < g.out_w; ++ow)
      for (int ch = 0; ch < C; ++ch) {
        std::int64_t acc = bias[ch];
        for (int kh = 0; kh < 3; ++kh)
          for (int kw = 0; kw < 3; ++kw) {
            const int ih = oh * k.stride - k.pads[0] + kh, iw = ow * k.stride - k.pads[1] + kw;
            if (ih < 0 || ih >= k.h || iw < 0 || iw >= k.w) continue;
            acc += (static_cast<std::int64_t>(in[(static_cast<std::size_t>(ih) * k.w + iw) * C + ch]) - k.zx) *
                   w[(kh * 3 + kw) * C + ch];
          }
        want[(static_cast<std::size_t>(oh) * g.out_w + ow) * C + ch] = requant_ref(acc, scale[ch], k.out);
      }
  constexpr std::uint8_t kPad = 0x5A;
  std::vector<std::uint8_t> got(out_size + 64, kPad), split(out_size + 64, kPad);
  fn(g, in.data(), k.zx, packed.data(), got.data(), 0, g.out_h, k.out);
  const int mid = g.out_h / 2;
  fn(g, in.data(), k.zx, packed.data(), split.data(), mid, g.out_h, k.out);
  for (std::size_t i = 0; i < static_cast<std::size_t>(mid) * g.out_w * C; ++i)
    ASSERT_EQ(split[i], kPad) << "a row outside the range was written";
  fn(g, in.data(), k.zx, packed.data(), split.data(), 0, mid, k.out);
  int bad = 0;
  for (std::size_t i = 0; i < out_size && bad < 5; ++i)
    if (got[i] != want[i] || split[i] != want[i]) {
      ++bad;
      ADD_FAILURE() << "byte " << i << " (pixel " << i / C << ", channel " << i % C << "): got " << int(got[i])
                    << ", split " << int(split[i]) << ", want " << int(want[i]);
    }
  for (std::size_t i = out_size; i < got.size(); ++i) ASSERT_EQ(got[i], kPad) << "written past the output";
}

class Qdwconv : public testing::TestWithParam<std::string> {};

TEST_P(Qdwconv, MobileNetLayers) {
  std::uint32_t seed = 1;
  for (double alpha : {0.25, 0.5, 0.75, 1.0}) {
    if (quick_mode() && alpha != 0.25) continue;
    const int r = quick_mode() ? 128 : 224;
    for (bool tf_same : {true, false})
      for (const auto& L : mbf_support::mobilenet_v1_layers(alpha, r, r, tf_same))
        if (L.kind == "dwconv3x3")
          for (bool wide : {false, true})
            check_qdw(GetParam(), {L.in_h, L.in_w, L.in_channels, L.stride, L.pads, 0, {0, 0, 255}, wide}, seed++);
  }
}

TEST_P(Qdwconv, OddShapesEveryPadAndZeroPoint) {
  const mbf::QuantOut outs[] = {{0, 0, 255}, {128, 3, 250}, {17, 17, 40}};
  const std::int32_t zxs[] = {0, 1, 128, 255};
  std::uint32_t seed = 1000;
  std::size_t i = 0;
  for (int c : {1, 3, 7, 8, 9, 15, 16, 17, 24, 31, 33, 40})
    for (int stride : {1, 2})
      for (int h = 1; h <= 5; ++h)
        for (int w = 1; w <= 11; w += (quick_mode() ? 3 : 1))
          for (int bits = 0; bits < 16; ++bits) {
            const mbf_support::Pads4 p{bits & 1, (bits >> 1) & 1, (bits >> 2) & 1, (bits >> 3) & 1};
            if (h + p[0] + p[2] < 3 || w + p[1] + p[3] < 3) continue;
            if (quick_mode() && (i % 5)) { ++i; continue; }
            check_qdw(GetParam(), {h, w, c, stride, p, zxs[i % 4], outs[i % 3], (i % 2) == 1}, seed++);
            ++i;
          }
}

INSTANTIATE_TEST_SUITE_P(Isa, Qdwconv, testing::ValuesIn(isas_under_test()), IsaName());

TEST(QdwconvPacking, RefusesBadScales) {
  const std::int8_t w[9] = {};
  std::vector<unsigned char> packed(mbf::packed_qdwconv3x3_bytes(1));
  for (float s : {0.0f, -2.0f, std::nanf(""), INFINITY}) {
    const float scale[1] = {s};
    EXPECT_THROW(mbf::pack_qdwconv3x3_weights(1, w, nullptr, scale, packed.data()), mbf::InputError) << s;
  }
}

}  // namespace
}  // namespace mbf_test
