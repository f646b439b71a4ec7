// Microbenchmarks of every kernel of every ISA this CPU supports, on every layer of a shapes file
// (bench/shapes/*.txt, written by bench/make_shapes.py), and of the whole Plan built from it.
//
//   mbf_kernels_bench [--shapes=FILE] [benchmark flags, e.g. --benchmark_filter=blocks\.1\.]
//
// The shapes file defaults to MBF_BENCH_SHAPES, else the 1.0/224 file of the source tree.
// Counters: GFLOP/s (2 x multiply-adds per second of wall-clock time; avgpool: adds per second)
// and %peak = GFLOP/s / the multiply-add peak of that ISA on one core, measured at startup.
// The rows come from the variant table (mbf::kernel_variants()): one per layer and per variant of
// the layer's kernel family that this CPU supports, named <layer>/<kernel>/<isa of the variant>,
// e.g. blocks.1.dw/dwconv3x3_s2/avx512, labelled with the variant's name and the shape; and
// plan/<shapes file>/<isa> for the whole network on each supported ISA level's table (qplan/...: the
// int8 network, QPlan, on random int8 parameters). int8 rows (qgemm_u8s8, qdwconv3x3_s1/_s2,
// qplan) count GOP/s instead of GFLOP/s.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "fma_peak.h"
#include "mobilenet_fast/dispatch.h"
#include "mobilenet_fast/plan.h"
#include "mobilenet_fast/qplan.h"
#include "net_layers.h"

namespace {

using mbf_support::NetLayer;

constexpr mbf::Clamp kRelu6{0.0f, 6.0f};
constexpr mbf::Clamp kLinear{-std::numeric_limits<float>::infinity(), std::numeric_limits<float>::infinity()};

struct Isa {
  std::string name;
  const mbf::KernelTable* table;
  double peak_gflops;  // 0: unknown
};

// One kernel variant and the multiply-add peak of its ISA.
struct Variant {
  const mbf::KernelVariant* v;
  double peak_gflops;  // 0: unknown
};

// ---- the peak of each ISA

using ChainsFn = float (*)(long long, float, float);

// Best of several timed runs of a chain loop long enough (>= 20 ms) to hide the timer.
double measure_gflops(ChainsFn fn, double flops_per_round) {
  volatile float mul = 0.999999f, add = 1e-6f, sink = 0.0f;
  using clock = std::chrono::steady_clock;
  auto seconds = [&](long long rounds) {
    const auto t0 = clock::now();
    sink = sink + fn(rounds, mul, add);
    return std::chrono::duration<double>(clock::now() - t0).count();
  };
  long long rounds = 1 << 14;
  while (seconds(rounds) < 0.02) rounds *= 2;
  double best = 0.0;
  for (int rep = 0; rep < 5; ++rep) best = std::max(best, flops_per_round * rounds / seconds(rounds));
  return best * 1e-9;
}

double peak_gflops(const std::string& isa, std::string& how) {
  if (isa == "scalar") {
    how = std::to_string(mbf_bench::kScalarChains) + " scalar mul+add chains";
    return measure_gflops(mbf_bench::madd_chains_scalar, 2.0 * mbf_bench::kScalarChains);
  }
#if defined(MBF_BENCH_X86)
  // Only called for ISAs in supported_isas(), i.e. ones the CPU has.
  if (isa == "avx2") {
    how = std::to_string(mbf_bench::kAvx2Chains) + " _mm256_fmadd_ps chains";
    return measure_gflops(mbf_bench::fma_chains_avx2, 2.0 * 8 * mbf_bench::kAvx2Chains);
  }
  if (isa == "avx512" || isa == "avx512_vnni") {  // avx512_vnni runs the float kernels of avx512
    how = std::to_string(mbf_bench::kAvx512Chains) + " _mm512_fmadd_ps chains";
    return measure_gflops(mbf_bench::fma_chains_avx512, 2.0 * 16 * mbf_bench::kAvx512Chains);
  }
#endif
  how = "no peak loop for this ISA";
  return 0.0;
}

// The int8 multiply-add peak of an ISA level in GOP/s (2 ops per multiply-add); 0: none measured.
double int8_peak_gops(const std::string& isa, std::string& how) {
#if defined(MBF_BENCH_X86)
  if (isa == "avx512_vnni") {
    how = std::to_string(mbf_bench::kAvx512VnniChains) + " _mm512_dpbusd_epi32 chains";
    return measure_gflops(mbf_bench::dpbusd_chains_avx512vnni, 2.0 * 64 * mbf_bench::kAvx512VnniChains);
  }
  if (isa == "avx2" || isa == "avx512") {  // avx512 runs the AVX2 int8 GEMMs
    how = std::to_string(mbf_bench::kAvx2Int8Chains) + " vpmaddubsw+vpmaddwd+vpaddd chains";
    return measure_gflops(mbf_bench::maddubs_chains_avx2, 2.0 * 32 * mbf_bench::kAvx2Int8Chains);
  }
#endif
  (void)isa;
  how = "no int8 peak loop for this ISA";
  return 0.0;
}

// ---- helpers

std::vector<float> random_floats(std::size_t n, float lo, float hi, std::uint32_t seed) {
  std::vector<float> v(n);
  std::uint32_t s = seed * 2654435761u + 1u;
  for (float& x : v) {
    s = s * 1664525u + 1013904223u;
    x = lo + (hi - lo) * static_cast<float>(s >> 8) * (1.0f / 16777216.0f);
  }
  return v;
}

mbf::Conv2dGeom geometry(const NetLayer& L) {
  return mbf::conv_geometry(L.in_h, L.in_w, L.in_channels,
                            L.kind == "dwconv3x3" ? L.in_channels : L.out_channels, L.stride, L.pads);
}

// Runs the timed loop and sets GFLOP/s and %peak from its own wall-clock time (plain values, so
// they print without the "/s" suffix benchmark adds to rate counters).
template <class Body>
void timed_loop(benchmark::State& st, double flops, double peak, Body&& body) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  for (auto _ : st) {
    body();
    benchmark::ClobberMemory();
  }
  const double secs = std::chrono::duration<double>(clock::now() - t0).count();
  if (secs <= 0.0 || st.iterations() == 0) return;
  const double gflops = flops * static_cast<double>(st.iterations()) / secs * 1e-9;
  st.counters["GFLOP/s"] = gflops;
  if (peak > 0) st.counters["%peak"] = 100.0 * gflops / peak;
}

