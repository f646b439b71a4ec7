// The variant table: every kernel variant compiled into this build, one row each. It drives
// dispatch (each ISA level's KernelTable takes, per family, the last row whose features the level
// allows), the C++ tests (every level's table is tested, and a test checks that every row is some
// level's choice), the Google Benchmark rows (labelled with the variant's name) and cpu_info().
// Adding a variant: its source under kernels/<isa>/, its declaration in kernels_internal.h, and a
// row here after the variants it should win over (see "Adding a kernel" in bench/README.md).
#include "kernels/kernels_internal.h"
#include "mobilenet_fast/dispatch.h"

namespace mbf {
namespace {

using F = KernelFamily;

// A row whose entry point is `member` (the field of its family).
template <class Fn>
KernelVariant make(const char* name, F f, const char* isa, int tile_m, int tile_n, FeatureSet req,
                   Fn KernelVariant::*member, Fn fn) {
  KernelVariant v{};
  v.name = name;
  v.family = f;
  v.isa = isa;
  v.tile_m = tile_m;
  v.tile_n = tile_n;
  v.requires = req;
  v.*member = fn;
  return v;
}
KernelVariant conv(const char* name, F f, const char* isa, int tile_m, int tile_n, FeatureSet req, dwconv3x3_fn fn) {
  return make(name, f, isa, tile_m, tile_n, req, &KernelVariant::conv, fn);
}
KernelVariant gemm(const char* name, const char* isa, int mr, int nr, FeatureSet req, gemm_fn fn) {
  return make(name, F::gemm, isa, mr, nr, req, &KernelVariant::gemm, fn);
}
KernelVariant pool(const char* name, const char* isa, int lanes, FeatureSet req, global_avg_pool_fn fn) {
  return make(name, F::global_avg_pool, isa, 1, lanes, req, &KernelVariant::global_avg_pool, fn);
}
KernelVariant softmax(const char* name, const char* isa, FeatureSet req, softmax_fn fn) {
  return make(name, F::softmax, isa, 1, 1, req, &KernelVariant::softmax, fn);
}
KernelVariant qdw(const char* name, F f, const char* isa, int lanes, FeatureSet req, qdwconv3x3_fn fn) {
  return make(name, f, isa, 1, lanes, req, &KernelVariant::qdwconv3x3, fn);
}
KernelVariant qgemm(const char* name, const char* isa, int mr, int nr, FeatureSet req, qgemm_fn fn,
                    qgemm_f32_fn fn_f32, F family = F::qgemm_u8s8, int input_offset = 0, bool k16 = false) {
  KernelVariant v = make(name, family, isa, mr, nr, req, &KernelVariant::qgemm, fn);
  v.qgemm_f32 = fn_f32;
  v.qgemm_input_offset = input_offset;
  v.qgemm_k16 = k16;
  return v;
}

#if defined(MBF_HAVE_X86_KERNELS)
constexpr FeatureSet kAvx2Fma = kAvx2 | kFma;
// The AVX-512 translation units are also compiled with -mavx2 -mfma (and the stem calls the AVX2 one).
constexpr FeatureSet kAvx512 = kAvx2Fma | kAvx512F | kAvx512BW | kAvx512VL | kAvx512DQ;
#endif

std::vector<KernelVariant> make_table() {
  return {
      // ---- scalar: portable, and the reference of the C++ tests
      conv("dwconv3x3_s1_scalar", F::dwconv3x3_s1, "scalar", 1, 1, 0, dwconv3x3_scalar),
      conv("dwconv3x3_s2_scalar", F::dwconv3x3_s2, "scalar", 1, 1, 0, dwconv3x3_scalar),
      conv("conv3x3_stem_scalar", F::conv3x3_stem, "scalar", 1, 1, 0, conv3x3_stem_scalar),
      gemm("gemm_1x8_scalar", "scalar", 1, kGemmNrScalar, 0, gemm_1x8_scalar),
      pool("global_avg_pool_scalar", "scalar", 1, 0, global_avg_pool_scalar),
      softmax("softmax_scalar", "scalar", 0, softmax_scalar),
      qgemm("qgemm_u8s8_1x8c4_scalar", "scalar", 1, kQgemmNrScalar, 0, qgemm_1x8c4_scalar,
            qgemm_1x8c4_scalar_f32),
      // Exact for any weights, so also the pair-limited entry wherever nothing faster exists.
      qgemm("qgemm_u8s8_pairs_1x8c4_scalar", "scalar", 1, kQgemmNrScalar, 0, qgemm_1x8c4_scalar,
            qgemm_1x8c4_scalar_f32, F::qgemm_u8s8_pairs),
      qdw("qdwconv3x3_s1_scalar", F::qdwconv3x3_s1, "scalar", 1, 0, qdwconv3x3_scalar),
      qdw("qdwconv3x3_s2_scalar", F::qdwconv3x3_s2, "scalar", 1, 0, qdwconv3x3_scalar),
#if defined(MBF_HAVE_X86_KERNELS)
      // ---- AVX2 + FMA (kernels/avx2/)
      conv("dwconv3x3_s1_avx2_8c", F::dwconv3x3_s1, "avx2", 1, 8, kAvx2Fma, dwconv3x3_s1_avx2_8c),
      conv("dwconv3x3_s2_avx2_8c", F::dwconv3x3_s2, "avx2", 1, 8, kAvx2Fma, dwconv3x3_s2_avx2_8c),
      conv("conv3x3_stem_avx2", F::conv3x3_stem, "avx2", 1, 8, kAvx2Fma, conv3x3_stem_avx2),
      gemm("gemm_6x16_avx2", "avx2", kGemmMrAvx2, kGemmNrAvx2, kAvx2Fma, gemm_6x16_avx2),
      pool("global_avg_pool_avx2", "avx2", 8, kAvx2Fma, global_avg_pool_avx2),
      qgemm("qgemm_u8s8_6x8c4_avx2", "avx2", kQgemmMrAvx2, kQgemmNrAvx2, kAvx2Fma, qgemm_6x8c4_avx2,
            qgemm_6x8c4_avx2_f32),
      qgemm("qgemm_u8s8_pairs_12x8c4_avx2", "avx2", kQgemmPairsMrAvx2, kQgemmNrAvx2, kAvx2Fma,
            qgemm_pairs_12x8c4_avx2, qgemm_pairs_12x8c4_avx2_f32, F::qgemm_u8s8_pairs),
      qdw("qdwconv3x3_s1_avx2_16c", F::qdwconv3x3_s1, "avx2", 16, kAvx2Fma, qdwconv3x3_s1_avx2_16c),
      qdw("qdwconv3x3_s2_avx2_16c", F::qdwconv3x3_s2, "avx2", 16, kAvx2Fma, qdwconv3x3_s2_avx2_16c),
      // ---- AVX-512 F/BW/VL/DQ (kernels/avx512/)
      conv("dwconv3x3_s1_avx512_16c", F::dwconv3x3_s1, "avx512", 1, 16, kAvx512, dwconv3x3_s1_avx512_16c),
      conv("dwconv3x3_s2_avx512_16c", F::dwconv3x3_s2, "avx512", 1, 16, kAvx512, dwconv3x3_s2_avx512_16c),
      conv("conv3x3_stem_avx512", F::conv3x3_stem, "avx512", 1, 16, kAvx512, conv3x3_stem_avx512),
      gemm("gemm_14x32_avx512", "avx512", kGemmMrAvx512, kGemmNrAvx512, kAvx512, gemm_14x32_avx512),
      pool("global_avg_pool_avx512", "avx512", 16, kAvx512, global_avg_pool_avx512),
      qdw("qdwconv3x3_s1_avx512_16c", F::qdwconv3x3_s1, "avx512", 16, kAvx512, qdwconv3x3_s1_avx512_16c),
      qdw("qdwconv3x3_s2_avx512_16c", F::qdwconv3x3_s2, "avx512", 16, kAvx512, qdwconv3x3_s2_avx512_16c),
      // ---- AVX-512 VNNI (kernels/avx512vnni/): int8 only; the float kernels stay AVX-512's
      qgemm("qgemm_u8s8_14x32c4_avx512_vnni", "avx512_vnni", kQgemmMrAvx512Vnni, kQgemmNrAvx512Vnni,
            kAvx512 | kAvx512Vnni, qgemm_14x32c4_avx512vnni, qgemm_14x32c4_avx512vnni_f32),
      // vpdpbusd never saturates: the same kernel serves pair-limited weights.
      qgemm("qgemm_u8s8_pairs_14x32c4_avx512_vnni", "avx512_vnni", kQgemmMrAvx512Vnni, kQgemmNrAvx512Vnni,
            kAvx512 | kAvx512Vnni, qgemm_14x32c4_avx512vnni, qgemm_14x32c4_avx512vnni_f32, F::qgemm_u8s8_pairs),
      qdw("qdwconv3x3_s1_avx512_vnni_16c", F::qdwconv3x3_s1, "avx512_vnni", 16, kAvx512 | kAvx512Vnni,
          qdwconv3x3_s1_avx512vnni_16c),
      qdw("qdwconv3x3_s2_avx512_vnni_16c", F::qdwconv3x3_s2, "avx512_vnni", 16, kAvx512 | kAvx512Vnni,
          qdwconv3x3_s2_avx512vnni_16c),
#endif
#if defined(MBF_HAVE_NEON_KERNELS)
      // ---- NEON (kernels/neon/): aarch64, and armv7 with NEON + VFPv4
      conv("dwconv3x3_s1_neon_4c", F::dwconv3x3_s1, "neon", 1, 4, kNeon, dwconv3x3_s1_neon_4c),
      conv("dwconv3x3_s2_neon_4c", F::dwconv3x3_s2, "neon", 1, 4, kNeon, dwconv3x3_s2_neon_4c),
      conv("conv3x3_stem_neon", F::conv3x3_stem, "neon", 1, 4, kNeon, conv3x3_stem_neon),
#if defined(__aarch64__)
      gemm("gemm_8x8_neon", "neon", kGemmMrNeon, kGemmNrNeon, kNeon, gemm_8x8_neon),
#else
      gemm("gemm_4x8_neon32", "neon", kGemmMrNeon, kGemmNrNeon, kNeon, gemm_4x8_neon32),
#endif
      pool("global_avg_pool_neon", "neon", 4, kNeon, global_avg_pool_neon),
      // int8, widening on k-major int16 panels (every NEON core: Cortex-A53/A72, armv7); its pairs
      // entry is the same kernel
#if defined(__aarch64__)
      qgemm("qgemm_u8s8_8x8k16_neon", "neon", kQgemmMrNeonK16, kQgemmNrNeonK16, kNeon, qgemm_neon_k16,
            qgemm_neon_k16_f32, F::qgemm_u8s8, 0, true),
      qgemm("qgemm_u8s8_pairs_8x8k16_neon", "neon", kQgemmMrNeonK16, kQgemmNrNeonK16, kNeon, qgemm_neon_k16,
            qgemm_neon_k16_f32, F::qgemm_u8s8_pairs, 0, true),
#else
      qgemm("qgemm_u8s8_4x8k16_neon", "neon", kQgemmMrNeonK16, kQgemmNrNeonK16, kNeon, qgemm_neon_k16,
            qgemm_neon_k16_f32, F::qgemm_u8s8, 0, true),
      qgemm("qgemm_u8s8_pairs_4x8k16_neon", "neon", kQgemmMrNeonK16, kQgemmNrNeonK16, kNeon, qgemm_neon_k16,
            qgemm_neon_k16_f32, F::qgemm_u8s8_pairs, 0, true),
#endif
      qdw("qdwconv3x3_s1_neon_8c", F::qdwconv3x3_s1, "neon", 8, kNeon, qdwconv3x3_s1_neon_8c),
      qdw("qdwconv3x3_s2_neon_8c", F::qdwconv3x3_s2, "neon", 8, kNeon, qdwconv3x3_s2_neon_8c),
#if defined(__aarch64__)
      // ---- dot product (Armv8.2 ASIMDDP): sdot on x - 128 (input offset 128), 4 x 16 tiles whose k loop
      // is hand-scheduled (qgemm_neon_dotprod, the 5 x 16 template kernel, serves its k > 4096)
      qgemm("qgemm_u8s8_4x16c4_neon_dotprod_pipelined", "neon_dotprod", kQgemmMrNeonDotPipelined, kQgemmNrNeonDot,
            kNeon | kDotProd, qgemm_neon_dotprod_pipelined, qgemm_neon_dotprod_pipelined_f32, F::qgemm_u8s8, 128),
      qgemm("qgemm_u8s8_pairs_4x16c4_neon_dotprod_pipelined", "neon_dotprod", kQgemmMrNeonDotPipelined,
            kQgemmNrNeonDot, kNeon | kDotProd, qgemm_neon_dotprod_pipelined, qgemm_neon_dotprod_pipelined_f32,
            F::qgemm_u8s8_pairs, 128),
      // ---- i8mm (Armv8.6): usdot, uint8 x int8 directly
      qgemm("qgemm_u8s8_5x16c4_neon_i8mm", "neon_i8mm", kQgemmMrNeonDot, kQgemmNrNeonDot, kNeon | kDotProd | kI8mm,
            qgemm_neon_i8mm, qgemm_neon_i8mm_f32),
      qgemm("qgemm_u8s8_pairs_5x16c4_neon_i8mm", "neon_i8mm", kQgemmMrNeonDot, kQgemmNrNeonDot,
            kNeon | kDotProd | kI8mm, qgemm_neon_i8mm, qgemm_neon_i8mm_f32, F::qgemm_u8s8_pairs),
#endif
#endif
  };
}

}  // namespace

const std::vector<KernelVariant>& kernel_variants() {
  static const std::vector<KernelVariant> table = make_table();
  return table;
}

const std::vector<IsaLevel>& isa_levels() {
  static const std::vector<IsaLevel> levels = {
      {"scalar", 0},
#if defined(MBF_HAVE_X86_KERNELS)
      {"avx2", kAvx2Fma},
      {"avx512", kAvx512},
      {"avx512_vnni", kAvx512 | kAvx512Vnni},
#endif
#if defined(MBF_HAVE_NEON_KERNELS)
      {"neon", kNeon},
#if defined(__aarch64__)
      {"neon_dotprod", kNeon | kDotProd},
      {"neon_i8mm", kNeon | kDotProd | kI8mm},
#endif
#endif
  };
  return levels;
}

}  // namespace mbf
