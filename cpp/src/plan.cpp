// The fp32 MobileNetV1 Plan (mobilenet_fast/plan.h): checks the spec's shapes, packs the
// weights, and runs the stem, the depthwise/pointwise layers and the classifier. Its activation
// memory is a PlanArena<float> (plan_arena.h); how the work is split over the threads comes from
// schedule.h.
#include "mobilenet_fast/plan.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "plan_arena.h"
#include "schedule.h"

namespace mbf {

namespace {

constexpr Clamp kLinear{-std::numeric_limits<float>::infinity(),
                        std::numeric_limits<float>::infinity()};

void expect_size(const std::vector<float>& v, std::size_t n, const std::string& what) {
  if (v.size() != n)
    throw InputError(what + " has " + std::to_string(v.size()) + " values, expected " +
                     std::to_string(n));
}

std::size_t pixels(const Conv2dGeom& g) { return static_cast<std::size_t>(g.out_h) * g.out_w; }

}  // namespace

Plan::Plan(const PlanSpec& spec, const KernelTable& kernels, int threads)
    : kernels_(kernels), in_h_(spec.in_h), in_w_(spec.in_w), num_classes_(spec.num_classes), act_{0.0f, spec.act_max} {
  if (threads < 1 || threads > kMaxThreads)
    throw InputError("threads must be in 1.." + std::to_string(kMaxThreads) + ", got " + std::to_string(threads));
  threads_ = threads;
  if (spec.in_h < 3 || spec.in_w < 3 || spec.in_h > 16384 || spec.in_w > 16384)
    throw InputError("input size " + std::to_string(spec.in_h) + "x" + std::to_string(spec.in_w) +
                     " is outside 3..16384");
  if (spec.blocks.empty()) throw InputError("a plan needs at least one block");
  if (!(spec.act_max > 0.0f))  // also refuses NaN
    throw InputError("act_max (the activation's upper clamp) must be > 0");
  if (spec.stem_channels <= 0) throw InputError("stem: output channels must be positive");
  stem_ = conv_geometry(spec.in_h, spec.in_w, 3, spec.stem_channels, spec.stem_stride, spec.stem_pads);
  expect_size(spec.stem_weights, 27u * static_cast<std::size_t>(spec.stem_channels), "stem weights");
  expect_size(spec.stem_bias, spec.stem_channels, "stem bias");

  // Pass 1: check that the shapes chain and that every buffer stays below kMaxBufferFloats,
  // before anything large is allocated.
  const std::string size = std::to_string(in_h_) + "x" + std::to_string(in_w_);
  auto check_buffer = [&](std::size_t floats, const std::string& what) {
    if (floats > kMaxBufferFloats)
      throw InputError("input " + size + ": " + what + " would hold " + std::to_string(floats) +
                       " values, more than the limit of 2^31 - 1 per buffer; use a smaller input");
  };
  ArenaSizes sizes;
  std::size_t largest = static_cast<std::size_t>(spec.in_h) * spec.in_w * 3;
  check_buffer(pixels(stem_) * stem_.out_channels, "the stem's output");
  largest = std::max(largest, pixels(stem_) * stem_.out_channels);
  std::size_t packed_floats = 0;  // every packed weight matrix, for the out-of-memory message
  int h = stem_.out_h, w = stem_.out_w, c = stem_.out_channels;
  for (std::size_t i = 0; i < spec.blocks.size(); ++i) {
    const PlanBlockSpec& b = spec.blocks[i];
    const std::string name = "block " + std::to_string(i);
    Layer L;
    try {
      L.dw = conv_geometry(h, w, c, c, b.stride, b.pads);
    } catch (const InputError& e) {
      throw InputError(name + " depthwise: " + e.what());
    }
    L.dw_stride2 = b.stride == 2;
    expect_size(b.dw_weights, 9u * static_cast<std::size_t>(c), name + " depthwise weights");
    expect_size(b.dw_bias, c, name + " depthwise bias");
    if (b.out_channels <= 0) throw InputError(name + " pointwise: output channels must be positive");
    expect_size(b.pw_weights, static_cast<std::size_t>(c) * b.out_channels, name + " pointwise weights");
    expect_size(b.pw_bias, b.out_channels, name + " pointwise bias");
    L.pw_out = b.out_channels;
    check_buffer(packed_gemm_size(c, b.out_channels, kernels_.gemm_nr), name + " pointwise's packed weights");
    packed_floats += packed_gemm_size(c, b.out_channels, kernels_.gemm_nr);
    check_buffer(pixels(L.dw) * b.out_channels, name + " pointwise's output");
    largest = std::max(largest, pixels(L.dw) * b.out_channels);
    // Fuse when the depthwise output would not stay in cache.
    const std::size_t row_floats = static_cast<std::size_t>(L.dw.out_w) * c;
    L.band_rows = fused_band_rows(L.dw.out_h, row_floats, sizeof(float), threads);
    if (L.band_rows > 0) {
      sizes.band = std::max(sizes.band, round_up_to_line(row_floats * L.band_rows));
    } else {
      check_buffer(pixels(L.dw) * c, name + " depthwise's output");
      largest = std::max(largest, pixels(L.dw) * c);  // the unfused depthwise output is a full buffer
    }
    h = L.dw.out_h;
    w = L.dw.out_w;
    c = b.out_channels;
    layers_.push_back(std::move(L));
  }
  feature_channels_ = c;
  if (num_classes_ < 0) throw InputError("num_classes must be >= 0");
  if (num_classes_ > 0) {
    expect_size(spec.fc_weights, static_cast<std::size_t>(c) * num_classes_, "classifier weights");
    expect_size(spec.fc_bias, num_classes_, "classifier bias");
    check_buffer(packed_gemm_size(c, num_classes_, kernels_.gemm_nr), "the classifier's packed weights");
    packed_floats += packed_gemm_size(c, num_classes_, kernels_.gemm_nr);
  }
  sizes.largest = round_up_to_line(largest);
  sizes.pooled = static_cast<std::size_t>(c);
  check_buffer(sizes.largest, "the largest activation");
  check_buffer(sizes.band * static_cast<std::size_t>(threads_), "the band buffers");

  // Pass 2: allocate and pack.
  try {
    stem_weights_ = spec.stem_weights;
    stem_bias_ = spec.stem_bias;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      const PlanBlockSpec& b = spec.blocks[i];
      Layer& L = layers_[i];
      const int cin = L.dw.in_channels;
      L.dw_weights = b.dw_weights;
      L.dw_bias = b.dw_bias;
      L.pw_packed.reset(packed_gemm_size(cin, b.out_channels, kernels_.gemm_nr));
      pack_gemm_weights(cin, b.out_channels, kernels_.gemm_nr, b.pw_weights.data(), b.pw_bias.data(),
                        L.pw_packed.data());
    }
    if (num_classes_ > 0) {
      fc_packed_.reset(packed_gemm_size(c, num_classes_, kernels_.gemm_nr));
      pack_gemm_weights(c, num_classes_, kernels_.gemm_nr, spec.fc_weights.data(), spec.fc_bias.data(),
                        fc_packed_.data());
    }
    arena_ = std::make_unique<PlanArena<float>>(sizes, threads_);
  } catch (const std::bad_alloc&) {
    throw OutOfMemory("not enough memory for a plan of " + size + " with " + std::to_string(threads_) +
                      " thread(s): it needs " + mib(sizes.activation_values(threads_) * sizeof(float)) +
                      " of activation buffers and " + mib(packed_floats * sizeof(float)) + " of packed weights");
  }
  if (threads_ > 1) {
    try {
      pool_ = std::make_unique<ThreadPool>(threads_);
    } catch (const std::system_error& e) {
      throw std::runtime_error("could not start " + std::to_string(threads_ - 1) +
                               " worker thread(s): " + e.what() + "; use fewer threads");
    }
  }
  register_for_fork(&mutex_);
}