std::string shape_label(const NetLayer& L, const Variant& k) {
  std::string s = std::string(k.v->name) + " " + std::to_string(L.in_h) + "x" + std::to_string(L.in_w) + "x" + std::to_string(L.in_channels) +
                  "->" + std::to_string(L.out_channels);
  if (L.kind == "conv3x3" || L.kind == "dwconv3x3") s += " s" + std::to_string(L.stride);
  return s;
}

// ---- one benchmark per (layer, ISA)

void bench_conv3x3(benchmark::State& st, NetLayer L, Variant k) {
  const mbf::Conv2dGeom g = geometry(L);
  const bool dw = L.kind == "dwconv3x3";
  const mbf::dwconv3x3_fn fn = k.v->conv;
  const int wco = dw ? 1 : g.out_channels;
  const auto in = random_floats(static_cast<std::size_t>(g.in_h) * g.in_w * g.in_channels, 0.0f, 6.0f, 1);
  const auto w = random_floats(static_cast<std::size_t>(9) * g.in_channels * wco, -0.5f, 0.5f, 2);
  const auto b = random_floats(g.out_channels, -0.1f, 0.1f, 3);
  std::vector<float> out(static_cast<std::size_t>(g.out_h) * g.out_w * g.out_channels);
  timed_loop(st, 2.0 * L.macs(), k.peak_gflops, [&] {
    fn(g, in.data(), w.data(), b.data(), out.data(), 0, g.out_h, kRelu6);
    benchmark::DoNotOptimize(out.data());
  });
  st.SetLabel(shape_label(L, k));
}

