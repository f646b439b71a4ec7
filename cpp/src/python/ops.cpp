// mobilenet_fast._core.ops: single NHWC float32 kernels of a chosen ISA (3x3 and depthwise
// convolutions, pointwise convolution, GEMM, dense, global average pool, softmax), for tests and
// custom networks. Arguments are checked with args.h before any kernel runs; every output is a
// new array, and the kernels run with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "args.h"
#include "bindings.h"
#include "mobilenet_fast/kernels.h"

namespace mbf::python {

namespace {

// Stride and four pads into g, then the output size (InputError for an impossible geometry).
void complete_conv_args(mbf::Conv2dGeom& g, const py::object& stride, const py::object& pads) {
  const mbf::Pads p = parse_pads(pads);
  g.stride = int_arg(stride, "stride");
  g.pad_top = p[0];
  g.pad_left = p[1];
  g.pad_bottom = p[2];
  g.pad_right = p[3];
  mbf::complete_geometry(g);
}

// Shared body of the two 3x3 convolution ops.
py::array_t<float> conv3x3_op(const py::object& x_obj, const py::object& w_obj, const py::object& bias,
                              const py::object& stride, const py::object& pads, const py::object& clamp,
                              const py::object& rows, const py::object& isa, bool check_finite, bool depthwise) {
  FloatArray x = checked(x_obj, "x", 4);
  expect_positive(x, "x");
  const int n = static_cast<int>(x.shape(0));
  mbf::Conv2dGeom g;
  g.in_h = static_cast<int>(x.shape(1));
  g.in_w = static_cast<int>(x.shape(2));
  g.in_channels = static_cast<int>(x.shape(3));
  FloatArray w = checked(w_obj, "weights", depthwise ? 3 : 4);
  if (depthwise) {
    expect_shape(w, "weights", {3, 3, g.in_channels});
    g.out_channels = g.in_channels;
  } else {
    if (w.shape(0) != 3 || w.shape(1) != 3 || w.shape(2) != g.in_channels)
      throw InputError("weights has shape " + shape_str(w) + ", expected (3, 3, " +
                       std::to_string(g.in_channels) + ", Cout) (HWIO)");
    expect_positive(w, "weights");
    g.out_channels = static_cast<int>(w.shape(3));
  }
  std::vector<float> b = bias_or_zeros(bias, g.out_channels, "bias");
  complete_conv_args(g, stride, pads);
  const mbf::Clamp c = parse_clamp(clamp);
  const auto r = parse_rows(rows, g.out_h);
  const mbf::KernelTable& k = kernels_for(isa);
  if (check_finite) expect_finite(x, "x");
  const mbf::dwconv3x3_fn fn =
      depthwise ? (g.stride == 2 ? k.dwconv3x3_s2 : k.dwconv3x3_s1) : k.conv3x3_stem;
  py::array_t<float> out = new_output({n, g.out_h, g.out_w, g.out_channels}, "the output");
  std::fill(out.mutable_data(), out.mutable_data() + out.size(), 0.0f);
  const float* xp = x.data();
  const float* wp = w.data();
  float* op = out.mutable_data();
  const std::ptrdiff_t in_img = static_cast<std::ptrdiff_t>(g.in_h) * g.in_w * g.in_channels;
  const std::ptrdiff_t out_img = static_cast<std::ptrdiff_t>(g.out_h) * g.out_w * g.out_channels;
  {
    py::gil_scoped_release release;
    for (int i = 0; i < n; ++i) fn(g, xp + i * in_img, wp, b.data(), op + i * out_img, r.first, r.second, c);
  }
  return out;
}

// The output quantisation of an int8 op: zero point and (min, max) clamp in 0..255.
mbf::QuantOut quant_out(const py::object& zero_point, const py::object& clamp) {
  mbf::QuantOut q{static_cast<std::int32_t>(int_arg(zero_point, "output_zero_point", 0, 255)), 0, 255};
  if (!clamp.is_none()) {
    const std::vector<py::object> c = seq_arg(clamp, "clamp", 2, "(min, max) in 0..255");
    const long long lo = int_arg(c[0], "clamp min", 0, 255), hi = int_arg(c[1], "clamp max", 0, 255);
    if (lo > hi) throw InputError("clamp min " + std::to_string(lo) + " > max " + std::to_string(hi));
    q.min = static_cast<std::uint8_t>(lo);
    q.max = static_cast<std::uint8_t>(hi);
  }
  return q;
}

// An int32 bias of n values (None: zeros) and float32 scales of n values.
std::pair<std::vector<std::int32_t>, std::vector<float>> bias_and_scale(const py::object& bias_obj,
                                                                        const py::object& scale_obj, py::ssize_t n) {
  std::vector<std::int32_t> bias(static_cast<std::size_t>(n), 0);
  if (!bias_obj.is_none()) {
    const Array<std::int32_t> b = checked_array<std::int32_t>(bias_obj, "bias", 1);
    if (b.shape(0) != n) throw InputError("bias has shape " + shape_str(b) + ", expected (" + std::to_string(n) + ",)");
    std::copy(b.data(), b.data() + n, bias.begin());
  }
  const FloatArray s = checked(scale_obj, "scale", 1);
  if (s.shape(0) != n) throw InputError("scale has shape " + shape_str(s) + ", expected (" + std::to_string(n) + ",)");
  return {bias, std::vector<float>(s.data(), s.data() + n)};
}

// C[M,N] = clamp(A[M,K] @ W[K,N] + bias) through the packed GEMM of the chosen ISA.
void gemm_into(const mbf::KernelTable& k, int m, int kk, int n, const float* a, const float* w,
               const float* bias, float* c, mbf::Clamp clamp) {
  std::vector<float> packed(mbf::packed_gemm_size(kk, n, k.gemm_nr));
  mbf::pack_gemm_weights(kk, n, k.gemm_nr, w, bias, packed.data());
  py::gil_scoped_release release;
  k.gemm(m, n, kk, a, kk, packed.data(), c, n, clamp);
}

py::array_t<float> gemm_op(const FloatArray& a, const std::string& a_name, py::ssize_t m, py::ssize_t kk,
                           const py::object& w_obj, const py::object& bias, const py::object& clamp,
                           const py::object& isa, bool check_finite, std::vector<py::ssize_t> out_shape) {
  FloatArray w = checked(w_obj, "weights", 2);
  if (w.shape(0) != kk)
    throw InputError("weights has shape " + shape_str(w) + ", expected (" + std::to_string(kk) + ", N)");
  expect_positive(w, "weights");
  const py::ssize_t n = w.shape(1);
  std::vector<float> b = bias_or_zeros(bias, n, "bias");
  if (m > kMaxElements) throw InputError(a_name + " has too many rows for one GEMM");
  const mbf::Clamp c = parse_clamp(clamp);
  const mbf::KernelTable& k = kernels_for(isa);
  if (check_finite) expect_finite(a, a_name);
  out_shape.push_back(n);
  py::array_t<float> out = new_output(out_shape, "the output");
  if (m == 0) return out;
  gemm_into(k, static_cast<int>(m), static_cast<int>(kk), static_cast<int>(n), a.data(), w.data(), b.data(),
            out.mutable_data(), c);
  return out;
}

constexpr const char* kOpsNaN =
    " check_finite=True refuses NaN/Inf in x (InputError); by default x is not checked and "
    "NaN/Inf give unspecified results that differ between ISAs.";

}  // namespace

void bind_ops(py::module_& m) {
  py::module_ ops = m.def_submodule("ops", "Single NHWC float32 kernels, for tests and custom networks.");
  const py::object none = py::none();
  ops.def(
      "conv3x3",
      [](const py::object& x, const py::object& w, const py::object& bias, const py::object& stride,
         const py::object& pads, const py::object& clamp, const py::object& rows, const py::object& isa,
         bool check_finite) { return conv3x3_op(x, w, bias, stride, pads, clamp, rows, isa, check_finite, false); },
      py::arg("x"), py::arg("weights"), py::arg("bias") = none, py::arg("stride") = 1,
      py::arg("pads") = py::make_tuple(1, 1, 1, 1), py::arg("clamp") = none, py::arg("rows") = none,
      py::arg("isa") = none, py::kw_only(), py::arg("check_finite") = false,
      (std::string("Standard 3x3 conv: x[N,H,W,Cin], weights HWIO [3,3,Cin,Cout] -> [N,OH,OW,Cout].") + kOpsNaN).c_str());
  ops.def(
      "dwconv3x3",
      [](const py::object& x, const py::object& w, const py::object& bias, const py::object& stride,
         const py::object& pads, const py::object& clamp, const py::object& rows, const py::object& isa,
         bool check_finite) { return conv3x3_op(x, w, bias, stride, pads, clamp, rows, isa, check_finite, true); },
      py::arg("x"), py::arg("weights"), py::arg("bias") = none, py::arg("stride") = 1,
      py::arg("pads") = py::make_tuple(1, 1, 1, 1), py::arg("clamp") = none, py::arg("rows") = none,
      py::arg("isa") = none, py::kw_only(), py::arg("check_finite") = false,
      (std::string("Depthwise 3x3 conv: x[N,H,W,C], weights [3,3,C] -> [N,OH,OW,C].") + kOpsNaN).c_str());
  ops.def(
      "pwconv",
      [](const py::object& x_obj, const py::object& w, const py::object& bias, const py::object& clamp,
         const py::object& isa, bool check_finite) {
        FloatArray x = checked(x_obj, "x", 4);
        return gemm_op(x, "x", x.shape(0) * x.shape(1) * x.shape(2), x.shape(3), w, bias, clamp, isa, check_finite,
                       {x.shape(0), x.shape(1), x.shape(2)});
      },
      py::arg("x"), py::arg("weights"), py::arg("bias") = none, py::arg("clamp") = none, py::arg("isa") = none,
      py::kw_only(), py::arg("check_finite") = false,
      (std::string("Pointwise 1x1 conv as a GEMM: x[N,H,W,Cin], weights [Cin,Cout] -> [N,H,W,Cout].") + kOpsNaN).c_str());
  ops.def(
      "gemm",
      [](const py::object& a_obj, const py::object& w, const py::object& bias, const py::object& clamp,
         const py::object& isa, bool check_finite) {
        FloatArray a = checked(a_obj, "a", 2);
        return gemm_op(a, "a", a.shape(0), a.shape(1), w, bias, clamp, isa, check_finite, {a.shape(0)});
      },
      py::arg("a"), py::arg("weights"), py::arg("bias") = none, py::arg("clamp") = none, py::arg("isa") = none,
      py::kw_only(), py::arg("check_finite") = false,
      (std::string("clamp(a[M,K] @ weights[K,N] + bias) through the packed GEMM kernel.") + kOpsNaN).c_str());
  ops.def(
      "dense",
      [](const py::object& a_obj, const py::object& w, const py::object& bias, const py::object& isa,
         bool check_finite) {
        FloatArray a = checked(a_obj, "x", 2);
        return gemm_op(a, "x", a.shape(0), a.shape(1), w, bias, py::none(), isa, check_finite, {a.shape(0)});
      },
      py::arg("x"), py::arg("weights"), py::arg("bias") = none, py::arg("isa") = none, py::kw_only(),
      py::arg("check_finite") = false,
      (std::string("Fully connected layer: x[N,K] @ weights[K,classes] + bias.") + kOpsNaN).c_str());
  ops.def(
      "qgemm_u8s8",
      [](const py::object& a_obj, const py::object& w_obj, const py::object& scale_obj, const py::object& bias_obj,
         const py::object& input_zero_point, const py::object& output_zero_point, const py::object& clamp,
         const py::object& isa, const std::string& kernel) {
        if (kernel != "auto" && kernel != "general" && kernel != "pairs")
          throw InputError("kernel must be 'auto', 'general' or 'pairs', got '" + kernel + "'");
        const Array<std::uint8_t> a = checked_array<std::uint8_t>(a_obj, "a", 2);
        const Array<std::int8_t> w = checked_array<std::int8_t>(w_obj, "weights", 2);
        const py::ssize_t m = a.shape(0), kk = a.shape(1), n = w.shape(1);
        if (w.shape(0) != kk)
          throw InputError("weights has shape " + shape_str(w) + ", expected (" + std::to_string(kk) + ", N)");
        if (m == 0 || kk == 0 || n == 0) throw InputError("qgemm_u8s8: every dimension must be positive");
        const auto [bias, s] = bias_and_scale(bias_obj, scale_obj, n);
        const auto zin = static_cast<std::int32_t>(int_arg(input_zero_point, "input_zero_point", 0, 255));
        const mbf::QuantOut q = quant_out(output_zero_point, clamp);
        const mbf::KernelTable& k = kernels_for(isa);
        std::vector<unsigned char> packed(mbf::qgemm_packed_bytes(k, static_cast<int>(kk), static_cast<int>(n)));
        mbf::qgemm_pack(k, static_cast<int>(kk), static_cast<int>(n), w.data(), bias.data(), s.data(), zin,
                        packed.data());  // InputError for a bad scale or an int32 overflow
        const bool fit = mbf::qgemm_pairs_fit(static_cast<int>(kk), static_cast<int>(n), w.data());
        if (kernel == "pairs" && !fit)
          throw InputError("kernel='pairs' needs pair-limited weights (|w[2j][n]| + |w[2j+1][n]| <= " +
                           std::to_string(mbf::kQgemmPairLimit) + " for every column n and pair j)");
        const mbf::qgemm_fn fn = kernel == "general" || !fit ? k.qgemm : k.qgemm_pairs;
        py::array_t<std::uint8_t> out({m, n});
        const std::uint8_t* ap = a.data();
        std::uint8_t* op = out.mutable_data();
        py::gil_scoped_release release;
        fn(static_cast<int>(m), static_cast<int>(n), static_cast<int>(kk), ap, kk, packed.data(), op, n, q, nullptr);
        return out;
      },
      py::arg("a"), py::arg("weights"), py::arg("scale"), py::arg("bias") = none,
      py::arg("input_zero_point") = 0, py::arg("output_zero_point") = 0, py::arg("clamp") = none,
      py::arg("isa") = none, py::kw_only(), py::arg("kernel") = "auto",
      "int8 GEMM: a[M,K] uint8 (zero point input_zero_point) x weights[K,N] int8 + bias[N] int32 -> uint8 "
      "clamp(output_zero_point + rne(acc * scale[n]), min, max), acc the exact int32 sum of "
      "(a - input_zero_point) * weights + bias; scale[N] float32, positive. kernel: 'general' (exact for "
      "any weights), 'pairs' (the ISA's kernel for pair-limited weights, |w[2j][n]| + |w[2j+1][n]| <= 128; "
      "InputError for other weights) or 'auto' (pairs where the weights allow it, as the int8 network "
      "does). Every choice gives the same bytes.");
  ops.def(
      "qdwconv3x3",
      [](const py::object& x_obj, const py::object& w_obj, const py::object& scale_obj, const py::object& bias_obj,
         const py::object& stride, const py::object& pads, const py::object& input_zero_point,
         const py::object& output_zero_point, const py::object& clamp, const py::object& rows, const py::object& isa) {
        const Array<std::uint8_t> x = checked_array<std::uint8_t>(x_obj, "x", 4);
        for (int d = 0; d < 4; ++d)
          if (x.shape(d) == 0) throw InputError("x has shape " + shape_str(x) + ": every dimension must be positive");
        mbf::Conv2dGeom g;
        g.in_h = static_cast<int>(x.shape(1));
        g.in_w = static_cast<int>(x.shape(2));
        g.in_channels = g.out_channels = static_cast<int>(x.shape(3));
        const Array<std::int8_t> w = checked_array<std::int8_t>(w_obj, "weights", 3);
        if (w.shape(0) != 3 || w.shape(1) != 3 || w.shape(2) != g.in_channels)
          throw InputError("weights has shape " + shape_str(w) + ", expected (3, 3, " + std::to_string(g.in_channels) + ")");
        const auto [bias, s] = bias_and_scale(bias_obj, scale_obj, g.in_channels);
        complete_conv_args(g, stride, pads);
        const auto zin = static_cast<std::int32_t>(int_arg(input_zero_point, "input_zero_point", 0, 255));
        const mbf::QuantOut q = quant_out(output_zero_point, clamp);
        const auto r = parse_rows(rows, g.out_h);
        const mbf::KernelTable& k = kernels_for(isa);
        std::vector<unsigned char> packed(mbf::packed_qdwconv3x3_bytes(g.in_channels));
        mbf::pack_qdwconv3x3_weights(g.in_channels, w.data(), bias.data(), s.data(), packed.data());
        const py::ssize_t n = x.shape(0);
        py::array_t<std::uint8_t> out({n, static_cast<py::ssize_t>(g.out_h), static_cast<py::ssize_t>(g.out_w),
                                       static_cast<py::ssize_t>(g.out_channels)});
        std::fill(out.mutable_data(), out.mutable_data() + out.size(), std::uint8_t{0});
        const mbf::qdwconv3x3_fn fn = g.stride == 2 ? k.qdwconv3x3_s2 : k.qdwconv3x3_s1;
        const std::ptrdiff_t in_img = static_cast<std::ptrdiff_t>(g.in_h) * g.in_w * g.in_channels;
        const std::ptrdiff_t out_img = static_cast<std::ptrdiff_t>(g.out_h) * g.out_w * g.out_channels;
        const std::uint8_t* xp = x.data();
        std::uint8_t* op = out.mutable_data();
        py::gil_scoped_release release;
        for (py::ssize_t i = 0; i < n; ++i)
          fn(g, xp + i * in_img, zin, packed.data(), op + i * out_img, r.first, r.second, q);
        return out;
      },
      py::arg("x"), py::arg("weights"), py::arg("scale"), py::arg("bias") = none, py::arg("stride") = 1,
      py::arg("pads") = py::make_tuple(1, 1, 1, 1), py::arg("input_zero_point") = 0, py::arg("output_zero_point") = 0,
      py::arg("clamp") = none, py::arg("rows") = none, py::arg("isa") = none,
      "int8 depthwise 3x3: x[N,H,W,C] uint8, weights [3,3,C] int8 -> uint8 [N,OH,OW,C]: per channel "
      "clamp(output_zero_point + rne(acc * scale[c]), min, max), acc = bias[c] + sum over the taps inside the "
      "image of (x - input_zero_point) * w (padding is the input zero point).");
  ops.def(
      "global_avg_pool",
      [](const py::object& x_obj, const py::object& isa, bool check_finite) {
        FloatArray x = checked(x_obj, "x", 4);
        expect_positive(x, "x");
        const mbf::KernelTable& k = kernels_for(isa);
        if (check_finite) expect_finite(x, "x");
        const py::ssize_t n = x.shape(0), hw = x.shape(1) * x.shape(2), c = x.shape(3);
        py::array_t<float> out = new_output({n, c}, "the output");
        const float* xp = x.data();
        float* op = out.mutable_data();
        py::gil_scoped_release release;
        for (py::ssize_t i = 0; i < n; ++i) k.global_avg_pool(xp + i * hw * c, static_cast<int>(hw), static_cast<int>(c), op + i * c);
        return out;
      },
      py::arg("x"), py::arg("isa") = none, py::kw_only(), py::arg("check_finite") = false,
      (std::string("Global average pool: x[N,H,W,C] -> [N,C].") + kOpsNaN).c_str());
  ops.def(
      "softmax",
      [](const py::object& x_obj, const py::object& isa, bool check_finite) {
        FloatArray x = checked(x_obj, "x", 2);
        expect_positive(x, "x");
        const mbf::KernelTable& k = kernels_for(isa);
        if (check_finite) expect_finite(x, "x");
        const py::ssize_t n = x.shape(0), c = x.shape(1);
        py::array_t<float> out = new_output({n, c}, "the output");
        const float* xp = x.data();
        float* op = out.mutable_data();
        py::gil_scoped_release release;
        for (py::ssize_t i = 0; i < n; ++i) k.softmax(xp + i * c, static_cast<int>(c), op + i * c);
        return out;
      },
      py::arg("x"), py::arg("isa") = none, py::kw_only(), py::arg("check_finite") = false,
      (std::string("Row-wise softmax: x[N,K] -> [N,K].") + kOpsNaN).c_str());
}

}  // namespace mbf::python
