// The dispatch table: names, consistency of compiled/supported lists, forced and bad requests.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/kernels_internal.h"
#include "mobilenet_fast/dispatch.h"
#include "test_support.h"

namespace mbf_test {
namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) {
  for (const auto& x : v)
    if (x == s) return true;
  return false;
}

// Sets MOBILENET_FAST_ISA for one scope, restoring the previous value.
class ScopedIsaEnv {
 public:
  explicit ScopedIsaEnv(const char* value) {
    const char* old = std::getenv("MOBILENET_FAST_ISA");
    had_ = old != nullptr;
    if (had_) old_ = old;
    setenv("MOBILENET_FAST_ISA", value, 1);
  }
  ~ScopedIsaEnv() {
    if (had_)
      setenv("MOBILENET_FAST_ISA", old_.c_str(), 1);
    else
      unsetenv("MOBILENET_FAST_ISA");
  }

 private:
  bool had_ = false;
  std::string old_;
};

TEST(Dispatch, SupportedIsasAreCompiledAndScalarComesFirst) {
  const auto compiled = mbf::compiled_isas();
  const auto supported = mbf::supported_isas();
  ASSERT_FALSE(supported.empty());
  EXPECT_EQ(supported.front(), "scalar");
  EXPECT_EQ(compiled.front(), "scalar");
  for (const auto& isa : supported) EXPECT_TRUE(contains(compiled, isa)) << isa;
  std::string list;
  for (const auto& isa : supported) list += " " + isa;
  RecordProperty("supported_isas", list);
  std::printf("arch %s, supported ISAs:%s\n", mbf::cpu_features().arch.c_str(), list.c_str());
}

TEST(Dispatch, EveryTableIsComplete) {
  for (const auto& isa : mbf::supported_isas()) {
    SCOPED_TRACE(isa);
    const mbf::KernelTable& t = mbf::select_kernels(isa);
    EXPECT_EQ(std::string(t.isa), isa);
    EXPECT_NE(t.dwconv3x3_s1, nullptr);
    EXPECT_NE(t.dwconv3x3_s2, nullptr);
    EXPECT_NE(t.conv3x3_stem, nullptr);
    EXPECT_NE(t.gemm, nullptr);
    EXPECT_NE(t.global_avg_pool, nullptr);
    EXPECT_NE(t.softmax, nullptr);
    EXPECT_GE(t.gemm_mr, 1);
    EXPECT_GE(t.gemm_nr, 1);
    EXPECT_LE(t.gemm_nr, mbf::kMaxPanelWidth);
  }
}

TEST(Dispatch, DefaultIsTheBestSupported) {
  if (std::getenv("MOBILENET_FAST_ISA")) GTEST_SKIP() << "MOBILENET_FAST_ISA is set";
  EXPECT_EQ(std::string(mbf::select_kernels().isa), mbf::supported_isas().back());
  EXPECT_EQ(std::string(mbf::select_kernels("auto").isa), mbf::supported_isas().back());
}

TEST(Dispatch, EnvironmentForcesAnIsa) {
  for (const auto& isa : mbf::supported_isas()) {
    ScopedIsaEnv env(isa.c_str());
    EXPECT_EQ(std::string(mbf::select_kernels().isa), isa);
    EXPECT_EQ(std::string(mbf::select_kernels("scalar").isa), "scalar") << "an explicit request wins";
  }
  ScopedIsaEnv env("sse9");
  EXPECT_THROW(mbf::select_kernels(), mbf::InputError);
}

TEST(Dispatch, UnknownUncompiledAndUnsupportedIsasAreErrors) {
  EXPECT_THROW(mbf::select_kernels("sse9"), mbf::InputError);
  EXPECT_THROW(mbf::select_kernels("AVX2"), mbf::InputError);
  const auto compiled = mbf::compiled_isas();
  const auto supported = mbf::supported_isas();
  for (const char* isa : {"scalar", "avx2", "avx512", "neon"}) {
    if (contains(supported, isa))
      EXPECT_NO_THROW(mbf::select_kernels(isa)) << isa;
    else
      EXPECT_THROW(mbf::select_kernels(isa), mbf::InputError) << isa;
  }
}

