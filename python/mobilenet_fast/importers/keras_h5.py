"""Import a Keras ``keras.applications.MobileNet`` saved as ``.keras``, legacy ``.h5`` or bare weights.

Three containers are read (with :mod:`h5py` and :mod:`zipfile` only; Keras itself is not needed):

``.keras`` (Keras 3 ``model.save("m.keras")``)
    a zip archive holding ``config.json`` (the model's architecture) and ``model.weights.h5``;
``.weights.h5`` (Keras 3 ``model.save_weights("m.weights.h5")``)
    that same HDF5 weights file on its own, without any architecture;
``.h5`` / ``.hdf5`` (legacy HDF5, ``model.save("m.h5")`` in Keras 3 or tf.keras 2.x)
    an HDF5 file whose root attribute ``model_config`` is the architecture (JSON) and whose group
    ``model_weights`` holds the weights; a tf.keras 2.x ``save_weights("m.h5")`` file is the same
    without ``model_config``, with the layer groups at the root.

Inside the Keras 3 weights file every layer's variables sit at ``layers/<key>/vars/0, 1, ...`` where
``<key>`` is the snake-cased class name made unique by a counter in ``model.layers`` order
(``conv2d``, ``conv2d_1``, ..., ``depthwise_conv2d_12``, ``batch_normalization_26``). Keras loads
weights by these paths, and so does the importer: a key's layer is found from the layer order in
``config.json``, or, for a bare weights file, from the fixed layer order of
``keras.applications.MobileNet`` (``conv2d`` = conv1, ``conv2d_k`` = conv_pw_k, ``conv2d_14`` =
conv_preds, ``depthwise_conv2d_k`` = conv_dw_{k+1}, ...). (Recent Keras also stores the layer's
name as a ``name`` attribute of each ``vars`` group; it is not read: a variable-length string
attribute of a damaged file is one of the places where libhdf5 itself can crash, and the paths say
the same.) Variables come in creation order: ``kernel`` then ``bias``;
BatchNorm ``gamma, beta, moving_mean, moving_variance`` (without ``gamma`` if ``scale=False``,
without ``beta`` if ``center=False``). In a legacy ``.h5`` every layer group lists its datasets in
the attribute ``weight_names`` (``conv1_bn/gamma`` in Keras 3, ``conv1_bn/gamma:0`` in tf.keras
2.x) and the variables are matched by those names, in that order.

The layers of ``keras.applications.MobileNet`` (Keras 3 and tf.keras 2.x use the same names) and
the canonical tensors of :mod:`mobilenet_fast.weights` they become::

    conv1        Conv2D 3x3/2, no bias   kernel [3, 3, 3, C0]     -> stem.conv.weight
    conv1_bn     BatchNormalization                               -> stem.bn.{gamma,beta,mean,var}
    conv_pad_{i} ZeroPadding2D((0,1),(0,1)) before each stride-2 depthwise layer (no weights)
    conv_dw_{i}  DepthwiseConv2D 3x3     kernel [3, 3, C, 1]      -> blocks.{i-1}.dw.weight [3, 3, C]
    conv_dw_{i}_bn                                                -> blocks.{i-1}.dw.bn.*
    conv_pw_{i}  Conv2D 1x1, no bias     kernel [1, 1, Cin, Cout] -> blocks.{i-1}.pw.weight [Cin, Cout]
    conv_pw_{i}_bn                                                -> blocks.{i-1}.pw.bn.*
    conv_preds   Conv2D 1x1 with bias    kernel [1, 1, C, N], [N] -> classifier.weight [C, N], .bias

(i = 1..13; the ReLU, pooling, dropout, reshape and softmax layers carry no weights). A model
built with ``include_top=False`` has no ``conv_preds`` and becomes a feature extractor
(``num_classes = 0``; our ``features()`` is its global-average-pooled output, i.e. Keras'
``pooling="avg"``). The configuration comes from the file where it has one:

* alpha from the stem's channel count (C0 / 32; if that does not reproduce every other layer's
  channel count under Keras' ``int(channels * alpha)`` rule, from the last block's, C / 1024);
  num_classes from ``conv_preds``;
* BatchNorm epsilon from the BatchNormalization layers' configs (Keras' default 1e-3 without a
  config). Layers that disagree are brought to the smallest epsilon by adding the difference to
  their moving variance, which computes exactly the same normalisation;
* the input resolution from the ``InputLayer``'s shape, 224 when it is not fixed (or unknown);
* the padding convention: Keras pads the stride-2 depthwise layers with ``ZeroPadding2D(((0, 1),
  (0, 1)))`` and then convolves ``valid`` (our ``keras`` convention, which pads the stem like
  TensorFlow's ``same``); a model whose stride-2 depthwise layers use ``padding="same"`` instead
  gets ``tf_same``. The two agree on even feature-map sizes. (Old keras-applications files pad
  the stem with a ``conv1_pad`` layer the same way; that is accepted, and agrees with ours on
  even input sizes.) A bare weights file gets the ``keras`` convention;
* the activation from the ReLU layers (``max_value=6`` -> ``relu6``, as in keras.applications;
  no ``max_value`` -> ``relu``); all of them must agree.

A bias on ``conv1``/``conv_dw_i``/``conv_pw_i`` (not in ``keras.applications``, but allowed by a
rebuilt model) is folded into the following BatchNorm's moving mean (``mean - bias``), which is
exact. Keras' ``preprocess_input`` for MobileNet maps 0..255 pixels to [-1, 1], i.e.
``(x - 127.5) / 127.5``.

Damaged files: a truncated file, a ``.keras`` archive whose bytes changed (zip CRC), missing or
extra layers, wrong shapes or dtypes, NaN/Inf and negative variances all raise
:class:`ImportFormatError`; sizes a file declares are checked against the bytes it has before
anything is read, and datasets whose bytes live in other files (HDF5 external or virtual storage,
which could name any path) are refused. libhdf5 itself is not hardened against arbitrary corruption of an HDF5 file's
internal structures: fuzzing (``fuzz/run.py``) finds damaged legacy ``.h5`` files that crash it
(SIGSEGV) or make it loop while reading their attributes, about one in 5,000. So the file is
parsed in a forked child process (:data:`ISOLATE_HDF5`; not on platforms without ``fork``) that
writes the result, pickled, to an anonymous temporary file; a child killed by a signal, or still
busy after :data:`HDF5_TIMEOUT` seconds, becomes an :class:`ImportFormatError`. This roughly
doubles the time of an import (measured with torch loaded in the caller: +45-60 ms on a 1.2 MB
alpha-0.25 file, +80-120 ms on a 17 MB alpha-1.0 file: the fork, copy-on-write faults in the child,
the pickle); set ``ISOLATE_HDF5 = False`` to read trusted files in-process.

Needs :mod:`h5py`, installed by ``pip install "mobilenet-fast[keras]"``.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import zipfile
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..architecture import BLOCK_CONFIG, MAX_ALPHA
from ..errors import ImportFormatError, InputError, MissingDependencyError, WeightFileError
from ..weights import ModelConfig, WeightSet, file_sha256
from ._common import checked_labels, checked_path, infer_alpha

__all__ = ["import_keras", "DEFAULT_BN_EPSILON", "DEFAULT_RESOLUTION", "INPUT_MEAN", "INPUT_STD", "ISOLATE_HDF5",
           "HDF5_TIMEOUT"]

PathLike = Union[str, "os.PathLike[str]"]

#: Parse files in a forked child (where ``os.fork`` exists), so a damaged file that crashes or hangs
#: libhdf5 (it is not hardened against arbitrary corruption) becomes an :class:`ImportFormatError`.
ISOLATE_HDF5 = True
#: Seconds the child may take before it is killed (a MobileNet's file takes well under one).
HDF5_TIMEOUT = 120.0
#: ``BatchNormalization(epsilon=...)`` default, used when the file carries no architecture.
DEFAULT_BN_EPSILON = 1e-3
#: Input size when the model's input shape is not fixed (or the file carries no architecture).
DEFAULT_RESOLUTION = 224
#: ``keras.applications.mobilenet.preprocess_input`` maps 0..255 pixels to [-1, 1].
INPUT_MEAN = (127.5, 127.5, 127.5)
INPUT_STD = (127.5, 127.5, 127.5)

_NUM_BLOCKS = len(BLOCK_CONFIG)
_WEIGHTS_MEMBER = "model.weights.h5"
_CONFIG_MEMBER = "config.json"
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_SIGNATURE = b"PK\x03\x04"
#: config.json is a few hundred KB for MobileNet; refuse to parse anything absurdly large.
_MAX_CONFIG_BYTES = 64 << 20
#: HDF5 datasets may be compressed; no float weights compress better than this.
_MAX_COMPRESSION = 1000
_BN_FIELDS = ("gamma", "beta", "mean", "var")
_BN_KERAS_NAMES = {"gamma": "gamma", "beta": "beta", "moving_mean": "mean", "moving_variance": "var"}
#: Weightless layer classes that may appear in a keras.applications.MobileNet.
_WEIGHTLESS = ("InputLayer", "ReLU", "Activation", "ZeroPadding2D", "Dropout", "Reshape",
               "GlobalAveragePooling2D", "Flatten")
_NESTED_MODELS = ("Functional", "Sequential", "Model")
_BLOCK_LAYER_RE = re.compile(r"conv_(dw|pw|pad)_(\d+)(_bn|_relu)?$")


def _load_h5py() -> Any:
    try:
        import h5py
    except ImportError as e:
        raise MissingDependencyError(
            f"reading Keras .h5/.keras files needs the 'h5py' package ({e}); install it with: "
            'pip install "mobilenet-fast[keras]"'
        ) from None
    return h5py


def _expected_layers(with_top: bool) -> List[str]:
    """Names of the weight-carrying layers of keras.applications.MobileNet, in model order."""
    names = ["conv1", "conv1_bn"]
    for i in range(1, _NUM_BLOCKS + 1):
        names += [f"conv_dw_{i}", f"conv_dw_{i}_bn", f"conv_pw_{i}", f"conv_pw_{i}_bn"]
    if with_top:
        names.append("conv_preds")
    return names


def _fallback_layer_name(key: str) -> Optional[str]:
    """Layer name of Keras 3 weights-file key ``key`` in keras.applications.MobileNet's layer order.

    Used only for a bare ``.weights.h5`` written by a Keras that did not store layer names.
    """
    m = re.fullmatch(r"(conv2d|depthwise_conv2d|batch_normalization)(?:_(\d+))?", key)
    if not m:
        return None
    kind, k = m.group(1), int(m.group(2) or 0)
    if kind == "conv2d":
        if k == 0:
            return "conv1"
        return f"conv_pw_{k}" if k <= _NUM_BLOCKS else ("conv_preds" if k == _NUM_BLOCKS + 1 else None)
    if kind == "depthwise_conv2d":
        return f"conv_dw_{k + 1}" if k < _NUM_BLOCKS else None
    if k == 0:
        return "conv1_bn"
    j = (k + 1) // 2
    if j > _NUM_BLOCKS:
        return None
    return f"conv_dw_{j}_bn" if k % 2 else f"conv_pw_{j}_bn"


def _snake_case(name: str) -> str:
    """Keras' ``naming.to_snake_case`` (``DepthwiseConv2D`` -> ``depthwise_conv2d``)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _text(value: Any) -> str:
    """An HDF5 string attribute (h5py returns str or bytes depending on how it was written)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value.item())
    return str(value)


def _pair(value: Any) -> Optional[Tuple[int, int]]:
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (int(value[0]), int(value[1]))
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    return None


class _Var:
    """One stored variable: where it is (for messages), its Keras name if known, the dataset."""

    def __init__(self, label: str, name: Optional[str], dataset: Any) -> None:
        self.label = label
        self.name = name
        self.dataset = dataset

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(int(s) for s in self.dataset.shape)


class _Reader:
    """The variables and (optional) architecture of one Keras file, with errors naming the file."""

    def __init__(self, where: str, budget: int) -> None:
        self.where = where
        self.budget = budget  # bytes of real storage behind the datasets
        self.kind = ""
        self.keras_version = ""
        self.layers: Dict[str, List[_Var]] = {}
        self.v3_entries: Dict[str, List[_Var]] = {}  # Keras 3 weights: key -> variables, named later
        self.v3_origin = ""
        self.config: Optional[List[Dict[str, Any]]] = None  # the model's layer list

    def error(self, msg: str) -> ImportFormatError:
        return ImportFormatError(f"{self.where}: {msg}")

    # -- architecture ------------------------------------------------------------------------------

    def set_config(self, text: Union[str, bytes], origin: str) -> None:
        try:
            cfg = json.loads(text)
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            raise self.error(f"{origin} is not valid JSON ({e})") from None
        if not isinstance(cfg, dict):
            raise self.error(f"{origin} is a JSON {type(cfg).__name__}, expected an object")
        cls = cfg.get("class_name")
        inner = cfg.get("config")
        layers = inner.get("layers") if isinstance(inner, dict) else None
        if not isinstance(layers, list):
            raise self.error(f"{origin} describes a {cls!r}, not a Functional or Sequential Keras model "
                             "with a layer list; not a keras.applications.MobileNet")
        out = []
        for i, layer in enumerate(layers):
            if not isinstance(layer, dict) or not isinstance(layer.get("config"), dict):
                raise self.error(f"{origin}: layer #{i} is not a JSON object with a 'config'")
            name = layer.get("name", layer["config"].get("name"))
            if not isinstance(name, str):
                raise self.error(f"{origin}: layer #{i} has no name")
            out.append({"class_name": str(layer.get("class_name")), "name": name, "config": layer["config"]})
        self.config = out

    def config_layer(self, name: str) -> Optional[Dict[str, Any]]:
        if self.config is None:
            return None
        for layer in self.config:
            if layer["name"] == name:
                return layer
        return None

    # -- Keras 3 weights file (model.weights.h5 / .weights.h5) -------------------------------------

    def read_v3_weights(self, h5: Any, h5py: Any, origin: str) -> None:
        """Index ``layers/<key>/vars/<i>``; the keys are given layer names by :meth:`name_v3_layers`."""
        group = h5["layers"]
        if not isinstance(group, h5py.Group):
            raise self.error(f"{origin}: 'layers' is not an HDF5 group")
        self.v3_origin = origin
        for key in group:
            entry = group[key]
            if not isinstance(entry, h5py.Group):
                continue
            if isinstance(entry.get("layers"), h5py.Group):
                raise self.error(f"{origin}: 'layers/{key}' is a nested model; save the MobileNet itself "
                                 "(not a model wrapping it) to import it")
            vars_ = entry.get("vars")
            if vars_ is None or not isinstance(vars_, h5py.Group):
                continue
            datasets = []
            for idx in sorted(vars_, key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s)):
                ds = vars_[idx]
                if not isinstance(ds, h5py.Dataset):
                    raise self.error(f"{origin}: 'layers/{key}/vars/{idx}' is not a dataset")
                datasets.append(_Var(f"layers/{key}/vars/{idx}", None, ds))
            if datasets:
                self.v3_entries[key] = datasets

    def name_v3_layers(self) -> None:
        """Layer name of each Keras 3 weights key, as Keras' loader pairs them: the config's layers
        in order, each keyed by its snake-cased class name plus a counter; without a config, the
        fixed layer order of keras.applications.MobileNet."""
        by_key: Dict[str, str] = {}
        if self.config is not None:
            used: Dict[str, int] = {}
            for layer in self.config:
                base = _snake_case(layer["class_name"])
                if base in used:
                    used[base] += 1
                    key = f"{base}_{used[base]}"
                else:
                    used[base] = 0
                    key = base
                by_key[key] = layer["name"]
        for key, datasets in self.v3_entries.items():
            if self.config is not None:
                name = by_key.get(key)
                if name is None:
                    raise self.error(f"{self.v3_origin}: weights 'layers/{key}' belong to no layer of the model's "
                                     f"config ({len(self.config)} layers); the archive's files do not match")
            else:
                name = _fallback_layer_name(key) or key
            self.layers[name] = datasets

    # -- legacy HDF5 (model.save("m.h5"), tf.keras save_weights("m.h5")) ---------------------------

    def read_legacy_weights(self, group: Any, h5py: Any, prefix: str) -> None:
        names = [_text(n) for n in np.asarray(group.attrs["layer_names"]).reshape(-1)]
        for name in names:
            if name not in group:
                raise self.error(f"layer {name!r} is listed in {prefix or '/'}'s layer_names but has no group "
                                 "(file damaged?)")
            lg = group[name]
            if not isinstance(lg, h5py.Group):
                raise self.error(f"'{prefix}{name}' is not an HDF5 group")
            wnames = [_text(n) for n in np.asarray(lg.attrs.get("weight_names", [])).reshape(-1)]
            datasets = []
            for wn in wnames:
                if wn not in lg or not isinstance(lg[wn], h5py.Dataset):
                    raise self.error(f"weight {wn!r} of layer {name!r} is listed but missing from '{prefix}{name}'")
                short = wn.rsplit("/", 1)[-1].split(":", 1)[0]
                datasets.append(_Var(f"{prefix}{name}/{wn}", short, lg[wn]))
            if datasets:
                self.layers[name] = datasets

    # -- values --------------------------------------------------------------------------------------

    def read(self, var: _Var, what: str) -> np.ndarray:
        """The float32 values of ``var``, checked against the storage the file really has."""
        ds = var.dataset
        if ds.dtype.kind != "f":
            raise self.error(f"{what} ({var.label}) has dtype {ds.dtype}, expected a float type")
        if ds.id.get_create_plist().get_external_count() or getattr(ds, "is_virtual", False):
            # HDF5 lets a dataset take its bytes from other files (any path); Keras never writes that.
            raise self.error(f"{what} ({var.label}) keeps its data in another file (HDF5 external or virtual "
                             "storage); refusing to read it")
        nbytes = int(np.prod(var.shape, dtype=np.int64)) * ds.dtype.itemsize
        limit = self.budget * (_MAX_COMPRESSION if ds.chunks else 1)  # only chunked data can be compressed
        if nbytes > limit:
            raise self.error(f"{what} ({var.label}) declares {nbytes} bytes of data but the file holds "
                             f"{self.budget} (truncated or damaged)")
        arr = np.asarray(ds[()], dtype=np.float32)
        return np.ascontiguousarray(arr.reshape(var.shape))


def _open_container(p: str, where: str, h5py: Any, opened: List[Any]) -> _Reader:
    """Identify the container of ``p`` and read its variable index and architecture.

    The h5py files it opens are appended to ``opened`` (the caller closes them, also on errors).
    """
    size = os.path.getsize(p)
    with open(p, "rb") as f:
        head = f.read(8)
    ext = os.path.splitext(p)[1].lower()
    if not head:
        raise ImportFormatError(f"{where}: file is empty, not a Keras model")
    reader = _Reader(where, size)
    if head.startswith(_ZIP_SIGNATURE) or (ext == ".keras" and zipfile.is_zipfile(p)):
        try:
            zf = zipfile.ZipFile(p)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as e:
            raise ImportFormatError(f"{where}: not a readable .keras zip archive; the file is truncated or "
                                    f"damaged ({e})") from None
        with zf:
            names = zf.namelist()
            if _WEIGHTS_MEMBER not in names:
                sharded = " (sharded weights are not supported)" if "model.weights.json" in names else ""
                raise ImportFormatError(f"{where}: the .keras archive has no {_WEIGHTS_MEMBER}{sharded}; "
                                        f"it holds {', '.join(names[:8]) or 'nothing'}")
            if _CONFIG_MEMBER in names:
                info = zf.getinfo(_CONFIG_MEMBER)
                if info.file_size > _MAX_CONFIG_BYTES:
                    raise ImportFormatError(f"{where}: {_CONFIG_MEMBER} declares {info.file_size} bytes; "
                                            "too large for a model description")
                reader.set_config(_read_member(zf, info, where, size), _CONFIG_MEMBER)
            if "metadata.json" in names and zf.getinfo("metadata.json").file_size < 1 << 20:
                try:
                    reader.keras_version = str(json.loads(zf.read("metadata.json")).get("keras_version", ""))
                except Exception:  # noqa: BLE001 - a damaged member (zlib.error...); only used in the provenance
                    pass
            info = zf.getinfo(_WEIGHTS_MEMBER)
            data = _read_member(zf, info, where, size)
        reader.kind = "Keras 3 .keras archive"
        reader.budget = len(data)
        try:
            h5 = h5py.File(io.BytesIO(data), "r")
        except (OSError, ValueError) as e:
            raise ImportFormatError(f"{where}: {_WEIGHTS_MEMBER} inside the archive is not a readable HDF5 "
                                    f"file ({e})") from None
        opened.append(h5)
        if "layers" not in h5:
            raise ImportFormatError(f"{where}: {_WEIGHTS_MEMBER} has no 'layers' group; not a Keras 3 weights file")
        reader.read_v3_weights(h5, h5py, _WEIGHTS_MEMBER)
        return reader

    if not (head == _HDF5_SIGNATURE or h5py.is_hdf5(p)):
        if ext == ".keras":
            raise ImportFormatError(f"{where}: not a zip archive; a .keras file is a zip of config.json and "
                                    f"{_WEIGHTS_MEMBER}")
        raise ImportFormatError(f"{where}: neither an HDF5 file (.h5) nor a zip archive (.keras); "
                                "not a Keras model file")
    try:
        h5 = h5py.File(p, "r")
    except (OSError, ValueError) as e:
        raise ImportFormatError(f"{where}: not a readable HDF5 file; it is truncated or damaged ({e})") from None
    opened.append(h5)
    if "keras_version" in h5.attrs:
        reader.keras_version = _text(h5.attrs["keras_version"])
    if "layers" in h5 and "layer_names" not in h5.attrs:
        reader.kind = "Keras 3 weights file"
        reader.read_v3_weights(h5, h5py, "the weights file")
        return reader
    if "model_weights" in h5:
        group, prefix = h5["model_weights"], "model_weights/"
        reader.kind = "legacy Keras HDF5 model"
    elif "layer_names" in h5.attrs:
        group, prefix = h5, ""
        reader.kind = "legacy Keras HDF5 weights file"
    else:
        keys = ", ".join(list(h5.keys())[:8]) or "none"
        raise ImportFormatError(f"{where}: HDF5 file holds neither Keras 3 weights ('layers/...') nor legacy "
                                f"Keras weights ('model_weights', 'layer_names'); its top-level keys: {keys}")
    if not isinstance(group, h5py.Group) or "layer_names" not in group.attrs:
        raise ImportFormatError(f"{where}: '{prefix or '/'}' has no 'layer_names' attribute; not a Keras HDF5 file")
    if "model_config" in h5.attrs:
        reader.set_config(_text(h5.attrs["model_config"]), "the 'model_config' attribute")
    reader.read_legacy_weights(group, h5py, prefix)
    return reader


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, archive_size: int) -> bytes:
    """Read one archive member, refusing sizes the archive cannot really hold."""
    if info.compress_size > archive_size:
        raise ImportFormatError(f"{where}: {info.filename} declares {info.compress_size} stored bytes but the "
                                f"archive is {archive_size} bytes (truncated)")
    if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
        raise ImportFormatError(f"{where}: {info.filename} is stored uncompressed but declares {info.file_size} "
                                f"bytes in {info.compress_size} (damaged archive)")
    if info.file_size > _MAX_COMPRESSION * max(info.compress_size, 1) + (1 << 20):
        raise ImportFormatError(f"{where}: {info.filename} declares {info.file_size} bytes from "
                                f"{info.compress_size} compressed; refusing to inflate it")
    try:
        return zf.read(info)
    except Exception as e:  # noqa: BLE001 - BadZipFile, zlib.error, lzma.LZMAError, EOFError...: all damage
        raise ImportFormatError(f"{where}: {info.filename} cannot be read from the archive; the file is "
                                f"truncated or damaged ({e})") from None


# -- architecture checks ---------------------------------------------------------------------------

def _check_architecture(r: _Reader) -> Tuple[str, str, Tuple[int, int], bool]:
    """Check the model's layer list; returns (padding, activation, resolution, has_top).

    BatchNorm options (epsilon, center, scale) are read per layer by :func:`_bn_options`.
    """
    assert r.config is not None
    layers = {layer["name"]: layer for layer in r.config}
    for layer in r.config:
        cls, name = layer["class_name"], layer["name"]
        if cls in _NESTED_MODELS:
            raise r.error(f"layer {name!r} is a nested {cls} model; save the MobileNet itself (not a model "
                          "wrapping it) to import it")
    if "conv1" not in layers:
        sample = ", ".join(layer["name"] for layer in r.config[:6])
        raise r.error(f"the model has no layer 'conv1' (the stem convolution); not a keras.applications."
                      f"MobileNet (its layers: {sample}{', ...' if len(r.config) > 6 else ''})")

    def cfg_of(name: str, cls: Union[str, Tuple[str, ...]]) -> Dict[str, Any]:
        layer = layers.get(name)
        classes = (cls,) if isinstance(cls, str) else cls
        if layer is None:
            raise r.error(f"the model has no layer {name!r}; not a keras.applications.MobileNet")
        if layer["class_name"] not in classes:
            raise r.error(f"layer {name!r} is a {layer['class_name']}, expected {' or '.join(classes)}")
        return layer["config"]  # type: ignore[no-any-return]

    def check_conv(name: str, cls: str, kernel: int, stride: int) -> str:
        c = cfg_of(name, cls)
        if _pair(c.get("kernel_size", kernel)) != (kernel, kernel):
            raise r.error(f"layer {name!r} has kernel_size {c.get('kernel_size')}, expected [{kernel}, {kernel}]")
        if _pair(c.get("strides", 1)) != (stride, stride):
            raise r.error(f"layer {name!r} has strides {c.get('strides')}, expected [{stride}, {stride}] "
                          "for this MobileNet layer")
        if _pair(c.get("dilation_rate", 1)) != (1, 1):
            raise r.error(f"layer {name!r} has dilation_rate {c.get('dilation_rate')}; dilated convolutions "
                          "are not supported")
        if c.get("groups", 1) != 1:
            raise r.error(f"layer {name!r} has groups={c.get('groups')}, expected 1")
        if cls == "DepthwiseConv2D" and c.get("depth_multiplier", 1) != 1:
            raise r.error(f"layer {name!r} has depth_multiplier={c.get('depth_multiplier')}, expected 1")
        if c.get("activation", "linear") not in ("linear", None):
            raise r.error(f"layer {name!r} has activation {c.get('activation')!r}, expected 'linear' "
                          "(MobileNet applies BatchNorm, then ReLU6)")
        if c.get("data_format", "channels_last") not in ("channels_last", "channels_first"):
            raise r.error(f"layer {name!r} has data_format {c.get('data_format')!r}")
        padding = c.get("padding", "valid")
        if padding not in ("same", "valid"):
            raise r.error(f"layer {name!r} has padding {padding!r}, expected 'same' or 'valid'")
        return str(padding)

    pad_layers = set()

    def explicit_pad(conv: str, pad_name: str) -> bool:
        """True when ``conv`` (``valid``) is preceded by ZeroPadding2D((0, 1), (0, 1)) called ``pad_name``."""
        pad_layers.add(pad_name)
        layer = layers.get(pad_name)
        if layer is None or layer["class_name"] != "ZeroPadding2D":
            raise r.error(f"layer {conv!r} has padding 'valid' but there is no ZeroPadding2D layer {pad_name!r} "
                          "before it; this is not keras.applications.MobileNet's padding")
        pads = layer["config"].get("padding")
        if not (isinstance(pads, (list, tuple)) and len(pads) == 2
                and all(isinstance(p, (list, tuple)) and list(p) == [0, 1] for p in pads)):
            raise r.error(f"layer {pad_name!r} pads {pads}, expected [[0, 1], [0, 1]] (bottom/right by one)")
        return True

    data_format = cfg_of("conv1", "Conv2D").get("data_format", "channels_last")
    stem_pad = check_conv("conv1", "Conv2D", 3, 2)
    if stem_pad == "valid":
        explicit_pad("conv1", "conv1_pad")
    explicit = []
    for i, (_, stride) in enumerate(BLOCK_CONFIG, start=1):
        pad = check_conv(f"conv_dw_{i}", "DepthwiseConv2D", 3, stride)
        if stride == 1:
            if pad != "same":
                raise r.error(f"layer 'conv_dw_{i}' has padding 'valid', expected 'same' for a stride-1 layer")
        elif pad == "valid":
            explicit.append(explicit_pad(f"conv_dw_{i}", f"conv_pad_{i}"))
        else:
            if f"conv_pad_{i}" in layers:
                raise r.error(f"layer 'conv_dw_{i}' pads 'same' after the explicit padding layer 'conv_pad_{i}'")
            explicit.append(False)
        check_conv(f"conv_pw_{i}", "Conv2D", 1, 1)
    if any(explicit) and not all(explicit):
        raise r.error("some stride-2 depthwise layers pad explicitly (ZeroPadding2D + 'valid') and others use "
                      "'same'; cannot represent the mix")
    padding = "keras" if all(explicit) else "tf_same"

    has_top = "conv_preds" in layers
    if has_top:
        check_conv("conv_preds", "Conv2D", 1, 1)

    # Activation after every conv: ReLU(max_value=6) in keras.applications.
    relus = ["conv1_relu"] + [f"conv_{k}_{i}_relu" for i in range(1, _NUM_BLOCKS + 1) for k in ("dw", "pw")]

    # Every layer must be one we know; weightless ones must not change what is computed.
    known = set(_expected_layers(has_top)) | pad_layers | set(relus)
    for layer in r.config:
        cls, name, c = layer["class_name"], layer["name"], layer["config"]
        if name in known:
            continue
        if cls == "BatchNormalization" or cls in ("Conv2D", "DepthwiseConv2D", "Dense"):
            m = _BLOCK_LAYER_RE.fullmatch(name)
            if m and not 1 <= int(m.group(2)) <= _NUM_BLOCKS:
                raise r.error(f"found layer {name!r}: a MobileNetV1 has exactly {_NUM_BLOCKS} depthwise-separable "
                              f"blocks (conv_dw_1 .. conv_dw_{_NUM_BLOCKS})")
            raise r.error(f"layer {name!r} ({cls}) is not part of keras.applications.MobileNet; cannot map it")
        if cls not in _WEIGHTLESS and cls not in ("GlobalMaxPooling2D",):
            raise r.error(f"layer {name!r} is a {cls}, which keras.applications.MobileNet does not have; "
                          "cannot map it")
        if cls == "GlobalMaxPooling2D":
            raise r.error(f"layer {name!r} is a GlobalMaxPooling2D (pooling='max'); mobilenet-fast computes "
                          "average-pooled features only (pooling='avg' or None)")
        if cls == "ZeroPadding2D":
            raise r.error(f"layer {name!r} (ZeroPadding2D) is not one of keras.applications.MobileNet's padding "
                          "layers (those come right before a stride-2 'valid' convolution)")
        if cls == "ReLU":
            raise r.error(f"layer {name!r} is an extra ReLU; keras.applications.MobileNet has exactly one after "
                          "each convolution")
        if cls == "Activation" and c.get("activation") not in ("linear", "softmax", None):
            raise r.error(f"layer {name!r} applies {c.get('activation')!r}; expected linear or softmax outside "
                          "the conv blocks")
    if has_top and not any(layer["class_name"] == "GlobalAveragePooling2D" for layer in r.config):
        raise r.error("the model has a classifier 'conv_preds' but no GlobalAveragePooling2D layer before it")

    activations = set()
    for name in relus:
        relu_layer = layers.get(name)
        if relu_layer is None:
            raise r.error(f"the model has no activation layer {name!r}; not a keras.applications.MobileNet")
        c = relu_layer["config"]
        if relu_layer["class_name"] == "ReLU":
            if c.get("negative_slope", 0.0) not in (0, 0.0, None) or c.get("threshold", 0.0) not in (0, 0.0, None):
                raise r.error(f"layer {name!r} is a leaky or thresholded ReLU; expected ReLU6")
            mv = c.get("max_value")
            if mv is None:
                activations.add("relu")
            elif isinstance(mv, (int, float)) and float(mv) == 6.0:
                activations.add("relu6")
            else:
                raise r.error(f"layer {name!r} clips at max_value={mv}; only ReLU6 (6.0) and plain ReLU "
                              "(no max_value) are supported")
        elif relu_layer["class_name"] == "Activation" and c.get("activation") in ("relu6", "relu"):
            activations.add(str(c.get("activation")))
        else:
            raise r.error(f"layer {name!r} is a {relu_layer['class_name']} ({c.get('activation', '')}), expected ReLU(6)")
    if len(activations) > 1:
        raise r.error("the model mixes ReLU and ReLU6 activations; cannot represent the mix")
    activation = activations.pop()

    resolution = _resolution(r, data_format)
    return padding, activation, resolution, has_top


def _resolution(r: _Reader, data_format: str) -> Tuple[int, int]:
    assert r.config is not None
    for layer in r.config:
        if layer["class_name"] != "InputLayer":
            continue
        c = layer["config"]
        shape = c.get("batch_shape", c.get("batch_input_shape"))
        if not isinstance(shape, (list, tuple)) or len(shape) != 4:
            raise r.error(f"input layer {layer['name']!r} has shape {shape}, expected [batch, height, width, 3]")
        h, w, ch = (shape[2], shape[3], shape[1]) if data_format == "channels_first" else (shape[1], shape[2], shape[3])
        if ch not in (3, None):
            raise r.error(f"input layer {layer['name']!r} has {ch} channels, expected 3 (RGB)")
        hw = [v if isinstance(v, int) and not isinstance(v, bool) else None for v in (h, w)]
        out = tuple(DEFAULT_RESOLUTION if v is None else v for v in hw)
        if not all(32 <= v <= 16384 for v in out):
            raise r.error(f"input layer {layer['name']!r} has size {h}x{w}; MobileNetV1 needs 32..16384 per side")
        return (int(out[0]), int(out[1]))
    return (DEFAULT_RESOLUTION, DEFAULT_RESOLUTION)


# -- mapping ---------------------------------------------------------------------------------------

def _fmt_shape(expected: Sequence[Optional[int]]) -> str:
    return "[" + ", ".join("C" if e is None else str(e) for e in expected) + "]"


class _Mapper:
    """Matches a layer's stored variables to their roles and checks shapes (without reading values)."""

    def __init__(self, r: _Reader) -> None:
        self.r = r

    def layer(self, name: str, what: str) -> List[_Var]:
        v = self.r.layers.get(name)
        if v is None:
            raise self.r.error(f"layer {name!r} ({what}) has no weights in the file; "
                               f"{_missing_hint(self.r, name)}")
        return v

    def conv(self, name: str, what: str, expected: Sequence[Optional[int]], note: str = "",
             bias_required: bool = False) -> Tuple[_Var, Optional[_Var]]:
        vars_ = self.layer(name, what)
        kernel: Optional[_Var] = None
        bias: Optional[_Var] = None
        if all(v.name is not None for v in vars_):
            for v in vars_:
                if v.name in ("kernel", "depthwise_kernel") and kernel is None:
                    kernel = v
                elif v.name == "bias" and bias is None:
                    bias = v
                else:
                    raise self.r.error(f"layer {name!r} has an unexpected weight {v.label!r}")
        else:
            if len(vars_) > 2:
                raise self.r.error(f"layer {name!r} has {len(vars_)} variables, expected a kernel and at most a bias")
            kernel = vars_[0]
            bias = vars_[1] if len(vars_) == 2 else None
        if kernel is None:
            raise self.r.error(f"layer {name!r} has no kernel")
        shape = kernel.shape
        if len(shape) != len(expected) or not all(e is None or e == s for e, s in zip(expected, shape)):
            raise self.r.error(f"layer {name!r}: kernel {kernel.label!r} has shape {list(shape)}, expected "
                               f"{_fmt_shape(expected)}{note}")
        n_out = shape[2] * shape[3] if name.startswith("conv_dw") else shape[3]  # depthwise: C x multiplier
        if bias is not None and bias.shape != (n_out,):
            raise self.r.error(f"layer {name!r}: bias {bias.label!r} has shape {list(bias.shape)}, expected [{n_out}]")
        if bias_required and bias is None:
            raise self.r.error(f"layer {name!r} has no bias")
        return kernel, bias

    def bn(self, name: str, channels: int, center: bool, scale: bool) -> Dict[str, _Var]:
        vars_ = self.layer(name, "BatchNormalization")
        out: Dict[str, _Var] = {}
        if all(v.name in _BN_KERAS_NAMES for v in vars_):
            for v in vars_:
                field = _BN_KERAS_NAMES[str(v.name)]
                if field in out:
                    raise self.r.error(f"layer {name!r} has two {v.name} weights")
                out[field] = v
        else:
            fields = [f for f, present in (("gamma", scale), ("beta", center), ("mean", True), ("var", True))
                      if present]
            if len(vars_) != len(fields):
                raise self.r.error(f"layer {name!r} has {len(vars_)} variables, expected {len(fields)} "
                                   f"({', '.join(fields)})")
            out = dict(zip(fields, vars_))
        for field in ("mean", "var"):
            if field not in out:
                raise self.r.error(f"layer {name!r} has no moving_{'mean' if field == 'mean' else 'variance'}")
        keras_names = {ours: theirs for theirs, ours in _BN_KERAS_NAMES.items()}
        for field, v in out.items():
            if v.shape != (channels,):
                raise self.r.error(f"layer {name!r}: {keras_names[field]} {v.label!r} has shape {list(v.shape)}, expected "
                                   f"[{channels}] (one per output channel of {name[:-3]})")
        return out


