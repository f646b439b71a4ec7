#include "mobilenet_fast/dispatch.h"

#include <cstdlib>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <cpuid.h>
#endif
#if defined(__linux__) && (defined(__x86_64__) || defined(__arm__) || defined(__aarch64__))
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "kernels/kernels_internal.h"

namespace mbf {

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

bool allows(FeatureSet have, FeatureSet need) { return (need & ~have) == 0; }

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
// AMX needs the CPU's AMX-TILE, the OS saving the tile state (XCR0 bits 17 and 18) and, on Linux,
// this process's permission to use it (arch_prctl ARCH_REQ_XCOMP_PERM for XTILEDATA), asked once.
bool amx_usable(bool cpu_has_tile) {
  if (!cpu_has_tile) return false;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return false;  // OSXSAVE
  unsigned lo, hi;
  __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  constexpr unsigned kTileState = (1u << 17) | (1u << 18);
  if ((lo & kTileState) != kTileState) return false;
#if defined(__linux__) && defined(__x86_64__)
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}
#endif

}  // namespace

const std::vector<std::pair<CpuFeature, const char*>>& feature_names() {
  static const std::vector<std::pair<CpuFeature, const char*>> names = {
      {kAvx2, "avx2"},         {kFma, "fma"},           {kAvx512F, "avx512f"},   {kAvx512BW, "avx512bw"},
      {kAvx512VL, "avx512vl"}, {kAvx512DQ, "avx512dq"}, {kAvx512Vnni, "avx512_vnni"},
      {kAvxVnni, "avx_vnni"},  {kAmxTile, "amx_tile"},  {kAmxInt8, "amx_int8"},  {kAmxBf16, "amx_bf16"},
      {kNeon, "neon"},         {kDotProd, "dotprod"},   {kI8mm, "i8mm"},
  };
  return names;
}

std::string feature_list(FeatureSet s) {
  std::string r;
  for (const auto& [bit, name] : feature_names())
    if (s & bit) r += (r.empty() ? "" : "+") + std::string(name);
  return r.empty() ? "none" : r;
}

const char* family_name(KernelFamily f) {
  switch (f) {
    case KernelFamily::dwconv3x3_s1: return "dwconv3x3_s1";
    case KernelFamily::dwconv3x3_s2: return "dwconv3x3_s2";
    case KernelFamily::conv3x3_stem: return "conv3x3_stem";
    case KernelFamily::gemm: return "gemm";
    case KernelFamily::global_avg_pool: return "global_avg_pool";
    case KernelFamily::softmax: return "softmax";
    case KernelFamily::qgemm_u8s8: return "qgemm_u8s8";
    case KernelFamily::qdwconv3x3_s1: return "qdwconv3x3_s1";
    case KernelFamily::qdwconv3x3_s2: return "qdwconv3x3_s2";
    case KernelFamily::qgemm_u8s8_pairs: return "qgemm_u8s8_pairs";
  }
  return "?";
}

FeatureSet CpuFeatures::set() const {
  const std::pair<bool, CpuFeature> bits[] = {
      {avx2, kAvx2},         {fma, kFma},           {avx512f, kAvx512F},   {avx512bw, kAvx512BW},
      {avx512vl, kAvx512VL}, {avx512dq, kAvx512DQ}, {avx512vnni, kAvx512Vnni}, {avx_vnni, kAvxVnni},
      {amx_tile, kAmxTile},  {amx_int8, kAmxInt8},  {amx_bf16, kAmxBf16},  {neon, kNeon},
      {dotprod, kDotProd},   {i8mm, kI8mm},
  };
  FeatureSet s = 0;
  for (const auto& [has, bit] : bits)
    if (has) s |= bit;
  return s;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = [] {
    CpuFeatures r;
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
    r.arch = "x86_64";
#if defined(__GNUC__)
    // __builtin_cpu_supports also checks that the OS saves the AVX / AVX-512 registers.
    __builtin_cpu_init();
    r.sse2 = __builtin_cpu_supports("sse2");
    r.avx = __builtin_cpu_supports("avx");
    r.avx2 = __builtin_cpu_supports("avx2");
    r.fma = __builtin_cpu_supports("fma");
    r.avx512f = __builtin_cpu_supports("avx512f");
    r.avx512bw = __builtin_cpu_supports("avx512bw");
    r.avx512vl = __builtin_cpu_supports("avx512vl");
    r.avx512dq = __builtin_cpu_supports("avx512dq");
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
      r.avx512vnni = r.avx512f && (c & (1u << 11));
      const bool amx = amx_usable(d & (1u << 24));
      r.amx_tile = amx;
      r.amx_int8 = amx && (d & (1u << 25));
      r.amx_bf16 = amx && (d & (1u << 22));
    }
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) r.avx_vnni = r.avx2 && (a & (1u << 4));
#endif
#elif defined(__aarch64__)
    r.arch = "aarch64";
    r.neon = true;  // Advanced SIMD is mandatory on ARMv8-A
