// Whole-network check on real weights across machines: reads the file written by
// scripts/export_net_check.py (folded MobileNetV1 weights, one preprocessed photo, the logits
// another machine computed), runs the Plan with every kernel table this CPU supports (1 thread)
// and compares: max |logit difference| <= tolerance (default 1e-3) and the same top-1 class.
//   mbf_net_check FILE [TOLERANCE]     exit status 0 when every ISA agrees
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "mobilenet_fast/dispatch.h"
#include "mobilenet_fast/plan.h"

namespace {

struct Reader {
  std::FILE* f;
  std::string path;
  std::int32_t i32() {
    unsigned char b[4];
    need(b, 4);
    return static_cast<std::int32_t>(static_cast<std::uint32_t>(b[0]) | static_cast<std::uint32_t>(b[1]) << 8 |
                                     static_cast<std::uint32_t>(b[2]) << 16 | static_cast<std::uint32_t>(b[3]) << 24);
  }
  std::vector<float> floats(std::size_t n) {
    std::vector<float> v(n);
    for (float& x : v) {
      const std::uint32_t u = static_cast<std::uint32_t>(i32());
      std::memcpy(&x, &u, 4);
    }
    return v;
  }
  void need(void* p, std::size_t n) {
    if (std::fread(p, 1, n, f) != n) throw std::runtime_error(path + ": truncated");
  }
};

int argmax(const float* v, int n) { return static_cast<int>(std::max_element(v, v + n) - v); }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE [TOLERANCE]\n", argv[0]);
    return 2;
  }
  const double tol = argc > 2 ? std::atof(argv[2]) : 1e-3;
  try {
    Reader r{std::fopen(argv[1], "rb"), argv[1]};
    if (!r.f) throw std::runtime_error(std::string(argv[1]) + ": cannot open");
    char magic[8];
    r.need(magic, 8);
    if (std::memcmp(magic, "MBFNET01", 8) != 0) throw std::runtime_error(r.path + ": not an MBFNET01 file");
    mbf::PlanSpec s;
    s.in_h = r.i32();
    s.in_w = r.i32();
    s.stem_stride = r.i32();
    for (int& p : s.stem_pads) p = r.i32();
    s.stem_channels = r.i32();
    const int nblocks = r.i32();
    s.blocks.resize(static_cast<std::size_t>(nblocks));
    for (auto& b : s.blocks) {
      b.stride = r.i32();
      for (int& p : b.pads) p = r.i32();
      b.out_channels = r.i32();
    }
    s.num_classes = r.i32();
    s.stem_weights = r.floats(27u * s.stem_channels);
    s.stem_bias = r.floats(static_cast<std::size_t>(s.stem_channels));
    std::size_t c = static_cast<std::size_t>(s.stem_channels);
    for (auto& b : s.blocks) {
      b.dw_weights = r.floats(9 * c);
      b.dw_bias = r.floats(c);
      b.pw_weights = r.floats(c * b.out_channels);
      b.pw_bias = r.floats(static_cast<std::size_t>(b.out_channels));
      c = static_cast<std::size_t>(b.out_channels);
    }
    s.fc_weights = r.floats(c * s.num_classes);
    s.fc_bias = r.floats(static_cast<std::size_t>(s.num_classes));
    const std::vector<float> input = r.floats(static_cast<std::size_t>(s.in_h) * s.in_w * 3);
    const std::vector<float> want = r.floats(static_cast<std::size_t>(s.num_classes));
    std::fclose(r.f);

    const int want_top = argmax(want.data(), s.num_classes);
    const mbf::CpuFeatures& cpu = mbf::cpu_features();
    std::printf("%s: %dx%d, %d blocks, %d classes; reference top-1 %d; cpu %s%s\n", argv[1], s.in_h, s.in_w,
                nblocks, s.num_classes, want_top, cpu.arch.c_str(), cpu.neon ? " (neon)" : "");
    int failures = 0;
    for (const std::string& isa : mbf::supported_isas()) {
      mbf::Plan plan(s, mbf::select_kernels(isa), 1);
      std::vector<float> got(static_cast<std::size_t>(s.num_classes));
      plan.run(input.data(), 1, got.data(), false);
      double worst = 0.0;
      int at = 0;
      for (int i = 0; i < s.num_classes; ++i) {
        const double e = std::fabs(static_cast<double>(got[i]) - want[i]);
        if (!(e <= worst)) {
          worst = e;
          at = i;
        }
      }
      const int top = argmax(got.data(), s.num_classes);
      const bool ok = worst <= tol && top == want_top;
      std::printf("  %-7s max |logit diff| %.3g (index %d), top-1 %d  %s\n", isa.c_str(), worst, at, top,
                  ok ? "ok" : "FAIL");
      failures += ok ? 0 : 1;
    }
    return failures == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mbf_net_check: %s\n", e.what());
    return 2;
  }
}
