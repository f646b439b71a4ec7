// pybind11 bindings: mobilenet_fast._core (Plan, cpu info) and mobilenet_fast._core.ops.
// Every entry point checks its arrays (type, dtype, rank, shape, contiguity) before any kernel
// touches memory; problems raise mobilenet_fast.errors.InputError.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "mobilenet_fast/dispatch.h"
#include "mobilenet_fast/kernels.h"
#include "mobilenet_fast/plan.h"

namespace py = pybind11;
using mbf::InputError;

namespace {

using FloatArray = py::array_t<float, py::array::c_style>;
constexpr std::int64_t kMaxDim = std::numeric_limits<int>::max();

std::string shape_str(const py::array& a) {
  std::ostringstream s;
  s << "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
  s << (a.ndim() == 1 ? ",)" : ")");
  return s.str();
}

// Returns obj as a C-contiguous float32 array of rank ndim, without copying; raises otherwise.
FloatArray checked(const py::handle& obj, const char* name, int ndim) {
  if (!py::isinstance<py::array>(obj))
    throw InputError(std::string(name) + " must be a numpy array, got " +
                     std::string(py::str(py::type::of(obj).attr("__name__"))));
  py::array a = py::reinterpret_borrow<py::array>(obj);
  if (!a.dtype().is(py::dtype::of<float>()))
    throw InputError(std::string(name) + " must have dtype float32, got " +
                     std::string(py::str(a.dtype())));
  if (a.ndim() != ndim)
    throw InputError(std::string(name) + " must have " + std::to_string(ndim) + " dimensions, got " +
                     std::to_string(a.ndim()) + " with shape " + shape_str(a));
  if (!(a.flags() & py::array::c_style))
    throw InputError(std::string(name) +
                     " must be C-contiguous (use numpy.ascontiguousarray); got a strided view");
  std::int64_t total = 1;
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (a.shape(i) > kMaxDim)
      throw InputError(std::string(name) + " dimension " + std::to_string(i) + " is too large");
    total *= std::max<std::int64_t>(a.shape(i), 1);
    if (total > (std::int64_t{1} << 40)) throw InputError(std::string(name) + " is too large");
  }
  return py::reinterpret_borrow<FloatArray>(a);
}

