// The int8 MobileNetV1 network (mobilenet_fast/qplan.h): checks and packs the quantised layers,
// then runs them with the int8 kernels of one KernelTable, split over the threads like the fp32
// Plan (depthwise by output rows, GEMMs by rows or weight panels, batches by image; schedule.h).
#include "mobilenet_fast/qplan.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>

#include "mobilenet_fast/plan.h"
#include "kernels/kernels_internal.h"  // requantize
#include "schedule.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mbf {

namespace {

void expect_count(std::size_t got, std::size_t want, const std::string& what) {
  if (got != want)
    throw InputError(what + " has " + std::to_string(got) + " values, expected " + std::to_string(want));
}

// Sizes and values of one layer's parameters; every multiplier positive and finite (pack_* check
// those too), the clamp inside 0..255 with min <= max and the zero point in 0..255.
void check_layer(const QLayerParams& p, std::size_t weights, std::size_t channels, const std::string& name) {
  expect_count(p.weights.size(), weights, name + " weights");
  expect_count(p.bias.size(), channels, name + " bias");
  expect_count(p.multiplier.size(), channels, name + " multipliers");
  if (p.out.zero_point < 0 || p.out.zero_point > 255 || p.out.min > p.out.max)
    throw InputError(name + ": output zero point must be in 0..255 and clamp min <= max");
  if (p.weight_offset < -128 || p.weight_offset > 128)
    throw InputError(name + ": weight offset must be in -128..128, got " + std::to_string(p.weight_offset));
}

// q[i] = clamp(rne(x[i] * inv) + zero_point, 0, 255) for n values, inv = 1.0f / scale in float32
// (the reciprocal once, then a multiply per value: what LiteRT's XNNPACK does when it quantises a
// float input, so a float-input .tflite gives its codes exactly), or with `divide` rne(x[i] /
// scale) (onnxruntime's QuantizeLinear); false if a value is NaN or infinite (q is then not all
// written).
bool quantize_input(const float* x, std::size_t n, float scale, std::int32_t zero_point, bool divide, std::uint8_t* q) {
  // y is clamped to [-zp - 1, 256 - zp] before rounding (so it converts to int exactly); the
  // final clamp then saturates to 0..255.
  const float lo = static_cast<float>(-zero_point - 1), hi = static_cast<float>(256 - zero_point);
  const float inv = 1.0f / scale;
  std::size_t i = 0;
#if defined(__SSE2__)
  // SSE2 is part of x86-64, so this needs no dispatch: sixteen values per iteration with the
  // scalar loop's operations and roundings: mulps by the same float32 reciprocal, cvtps2dq rounds
  // half to even like nearbyint (both follow MXCSR,
  // round-to-nearest-even unless a caller changed it), and the signed-then-unsigned saturating
  // packs are the clamp to 0..255. The scalar loop spent ~1 ms on a 224x224 image (a libm
  // nearbyint call per value); this takes a few percent of that.
  const __m128 vinv = _mm_set1_ps(inv), vs = _mm_set1_ps(scale), vlo = _mm_set1_ps(lo), vhi = _mm_set1_ps(hi);
  const __m128i vzp = _mm_set1_epi32(zero_point), exp_mask = _mm_set1_epi32(0x7f800000);
  __m128i bad = _mm_setzero_si128();
  for (; i + 16 <= n; i += 16) {
    __m128i r[4];
    for (int j = 0; j < 4; ++j) {
      const __m128 v = _mm_loadu_ps(x + i + 4 * j);
      bad = _mm_or_si128(bad, _mm_cmpeq_epi32(_mm_and_si128(_mm_castps_si128(v), exp_mask), exp_mask));
      const __m128 y = _mm_min_ps(_mm_max_ps(divide ? _mm_div_ps(v, vs) : _mm_mul_ps(v, vinv), vlo), vhi);
      r[j] = _mm_add_epi32(_mm_cvtps_epi32(y), vzp);
    }
    const __m128i b = _mm_packus_epi16(_mm_packs_epi32(r[0], r[1]), _mm_packs_epi32(r[2], r[3]));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i), b);
  }
  if (_mm_movemask_epi8(bad) != 0) return false;
#endif
  for (; i < n; ++i) {
    if (!std::isfinite(x[i])) return false;
    const float y = std::min(std::max(divide ? x[i] / scale : x[i] * inv, lo), hi);
    const int v = zero_point + static_cast<int>(std::nearbyint(y));
    q[i] = static_cast<std::uint8_t>(std::min(255, std::max(0, v)));
  }
  return true;
}

}  // namespace

