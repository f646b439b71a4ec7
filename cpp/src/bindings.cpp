// pybind11 bindings: mobilenet_fast._core (Plan, cpu info) and mobilenet_fast._core.ops.
// Every entry point checks its arguments before any kernel touches memory: arrays (numpy, not
// masked, float32 in native byte order, rank, shape, C-contiguous, aligned, fewer than 2^31
// values), scalars (ints that are ints and in range, real clamps without NaN, pads, rows, ISA
// names), and the size of every array it would allocate. Problems raise
// mobilenet_fast.errors.InputError; allocation failures raise MemoryError with a message.
// Inputs are only read (read-only arrays are fine); every output is a new array.
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
// Largest array (in values) any entry point accepts or allocates: fewer than 2^31 values, so every
// size and index fits an int inside the kernels.
constexpr std::int64_t kMaxElements = (std::int64_t{1} << 31) - 1;

std::string shape_str(const py::array& a) {
  std::ostringstream s;
  s << "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
  s << (a.ndim() == 1 ? ",)" : ")");
  return s.str();
}

std::string type_name(const py::handle& obj) { return py::str(py::type::of(obj).attr("__name__")); }
// repr(obj), cut to 80 characters (a huge list passed as pads must not flood the message).
std::string repr_str(const py::handle& obj) {
  std::string r = py::repr(obj);
  return r.size() > 80 ? r.substr(0, 77) + "..." : r;
}

bool is_masked_array(const py::handle& obj) {
  PYBIND11_CONSTINIT static py::gil_safe_call_once_and_store<py::object> masked;
  const py::object& cls = masked
                              .call_once_and_store_result(
                                  [] { return py::module_::import("numpy.ma").attr("MaskedArray"); })
                              .get_stored();
  return PyObject_IsInstance(obj.ptr(), cls.ptr()) == 1;
}