Plan::~Plan() { unregister_for_fork(&mutex_); }

std::size_t Plan::arena_floats() const { return arena_->activation_values(); }

// C[m][n] = clamp(A x B + bias) over `tasks` parts: by rows when every part gets at least one
// register tile of rows (parts are multiples of the tile), else by weight panels (the classifier).
void Plan::gemm_split(int m, int n, int k, const float* a, const float* packed, float* c, Clamp clamp,
                      ThreadPool* pool, int tasks) {
  const int nr = kernels_.gemm_nr;
  split_packed_gemm(pool, tasks, m, n, k, kernels_.gemm_mr, nr, static_cast<std::size_t>(k + 1) * nr * sizeof(float),
                    a, packed, c, [&](int rows, int cols, const float* ap, const void* bp, float* cp) {
                      kernels_.gemm(rows, cols, k, ap, k, static_cast<const float*>(bp), cp, n, clamp);
                    });
}

void Plan::run_layer(const Layer& L, const float* in, float* dw_out, float* out, float* bands,
                     ThreadPool* pool) {
  const dwconv3x3_fn dw = L.dw_stride2 ? kernels_.dwconv3x3_s2 : kernels_.dwconv3x3_s1;
  const int c = L.dw.in_channels;
  const int threads = pool ? pool->size() : 1;
  if (L.band_rows > 0) {
    const int bands_count = (L.dw.out_h + L.band_rows - 1) / L.band_rows;
    for_tasks(pool, bands_count, [&](int i, int thread) {
      const int r0 = i * L.band_rows, r1 = std::min(L.dw.out_h, r0 + L.band_rows);
      // The band buffer holds output rows [r0, r1): shift the kernel's output pointer so that
      // row r0 lands at its start.
      float* band = bands + static_cast<std::ptrdiff_t>(thread) * arena_->sizes().band;
      const std::ptrdiff_t row = static_cast<std::ptrdiff_t>(L.dw.out_w) * c;
      dw(L.dw, in, L.dw_weights.data(), L.dw_bias.data(), band - r0 * row, r0, r1, act_);
      const std::ptrdiff_t first = static_cast<std::ptrdiff_t>(r0) * L.dw.out_w;
      kernels_.gemm((r1 - r0) * L.dw.out_w, L.pw_out, c, band, c, L.pw_packed.data(),
                    out + first * L.pw_out, L.pw_out, act_);
    });
    return;
  }
  const int tasks = std::min(L.dw.out_h, 2 * threads);
  for_tasks(pool, threads > 1 ? tasks : 1, [&](int i, int) {
    const auto r = threads > 1 ? chunk(L.dw.out_h, tasks, i, 1) : std::make_pair(0, L.dw.out_h);
    dw(L.dw, in, L.dw_weights.data(), L.dw_bias.data(), dw_out, r.first, r.second, act_);
  });
  // One GEMM part per thread: measured faster than finer parts on the 14x14 layers (fewer,
  // longer sweeps over the weights), and rows are preferred over panels down to one tile each.
  gemm_split(L.dw.out_h * L.dw.out_w, L.pw_out, c, dw_out, L.pw_packed.data(), out, act_, pool, threads);
}

