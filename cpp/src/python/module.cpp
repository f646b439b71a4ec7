// pybind11 bindings: mobilenet_fast._core (Plan, cpu info) and mobilenet_fast._core.ops.
// Every entry point checks its arguments before any kernel touches memory (args.h): arrays,
// scalars, and the size of every array it would allocate. Problems raise
// mobilenet_fast.errors.InputError; allocation failures raise MemoryError with a message.
// Inputs are only read (read-only arrays are fine); every output is a new array.
//
// This file makes the module: its docstring, the one translator of C++ exceptions (registered
// once, for every part), and the parts of bindings.h.
#include <pybind11/pybind11.h>

#include <exception>
#include <new>

#include "bindings.h"
#include "mobilenet_fast/kernels.h"
#include "mobilenet_fast/plan.h"

PYBIND11_MODULE(_core, m) {
  m.doc() = "mobilenet-fast C++ core: kernels, dispatch and the whole-network Plan.";

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const mbf::InputError& e) {
      py::object cls = py::module_::import("mobilenet_fast.errors").attr("InputError");
      PyErr_SetString(cls.ptr(), e.what());
    } catch (const mbf::OutOfMemory& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    } catch (const std::bad_alloc&) {
      PyErr_SetString(PyExc_MemoryError, "mobilenet-fast: out of memory (std::bad_alloc)");
    }
  });

  mbf::python::bind_cpu(m);
  mbf::python::bind_plan(m);
  mbf::python::bind_qplan(m);
  mbf::python::bind_ops(m);
}