// Pointwise conv (M = H*W) and the classifier (M = 1): weights packed before the timed loop.
void bench_gemm(benchmark::State& st, NetLayer L, Variant kv) {
  const int nr = kv.v->tile_n;
  // The stem runs as this GEMM on its 3x3 patches (QPlan builds them; not timed here): one row per
  // output pixel, K = 9 x input channels.
  const bool stem = L.kind == "conv3x3";
  const mbf::Conv2dGeom sg = stem ? geometry(L) : mbf::Conv2dGeom{};
  const int m = L.kind == "dense" ? 1 : stem ? sg.out_h * sg.out_w : L.in_h * L.in_w;
  const int k = stem ? 9 * L.in_channels : L.in_channels, n = L.out_channels;
  const mbf::Clamp clamp = L.kind == "dense" ? kLinear : kRelu6;
  const auto a = random_floats(static_cast<std::size_t>(m) * k, 0.0f, 6.0f, 4);
  const auto b = random_floats(static_cast<std::size_t>(k) * n, -0.1f, 0.1f, 5);
  const auto bias = random_floats(n, -0.1f, 0.1f, 6);
  std::vector<float> packed(mbf::packed_gemm_size(k, n, nr));
  mbf::pack_gemm_weights(k, n, nr, b.data(), bias.data(), packed.data());
  std::vector<float> c(static_cast<std::size_t>(m) * n);
  timed_loop(st, 2.0 * L.macs(), kv.peak_gflops, [&] {
    kv.v->gemm(m, n, k, a.data(), k, packed.data(), c.data(), n, clamp);
    benchmark::DoNotOptimize(c.data());
  });
  st.SetLabel(shape_label(L, kv));
}

// The int8 pointwise GEMM on a pointwise layer (M = H*W) or the classifier (M = 1): random
// uint8 activations, int8 weights, weights packed before the timed loop. Counters: GOP/s
// (2 x multiply-adds per second) and %peak of the ISA's int8 dot-product peak where measured.
void bench_qgemm(benchmark::State& st, NetLayer L, Variant kv) {
  const int nr = kv.v->tile_n;
  // The stem runs as this GEMM on its 3x3 patches (QPlan builds them; not timed here): one row per
  // output pixel, K = 9 x input channels.
  const bool stem = L.kind == "conv3x3";
  const mbf::Conv2dGeom sg = stem ? geometry(L) : mbf::Conv2dGeom{};
  const int m = L.kind == "dense" ? 1 : stem ? sg.out_h * sg.out_w : L.in_h * L.in_w;
  const int k = stem ? 9 * L.in_channels : L.in_channels, n = L.out_channels;
  std::vector<std::uint8_t> a(static_cast<std::size_t>(m) * k);
  std::vector<std::int8_t> b(static_cast<std::size_t>(k) * n);
  std::uint32_t s = 12345;
  for (auto& x : a) x = static_cast<std::uint8_t>((s = s * 1664525u + 1013904223u) >> 24);
  // The pairs kernels need pair-limited weights (|w0| + |w1| <= 128): -64..63 for them.
  const bool pairs = kv.v->family == mbf::KernelFamily::qgemm_u8s8_pairs;
  for (auto& x : b)
    x = static_cast<std::int8_t>(static_cast<int>((s = s * 1664525u + 1013904223u) >> (pairs ? 25 : 24)) -
                                 (pairs ? 64 : 128));
  const std::vector<float> scale(n, 1.0f / 65536.0f);
  std::vector<unsigned char> packed(kv.v->qgemm_k16 ? mbf::packed_qgemm_k16_bytes(k, n) : mbf::packed_qgemm_bytes(k, n, nr));
  if (kv.v->qgemm_k16)
    mbf::pack_qgemm_weights_k16(k, n, b.data(), nullptr, scale.data(), -kv.v->qgemm_input_offset, packed.data());
  else
    mbf::pack_qgemm_weights(k, n, nr, b.data(), nullptr, scale.data(), -kv.v->qgemm_input_offset, packed.data());
  std::vector<std::uint8_t> c(static_cast<std::size_t>(m) * n);
  timed_loop(st, 2.0 * L.macs(), kv.peak_gflops, [&] {
    kv.v->qgemm(m, n, k, a.data(), k, packed.data(), c.data(), n, mbf::QuantOut{0, 0, 255}, nullptr);
    benchmark::DoNotOptimize(c.data());
  });
  if (st.counters.count("GFLOP/s")) {  // integer ops: say so
    st.counters["GOP/s"] = st.counters["GFLOP/s"];
    st.counters.erase("GFLOP/s");
  }
  st.SetLabel(shape_label(L, kv));
}

