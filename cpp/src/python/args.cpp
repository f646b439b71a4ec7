// Argument checking for the Python bindings (see args.h): every check raises mbf::InputError
// naming the argument.
#include "args.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "mobilenet_fast/dispatch.h"

namespace mbf::python {

namespace {

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

}  // namespace

std::string shape_str(const py::array& a) {
  std::ostringstream s;
  s << "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
  s << (a.ndim() == 1 ? ",)" : ")");
  return s.str();
}

std::string type_name(const py::handle& obj) { return py::str(py::type::of(obj).attr("__name__")); }

namespace {

template <class T>
const char* numpy_name();
template <>
const char* numpy_name<float>() { return "float32"; }
template <>
const char* numpy_name<std::uint8_t>() { return "uint8"; }
template <>
const char* numpy_name<std::int8_t>() { return "int8"; }
template <>
const char* numpy_name<std::int32_t>() { return "int32"; }

}  // namespace

template <class T>
Array<T> checked_array(const py::handle& obj, const std::string& name, int ndim) {
  if (!py::isinstance<py::array>(obj))
    throw InputError(name + " must be a numpy array, got " + type_name(obj));
  if (is_masked_array(obj))
    throw InputError(name + " is a masked array: the kernels would ignore its mask (use .filled(value))");
  py::array a = py::reinterpret_borrow<py::array>(obj);
  const std::string dt = numpy_name<T>();
  if (!py::detail::npy_api::get().PyArray_EquivTypes_(a.dtype().ptr(), py::dtype::of<T>().ptr()))
    throw InputError(name + " must have dtype " + dt + (sizeof(T) > 1 ? " in native byte order" : "") + ", got " +
                     std::string(py::str(a.dtype())) + " (use x.astype(numpy." + dt + "))");
  if (a.ndim() != ndim)
    throw InputError(name + " must have " + std::to_string(ndim) + " dimensions, got " + std::to_string(a.ndim()) +
                     " with shape " + shape_str(a));
  if (!(a.flags() & py::array::c_style))
    throw InputError(name + " must be C-contiguous (use numpy.ascontiguousarray); got a strided view");
  if (!(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
    throw InputError(name + " is not aligned to its " + std::to_string(sizeof(T)) + "-byte " + dt +
                     " items (use numpy.ascontiguousarray or .copy())");
  std::int64_t total = 1;
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    const std::int64_t d = std::max<std::int64_t>(a.shape(i), 1);
    if (d > kMaxElements / total)
      throw InputError(name + " has shape " + shape_str(a) +
                       ", more than the limit of 2^31 - 1 values per array (split it)");
    total *= d;
  }
  return py::reinterpret_borrow<Array<T>>(a);
}

template Array<float> checked_array<float>(const py::handle&, const std::string&, int);
template Array<std::uint8_t> checked_array<std::uint8_t>(const py::handle&, const std::string&, int);
template Array<std::int8_t> checked_array<std::int8_t>(const py::handle&, const std::string&, int);
template Array<std::int32_t> checked_array<std::int32_t>(const py::handle&, const std::string&, int);

FloatArray checked(const py::handle& obj, const std::string& name, int ndim) {
  return checked_array<float>(obj, name, ndim);
}

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

mbf::Pads parse_pads(const py::handle& obj, const std::string& name) {
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

std::vector<float> weight(const py::handle& obj, const std::string& name, std::vector<py::ssize_t> shape) {
  FloatArray a = checked(obj, name, static_cast<int>(shape.size()));
  expect_shape(a, name, std::move(shape));
  return to_vector(a);
}

}  // namespace mbf::python
