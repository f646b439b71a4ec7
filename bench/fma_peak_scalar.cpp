// Scalar multiply-add peak. Compiled without auto-vectorisation (bench/CMakeLists.txt), so this
// is the throughput of one float multiply and add per chain step (or one FMA instruction on
// targets whose baseline has FMA, e.g. aarch64).
#include "fma_peak.h"

namespace mbf_bench {

float madd_chains_scalar(long long rounds, float mul, float add) {
  float c[kScalarChains];
  for (int j = 0; j < kScalarChains; ++j) c[j] = 0.1f * j;
  for (long long r = 0; r < rounds; ++r)
    for (int j = 0; j < kScalarChains; ++j) c[j] = c[j] * mul + add;  // fully unrolled: registers
  float sum = 0.0f;
  for (int j = 0; j < kScalarChains; ++j) sum += c[j];
  return sum;
}

}  // namespace mbf_bench