#if defined(__linux__)
    constexpr unsigned long kHwcapAsimddp = 1ul << 20, kHwcap2I8mm = 1ul << 13;
    r.dotprod = getauxval(AT_HWCAP) & kHwcapAsimddp;
    r.i8mm = getauxval(AT_HWCAP2) & kHwcap2I8mm;
#endif
#elif defined(__arm__)
    r.arch = "arm";
#if defined(__linux__)
    // This file is built with the toolchain's default FPU (often vfpv3-d16, no NEON); only the
    // NEON kernels get -mfpu=neon-vfpv4. Ask the kernel whether the CPU has NEON and the VFPv4
    // fused multiply-add those kernels use (and, on Armv8 cores in 32-bit mode, dot product / i8mm).
    const unsigned long hwcap = getauxval(AT_HWCAP);
    constexpr unsigned long kHwcapNeon = 1ul << 12, kHwcapVfpv4 = 1ul << 16;
    constexpr unsigned long kHwcapAsimddp = 1ul << 24, kHwcapI8mm = 1ul << 27;
    r.neon = (hwcap & kHwcapNeon) && (hwcap & kHwcapVfpv4);
    r.dotprod = r.neon && (hwcap & kHwcapAsimddp);
    r.i8mm = r.neon && (hwcap & kHwcapI8mm);
#elif defined(__ARM_NEON)
    r.neon = true;
#endif
#else
    r.arch = "other";
#endif
    return r;
  }();
  return f;
}

const KernelVariant& chosen_variant(const std::string& isa, KernelFamily f) {
  for (const auto& level : isa_levels()) {
    if (isa != level.name) continue;
    const auto& table = kernel_variants();
    for (auto it = table.rbegin(); it != table.rend(); ++it)
      if (it->family == f && allows(level.features, it->requires)) return *it;
  }
  throw InputError("no " + std::string(family_name(f)) + " kernel for ISA '" + isa + "'");
}

std::vector<std::string> compiled_isas() {
  std::vector<std::string> v;
  for (const auto& e : isa_levels()) v.emplace_back(e.name);
  return v;
}

std::vector<std::string> supported_isas() {
  std::vector<std::string> v;
  for (const auto& e : isa_levels())
    if (allows(cpu_features().set(), e.features)) v.emplace_back(e.name);
  return v;
}

