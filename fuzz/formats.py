"""The one table of fuzzed formats: how to build each seed, how to mutate it, what it needs.

A format is a key of :data:`mobilenet_fast.importers.FORMATS` (inputs are loaded with
``import_weights(path, fmt)``), or ``int8`` / ``tflite_int8``: our int8 files and quantised
``.tflite`` files, loaded with ``mobilenet_fast.load`` and run once. Each has one or more *variants* (container layouts of that format:
``.keras`` / legacy ``.h5`` / ``.weights.h5``, zip / legacy ``torch.save``...), each with its seed
builder, the file name whose extension mutated inputs keep, and its format-aware mutators
(byte-level mutators apply to every variant). Adding a format is one entry here: a builder in
:mod:`seeds` and, if it has structure worth editing, a mutator in :mod:`mutate`.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import mutate as m
import seeds as s

Weighted = Tuple[Tuple[m.Mutator, float], ...]


@dataclass(frozen=True)
class Variant:
    name: str
    filename: str  # seed file name; mutated inputs keep its extension (".weights.h5", ".pth", ...)
    build: Callable[[str, str], List[s.Span]]
    mutators: Weighted
    needs: Tuple[str, ...] = ()  # modules needed to *load* this variant (beyond the format's)

    @property
    def ext(self) -> str:
        return self.filename[self.filename.index("."):]


@dataclass(frozen=True)
class Format:
    name: str  # key of mobilenet_fast.importers.FORMATS, or "int8" / "tflite_int8"
    importer: str  # module that must exist for the format to be fuzzed
    needs: Tuple[str, ...]  # modules the importer needs for every variant
    variants: Tuple[Variant, ...]


FORMATS: Dict[str, Format] = {f.name: f for f in [
    Format("ours", "mobilenet_fast.weights", ("safetensors",), (
        Variant("classifier", "ours.safetensors", s.build_ours, ((m.safetensors_edit, 1.0),)),
        Variant("features", "ours-features.safetensors", s.build_ours, ((m.safetensors_edit, 1.0),)),
    )),
    # Our int8 files: loaded with mobilenet_fast.load() (see worker.check), then run once.
    Format("int8", "mobilenet_fast.qweights", ("safetensors",), (
        Variant("classifier", "int8.safetensors", s.build_int8, ((m.safetensors_edit, 1.0), (m.qtensor_edit, 2.0))),
        Variant("features", "int8-features.safetensors", s.build_int8,
                ((m.safetensors_edit, 1.0), (m.qtensor_edit, 2.0))),
    )),
    # .tflite: float files through import_weights; full-integer int8 ones through mobilenet_fast.load
    # (as int8 models, then run once like our int8 files).
    Format("tflite", "mobilenet_fast.importers.tflite", ("tflite",), (
        Variant("float32", "model.tflite", s.build_tflite, ()),
        Variant("float16", "model-f16.tflite", s.build_tflite, ()),
    )),
    Format("tflite_int8", "mobilenet_fast.importers.tflite", ("tflite",), (
        Variant("int8", "model-int8.tflite", s.build_tflite, ()),
        Variant("int8_floatio", "model-int8-floatio.tflite", s.build_tflite, ()),
        Variant("uint8", "model-uint8.tflite", s.build_tflite, ()),  # legacy layout: weight zero points
    )),
    # QDQ-quantised ONNX: loaded with mobilenet_fast.load as an int8 model, then run once.
    Format("onnx_int8", "mobilenet_fast.importers.onnx_qdq", ("onnx",), (
        Variant("qdq", "model-qdq.onnx", s.build_onnx_qdq, ((m.onnx_edit, 1.0),)),
        Variant("qop", "model-qop.onnx", s.build_onnx_qdq, ((m.onnx_edit, 1.0),)),
    )),
    Format("pb", "mobilenet_fast.importers.tf_graphdef", ("google.protobuf", "tensorboard"), (
        Variant("content", "graph.pb", s.build_pb, ((m.graphdef_edit, 1.0),)),
        Variant("float_val", "graph-float-val.pb", s.build_pb, ((m.graphdef_edit, 1.0),)),
    )),
    Format("keras", "mobilenet_fast.importers.keras_h5", ("h5py",), (
        Variant("archive", "model.keras", s.build_keras, ((m.keras_archive_edit, 3.0), (m.zip_central_edit, 1.0))),
        Variant("legacy", "model.h5", s.build_keras, ((m.hdf5_edit, 1.0),)),
        Variant("weights", "model.weights.h5", s.build_keras, ((m.hdf5_edit, 1.0),)),
    )),
    Format("torch", "mobilenet_fast.importers.torch_state", ("safetensors",), (
        Variant("zip", "timm.pth", s.build_torch, ((m.torch_zip_edit, 3.0), (m.zip_central_edit, 1.0)), ("torch",)),
        Variant("legacy", "timm-legacy.pth", s.build_torch, ((m.torch_legacy_edit, 1.0),), ("torch",)),
        Variant("safetensors", "timm.safetensors", s.build_torch, ((m.safetensors_edit, 1.0),)),
    )),
    Format("onnx", "mobilenet_fast.importers.onnx_graph", ("onnx",), (
        Variant("bn", "model.onnx", s.build_onnx, ((m.onnx_edit, 1.0),)),
        Variant("folded", "model-folded.onnx", s.build_onnx, ((m.onnx_edit, 1.0),)),
    )),
]}


def missing(modules: Tuple[str, ...]) -> Optional[str]:
    """The first of ``modules`` that cannot be imported here, or None."""
    for name in modules:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except (ImportError, ValueError):
            return name
    return None


def unavailable(fmt: Format, variant: Optional[Variant] = None) -> Optional[str]:
    """Why ``fmt`` (or one of its variants) cannot be fuzzed here, or None."""
    gone = missing((fmt.importer,))
    if gone:
        return f"importer module {gone} is not installed (not on this branch yet?)"
    gone = missing(fmt.needs + (variant.needs if variant else ()))
    return f"needs the {gone!r} package" if gone else None
