#include <algorithm>
#include <cmath>
#include <string>

#include "mobilenet_fast/kernels.h"

#include <cstdint>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mbf {

void complete_geometry(Conv2dGeom& g) {
  auto fail = [](const std::string& what) { throw InputError(what); };
  if (g.in_h <= 0 || g.in_w <= 0) fail("input height and width must be positive");
  if (g.in_channels <= 0 || g.out_channels <= 0) fail("channel counts must be positive");
  if (g.stride != 1 && g.stride != 2) fail("stride must be 1 or 2, got " + std::to_string(g.stride));
  for (int p : {g.pad_top, g.pad_left, g.pad_bottom, g.pad_right})
    if (p < 0 || p > 1) fail("pads must be 0 or 1 for a 3x3 kernel, got " + std::to_string(p));
  const int eh = g.in_h + g.pad_top + g.pad_bottom - 3;
  const int ew = g.in_w + g.pad_left + g.pad_right - 3;
  if (eh < 0 || ew < 0)
    fail("input " + std::to_string(g.in_h) + "x" + std::to_string(g.in_w) +
         " with these pads is smaller than the 3x3 kernel");
  g.out_h = eh / g.stride + 1;
  g.out_w = ew / g.stride + 1;
}

Conv2dGeom conv_geometry(int in_h, int in_w, int in_channels, int out_channels, int stride,
                         const std::array<int, 4>& pads) {
  Conv2dGeom g;
  g.in_h = in_h;
  g.in_w = in_w;
  g.in_channels = in_channels;
  g.out_channels = out_channels;
  g.stride = stride;
  g.pad_top = pads[0];
  g.pad_left = pads[1];
  g.pad_bottom = pads[2];
  g.pad_right = pads[3];
  complete_geometry(g);
  return g;
}

std::size_t packed_gemm_size(int k, int n, int nr) {
  const std::size_t panels = (static_cast<std::size_t>(n) + nr - 1) / nr;
  return panels * static_cast<std::size_t>(nr) * (static_cast<std::size_t>(k) + 1);
}

void pack_gemm_weights(int k, int n, int nr, const float* b, const float* bias, float* packed) {
  for (int j0 = 0; j0 < n; j0 += nr) {
    const int cols = std::min(nr, n - j0);
    float* dst = packed + static_cast<std::ptrdiff_t>(j0 / nr) * nr * (k + 1);
    for (int j = 0; j < nr; ++j) dst[j] = (j < cols && bias) ? bias[j0 + j] : 0.0f;
    dst += nr;
    for (int p = 0; p < k; ++p, dst += nr)
      for (int j = 0; j < nr; ++j)
        dst[j] = j < cols ? b[static_cast<std::ptrdiff_t>(p) * n + j0 + j] : 0.0f;
  }
}

std::size_t packed_qgemm_bytes(int k, int n, int nr) {
  const std::size_t panels = (static_cast<std::size_t>(n) + nr - 1) / nr;
  const std::size_t groups = (static_cast<std::size_t>(k) + kQgemmKr - 1) / kQgemmKr;
  return panels * static_cast<std::size_t>(nr) * (2 * sizeof(std::int32_t) + groups * kQgemmKr);
}

