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
    EXPECT_EQ(std::string(mbf::select_kernels().isa), "neon");
  }
#endif
#else
  GTEST_SKIP() << "not an ARM build";
#endif
}

}  // namespace
}  // namespace mbf_test
