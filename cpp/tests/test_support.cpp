#include "test_support.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <signal.h>
#include <sys/wait.h>

#include "mobilenet_fast/dispatch.h"

#if defined(__SANITIZE_ADDRESS__)
#define MBF_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MBF_TEST_ASAN 1
#endif
#endif
#if defined(MBF_TEST_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace mbf_test {

bool quick_mode() {
  const char* v = std::getenv("MBF_TEST_QUICK");
  return v && *v && std::strcmp(v, "0") != 0;
}

std::vector<std::string> isas_under_test() { return mbf::supported_isas(); }

const mbf::KernelTable& table(const std::string& isa) { return mbf::select_kernels(isa); }

int wait_for_child(int pid, double timeout_seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
    if (r < 0) return -2;
    if (std::chrono::steady_clock::now() > until) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::string clamp_name(mbf::Clamp c) {
  if (c.min == kRelu6.min && c.max == kRelu6.max) return "relu6";
  if (std::isinf(c.min) && std::isinf(c.max)) return "linear";
  return "clamp[" + Checker::fmt(c.min) + "," + Checker::fmt(c.max) + "]";
}

namespace {
constexpr std::uint32_t kSentinelBits = 0x7fc0deadu;  // a quiet NaN no arithmetic produces
}

float Buffer::sentinel() {
  float f;
  std::memcpy(&f, &kSentinelBits, sizeof f);
  return f;
}

Buffer::Buffer(std::size_t n) : store_(n + 2 * kGuard, sentinel()), n_(n) { poison_guards(true); }

Buffer::~Buffer() { poison_guards(false); }

void Buffer::poison_guards(bool poison) const {
#if defined(MBF_TEST_ASAN)
  const float* lead = store_.data();
  const float* tail = store_.data() + kGuard + n_;
  const std::size_t bytes = kGuard * sizeof(float);
  if (poison) {
    ASAN_POISON_MEMORY_REGION(lead, bytes);
    ASAN_POISON_MEMORY_REGION(tail, bytes);
  } else {
    ASAN_UNPOISON_MEMORY_REGION(lead, bytes);
    ASAN_UNPOISON_MEMORY_REGION(tail, bytes);
  }
#else
  (void)poison;
#endif
}

Buffer::Buffer(const std::vector<float>& values) : Buffer(values.size()) {
  std::copy(values.begin(), values.end(), data());
}

void Buffer::fill_sentinel() { std::fill(data(), data() + n_, sentinel()); }

bool Buffer::is_sentinel(std::size_t i) const { return same_bits(data()[i], sentinel()); }

bool Buffer::guards_intact() const {
  poison_guards(false);
  bool intact = true;
  for (std::size_t i = 0; i < kGuard && intact; ++i)
    intact = same_bits(store_[i], sentinel()) && same_bits(store_[kGuard + n_ + i], sentinel());
  poison_guards(true);
  return intact;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

double apply_clamp(double v, mbf::Clamp c) {
  return std::min(std::max(v, static_cast<double>(c.min)), static_cast<double>(c.max));
}

Expected naive_conv3x3(const mbf::Conv2dGeom& g, const float* in, const float* w, const float* bias,
                       mbf::Clamp clamp, bool depthwise) {
  const int ci_n = g.in_channels, co_n = g.out_channels;
  const std::size_t n = static_cast<std::size_t>(g.out_h) * g.out_w * co_n;
  Expected e{std::vector<double>(n), std::vector<double>(n)};
  for (int oh = 0; oh < g.out_h; ++oh)
    for (int ow = 0; ow < g.out_w; ++ow)
      for (int co = 0; co < co_n; ++co) {
        double acc = bias[co], mag = std::fabs(static_cast<double>(bias[co]));
        for (int kh = 0; kh < 3; ++kh) {
          const int ih = oh * g.stride - g.pad_top + kh;
          if (ih < 0 || ih >= g.in_h) continue;
          for (int kw = 0; kw < 3; ++kw) {
            const int iw = ow * g.stride - g.pad_left + kw;
            if (iw < 0 || iw >= g.in_w) continue;
            const float* px = in + (static_cast<std::ptrdiff_t>(ih) * g.in_w + iw) * ci_n;
            if (depthwise) {
              const double t = static_cast<double>(px[co]) * w[(kh * 3 + kw) * co_n + co];
              acc += t;
              mag += std::fabs(t);
            } else {
              for (int ci = 0; ci < ci_n; ++ci) {
                const double t = static_cast<double>(px[ci]) *
                                 w[(static_cast<std::ptrdiff_t>(kh * 3 + kw) * ci_n + ci) * co_n + co];
                acc += t;
                mag += std::fabs(t);
              }
            }
          }
        }
        const std::size_t i = (static_cast<std::size_t>(oh) * g.out_w + ow) * co_n + co;
        e.value[i] = apply_clamp(acc, clamp);
        e.magnitude[i] = mag;
      }
  return e;
}

Expected naive_gemm(int m, int n, int k, const float* a, std::ptrdiff_t lda, const float* b,
                    const float* bias, mbf::Clamp clamp) {
  const std::size_t total = static_cast<std::size_t>(m) * n;
  Expected e{std::vector<double>(total), std::vector<double>(total)};
  std::vector<double> acc(n), mag(n);
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      acc[j] = bias ? bias[j] : 0.0;
      mag[j] = std::fabs(acc[j]);
    }
    for (int p = 0; p < k; ++p) {
      const double x = a[i * lda + p];
      const float* br = b + static_cast<std::ptrdiff_t>(p) * n;
      for (int j = 0; j < n; ++j) {
        const double t = x * br[j];
        acc[j] += t;
        mag[j] += std::fabs(t);
      }
    }
    for (int j = 0; j < n; ++j) {
      e.value[static_cast<std::size_t>(i) * n + j] = apply_clamp(acc[j], clamp);
      e.magnitude[static_cast<std::size_t>(i) * n + j] = mag[j];
    }
  }
  return e;
}