namespace {

// A panel's head, columns j0 .. j0 + nr: the corrected biases and the scales (columns past n: 0
// and 1), written at out; returns the address after it.
unsigned char* qgemm_panel_head(int k, int n, int nr, int j0, const std::int8_t* b, const std::int32_t* bias,
                                const float* scale, std::int32_t input_zero_point, unsigned char* out) {
  const int cols = std::min(nr, n - j0);
  std::int32_t head_bias[kMaxQgemmPanel];
  float head_scale[kMaxQgemmPanel];
  for (int j = 0; j < nr; ++j) {
    head_bias[j] = 0;
    head_scale[j] = 1.0f;
    if (j >= cols) continue;
    const float s = scale[j0 + j];
    if (!(s > 0.0f) || !std::isfinite(s))
      throw InputError("qgemm: scale of column " + std::to_string(j0 + j) + " must be a positive finite number");
    head_scale[j] = s;
    std::int64_t sum = 0;
    for (int p = 0; p < k; ++p) sum += b[static_cast<std::ptrdiff_t>(p) * n + j0 + j];
    const std::int64_t corrected = (bias ? bias[j0 + j] : 0) - static_cast<std::int64_t>(input_zero_point) * sum;
    if (corrected < INT32_MIN || corrected > INT32_MAX)
      throw InputError("qgemm: bias of column " + std::to_string(j0 + j) + " minus zero point x weight sum " +
                       "overflows int32");
    head_bias[j] = static_cast<std::int32_t>(corrected);
  }
  std::memcpy(out, head_bias, sizeof(std::int32_t) * nr);
  out += sizeof(std::int32_t) * nr;
  std::memcpy(out, head_scale, sizeof(float) * nr);
  return out + sizeof(float) * nr;
}

}  // namespace

void pack_qgemm_weights(int k, int n, int nr, const std::int8_t* b, const std::int32_t* bias, const float* scale,
                        std::int32_t input_zero_point, void* packed) {
  if (nr < 1 || nr > kMaxQgemmPanel) throw InputError("qgemm: panel width must be 1.." + std::to_string(kMaxQgemmPanel));
  const int groups = (k + kQgemmKr - 1) / kQgemmKr;
  auto* out = static_cast<unsigned char*>(packed);
  for (int j0 = 0; j0 < n; j0 += nr) {
    const int cols = std::min(nr, n - j0);
    out = qgemm_panel_head(k, n, nr, j0, b, bias, scale, input_zero_point, out);
    for (int g = 0; g < groups; ++g)
      for (int j = 0; j < nr; ++j)
        for (int q = 0; q < kQgemmKr; ++q, ++out) {
          const int p = g * kQgemmKr + q;
          *out = static_cast<unsigned char>(
              (j < cols && p < k) ? b[static_cast<std::ptrdiff_t>(p) * n + j0 + j] : static_cast<std::int8_t>(0));
        }
  }
}

std::size_t packed_qgemm_k16_panel_bytes(int k) {
  const std::size_t rows = (static_cast<std::size_t>(k) + 7) / 8 * 8;
  return kQgemmK16Nr * (2 * sizeof(std::int32_t) + rows * sizeof(std::int16_t));
}

std::size_t packed_qgemm_k16_bytes(int k, int n) {
  return (static_cast<std::size_t>(n) + kQgemmK16Nr - 1) / kQgemmK16Nr * packed_qgemm_k16_panel_bytes(k);
}

void pack_qgemm_weights_k16(int k, int n, const std::int8_t* b, const std::int32_t* bias, const float* scale,
                            std::int32_t input_zero_point, void* packed) {
  constexpr int nr = kQgemmK16Nr;
  const int rows = (k + 7) / 8 * 8;
  auto* out = static_cast<unsigned char*>(packed);
  for (int j0 = 0; j0 < n; j0 += nr) {
    const int cols = std::min(nr, n - j0);
    out = qgemm_panel_head(k, n, nr, j0, b, bias, scale, input_zero_point, out);
    for (int p = 0; p < rows; ++p)
      for (int j = 0; j < nr; ++j, out += sizeof(std::int16_t)) {
        const std::int16_t v = (j < cols && p < k) ? b[static_cast<std::ptrdiff_t>(p) * n + j0 + j] : 0;
        std::memcpy(out, &v, sizeof v);
      }
  }
}

std::size_t qgemm_packed_bytes(const KernelTable& t, int k, int n) {
  return (t.qgemm_k16 ? packed_qgemm_k16_bytes(k, n) : packed_qgemm_bytes(k, n, t.qgemm_nr)) + kQgemmPackSlack;
}

std::size_t qgemm_panel_stride(const KernelTable& t, int k) {
  return t.qgemm_k16 ? packed_qgemm_k16_panel_bytes(k) : packed_qgemm_bytes(k, t.qgemm_nr, t.qgemm_nr);
}

