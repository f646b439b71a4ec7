"""Our int8 weight file: a ``.safetensors`` with the quantised network of
:class:`mobilenet_fast.quantization.QuantizedNet`.

The ``__metadata__`` is that of a float32 file (:meth:`ModelConfig.to_metadata`: architecture,
input normalisation, labels, source) plus ``precision`` = ``"int8"`` and ``quantization`` (JSON:
the range method, whether bias correction was used, ``pair_limit`` (whether the GEMM weights were
quantised to keep ``|q[2j, n]| + |q[2j+1, n]| <= 128``) and the weights' ``rounding``, for
provenance only: a reader that needs the pair condition checks the weights, e.g.
:meth:`QuantizedNet.pairs_within_limit`; and ``input_rounding`` = ``"divide"`` for a model whose
input is quantised by division, as onnxruntime does (``QuantizedNet.input_divide``; absent: the
reciprocal multiply), and ``pool_rounding`` = ``"half_up"`` for a pool that rounds as TFLite's
quantised AVERAGE_POOL_2D (``QuantizedNet.pool_half_up``: the pool's output then has its input's
scale and zero point), which are arithmetic, not provenance). Tensors, in network
order, with ``{layer}`` = ``stem.conv``, ``blocks.{i}.dw``, ``blocks.{i}.pw`` (as in float32
files) and ``classifier``:

===============================  =========  ==============  =======================================
name                             dtype      shape           meaning
===============================  =========  ==============  =======================================
``input.scale``                  F64        [1]             uint8 quantisation of the normalised
``input.zero_point``             I32        [1]             input: ``x = scale * (q - zero_point)``
``{layer}.weight``               I8         float layout    per-output-channel symmetric, -127..127;
                                 or I16                     or code - zero point of weights that had
                                                            one (a legacy uint8 .tflite): -255..255,
                                                            at most 255 apart
``{layer}.weight_scale``         F32        [Cout]          ``w = weight_scale[c] * q``
``{layer}.bias``                 I32        [Cout]          at scale ``s_in * weight_scale[c]``
``{layer}.output_scale``         F64        [1]             uint8 quantisation of the layer's
``{layer}.output_zero_point``    I32        [1]             output (conv layers only)
``{layer}.clamp``                I32        [2]             output clamp in codes (ReLU6 folded)
``pool.output_scale``            F64        [1]             the global average pool's output
``pool.output_zero_point``       I32        [1]
``classifier.output_scale``      F64        [1]             optional, both or neither: the logits'
``classifier.output_zero_point`` I32        [1]             quantisation in the file a model was
                                                            imported from (a .tflite's int8 logits);
                                                            logits are then rounded onto that grid
===============================  =========  ==============  =======================================

A layer's input quantisation is the previous layer's output (the stem's is ``input.*``, the
classifier's is ``pool.*``), so the file cannot hold two disagreeing copies of it. Everything is
checked on load - names, dtypes, shapes, finite positive scales, zero points and clamps in
0..255, weights in -127..127, biases that leave the int32 accumulator room for any input (with
the channel's own weights) - and a
file that fails is a :class:`~mobilenet_fast.errors.WeightFileError` naming the tensor.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from .errors import WeightFileError
from .weights import ModelConfig, _canonical_header

__all__ = ["PRECISION_KEY", "file_precision", "save_quantized", "load_quantized", "quantized_tensors", "read_int8"]

PathLike = Union[str, "os.PathLike[str]"]
#: The metadata key naming a file's precision (absent: float32).
PRECISION_KEY = "precision"

if TYPE_CHECKING:  # no import cycle at run time: quantization imports this module
    from .quantization import QuantizedNet


def _prefix(kind: str, name: str) -> str:
    return "stem.conv" if kind == "conv3x3" else name


def _scalar(value: float) -> np.ndarray:
    return np.array([value], np.float64)


def _zp(value: int) -> np.ndarray:
    return np.array([value], np.int32)


def _weight(w: np.ndarray) -> np.ndarray:
    """A layer's weights as stored: int8, or int16 where they had a zero point (wider than int8)."""
    w = np.asarray(w)
    return np.ascontiguousarray(w, np.int8 if w.dtype == np.int8 else np.int16)


