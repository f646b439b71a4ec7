// Multiply-add throughput loops that measure the arithmetic peak of one core for each ISA, so the
// microbenchmarks can report % of peak. Each function runs `rounds` rounds of independent
// acc = acc * mul + add chains (enough chains to cover the FMA latency on every unit) and returns
// a value that depends on all of them. Flops per round: 2 * chains * lanes.
//
// The AVX2 / AVX-512 loops live in their own translation units compiled with -mavx2 -mfma /
// -mavx512f: they include nothing but <immintrin.h> and this header (no inline functions or
// templates shared with other translation units), and are only called when the CPU has the ISA.
#pragma once

namespace mbf_bench {

// Plain float mul+add (one FMA instruction where the baseline has it, e.g. aarch64). x86-64 has 16
// xmm registers: 12 chains plus the two constants fit without spilling.
#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
constexpr int kScalarChains = 12;
#else
constexpr int kScalarChains = 16;
#endif
float madd_chains_scalar(long long rounds, float mul, float add);

#if defined(MBF_BENCH_X86)
constexpr int kAvx2Chains = 12;  // _mm256_fmadd_ps, 8 lanes
float fma_chains_avx2(long long rounds, float mul, float add);
constexpr int kAvx512Chains = 16;  // _mm512_fmadd_ps, 16 lanes
float fma_chains_avx512(long long rounds, float mul, float add);
// int8: vpdpbusd chains, 16 lanes x 4 multiply-adds each (int8_peak_avx512vnni.cpp, -mavx512vnni).
constexpr int kAvx512VnniChains = 16;
// int8 on AVX2 without VNNI: vpmaddubsw + vpmaddwd + vpaddd chains, 8 lanes x 4 multiply-adds
// each (fma_peak_avx2.cpp), the pairs GEMM's inner step.
constexpr int kAvx2Int8Chains = 12;
float maddubs_chains_avx2(long long rounds, float mul, float add);
float dpbusd_chains_avx512vnni(long long rounds, float mul, float add);
#endif

}  // namespace mbf_bench
