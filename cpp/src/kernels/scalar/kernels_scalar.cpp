// Portable scalar kernels. They are the reference every SIMD kernel is tested against, so they
// favour plain loops over cleverness; the compiler may still vectorise the channel loops.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/kernels_internal.h"

namespace mbf {
namespace {

inline float clamp_value(float v, Clamp c) { return std::min(std::max(v, c.min), c.max); }

// Calls f(pixel, tap) for each tap (kh * 3 + kw) of output pixel (oh, ow) whose input pixel
// (its index ih * in_w + iw in the image) is inside the image, in the order kh, then kw.
template <class F>
void for_each_tap(const Conv2dGeom& g, int oh, int ow, F&& f) {
  for (int kh = 0; kh < 3; ++kh) {
    const int ih = oh * g.stride - g.pad_top + kh;
    if (ih < 0 || ih >= g.in_h) continue;
    for (int kw = 0; kw < 3; ++kw) {
      const int iw = ow * g.stride - g.pad_left + kw;
      if (iw >= 0 && iw < g.in_w) f(static_cast<std::ptrdiff_t>(ih) * g.in_w + iw, kh * 3 + kw);
    }
  }
}

}  // namespace

// Generic depthwise 3x3 for any stride; channels innermost so the loop over C is contiguous.
void dwconv3x3_scalar(const Conv2dGeom& g, const float* in, const float* w, const float* bias,
                      float* out, int row_begin, int row_end, Clamp clamp) {
  const int C = g.in_channels;
  std::vector<float> acc(static_cast<std::size_t>(C));
  for (int oh = row_begin; oh < row_end; ++oh) {
    for (int ow = 0; ow < g.out_w; ++ow) {
      std::copy(bias, bias + C, acc.begin());
      for_each_tap(g, oh, ow, [&](std::ptrdiff_t pixel, int tap) {
        const float* px = in + pixel * C;
        const float* wt = w + tap * C;
        for (int c = 0; c < C; ++c) acc[c] += px[c] * wt[c];
      });
      float* o = out + (static_cast<std::ptrdiff_t>(oh) * g.out_w + ow) * C;
      for (int c = 0; c < C; ++c) o[c] = clamp_value(acc[c], clamp);
    }
  }
}

void conv3x3_stem_scalar(const Conv2dGeom& g, const float* in, const float* w, const float* bias,
                         float* out, int row_begin, int row_end, Clamp clamp) {
  const int Ci = g.in_channels, Co = g.out_channels;
  std::vector<float> acc(static_cast<std::size_t>(Co));
  for (int oh = row_begin; oh < row_end; ++oh) {
    for (int ow = 0; ow < g.out_w; ++ow) {
      std::copy(bias, bias + Co, acc.begin());
      for_each_tap(g, oh, ow, [&](std::ptrdiff_t pixel, int tap) {
        const float* px = in + pixel * Ci;
        const float* wt = w + static_cast<std::ptrdiff_t>(tap) * Ci * Co;
        for (int ci = 0; ci < Ci; ++ci) {
          const float x = px[ci];
          const float* wr = wt + static_cast<std::ptrdiff_t>(ci) * Co;
          for (int co = 0; co < Co; ++co) acc[co] += x * wr[co];
        }
      });
      float* o = out + (static_cast<std::ptrdiff_t>(oh) * g.out_w + ow) * Co;
      for (int co = 0; co < Co; ++co) o[co] = clamp_value(acc[co], clamp);
    }
  }
}

// One row of A against one packed panel at a time: simple and obviously right. Works for any
// panel width, so it can also check (and stand in for) the packing of the SIMD tables.
void gemm_scalar_nr(int m, int n, int k, const float* a, std::ptrdiff_t lda, const float* packed,
                    float* c, std::ptrdiff_t ldc, Clamp clamp, int panel_width) {
  const std::ptrdiff_t panel_stride = static_cast<std::ptrdiff_t>(k + 1) * panel_width;
  float acc[kMaxPanelWidth];
  for (int j0 = 0; j0 < n; j0 += panel_width) {
    const float* panel = packed + (j0 / panel_width) * panel_stride;
    const int nr = std::min(panel_width, n - j0);
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < nr; ++j) acc[j] = panel[j];
      const float* ar = a + i * lda;
      const float* bp = panel + panel_width;
      for (int p = 0; p < k; ++p, bp += panel_width) {
        const float x = ar[p];
        for (int j = 0; j < nr; ++j) acc[j] += x * bp[j];
      }
      float* cr = c + i * ldc + j0;
      for (int j = 0; j < nr; ++j) cr[j] = clamp_value(acc[j], clamp);
    }
  }
}

void gemm_1x8_scalar(int m, int n, int k, const float* a, std::ptrdiff_t lda, const float* packed, float* c,
                     std::ptrdiff_t ldc, Clamp clamp) {
  gemm_scalar_nr(m, n, k, a, lda, packed, c, ldc, clamp, kGemmNrScalar);
}

// zero_point + rne(acc * scale), clamped to [min, max]: the float32 operations every SIMD variant
// performs (int32 -> float32 rounds to nearest even, one float32 multiply, the clamp in the float
// domain on the integer bounds, then round to nearest even), so they all give these bits.
std::uint8_t requantize(std::int32_t acc, float scale, QuantOut q) {
  float y = static_cast<float>(acc) * scale;
  y = std::min(std::max(y, static_cast<float>(q.min - q.zero_point)), static_cast<float>(q.max - q.zero_point));
  return static_cast<std::uint8_t>(q.zero_point + static_cast<std::int32_t>(std::nearbyint(y)));
}

