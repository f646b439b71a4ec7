// Run-time choice of kernels. Every kernel variant compiled into this build is one row of the
// variant table (name, family, ISA, tile sizes, required CPU features); an ISA level
// (MOBILENET_FAST_ISA=scalar|avx2|avx512|avx512_vnni|neon) is a set of CPU features, and its KernelTable holds,
// for each family, the most preferred variant whose features the level allows. Without a request
// the best level the CPU supports runs.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "mobilenet_fast/kernels.h"

namespace mbf {

// CPU features a kernel variant can require (bits of a FeatureSet).
enum CpuFeature : std::uint32_t {
  kAvx2 = 1u << 0,
  kFma = 1u << 1,
  kAvx512F = 1u << 2,
  kAvx512BW = 1u << 3,
  kAvx512VL = 1u << 4,
  kAvx512DQ = 1u << 5,
  kAvx512Vnni = 1u << 6,
  kAvxVnni = 1u << 7,     // the VEX-encoded (256-bit) VNNI of Alder Lake / Sapphire Rapids
  kAmxTile = 1u << 8,     // AMX: CPU, OS state (XCR0) and this process's permission
  kAmxInt8 = 1u << 9,
  kAmxBf16 = 1u << 10,
  kNeon = 1u << 11,       // aarch64 Advanced SIMD; armv7 NEON + VFPv4
  kDotProd = 1u << 12,    // Armv8.2 sdot/udot (HWCAP ASIMDDP)
  kI8mm = 1u << 13,       // Armv8.6 smmla/usmmla (HWCAP2 I8MM)
};
using FeatureSet = std::uint32_t;

// Every feature with its name as cpu_info() and the variant table print it, in bit order.
const std::vector<std::pair<CpuFeature, const char*>>& feature_names();
// "avx2+fma", or "none" for the empty set.
std::string feature_list(FeatureSet s);

struct CpuFeatures {
  std::string arch;  // "x86_64", "aarch64", "arm", or "other"
  bool sse2 = false, avx = false, avx2 = false, fma = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512vnni = false, avx_vnni = false;
  bool amx_tile = false, amx_int8 = false, amx_bf16 = false;
  bool neon = false, dotprod = false, i8mm = false;
  FeatureSet set() const;
};

const CpuFeatures& cpu_features();

// One kernel variant: a row of the variant table.
struct KernelVariant {
  const char* name;      // says what it is: "gemm_14x32_avx512", "dwconv3x3_s2_avx2_8c"
  KernelFamily family;
  const char* isa;       // the ISA level it was written for (its source is in kernels/<isa>/)
  int tile_m, tile_n;    // gemm: MR x NR of the register tile; others: 1 x channels per vector
  FeatureSet requires;   // CPU features it needs
  // The entry point: `conv` for dwconv3x3_s1/_s2 and conv3x3_stem (one signature), else the
  // family's own.
  dwconv3x3_fn conv;
  gemm_fn gemm;
  global_avg_pool_fn global_avg_pool;
  softmax_fn softmax;
  qgemm_fn qgemm;
  qgemm_f32_fn qgemm_f32;  // with qgemm: the float32-output entry of the same kernel
  // qgemm: what the kernel subtracts from every activation before multiplying (128 where it
  // multiplies int8 x int8, sdot): pack its weights with input zero point - this offset.
  int qgemm_input_offset;
  bool qgemm_k16;  // qgemm: reads k-major int16 panels (pack_qgemm_weights_k16)
  qdwconv3x3_fn qdwconv3x3;  // qdwconv3x3_s1 / _s2
};

// Every variant compiled into this build, least preferred (most portable) first.
const std::vector<KernelVariant>& kernel_variants();
// The variant that `isa`'s table runs for a family (isa: a compiled level name).
const KernelVariant& chosen_variant(const std::string& isa, KernelFamily f);

// An ISA level: a name MOBILENET_FAST_ISA accepts and the features its kernels may use; the CPU
// must have all of them for the level to run.
struct IsaLevel {
  const char* name;
  FeatureSet features;
};
// Levels compiled into this build, least capable first.
const std::vector<IsaLevel>& isa_levels();

// ISAs compiled into this build, best last (e.g. {"scalar"} or {"scalar","avx2","avx512"}).
std::vector<std::string> compiled_isas();
// Compiled ISAs the running CPU can execute, best last.
std::vector<std::string> supported_isas();

// requested: "" or "auto" -> MOBILENET_FAST_ISA if set, else the best supported ISA.
// Throws InputError naming the problem for an unknown, not compiled or unsupported ISA.
const KernelTable& select_kernels(const std::string& requested = "");

}  // namespace mbf