// The int8 depthwise 3x3 on a depthwise layer: random uint8 inputs and int8 weights, weights
// packed before the timed loop. Counters: GOP/s (2 x multiply-adds per second) and %peak of the
// ISA's int8 dot-product peak (the GEMM's; a depthwise layer cannot reach it: 9 taps per output).
void bench_qdwconv(benchmark::State& st, NetLayer L, Variant kv) {
  const mbf::Conv2dGeom g = geometry(L);
  const int c = g.in_channels;
  std::vector<std::uint8_t> in(static_cast<std::size_t>(g.in_h) * g.in_w * c);
  std::vector<std::int8_t> w(9u * c);
  std::uint32_t s = 54321;
  for (auto& x : in) x = static_cast<std::uint8_t>((s = s * 1664525u + 1013904223u) >> 24);
  for (auto& x : w) x = static_cast<std::int8_t>(static_cast<int>((s = s * 1664525u + 1013904223u) >> 24) - 128);
  const std::vector<float> scale(c, 1.0f / 4096.0f);
  std::vector<unsigned char> packed(mbf::packed_qdwconv3x3_bytes(c));
  mbf::pack_qdwconv3x3_weights(c, w.data(), nullptr, scale.data(), packed.data());
  std::vector<std::uint8_t> out(static_cast<std::size_t>(g.out_h) * g.out_w * c);
  timed_loop(st, 2.0 * L.macs(), kv.peak_gflops, [&] {
    kv.v->qdwconv3x3(g, in.data(), 77, packed.data(), out.data(), 0, g.out_h, mbf::QuantOut{3, 3, 200});
    benchmark::DoNotOptimize(out.data());
  });
  if (st.counters.count("GFLOP/s")) {  // integer ops: say so
    st.counters["GOP/s"] = st.counters["GFLOP/s"];
    st.counters.erase("GFLOP/s");
  }
  st.SetLabel(shape_label(L, kv));
}

void bench_avgpool(benchmark::State& st, NetLayer L, Variant k) {
  const int hw = L.in_h * L.in_w, c = L.in_channels;
  const auto in = random_floats(static_cast<std::size_t>(hw) * c, 0.0f, 6.0f, 7);
  std::vector<float> out(c);
  // One add per input value.
  timed_loop(st, static_cast<double>(hw) * c, k.peak_gflops, [&] {
    k.v->global_avg_pool(in.data(), hw, c, out.data());
    benchmark::DoNotOptimize(out.data());
  });
  st.SetLabel(shape_label(L, k));
}

// A Plan needs a whole network: stem, (dw, pw) pairs, avgpool, optional dense.
bool is_network(const std::vector<NetLayer>& v) {
  if (v.size() < 4 || v[0].kind != "conv3x3" || v[0].in_channels != 3) return false;
  std::size_t i = 1;
  for (; i + 1 < v.size() && v[i].kind == "dwconv3x3"; i += 2)
    if (v[i + 1].kind != "pwconv") return false;
  if (i == 1 || i >= v.size() || v[i].kind != "avgpool") return false;
  return i + 1 == v.size() || (i + 2 == v.size() && v[i + 1].kind == "dense");
}

mbf::PlanSpec random_spec(const std::vector<NetLayer>& v) {
  mbf::PlanSpec s;
  const NetLayer& stem = v[0];
  s.in_h = stem.in_h;
  s.in_w = stem.in_w;
  s.stem_stride = stem.stride;
  s.stem_pads = {stem.pads[0], stem.pads[1], stem.pads[2], stem.pads[3]};
  s.stem_channels = stem.out_channels;
  s.stem_weights = random_floats(27u * stem.out_channels, -0.27f, 0.27f, 10);
  s.stem_bias = random_floats(stem.out_channels, -0.1f, 0.1f, 11);
  std::uint32_t seed = 12;
  for (std::size_t i = 1; v[i].kind == "dwconv3x3"; i += 2) {
    mbf::PlanBlockSpec b;
    b.stride = v[i].stride;
    b.pads = {v[i].pads[0], v[i].pads[1], v[i].pads[2], v[i].pads[3]};
    b.out_channels = v[i + 1].out_channels;
    const int c = v[i].in_channels;
    const float pw = std::sqrt(6.0f / c);
    b.dw_weights = random_floats(9u * c, -0.8f, 0.8f, seed++);
    b.dw_bias = random_floats(c, -0.1f, 0.1f, seed++);
    b.pw_weights = random_floats(static_cast<std::size_t>(c) * b.out_channels, -pw, pw, seed++);
    b.pw_bias = random_floats(b.out_channels, -0.1f, 0.1f, seed++);
    s.blocks.push_back(std::move(b));
  }
  if (v.back().kind == "dense") {
    const NetLayer& d = v.back();
    const float fw = std::sqrt(3.0f / d.in_channels);
    s.num_classes = d.out_channels;
    s.fc_weights = random_floats(static_cast<std::size_t>(d.in_channels) * d.out_channels, -fw, fw, seed++);
    s.fc_bias = random_floats(d.out_channels, -0.1f, 0.1f, seed++);
  }
  return s;
}