void qgemm_scalar_nr(int m, int n, int k, const std::uint8_t* a, std::ptrdiff_t lda, const void* packed,
                     std::uint8_t* c, float* c_f32, std::ptrdiff_t ldc, QuantOut out, int panel_width,
                     const std::int32_t* row_add) {
  const std::ptrdiff_t groups = (k + kQgemmKr - 1) / kQgemmKr;
  const std::ptrdiff_t panel_bytes = panel_width * (2 * static_cast<std::ptrdiff_t>(sizeof(std::int32_t)) + groups * kQgemmKr);
  const auto* base = static_cast<const unsigned char*>(packed);
  for (int j0 = 0; j0 < n; j0 += panel_width) {
    const unsigned char* panel = base + (j0 / panel_width) * panel_bytes;
    const int cols = std::min(panel_width, n - j0);
    for (int j = 0; j < cols; ++j) {
      std::int32_t bias;
      float scale;
      std::memcpy(&bias, panel + sizeof(std::int32_t) * j, sizeof bias);
      std::memcpy(&scale, panel + sizeof(std::int32_t) * (panel_width + j), sizeof scale);
      const auto* w = reinterpret_cast<const std::int8_t*>(panel + 2 * sizeof(std::int32_t) * panel_width) + j * kQgemmKr;
      for (int i = 0; i < m; ++i) {
        std::int32_t acc = bias + (row_add ? row_add[i] : 0);
        const std::uint8_t* ar = a + i * lda;
        for (int p = 0; p < k; ++p)
          acc += static_cast<std::int32_t>(ar[p]) * w[(p / kQgemmKr) * panel_width * kQgemmKr + p % kQgemmKr];
        if (c) c[i * ldc + j0 + j] = requantize(acc, scale, out);
        else c_f32[i * ldc + j0 + j] = static_cast<float>(acc) * scale;
      }
    }
  }
}

void qgemm_1x8c4_scalar(int m, int n, int k, const std::uint8_t* a, std::ptrdiff_t lda, const void* packed,
                        std::uint8_t* c, std::ptrdiff_t ldc, QuantOut out, const std::int32_t* row_add) {
  qgemm_scalar_nr(m, n, k, a, lda, packed, c, nullptr, ldc, out, kQgemmNrScalar, row_add);
}

void qgemm_1x8c4_scalar_f32(int m, int n, int k, const std::uint8_t* a, std::ptrdiff_t lda, const void* packed,
                            float* c, std::ptrdiff_t ldc, const std::int32_t* row_add) {
  qgemm_scalar_nr(m, n, k, a, lda, packed, nullptr, c, ldc, QuantOut{0, 0, 255}, kQgemmNrScalar, row_add);
}

void qdwconv3x3_scalar(const Conv2dGeom& g, const std::uint8_t* in, std::int32_t zx, const void* packed,
                       std::uint8_t* out, int row_begin, int row_end, QuantOut q) {
  const int C = g.in_channels;
  const auto* base = static_cast<const unsigned char*>(packed);
  std::vector<std::int32_t> bias(C), acc(C);
  std::vector<float> scale(C);
  std::vector<std::int16_t> w(static_cast<std::size_t>(9) * C);
  std::memcpy(bias.data(), base, sizeof(std::int32_t) * C);
  std::memcpy(scale.data(), base + sizeof(std::int32_t) * C, sizeof(float) * C);
  std::memcpy(w.data(), base + 2 * sizeof(std::int32_t) * C, sizeof(std::int16_t) * 9 * C);
  for (int oh = row_begin; oh < row_end; ++oh)
    for (int ow = 0; ow < g.out_w; ++ow) {
      acc = bias;
      for_each_tap(g, oh, ow, [&](std::ptrdiff_t pixel, int tap) {
        const std::uint8_t* px = in + pixel * C;
        const std::int16_t* wt = w.data() + tap * C;
        for (int c = 0; c < C; ++c) acc[c] += (static_cast<std::int32_t>(px[c]) - zx) * wt[c];
      });
      std::uint8_t* o = out + (static_cast<std::ptrdiff_t>(oh) * g.out_w + ow) * C;
      for (int c = 0; c < C; ++c) o[c] = requantize(acc[c], scale[c], q);
    }
}

void global_avg_pool_scalar(const float* in, int hw, int channels, float* out) {
  // Accumulate in double: large user-supplied images have many pixels to average.
  std::vector<double> acc(static_cast<std::size_t>(channels), 0.0);
  for (int p = 0; p < hw; ++p) {
    const float* px = in + static_cast<std::ptrdiff_t>(p) * channels;
    for (int ch = 0; ch < channels; ++ch) acc[ch] += px[ch];
  }
  for (int ch = 0; ch < channels; ++ch) out[ch] = static_cast<float>(acc[ch] / hw);
}

void softmax_scalar(const float* in, int n, float* out) {
  float mx = in[0];
  for (int i = 1; i < n; ++i) mx = std::max(mx, in[i]);
  double sum = 0.0;
  for (int i = 0; i < n; ++i) {
    out[i] = std::exp(in[i] - mx);
    sum += out[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int i = 0; i < n; ++i) out[i] *= inv;
}

}  // namespace mbf