void expect_shape(const FloatArray& a, const char* name, std::vector<py::ssize_t> shape) {
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (std::size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(i) == shape[i];
  if (!ok) {
    std::ostringstream s;
    s << name << " has shape " << shape_str(a) << ", expected (";
    for (std::size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
    s << (shape.size() == 1 ? ",)" : ")");
    throw InputError(s.str());
  }
}

void expect_positive(const FloatArray& a, const char* name) {
  for (py::ssize_t i = 0; i < a.ndim(); ++i)
    if (a.shape(i) == 0) throw InputError(std::string(name) + " has an empty dimension: " + shape_str(a));
}

std::vector<float> to_vector(const FloatArray& a) { return {a.data(), a.data() + a.size()}; }

// Bias argument: None means zeros.
std::vector<float> bias_or_zeros(const py::object& bias, py::ssize_t n, const char* name) {
  if (bias.is_none()) return std::vector<float>(static_cast<std::size_t>(n), 0.0f);
  FloatArray b = checked(bias, name, 1);
  expect_shape(b, name, {n});
  return to_vector(b);
}

mbf::Clamp parse_clamp(const std::optional<std::pair<float, float>>& c) {
  if (!c) return {-std::numeric_limits<float>::infinity(), std::numeric_limits<float>::infinity()};
  if (std::isnan(c->first) || std::isnan(c->second) || c->first > c->second)
    throw InputError("clamp must be (min, max) with min <= max, got (" + std::to_string(c->first) +
                     ", " + std::to_string(c->second) + ")");
  return {c->first, c->second};
}

mbf::Pads parse_pads(const std::vector<int>& p) {
  if (p.size() != 4) throw InputError("pads must be (top, left, bottom, right)");
  return {p[0], p[1], p[2], p[3]};
}

const mbf::KernelTable& kernels_for(const std::optional<std::string>& isa) {
  return mbf::select_kernels(isa.value_or(""));
}

std::pair<int, int> parse_rows(const std::optional<std::pair<int, int>>& rows, int out_h) {
  if (!rows) return {0, out_h};
  if (rows->first < 0 || rows->first > rows->second || rows->second > out_h)
    throw InputError("rows must satisfy 0 <= begin <= end <= " + std::to_string(out_h) + ", got (" +
                     std::to_string(rows->first) + ", " + std::to_string(rows->second) + ")");
  return *rows;
}

// Shared body of the two 3x3 convolution ops.
py::array_t<float> conv3x3_op(const py::object& x_obj, const py::object& w_obj, const py::object& bias,
                              int stride, const std::vector<int>& pads,
                              const std::optional<std::pair<float, float>>& clamp,
                              const std::optional<std::pair<int, int>>& rows,
                              const std::optional<std::string>& isa, bool depthwise) {
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
  const mbf::Pads p = parse_pads(pads);
  g.stride = stride;
  g.pad_top = p[0];
  g.pad_left = p[1];
  g.pad_bottom = p[2];
  g.pad_right = p[3];
  mbf::complete_geometry(g);
  const mbf::Clamp c = parse_clamp(clamp);
  const auto r = parse_rows(rows, g.out_h);
  const mbf::KernelTable& k = kernels_for(isa);
  const mbf::dwconv3x3_fn fn =
      depthwise ? (stride == 2 ? k.dwconv3x3_s2 : k.dwconv3x3_s1) : k.conv3x3_stem;
  py::array_t<float> out(std::vector<py::ssize_t>{n, g.out_h, g.out_w, g.out_channels});
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

// C[M,N] = clamp(A[M,K] @ W[K,N] + bias) through the packed GEMM of the chosen ISA.
void gemm_into(const mbf::KernelTable& k, int m, int kk, int n, const float* a, const float* w,
               const float* bias, float* c, mbf::Clamp clamp) {
  std::vector<float> packed(mbf::packed_gemm_size(kk, n, k.gemm_nr));
  mbf::pack_gemm_weights(kk, n, k.gemm_nr, w, bias, packed.data());
  py::gil_scoped_release release;
  k.gemm(m, n, kk, a, kk, packed.data(), c, n, clamp);
}

py::array_t<float> gemm_op(const FloatArray& a2d_view, py::ssize_t m, py::ssize_t kk, const py::object& w_obj,
                           const py::object& bias, const std::optional<std::pair<float, float>>& clamp,
                           const std::optional<std::string>& isa, std::vector<py::ssize_t> out_shape) {
  FloatArray w = checked(w_obj, "weights", 2);
  if (w.shape(0) != kk)
    throw InputError("weights has shape " + shape_str(w) + ", expected (" + std::to_string(kk) + ", N)");
  expect_positive(w, "weights");
  const py::ssize_t n = w.shape(1);
  std::vector<float> b = bias_or_zeros(bias, n, "bias");
  if (m > kMaxDim) throw InputError("too many rows for one GEMM");
  const mbf::Clamp c = parse_clamp(clamp);
  const mbf::KernelTable& k = kernels_for(isa);
  out_shape.push_back(n);
  py::array_t<float> out(out_shape);
  gemm_into(k, static_cast<int>(m), static_cast<int>(kk), static_cast<int>(n), a2d_view.data(), w.data(),
            b.data(), out.mutable_data(), c);
  return out;
}

py::dict cpu_info() {
  const mbf::CpuFeatures& f = mbf::cpu_features();
  py::dict features;
  features["sse2"] = f.sse2;
  features["avx"] = f.avx;
  features["avx2"] = f.avx2;
  features["fma"] = f.fma;
  features["avx512f"] = f.avx512f;
  features["avx512bw"] = f.avx512bw;
  features["avx512vl"] = f.avx512vl;
  features["avx512dq"] = f.avx512dq;
  features["neon"] = f.neon;
  py::dict d;
  d["arch"] = f.arch;
  d["features"] = features;
  d["compiled_isas"] = mbf::compiled_isas();
  d["supported_isas"] = mbf::supported_isas();
  return d;
}

// Copies a Python-side weight array into a std::vector after checking its shape.
std::vector<float> weight(const py::handle& obj, const char* name, std::vector<py::ssize_t> shape) {
  FloatArray a = checked(obj, name, static_cast<int>(shape.size()));
  expect_shape(a, name, std::move(shape));
  return to_vector(a);
}

std::unique_ptr<mbf::Plan> make_plan(int height, int width, const py::tuple& stem, const py::list& blocks,
                                     const py::object& classifier, const std::optional<std::string>& isa,
                                     int threads, float act_max) {
  mbf::PlanSpec s;
  s.act_max = act_max;
  s.in_h = height;
  s.in_w = width;
  if (stem.size() != 4) throw InputError("stem must be (weights, bias, stride, pads)");
  FloatArray sw = checked(stem[0], "stem weights", 4);
  if (sw.shape(0) != 3 || sw.shape(1) != 3 || sw.shape(2) != 3 || sw.shape(3) < 1)
    throw InputError("stem weights has shape " + shape_str(sw) + ", expected (3, 3, 3, C)");
  s.stem_channels = static_cast<int>(sw.shape(3));
  s.stem_weights = to_vector(sw);
  s.stem_bias = weight(stem[1], "stem bias", {s.stem_channels});
  s.stem_stride = stem[2].cast<int>();
  s.stem_pads = parse_pads(stem[3].cast<std::vector<int>>());
  int c = s.stem_channels;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    py::tuple t = blocks[i].cast<py::tuple>();
    const std::string pre = "block " + std::to_string(i) + " ";
    if (t.size() != 6)
      throw InputError(pre + "must be (dw_weights, dw_bias, stride, pads, pw_weights, pw_bias)");
    mbf::PlanBlockSpec b;
    b.dw_weights = weight(t[0], (pre + "dw weights").c_str(), {3, 3, c});
    b.dw_bias = weight(t[1], (pre + "dw bias").c_str(), {c});
    b.stride = t[2].cast<int>();
    b.pads = parse_pads(t[3].cast<std::vector<int>>());
    FloatArray pw = checked(t[4], (pre + "pw weights").c_str(), 2);
    if (pw.shape(0) != c || pw.shape(1) < 1)
      throw InputError(pre + "pw weights has shape " + shape_str(pw) + ", expected (" + std::to_string(c) + ", Cout)");
    b.out_channels = static_cast<int>(pw.shape(1));
    b.pw_weights = to_vector(pw);
    b.pw_bias = weight(t[5], (pre + "pw bias").c_str(), {b.out_channels});
    c = b.out_channels;
    s.blocks.push_back(std::move(b));
  }
  if (!classifier.is_none()) {
    py::tuple t = classifier.cast<py::tuple>();
    if (t.size() != 2) throw InputError("classifier must be (weights, bias) or None");
    FloatArray fw = checked(t[0], "classifier weights", 2);
    if (fw.shape(0) != c || fw.shape(1) < 1)
      throw InputError("classifier weights has shape " + shape_str(fw) + ", expected (" + std::to_string(c) + ", classes)");
    s.num_classes = static_cast<int>(fw.shape(1));
    s.fc_weights = to_vector(fw);
    s.fc_bias = weight(t[1], "classifier bias", {s.num_classes});
  }
  return std::make_unique<mbf::Plan>(s, kernels_for(isa), threads);
}

py::array_t<float> plan_run(mbf::Plan& plan, const py::object& x_obj, bool features, bool check_finite) {
  FloatArray x = checked(x_obj, "input", 4);
  if (x.shape(1) != plan.in_h() || x.shape(2) != plan.in_w() || x.shape(3) != 3)
    throw InputError("input has shape " + shape_str(x) + ", expected (N, " + std::to_string(plan.in_h()) +
                     ", " + std::to_string(plan.in_w()) + ", 3) for this plan");
  const py::ssize_t n = x.shape(0);
  const bool feat = features || plan.num_classes() == 0;
  py::array_t<float> out(std::vector<py::ssize_t>{n, feat ? plan.feature_channels() : plan.num_classes()});
  const float* xp = x.data();
  float* op = out.mutable_data();
  bool finite = true;
  {
    py::gil_scoped_release release;
    finite = plan.run(xp, static_cast<int>(n), op, feat, check_finite);
  }
  if (!finite) throw InputError("input contains NaN or Inf values");
  return out;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "mobilenet-fast C++ core: kernels, dispatch and the whole-network Plan.";

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const InputError& e) {
      py::object cls = py::module_::import("mobilenet_fast.errors").attr("InputError");
      PyErr_SetString(cls.ptr(), e.what());
    }
  });

  m.def("cpu_info", &cpu_info, "Detected CPU architecture and features, and the compiled/supported ISAs.");
  m.def("compiled_isas", &mbf::compiled_isas, "ISAs compiled into this build, most portable first.");
  m.def("supported_isas", &mbf::supported_isas, "Compiled ISAs this CPU can run, most portable first.");
  m.def(
      "select_isa", [](const std::optional<std::string>& isa) { return std::string(kernels_for(isa).isa); },
      py::arg("isa") = py::none(),
      "The ISA a Plan would use for this request (None/'auto': MOBILENET_FAST_ISA or the best available).");

  py::class_<mbf::Plan>(m, "Plan", "The whole MobileNetV1 planned for one input size, run in C++.")
      .def(py::init(&make_plan), py::arg("height"), py::arg("width"), py::arg("stem"), py::arg("blocks"),
           py::arg("classifier") = py::none(), py::arg("isa") = py::none(), py::arg("threads") = 1,
           py::arg("act_max") = 6.0f,
           "stem = (weights[3,3,3,C], bias[C], stride, pads), blocks = [(dw_weights[3,3,C], dw_bias[C], "
           "stride, pads, pw_weights[C,Cout], pw_bias[Cout]), ...], classifier = (weights[C,classes], "
           "bias[classes]) or None. Weights are BatchNorm-folded float32, C-contiguous. threads: 1 runs "
           "inline on the calling thread; N > 1 starts a pool of N - 1 persistent workers. act_max: every conv ends in "
           "clamp(0, act_max), 6 = ReLU6 (default), inf = ReLU.")
      .def("run", [](mbf::Plan& p, const py::object& x, bool check) { return plan_run(p, x, false, check); },
           py::arg("input"), py::arg("check_finite") = false,
           "input float32 [N,H,W,3] (normalised, C-contiguous) -> logits [N,classes] "
           "(pooled features when the plan has no classifier). Releases the GIL. check_finite: "
           "refuse NaN/Inf inputs (InputError) instead of computing with them.")
      .def("features", [](mbf::Plan& p, const py::object& x, bool check) { return plan_run(p, x, true, check); },
           py::arg("input"), py::arg("check_finite") = false,
           "input float32 [N,H,W,3] -> pooled features [N,C]. Releases the GIL.")
      .def_property_readonly("isa", [](const mbf::Plan& p) { return std::string(p.isa()); })
      .def_property_readonly("threads", &mbf::Plan::threads)
      .def_property_readonly("input_shape", [](const mbf::Plan& p) { return py::make_tuple(p.in_h(), p.in_w(), 3); })
      .def_property_readonly("num_classes", &mbf::Plan::num_classes)
      .def_property_readonly("feature_channels", &mbf::Plan::feature_channels)
      .def_property_readonly("arena_bytes", [](const mbf::Plan& p) { return p.arena_floats() * sizeof(float); })
      .def("__repr__", [](const mbf::Plan& p) {
        return "<Plan " + std::to_string(p.in_h()) + "x" + std::to_string(p.in_w()) + "x3 -> " +
               std::to_string(p.num_classes() ? p.num_classes() : p.feature_channels()) +
               (p.num_classes() ? " classes" : " features") + ", isa=" + p.isa() +
               ", threads=" + std::to_string(p.threads()) + ">";
      });

  py::module_ ops = m.def_submodule("ops", "Single NHWC float32 kernels, for tests and custom networks.");
  ops.def(
      "conv3x3",
      [](const py::object& x, const py::object& w, const py::object& bias, int stride, const std::vector<int>& pads,
         const std::optional<std::pair<float, float>>& clamp, const std::optional<std::pair<int, int>>& rows,
         const std::optional<std::string>& isa) { return conv3x3_op(x, w, bias, stride, pads, clamp, rows, isa, false); },
      py::arg("x"), py::arg("weights"), py::arg("bias") = py::none(), py::arg("stride") = 1,
      py::arg("pads") = std::vector<int>{1, 1, 1, 1}, py::arg("clamp") = py::none(), py::arg("rows") = py::none(),
      py::arg("isa") = py::none(),
      "Standard 3x3 conv: x[N,H,W,Cin], weights HWIO [3,3,Cin,Cout] -> [N,OH,OW,Cout].");
  ops.def(
      "dwconv3x3",
      [](const py::object& x, const py::object& w, const py::object& bias, int stride, const std::vector<int>& pads,
         const std::optional<std::pair<float, float>>& clamp, const std::optional<std::pair<int, int>>& rows,
         const std::optional<std::string>& isa) { return conv3x3_op(x, w, bias, stride, pads, clamp, rows, isa, true); },
      py::arg("x"), py::arg("weights"), py::arg("bias") = py::none(), py::arg("stride") = 1,
      py::arg("pads") = std::vector<int>{1, 1, 1, 1}, py::arg("clamp") = py::none(), py::arg("rows") = py::none(),
      py::arg("isa") = py::none(), "Depthwise 3x3 conv: x[N,H,W,C], weights [3,3,C] -> [N,OH,OW,C].");
  ops.def(
      "pwconv",
      [](const py::object& x_obj, const py::object& w, const py::object& bias,
         const std::optional<std::pair<float, float>>& clamp, const std::optional<std::string>& isa) {
        FloatArray x = checked(x_obj, "x", 4);
        return gemm_op(x, x.shape(0) * x.shape(1) * x.shape(2), x.shape(3), w, bias, clamp, isa,
                       {x.shape(0), x.shape(1), x.shape(2)});
      },
      py::arg("x"), py::arg("weights"), py::arg("bias") = py::none(), py::arg("clamp") = py::none(),
      py::arg("isa") = py::none(), "Pointwise 1x1 conv as a GEMM: x[N,H,W,Cin], weights [Cin,Cout] -> [N,H,W,Cout].");
  ops.def(
      "gemm",
      [](const py::object& a_obj, const py::object& w, const py::object& bias,
         const std::optional<std::pair<float, float>>& clamp, const std::optional<std::string>& isa) {
        FloatArray a = checked(a_obj, "a", 2);
        return gemm_op(a, a.shape(0), a.shape(1), w, bias, clamp, isa, {a.shape(0)});
      },
      py::arg("a"), py::arg("weights"), py::arg("bias") = py::none(), py::arg("clamp") = py::none(),
      py::arg("isa") = py::none(), "clamp(a[M,K] @ weights[K,N] + bias) through the packed GEMM kernel.");
  ops.def(
      "dense",
      [](const py::object& a_obj, const py::object& w, const py::object& bias, const std::optional<std::string>& isa) {
        FloatArray a = checked(a_obj, "x", 2);
        return gemm_op(a, a.shape(0), a.shape(1), w, bias, std::nullopt, isa, {a.shape(0)});
      },
      py::arg("x"), py::arg("weights"), py::arg("bias") = py::none(), py::arg("isa") = py::none(),
      "Fully connected layer: x[N,K] @ weights[K,classes] + bias.");
  ops.def(
      "global_avg_pool",
      [](const py::object& x_obj, const std::optional<std::string>& isa) {
        FloatArray x = checked(x_obj, "x", 4);
        expect_positive(x, "x");
        const mbf::KernelTable& k = kernels_for(isa);
        const py::ssize_t n = x.shape(0), hw = x.shape(1) * x.shape(2), c = x.shape(3);
        if (hw > kMaxDim) throw InputError("x has too many pixels");
        py::array_t<float> out(std::vector<py::ssize_t>{n, c});
        const float* xp = x.data();
        float* op = out.mutable_data();
        py::gil_scoped_release release;
        for (py::ssize_t i = 0; i < n; ++i) k.global_avg_pool(xp + i * hw * c, static_cast<int>(hw), static_cast<int>(c), op + i * c);
        return out;
      },
      py::arg("x"), py::arg("isa") = py::none(), "Global average pool: x[N,H,W,C] -> [N,C].");
  ops.def(
      "softmax",
      [](const py::object& x_obj, const std::optional<std::string>& isa) {
        FloatArray x = checked(x_obj, "x", 2);
        expect_positive(x, "x");
        const mbf::KernelTable& k = kernels_for(isa);
        const py::ssize_t n = x.shape(0), c = x.shape(1);
        py::array_t<float> out(std::vector<py::ssize_t>{n, c});
        const float* xp = x.data();
        float* op = out.mutable_data();
        py::gil_scoped_release release;
        for (py::ssize_t i = 0; i < n; ++i) k.softmax(xp + i * c, static_cast<int>(c), op + i * c);
        return out;
      },
      py::arg("x"), py::arg("isa") = py::none(), "Row-wise softmax: x[N,K] -> [N,K].");
}
