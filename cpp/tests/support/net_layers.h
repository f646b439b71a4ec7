// MobileNetV1 layer shapes for the C++ tests and the microbenchmarks, without Python: derived
// from (alpha, resolution, padding convention) exactly as python/mobilenet_fast/architecture.py
// does, and read from / written to the shapes files of bench/shapes/ (made by bench/make_shapes.py).
//
// Header-only; include it from plain translation units only (never from an ISA-flagged one).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace mbf_support {

using Pads4 = std::array<int, 4>;  // top, left, bottom, right

// One layer, as a line of a shapes file: "name kind H W Cin Cout stride t,l,b,r" (H, W = input).
// kind: conv3x3 (the stem), dwconv3x3, pwconv, avgpool, dense.
struct NetLayer {
  std::string name;
  std::string kind;
  int in_h = 0, in_w = 0;
  int in_channels = 0, out_channels = 0;
  int stride = 1;
  Pads4 pads{0, 0, 0, 0};

  // Output size of a 3x3 layer; other kinds keep the input size (avgpool/dense: 1x1).
  int out_h() const { return out_size(in_h, pads[0] + pads[2]); }
  int out_w() const { return out_size(in_w, pads[1] + pads[3]); }
  // Multiply-adds of one image (avgpool: 0, as in architecture.py).
  std::int64_t macs() const {
    const std::int64_t pix = static_cast<std::int64_t>(out_h()) * out_w();
    if (kind == "conv3x3") return pix * 9 * in_channels * out_channels;
    if (kind == "dwconv3x3") return pix * 9 * in_channels;
    if (kind == "pwconv" || kind == "dense") return pix * in_channels * out_channels;
    return 0;
  }
  std::string line() const {
    std::ostringstream s;
    s << name << ' ' << kind << ' ' << in_h << ' ' << in_w << ' ' << in_channels << ' ' << out_channels
      << ' ' << stride << ' ' << pads[0] << ',' << pads[1] << ',' << pads[2] << ',' << pads[3];
    return s.str();
  }
  bool operator==(const NetLayer& o) const {
    return name == o.name && kind == o.kind && in_h == o.in_h && in_w == o.in_w &&
           in_channels == o.in_channels && out_channels == o.out_channels && stride == o.stride &&
           pads == o.pads;
  }

 private:
  int out_size(int n, int pad_sum) const {
    if (kind == "conv3x3" || kind == "dwconv3x3") return (n + pad_sum - 3) / stride + 1;
    if (kind == "avgpool" || kind == "dense") return 1;
    return n;
  }
};

// Stem output channels and the 13 (pointwise output channels, depthwise stride) at alpha = 1.
constexpr int kStemChannels = 32;
constexpr std::array<std::pair<int, int>, 13> kBlocks = {{
    {64, 1}, {128, 2}, {128, 1}, {256, 2}, {256, 1}, {512, 2}, {512, 1},
    {512, 1}, {512, 1}, {512, 1}, {512, 1}, {1024, 2}, {1024, 1},
}};

// Keras' int(channels * alpha), never below 1.
inline int scaled_channels(int channels, double alpha) {
  return std::max(1, static_cast<int>(channels * alpha));
}

// Pads of a 3x3 layer on an input side of length n. TF "SAME": total = max((out-1)*s + 3 - n, 0)
// with the odd one at the end; symmetric (PyTorch padding=1): 1 and 1.
inline std::pair<int, int> side_pads(int n, int stride, bool tf_same) {
  if (!tf_same) return {1, 1};
  const int out = (n + stride - 1) / stride;
  const int total = std::max((out - 1) * stride + 3 - n, 0);
  return {total / 2, total - total / 2};
}

inline Pads4 conv_pads(int h, int w, int stride, bool tf_same) {
  const auto ph = side_pads(h, stride, tf_same);
  const auto pw = side_pads(w, stride, tf_same);
  return {ph.first, pw.first, ph.second, pw.second};
}

// The whole network: stem, 13 x (dw, pw), avgpool, and a dense classifier when classes > 0.
inline std::vector<NetLayer> mobilenet_v1_layers(double alpha, int h, int w, bool tf_same = true,
                                                 int classes = 1000) {
  std::vector<NetLayer> v;
  NetLayer stem{"stem", "conv3x3", h, w, 3, scaled_channels(kStemChannels, alpha), 2,
                conv_pads(h, w, 2, tf_same)};
  v.push_back(stem);
  h = stem.out_h();
  w = stem.out_w();
  int c = stem.out_channels;
  for (std::size_t i = 0; i < kBlocks.size(); ++i) {
    const std::string prefix = "blocks." + std::to_string(i);
    const int stride = kBlocks[i].second;
    NetLayer dw{prefix + ".dw", "dwconv3x3", h, w, c, c, stride, conv_pads(h, w, stride, tf_same)};
    v.push_back(dw);
    h = dw.out_h();
    w = dw.out_w();
    const int co = scaled_channels(kBlocks[i].first, alpha);
    v.push_back(NetLayer{prefix + ".pw", "pwconv", h, w, c, co, 1, {0, 0, 0, 0}});
    c = co;
  }
  v.push_back(NetLayer{"pool", "avgpool", h, w, c, c, 1, {0, 0, 0, 0}});
  if (classes > 0) v.push_back(NetLayer{"classifier", "dense", 1, 1, c, classes, 1, {0, 0, 0, 0}});
  return v;
}

// Parses a shapes file; '#' starts a comment. Throws std::runtime_error naming the bad line.
inline std::vector<NetLayer> read_shapes_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open shapes file " + path);
  std::vector<NetLayer> v;
  std::string raw;
  int lineno = 0;
  while (std::getline(f, raw)) {
    ++lineno;
    const std::string text = raw.substr(0, raw.find('#'));
    std::istringstream s(text);
    NetLayer L;
    if (!(s >> L.name)) continue;  // blank or comment
    std::string pads;
    char c1 = 0, c2 = 0, c3 = 0;
    std::string rest;
    const bool ok = static_cast<bool>(s >> L.kind >> L.in_h >> L.in_w >> L.in_channels >> L.out_channels >>
                                      L.stride >> pads) &&
                    !(s >> rest);
    std::istringstream ps(pads);
    const bool pads_ok = static_cast<bool>(ps >> L.pads[0] >> c1 >> L.pads[1] >> c2 >> L.pads[2] >> c3 >> L.pads[3]) &&
                         c1 == ',' && c2 == ',' && c3 == ',' && ps.peek() == std::char_traits<char>::eof();
    const bool kind_ok = L.kind == "conv3x3" || L.kind == "dwconv3x3" || L.kind == "pwconv" ||
                         L.kind == "avgpool" || L.kind == "dense";
    if (!ok || !pads_ok || !kind_ok || L.in_h <= 0 || L.in_w <= 0 || L.in_channels <= 0 ||
        L.out_channels <= 0 || (L.stride != 1 && L.stride != 2))
      throw std::runtime_error(path + ":" + std::to_string(lineno) +
                               ": expected 'name kind H W Cin Cout stride t,l,b,r', got '" + raw + "'");
    v.push_back(L);
  }
  if (v.empty()) throw std::runtime_error("shapes file " + path + " lists no layers");
  return v;
}

}  // namespace mbf_support
