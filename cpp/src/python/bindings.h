// The parts of the module mobilenet_fast._core, each bound by its own file; module.cpp makes the
// module and calls them in this order.
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>  // in every part, so that all convert STL types alike

namespace py = pybind11;

namespace mbf::python {

// cpu_info, compiled_isas, supported_isas, select_isa, fork_generation (cpu_bindings.cpp).
void bind_cpu(py::module_& m);
// The class Plan: the whole network (plan_bindings.cpp).
void bind_plan(py::module_& m);
// The class QPlan: the int8 network (qplan_bindings.cpp).
void bind_qplan(py::module_& m);
// The submodule ops: single kernels (ops.cpp).
void bind_ops(py::module_& m);

}  // namespace mbf::python