// On ARM builds the neon table must be compiled in, and used wherever the CPU has NEON (always
// on aarch64; on 32-bit ARM the run-time HWCAP check decides). Catches a build or dispatch change
// that silently leaves an ARM build on the scalar path.
TEST(Dispatch, NeonOnArmBuilds) {
#if defined(__aarch64__) || defined(__arm__)
#if !defined(MBF_HAVE_NEON_KERNELS)
  FAIL() << "an ARM build without MBF_HAVE_NEON_KERNELS";
#else
  EXPECT_TRUE(contains(mbf::compiled_isas(), "neon"));
#if defined(__aarch64__)
  EXPECT_TRUE(mbf::cpu_features().neon) << "Advanced SIMD is mandatory on aarch64";
#endif
  EXPECT_EQ(contains(mbf::supported_isas(), "neon"), mbf::cpu_features().neon);
  if (mbf::cpu_features().neon && !std::getenv("MOBILENET_FAST_ISA")) {
    // the best NEON level the CPU has: dot product (Armv8.2) and i8mm (Armv8.6) add int8 kernels
    const auto& f = mbf::cpu_features();
    const char* want = f.i8mm && f.dotprod ? "neon_i8mm" : f.dotprod ? "neon_dotprod" : "neon";
#if !defined(__aarch64__)
    want = "neon";  // armv7: no dot-product kernels are built
#endif
    EXPECT_EQ(std::string(mbf::select_kernels().isa), want);
  }
#if defined(__aarch64__)
  EXPECT_EQ(contains(mbf::supported_isas(), "neon_dotprod"), mbf::cpu_features().dotprod);
  EXPECT_EQ(contains(mbf::supported_isas(), "neon_i8mm"), mbf::cpu_features().dotprod && mbf::cpu_features().i8mm);
#endif
#endif
#else
  GTEST_SKIP() << "not an ARM build";
#endif
}

