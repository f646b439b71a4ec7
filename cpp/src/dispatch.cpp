#include "mobilenet_fast/dispatch.h"

#include <cstdlib>

#if defined(__arm__) && !defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

#include "kernels/kernels_internal.h"

namespace mbf {

namespace {

struct IsaEntry {
  const char* name;
  const KernelTable& (*table)();
  bool (*cpu_has)(const CpuFeatures&);
};

// Every ISA compiled into this build, from the most portable to the fastest.
const std::vector<IsaEntry>& isa_entries() {
  static const std::vector<IsaEntry> entries = {
      {"scalar", scalar_kernels, [](const CpuFeatures&) { return true; }},
#if defined(MBF_HAVE_X86_KERNELS)
      {"avx2", avx2_kernels, [](const CpuFeatures& f) { return f.avx2 && f.fma; }},
      {"avx512", avx512_kernels,
       [](const CpuFeatures& f) { return f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq; }},
#endif
#if defined(MBF_HAVE_NEON_KERNELS)
      {"neon", neon_kernels, [](const CpuFeatures& f) { return f.neon; }},
#endif
  };
  return entries;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = [] {
    CpuFeatures r;
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
    r.arch = "x86_64";
#if defined(__GNUC__)
    __builtin_cpu_init();
    r.sse2 = __builtin_cpu_supports("sse2");
    r.avx = __builtin_cpu_supports("avx");
    r.avx2 = __builtin_cpu_supports("avx2");
    r.fma = __builtin_cpu_supports("fma");
    r.avx512f = __builtin_cpu_supports("avx512f");
    r.avx512bw = __builtin_cpu_supports("avx512bw");
    r.avx512vl = __builtin_cpu_supports("avx512vl");
    r.avx512dq = __builtin_cpu_supports("avx512dq");
#endif
#elif defined(__aarch64__)
    r.arch = "aarch64";
    r.neon = true;  // Advanced SIMD is mandatory on ARMv8-A
#elif defined(__arm__)
    r.arch = "arm";
#if defined(__ARM_NEON)
    r.neon = true;
#elif defined(__linux__)
    // This file is built with the toolchain's default FPU (often vfpv3-d16, no NEON); only the
    // NEON kernels get -mfpu=neon-vfpv4. Ask the kernel whether the CPU has NEON and the VFPv4
    // fused multiply-add those kernels use.
    const unsigned long hwcap = getauxval(AT_HWCAP);
    constexpr unsigned long kHwcapNeon = 1ul << 12, kHwcapVfpv4 = 1ul << 16;
    r.neon = (hwcap & kHwcapNeon) && (hwcap & kHwcapVfpv4);
#endif
#else
    r.arch = "other";
#endif
    return r;
  }();
  return f;
}

std::vector<std::string> compiled_isas() {
  std::vector<std::string> v;
  for (const auto& e : isa_entries()) v.emplace_back(e.name);
  return v;
}

std::vector<std::string> supported_isas() {
  std::vector<std::string> v;
  for (const auto& e : isa_entries())
    if (e.cpu_has(cpu_features())) v.emplace_back(e.name);
  return v;
}

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
  const auto& entries = isa_entries();
  if (want.empty()) {
    for (auto it = entries.rbegin(); it != entries.rend(); ++it)
      if (it->cpu_has(cpu_features())) return it->table();
    return scalar_kernels();
  }
  static const char* known[] = {"scalar", "avx2", "avx512", "neon"};
  bool is_known = false;
  for (const char* k : known) is_known |= (want == k);
  if (!is_known)
    throw InputError(origin + " '" + want + "' is unknown; expected one of: auto, scalar, avx2, avx512, neon");
  for (const auto& e : entries) {
    if (want != e.name) continue;
    if (!e.cpu_has(cpu_features()))
      throw InputError(origin + " '" + want + "' is not supported by this CPU (supported: " +
                       join(supported_isas()) + ")");
    return e.table();
  }
  throw InputError(origin + " '" + want + "' is not compiled into this build (available: " +
                   join(compiled_isas()) + ")");
}

}  // namespace mbf
