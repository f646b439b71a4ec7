"""mobilenet-fast: a CPU inference engine for MobileNetV1 with hand-written C++ kernels.

Quick start::

    import mobilenet_fast
    model = mobilenet_fast.load()            # the shipped ImageNet MobileNetV1 1.0/224
    for p in model.classify("cat.jpg"):
        print(p.label, p.probability)
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence, Union

from . import _core
from .architecture import MobileNetV1
from .errors import (
    ImageReadError,
    ImportFormatError,
    InputError,
    MissingDependencyError,
    MobileNetFastError,
    WeightFileError,
)
from .preprocess import load_image, preprocess
from .runner import Model, Prediction, default_threads
from .quantization import QuantizedModel, quantize
from .qweights import file_precision, load_quantized
from .weights import ModelConfig, WeightSet, load_weights, save_weights

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "load",
    "load_weight_set",
    "default_model_path",
    "default_int8_model_path",
    "cpu_info",
    "default_threads",
    "preprocess",
    "load_image",
    "Model",
    "QuantizedModel",
    "quantize",
    "Prediction",
    "MobileNetV1",
    "ModelConfig",
    "WeightSet",
    "load_weights",
    "save_weights",
    "MobileNetFastError",
    "WeightFileError",
    "InputError",
    "ImportFormatError",
    "ImageReadError",
    "MissingDependencyError",
]

_MODELS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")
DEFAULT_MODEL = "mobilenet_v1_1.0_224.safetensors"
DEFAULT_INT8_MODEL = "mobilenet_v1_1.0_224_int8.safetensors"


def default_model_path() -> str:
    """Path of the shipped ImageNet MobileNetV1 1.0/224 weights."""
    return os.path.join(_MODELS_DIR, DEFAULT_MODEL)


def load_weight_set(path: Optional[Union[str, "os.PathLike[str]"]] = None, *,
                    fmt: Optional[str] = None) -> WeightSet:
    """Read weights from our ``.safetensors`` format or any importer's format (see
    :mod:`mobilenet_fast.importers`: TF ``.pb``, Keras ``.h5``/``.keras``, ``.onnx``, PyTorch/timm
    ``.pth``/``.pt``/``.safetensors``); ``fmt`` overrides the detection from the extension.
    ``None`` is the shipped default model."""
    if path is None:
        return load_weights(default_model_path())
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    if fmt is not None and not isinstance(fmt, str):
        raise InputError(f"fmt must be a format name (str) or None, got {type(fmt).__name__}")
    from .importers import import_weights

    return import_weights(path, fmt)


def default_int8_model_path() -> str:
    """Path of the shipped int8 MobileNetV1 1.0/224: the default model quantised by
    :func:`mobilenet_fast.quantize` (``scripts/make_int8_model.py`` made it)."""
    return os.path.join(_MODELS_DIR, DEFAULT_INT8_MODEL)


#: What ``precision=`` of :func:`load` accepts.
PRECISIONS = ("float32", "int8")


def load(path: Optional[Union[str, "os.PathLike[str]"]] = None, *, fmt: Optional[str] = None,
         labels: Optional[Union[Sequence[str], str, "os.PathLike[str]"]] = None, isa: Optional[str] = None,
         threads: Optional[int] = None, precision: Optional[str] = None) -> Model:
    """Load a model; with no path, the shipped ImageNet MobileNetV1 1.0/224 (``precision="int8"``:
    its int8 version).

    ``path`` may be our ``.safetensors`` (float32 or int8) or any importer's file (see
    :func:`load_weight_set`); ``fmt`` forces the format. An int8 file (ours, or a quantised
    ``.tflite``) gives a :class:`QuantizedModel`. ``precision`` (``"float32"`` or ``"int8"``; default: whatever the
    file holds) states what you expect: a file of the other precision raises :class:`InputError`
    (quantise float32 weights with :func:`quantize`). ``labels`` replaces the class names: a list
    with one name per class, or the path of a text file with one name per line.
    ``isa`` forces a kernel set ("scalar", "avx2", "avx512", "avx512_vnni", "neon", "neon_dotprod",
    "neon_i8mm"); by default the ``MOBILENET_FAST_ISA`` environment variable, else the best one this
    CPU supports.
    ``threads`` is how many threads one call uses (default: the physical cores this process may
    run on; 1 = no thread pool). A bad argument (unknown or unsupported ISA, also through the
    environment variable; threads outside 1..256) raises :class:`InputError`.
    """
    if precision is not None and precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)} or None, got {precision!r}")
    if path is None:
        path = default_int8_model_path() if precision == "int8" else default_model_path()
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    p = os.fspath(path)
    if labels is not None and isinstance(labels, (str, os.PathLike)):
        from .weights import read_labels

        labels = read_labels(labels)
    ours = fmt in (None, "ours") and p.lower().endswith(".safetensors")
    if ours and (file_precision(p) == "int8" or (precision == "int8" and not os.path.exists(p))):
        if precision == "float32":
            raise InputError(f"{p} holds an int8 model, not float32 weights")
        config, qnet = load_quantized(p)
        qmodel = QuantizedModel(config, qnet, isa=isa, threads=threads, path=p)
        return qmodel.with_labels(labels) if labels is not None else qmodel
    if fmt in (None, "tflite", "onnx") and not ours:
        from .qweights import read_int8

        found = read_int8(p, fmt)  # a quantised .tflite or ONNX file
        if found is not None:
            if precision == "float32":
                raise InputError(f"{p} holds a quantised (int8) model, not float32 weights")
            qmodel = QuantizedModel(found[0], found[1], isa=isa, threads=threads, path=p)
            return qmodel.with_labels(labels) if labels is not None else qmodel
    if precision == "int8":
        raise InputError(f"{p} holds float32 weights, not an int8 model: quantise them with "
                         "mobilenet_fast.quantize(model, calibration_images) or 'mobilenet-fast quantize'")
    weights = load_weight_set(path, fmt=fmt)
    if labels is not None:
        weights = weights.with_labels(labels)
    return Model(weights, isa=isa, threads=threads, path=p)


def cpu_info() -> Dict[str, Any]:
    """CPU architecture, detected SIMD features, compiled and supported ISAs, and the chosen one.

    Also ``variants``: every kernel variant of this build (name, family, ISA, tile, required
    features, whether this CPU has them), and ``kernels``: for each supported ISA, the variant it
    runs per kernel family.
    """
    info: Dict[str, Any] = dict(_core.cpu_info())
    try:
        info["selected_isa"] = _core.select_isa(None)
    except InputError as e:
        info["selected_isa"] = None
        info["error"] = str(e)
    return info