// The variant table drives the other tests: they run every supported ISA level's KernelTable, so
// every variant must be some level's choice for its family (else it would go untested and never
// run). Also: names unique, each row's entry point set for its family, every level's table made of
// the variants the table says it chose, and a level's choices needing no feature outside the level.
TEST(Variants, EveryVariantIsTheChoiceOfSomeIsaLevel) {
  const auto& variants = mbf::kernel_variants();
  ASSERT_FALSE(variants.empty());
  for (std::size_t i = 0; i < variants.size(); ++i) {
    const mbf::KernelVariant& v = variants[i];
    SCOPED_TRACE(v.name);
    for (std::size_t j = 0; j < i; ++j) EXPECT_NE(std::string(v.name), variants[j].name) << "duplicate name";
    const bool conv = v.family == mbf::KernelFamily::dwconv3x3_s1 || v.family == mbf::KernelFamily::dwconv3x3_s2 ||
                      v.family == mbf::KernelFamily::conv3x3_stem;
    EXPECT_EQ(v.conv != nullptr, conv);
    EXPECT_EQ(v.gemm != nullptr, v.family == mbf::KernelFamily::gemm);
    EXPECT_EQ(v.global_avg_pool != nullptr, v.family == mbf::KernelFamily::global_avg_pool);
    EXPECT_EQ(v.softmax != nullptr, v.family == mbf::KernelFamily::softmax);
    EXPECT_EQ(v.qgemm != nullptr,
              v.family == mbf::KernelFamily::qgemm_u8s8 || v.family == mbf::KernelFamily::qgemm_u8s8_pairs);
    EXPECT_EQ(v.qdwconv3x3 != nullptr,
              v.family == mbf::KernelFamily::qdwconv3x3_s1 || v.family == mbf::KernelFamily::qdwconv3x3_s2);
    EXPECT_TRUE(contains(mbf::compiled_isas(), v.isa)) << v.isa;
    EXPECT_NE(std::string(v.name).find(mbf::family_name(v.family)), std::string::npos) << "the name says the family";
    EXPECT_NE(std::string(v.name).find(v.isa), std::string::npos) << "the name says the ISA";
    if (v.family == mbf::KernelFamily::gemm) {
      EXPECT_GE(v.tile_m, 1);
      EXPECT_GE(v.tile_n, 1);
      EXPECT_LE(v.tile_n, mbf::kMaxPanelWidth);
    }
    bool chosen = false;
    for (const auto& level : mbf::isa_levels())
      chosen |= &mbf::chosen_variant(level.name, v.family) == &v;
    EXPECT_TRUE(chosen) << "no ISA level runs it";
  }
  for (const auto& level : mbf::isa_levels()) {
    SCOPED_TRACE(level.name);
    for (int f = 0; f < mbf::kKernelFamilies; ++f) {
      const mbf::KernelVariant& v = mbf::chosen_variant(level.name, static_cast<mbf::KernelFamily>(f));
      EXPECT_EQ(v.requires & ~level.features, 0u) << v.name << " needs " << mbf::feature_list(v.requires);
    }
  }
  for (const auto& isa : mbf::supported_isas()) {
    SCOPED_TRACE(isa);
    const mbf::KernelTable& t = mbf::select_kernels(isa);
    auto chosen = [&](mbf::KernelFamily f) -> const mbf::KernelVariant& { return mbf::chosen_variant(isa, f); };
    EXPECT_EQ(t.dwconv3x3_s1, chosen(mbf::KernelFamily::dwconv3x3_s1).conv);
    EXPECT_EQ(t.dwconv3x3_s2, chosen(mbf::KernelFamily::dwconv3x3_s2).conv);
    EXPECT_EQ(t.conv3x3_stem, chosen(mbf::KernelFamily::conv3x3_stem).conv);
    EXPECT_EQ(t.gemm, chosen(mbf::KernelFamily::gemm).gemm);
    EXPECT_EQ(t.gemm_mr, chosen(mbf::KernelFamily::gemm).tile_m);
    EXPECT_EQ(t.gemm_nr, chosen(mbf::KernelFamily::gemm).tile_n);
    EXPECT_EQ(t.global_avg_pool, chosen(mbf::KernelFamily::global_avg_pool).global_avg_pool);
    EXPECT_EQ(t.softmax, chosen(mbf::KernelFamily::softmax).softmax);
    EXPECT_EQ(t.qgemm, chosen(mbf::KernelFamily::qgemm_u8s8).qgemm);
    EXPECT_EQ(t.qgemm_f32, chosen(mbf::KernelFamily::qgemm_u8s8).qgemm_f32);
    EXPECT_NE(t.qgemm_f32, nullptr);
    // The pairs kernel reads the panels packed for qgemm: same panel width.
    EXPECT_EQ(t.qgemm_pairs, chosen(mbf::KernelFamily::qgemm_u8s8_pairs).qgemm);
    EXPECT_EQ(t.qgemm_pairs_f32, chosen(mbf::KernelFamily::qgemm_u8s8_pairs).qgemm_f32);
    EXPECT_EQ(t.qgemm_pairs_mr, chosen(mbf::KernelFamily::qgemm_u8s8_pairs).tile_m);
    EXPECT_EQ(t.qgemm_nr, chosen(mbf::KernelFamily::qgemm_u8s8_pairs).tile_n);
    EXPECT_EQ(t.qdwconv3x3_s1, chosen(mbf::KernelFamily::qdwconv3x3_s1).qdwconv3x3);
    EXPECT_EQ(t.qdwconv3x3_s2, chosen(mbf::KernelFamily::qdwconv3x3_s2).qdwconv3x3);
    for (int f = 0; f < mbf::kKernelFamilies; ++f)
      EXPECT_EQ(std::string(t.variant[f]), chosen(static_cast<mbf::KernelFamily>(f)).name);
  }
}

// A level is supported exactly when the CPU has every feature it allows; the features printed by
// feature_list name each bit once.
TEST(Variants, LevelsFollowCpuFeatures) {
  const mbf::FeatureSet have = mbf::cpu_features().set();
  for (const auto& level : mbf::isa_levels())
    EXPECT_EQ(contains(mbf::supported_isas(), level.name), (level.features & ~have) == 0u) << level.name;
  EXPECT_EQ(mbf::feature_list(0), "none");
  EXPECT_EQ(mbf::feature_list(mbf::kAvx2 | mbf::kFma), "avx2+fma");
  mbf::FeatureSet all = 0;
  for (const auto& [bit, name] : mbf::feature_names()) {
    EXPECT_EQ(all & bit, 0u) << name;
    all |= bit;
  }
  std::printf("CPU features: %s\n", mbf::feature_list(have).c_str());
}

}  // namespace
}  // namespace mbf_test