namespace {

KernelTable build_table(const IsaLevel& level) {
  auto pick = [&](KernelFamily f) -> const KernelVariant& { return chosen_variant(level.name, f); };
  const KernelVariant& gemm = pick(KernelFamily::gemm);
  const KernelVariant& qgemm = pick(KernelFamily::qgemm_u8s8);
  const KernelVariant& pairs = pick(KernelFamily::qgemm_u8s8_pairs);
  // The two GEMMs read the same packed panels: a level whose pair kernel had another panel width
  // would be a mistake in the variant table, caught here on first use (and by the tests).
  if (pairs.tile_n != qgemm.tile_n || pairs.qgemm_input_offset != qgemm.qgemm_input_offset ||
      pairs.qgemm_k16 != qgemm.qgemm_k16)
    throw std::logic_error(std::string("ISA '") + level.name + "': " + pairs.name + " and " + qgemm.name +
                           " pack different panels");
  KernelTable t{level.name,
                pick(KernelFamily::dwconv3x3_s1).conv,
                pick(KernelFamily::dwconv3x3_s2).conv,
                pick(KernelFamily::conv3x3_stem).conv,
                gemm.gemm,
                gemm.tile_m,
                gemm.tile_n,
                pick(KernelFamily::global_avg_pool).global_avg_pool,
                pick(KernelFamily::softmax).softmax,
                qgemm.qgemm,
                qgemm.qgemm_f32,
                qgemm.tile_m,
                qgemm.tile_n,
                pick(KernelFamily::qdwconv3x3_s1).qdwconv3x3,
                pick(KernelFamily::qdwconv3x3_s2).qdwconv3x3,
                pairs.qgemm,
                pairs.qgemm_f32,
                pairs.tile_m,
                {}};
  for (int i = 0; i < kKernelFamilies; ++i) t.variant[i] = pick(static_cast<KernelFamily>(i)).name;
  t.qgemm_input_offset = qgemm.qgemm_input_offset;
  t.qgemm_k16 = qgemm.qgemm_k16;
  t.qdwconv3x3_wide_s1 = t.qdwconv3x3_wide_s2 = qdwconv3x3_scalar;
#if defined(MBF_HAVE_NEON_KERNELS)
  if (allows(level.features, kNeon)) {  // vmlal_s16: exact for any int16 weights
    t.qdwconv3x3_wide_s1 = qdwconv3x3_s1_neon_8c;
    t.qdwconv3x3_wide_s2 = qdwconv3x3_s2_neon_8c;
  }
#endif
#if defined(MBF_HAVE_X86_KERNELS)
  if (allows(level.features, kAvx2 | kFma)) {
    t.qdwconv3x3_wide_s1 = qdwconv3x3_wide_s1_avx2_8c;
    t.qdwconv3x3_wide_s2 = qdwconv3x3_wide_s2_avx2_8c;
  }
  if (allows(level.features, kAvx512F | kAvx512BW | kAvx512VL)) {
    t.qdwconv3x3_wide_s1 = qdwconv3x3_wide_s1_avx512_16c;
    t.qdwconv3x3_wide_s2 = qdwconv3x3_wide_s2_avx512_16c;
  }
#endif
  return t;
}

// One KernelTable per compiled level, built on first use.
const std::vector<KernelTable>& level_tables() {
  static const std::vector<KernelTable> tables = [] {
    std::vector<KernelTable> v;
    for (const auto& level : isa_levels()) v.push_back(build_table(level));
    return v;
  }();
  return tables;
}

}  // namespace

const KernelTable& select_kernels(const std::string& requested) {
  std::string want = requested;
  std::string origin = "requested ISA";
  if (want.empty() || want == "auto") {
    const char* env = std::getenv("MOBILENET_FAST_ISA");
    if (env && *env && std::string(env) != "auto") {
      want = env;
      origin = "MOBILENET_FAST_ISA";
    } else {
      want.clear();
    }
  }
  const auto& levels = isa_levels();
  const auto& tables = level_tables();
  const FeatureSet have = cpu_features().set();
  if (want.empty()) {
    for (std::size_t i = levels.size(); i-- > 0;)
      if (allows(have, levels[i].features)) return tables[i];
    return tables.front();
  }
  static const char* known[] = {"scalar", "avx2", "avx512", "avx512_vnni", "neon", "neon_dotprod", "neon_i8mm"};
  bool is_known = false;
  for (const char* k : known) is_known |= (want == k);
  if (!is_known)
    throw InputError(origin + " '" + want +
                     "' is unknown; expected one of: auto, scalar, avx2, avx512, avx512_vnni, neon, neon_dotprod, neon_i8mm");
  for (std::size_t i = 0; i < levels.size(); ++i) {
    if (want != levels[i].name) continue;
    if (!allows(have, levels[i].features))
      throw InputError(origin + " '" + want + "' is not supported by this CPU (supported: " +
                       join(supported_isas()) + ")");
    return tables[i];
  }
  throw InputError(origin + " '" + want + "' is not compiled into this build (available: " +
                   join(compiled_isas()) + ")");
}

}  // namespace mbf