QPlan::QPlan(const QPlanSpec& spec, const KernelTable& kernels, int threads)
    : kernels_(kernels), in_h_(spec.in_h), in_w_(spec.in_w), num_classes_(spec.num_classes), threads_(threads) {
  if (!kernels.qgemm || !kernels.qgemm_f32 || !kernels.qgemm_pairs || !kernels.qgemm_pairs_f32 ||
      !kernels.qdwconv3x3_s1 || !kernels.qdwconv3x3_s2)
    throw InputError(std::string("ISA '") + kernels.isa + "' has no int8 kernels");
  if (threads < 1 || threads > kMaxThreads)
    throw InputError("threads must be in 1.." + std::to_string(kMaxThreads) + ", got " + std::to_string(threads));
  if (spec.in_h < 3 || spec.in_w < 3 || spec.in_h > 16384 || spec.in_w > 16384)
    throw InputError("input size " + std::to_string(spec.in_h) + "x" + std::to_string(spec.in_w) +
                     " is outside 3..16384");
  if (!(spec.input_scale > 0.0f) || !std::isfinite(spec.input_scale) || !std::isfinite(1.0f / spec.input_scale) ||
      spec.input_zero_point < 0 || spec.input_zero_point > 255)
    throw InputError("the input's scale must be positive and finite (with a finite reciprocal) and its zero point "
                     "in 0..255");
  if (spec.blocks.empty()) throw InputError("a plan needs at least one block");
  if (spec.stem_channels <= 0) throw InputError("stem: output channels must be positive");
  input_scale_ = spec.input_scale;
  input_divide_ = spec.input_divide;
  input_zp_ = spec.input_zero_point;
  stem_ = conv_geometry(spec.in_h, spec.in_w, 3, spec.stem_channels, spec.stem_stride, spec.stem_pads);
  check_layer(spec.stem, 27u * spec.stem_channels, spec.stem_channels, "stem");
  pack_gemm_layer(kernels_, spec.stem, 27, spec.stem_channels, input_zp_, stem_packed_, "stem");
  stem_offset_ = spec.stem.weight_offset;
  stem_out_ = spec.stem.out;
  stem_pairs_ = use_pairs(27, spec.stem_channels, spec.stem.weights.data());
  std::size_t largest = pixels_of(stem_) * spec.stem_channels;
  int h = stem_.out_h, w = stem_.out_w, c = spec.stem_channels;
  std::int32_t zp = stem_out_.zero_point;
  blocks_.resize(spec.blocks.size());
  for (std::size_t i = 0; i < spec.blocks.size(); ++i) {
    const QPlanBlock& b = spec.blocks[i];
    const std::string name = "blocks." + std::to_string(i);
    Block& L = blocks_[i];
    L.dw = conv_geometry(h, w, c, c, b.stride, b.pads);
    if (b.out_channels <= 0) throw InputError(name + ".pw: output channels must be positive");
    check_layer(b.dw, 9u * c, c, name + ".dw");
    check_layer(b.pw, static_cast<std::size_t>(c) * b.out_channels, b.out_channels, name + ".pw");
    L.dw_packed.reset(packed_qdwconv3x3_bytes(c));
    L.dw_wide = b.dw.weight_offset != 0;
    if (L.dw_wide) {
      std::vector<std::int16_t> wide(b.dw.weights.size());
      for (std::size_t j = 0; j < wide.size(); ++j)
        wide[j] = static_cast<std::int16_t>(b.dw.weights[j] + b.dw.weight_offset);
      pack_qdwconv3x3_weights(c, wide.data(), b.dw.bias.data(), b.dw.multiplier.data(), L.dw_packed.data());
    } else {
      pack_qdwconv3x3_weights(c, b.dw.weights.data(), b.dw.bias.data(), b.dw.multiplier.data(), L.dw_packed.data());
    }
    L.dw_in_zp = zp;
    L.dw_out = b.dw.out;
    L.pw_in_zp = b.dw.out.zero_point;
    L.pw_out = b.pw.out;
    L.pw_channels = b.out_channels;
    pack_gemm_layer(kernels_, b.pw, c, b.out_channels, L.pw_in_zp, L.pw_packed, name + ".pw");
    L.pw_offset = b.pw.weight_offset;
    L.pw_pairs = use_pairs(c, b.out_channels, b.pw.weights.data());
    h = L.dw.out_h;
    w = L.dw.out_w;
    largest = std::max(largest, pixels_of(L.dw) * std::max(c, b.out_channels));
    c = b.out_channels;
    zp = b.pw.out.zero_point;
  }
  feature_channels_ = c;
  if (!(spec.pool_in_scale > 0) || !(spec.pool_out_scale > 0) || !std::isfinite(spec.pool_in_scale) ||
      !std::isfinite(spec.pool_out_scale) || spec.pool_out_zero_point < 0 || spec.pool_out_zero_point > 255)
    throw InputError("pool: scales must be positive and finite, the output zero point in 0..255");
  if (spec.pool_in_zero_point != zp) throw InputError("pool: its input zero point is not the last block's output's");
  pool_multiplier_ = static_cast<float>(spec.pool_in_scale / (static_cast<double>(h) * w * spec.pool_out_scale));
  pool_out_scale_ = spec.pool_out_scale;
  pool_in_zp_ = spec.pool_in_zero_point;
  pool_out_zp_ = spec.pool_out_zero_point;
  pool_half_up_ = spec.pool_half_up;
  if (pool_half_up_ && (spec.pool_in_scale != spec.pool_out_scale || pool_in_zp_ != pool_out_zp_))
    throw InputError("pool: rounding half up (TFLite's AVERAGE_POOL_2D) needs the same scale and zero point on "
                     "its input and output");
  if (num_classes_ < 0) throw InputError("num_classes must be >= 0");
  if (num_classes_ > 0) {
    check_layer(spec.fc, static_cast<std::size_t>(c) * num_classes_, num_classes_, "classifier");
    pack_gemm_layer(kernels_, spec.fc, c, num_classes_, pool_out_zp_, fc_packed_, "classifier");
    fc_offset_ = spec.fc.weight_offset;
    fc_pairs_ = use_pairs(c, num_classes_, spec.fc.weights.data());
  }
  // The same limit as the fp32 Plan, checked before anything is allocated: no buffer of 2^31
  // values or more (the kernels index rows with int; the stem's 27-tap patches are the largest).
  const std::size_t limit = 2147483647u, patches = pixels_of(stem_) * 27;
  if (largest > limit || patches > limit)
    throw InputError("input " + std::to_string(in_h_) + "x" + std::to_string(in_w_) + ": the int8 network's " +
                     (patches > limit ? "stem patches" : "largest activation") + " would hold " +
                     std::to_string(std::max(largest, patches)) +
                     " values, more than the limit of 2^31 - 1 per buffer; use a smaller input");
  buffers_.resize(static_cast<std::size_t>(threads_));
  for (Buffers& b : buffers_) {
    b.a.reset(largest);
    b.b.reset(largest);
    b.patches.reset(patches);
    b.pooled.reset(static_cast<std::size_t>(feature_channels_));
    b.row_add.reset(std::max<std::size_t>(pixels_of(stem_), 1));  // the most rows any GEMM has
  }
  if (threads_ > 1) {
    try {
      pool_ = std::make_unique<ThreadPool>(threads_);
    } catch (const std::system_error& e) {
      throw std::runtime_error("could not start " + std::to_string(threads_ - 1) + " worker thread(s): " + e.what());
    }
  }
  register_for_fork(&mutex_);
}

