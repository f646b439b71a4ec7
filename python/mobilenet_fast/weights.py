"""Our weight format: a ``.safetensors`` file with architecture metadata.

Tensors use one canonical naming (BatchNorm stored unfolded, as trained):

=============================  ====================  ==========================================
name                           shape                 meaning
=============================  ====================  ==========================================
``stem.conv.weight``           [3, 3, 3, C0]         HWIO
``blocks.{i}.dw.weight``       [3, 3, C]             depthwise, HWC
``blocks.{i}.pw.weight``       [Cin, Cout]           pointwise 1x1
``{layer}.bn.gamma|beta|mean|var``  [C]              BatchNorm of ``stem``, ``blocks.{i}.dw|pw``
``classifier.weight``          [C, num_classes]      dense (absent when num_classes = 0)
``classifier.bias``            [num_classes]
=============================  ====================  ==========================================

The ``__metadata__`` (string to string, values JSON-encoded) holds ``format``,
``format_version``, ``alpha``, ``resolution`` ([h, w]), ``num_classes``, ``padding``
(``tf_same``, ``symmetric`` or ``keras``), ``activation`` (``relu6`` or ``relu``; absent = relu6),
``bn_epsilon``, ``input_mean`` and ``input_std`` (per RGB channel,
applied to pixels in 0..255 as ``(x - mean) / std``), ``labels`` (list of class names or null)
and ``source`` (free text provenance).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .architecture import ACTIVATIONS, MAX_ALPHA, PADDING_CONVENTIONS, MobileNetV1
from .errors import InputError, WeightFileError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ModelConfig",
    "WeightSet",
    "expected_shapes",
    "save_weights",
    "load_weights",
    "file_sha256",
    "read_labels",
    "check_rgb",
]

FORMAT_NAME = "mobilenet-fast"
FORMAT_VERSION = 1
BN_FIELDS = ("gamma", "beta", "mean", "var")
PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class ModelConfig:
    """Everything besides the tensors that is needed to run a model."""

    alpha: float = 1.0
    resolution: Tuple[int, int] = (224, 224)
    num_classes: int = 1000
    padding: str = "tf_same"
    bn_epsilon: float = 1e-3
    input_mean: Tuple[float, float, float] = (127.5, 127.5, 127.5)
    input_std: Tuple[float, float, float] = (127.5, 127.5, 127.5)
    labels: Optional[Tuple[str, ...]] = None
    source: str = ""
    activation: str = "relu6"

    def architecture(self, resolution: Optional[Tuple[int, int]] = None) -> MobileNetV1:
        """The layer list for this config (at ``resolution`` if given, else the trained one)."""
        return MobileNetV1(self.alpha, tuple(resolution or self.resolution), self.num_classes, self.padding)  # type: ignore[arg-type]

    def label(self, index: int) -> str:
        """Name of class ``index`` (``class_<i>`` when the file carries no labels)."""
        if self.labels is not None:
            return self.labels[index]
        return f"class_{index}"

    def to_metadata(self) -> Dict[str, str]:
        """The safetensors ``__metadata__`` for this config (values JSON-encoded, ``format`` and ``source`` plain)."""
        meta: Dict[str, Any] = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "alpha": float(self.alpha),
            "resolution": [int(v) for v in self.resolution],
            "num_classes": int(self.num_classes),
            "padding": self.padding,
            "bn_epsilon": float(self.bn_epsilon),
            "input_mean": [float(v) for v in self.input_mean],
            "input_std": [float(v) for v in self.input_std],
            "labels": list(self.labels) if self.labels is not None else None,
        }
        if self.activation != "relu6":
            # Written only when it is not the default, so ReLU6 files keep the bytes (and sha256)
            # they had before the key existed.
            meta["activation"] = self.activation
        out = {k: json.dumps(v) for k, v in meta.items()}
        out["format"] = FORMAT_NAME  # plain string, readable with any safetensors tool
        out["source"] = self.source
        return out

    @classmethod
    def from_metadata(cls, meta: Optional[Mapping[str, str]], where: str = "weight file") -> "ModelConfig":
        if not meta:
            raise WeightFileError(f"{where}: no metadata; not a mobilenet-fast weight file")
        if meta.get("format") != FORMAT_NAME:
            raise WeightFileError(f"{where}: metadata 'format' is {meta.get('format')!r}, expected {FORMAT_NAME!r}")

        def get(key: str) -> Any:
            if key not in meta:
                raise WeightFileError(f"{where}: metadata key {key!r} is missing")
            try:
                return json.loads(meta[key])
            except (TypeError, ValueError, RecursionError):  # RecursionError: absurdly deep nesting
                raise WeightFileError(f"{where}: metadata key {key!r} is not valid JSON: {meta[key]!r}") from None

        version = get("format_version")
        if version != FORMAT_VERSION:
            raise WeightFileError(f"{where}: format_version {version!r} is not supported (this build reads {FORMAT_VERSION})")
        cfg = dict(
            alpha=get("alpha"), resolution=get("resolution"), num_classes=get("num_classes"),
            padding=get("padding"), bn_epsilon=get("bn_epsilon"), input_mean=get("input_mean"),
            input_std=get("input_std"), labels=get("labels"), source=meta.get("source", ""),
            # Added after format_version 1 shipped; files without it are ReLU6 models.
            activation=get("activation") if "activation" in meta else "relu6",
        )
        return _checked_config(cfg, where)


def _checked_config(cfg: Dict[str, Any], where: str) -> ModelConfig:
    def bad(key: str, why: str) -> WeightFileError:
        return WeightFileError(f"{where}: metadata {key!r} = {cfg[key]!r} {why}")

    def is_num(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    if not is_num(cfg["alpha"]) or not 0 < cfg["alpha"] <= MAX_ALPHA:
        raise bad("alpha", f"must be a number > 0 and <= {MAX_ALPHA:g}")
    res = cfg["resolution"]
    if isinstance(res, int) and not isinstance(res, bool):
        res = [res, res]
    if (not isinstance(res, (list, tuple)) or len(res) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 32 <= v <= 16384 for v in res)):
        raise bad("resolution", "must be [height, width] with ints in 32..16384")
    nc = cfg["num_classes"]
    if not isinstance(nc, int) or isinstance(nc, bool) or nc < 0:
        raise bad("num_classes", "must be an int >= 0")
    if cfg["padding"] not in PADDING_CONVENTIONS:
        raise bad("padding", f"must be one of {PADDING_CONVENTIONS}")
    if not is_num(cfg["bn_epsilon"]) or cfg["bn_epsilon"] < 0:
        raise bad("bn_epsilon", "must be a number >= 0")
    for key in ("input_mean", "input_std"):
        v = cfg[key]
        if not isinstance(v, (list, tuple)) or len(v) != 3 or not all(is_num(x) for x in v):
            raise bad(key, "must be a list of 3 finite numbers (R, G, B)")
        if key == "input_std" and any(x == 0 for x in v):
            raise bad(key, "must not contain 0")
    labels = cfg["labels"]
    if labels is not None:
        if not isinstance(labels, (list, tuple)) or not all(isinstance(s, str) for s in labels):
            raise bad("labels", "must be a list of strings or null")
        if len(labels) != nc:
            raise WeightFileError(f"{where}: metadata has {len(labels)} labels but num_classes = {nc}")
        labels = tuple(labels)
    if not isinstance(cfg["source"], str):
        raise bad("source", "must be a string")
    if cfg["activation"] not in ACTIVATIONS:
        raise bad("activation", f"must be one of {ACTIVATIONS}")
    return ModelConfig(
        alpha=float(cfg["alpha"]), resolution=(int(res[0]), int(res[1])), num_classes=nc,
        padding=cfg["padding"], bn_epsilon=float(cfg["bn_epsilon"]),
        input_mean=tuple(float(x) for x in cfg["input_mean"]),  # type: ignore[arg-type]
        input_std=tuple(float(x) for x in cfg["input_std"]),  # type: ignore[arg-type]
        labels=labels, source=cfg["source"], activation=cfg["activation"],
    )


def expected_shapes(config: ModelConfig) -> Dict[str, Tuple[int, ...]]:
    """Canonical tensor name -> shape for a model with this config, in network order."""
    arch = config.architecture()
    shapes: Dict[str, Tuple[int, ...]] = {}
    for layer in arch:
        if layer.kind == "avgpool":
            continue
        if layer.kind == "dense":
            shapes["classifier.weight"] = layer.weight_shape
            shapes["classifier.bias"] = (layer.out_channels,)
            continue
        prefix = "stem" if layer.kind == "conv3x3" else layer.name
        shapes[f"{prefix}.conv.weight" if layer.kind == "conv3x3" else f"{prefix}.weight"] = layer.weight_shape
        for f in BN_FIELDS:
            shapes[f"{prefix}.bn.{f}"] = (layer.out_channels,)
    return shapes


@dataclass
class WeightSet:
    """Canonical float32 tensors plus their :class:`ModelConfig`."""

    config: ModelConfig
    tensors: Dict[str, np.ndarray] = field(repr=False)

    def __post_init__(self) -> None:
        validate_tensors(self.tensors, self.config, "weights")

    def with_labels(self, labels: Optional[Sequence[str]]) -> "WeightSet":
        """The same weights with these class names (one per class; ``None`` removes them)."""
        if labels is not None:
            if isinstance(labels, str) or not all(isinstance(s, str) for s in labels):
                raise InputError("labels must be a sequence of strings")
            if len(labels) != self.config.num_classes:
                raise InputError(f"got {len(labels)} labels for a model with {self.config.num_classes} classes")
        cfg = replace(self.config, labels=tuple(labels) if labels is not None else None)
        return WeightSet(cfg, self.tensors)

    def __repr__(self) -> str:
        c = self.config
        n = sum(int(t.size) for t in self.tensors.values())
        return (f"WeightSet(alpha={c.alpha:g}, resolution={c.resolution[0]}x{c.resolution[1]}, "
                f"num_classes={c.num_classes}, padding={c.padding!r}, tensors={len(self.tensors)}, "
                f"values={n:,})")


def validate_tensors(tensors: Mapping[str, np.ndarray], config: ModelConfig, where: str) -> None:
    """Check names, shapes, dtypes and values; raise :class:`WeightFileError` naming the first problem."""
    if config.activation not in ACTIVATIONS:
        raise WeightFileError(f"{where}: unknown activation {config.activation!r}; expected one of {ACTIVATIONS}")
    shapes = expected_shapes(config)
    missing = [k for k in shapes if k not in tensors]
    if missing:
        raise WeightFileError(f"{where}: missing tensor {missing[0]!r} (expected shape {list(shapes[missing[0]])})"
                              + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    extra = sorted(k for k in tensors if k not in shapes)
    if extra:
        raise WeightFileError(f"{where}: unexpected tensor {extra[0]!r} for alpha={config.alpha:g}, "
                              f"num_classes={config.num_classes}")
    for name, shape in shapes.items():
        t = tensors[name]
        if not isinstance(t, np.ndarray):
            raise WeightFileError(f"{where}: tensor {name!r} is a {type(t).__name__}, expected a numpy array")
        if t.dtype != np.float32:
            raise WeightFileError(f"{where}: tensor {name!r} has dtype {t.dtype}, expected float32")
        if tuple(t.shape) != shape:
            raise WeightFileError(f"{where}: tensor {name!r} has shape {list(t.shape)}, expected {list(shape)}")
        if not np.isfinite(t).all():
            raise WeightFileError(f"{where}: tensor {name!r} contains NaN or Inf")
        if name.endswith(".bn.var") and (t < 0).any():
            raise WeightFileError(f"{where}: tensor {name!r} has negative variances")


def _canonical_header(blob: bytes) -> bytes:
    """Rewrite a safetensors blob's JSON header in a fixed key order.

    The safetensors library serialises ``__metadata__`` from a hash map, so its key order (and the
    file's bytes) changes from run to run. We re-emit the header with sorted metadata keys and the
    tensors in data order, padded with spaces to 8 bytes as the format allows; the tensor data and
    its offsets are untouched. Same weights -> same bytes -> a stable sha256.
    """
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    ordered: Dict[str, Any] = {}
    meta = header.pop("__metadata__", None)
    if meta is not None:
        ordered["__metadata__"] = dict(sorted(meta.items()))
    for name in sorted(header, key=lambda k: (header[k]["data_offsets"][0], k)):
        ordered[name] = header[name]
    text = json.dumps(ordered, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + blob[8 + n:]


def check_rgb(values: Any, what: str) -> Tuple[float, float, float]:
    """``values`` as three finite floats (R, G, B), else :class:`InputError` naming ``what``;
    ``what == "input_std"`` also refuses a 0."""
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise InputError(f"{what} must be 3 numbers (R, G, B), got {values!r}") from None
    if len(out) != 3 or not all(math.isfinite(v) for v in out):
        raise InputError(f"{what} must be 3 finite numbers (R, G, B), got {values!r}")
    if what == "input_std" and 0.0 in out:
        raise InputError(f"input_std must not contain 0, got {values!r}")
    return (out[0], out[1], out[2])


def read_labels(path: PathLike) -> List[str]:
    """Class names from a UTF-8 text file, one per line (blank lines at the end ignored)."""
    p = os.fspath(path)
    try:
        with open(p, encoding="utf-8") as f:
            lines = [line.rstrip("\r\n") for line in f]
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read labels file {p}: {e}") from None
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise InputError(f"labels file {p} is empty")
    return lines


def file_sha256(path: PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(os.fspath(path), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_weights(path: PathLike, weights: WeightSet) -> None:
    """Write ``weights`` as a mobilenet-fast ``.safetensors`` file (byte-for-byte deterministic)."""
    from safetensors.numpy import save

    validate_tensors(weights.tensors, weights.config, "weights")
    order = expected_shapes(weights.config)
    blob = save({k: np.ascontiguousarray(weights.tensors[k]) for k in order},
                metadata=weights.config.to_metadata())
    with open(os.fspath(path), "wb") as f:
        f.write(_canonical_header(blob))


def load_weights(path: PathLike) -> WeightSet:
    """Read and validate a mobilenet-fast ``.safetensors`` file.

    Raises :class:`FileNotFoundError` if it does not exist and :class:`WeightFileError`, naming
    exactly what is wrong, if it is not a valid weight file.
    """
    from safetensors import SafetensorError, safe_open

    p = os.fspath(path)
    where = os.path.basename(p)
    if not os.path.exists(p):
        raise FileNotFoundError(f"weight file not found: {p}")
    if os.path.isdir(p):
        raise WeightFileError(f"{p} is a directory, not a weight file")
    size = os.path.getsize(p)
    if size < 8:
        raise WeightFileError(f"{where}: file is {size} bytes, too short to be a safetensors file")
    with open(p, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
    if header_len > size - 8:
        raise WeightFileError(f"{where}: header declares {header_len} bytes but the file has {size - 8} after it "
                              "(truncated or not a safetensors file)")
    try:
        with safe_open(p, framework="numpy") as f:
            meta = f.metadata()
            config = ModelConfig.from_metadata(meta, where)
            precision = (meta or {}).get("precision", "float32")
            if precision != "float32":
                raise WeightFileError(
                    f"{where}: holds an {precision} model (metadata 'precision'), not float32 weights"
                    + ("; load it with mobilenet_fast.load()" if precision == "int8" else ""))
            shapes = expected_shapes(config)
            names = set(f.keys())
            for name, shape in shapes.items():
                if name not in names:
                    raise WeightFileError(f"{where}: missing tensor {name!r} (expected shape {list(shape)})")
                sl = f.get_slice(name)
                if sl.get_dtype() != "F32":
                    raise WeightFileError(f"{where}: tensor {name!r} has dtype {sl.get_dtype()}, expected F32")
                if tuple(sl.get_shape()) != shape:
                    raise WeightFileError(f"{where}: tensor {name!r} has shape {list(sl.get_shape())}, "
                                          f"expected {list(shape)}")
            extra = sorted(names - set(shapes))
            if extra:
                raise WeightFileError(f"{where}: unexpected tensor {extra[0]!r}")
            tensors = {name: np.array(f.get_tensor(name), dtype=np.float32, copy=True) for name in shapes}
    except SafetensorError as e:
        raise WeightFileError(f"{where}: not a valid safetensors file ({e})") from None
    except (OSError, ValueError, MemoryError) as e:
        if isinstance(e, WeightFileError):
            raise
        raise WeightFileError(f"{where}: could not be read ({type(e).__name__}: {e})") from None
    validate_tensors(tensors, config, where)  # values (NaN, negative variances), named after the file
    return WeightSet(config, tensors)
