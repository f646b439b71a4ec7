// Run-time choice of the kernel table: the best ISA this CPU supports among those compiled in,
// unless MOBILENET_FAST_ISA (or an explicit request) forces another one.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "mobilenet_fast/kernels.h"

namespace mbf {

struct CpuFeatures {
  std::string arch;  // "x86_64", "aarch64", "arm", or "other"
  bool sse2 = false, avx = false, avx2 = false, fma = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool neon = false;
};

const CpuFeatures& cpu_features();

// ISAs compiled into this build, best last (e.g. {"scalar"} or {"scalar","avx2","avx512"}).
std::vector<std::string> compiled_isas();
// Compiled ISAs the running CPU can execute, best last.
std::vector<std::string> supported_isas();

// requested: "" or "auto" -> MOBILENET_FAST_ISA if set, else the best supported ISA.
// Throws InputError naming the problem for an unknown, not compiled or unsupported ISA.
const KernelTable& select_kernels(const std::string& requested = "");

}  // namespace mbf