// Returns obj as a C-contiguous, aligned, native float32 array of rank ndim holding fewer than
// 2^31 values, without copying; raises InputError otherwise.
FloatArray checked(const py::handle& obj, const std::string& name, int ndim) {
  if (!py::isinstance<py::array>(obj))
    throw InputError(name + " must be a numpy array, got " + type_name(obj));
  if (is_masked_array(obj))
    throw InputError(name + " is a masked array: the kernels would ignore its mask (use .filled(value))");
  py::array a = py::reinterpret_borrow<py::array>(obj);
  if (!py::detail::npy_api::get().PyArray_EquivTypes_(a.dtype().ptr(), py::dtype::of<float>().ptr()))
    throw InputError(name + " must have dtype float32 in native byte order, got " + std::string(py::str(a.dtype())) +
                     " (use x.astype(numpy.float32))");
  if (a.ndim() != ndim)
    throw InputError(name + " must have " + std::to_string(ndim) + " dimensions, got " + std::to_string(a.ndim()) +
                     " with shape " + shape_str(a));
  if (!(a.flags() & py::array::c_style))
    throw InputError(name + " must be C-contiguous (use numpy.ascontiguousarray); got a strided view");
  if (!(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
    throw InputError(name + " is not aligned to its 4-byte float32 items (use numpy.ascontiguousarray or .copy())");
  std::int64_t total = 1;
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    const std::int64_t d = std::max<std::int64_t>(a.shape(i), 1);
    if (d > kMaxElements / total)
      throw InputError(name + " has shape " + shape_str(a) +
                       ", more than the limit of 2^31 - 1 values per array (split it)");
    total *= d;
  }
  return py::reinterpret_borrow<FloatArray>(a);
}

// A new float32 array of this shape, refused (InputError naming `what`) if it would hold 2^31
// values or more; numpy raises MemoryError if the allocation itself fails.
py::array_t<float> new_output(const std::vector<py::ssize_t>& shape, const std::string& what) {
  std::int64_t total = 1;
  for (py::ssize_t d : shape) {
    if (d > 0 && (d > kMaxElements || total > kMaxElements / d)) {
      std::ostringstream s;
      s << what << " would have shape (";
      for (std::size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
      s << "), more than the limit of 2^31 - 1 values per array; use a smaller input or split the batch";
      throw InputError(s.str());
    }
    total *= std::max<py::ssize_t>(d, 1);
  }
  return py::array_t<float>(shape);
}

void expect_shape(const FloatArray& a, const std::string& name, std::vector<py::ssize_t> shape) {
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

void expect_positive(const FloatArray& a, const std::string& name) {
  for (py::ssize_t i = 0; i < a.ndim(); ++i)
    if (a.shape(i) == 0) throw InputError(name + " has an empty dimension: " + shape_str(a));
}

void expect_finite(const FloatArray& a, const std::string& name) {
  if (!mbf::all_finite(a.data(), static_cast<std::size_t>(a.size())))
    throw InputError(name + " contains NaN or Inf values");
}

std::vector<float> to_vector(const FloatArray& a) { return {a.data(), a.data() + a.size()}; }

// ---- scalar arguments: any conversion problem is an InputError naming the argument -------------

// A Python int or numpy integer (not a bool, not a float) in [lo, hi].
long long int_arg(const py::handle& obj, const std::string& name, long long lo, long long hi) {
  if (PyBool_Check(obj.ptr()) || !PyIndex_Check(obj.ptr()))
    throw InputError(name + " must be an int, got " + type_name(obj) + " " + repr_str(obj));
  py::object index = py::reinterpret_steal<py::object>(PyNumber_Index(obj.ptr()));
  if (!index) throw py::error_already_set();
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(index.ptr(), &overflow);
  if (overflow || v < lo || v > hi)
    throw InputError(name + " must be in " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " + repr_str(obj));
  return v;
}

int int_arg(const py::handle& obj, const std::string& name) {
  return static_cast<int>(int_arg(obj, name, std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
}

// A real number (int, float, numpy scalar; not a bool, not complex).
double real_arg(const py::handle& obj, const std::string& name) {
  if (PyBool_Check(obj.ptr()) || PyComplex_Check(obj.ptr()) || PyUnicode_Check(obj.ptr()) ||
      !PyNumber_Check(obj.ptr()))
    throw InputError(name + " must be a real number, got " + type_name(obj) + " " + repr_str(obj));
  const double v = PyFloat_AsDouble(obj.ptr());
  if (v == -1.0 && PyErr_Occurred()) {
    PyErr_Clear();
    throw InputError(name + " must be a real number, got " + type_name(obj) + " " + repr_str(obj));
  }
  return v;
}

// A list, tuple or 1-D array of exactly n items (strings do not count as sequences).
std::vector<py::object> seq_arg(const py::handle& obj, const std::string& name, std::size_t n,
                                const std::string& what) {
  if (PyUnicode_Check(obj.ptr()) || PyBytes_Check(obj.ptr()) || !PySequence_Check(obj.ptr()) ||
      PySequence_Size(obj.ptr()) != static_cast<Py_ssize_t>(n)) {
    if (PyErr_Occurred()) PyErr_Clear();
    throw InputError(name + " must be " + what + ", got " + repr_str(obj));
  }
  std::vector<py::object> items;
  for (std::size_t i = 0; i < n; ++i) {
    py::object item = py::reinterpret_steal<py::object>(PySequence_GetItem(obj.ptr(), static_cast<Py_ssize_t>(i)));
    if (!item) throw py::error_already_set();
    items.push_back(std::move(item));
  }
  return items;
}

// Bias argument: None means zeros.
std::vector<float> bias_or_zeros(const py::object& bias, py::ssize_t n, const std::string& name) {
  if (bias.is_none()) return std::vector<float>(static_cast<std::size_t>(n), 0.0f);
  FloatArray b = checked(bias, name, 1);
  expect_shape(b, name, {n});
  return to_vector(b);
}

mbf::Clamp parse_clamp(const py::object& obj) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  if (obj.is_none()) return {-inf, inf};
  const auto v = seq_arg(obj, "clamp", 2, "(min, max) or None");
  const double lo = real_arg(v[0], "clamp min"), hi = real_arg(v[1], "clamp max");
  if (std::isnan(lo) || std::isnan(hi) || lo > hi)
    throw InputError("clamp must be (min, max) with min <= max and no NaN, got " + repr_str(obj));
  return {static_cast<float>(lo), static_cast<float>(hi)};  // beyond the float range: +-inf
}

mbf::Pads parse_pads(const py::handle& obj, const std::string& name = "pads") {
  const auto v = seq_arg(obj, name, 4, "four ints (top, left, bottom, right)");
  return {int_arg(v[0], name + " top"), int_arg(v[1], name + " left"), int_arg(v[2], name + " bottom"),
          int_arg(v[3], name + " right")};
}

const mbf::KernelTable& kernels_for(const py::object& isa) {
  if (isa.is_none()) return mbf::select_kernels("");
  if (!PyUnicode_Check(isa.ptr()))
    throw InputError("isa must be a string (\"scalar\", \"avx2\", ...) or None, got " + type_name(isa));
  return mbf::select_kernels(isa.cast<std::string>());
}

std::pair<int, int> parse_rows(const py::object& obj, int out_h) {
  if (obj.is_none()) return {0, out_h};
  const auto v = seq_arg(obj, "rows", 2, "(begin, end) or None");
  const long long b = int_arg(v[0], "rows begin", std::numeric_limits<long long>::min(), std::numeric_limits<long long>::max());
  const long long e = int_arg(v[1], "rows end", std::numeric_limits<long long>::min(), std::numeric_limits<long long>::max());
  if (b < 0 || b > e || e > out_h)
    throw InputError("rows must satisfy 0 <= begin <= end <= " + std::to_string(out_h) + ", got (" +
                     std::to_string(b) + ", " + std::to_string(e) + ")");
  return {static_cast<int>(b), static_cast<int>(e)};
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
  const mbf::Pads p = parse_pads(pads);
  g.stride = int_arg(stride, "stride");
  g.pad_top = p[0];
  g.pad_left = p[1];
  g.pad_bottom = p[2];
  g.pad_right = p[3];
  mbf::complete_geometry(g);
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

py::dict cpu_info() {
  const mbf::CpuFeatures& f = mbf::cpu_features();
  py::dict features;
  features["sse2"] = f.sse2;
  features["avx"] = f.avx;
  const mbf::FeatureSet have = f.set();
  for (const auto& [bit, name] : mbf::feature_names()) features[name] = (have & bit) != 0;
  py::list variants;
  for (const mbf::KernelVariant& v : mbf::kernel_variants()) {
    py::dict row;
    row["name"] = v.name;
    row["family"] = mbf::family_name(v.family);
    row["isa"] = v.isa;
    row["tile"] = py::make_tuple(v.tile_m, v.tile_n);
    row["requires"] = mbf::feature_list(v.requires);
    row["supported"] = (v.requires & ~have) == 0;
    variants.append(row);
  }
  py::dict chosen;
  for (const std::string& isa : mbf::supported_isas()) {
    py::dict per_family;
    for (int i = 0; i < mbf::kKernelFamilies; ++i) {
      const auto fam = static_cast<mbf::KernelFamily>(i);
      per_family[mbf::family_name(fam)] = mbf::chosen_variant(isa, fam).name;
    }
    chosen[py::str(isa)] = per_family;
  }
  py::dict d;
  d["arch"] = f.arch;
  d["features"] = features;
  d["compiled_isas"] = mbf::compiled_isas();
  d["supported_isas"] = mbf::supported_isas();
  d["variants"] = variants;
  d["kernels"] = chosen;
  return d;
}

// Copies a Python-side weight array into a std::vector after checking its shape.
std::vector<float> weight(const py::handle& obj, const std::string& name, std::vector<py::ssize_t> shape) {
  FloatArray a = checked(obj, name, static_cast<int>(shape.size()));
  expect_shape(a, name, std::move(shape));
  return to_vector(a);
}

std::unique_ptr<mbf::Plan> make_plan(const py::object& height, const py::object& width, const py::object& stem,
                                     const py::object& blocks, const py::object& classifier, const py::object& isa,
                                     const py::object& threads, const py::object& act_max) {
  mbf::PlanSpec s;
  s.act_max = static_cast<float>(real_arg(act_max, "act_max"));
  s.in_h = int_arg(height, "height");
  s.in_w = int_arg(width, "width");
  const int n_threads = int_arg(threads, "threads");
  const auto st = seq_arg(stem, "stem", 4, "(weights, bias, stride, pads)");
  FloatArray sw = checked(st[0], "stem weights", 4);
  if (sw.shape(0) != 3 || sw.shape(1) != 3 || sw.shape(2) != 3 || sw.shape(3) < 1)
    throw InputError("stem weights has shape " + shape_str(sw) + ", expected (3, 3, 3, C)");
  s.stem_channels = static_cast<int>(sw.shape(3));
  s.stem_weights = to_vector(sw);
  s.stem_bias = weight(st[1], "stem bias", {s.stem_channels});
  s.stem_stride = int_arg(st[2], "stem stride");
  s.stem_pads = parse_pads(st[3], "stem pads");
  if (PyUnicode_Check(blocks.ptr()) || !PySequence_Check(blocks.ptr()))
    throw InputError("blocks must be a list of (dw_weights, dw_bias, stride, pads, pw_weights, pw_bias), got " +
                     type_name(blocks));
  const Py_ssize_t n_blocks = PySequence_Size(blocks.ptr());
  if (n_blocks < 0) throw py::error_already_set();
  int c = s.stem_channels;
  for (Py_ssize_t i = 0; i < n_blocks; ++i) {
    py::object item = py::reinterpret_steal<py::object>(PySequence_GetItem(blocks.ptr(), i));
    if (!item) throw py::error_already_set();
    const std::string pre = "block " + std::to_string(i) + " ";
    const auto t = seq_arg(item, pre.substr(0, pre.size() - 1), 6,
                           "(dw_weights, dw_bias, stride, pads, pw_weights, pw_bias)");
    mbf::PlanBlockSpec b;
    b.dw_weights = weight(t[0], pre + "dw weights", {3, 3, c});
    b.dw_bias = weight(t[1], pre + "dw bias", {c});
    b.stride = int_arg(t[2], pre + "stride");
    b.pads = parse_pads(t[3], pre + "pads");
    FloatArray pw = checked(t[4], pre + "pw weights", 2);
    if (pw.shape(0) != c || pw.shape(1) < 1)
      throw InputError(pre + "pw weights has shape " + shape_str(pw) + ", expected (" + std::to_string(c) + ", Cout)");
    b.out_channels = static_cast<int>(pw.shape(1));
    b.pw_weights = to_vector(pw);
    b.pw_bias = weight(t[5], pre + "pw bias", {b.out_channels});
    c = b.out_channels;
    s.blocks.push_back(std::move(b));
  }
  if (!classifier.is_none()) {
    const auto t = seq_arg(classifier, "classifier", 2, "(weights, bias) or None");
    FloatArray fw = checked(t[0], "classifier weights", 2);
    if (fw.shape(0) != c || fw.shape(1) < 1)
      throw InputError("classifier weights has shape " + shape_str(fw) + ", expected (" + std::to_string(c) + ", classes)");
    s.num_classes = static_cast<int>(fw.shape(1));
    s.fc_weights = to_vector(fw);
    s.fc_bias = weight(t[1], "classifier bias", {s.num_classes});
  }
  return std::make_unique<mbf::Plan>(s, kernels_for(isa), n_threads);
}

// Runs the plan with the GIL released. The caller's references keep the Plan (`self` of the
// bound method) and the input array alive until the call returns, whatever other threads do
// with their own references (del model, model.threads = k, gc.collect()).
py::array_t<float> plan_run(mbf::Plan& plan, const py::object& x_obj, bool features, bool check_finite) {
  FloatArray x = checked(x_obj, "input", 4);
  if (x.shape(1) != plan.in_h() || x.shape(2) != plan.in_w() || x.shape(3) != 3)
    throw InputError("input has shape " + shape_str(x) + ", expected (N, " + std::to_string(plan.in_h()) +
                     ", " + std::to_string(plan.in_w()) + ", 3) for this plan");
  const py::ssize_t n = x.shape(0);
  const bool feat = features || plan.num_classes() == 0;
  py::array_t<float> out = new_output({n, feat ? plan.feature_channels() : plan.num_classes()}, "the output");
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

constexpr const char* kOpsNaN =
    " check_finite=True refuses NaN/Inf in x (InputError); by default x is not checked and "
    "NaN/Inf give unspecified results that differ between ISAs.";

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "mobilenet-fast C++ core: kernels, dispatch and the whole-network Plan.";

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const InputError& e) {
      py::object cls = py::module_::import("mobilenet_fast.errors").attr("InputError");
      PyErr_SetString(cls.ptr(), e.what());
    } catch (const mbf::OutOfMemory& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    } catch (const std::bad_alloc&) {
      PyErr_SetString(PyExc_MemoryError, "mobilenet-fast: out of memory (std::bad_alloc)");
    }
  });

  m.def("cpu_info", &cpu_info, "Detected CPU architecture and features, and the compiled/supported ISAs.");
  m.def("compiled_isas", &mbf::compiled_isas, "ISAs compiled into this build, most portable first.");
  m.def("supported_isas", &mbf::supported_isas, "Compiled ISAs this CPU can run, most portable first.");
  m.def(
      "select_isa", [](const py::object& isa) { return std::string(kernels_for(isa).isa); },
      py::arg("isa") = py::none(),
      "The ISA a Plan would use for this request (None/'auto': MOBILENET_FAST_ISA or the best available).");
  m.def("fork_generation", &mbf::ThreadPool::fork_generation,
        "How many fork()s this process is away from the one that loaded the module (0 in the original).");

  py::class_<mbf::Plan>(m, "Plan", "The whole MobileNetV1 planned for one input size, run in C++.")
      .def(py::init(&make_plan), py::arg("height"), py::arg("width"), py::arg("stem"), py::arg("blocks"),
           py::arg("classifier") = py::none(), py::arg("isa") = py::none(), py::arg("threads") = 1,
           py::arg("act_max") = 6.0f,
           "stem = (weights[3,3,3,C], bias[C], stride, pads), blocks = [(dw_weights[3,3,C], dw_bias[C], "
           "stride, pads, pw_weights[C,Cout], pw_bias[Cout]), ...], classifier = (weights[C,classes], "
           "bias[classes]) or None. Weights are BatchNorm-folded float32, C-contiguous. threads: 1 runs "
           "inline on the calling thread; N > 1 starts a pool of N - 1 persistent workers. act_max: every conv ends in "
           "clamp(0, act_max), 6 = ReLU6 (default), inf = ReLU. Sizes whose buffers would hold 2^31 values or "
           "more are refused (InputError) before anything is allocated; MemoryError says how much was needed.")
      .def("run", [](mbf::Plan& p, const py::object& x, bool check) { return plan_run(p, x, false, check); },
           py::arg("input"), py::arg("check_finite") = false,
           "input float32 [N,H,W,3] (normalised, C-contiguous) -> logits [N,classes] "
           "(pooled features when the plan has no classifier). Releases the GIL; calls on one Plan are "
           "serialised. check_finite: refuse NaN/Inf inputs (InputError) instead of computing with them "
           "(unchecked, NaN/Inf give unspecified logits).")
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