QPlan::~QPlan() { unregister_for_fork(&mutex_); }

std::size_t QPlan::pixels_of(const Conv2dGeom& g) { return static_cast<std::size_t>(g.out_h) * g.out_w; }

void QPlan::pack_gemm_layer(const KernelTable& kernels, const QLayerParams& p, int k, int n,
                            std::int32_t input_zero_point, AlignedArray<unsigned char>& packed,
                            const std::string& name) {
  packed.reset(qgemm_packed_bytes(kernels, k, n));
  const std::int64_t d = p.weight_offset;
  // With an offset the weights are w + d: the bias absorbs -zp x K x d (the packing subtracts
  // zp x sum w), and each row adds d x its sum of codes at run time. Every partial sum the kernels
  // form (bias, + the products of w, + the row's d x sum) must stay inside int32 for any input.
  std::vector<std::int32_t> bias(p.bias);
  for (int j = 0; j < n && d != 0; ++j) {
    std::int64_t wsum = 0, wabs = 0;
    for (int p2 = 0; p2 < k; ++p2) {
      const std::int64_t w = p.weights[static_cast<std::size_t>(p2) * n + j];
      wsum += w;
      wabs += w < 0 ? -w : w;
    }
    const std::int64_t b = p.bias[static_cast<std::size_t>(j)] - input_zero_point * k * d;
    const std::int64_t packed_bias = b - input_zero_point * wsum;
    const std::int64_t room = (packed_bias < 0 ? -packed_bias : packed_bias) + 255 * wabs + 255 * k * (d < 0 ? -d : d);
    if (room > INT32_MAX)
      throw InputError(name + ": with its weight offset, the int32 accumulator of channel " + std::to_string(j) +
                       " could overflow");
    bias[static_cast<std::size_t>(j)] = static_cast<std::int32_t>(b);
  }
  qgemm_pack(kernels, k, n, p.weights.data(), bias.data(), p.multiplier.data(), input_zero_point, packed.data());
}

