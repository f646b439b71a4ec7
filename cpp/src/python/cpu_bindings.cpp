// The CPU side of mobilenet_fast._core: what the CPU has (cpu_info), which ISAs are compiled in
// and which this CPU runs, the ISA a request resolves to, and the fork generation of the process.
#include <pybind11/pybind11.h>

#include <string>

#include "args.h"
#include "bindings.h"
#include "mobilenet_fast/dispatch.h"
#include "mobilenet_fast/thread_pool.h"

namespace mbf::python {

namespace {

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

}  // namespace

void bind_cpu(py::module_& m) {
  m.def("cpu_info", &cpu_info, "Detected CPU architecture and features, and the compiled/supported ISAs.");
  m.def("compiled_isas", &mbf::compiled_isas, "ISAs compiled into this build, most portable first.");
  m.def("supported_isas", &mbf::supported_isas, "Compiled ISAs this CPU can run, most portable first.");
  m.def(
      "select_isa", [](const py::object& isa) { return std::string(kernels_for(isa).isa); },
      py::arg("isa") = py::none(),
      "The ISA a Plan would use for this request (None/'auto': MOBILENET_FAST_ISA or the best available).");
  m.def("fork_generation", &mbf::ThreadPool::fork_generation,
        "How many fork()s this process is away from the one that loaded the module (0 in the original).");
}

}  // namespace mbf::python