void qgemm_pack(const KernelTable& t, int k, int n, const std::int8_t* b, const std::int32_t* bias, const float* scale,
                std::int32_t input_zero_point, void* packed) {
  if (t.qgemm_k16)
    pack_qgemm_weights_k16(k, n, b, bias, scale, input_zero_point - t.qgemm_input_offset, packed);
  else
    pack_qgemm_weights(k, n, t.qgemm_nr, b, bias, scale, input_zero_point - t.qgemm_input_offset, packed);
  const std::size_t bytes = qgemm_packed_bytes(t, k, n);
  std::memset(static_cast<unsigned char*>(packed) + bytes - kQgemmPackSlack, 0, kQgemmPackSlack);
}

bool qgemm_pairs_fit(int k, int n, const std::int8_t* b) {
  for (int p = 0; p < k; p += 2)
    for (int j = 0; j < n; ++j) {
      const int w0 = b[static_cast<std::ptrdiff_t>(p) * n + j];
      const int w1 = p + 1 < k ? b[static_cast<std::ptrdiff_t>(p + 1) * n + j] : 0;
      if ((w0 < 0 ? -w0 : w0) + (w1 < 0 ? -w1 : w1) > kQgemmPairLimit) return false;
    }
  return true;
}

std::size_t packed_qdwconv3x3_bytes(int channels) {
  return static_cast<std::size_t>(channels) * (2 * sizeof(std::int32_t) + 9 * sizeof(std::int16_t));
}

namespace {

template <class W>
void pack_qdw(int channels, const W* w, const std::int32_t* bias, const float* scale, void* packed) {
  auto* out = static_cast<unsigned char*>(packed);
  for (int c = 0; c < channels; ++c) {
    const float s = scale[c];
    if (!(s > 0.0f) || !std::isfinite(s))
      throw InputError("qdwconv3x3: scale of channel " + std::to_string(c) + " must be a positive finite number");
    const std::int32_t b = bias ? bias[c] : 0;
    std::memcpy(out + sizeof(std::int32_t) * c, &b, sizeof b);
    std::memcpy(out + sizeof(std::int32_t) * (channels + c), &s, sizeof s);
    for (int t = 0; t < 9; ++t) {
      const std::int16_t v = w[static_cast<std::ptrdiff_t>(t) * channels + c];
      std::memcpy(out + 2 * sizeof(std::int32_t) * channels + sizeof(std::int16_t) * (static_cast<std::ptrdiff_t>(t) * channels + c),
                  &v, sizeof v);
    }
  }
}

}  // namespace

void pack_qdwconv3x3_weights(int channels, const std::int8_t* w, const std::int32_t* bias, const float* scale,
                             void* packed) {
  pack_qdw(channels, w, bias, scale, packed);
}

void pack_qdwconv3x3_weights(int channels, const std::int16_t* w, const std::int32_t* bias, const float* scale,
                             void* packed) {
  pack_qdw(channels, w, bias, scale, packed);
}

bool all_finite(const float* x, std::size_t n) {
  std::uint32_t bad = 0;
  std::size_t i = 0;
#if defined(__SSE2__)
  // SSE2 is part of x86-64: four floats per compare, sixteen per iteration.
  const __m128i exp_mask = _mm_set1_epi32(0x7f800000);
  __m128i acc = _mm_setzero_si128();
  for (; i + 16 <= n; i += 16) {
    for (int j = 0; j < 16; j += 4) {
      const __m128i v = _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i + j)), exp_mask);
      acc = _mm_or_si128(acc, _mm_cmpeq_epi32(v, exp_mask));
    }
  }
  bad = static_cast<std::uint32_t>(_mm_movemask_epi8(acc));
#endif
  for (; i < n; ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, x + i, sizeof bits);
    bad |= static_cast<std::uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  return bad == 0;
}

}  // namespace mbf