Expected naive_avg_pool(const float* in, int hw, int channels) {
  Expected e{std::vector<double>(channels, 0.0), std::vector<double>(channels, 0.0)};
  for (int p = 0; p < hw; ++p)
    for (int c = 0; c < channels; ++c) {
      const double x = in[static_cast<std::ptrdiff_t>(p) * channels + c];
      e.value[c] += x;
      e.magnitude[c] += std::fabs(x);
    }
  for (int c = 0; c < channels; ++c) {
    e.value[c] /= hw;
    e.magnitude[c] /= hw;
  }
  return e;
}

std::vector<double> naive_softmax(const float* in, int n) {
  double mx = in[0];
  for (int i = 1; i < n; ++i) mx = std::max(mx, static_cast<double>(in[i]));
  std::vector<double> out(n);
  double sum = 0.0;
  for (int i = 0; i < n; ++i) sum += out[i] = std::exp(in[i] - mx);
  for (double& v : out) v /= sum;
  return out;
}

std::string Checker::fmt(double v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

void Checker::fail(const std::string& msg) {
  ++failures_;
  if (first_.size() < 6) first_.push_back(msg);
}

testing::AssertionResult Checker::result() const {
  if (failures_ == 0) return testing::AssertionSuccess();
  auto r = testing::AssertionFailure();
  r << context_ << ": " << failures_ << " of " << checked_ << " checks failed; first:";
  for (const auto& s : first_) r << "\n    " << s;
  return r;
}

void report_worst(std::size_t cases, double worst) {
  testing::Test::RecordProperty("cases", std::to_string(cases));
  testing::Test::RecordProperty("worst_error", Checker::fmt(worst));
  std::printf("%zu cases; worst |err| / (1 + sum|terms|) = %.3g (tolerance %.0e)\n", cases, worst, kTol);
}

}  // namespace mbf_test