bool QPlan::use_pairs(int k, int n, const std::int8_t* b) {
  const bool fit = qgemm_pairs_fit(k, n, b);
  pair_layers_ += fit;
  ++gemm_layers_;
  return fit;
}

namespace {

// out[i] = d x (sum of row i's K uint8 codes), for m rows of A (row stride k): a GEMM layer's
// weight-offset correction (QLayerParams::weight_offset).
void row_sums(int m, int k, const std::uint8_t* a, std::int32_t d, std::int32_t* out) {
  for (int i = 0; i < m; ++i) {
    const std::uint8_t* r = a + static_cast<std::size_t>(i) * k;
    std::int32_t s = 0;
    for (int p = 0; p < k; ++p) s += r[p];
    out[i] = d * s;
  }
}

}  // namespace

void QPlan::gemm_split(int m, int n, int k, const std::uint8_t* a, const unsigned char* packed, std::uint8_t* c,
                       QuantOut q, bool pairs, std::int32_t offset, Buffers& buf, ThreadPool* pool) {
  const int nr = kernels_.qgemm_nr;
  const qgemm_fn fn = pairs ? kernels_.qgemm_pairs : kernels_.qgemm;
  const std::int32_t* add = nullptr;
  if (offset != 0) {
    row_sums(m, k, a, offset, buf.row_add.data());
    add = buf.row_add.data();
  }
  split_packed_gemm(pool, pool ? pool->size() : 1, m, n, k, pairs ? kernels_.qgemm_pairs_mr : kernels_.qgemm_mr, nr,
                    qgemm_panel_stride(kernels_, k), a, packed, c,
                    [&](int rows, int cols, const std::uint8_t* ap, const void* bp, std::uint8_t* cp) {
                      fn(rows, cols, k, ap, k, bp, cp, n, q, add ? add + (ap - a) / k : nullptr);
                    });
}

