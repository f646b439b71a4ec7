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

}  // namespace

void bind_cpu(py::module_& m) {
  m.def("cpu_info", &cpu_info, "Detected CPU architecture and features, the compiled/supported ISAs, every kernel variant and the one each ISA runs per family.");
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