def quantized_tensors(qnet: "QuantizedNet") -> Dict[str, np.ndarray]:
    """The canonical tensors of a quantised network, in network order (see the module docstring)."""
    out: Dict[str, np.ndarray] = {"input.scale": _scalar(qnet.input.scale),
                                  "input.zero_point": _zp(qnet.input.zero_point)}
    for layer in qnet.layers:
        assert layer.output is not None
        p = _prefix(layer.spec.kind, layer.spec.name)
        out[f"{p}.weight"] = _weight(layer.weight)
        out[f"{p}.weight_scale"] = np.ascontiguousarray(layer.weight_scale, np.float32)
        out[f"{p}.bias"] = np.ascontiguousarray(layer.bias, np.int32)
        out[f"{p}.output_scale"] = _scalar(layer.output.scale)
        out[f"{p}.output_zero_point"] = _zp(layer.output.zero_point)
        out[f"{p}.clamp"] = np.array(layer.clamp, np.int32)
    out["pool.output_scale"] = _scalar(qnet.pool_output.scale)
    out["pool.output_zero_point"] = _zp(qnet.pool_output.zero_point)
    if qnet.classifier is not None:
        c = qnet.classifier
        out["classifier.weight"] = _weight(c.weight)
        out["classifier.weight_scale"] = np.ascontiguousarray(c.weight_scale, np.float32)
        out["classifier.bias"] = np.ascontiguousarray(c.bias, np.int32)
        if qnet.logits_output is not None:
            out["classifier.output_scale"] = _scalar(qnet.logits_output.scale)
            out["classifier.output_zero_point"] = _zp(qnet.logits_output.zero_point)
    return out


def save_quantized(path: PathLike, config: ModelConfig, qnet: "QuantizedNet") -> None:
    """Write an int8 model as our ``.safetensors`` (byte-for-byte deterministic)."""
    from safetensors.numpy import save

    tensors = quantized_tensors(qnet)
    _build(config, tensors, "model")  # never write a file we would refuse to read
    meta = config.to_metadata()
    meta[PRECISION_KEY] = "int8"
    meta["quantization"] = json.dumps({"method": qnet.method, "bias_correction": bool(qnet.bias_correction),
                                       **({"input_rounding": "divide"} if qnet.input_divide else {}),
                                       **({"pool_rounding": "half_up"} if qnet.pool_half_up else {}),
                                       "pair_limit": bool(qnet.pair_limit), "rounding": qnet.rounding})
    blob = save(tensors, metadata=meta)
    with open(os.fspath(path), "wb") as f:
        f.write(_canonical_header(blob))