bool QPlan::run_image(const float* input, float* output, bool features, Buffers& buf, ThreadPool* pool) {
  const int threads = pool ? pool->size() : 1;
  // Quantise the input: rne(x * (1 / scale)) (or x / scale) + zero point, saturated (a non-finite
  // value: refused).
  const std::size_t n_in = static_cast<std::size_t>(in_h_) * in_w_ * 3;
  std::uint8_t* q = buf.b.data();
  if (!quantize_input(input, n_in, input_scale_, input_zp_, input_divide_, q)) return false;
  // Stem: the 27 taps of every output pixel (padding: the zero point), then the int8 GEMM. A
  // kernel row of a patch is 9 consecutive input bytes (3 pixels x 3 channels), copied at once
  // where all three pixels are inside the image; only the edge pixels go tap by tap.
  const int oh = stem_.out_h, ow = stem_.out_w, s = stem_.stride;
  const std::uint8_t zp8 = static_cast<std::uint8_t>(input_zp_);
  // Output columns [x_lo, x_hi) have all three input columns inside.
  const int x_lo = std::min(ow, (stem_.pad_left + s - 1) / s);
  const int x_hi = std::max(x_lo, std::min(ow, (in_w_ - 3 + stem_.pad_left) / s + 1));
  const int row_tasks = threads > 1 ? std::min(oh, 2 * threads) : 1;
  for_tasks(pool, row_tasks, [&](int t, int) {
    const auto r = row_tasks > 1 ? chunk(oh, row_tasks, t, 1) : std::make_pair(0, oh);
    for (int y = r.first; y < r.second; ++y) {
      std::uint8_t* prow = buf.patches.data() + static_cast<std::size_t>(y) * ow * 27;
      for (int kh = 0; kh < 3; ++kh) {
        const int ih = y * s - stem_.pad_top + kh;
        std::uint8_t* p = prow + kh * 9;
        if (ih < 0 || ih >= in_h_) {
          for (int x = 0; x < ow; ++x) std::memset(p + static_cast<std::size_t>(x) * 27, zp8, 9);
          continue;
        }
        const std::uint8_t* src = q + static_cast<std::size_t>(ih) * in_w_ * 3;
        auto edge = [&](int x) {
          for (int kw = 0; kw < 3; ++kw) {
            const int iw = x * s - stem_.pad_left + kw;
            for (int ci = 0; ci < 3; ++ci)
              p[static_cast<std::size_t>(x) * 27 + kw * 3 + ci] = iw >= 0 && iw < in_w_ ? src[iw * 3 + ci] : zp8;
          }
        };
        for (int x = 0; x < x_lo; ++x) edge(x);
        for (int x = x_lo; x < x_hi; ++x)
          std::memcpy(p + static_cast<std::size_t>(x) * 27, src + (x * s - stem_.pad_left) * 3, 9);
        for (int x = x_hi; x < ow; ++x) edge(x);
      }
    }
  });
  gemm_split(oh * ow, stem_.out_channels, 27, buf.patches.data(), stem_packed_.data(), buf.a.data(), stem_out_,
             stem_pairs_, stem_offset_, buf, pool);
  // Blocks: depthwise (a -> b) by rows, pointwise (b -> a).
  for (const Block& L : blocks_) {
    const qdwconv3x3_fn dw =
        L.dw_wide ? (L.dw.stride == 2 ? kernels_.qdwconv3x3_wide_s2 : kernels_.qdwconv3x3_wide_s1)
                  : L.dw.stride == 2 ? kernels_.qdwconv3x3_s2 : kernels_.qdwconv3x3_s1;
    const int tasks = threads > 1 ? std::min(L.dw.out_h, 2 * threads) : 1;
    for_tasks(pool, tasks, [&](int t, int) {
      const auto r = tasks > 1 ? chunk(L.dw.out_h, tasks, t, 1) : std::make_pair(0, L.dw.out_h);
      dw(L.dw, buf.a.data(), L.dw_in_zp, L.dw_packed.data(), buf.b.data(), r.first, r.second, L.dw_out);
    });
    gemm_split(L.dw.out_h * L.dw.out_w, L.pw_channels, L.dw.in_channels, buf.b.data(), L.pw_packed.data(),
               buf.a.data(), L.pw_out, L.pw_pairs, L.pw_offset, buf, pool);
  }
  // Global average pool: int32 sums of (q - zp), requantised.
  const Conv2dGeom& last = blocks_.back().dw;
  const int hw = last.out_h * last.out_w, c = feature_channels_;
  const QuantOut pool_q{pool_out_zp_, 0, 255};
  for (int ch = 0; ch < c; ++ch) {
    std::int64_t sum = 0;
    for (int p = 0; p < hw; ++p) sum += buf.a.data()[static_cast<std::size_t>(p) * c + ch];
    if (pool_half_up_)  // (sum of codes + HW / 2) / HW: in 0..255, the zero points being equal
      buf.pooled.data()[ch] = static_cast<std::uint8_t>((sum + hw / 2) / hw);
    else
      buf.pooled.data()[ch] = requantize(static_cast<std::int32_t>(sum - static_cast<std::int64_t>(pool_in_zp_) * hw),
                                         pool_multiplier_, pool_q);
  }
  if (features || num_classes_ == 0) {
    for (int ch = 0; ch < c; ++ch)
      output[ch] = static_cast<float>((static_cast<double>(buf.pooled.data()[ch]) - pool_out_zp_) *
                                      pool_out_scale_);
    return true;
  }
  const qgemm_f32_fn fc = fc_pairs_ ? kernels_.qgemm_pairs_f32 : kernels_.qgemm_f32;
  std::int32_t fc_add = 0;
  if (fc_offset_ != 0) row_sums(1, c, buf.pooled.data(), fc_offset_, &fc_add);
  fc(1, num_classes_, c, buf.pooled.data(), c, fc_packed_.data(), output, num_classes_, fc_offset_ ? &fc_add : nullptr);
  return true;
}

bool QPlan::run(const float* input, int batch, float* output, bool features_only) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::size_t in_img = static_cast<std::size_t>(in_h_) * in_w_ * 3;
  const std::size_t out_img = static_cast<std::size_t>(features_only || num_classes_ == 0 ? feature_channels_ : num_classes_);
  return for_images(pool_.get(), batch, [&](int n, int thread, ThreadPool* layer_pool) {
    return run_image(input + n * in_img, output + n * out_img, features_only,
                     buffers_[static_cast<std::size_t>(thread)], layer_pool);
  });
}

}  // namespace mbf
