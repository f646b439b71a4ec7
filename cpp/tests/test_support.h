// Shared helpers of the kernel tests: deterministic random data, guarded buffers, naive
// double-precision references and a checker that reports the first few mismatches with context.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "mobilenet_fast/kernels.h"

namespace mbf_test {

// MBF_TEST_QUICK=1 (any value but "0" or empty): shorter shape lists for slow runners (qemu).
bool quick_mode();

// Kernel tables under test: every compiled ISA the CPU can run (scalar first).
std::vector<std::string> isas_under_test();
const mbf::KernelTable& table(const std::string& isa);

constexpr mbf::Clamp kRelu6{0.0f, 6.0f};
constexpr mbf::Clamp kLinear{-std::numeric_limits<float>::infinity(),
                             std::numeric_limits<float>::infinity()};
constexpr mbf::Clamp kNarrow{-0.5f, 0.25f};
std::string clamp_name(mbf::Clamp c);

// Default tolerance: |got - want| <= kTol * (1 + sum of |terms|). FMA and a different summation
// order change the rounding, never by more than a few float ulps of the magnitude summed.
constexpr double kTol = 1e-5;

// Deterministic uniform floats, identical on every platform (no std distributions).
class Rng {
 public:
  explicit Rng(std::uint32_t seed) : gen_(seed) {}
  float uniform(float lo, float hi) {
    const float u = static_cast<float>(gen_() >> 8) * (1.0f / 16777216.0f);  // [0, 1)
    return lo + (hi - lo) * u;
  }
  std::vector<float> vec(std::size_t n, float lo, float hi) {
    std::vector<float> v(n);
    for (float& x : v) x = uniform(lo, hi);
    return v;
  }
  std::uint32_t next() { return gen_(); }

 private:
  std::mt19937 gen_;
};

// He-style uniform bound for a layer with `fan_in` inputs: variance gain / fan_in.
inline float he_bound(int fan_in, double gain = 2.0) {
  return static_cast<float>(std::sqrt(3.0 * gain / fan_in));
}

// A float array with guard zones on both sides. The guards and, after fill_sentinel(), the data
// hold a NaN with a recognisable payload, so a kernel that reads outside its operands produces
// NaN (or a clamp of it) in the result and one that writes outside its range is caught by a bit
// comparison. data() starts at an odd float offset: kernels must not assume any alignment.
// Under AddressSanitizer (MBF_SANITIZE) the guard zones are also poisoned, so any access to them,
// even a load whose lanes never reach the result, stops the test with a report. (ASan tracks
// 8-byte granules and can only poison a granule's tail: with the odd offset, the one float right
// before data() stays addressable; the sentinel still covers it.)
class Buffer {
 public:
  explicit Buffer(std::size_t n);
  Buffer(const std::vector<float>& values);  // NOLINT: copies values into a guarded buffer
  ~Buffer();
  Buffer(const Buffer&) = delete;  // a copy would read the poisoned guards
  Buffer& operator=(const Buffer&) = delete;
  float* data() { return store_.data() + kGuard; }
  const float* data() const { return store_.data() + kGuard; }
  std::size_t size() const { return n_; }
  float& operator[](std::size_t i) { return data()[i]; }
  float operator[](std::size_t i) const { return data()[i]; }
  void fill_sentinel();
  bool is_sentinel(std::size_t i) const;
  bool guards_intact() const;

  static float sentinel();

 private:
  void poison_guards(bool poison) const;

