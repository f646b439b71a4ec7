"""Importers: map foreign MobileNetV1 files onto our canonical tensors.

One module per source format. Each returns a :class:`mobilenet_fast.weights.WeightSet` and raises
:class:`mobilenet_fast.errors.ImportFormatError` when the file is not a MobileNetV1 it can map.
The heavy libraries a format needs are imported lazily, inside the import function, so importing
this package costs nothing.

========  ==========================================  ============================================
format    files                                       module (extra it needs)
========  ==========================================  ============================================
``ours``  ``.safetensors`` with our metadata          :mod:`mobilenet_fast.weights`
``pb``    ``.pb`` TF-slim frozen GraphDef             :mod:`.tf_graphdef` (``tf``)
``keras`` ``.h5``, ``.keras`` keras.applications      :mod:`.keras_h5` (``keras``: h5py)
``onnx``  ``.onnx``                                   :mod:`.onnx_graph` (``onnx``)
``torch`` ``.pth``, ``.pt``, ``.bin``, ``.safetensors``  :mod:`.torch_state` (torch for pickles)
          (timm ``mobilenetv1_*`` state dicts)
``tflite`` ``.tflite`` float32 / float16 / int8       :mod:`.tflite` (``tflite``; int8 files: see
                                                      ``import_tflite_int8`` and ``mobilenet_fast.load``)
(int8)    ``.onnx`` quantised in QDQ form              :mod:`.onnx_qdq` (``onnx``; read by ``mobilenet_fast.load``
                                                      as an int8 model: ``import_onnx_int8``)
========  ==========================================  ============================================

:func:`detect_format` picks the format from the extension (a ``.safetensors`` file is ours when its
metadata says so, else a timm state dict); :func:`import_weights` reads any of them.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Callable, Dict, Optional, Tuple, Union

from ..errors import ImportFormatError, InputError
from ..weights import FORMAT_NAME, WeightSet
from .tf_graphdef import import_tf_graphdef

__all__ = ["FORMATS", "EXTENSIONS", "detect_format", "import_weights", "import_tf_graphdef"]

PathLike = Union[str, "os.PathLike[str]"]

#: format -> (module, function, description)
FORMATS: Dict[str, Tuple[str, str, str]] = {
    "ours": ("mobilenet_fast.weights", "load_weights", "mobilenet-fast .safetensors"),
    "pb": ("mobilenet_fast.importers.tf_graphdef", "import_tf_graphdef", "TensorFlow frozen GraphDef (TF-slim)"),
    "keras": ("mobilenet_fast.importers.keras_h5", "import_keras", "Keras keras.applications.MobileNet (.h5/.keras)"),
    "onnx": ("mobilenet_fast.importers.onnx_graph", "import_onnx", "ONNX graph"),
    "torch": ("mobilenet_fast.importers.torch_state", "import_torch", "PyTorch/timm state dict"),
    "tflite": ("mobilenet_fast.importers.tflite", "import_tflite", "TensorFlow Lite flatbuffer (.tflite)"),
}

#: file extension -> format (``.safetensors`` is resolved by :func:`detect_format`)
EXTENSIONS: Dict[str, str] = {
    ".pb": "pb",
    ".h5": "keras",
    ".hdf5": "keras",
    ".keras": "keras",
    ".onnx": "onnx",
    ".pth": "torch",
    ".pt": "torch",
    ".bin": "torch",
    ".tflite": "tflite",
}


def _safetensors_is_ours(path: str) -> bool:
    """True when the safetensors header's ``__metadata__.format`` names our format."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return True  # let our loader explain what is wrong
            n = int.from_bytes(head, "little")
            if n > 100 << 20:
                return True
            header = json.loads(f.read(n))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurd nesting
        return True
    if not isinstance(header, dict):
        return True
    meta = header.get("__metadata__")
    if isinstance(meta, dict) and meta.get("format") == FORMAT_NAME:
        return True
    # A header with our metadata key missing: ours if it uses our tensor names.
    return "stem.conv.weight" in header


def detect_format(path: PathLike) -> str:
    """The format of ``path`` (a key of :data:`FORMATS`) from its extension and, for
    ``.safetensors``, its metadata. Raises :class:`InputError` for an unknown extension."""
    p = os.fspath(path)
    ext = os.path.splitext(p)[1].lower()
    if ext == ".safetensors":
        return "ours" if _safetensors_is_ours(p) else "torch"
    if ext in EXTENSIONS:
        return EXTENSIONS[ext]
    known = ", ".join(sorted(set(EXTENSIONS) | {".safetensors"}))
    raise InputError(f"cannot tell the format of {p!r} from its extension (known: {known}); "
                     f"pass the format explicitly (one of {', '.join(FORMATS)})")


def _importer(fmt: str) -> Callable[[str], WeightSet]:
    if fmt not in FORMATS:
        raise InputError(f"unknown weight format {fmt!r}; expected one of {', '.join(FORMATS)}")
    module, func, _ = FORMATS[fmt]
    return getattr(importlib.import_module(module), func)  # type: ignore[no-any-return]


def import_weights(path: PathLike, fmt: Optional[str] = None) -> WeightSet:
    """Read MobileNetV1 weights from any supported format (``fmt`` = a key of :data:`FORMATS`,
    default: :func:`detect_format`). Raises FileNotFoundError, :class:`ImportFormatError` /
    :class:`WeightFileError` for files that cannot be mapped, :class:`MissingDependencyError` when
    the format's optional library is not installed."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"model file not found: {p}")
    if os.path.isdir(p):
        raise ImportFormatError(f"{p} is a directory, not a weight file")
    return _importer(fmt or detect_format(p))(p)