def _missing_hint(r: _Reader, name: str) -> str:
    m = _BLOCK_LAYER_RE.fullmatch(name)
    if m:
        kind = m.group(1)
        found = sum(1 for i in range(1, _NUM_BLOCKS + 1) if f"conv_{kind}_{i}" in r.layers)
        return (f"found {found} of the {_NUM_BLOCKS} {'depthwise' if kind == 'dw' else 'pointwise'} layers "
                f"conv_{kind}_1 .. conv_{kind}_{_NUM_BLOCKS}; not a complete keras.applications.MobileNet")
    return "not a keras.applications.MobileNet"


def _infer_alpha(r: _Reader, stem_c: int, pw_out: List[int]) -> float:
    """Width multiplier reproducing the observed channel counts (stem C0 / 32, else last C / 1024)."""
    m = infer_alpha(stem_c, pw_out)
    if isinstance(m, float):
        return m
    if m.basis == "too_wide":
        raise r.error(f"layer 'conv1' has {stem_c} filters, more than any MobileNet (alpha at most {MAX_ALPHA:g})")
    if m.layer == 0:
        raise r.error(f"layer 'conv1' has {stem_c} filters, expected {m.want} for a MobileNet with "
                      f"alpha={m.alpha:g} (from the {pw_out[-1]} filters of conv_pw_{_NUM_BLOCKS})")
    raise r.error(f"layer 'conv_pw_{m.layer}' has {m.got} filters (kernel [1, 1, Cin, {m.got}]), expected {m.want} "
                  f"for a MobileNet with alpha={m.alpha:g} (from the {stem_c} filters of conv1)")


