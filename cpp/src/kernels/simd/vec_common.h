// What every vector layer (kernels/simd/vec_<isa>.h) and every shared kernel (kernels/f32/) uses.
//
// The vector layer is a struct of static functions over one register type (V::Vec, with lane
// masks V::Mask), plus the tuning constants of the shared kernels for that ISA. A shared kernel
// is a template on that struct, and an ISA's translation unit includes its vector header and the
// kernel's header and defines the named entry points with the kernel's MBF_DEFINE_* macro.
//
// One-definition rule: the ISA translation units are compiled with different flags (-mavx2,
// -mavx512f ...). A function or template shared between them with external linkage would be kept
// once by the linker, possibly the AVX-512 copy, and then called on a CPU without AVX-512. So
// everything in kernels/simd/ and kernels/f32/ lives in an anonymous namespace (each translation
// unit gets its own copy, compiled with its own flags), and the headers use no inline function or
// template of the standard library (std::min, std::vector ...): only intrinsics and what is here.
#pragma once

#include <cstddef>
#include <cstdint>

#define MBF_INLINE inline __attribute__((always_inline))
#define MBF_LAMBDA_INLINE __attribute__((always_inline))

// The float operations AVX2 and AVX-512 spell alike but for the register width: PREFIX is _mm256
// or _mm512 (inside the vector layer struct, whose Vec is that register).
#define MBF_X86_FLOAT_OPS(PREFIX)                                                                     \
  static MBF_INLINE Vec zero() { return PREFIX##_setzero_ps(); }                                      \
  static MBF_INLINE Vec set1(float x) { return PREFIX##_set1_ps(x); }                                  \
  static MBF_INLINE Vec load(const float* p) { return PREFIX##_loadu_ps(p); }                          \
  static MBF_INLINE void store(float* p, Vec v) { PREFIX##_storeu_ps(p, v); }                          \
  static MBF_INLINE Vec fma(Vec a, Vec b, Vec c) { return PREFIX##_fmadd_ps(a, b, c); } /* a*b + c */ \
  static MBF_INLINE Vec add(Vec a, Vec b) { return PREFIX##_add_ps(a, b); }                            \
  static MBF_INLINE Vec min(Vec a, Vec b) { return PREFIX##_min_ps(a, b); }                            \
  static MBF_INLINE Vec max(Vec a, Vec b) { return PREFIX##_max_ps(a, b); }                            \
  static MBF_INLINE void prefetch_l2(const char* p) { _mm_prefetch(p, _MM_HINT_T1); }

namespace mbf {
namespace {

using Index = std::ptrdiff_t;

template <int N>
struct Count {
  static constexpr int value = N;
};

MBF_INLINE int imin(int a, int b) { return a < b ? a : b; }
MBF_INLINE int imax(int a, int b) { return a > b ? a : b; }

// Hides a pointer's value from the optimiser. Without it GCC strength-reduces every
// `x + k * C` of a block into its own induction variable, runs out of registers and spills them.
MBF_INLINE void opaque(const float*& p) { __asm__("" : "+r"(p)); }

// ---- pixel blocking of the convolutions

// Calls f(Count<P>{}, first) for blocks of kMax pixels covering [begin, end), then one block of
// the remaining 1..kMax-1.
template <int kMax, class F>
MBF_INLINE void for_dw_blocks(int begin, int end, F&& f) {
  int x = begin;
  for (; x + kMax <= end; x += kMax) f(Count<kMax>{}, x);
  if constexpr (kMax > 1) {
    if (end - x == kMax - 1) f(Count<kMax - 1>{}, x);
    else if (end - x > 0) for_dw_blocks<kMax - 1>(x, end, f);
  }
}

// Calls f(Count<P>{}, first) to cover [begin, end) with blocks of kMax pixels; what is left
// (fewer than kMax) with blocks of kMax / 2, and so on. A remainder of at least half a block is
// covered by one block shifted back to end exactly at `end`: it recomputes a few pixels (writing
// the same values twice) instead of running a chain of small blocks.
template <int kMax, class F>
MBF_INLINE void for_pixel_blocks(int begin, int end, F&& f) {
  int x = begin;
  for (; x + kMax <= end; x += kMax) f(Count<kMax>{}, x);
  if (x == end) return;
  if (end - begin >= kMax) {
    f(Count<kMax>{}, end - kMax);
  } else if constexpr (kMax > 1) {
    for_pixel_blocks<kMax / 2>(x, end, f);
  }
}

// ---- vector helpers

// V::load / V::load_masked chosen at compile time.
template <class V, bool kMasked>
MBF_INLINE typename V::Vec load_maybe_masked(const float* p, typename V::Mask m) {
  if constexpr (kMasked) return V::load_masked(p, m);
  else return V::load(p);
}

template <class V, bool kMasked>
MBF_INLINE void store_maybe_masked(float* p, typename V::Vec v, typename V::Mask m) {
  if constexpr (kMasked) V::store_masked(p, v, m);
  else V::store(p, v);
}

template <class V>
MBF_INLINE typename V::Vec clamp(typename V::Vec v, typename V::Vec lo, typename V::Vec hi) {
  return V::min(V::max(v, lo), hi);
}

}  // namespace
}  // namespace mbf