bool Plan::run_image(const float* input, float* output, bool features, bool check_finite, Workspace<float>& ws,
                     ThreadPool* pool) {
  const int threads = pool ? pool->size() : 1;
  float* a = ws.a.data();
  float* b = ws.b.data();
  // Small row chunks (also on one thread), so that the finite check reads each chunk's input rows
  // into L1/L2 just before the stem uses them.
  const int stem_tasks = std::min(stem_.out_h, std::max(2 * threads, (stem_.out_h + 7) / 8));
  std::atomic<bool> finite{true};
  for_tasks(pool, stem_tasks, [&](int i, int) {
    const auto r = chunk(stem_.out_h, stem_tasks, i, 1);
    if (check_finite) {
      // The input rows this task's windows read; the first and last tasks extend to the image's
      // edges so that every row is checked once the tasks are done.
      const int lo = i == 0 ? 0 : std::max(0, r.first * stem_.stride - stem_.pad_top);
      const int hi = i == stem_tasks - 1 ? stem_.in_h
                                         : std::min(stem_.in_h, (r.second - 1) * stem_.stride - stem_.pad_top + 3);
      const std::ptrdiff_t row = static_cast<std::ptrdiff_t>(stem_.in_w) * 3;
      if (hi > lo && !all_finite(input + lo * row, static_cast<std::size_t>((hi - lo) * row)))
        finite.store(false, std::memory_order_relaxed);
    }
    kernels_.conv3x3_stem(stem_, input, stem_weights_.data(), stem_bias_.data(), a, r.first, r.second,
                          act_);
  });
  for (const Layer& L : layers_) {
    // Fused layers go straight from a to b; unfused ones through b (depthwise) back to a, and
    // the two buffers are swapped so that `a` always holds the next layer's input.
    if (L.band_rows > 0) {
      run_layer(L, a, nullptr, b, ws.bands.data(), pool);
      std::swap(a, b);
    } else {
      run_layer(L, a, b, a, nullptr, pool);
    }
  }
  const Layer& last = layers_.back();
  const int hw = last.dw.out_h * last.dw.out_w;
  if (features) {
    kernels_.global_avg_pool(a, hw, feature_channels_, output);
  } else {
    kernels_.global_avg_pool(a, hw, feature_channels_, ws.pooled.data());
    gemm_split(1, num_classes_, feature_channels_, ws.pooled.data(), fc_packed_.data(), output, kLinear,
               pool, threads > 1 ? threads : 1);
  }
  return finite.load();
}

bool Plan::run(const float* input, int batch, float* output, bool features_only, bool check_finite) {
  std::lock_guard<std::mutex> lock(mutex_);
  const bool features = features_only || num_classes_ == 0;
  const std::ptrdiff_t out_stride = features ? feature_channels_ : num_classes_;
  const std::ptrdiff_t image = static_cast<std::ptrdiff_t>(in_h_) * in_w_ * 3;
  return for_images(pool_.get(), batch, [&](int n, int workspace, ThreadPool* layer_pool) {
    return run_image(input + n * image, output + n * out_stride, features, check_finite,
                     arena_->workspace(workspace), layer_pool);
  });
}

}  // namespace mbf
