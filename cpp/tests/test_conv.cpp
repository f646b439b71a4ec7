// 3x3 convolutions: depthwise (stride 1 and 2) and the stem conv, for every ISA table against
// the scalar table and against a naive double-precision reference.
#include <algorithm>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "net_layers.h"
#include "test_support.h"

namespace mbf_test {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
const mbf::Clamp kAllClamps[] = {kRelu6, kLinear, kNarrow, {0.0f, kInf}, {-kInf, 0.0f}};
const int kOddChannels[] = {1, 3, 5, 7, 9, 15, 17, 31, 33, 100};
const double kAlphas[] = {0.25, 0.5, 0.75, 1.0};

struct ConvCase {
  mbf::Conv2dGeom g;  // out_h/out_w are filled in by the check
  mbf::Clamp clamp;
  bool depthwise;
};

mbf::Conv2dGeom geom(int h, int w, int ci, int co, int stride, mbf_support::Pads4 p) {
  mbf::Conv2dGeom g;
  g.in_h = h;
  g.in_w = w;
  g.in_channels = ci;
  g.out_channels = co;
  g.stride = stride;
  g.pad_top = p[0];
  g.pad_left = p[1];
  g.pad_bottom = p[2];
  g.pad_right = p[3];
  return g;
}

bool valid_pads(int h, int w, mbf_support::Pads4 p) {
  return h + p[0] + p[2] >= 3 && w + p[1] + p[3] >= 3;
}

// Output row ranges that stitch to [0, out_h): every row alone for short outputs, else the first
// row, two rows, two uneven middle chunks and the last row.
std::vector<std::pair<int, int>> row_ranges(int out_h) {
  std::vector<std::pair<int, int>> r;
  if (out_h <= 6) {
    for (int i = 0; i < out_h; ++i) r.push_back({i, i + 1});
    return r;
  }
  const int cuts[] = {0, 1, 3, out_h / 2, out_h - 1, out_h};
  for (int i = 0; i + 1 < 6; ++i) r.push_back({cuts[i], cuts[i + 1]});
  return r;
}

std::string describe(const ConvCase& c) {
  const auto& g = c.g;
  return std::string(c.depthwise ? "dwconv3x3" : "conv3x3") + " s" + std::to_string(g.stride) + " in " +
         std::to_string(g.in_h) + "x" + std::to_string(g.in_w) + "x" + std::to_string(g.in_channels) +
         " -> " + std::to_string(g.out_channels) + " pads " + std::to_string(g.pad_top) + "," +
         std::to_string(g.pad_left) + "," + std::to_string(g.pad_bottom) + "," +
         std::to_string(g.pad_right) + " " + clamp_name(c.clamp);
}

mbf::dwconv3x3_fn conv_fn(const mbf::KernelTable& t, const ConvCase& c) {
  if (!c.depthwise) return t.conv3x3_stem;
  return c.g.stride == 2 ? t.dwconv3x3_s2 : t.dwconv3x3_s1;
}

// Runs one case through the ISA table and the scalar table and checks:
//  - both within kTol of the naive result, and the ISA within kTol of the scalar result;
//  - computing disjoint row ranges and stitching them gives exactly the full result (the result
//    must not depend on how a thread pool splits the rows);
//  - rows outside a range (and everything for an empty range) are left untouched;
//  - nothing outside the operands is written, and no input is modified.
// Failures are reported through EXPECT; the Outcome feeds the summary line of check_all.
Outcome check_conv(const std::string& isa, ConvCase c, std::uint32_t seed) {
  mbf::complete_geometry(c.g);
  const mbf::Conv2dGeom& g = c.g;
  const mbf::dwconv3x3_fn fn = conv_fn(table(isa), c);
  const mbf::dwconv3x3_fn ref_fn = conv_fn(table("scalar"), c);
  const int ci = g.in_channels, co = g.out_channels;

  Rng rng(seed);
  const std::vector<float> in_v = rng.vec(static_cast<std::size_t>(g.in_h) * g.in_w * ci, -3.0f, 3.0f);
  const float wb = c.depthwise ? 1.0f : he_bound(9 * ci);
  const std::vector<float> w_v = rng.vec(static_cast<std::size_t>(9) * ci * (c.depthwise ? 1 : co), -wb, wb);
  const std::vector<float> b_v = rng.vec(co, -1.0f, 1.0f);
  const Buffer in(in_v), w(w_v), b(b_v);
  const std::size_t n = static_cast<std::size_t>(g.out_h) * g.out_w * co;
  const std::size_t row = static_cast<std::size_t>(g.out_w) * co;

  const Expected want = naive_conv3x3(g, in_v.data(), w_v.data(), b_v.data(), c.clamp, c.depthwise);
  Buffer got(n), ref(n);
  fn(g, in.data(), w.data(), b.data(), got.data(), 0, g.out_h, c.clamp);
  ref_fn(g, in.data(), w.data(), b.data(), ref.data(), 0, g.out_h, c.clamp);

  Checker ck(isa + " " + describe(c));
  for (std::size_t i = 0; i < n; ++i) {
    auto at = [&](const char* what) {
      return [&, what] {
        const std::size_t px = i / co;
        return std::string(what) + " at y=" + std::to_string(px / g.out_w) + " x=" + std::to_string(px % g.out_w) +
               " c=" + std::to_string(i % co);
      };
    };
    ck.near(got[i], want.value[i], want.magnitude[i], kTol, at("vs naive"));
    ck.near(ref[i], want.value[i], want.magnitude[i], kTol, at("scalar vs naive"));
    ck.near(got[i], ref[i], want.magnitude[i], kTol, at("vs scalar"));
  }

  // Stitched row ranges.
  Buffer parts(n);
  for (const auto& r : row_ranges(g.out_h)) fn(g, in.data(), w.data(), b.data(), parts.data(), r.first, r.second, c.clamp);
  for (std::size_t i = 0; i < n; ++i)
    ck.bits(parts[i], got[i], [&] { return "stitched row ranges at y=" + std::to_string(i / row); });

  // One middle range, after two empty ranges: only its rows may change.
  Buffer mid(n);
  fn(g, in.data(), w.data(), b.data(), mid.data(), 0, 0, c.clamp);
  fn(g, in.data(), w.data(), b.data(), mid.data(), g.out_h, g.out_h, c.clamp);
  const int r0 = g.out_h / 3, r1 = std::max(r0 + 1, (2 * g.out_h) / 3);
  fn(g, in.data(), w.data(), b.data(), mid.data(), r0, r1, c.clamp);
  for (std::size_t i = 0; i < n; ++i) {
    const int y = static_cast<int>(i / row);
    auto where = [&] {
      return "rows [" + std::to_string(r0) + "," + std::to_string(r1) + ") at y=" + std::to_string(y);
    };
    if (y >= r0 && y < r1)
      ck.bits(mid[i], got[i], where);
    else
      ck.untouched(mid, i, where);
  }

  for (const Buffer* buf : std::initializer_list<const Buffer*>{&in, &w, &b, &got, &ref, &parts, &mid})
    ck.require(buf->guards_intact(), "a guard zone around an operand was overwritten");
  ck.require(std::equal(in_v.begin(), in_v.end(), in.data()) && std::equal(w_v.begin(), w_v.end(), w.data()) &&
                 std::equal(b_v.begin(), b_v.end(), b.data()),
             "an input operand was modified");
  EXPECT_TRUE(ck.result());
  return {ck.failures(), ck.worst()};
}

// Runs a list of cases; stops reporting after a few failing cases to keep the log readable.
void check_all(const std::string& isa, const std::vector<ConvCase>& cases, std::uint32_t seed) {
  int failing = 0;
  double worst = 0.0;
  for (std::size_t i = 0; i < cases.size() && failing < 5; ++i) {
    const Outcome o = check_conv(isa, cases[i], seed + static_cast<std::uint32_t>(i) * 7919u);
    failing += o.failures != 0;
    worst = std::max(worst, o.worst);
  }
  if (failing == 5) ADD_FAILURE() << "stopped after 5 failing cases of " << cases.size();
  report_worst(cases.size(), worst);
}

std::vector<ConvCase> mobilenet_cases(const char* kind) {
  std::vector<ConvCase> cases;
  const bool depthwise = std::string(kind) == "dwconv3x3";
  for (double alpha : kAlphas) {
    if (quick_mode() && alpha != 0.25) continue;
    for (bool tf_same : {true, false})
      for (const auto& L : mbf_support::mobilenet_v1_layers(alpha, 224, 224, tf_same))
        if (L.kind == kind)
          cases.push_back({geom(L.in_h, L.in_w, L.in_channels, L.out_channels, L.stride, L.pads), kRelu6, depthwise});
  }
  return cases;
}

// Every valid combination of four 0/1 pads.
std::vector<mbf_support::Pads4> all_pads(int h, int w) {
  std::vector<mbf_support::Pads4> v;
  for (int bits = 0; bits < 16; ++bits) {
    const mbf_support::Pads4 p{bits & 1, (bits >> 1) & 1, (bits >> 2) & 1, (bits >> 3) & 1};
    if (valid_pads(h, w, p)) v.push_back(p);
  }
  return v;
}

class Dwconv : public testing::TestWithParam<std::string> {};
class StemConv : public testing::TestWithParam<std::string> {};

// Every depthwise layer of MobileNetV1 alpha 0.25/0.5/0.75/1.0 at 224, TF-SAME and 1/1/1/1 pads.
TEST_P(Dwconv, MobileNetLayers) { check_all(GetParam(), mobilenet_cases("dwconv3x3"), 101); }

// Tiny images: widths 1..9, heights 1..5, odd channel counts, strides 1 and 2, every valid pad
// combination (TF-SAME and symmetric among them), clamps rotating.
TEST_P(Dwconv, OddShapes) {
  std::vector<ConvCase> cases;
  std::size_t k = 0;
  for (int c : kOddChannels) {
    if (quick_mode() && c != 1 && c != 5 && c != 17 && c != 33) continue;
    for (int stride : {1, 2})
      for (int h = 1; h <= 5; ++h)
        for (int w = 1; w <= 9; ++w)
          for (const auto& p : all_pads(h, w))
            cases.push_back({geom(h, w, c, c, stride, p), kAllClamps[k++ % 5], true});
  }
  check_all(GetParam(), cases, 202);
}

// Wider rows and SIMD-sized channel counts, so the main vector loops run with every remainder.
TEST_P(Dwconv, MidShapes) {
  std::vector<ConvCase> cases;
  std::size_t k = 0;
  for (int h : {6, 9})
    for (int w : {10, 11, 12, 13, 14, 15, 16, 17, 31, 33, 57})
      for (int c : {8, 16, 32, 48, 64, 72, 136}) {
        if (quick_mode() && (w % 2 == 0 || c % 16 != 8)) continue;
        for (int stride : {1, 2})
          for (bool tf_same : {true, false})
            cases.push_back({geom(h, w, c, c, stride, mbf_support::conv_pads(h, w, stride, tf_same)),
                             kAllClamps[k++ % 5], true});
      }
  check_all(GetParam(), cases, 303);
}

TEST_P(Dwconv, ClampVariants) {
  std::vector<ConvCase> cases;
  for (const mbf::Clamp& cl : kAllClamps)
    for (int stride : {1, 2})
      for (int c : {7, 32, 100})
        cases.push_back({geom(13, 11, c, c, stride, mbf_support::conv_pads(13, 11, stride, true)), cl, true});
  check_all(GetParam(), cases, 404);
}

// The stem of MobileNetV1 alpha 0.25/0.5/0.75/1.0 at 224, TF-SAME and 1/1/1/1 pads.
TEST_P(StemConv, MobileNetLayers) { check_all(GetParam(), mobilenet_cases("conv3x3"), 505); }

// Tiny images and odd output channel counts; Cin 3 (the stem) and a few other counts, since the
// kernel is also the generic 3x3 conv behind mobilenet_fast.ops.conv3x3.
TEST_P(StemConv, OddShapes) {
  std::vector<ConvCase> cases;
  std::size_t k = 0;
  std::vector<int> couts(std::begin(kOddChannels), std::end(kOddChannels));
  for (int c : {8, 16, 24, 32}) couts.push_back(c);
  for (int cin : {3, 1, 2, 4}) {
    for (int co : couts) {
      if (quick_mode() && co % 2 == 0) continue;
      if (cin != 3 && co > 17) continue;
      for (int stride : {1, 2})
        for (int h = 1; h <= 5; ++h)
          for (int w = 1; w <= 9; ++w) {
            const std::vector<mbf_support::Pads4> combos = all_pads(h, w);
            std::vector<mbf_support::Pads4> pads{combos[k % combos.size()]};
            for (bool tf_same : {true, false}) {
              const auto p = mbf_support::conv_pads(h, w, stride, tf_same);
              if (valid_pads(h, w, p)) pads.push_back(p);
            }
            for (const auto& p : pads) cases.push_back({geom(h, w, cin, co, stride, p), kAllClamps[k++ % 5], false});
          }
    }
  }
  check_all(GetParam(), cases, 606);
}

TEST_P(StemConv, MidShapesAndClamps) {
  std::vector<ConvCase> cases;
  std::size_t k = 0;
  for (int w : {15, 16, 17, 33})
    for (int co : {8, 16, 24, 32, 40, 64})
      for (int stride : {1, 2})
        for (bool tf_same : {true, false})
          cases.push_back({geom(9, w, 3, co, stride, mbf_support::conv_pads(9, w, stride, tf_same)),
                           kAllClamps[k++ % 5], false});
  check_all(GetParam(), cases, 707);
}

INSTANTIATE_TEST_SUITE_P(Isa, Dwconv, testing::ValuesIn(isas_under_test()), IsaName());
INSTANTIATE_TEST_SUITE_P(Isa, StemConv, testing::ValuesIn(isas_under_test()), IsaName());

}  // namespace
}  // namespace mbf_test