def _bn_options(r: _Reader, name: str) -> Tuple[bool, bool, float]:
    """(center, scale, epsilon) of BatchNorm layer ``name`` from the config (Keras defaults without one)."""
    layer = r.config_layer(name) if r.config is not None else None
    if layer is None:
        if r.config is not None:
            raise r.error(f"the model has no layer {name!r}; not a keras.applications.MobileNet")
        return True, True, DEFAULT_BN_EPSILON
    if layer["class_name"] != "BatchNormalization":
        raise r.error(f"layer {name!r} is a {layer['class_name']}, expected BatchNormalization")
    c = layer["config"]
    eps = c.get("epsilon", DEFAULT_BN_EPSILON)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0:
        raise r.error(f"layer {name!r} has epsilon {eps!r}, expected a number >= 0")
    axis = c.get("axis", -1)
    if isinstance(axis, list) and len(axis) == 1:
        axis = axis[0]
    if axis not in (-1, 3, 1):
        raise r.error(f"layer {name!r} normalises axis {c.get('axis')}, expected the channel axis")
    if c.get("renorm"):
        raise r.error(f"layer {name!r} uses batch renormalization, which is not supported")
    return bool(c.get("center", True)), bool(c.get("scale", True)), float(eps)


def import_keras(path: PathLike, *, labels: Optional[Sequence[str]] = None,
                 source: Optional[str] = None) -> WeightSet:
    """Read a Keras ``keras.applications.MobileNet`` file (``.keras``, ``.h5``, ``.weights.h5``).

    ``labels`` (one name per class) is attached to the result; ``source`` replaces the default
    provenance string (the file's name, kind and sha256).

    The file is parsed in a forked child process where the platform can fork (see
    :data:`ISOLATE_HDF5`), so a file that crashes or hangs libhdf5 becomes an error instead of
    taking the calling process down.

    Raises :class:`FileNotFoundError` if ``path`` does not exist, :class:`ImportFormatError` naming
    the offending layer if the file is not a Keras MobileNet we can map (truncated, damaged, another
    architecture...), :class:`MissingDependencyError` if h5py is not installed, and
    :class:`InputError` if ``labels`` does not have one entry per class.
    """
    h5py = _load_h5py()
    p, where = checked_path(path, "Keras model file", "SavedModel directories are not supported; save the "
                                                      "model as .keras or .h5")
    if ISOLATE_HDF5 and hasattr(os, "fork"):
        return _import_in_child(p, where, h5py, labels, source)
    return _import(p, where, h5py, labels, source)


