// mobilenet_fast._core.QPlan: the int8 network (mobilenet_fast/qplan.h), built from the
// parameters of mobilenet_fast.quantization.QuantizedNet (QuantizedNet.plan() assembles the
// arguments). Arguments are checked here (args.h) and in the QPlan constructor; runs release
// the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "bindings.h"
#include "mobilenet_fast/qplan.h"

namespace mbf::python {

namespace {

template <class T>
std::vector<T> values(const py::handle& obj, const std::string& name, int ndim) {
  const Array<T> a = checked_array<T>(obj, name, ndim);
  return std::vector<T>(a.data(), a.data() + a.size());
}

// The length of a tuple argument that may have an optional last element: `longer` if it has that
// many items, else `shorter` (seq_arg then checks and names the expected form).
int tuple_size(const py::handle& obj, int shorter, int longer) {
  const bool seq = PySequence_Check(obj.ptr()) && !PyUnicode_Check(obj.ptr());
  const Py_ssize_t n = seq ? PySequence_Size(obj.ptr()) : -1;
  if (PyErr_Occurred()) PyErr_Clear();
  return n == longer ? longer : shorter;
}

// (weights, bias, multiplier, zero_point, min, max[, weight_offset]) -> QLayerParams; the weights'
// rank is checked, their shape against the network by QPlan.
mbf::QLayerParams layer(const py::handle& obj, const std::string& name, int weight_ndim) {
  const int n = tuple_size(obj, 6, 7);
  const std::vector<py::object> t =
      seq_arg(obj, name, n, "(weights, bias, multiplier, zero_point, min, max[, weight_offset])");
  mbf::QLayerParams p;
  if (n == 7) p.weight_offset = static_cast<std::int32_t>(int_arg(t[6], name + " weight offset", -128, 128));
  p.weights = values<std::int8_t>(t[0], name + " weights", weight_ndim);
  p.bias = values<std::int32_t>(t[1], name + " bias", 1);
  p.multiplier = values<float>(t[2], name + " multiplier", 1);
  p.out.zero_point = static_cast<std::int32_t>(int_arg(t[3], name + " zero point", 0, 255));
  p.out.min = static_cast<std::uint8_t>(int_arg(t[4], name + " clamp min", 0, 255));
  p.out.max = static_cast<std::uint8_t>(int_arg(t[5], name + " clamp max", 0, 255));
  return p;
}

std::unique_ptr<mbf::QPlan> make_qplan(const py::object& height, const py::object& width, const py::object& input,
                                       const py::object& stem, const py::object& blocks, const py::object& pool,
                                       const py::object& classifier, const py::object& isa, const py::object& threads) {
  mbf::QPlanSpec s;
  s.in_h = int_arg(height, "height");
  s.in_w = int_arg(width, "width");
  // (scale, zero_point) or (scale, zero_point, divide): see QPlanSpec::input_divide.
  const bool three = tuple_size(input, 2, 3) == 3;
  const std::vector<py::object> in =
      seq_arg(input, "input", three ? 3 : 2, "(scale, zero_point) or (scale, zero_point, divide)");
  s.input_scale = static_cast<float>(real_arg(in[0], "input scale"));
  s.input_zero_point = static_cast<std::int32_t>(int_arg(in[1], "input zero point", 0, 255));
  if (three) {
    if (!PyBool_Check(in[2].ptr())) throw InputError("input divide must be a bool");
    s.input_divide = in[2].ptr() == Py_True;
  }
  const std::vector<py::object> st = seq_arg(stem, "stem", 3, "(stride, pads, layer)");
  s.stem_stride = int_arg(st[0], "stem stride");
  s.stem_pads = parse_pads(st[1], "stem pads");
  s.stem = layer(st[2], "stem", 4);
  s.stem_channels = static_cast<int>(s.stem.bias.size());
  if (!py::isinstance<py::sequence>(blocks) || py::isinstance<py::str>(blocks))
    throw InputError("blocks must be a list of (stride, pads, dw, pw)");
  int i = 0;
  for (const py::handle& b : py::reinterpret_borrow<py::sequence>(blocks)) {
    const std::string name = "blocks." + std::to_string(i++);
    const std::vector<py::object> t = seq_arg(b, name, 4, "(stride, pads, dw, pw)");
    mbf::QPlanBlock blk;
    blk.stride = int_arg(t[0], name + " stride");
    blk.pads = parse_pads(t[1], name + " pads");
    blk.dw = layer(t[2], name + ".dw", 3);
    blk.pw = layer(t[3], name + ".pw", 2);
    blk.out_channels = static_cast<int>(blk.pw.bias.size());
    s.blocks.push_back(std::move(blk));
  }
  const int pool_n = tuple_size(pool, 4, 5);
  const std::vector<py::object> p =
      seq_arg(pool, "pool", pool_n, "(in_scale, in_zero_point, out_scale, out_zero_point[, half_up])");
  if (pool_n == 5) {
    if (!PyBool_Check(p[4].ptr())) throw InputError("pool half_up must be a bool");
    s.pool_half_up = p[4].ptr() == Py_True;
  }
  s.pool_in_scale = real_arg(p[0], "pool input scale");
  s.pool_in_zero_point = static_cast<std::int32_t>(int_arg(p[1], "pool input zero point", 0, 255));
  s.pool_out_scale = real_arg(p[2], "pool output scale");
  s.pool_out_zero_point = static_cast<std::int32_t>(int_arg(p[3], "pool output zero point", 0, 255));
  if (!classifier.is_none()) {
    const int fc_n = tuple_size(classifier, 3, 4);
    const std::vector<py::object> c =
        seq_arg(classifier, "classifier", fc_n, "(weights, bias, logit_scale[, weight_offset])");
    if (fc_n == 4) s.fc.weight_offset = static_cast<std::int32_t>(int_arg(c[3], "classifier weight offset", -128, 128));
    s.fc.weights = values<std::int8_t>(c[0], "classifier weights", 2);
    s.fc.bias = values<std::int32_t>(c[1], "classifier bias", 1);
    s.fc.multiplier = values<float>(c[2], "classifier logit scale", 1);
    s.num_classes = static_cast<int>(s.fc.bias.size());
  }
  const int n_threads = threads.is_none() ? 1 : int_arg(threads, "threads");
  return std::make_unique<mbf::QPlan>(s, kernels_for(isa), n_threads);
}

py::array_t<float> qplan_run(mbf::QPlan& plan, const py::object& x_obj, bool features) {
  return run_network(plan, x_obj, features,
                     [&](const float* x, int n, float* out, bool feat) { return plan.run(x, n, out, feat); });
}

}  // namespace

void bind_qplan(py::module_& m) {
  py::class_<mbf::QPlan>(m, "QPlan", "The int8 MobileNetV1 planned for one input size, run in C++.")
      .def(py::init(&make_qplan), py::arg("height"), py::arg("width"), py::arg("input"), py::arg("stem"),
           py::arg("blocks"), py::arg("pool"), py::arg("classifier") = py::none(), py::arg("isa") = py::none(),
           py::arg("threads") = py::none())
      // check_finite: accepted for the interface of Plan; the int8 input is always checked (its
      // quantisation reads every value anyway).
      .def("run", [](mbf::QPlan& p, const py::object& x, bool) { return qplan_run(p, x, false); }, py::arg("x"),
           py::arg("check_finite") = true,
           "float32 normalised images [N, H, W, 3] -> float32 logits [N, classes] (features without a classifier); "
           "NaN/Inf input is always an InputError.")
      .def("features", [](mbf::QPlan& p, const py::object& x, bool) { return qplan_run(p, x, true); }, py::arg("x"),
           py::arg("check_finite") = true, "The dequantised pooled features [N, C].")
      .def_property_readonly("isa", [](const mbf::QPlan& p) { return std::string(p.isa()); })
      .def_property_readonly("threads", &mbf::QPlan::threads)
      .def_property_readonly("num_classes", &mbf::QPlan::num_classes)
      .def_property_readonly("feature_channels", &mbf::QPlan::feature_channels)
      .def_property_readonly("pair_limited_layers", &mbf::QPlan::pair_limited_layers,
                             "GEMM layers whose weights are pair-limited (run on the ISA's pairs kernel)")
      .def_property_readonly("gemm_layers", &mbf::QPlan::gemm_layers, "stem + pointwise + classifier layers")
      .def("__repr__", [](const mbf::QPlan& p) {
        return "QPlan(" + std::to_string(p.in_h()) + "x" + std::to_string(p.in_w()) + ", isa='" + p.isa() +
               "', threads=" + std::to_string(p.threads()) + ")";
      });
}

}  // namespace mbf::python
