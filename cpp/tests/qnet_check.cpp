// Whole int8 network across machines, bit for bit: reads the file written by
// scripts/export_qnet_check.py (an int8 MobileNetV1's QPlan parameters, images and the outputs
// another machine computed), runs the QPlan with every kernel table this CPU supports (1 and 2
// threads) and requires every output to have the same bits.
//   mbf_qnet_check FILE     exit status 0 when every ISA gives the reference's bits
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "mobilenet_fast/dispatch.h"
#include "mobilenet_fast/qplan.h"

namespace {

struct Reader {
  std::FILE* f;
  std::string path;
  void need(void* p, std::size_t n) {
    if (std::fread(p, 1, n, f) != n) throw std::runtime_error(path + ": truncated");
  }
  template <class T>
  T scalar() {
    unsigned char b[sizeof(T)];
    need(b, sizeof b);
    T v;
    std::memcpy(&v, b, sizeof v);  // the file is little-endian, as every target here is
    return v;
  }
  std::int32_t i32() { return scalar<std::int32_t>(); }
  template <class T>
  std::vector<T> array(std::size_t n) {
    if (n > (std::size_t{1} << 28)) throw std::runtime_error(path + ": implausible array size");
    std::vector<T> v(n);
    if (n) need(v.data(), n * sizeof(T));
    return v;
  }
  mbf::QLayerParams layer() {
    mbf::QLayerParams p;
    p.weights = array<std::int8_t>(static_cast<std::size_t>(i32()));
    const auto c = static_cast<std::size_t>(i32());
    p.bias = array<std::int32_t>(c);
    p.multiplier = array<float>(c);
    p.out.zero_point = i32();
    p.out.min = static_cast<std::uint8_t>(i32());
    p.out.max = static_cast<std::uint8_t>(i32());
    p.weight_offset = i32();
    return p;
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE\n", argv[0]);
    return 2;
  }
  try {
    Reader r{std::fopen(argv[1], "rb"), argv[1]};
    if (!r.f) throw std::runtime_error(std::string(argv[1]) + ": cannot open");
    char magic[8];
    r.need(magic, 8);
    if (std::memcmp(magic, "MBFQNT01", 8) != 0) throw std::runtime_error(r.path + ": not an MBFQNT01 file");
    mbf::QPlanSpec s;
    s.in_h = r.i32();
    s.in_w = r.i32();
    s.input_scale = r.scalar<float>();
    s.input_zero_point = r.i32();
    s.input_divide = r.i32() != 0;
    s.stem_stride = r.i32();
    for (int& p : s.stem_pads) p = r.i32();
    s.stem_channels = r.i32();
    s.stem = r.layer();
    s.blocks.resize(static_cast<std::size_t>(r.i32()));
    for (auto& b : s.blocks) {
      b.stride = r.i32();
      for (int& p : b.pads) p = r.i32();
      b.out_channels = r.i32();
      b.dw = r.layer();
      b.pw = r.layer();
    }
    s.pool_in_scale = r.scalar<double>();
    s.pool_out_scale = r.scalar<double>();
    s.pool_in_zero_point = r.i32();
    s.pool_out_zero_point = r.i32();
    s.pool_half_up = r.i32() != 0;
    s.num_classes = r.i32();
    if (s.num_classes > 0) s.fc = r.layer();
    const int n = r.i32();
    const std::size_t per_out = static_cast<std::size_t>(s.num_classes > 0 ? s.num_classes : 0);
    const std::vector<float> input = r.array<float>(static_cast<std::size_t>(n) * s.in_h * s.in_w * 3);
    const std::vector<float> want = r.array<float>(static_cast<std::size_t>(n) * per_out);
    std::fclose(r.f);
    if (per_out == 0) throw std::runtime_error(r.path + ": a feature extractor; the check compares logits");

    const mbf::CpuFeatures& cpu = mbf::cpu_features();
    std::printf("%s: int8 %dx%d, %zu blocks, %d classes, %d images; cpu %s%s%s%s\n", argv[1], s.in_h, s.in_w,
                s.blocks.size(), s.num_classes, n, cpu.arch.c_str(), cpu.neon ? " neon" : "",
                cpu.dotprod ? " dotprod" : "", cpu.i8mm ? " i8mm" : "");
    int failures = 0;
    for (const std::string& isa : mbf::supported_isas())
      for (int threads : {1, 2}) {
        mbf::QPlan plan(s, mbf::select_kernels(isa), threads);
        std::vector<float> got(want.size(), -1.0f);
        const bool finite = plan.run(input.data(), n, got.data(), false);
        std::size_t differ = 0, first = 0;
        for (std::size_t i = 0; i < want.size(); ++i)
          if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0 && differ++ == 0) first = i;
        const bool ok = finite && differ == 0;
        std::printf("  %-13s %d thread%s: %zu of %zu outputs differ%s  %s\n", isa.c_str(), threads,
                    threads > 1 ? "s" : " ", differ, want.size(),
                    differ ? (" (first at " + std::to_string(first) + ")").c_str() : "", ok ? "ok" : "FAIL");
        failures += ok ? 0 : 1;
      }
    return failures == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mbf_qnet_check: %s\n", e.what());
    return 2;
  }
}