def _import(p: str, where: str, h5py: Any, labels: Optional[Sequence[str]], source: Optional[str]) -> WeightSet:
    opened: List[Any] = []
    try:
        reader = _open_container(p, where, h5py, opened)
        ws = _build(reader, p, where, labels, source)
    except (ImportFormatError, InputError, MissingDependencyError):
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError, AttributeError,
            zipfile.BadZipFile, EOFError, MemoryError) as e:
        raise ImportFormatError(f"{where}: could not be read as a Keras model; the file is damaged or truncated "
                                f"({type(e).__name__}: {e})") from None
    finally:
        for h5 in opened:
            try:
                h5.close()
            except Exception:  # pragma: no cover - closing a damaged file may fail too
                pass
    return ws


def _import_in_child(p: str, where: str, h5py: Any, labels: Optional[Sequence[str]],
                     source: Optional[str]) -> WeightSet:
    """:func:`_import` in a forked child that writes the WeightSet (or the error), pickled, to an
    anonymous temporary file the parent then reads; the child's end of a pipe closing tells the parent
    it is done (or dead), and lets it wait with a timeout.

    The child has the caller's privileges (this contains crashes, it is no sandbox), so the pickle
    it writes is as trustworthy as the caller itself. It leaves with ``os._exit``, never running the
    parent's exit handlers (which could flush the parent's open files). If fork is impossible (no
    memory to copy the page tables, say), the file is read in this process.
    """
    import faulthandler
    import gc
    import pickle
    import select
    import signal
    import tempfile

    try:
        out = tempfile.TemporaryFile()
        rfd, wfd = os.pipe()
    except OSError:
        return _import(p, where, h5py, labels, source)
    with out:
        try:
            pid = os.fork()
        except OSError:
            os.close(rfd)
            os.close(wfd)
            return _import(p, where, h5py, labels, source)
        if pid == 0:  # child
            status = 0
            try:
                # A collection would walk (and so copy-on-write) every object of the parent's heap; the
                # child lives for one file. Its crash is reported as an error, without a "Fatal Python
                # error" dump on the caller's stderr (set ISOLATE_HDF5 = False to debug one in-process).
                gc.disable()
                faulthandler.disable()
                os.close(rfd)
                try:
                    result: Tuple[str, Any] = ("ok", _import(p, where, h5py, labels, source))
                except BaseException as e:  # noqa: B902 - written for the parent, which raises it
                    result = ("error", e)
                try:
                    pickle.dump(result, out, protocol=pickle.HIGHEST_PROTOCOL)
                except Exception:  # noqa: BLE001 - an exception that cannot be pickled
                    out.seek(0)
                    out.truncate()
                    pickle.dump(("error", ImportFormatError(f"{where}: {type(result[1]).__name__}: {result[1]}")), out)
                out.flush()
            except BaseException:  # noqa: B902
                status = 1
            finally:
                os._exit(status)
        os.close(wfd)
        try:  # the pipe reaches end-of-file when the child exits, whichever way
            ready, _, _ = select.select([rfd], [], [], HDF5_TIMEOUT)
            if not ready:
                os.kill(pid, signal.SIGKILL)
        finally:
            os.close(rfd)
        _, wait_status = os.waitpid(pid, 0)
        if not ready:
            raise ImportFormatError(f"{where}: the HDF5 library did not finish reading the file within "
                                    f"{HDF5_TIMEOUT:g} s (it loops on some damaged files); the file is corrupt")
        if os.WIFSIGNALED(wait_status):
            sig = os.WTERMSIG(wait_status)
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = str(sig)
            raise ImportFormatError(f"{where}: the file crashed the HDF5 library while being read (signal {name}); "
                                    "it is corrupt")
        try:
            out.seek(0)
            kind, value = pickle.load(out)
        except Exception:  # noqa: BLE001 - the child failed before writing everything
            raise ImportFormatError(f"{where}: reading the file failed in the child process (exit status "
                                    f"{os.WEXITSTATUS(wait_status) if os.WIFEXITED(wait_status) else wait_status}); "
                                    "it is probably corrupt") from None
    if kind == "error":
        raise value
    return value  # type: ignore[no-any-return]