void bench_plan(benchmark::State& st, std::shared_ptr<const mbf::PlanSpec> spec, double flops, Isa isa) {
  mbf::Plan plan(*spec, *isa.table);
  const auto image = random_floats(static_cast<std::size_t>(spec->in_h) * spec->in_w * 3, -1.0f, 1.0f, 20);
  std::vector<float> out(plan.num_classes() ? plan.num_classes() : plan.feature_channels());
  timed_loop(st, flops, isa.peak_gflops, [&] {
    plan.run(image.data(), 1, out.data(), false);
    benchmark::DoNotOptimize(out.data());
  });
  st.SetLabel(std::to_string(spec->in_h) + "x" + std::to_string(spec->in_w) + ", batch 1, 1 thread");
}

// Random int8 parameters of one layer: weights -127..127 (-64..64 with `pairs`: pair-limited, so
// that the GEMMs run on the pairs kernels), small biases, multipliers that keep
// the outputs inside 0..255 for most values (the speed does not depend on them; saturation
// everywhere would only make the benchmark less like a real network).
mbf::QLayerParams random_qlayer(std::size_t weights, int channels, int k, std::uint32_t& seed, bool pairs) {
  mbf::QLayerParams p;
  p.weights.resize(weights);
  std::uint32_t s = seed++ * 2654435761u + 7u;
  const int span = pairs ? 129 : 255;
  for (auto& x : p.weights)
    x = static_cast<std::int8_t>(static_cast<int>((s = s * 1664525u + 1013904223u) >> 24) % span - span / 2);
  p.bias.resize(static_cast<std::size_t>(channels));
  for (auto& b : p.bias) b = static_cast<std::int32_t>((s = s * 1664525u + 1013904223u) >> 20) - 2048;
  p.multiplier.assign(static_cast<std::size_t>(channels), 1.0f / (64.0f * std::sqrt(static_cast<float>(k)) * 16.0f));
  p.out = mbf::QuantOut{0, 0, 255};
  return p;
}

mbf::QPlanSpec random_qspec(const std::vector<NetLayer>& v, bool pairs) {
  mbf::QPlanSpec s;
  const NetLayer& stem = v[0];
  s.in_h = stem.in_h;
  s.in_w = stem.in_w;
  s.input_scale = 2.0f / 255.0f;
  s.input_zero_point = 128;
  s.stem_stride = stem.stride;
  s.stem_pads = {stem.pads[0], stem.pads[1], stem.pads[2], stem.pads[3]};
  s.stem_channels = stem.out_channels;
  std::uint32_t seed = 30;
  s.stem = random_qlayer(27u * stem.out_channels, stem.out_channels, 27, seed, pairs);
  for (std::size_t i = 1; v[i].kind == "dwconv3x3"; i += 2) {
    mbf::QPlanBlock b;
    b.stride = v[i].stride;
    b.pads = {v[i].pads[0], v[i].pads[1], v[i].pads[2], v[i].pads[3]};
    b.out_channels = v[i + 1].out_channels;
    const int c = v[i].in_channels;
    b.dw = random_qlayer(9u * c, c, 9, seed, false);
    b.pw = random_qlayer(static_cast<std::size_t>(c) * b.out_channels, b.out_channels, c, seed, pairs);
    s.blocks.push_back(std::move(b));
  }
  s.pool_in_scale = 0.05;
  s.pool_out_scale = 0.05;
  if (v.back().kind == "dense") {
    const NetLayer& d = v.back();
    s.num_classes = d.out_channels;
    s.fc = random_qlayer(static_cast<std::size_t>(d.in_channels) * d.out_channels, d.out_channels, d.in_channels, seed,
                         pairs);
  }
  return s;
}

