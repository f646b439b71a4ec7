// mobilenet_fast._core.Plan: builds a Plan from Python weights (every array and scalar checked
// with args.h, then the Plan checks that the shapes chain) and runs it on a batch with the GIL
// released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "args.h"
#include "bindings.h"
#include "mobilenet_fast/plan.h"

namespace mbf::python {

namespace {

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

py::array_t<float> plan_run(mbf::Plan& plan, const py::object& x_obj, bool features, bool check_finite) {
  return run_network(plan, x_obj, features, [&](const float* x, int n, float* out, bool feat) {
    return plan.run(x, n, out, feat, check_finite);
  });
}

}  // namespace

void bind_plan(py::module_& m) {
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
}

}  // namespace mbf::python