  static constexpr std::size_t kGuard = 37;
  std::vector<float> store_;
  std::size_t n_;
};

bool same_bits(float a, float b);

// Exact result (after the clamp) and the sum of absolute values of its terms (bias included).
struct Expected {
  std::vector<double> value;
  std::vector<double> magnitude;
};

double apply_clamp(double v, mbf::Clamp c);

// Naive references in double precision.
// 3x3 convolution over the whole output (depthwise: weights [3][3][C]; else HWIO).
Expected naive_conv3x3(const mbf::Conv2dGeom& g, const float* in, const float* w, const float* bias,
                       mbf::Clamp clamp, bool depthwise);
// C[m][n] = clamp(A[m][k] (row stride lda) x B[k][n] + bias); bias may be null.
Expected naive_gemm(int m, int n, int k, const float* a, std::ptrdiff_t lda, const float* b,
                    const float* bias, mbf::Clamp clamp);
// out[c] = mean over hw pixels; magnitude = mean of |x|.
Expected naive_avg_pool(const float* in, int hw, int channels);
std::vector<double> naive_softmax(const float* in, int n);

// Collects mismatches; result() fails with the count, the worst error and the first few.
class Checker {
 public:
  explicit Checker(std::string context) : context_(std::move(context)) {}

  // |got - want| <= tol * (1 + magnitude); NaN never passes.
  template <class Where>
  void near(float got, double want, double magnitude, double tol, const Where& where) {
    within(got, want, tol * (1.0 + magnitude), where, 1.0 + magnitude);
  }
  // |got - want| <= bound; `scale` only normalises the error recorded in worst().
  template <class Where>
  void within(float got, double want, double bound, const Where& where, double scale = 1.0) {
    ++checked_;
    const double err = std::fabs(static_cast<double>(got) - want);
    if (err <= bound) {
      worst_ = std::max(worst_, err / scale);
      return;
    }
    fail(where() + ": got " + fmt(got) + ", want " + fmt(want) + " (|err| " + fmt(err) + " > " +
         fmt(bound) + ")");
  }
  // got must hold exactly the bits of want.
  template <class Where>
  void bits(float got, float want, const Where& where) {
    ++checked_;
    if (!same_bits(got, want)) fail(where() + ": got " + fmt(got) + ", want exactly " + fmt(want));
  }
  template <class Where>
  void untouched(const Buffer& b, std::size_t i, const Where& where) {
    ++checked_;
    if (!b.is_sentinel(i)) fail(where() + ": written (" + fmt(b[i]) + ") but outside the range to compute");
  }
  void require(bool ok, const std::string& what) {
    ++checked_;
    if (!ok) fail(what);
  }

  testing::AssertionResult result() const;
  std::size_t failures() const { return failures_; }
  // Largest err / (1 + magnitude) among passing near() checks (for the record).
  double worst() const { return worst_; }

  static std::string fmt(double v);

 private:
  void fail(const std::string& msg);

  std::string context_;
  std::size_t checked_ = 0, failures_ = 0;
  double worst_ = 0.0;
  std::vector<std::string> first_;
};

// Result of checking one case: failed checks, and the largest err / (1 + magnitude) that passed.
struct Outcome {
  std::size_t failures;
  double worst;
};
// Prints (and records as a test property) how close the passing results came to the tolerance.
void report_worst(std::size_t cases, double worst);

// qemu-user 7.2 aborts (an assertion in qemu itself) when the child of a fork() taken while other
// threads exist creates a thread; a 15-line program with no mobilenet code reproduces it. Tests
// that fork a multi-threaded process skip themselves in builds run under an emulator.
#if defined(MBF_TESTS_UNDER_EMULATOR)
#define MBF_SKIP_FORK_TEST_UNDER_EMULATOR() \
  GTEST_SKIP() << "qemu-user cannot create threads in the child of a multi-threaded fork()"
#else
#define MBF_SKIP_FORK_TEST_UNDER_EMULATOR() static_cast<void>(0)
#endif

// Waits up to timeout_seconds for the forked child `pid` and returns its exit status (0..255), or
// -1 after killing it when it did not finish in time (a deadlock), or -2 when it died of a signal.
int wait_for_child(int pid, double timeout_seconds);

// Name printer for ISA-parameterised tests: Isa/Gemm.Remainders/avx512.
struct IsaName {
  std::string operator()(const testing::TestParamInfo<std::string>& info) const { return info.param; }
};

}  // namespace mbf_test