// The whole int8 network (QPlan) on one image, one thread.
void bench_qplan(benchmark::State& st, std::shared_ptr<const mbf::QPlanSpec> spec, double ops, Isa isa) {
  mbf::QPlan plan(*spec, *isa.table);
  const auto image = random_floats(static_cast<std::size_t>(spec->in_h) * spec->in_w * 3, -1.0f, 1.0f, 21);
  std::vector<float> out(plan.num_classes() ? plan.num_classes() : plan.feature_channels());
  timed_loop(st, ops, 0.0, [&] {
    plan.run(image.data(), 1, out.data(), false);
    benchmark::DoNotOptimize(out.data());
  });
  if (st.counters.count("GFLOP/s")) {
    st.counters["GOP/s"] = st.counters["GFLOP/s"];
    st.counters.erase("GFLOP/s");
  }
  st.SetLabel(std::to_string(spec->in_h) + "x" + std::to_string(spec->in_w) + ", batch 1, 1 thread");
}

std::string file_stem(const std::string& path) {
  std::string base = path.substr(path.find_last_of('/') + 1);
  return base.substr(0, base.rfind('.'));
}

}  // namespace

int main(int argc, char** argv) {
  std::string shapes_path = MBF_BENCH_DEFAULT_SHAPES;
  if (const char* env = std::getenv("MBF_BENCH_SHAPES"); env && *env) shapes_path = env;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (i > 0 && std::strncmp(argv[i], "--shapes=", 9) == 0)
      shapes_path = argv[i] + 9;
    else
      args.push_back(argv[i]);
  }
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;

  std::vector<NetLayer> layers;
  try {
    layers = mbf_support::read_shapes_file(shapes_path);
    for (const NetLayer& L : layers)
      if (L.kind == "conv3x3" || L.kind == "dwconv3x3") geometry(L);  // throws on an impossible layer
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mbf_kernels_bench: %s\n", e.what());
    return 1;
  }

  std::vector<Isa> isas;
  std::fprintf(stderr, "FMA peak of one core, measured by %s:\n", argv[0]);
  for (const std::string& name : mbf::supported_isas()) {
    std::string how;
    const double peak = peak_gflops(name, how);
    isas.push_back({name, &mbf::select_kernels(name), peak});
    const mbf::KernelTable& t = *isas.back().table;
    std::fprintf(stderr, "  %-7s %8.1f GFLOP/s  (%s; GEMM tile %dx%d)\n", name.c_str(), peak, how.c_str(), t.gemm_mr,
                 t.gemm_nr);
    char value[64];
    std::snprintf(value, sizeof value, "%.2f", peak);
    benchmark::AddCustomContext("peak_gflops_" + name, value);
    benchmark::AddCustomContext("gemm_tile_" + name, std::to_string(t.gemm_mr) + "x" + std::to_string(t.gemm_nr));
  }
  std::fprintf(stderr, "shapes: %s (%zu layers)\n", shapes_path.c_str(), layers.size());
  benchmark::AddCustomContext("shapes", shapes_path);

  auto peak_of = [&](const std::string& isa) {
    for (const Isa& i : isas)
      if (i.name == isa) return i.peak_gflops;
    return 0.0;
  };
  std::vector<std::pair<std::string, double>> int8_peaks;
  for (const std::string& name : mbf::supported_isas()) {
    std::string how;
    const double peak = int8_peak_gops(name, how);
    int8_peaks.push_back({name, peak});
    if (peak <= 0) continue;
    std::fprintf(stderr, "  %-11s %8.1f GOP/s int8  (%s)\n", name.c_str(), peak, how.c_str());
    char value[64];
    std::snprintf(value, sizeof value, "%.2f", peak);
    benchmark::AddCustomContext("peak_int8_gops_" + name, value);
  }
  auto int8_peak_of = [&](const std::string& isa) {
    for (const auto& [name, peak] : int8_peaks)
      if (name == isa) return peak;
    return 0.0;
  };
  const mbf::FeatureSet have = mbf::cpu_features().set();
  for (const NetLayer& L : layers)
    for (const mbf::KernelVariant& v : mbf::kernel_variants()) {
      if ((v.requires & ~have) != 0) continue;
      mbf::KernelFamily family = mbf::KernelFamily::global_avg_pool;
      std::string kernel = "global_avg_pool";
      if (L.kind == "conv3x3") family = mbf::KernelFamily::conv3x3_stem, kernel = "conv3x3_stem";
      if (L.kind == "dwconv3x3")
        family = L.stride == 2 ? mbf::KernelFamily::dwconv3x3_s2 : mbf::KernelFamily::dwconv3x3_s1,
        kernel = mbf::family_name(family);
      if (L.kind == "pwconv") family = mbf::KernelFamily::gemm, kernel = "gemm";
      if (L.kind == "dense") family = mbf::KernelFamily::gemm, kernel = "gemm_dense";
      const bool int8 = (v.family == mbf::KernelFamily::qgemm_u8s8 || v.family == mbf::KernelFamily::qgemm_u8s8_pairs) &&
                        (L.kind == "pwconv" || L.kind == "dense" || L.kind == "conv3x3");
      const bool int8_dw = L.kind == "dwconv3x3" &&
                           v.family == (L.stride == 2 ? mbf::KernelFamily::qdwconv3x3_s2 : mbf::KernelFamily::qdwconv3x3_s1);
      if (int8_dw) {
        const std::string qname = L.name + "/" + mbf::family_name(v.family) + "/" + v.isa;
        benchmark::RegisterBenchmark(qname.c_str(), bench_qdwconv, L, Variant{&v, int8_peak_of(v.isa)})
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
        continue;
      }
      if (v.family != family && !int8) continue;
      if (int8)
        kernel = std::string(mbf::family_name(v.family)) +
                 (L.kind == "dense" ? "_dense" : L.kind == "conv3x3" ? "_stem" : "");
      const std::string name = L.name + "/" + kernel + "/" + v.isa;
      const Variant row{&v, int8 ? int8_peak_of(v.isa) : peak_of(v.isa)};
      benchmark::internal::Benchmark* b = nullptr;
      if (int8)
        b = benchmark::RegisterBenchmark(name.c_str(), bench_qgemm, L, row);
      else if (L.kind == "conv3x3" || L.kind == "dwconv3x3")
        b = benchmark::RegisterBenchmark(name.c_str(), bench_conv3x3, L, row);
      else if (L.kind == "pwconv" || L.kind == "dense")
        b = benchmark::RegisterBenchmark(name.c_str(), bench_gemm, L, row);
      else
        b = benchmark::RegisterBenchmark(name.c_str(), bench_avgpool, L, row);
      b->Unit(benchmark::kMicrosecond)->UseRealTime();
    }

  if (is_network(layers)) {
    auto spec = std::make_shared<const mbf::PlanSpec>(random_spec(layers));
    double macs = 0;
    for (const NetLayer& L : layers) macs += static_cast<double>(L.macs());
    for (const Isa& isa : isas)
      benchmark::RegisterBenchmark(("plan/" + file_stem(shapes_path) + "/" + isa.name).c_str(), bench_plan, spec,
                                   2.0 * macs, isa)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    // qplan: weights -127..127 (the GEMMs on the general kernels); qplan_pairs: pair-limited
    // GEMM weights, as our quantiser writes them (the GEMMs on the pairs kernels).
    for (const bool pairs : {false, true}) {
      auto qspec = std::make_shared<const mbf::QPlanSpec>(random_qspec(layers, pairs));
      for (const Isa& isa : isas)
        if (isa.table->qgemm && isa.table->qdwconv3x3_s1)
          benchmark::RegisterBenchmark(
              ((pairs ? "qplan_pairs/" : "qplan/") + file_stem(shapes_path) + "/" + isa.name).c_str(), bench_qplan,
              qspec, 2.0 * macs, isa)
              ->Unit(benchmark::kMillisecond)
              ->UseRealTime();
    }
  } else {
    std::fprintf(stderr, "shapes file is not a whole network: no plan benchmark\n");
  }

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