def _build(r: _Reader, p: str, where: str, labels: Optional[Sequence[str]], source: Optional[str]) -> WeightSet:
    if r.config is not None:
        padding, activation, resolution, has_top = _check_architecture(r)
    else:  # keras.applications.MobileNet's choices
        padding, activation, resolution = "keras", "relu6", (DEFAULT_RESOLUTION, DEFAULT_RESOLUTION)
    r.name_v3_layers()
    if r.config is None:
        if "conv1" not in r.layers:
            sample = ", ".join(list(r.layers)[:6])
            raise r.error(f"no weights for layer 'conv1' (the stem convolution); not a keras.applications."
                          f"MobileNet (layers with weights: {sample or 'none'})")
        has_top = "conv_preds" in r.layers

    # Weight-carrying layers: exactly those of keras.applications.MobileNet.
    expected = _expected_layers(has_top)
    extra = [name for name in r.layers if name not in expected]
    if extra:
        name = extra[0]
        m = _BLOCK_LAYER_RE.fullmatch(name)
        if m and not 1 <= int(m.group(2)) <= _NUM_BLOCKS:
            raise r.error(f"found layer {name!r}: a MobileNetV1 has exactly {_NUM_BLOCKS} depthwise-separable "
                          f"blocks (conv_dw_1 .. conv_dw_{_NUM_BLOCKS})")
        raise r.error(f"layer {name!r} has weights ({r.layers[name][0].label}) but is not part of "
                      "keras.applications.MobileNet; cannot map it")
    mp = _Mapper(r)

    # -- shapes first (nothing is read yet), alpha from the channel chain --------------------------
    stem_k, stem_b = mp.conv("conv1", "stem convolution", (3, 3, 3, None), " (HWIO, 3x3 kernel over RGB)")
    stem_c = stem_k.shape[3]
    if stem_c < 1:
        raise r.error(f"layer 'conv1' has no filters ({stem_k.label!r} has shape {list(stem_k.shape)})")
    for i in range(1, _NUM_BLOCKS + 1):  # report the first missing layer in model order
        mp.layer(f"conv_dw_{i}", "depthwise convolution")
        mp.layer(f"conv_pw_{i}", "pointwise convolution")
    pw_out = []
    for i in range(1, _NUM_BLOCKS + 1):
        k = r.layers[f"conv_pw_{i}"][0]
        kernel = next((v for v in r.layers[f"conv_pw_{i}"] if v.name == "kernel"), k)
        if len(kernel.shape) != 4:
            raise r.error(f"layer 'conv_pw_{i}': kernel {kernel.label!r} has shape {list(kernel.shape)}, expected "
                          "[1, 1, Cin, Cout]")
        pw_out.append(kernel.shape[3])
    alpha = _infer_alpha(r, stem_c, pw_out)

    convs: List[Tuple[str, str, _Var, Optional[_Var], int]] = [("stem", "conv1", stem_k, stem_b, stem_c)]
    c = stem_c
    for i in range(1, _NUM_BLOCKS + 1):
        dk, db = mp.conv(f"conv_dw_{i}", "depthwise convolution", (3, 3, c, 1),
                         f" ({c} channels come out of the previous layer; depth_multiplier 1)")
        cout = pw_out[i - 1]
        pk, pb = mp.conv(f"conv_pw_{i}", "pointwise convolution", (1, 1, c, cout),
                         f" ({c} channels come out of conv_dw_{i})")
        convs.append((f"blocks.{i - 1}.dw", f"conv_dw_{i}", dk, db, c))
        convs.append((f"blocks.{i - 1}.pw", f"conv_pw_{i}", pk, pb, cout))
        c = cout
    num_classes = 0
    if has_top:
        fk, fb = mp.conv("conv_preds", "classifier", (1, 1, c, None), f" ({c} features come out of the last block)")
        num_classes = fk.shape[3]
        if num_classes < 1:
            raise r.error(f"layer 'conv_preds' has no classes ({fk.label!r} has shape {list(fk.shape)})")
    bns = []
    for canonical, name, _, _, channels in convs:
        center, scale, eps = _bn_options(r, f"{name}_bn")
        bns.append((canonical, name, mp.bn(f"{name}_bn", channels, center, scale), eps))

    # -- values ----------------------------------------------------------------------------------
    tensors: Dict[str, np.ndarray] = {}
    labels_of: Dict[str, str] = {}
    for (canonical, name, kernel, bias, channels), (_, _, bn, eps) in zip(convs, bns):
        w = r.read(kernel, f"kernel of layer {name!r}")
        if canonical.endswith(".dw"):
            w = w.reshape(3, 3, channels)
        elif canonical.endswith(".pw"):
            w = w.reshape(w.shape[2], w.shape[3])
        key = "stem.conv.weight" if canonical == "stem" else f"{canonical}.weight"
        tensors[key] = np.ascontiguousarray(w)
        labels_of[key] = kernel.label
        for field in _BN_FIELDS:
            v = bn.get(field)
            if v is None:
                arr = np.full(channels, 1.0 if field == "gamma" else 0.0, dtype=np.float32)
                labels_of[f"{canonical}.bn.{field}"] = f"{name}_bn (no {field})"
            else:
                arr = r.read(v, f"{field} of layer {name + '_bn'!r}")
                labels_of[f"{canonical}.bn.{field}"] = v.label
            tensors[f"{canonical}.bn.{field}"] = arr
        if bias is not None:  # conv bias b: BN(conv + b) = BN with moving mean (mean - b)
            b = r.read(bias, f"bias of layer {name!r}")
            tensors[f"{canonical}.bn.mean"] = (tensors[f"{canonical}.bn.mean"].astype(np.float64) - b).astype(np.float32)
    if has_top:
        tensors["classifier.weight"] = np.ascontiguousarray(r.read(fk, "kernel of layer 'conv_preds'")[0, 0])
        labels_of["classifier.weight"] = fk.label
        if fb is not None:
            tensors["classifier.bias"] = r.read(fb, "bias of layer 'conv_preds'")
            labels_of["classifier.bias"] = fb.label
        else:
            tensors["classifier.bias"] = np.zeros(num_classes, dtype=np.float32)

    for key, arr in tensors.items():
        if not np.isfinite(arr).all():
            raise r.error(f"{labels_of.get(key, key)!r} contains NaN or Inf")
        if key.endswith(".bn.var") and (arr < 0).any():
            raise r.error(f"{labels_of.get(key, key)!r} has negative variances")

    # One epsilon for the whole net: bring every layer to the smallest (exact: var + eps is what counts).
    bn_epsilon = min(eps for _, _, _, eps in bns)
    for canonical, _, _, eps in bns:
        if eps != bn_epsilon:
            var64 = tensors[f"{canonical}.bn.var"].astype(np.float64) + (eps - bn_epsilon)
            tensors[f"{canonical}.bn.var"] = var64.astype(np.float32)

    labels = checked_labels(labels, num_classes, where)
    if source is None:
        version = f", Keras {r.keras_version}" if r.keras_version else ""
        source = (f"{r.kind} {where} (sha256 {file_sha256(p)}{version}), keras.applications.MobileNet layers, "
                  f"imported by mobilenet_fast.importers.keras_h5")
    config = ModelConfig(alpha=alpha, resolution=resolution, num_classes=num_classes, padding=padding,
                         bn_epsilon=bn_epsilon, input_mean=INPUT_MEAN, input_std=INPUT_STD,
                         labels=labels, source=source, activation=activation)
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
    try:
        return WeightSet(config, tensors)
    except (WeightFileError, InputError) as e:
        raise r.error(f"the imported tensors do not form a valid MobileNetV1: {e}") from None