def file_precision(path: PathLike) -> Optional[str]:
    """The ``precision`` in the metadata of a safetensors file (None if it has none or the header
    cannot be read: the loaders then explain what is wrong)."""
    try:
        with open(os.fspath(path), "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return None
            n = int.from_bytes(head, "little")
            if n > 100 << 20:
                return None
            header = json.loads(f.read(n))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    value = meta.get(PRECISION_KEY) if isinstance(meta, dict) else None
    return value if isinstance(value, str) else None


def read_int8(path: PathLike, fmt: Optional[str] = None) -> Optional[Tuple[ModelConfig, "QuantizedNet"]]:
    """``(config, qnet)`` when ``path`` holds an int8 model - our int8 ``.safetensors``, a
    quantised ``.tflite`` (:func:`mobilenet_fast.importers.tflite.import_tflite_int8`) or a QDQ
    ONNX file (:func:`mobilenet_fast.importers.onnx_qdq.import_onnx_int8`) - else None
    (float32 weights of any format, or a file the float loaders will explain). ``fmt`` as for
    :func:`mobilenet_fast.load` (None: from the extension)."""
    p = os.fspath(path)
    low = p.lower()
    if fmt in (None, "ours") and low.endswith(".safetensors"):
        return load_quantized(p) if file_precision(p) == "int8" else None
    if (fmt == "tflite" or (fmt is None and low.endswith(".tflite"))) and os.path.isfile(p):
        from .importers.tflite import import_tflite_int8, tflite_precision

        if tflite_precision(p) == "int8":
            return import_tflite_int8(p)
    if (fmt == "onnx" or (fmt is None and low.endswith(".onnx"))) and os.path.isfile(p):
        from .importers.onnx_qdq import import_onnx_int8, onnx_is_quantized

        if onnx_is_quantized(p):
            return import_onnx_int8(p)
    return None


#: dtype of each tensor kind, by name suffix, as safetensors names it and as numpy does.
_DTYPES = {"weight": ("I8", np.int8), "weight_scale": ("F32", np.float32), "bias": ("I32", np.int32),
           "output_scale": ("F64", np.float64), "output_zero_point": ("I32", np.int32), "clamp": ("I32", np.int32),
           "scale": ("F64", np.float64), "zero_point": ("I32", np.int32)}


def expected_quantized(config: ModelConfig, logits_quantized: bool = False) -> Dict[str, Tuple[Tuple[int, ...], str]]:
    """name -> (shape, safetensors dtype) of every tensor of an int8 file with this config
    (``logits_quantized``: with ``classifier.output_scale`` / ``output_zero_point``)."""
    shapes: Dict[str, Tuple[Tuple[int, ...], str]] = {"input.scale": ((1,), "F64"), "input.zero_point": ((1,), "I32")}
    for s in config.architecture():
        if s.kind == "avgpool":
            shapes["pool.output_scale"] = ((1,), "F64")
            shapes["pool.output_zero_point"] = ((1,), "I32")
            continue
        p = "classifier" if s.kind == "dense" else _prefix(s.kind, s.name)
        shapes[f"{p}.weight"] = (s.weight_shape, "I8")
        shapes[f"{p}.weight_scale"] = ((s.out_channels,), "F32")
        shapes[f"{p}.bias"] = ((s.out_channels,), "I32")
        if s.kind != "dense" or logits_quantized:
            shapes[f"{p}.output_scale"] = ((1,), "F64")
            shapes[f"{p}.output_zero_point"] = ((1,), "I32")
            if s.kind != "dense":
                shapes[f"{p}.clamp"] = ((2,), "I32")
    return shapes


def _logits_quantized(names: Any) -> bool:
    """Whether a file's tensors include the (optional) quantisation of the logits."""
    return "classifier.output_scale" in names or "classifier.output_zero_point" in names


def _build(config: ModelConfig, t: Mapping[str, np.ndarray], where: str) -> "QuantizedNet":
    """The QuantizedNet of validated tensors ``t``; :class:`WeightFileError` naming the first problem."""
    from .quantization import QLayer, QParams, QuantizedNet, logit_scale, overflowing_channel, requant_multiplier

    expected = expected_quantized(config, _logits_quantized(t))
    missing = [k for k in expected if k not in t]
    if missing:
        raise WeightFileError(f"{where}: missing tensor {missing[0]!r} (expected shape {list(expected[missing[0]][0])})"
                              + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    extra = sorted(k for k in t if k not in expected)
    if extra:
        raise WeightFileError(f"{where}: unexpected tensor {extra[0]!r} for alpha={config.alpha:g}, "
                              f"num_classes={config.num_classes}")
    for name, (shape, _) in expected.items():
        a = t[name]
        want = _DTYPES[name.rsplit(".", 1)[1]][1]
        if name.endswith(".weight") and isinstance(a, np.ndarray) and a.dtype == np.int16:
            want = np.int16  # weights that had a zero point (checked in weights() below)
        if not isinstance(a, np.ndarray) or a.dtype != want:
            got = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
            raise WeightFileError(f"{where}: tensor {name!r} has dtype {got}, expected {np.dtype(want)}")
        if tuple(a.shape) != shape:
            raise WeightFileError(f"{where}: tensor {name!r} has shape {list(a.shape)}, expected {list(shape)}")

    def bad(name: str, why: str) -> WeightFileError:
        return WeightFileError(f"{where}: tensor {name!r} {why}")

    def qparams(prefix: str, scale_key: str, zp_key: str) -> QParams:
        scale, zp = float(t[f"{prefix}.{scale_key}"][0]), int(t[f"{prefix}.{zp_key}"][0])
        # Bounded so that every ratio of two scales (the requantisation multipliers, the pool's
        # s_in / (H W s_out)) is a finite, non-zero float32.
        if not (np.isfinite(scale) and 1e-12 <= scale <= 1e12):
            raise bad(f"{prefix}.{scale_key}", f"is {scale!r}: an activation scale must be in 1e-12..1e12")
        if not 0 <= zp <= 255:
            raise bad(f"{prefix}.{zp_key}", f"is {zp}: a uint8 zero point must be in 0..255")
        return QParams(scale, zp)

    def weights(p: str, s: Any, qin: QParams) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        w, ws, b = t[f"{p}.weight"], t[f"{p}.weight_scale"], t[f"{p}.bias"]
        if w.dtype == np.int8 and (w == -128).any():
            raise bad(f"{p}.weight", "holds -128: int8 weights are symmetric, -127..127")
        if w.dtype == np.int16 and w.size and (int(w.min()) < -255 or int(w.max()) > 255
                                               or int(w.max()) - int(w.min()) > 255):
            raise bad(f"{p}.weight", f"holds int16 weights in {int(w.min())}..{int(w.max())}; weights with a zero "
                      "point are in -255..255 and at most 255 apart")
        if not (np.isfinite(ws).all() and (ws > 0).all()):
            raise bad(f"{p}.weight_scale", "holds a scale that is not finite and > 0")
        m = logit_scale(qin.scale, ws)  # judged below: 0 or inf is refused
        if not (np.isfinite(m).all() and (m > 0).all()):
            raise bad(f"{p}.weight_scale", "gives a multiplier that is 0 or not finite in float32")
        # Room in int32 for the largest accumulation any input can give: |x - zp| <= 255.
        c = overflowing_channel(w, b)
        if c is not None:
            raise bad(f"{p}.bias", f"holds a bias (channel {c}) with which the int32 accumulator could overflow "
                      "(|bias| + 255 x sum |w| > 2^31 - 1)")
        return w, ws, b

    qin = qparams("input", "scale", "zero_point")
    net_input = qin
    layers = []
    classifier = None
    pool_out = QParams(1.0, 0)
    logits_output = None
    for s in config.architecture():
        if s.kind == "avgpool":
            pool_out = qparams("pool", "output_scale", "output_zero_point")
            qin = pool_out
            continue
        if s.kind == "dense":
            w, ws, b = weights("classifier", s, qin)
            classifier = QLayer(s, w, ws, b, qin, None)
            if _logits_quantized(t):
                logits_output = qparams("classifier", "output_scale", "output_zero_point")
                m = requant_multiplier(qin.scale, ws, logits_output.scale)
                if not (np.isfinite(m).all() and (m > 0).all()):
                    raise bad("classifier.output_scale", "gives a requantisation multiplier that is 0 or not finite "
                              "in float32")
            continue
        p = _prefix(s.kind, s.name)
        w, ws, b = weights(p, s, qin)
        out = qparams(p, "output_scale", "output_zero_point")
        lo, hi = (int(v) for v in t[f"{p}.clamp"])
        if not 0 <= lo <= hi <= 255:
            raise bad(f"{p}.clamp", f"is [{lo}, {hi}]: expected 0 <= low <= high <= 255")
        m = requant_multiplier(qin.scale, ws, out.scale)
        if not (np.isfinite(m).all() and (m > 0).all()):
            raise bad(f"{p}.output_scale", "gives a requantisation multiplier that is 0 or not finite in float32")
        layers.append(QLayer(s, w, ws, b, qin, out, (lo, hi)))
        qin = out
    return QuantizedNet(config.alpha, net_input, layers, pool_out, classifier, "file", False,
                        logits_output=logits_output)


def load_quantized(path: PathLike) -> Tuple[ModelConfig, "QuantizedNet"]:
    """Read and validate an int8 ``.safetensors`` written by :func:`save_quantized`.

    Raises :class:`FileNotFoundError` if it does not exist and :class:`WeightFileError`, naming
    what is wrong, for anything else (not safetensors, truncated, not int8, bad tensors).
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
            if (meta or {}).get(PRECISION_KEY) != "int8":
                raise WeightFileError(f"{where}: metadata 'precision' is {(meta or {}).get(PRECISION_KEY)!r}, "
                                      "expected 'int8'")
            names = set(f.keys())
            expected = expected_quantized(config, _logits_quantized(names))
            for name, (shape, dtype) in expected.items():
                if name not in names:
                    raise WeightFileError(f"{where}: missing tensor {name!r} (expected shape {list(shape)})")
                sl = f.get_slice(name)
                if sl.get_dtype() != dtype and not (name.endswith(".weight") and sl.get_dtype() == "I16"):
                    raise WeightFileError(f"{where}: tensor {name!r} has dtype {sl.get_dtype()}, expected {dtype}")
                if tuple(sl.get_shape()) != shape:
                    raise WeightFileError(f"{where}: tensor {name!r} has shape {list(sl.get_shape())}, "
                                          f"expected {list(shape)}")
            extra = sorted(names - set(expected))
            if extra:
                raise WeightFileError(f"{where}: unexpected tensor {extra[0]!r}")
            tensors = {name: np.array(f.get_tensor(name), copy=True) for name in expected}
    except SafetensorError as e:
        raise WeightFileError(f"{where}: not a valid safetensors file ({e})") from None
    except (OSError, ValueError, MemoryError) as e:
        if isinstance(e, WeightFileError):
            raise
        raise WeightFileError(f"{where}: could not be read ({type(e).__name__}: {e})") from None
    qnet = _build(config, tensors, where)
    try:
        q = json.loads((meta or {}).get("quantization", "{}"))
    except (TypeError, ValueError, RecursionError):
        q = {}
    if isinstance(q, dict):
        qnet.method = str(q.get("method", "file"))
        qnet.bias_correction = bool(q.get("bias_correction", False))
        qnet.pair_limit = bool(q.get("pair_limit", False))
        qnet.rounding = str(q.get("rounding", "nearest"))
        qnet.input_divide = q.get("input_rounding") == "divide"
        qnet.pool_half_up = q.get("pool_rounding") == "half_up"
    last = qnet.layers[-1].output if qnet.layers else None
    if qnet.pool_half_up and last != qnet.pool_output:
        raise WeightFileError(f"{where}: metadata says the pool rounds half up (TFLite's AVERAGE_POOL_2D), which keeps "
                              "its input's quantisation, but pool.output_scale / pool.output_zero_point differ from "
                              "the last layer's output")
    return config, qnet
