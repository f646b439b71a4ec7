// Argument checking for the Python bindings (mobilenet_fast._core): every entry point checks its
// arguments with these before any kernel touches memory: arrays (numpy, not masked, float32 in
// native byte order, rank, shape, C-contiguous, aligned, fewer than 2^31 values), scalars (ints
// that are ints and in range, real clamps without NaN, pads, rows, ISA names), and the size of
// every array it would allocate. Every problem raises mbf::InputError naming the argument
// (mobilenet_fast.errors.InputError in Python). Inputs are only read (read-only arrays are fine).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>  // in every part, so that all convert STL types alike

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "mobilenet_fast/kernels.h"
#include "mobilenet_fast/plan.h"

namespace py = pybind11;

namespace mbf::python {

template <class T>
using Array = py::array_t<T, py::array::c_style>;
using FloatArray = Array<float>;
// Largest array (in values) any entry point accepts or allocates: fewer than 2^31 values, so every
// size and index fits an int inside the kernels.
constexpr std::int64_t kMaxElements = (std::int64_t{1} << 31) - 1;

// "(2, 3)", "(5,)": an array's shape as Python prints it.
std::string shape_str(const py::array& a);
// The name of obj's type.
std::string type_name(const py::handle& obj);

// ---- arrays ----------------------------------------------------------------------------------

// Returns obj as a C-contiguous, aligned, native float32 array of rank ndim holding fewer than
// 2^31 values, without copying; raises InputError otherwise.
FloatArray checked(const py::handle& obj, const std::string& name, int ndim);
// The same for the other element types the kernels take: float, uint8, int8, int32.
template <class T>
Array<T> checked_array(const py::handle& obj, const std::string& name, int ndim);
// A new float32 array of this shape, refused (InputError naming `what`) if it would hold 2^31
// values or more; numpy raises MemoryError if the allocation itself fails.
py::array_t<float> new_output(const std::vector<py::ssize_t>& shape, const std::string& what);
void expect_shape(const FloatArray& a, const std::string& name, std::vector<py::ssize_t> shape);
// No dimension of a is 0.
void expect_positive(const FloatArray& a, const std::string& name);
// No value of a is NaN or +-Inf.
void expect_finite(const FloatArray& a, const std::string& name);
std::vector<float> to_vector(const FloatArray& a);
// Copies a Python-side weight array into a std::vector after checking its shape.
std::vector<float> weight(const py::handle& obj, const std::string& name, std::vector<py::ssize_t> shape);
// Bias argument: None means zeros.
std::vector<float> bias_or_zeros(const py::object& bias, py::ssize_t n, const std::string& name);

// ---- scalar arguments: any conversion problem is an InputError naming the argument -------------

// A Python int or numpy integer (not a bool, not a float) in [lo, hi].
long long int_arg(const py::handle& obj, const std::string& name, long long lo, long long hi);
// The same, in the range of an int.
int int_arg(const py::handle& obj, const std::string& name);
// A real number (int, float, numpy scalar; not a bool, not complex).
double real_arg(const py::handle& obj, const std::string& name);
// A list, tuple or 1-D array of exactly n items (strings do not count as sequences); `what`
// describes the expected value in the message.
std::vector<py::object> seq_arg(const py::handle& obj, const std::string& name, std::size_t n,
                                const std::string& what);
// (min, max) with min <= max and no NaN; None: no clamp.
mbf::Clamp parse_clamp(const py::object& obj);
// Four ints (top, left, bottom, right).
mbf::Pads parse_pads(const py::handle& obj, const std::string& name = "pads");
// (begin, end) with 0 <= begin <= end <= out_h; None: every row.
std::pair<int, int> parse_rows(const py::object& obj, int out_h);
// The kernel table for an ISA name; None: MOBILENET_FAST_ISA or the best available.
const mbf::KernelTable& kernels_for(const py::object& isa);

// Runs a network plan (Plan, QPlan: in_h(), in_w(), num_classes(), feature_channels()) on the
// float32 NHWC batch x_obj with the GIL released: run(input, batch, output, features) -> false
// when an input value is not finite. The caller's references keep the plan and the input alive
// until the call returns, whatever other threads do with their own references.
template <class P, class Run>
py::array_t<float> run_network(P& plan, const py::object& x_obj, bool features, Run&& run) {
  FloatArray x = checked(x_obj, "input", 4);
  if (x.shape(1) != plan.in_h() || x.shape(2) != plan.in_w() || x.shape(3) != 3)
    throw InputError("input has shape " + shape_str(x) + ", expected (N, " + std::to_string(plan.in_h()) + ", " +
                     std::to_string(plan.in_w()) + ", 3) for this plan");
  const py::ssize_t n = x.shape(0);
  const bool feat = features || plan.num_classes() == 0;
  py::array_t<float> out = new_output({n, feat ? plan.feature_channels() : plan.num_classes()}, "the output");
  const float* xp = x.data();
  float* op = out.mutable_data();
  bool finite = true;
  {
    py::gil_scoped_release release;
    finite = run(xp, static_cast<int>(n), op, feat);
  }
  if (!finite) throw InputError("input contains NaN or Inf values");
  return out;
}

}  // namespace mbf::python
