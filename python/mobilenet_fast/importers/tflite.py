"""Import a MobileNetV1 TensorFlow Lite flatbuffer (``.tflite``).

The file is parsed with the ``tflite`` package from PyPI (the flatbuffers code generated from
TFLite's ``schema.fbs``; ``pip install "mobilenet-fast[tflite]"``), never with TensorFlow. Like the
ONNX importer this one ignores names: it walks the first subgraph from its image input along the
data edges and matches the chain of operators against MobileNetV1:

========================  ========================================================================
input                     one ``[1, H, W, 3]`` tensor (float32; int8 for a full-integer file,
                          or float32 followed by ``QUANTIZE``)
stem                      ``CONV_2D`` 3x3, stride 2, 3 -> C0 channels
13 blocks                 ``DEPTHWISE_CONV_2D`` 3x3 (depth multiplier 1; any other is refused by
                          name), then a 1x1 ``CONV_2D``
after every conv          the fused activation ``RELU6`` / ``RELU`` (or a separate ``RELU6`` /
                          ``RELU`` operator); a ``PAD`` / ``PADV2`` (zeros on H and W) may
                          precede a 3x3 conv with ``VALID`` padding
pooling                   ``MEAN`` over axes 1 and 2, or ``AVERAGE_POOL_2D`` over the whole map
head                      ``RESHAPE`` / ``SQUEEZE``, then optionally the classifier:
                          ``FULLY_CONNECTED`` or a 1x1 ``CONV_2D`` with bias, then ``RESHAPE`` /
                          ``SQUEEZE``, optionally ``SOFTMAX`` (beta 1) and, in a quantised file
                          with float output, ``DEQUANTIZE``. A graph ending at the pooled features
                          is a feature extractor (``num_classes=0``)
constants                 buffers of the file; float16 weights behind a ``DEQUANTIZE`` (what
                          ``supported_types=[tf.float16]`` writes) are widened to float32 exactly
========================  ========================================================================

Anything else is an :class:`ImportFormatError` naming the first operator that does not fit (its
index, type and output tensor, and what was expected there); a file that is not a TFLite
flatbuffer (wrong identifier, truncated, offsets out of range) is refused the same way.

Layouts: TFLite convolution weights are OHWI; they become our stem HWIO ``[3, 3, 3, C0]``
(``W.transpose(1, 2, 3, 0)``), depthwise ``[1, 3, 3, C]`` -> ``[3, 3, C]``, pointwise
``[Cout, 1, 1, Cin]`` -> ``[Cin, Cout]``, the classifier (``FULLY_CONNECTED`` ``[N, C]`` or 1x1 conv
``[N, 1, 1, C]``) -> ``[C, N]``. Only transposes, so values are bit-for-bit those of the file.
BatchNorm is folded in a ``.tflite``: every layer is stored as gamma = 1, beta = bias, mean = 0,
var = 1 with ``bn_epsilon = 0``, which folds back to exactly the file's weights and bias.

Configuration: alpha from the channel counts; resolution from the input tensor; padding from the
3x3 convs (``SAME`` everywhere -> ``tf_same``; ``PAD`` + ``VALID`` only in front of the stride-2
depthwise convs, as Keras' ``ZeroPadding2D`` -> ``keras``; 1/1/1/1 everywhere -> ``symmetric``;
else whichever convention reproduces the pads at the file's size); activation ``relu6`` or
``relu``. TFLite's converter folds Keras' ``ZeroPadding2D`` into SAME padding of the stride-2
depthwise convs on even sizes, which is the same computation. The input normalisation is not in
the flatbuffer; the default ``(x - 127.5) / 127.5`` is what Keras/TF-slim MobileNets expect (pass
``input_mean``/``input_std`` otherwise). Labels are read when the file carries them as TFLite
metadata does (a zip archive appended to the flatbuffer holding a text file with one name per
class).

Quantised files (int8 or uint8 activations): :func:`import_tflite` refuses them, saying so;
:func:`import_tflite_int8` maps full-integer files onto our int8 engine (the arithmetic is
described there): symmetric int8 weights as they are, and weights with a zero point (the legacy
uint8 ``*_quant.tflite`` files' per-tensor asymmetric uint8) as ``code - zero point``.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..architecture import BLOCK_CONFIG, PADDING_CONVENTIONS, MobileNetV1
from ..errors import ImportFormatError, InputError, MissingDependencyError, MobileNetFastError, WeightFileError
from ..weights import ModelConfig, WeightSet, check_rgb, file_sha256
from ._common import WidthMismatch, checked_labels, checked_path, infer_alpha

__all__ = ["import_tflite", "import_tflite_int8", "tflite_precision", "TF_MEAN", "TF_STD"]

PathLike = Union[str, "os.PathLike[str]"]
Pads = Tuple[int, int, int, int]

TF_MEAN = (127.5, 127.5, 127.5)
TF_STD = (127.5, 127.5, 127.5)
_NUM_BLOCKS = len(BLOCK_CONFIG)
_IDENTIFIER = b"TFL3"

# TensorType values of schema.fbs
_FLOAT32, _FLOAT16, _INT32, _UINT8, _INT64, _INT8 = 0, 1, 2, 3, 4, 9
_DTYPES: Dict[int, Any] = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8,
                           7: np.int16, 10: np.float64}
_TYPE_NAMES = {0: "FLOAT32", 1: "FLOAT16", 2: "INT32", 3: "UINT8", 4: "INT64", 5: "STRING", 6: "BOOL",
               7: "INT16", 8: "COMPLEX64", 9: "INT8", 10: "FLOAT64"}
# ActivationFunctionType
_ACT = {0: "none", 1: "relu", 3: "relu6"}
_ACT_NAMES = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
# Padding
_SAME, _VALID = 0, 1
#: Ops allowed between the pooling and the classifier / the end that do not change values.
_HEAD_PASS = ("RESHAPE", "SQUEEZE")


def _import_tflite_package() -> Any:
    try:
        import tflite  # the flatbuffers code generated from TFLite's schema
    except ImportError:
        raise MissingDependencyError(
            "reading .tflite files needs the 'tflite' package (flatbuffers code for the TFLite schema): "
            'pip install "mobilenet-fast[tflite]"') from None
    return tflite


# ------------------------------------------------------------------------------------ the graph

@dataclass
class _Tensor:
    index: int
    name: str
    type: int
    shape: Tuple[int, ...]
    data: Optional[np.ndarray]              # constant contents (typed, shaped), else None
    scale: Optional[np.ndarray] = None      # float32 quantisation scales (None: not quantised)
    zero_point: Optional[np.ndarray] = None
    qdim: int = 0
    from_float16: bool = False              # a DEQUANTIZE of float16 constants made it

    @property
    def type_name(self) -> str:
        return _TYPE_NAMES.get(self.type, f"type {self.type}")

    @property
    def quantized(self) -> bool:
        return self.scale is not None and self.scale.size > 0


@dataclass
class _Op:
    index: int
    name: str           # BUILTIN_OPCODE2NAME, or CUSTOM(code)
    inputs: List[int]
    outputs: List[int]
    raw: Any            # the tflite.Operator


class _Graph:
    """The tensors and operators of subgraph 0, with constants resolved."""

    def __init__(self, tfl: Any, buf: bytes, where: str) -> None:
        self.tfl, self.buf, self.where = tfl, buf, where
        model = tfl.Model.GetRootAsModel(buf, 0)
        self.model = model
        if model.SubgraphsLength() < 1:
            raise self.error("the model has no subgraph")
        g = model.Subgraphs(0)
        self.sub = g
        names = tfl.utils.BUILTIN_OPCODE2NAME
        codes: List[str] = []
        for i in range(model.OperatorCodesLength()):
            oc = model.OperatorCodes(i)
            code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
            if code == 32:  # CUSTOM
                custom = oc.CustomCode()
                codes.append(f"CUSTOM({custom.decode('utf-8', 'replace') if custom else '?'})")
            else:
                codes.append(names.get(code, f"builtin operator {code}"))
        self.tensors: List[_Tensor] = [self._tensor(g, i) for i in range(g.TensorsLength())]
        self.ops: List[_Op] = []
        for k in range(g.OperatorsLength()):
            op = g.Operators(k)
            idx = int(op.OpcodeIndex())
            if not 0 <= idx < len(codes):
                raise self.error(f"operator {k} has operator code index {idx} out of range")
            ins = [int(v) for v in (op.InputsAsNumpy() if op.InputsLength() else [])]
            outs = [int(v) for v in (op.OutputsAsNumpy() if op.OutputsLength() else [])]
            for t in ins + outs:
                if t != -1 and not 0 <= t < len(self.tensors):
                    raise self.error(f"operator {k} ({codes[idx]}) refers to tensor {t}, out of range")
            self.ops.append(_Op(k, codes[idx], ins, outs, op))
        self.producer: Dict[int, _Op] = {}
        self.consumers: Dict[int, List[_Op]] = {}
        for op in self.ops:
            for t in op.outputs:
                self.producer[t] = op
            for t in op.inputs:
                if t != -1:
                    self.consumers.setdefault(t, []).append(op)
        self.inputs = [int(v) for v in (g.InputsAsNumpy() if g.InputsLength() else [])]
        self.outputs = [int(v) for v in (g.OutputsAsNumpy() if g.OutputsLength() else [])]
        for t in self.inputs + self.outputs:
            if not 0 <= t < len(self.tensors):
                raise self.error(f"the subgraph's inputs/outputs refer to tensor {t}, out of range")
        self._resolve_dequantized_constants()

    def error(self, msg: str) -> ImportFormatError:
        return ImportFormatError(f"{self.where}: {msg}")

    def _tensor(self, g: Any, i: int) -> _Tensor:
        t = g.Tensors(i)
        name = (t.Name() or b"").decode("utf-8", "replace")
        shape = tuple(int(v) for v in (t.ShapeAsNumpy() if t.ShapeLength() else []))
        ttype = int(t.Type())
        data: Optional[np.ndarray] = None
        b = int(t.Buffer())
        if b > 0:
            if b >= self.model.BuffersLength():
                raise self.error(f"tensor {i} ({name!r}) refers to buffer {b}, out of range")
            raw = self._buffer_bytes(b, i, name)
            if raw is not None and len(raw):
                if ttype not in _DTYPES:
                    raise self.error(f"tensor {i} ({name!r}) holds constants of type {_TYPE_NAMES.get(ttype, ttype)}")
                dt = np.dtype(_DTYPES[ttype]).newbyteorder("<")
                n = int(np.prod(shape, dtype=np.int64)) if shape else 1
                if any(s < 0 for s in shape) or n * dt.itemsize != len(raw):
                    raise self.error(f"tensor {i} ({name!r}) has shape {list(shape)} of {_TYPE_NAMES.get(ttype)} "
                                     f"but its buffer holds {len(raw)} bytes")
                data = np.frombuffer(raw, dtype=dt).astype(dt.newbyteorder("="), copy=True).reshape(shape)
        q = t.Quantization()
        scale = zp = None
        qdim = 0
        if q is not None and q.ScaleLength():
            scale = np.asarray(q.ScaleAsNumpy(), np.float32).copy()
            zp = (np.asarray(q.ZeroPointAsNumpy(), np.int64).copy() if q.ZeroPointLength()
                  else np.zeros(scale.shape, np.int64))
            qdim = int(q.QuantizedDimension())
        return _Tensor(i, name, ttype, shape, data, scale, zp, qdim)

    def _buffer_bytes(self, b: int, i: int, name: str) -> Optional[bytes]:
        buffer = self.model.Buffers(b)
        if buffer.DataLength():
            arr = buffer.DataAsNumpy()
            return bytes(arr.tobytes())
        off = int(buffer.Offset()) if hasattr(buffer, "Offset") else 0
        size = int(buffer.Size()) if hasattr(buffer, "Size") else 0
        if off > 1 and size > 0:  # a large model keeps buffers after the flatbuffer
            if off + size > len(self.buf):
                raise self.error(f"tensor {i} ({name!r}): buffer {b} lies beyond the end of the file "
                                 f"(offset {off}, {size} bytes; the file has {len(self.buf)}; truncated?)")
            return self.buf[off:off + size]
        return None

    def _resolve_dequantized_constants(self) -> None:
        """DEQUANTIZE of a constant (float16 weights, or int8 ones): its output becomes a constant."""
        for op in self.ops:
            if op.name != "DEQUANTIZE" or len(op.inputs) != 1 or len(op.outputs) != 1:
                continue
            src, dst = self.tensors[op.inputs[0]], self.tensors[op.outputs[0]]
            if src.data is None:
                continue
            if src.type == _FLOAT16:
                dst.data = src.data.astype(np.float32)
                dst.from_float16 = True
            elif src.type in (_INT8, _UINT8) and src.quantized:
                assert src.scale is not None and src.zero_point is not None
                shape = [1] * src.data.ndim
                if src.scale.size > 1:
                    shape[src.qdim] = -1
                s = src.scale.astype(np.float32).reshape(shape)
                z = src.zero_point.astype(np.float32).reshape(shape)
                dst.data = ((src.data.astype(np.float32) - z) * s).astype(np.float32)

    # -- helpers for the walk

    def desc(self, op: _Op) -> str:
        out = self.tensors[op.outputs[0]].name if op.outputs else "?"
        return f"operator {op.index} ({op.name}, output {out!r})"

    def const(self, t: int) -> Optional[np.ndarray]:
        return None if t == -1 else self.tensors[t].data

    def next(self, x: int) -> Optional[_Op]:
        """The one operator consuming activation ``x`` (None: nothing does)."""
        users = self.consumers.get(x, [])
        if len(users) > 1:
            raise self.error(f"tensor {self.tensors[x].name!r} feeds {len(users)} operators "
                             f"({', '.join(self.desc(u) for u in users)}); a MobileNetV1 is a chain")
        return users[0] if users else None

    def options(self, op: _Op, cls_name: str) -> Any:
        table = op.raw.BuiltinOptions()
        if table is None:
            return None
        cls = getattr(self.tfl, cls_name)
        opt = cls()
        opt.Init(table.Bytes, table.Pos)
        return opt


# ------------------------------------------------------------------------------------ the walk

@dataclass
class _Layer:
    name: str                 # stem, blocks.i.dw, blocks.i.pw, classifier
    op: _Op
    kind: str                 # conv3x3, dwconv3x3, pwconv, dense
    x: _Tensor                # input activation (after any PAD)
    y: _Tensor                # output activation (after a separate activation op, if any)
    w: _Tensor
    b: Optional[_Tensor]
    stride: int = 1
    pads: Pads = (0, 0, 0, 0)
    pad_op: Optional[_Op] = None
    same: bool = False
    act: str = "none"
    in_hw: Tuple[int, int] = (0, 0)


@dataclass
class _Found:
    input: _Tensor
    quantize: Optional[_Op]           # a QUANTIZE after a float input
    layers: List[_Layer] = field(default_factory=list)
    pool_op: Optional[_Op] = None
    pool_in: Optional[_Tensor] = None
    pool_out: Optional[_Tensor] = None
    classifier: Optional[_Layer] = None
    softmax: Optional[_Op] = None
    dequantize: Optional[_Op] = None
    output: Optional[_Tensor] = None


def _title(name: str) -> str:
    if name == "stem":
        return "the stem conv"
    if name == "classifier":
        return "the classifier"
    i, kind = name.split(".")[1:]
    return f"block {int(i) + 1}'s {'depthwise' if kind == 'dw' else 'pointwise'} conv"


def _misfit(g: _Graph, op: Optional[_Op], expected: str, x: _Tensor) -> ImportFormatError:
    if op is None:
        return g.error(f"the graph ends at tensor {x.name!r} (shape {list(x.shape)}) where {expected} was expected")
    return g.error(f"{g.desc(op)} does not fit a MobileNetV1: expected {expected} here")


def _same_pads(n: int, stride: int, k: int) -> Tuple[int, int, int]:
    out = -(-n // stride)
    total = max((out - 1) * stride + k - n, 0)
    return out, total // 2, total - total // 2


def _read_pad(g: _Graph, op: _Op, x: _Tensor) -> Pads:
    p = g.const(op.inputs[1]) if len(op.inputs) > 1 else None
    if p is None or p.shape != (4, 2):
        raise g.error(f"{g.desc(op)}: expected constant paddings of shape [4, 2] (NHWC)")
    p = p.astype(np.int64)
    if p[0].any() or p[3].any() or (p < 0).any():
        raise g.error(f"{g.desc(op)} pads {p.tolist()}; only zero padding of H and W fits a MobileNetV1")
    if op.name == "PADV2" and len(op.inputs) > 2:
        v = g.const(op.inputs[2])
        zero = 0.0
        if x.quantized:
            assert x.zero_point is not None
            zero = float(x.zero_point.ravel()[0])
        if v is None or v.size != 1 or float(v.ravel()[0]) != zero:
            raise g.error(f"{g.desc(op)} pads with a value other than zero")
    return (int(p[1, 0]), int(p[2, 0]), int(p[1, 1]), int(p[2, 1]))


def _read_conv(g: _Graph, x: _Tensor, name: str, kind: str, stride: int) -> Tuple[_Layer, _Tensor]:
    """The conv layer ``name`` starting at activation ``x`` (an optional PAD, the conv, an
    optional separate RELU/RELU6); returns it and its output activation."""
    want_op = "DEPTHWISE_CONV_2D" if kind == "dwconv3x3" else "CONV_2D"
    k = 1 if kind in ("pwconv",) else 3
    what = f"{want_op} {k}x{k}{', stride ' + str(stride) if k == 3 else ''} ({_title(name)})"
    op = g.next(x.index)
    pad_op = None
    pads: Pads = (0, 0, 0, 0)
    if op is not None and op.name in ("PAD", "PADV2") and k == 3:
        pad_op = op
        pads = _read_pad(g, op, x)
        x = g.tensors[op.outputs[0]]
        op = g.next(x.index)
    if op is None or op.name != want_op:
        if op is not None and op.name == "DEPTHWISE_CONV_2D" and want_op == "CONV_2D" and k == 3:
            raise g.error(f"{g.desc(op)} is a depthwise conv where {what} was expected")
        raise _misfit(g, op, what, x)
    if len(op.inputs) < 2 or op.inputs[0] != x.index:
        raise g.error(f"{g.desc(op)}: its input is not the previous layer's output")
    w_t = g.tensors[op.inputs[1]]
    if w_t.data is None:
        raise g.error(f"{g.desc(op)}: its weights {w_t.name!r} are not a constant of the file")
    b_t = g.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] != -1 else None
    if b_t is not None and b_t.data is None:
        raise g.error(f"{g.desc(op)}: its bias {b_t.name!r} is not a constant of the file")
    cls = "DepthwiseConv2DOptions" if kind == "dwconv3x3" else "Conv2DOptions"
    o = g.options(op, cls)
    if o is None:
        raise g.error(f"{g.desc(op)} has no {cls}")
    sh, sw = int(o.StrideH()), int(o.StrideW())
    dh, dw = int(o.DilationHFactor()), int(o.DilationWFactor())
    if (dh, dw) != (1, 1):
        raise g.error(f"{g.desc(op)} has dilation {dh}x{dw}; MobileNetV1 convs have none")
    w_shape = w_t.shape
    if len(w_shape) != 4 or w_shape[1:3] != (k, k):
        raise g.error(f"{g.desc(op)} has weights of shape {list(w_shape)}; {what} needs a {k}x{k} kernel")
    if (sh, sw) != (stride, stride):
        raise g.error(f"{g.desc(op)} has stride {sh}x{sw}; {_title(name)} of MobileNetV1 has stride {stride}")
    if len(x.shape) != 4:
        raise g.error(f"{g.desc(op)}: input {x.name!r} has shape {list(x.shape)}, expected NHWC")
    c_in = x.shape[3]
    if kind == "dwconv3x3":
        mult = int(o.DepthMultiplier())
        if w_shape[0] != 1 or w_shape[3] != c_in or mult not in (0, 1):
            m = mult if mult not in (0, 1) else (w_shape[3] // c_in if c_in else 0)
            raise g.error(f"{g.desc(op)} is a depthwise conv with depth multiplier {m} (weights {list(w_shape)}, "
                          f"{c_in} input channels); only depth multiplier 1 fits a MobileNetV1")
    elif w_shape[3] != c_in:
        raise g.error(f"{g.desc(op)} has weights {list(w_shape)} for an input of {c_in} channels")
    padding = int(o.Padding())
    in_hw = (x.shape[1], x.shape[2]) if pad_op is None else \
        (x.shape[1] - pads[0] - pads[2], x.shape[2] - pads[1] - pads[3])
    same = padding == _SAME
    if same:
        if pad_op is not None:
            extra = _same_pads(x.shape[1], stride, k), _same_pads(x.shape[2], stride, k)
            pads = (pads[0] + extra[0][1], pads[1] + extra[1][1], pads[2] + extra[0][2], pads[3] + extra[1][2])
        else:
            (_, pt, pb), (_, pl, pr) = _same_pads(in_hw[0], stride, k), _same_pads(in_hw[1], stride, k)
            pads = (pt, pl, pb, pr)
    elif padding != _VALID:
        raise g.error(f"{g.desc(op)} has padding type {padding}")
    act = int(o.FusedActivationFunction())
    if act not in _ACT:
        raise g.error(f"{g.desc(op)} fuses activation {_ACT_NAMES.get(act, act)}; MobileNetV1 uses RELU6 or RELU")
    y = g.tensors[op.outputs[0]]
    act_name = _ACT[act]
    if act_name == "none" and kind != "dense":
        nxt = g.next(y.index)
        if nxt is not None and nxt.name in ("RELU6", "RELU"):
            act_name = nxt.name.lower()
            y = g.tensors[nxt.outputs[0]]
    layer = _Layer(name, op, kind, x, y, w_t, b_t, stride, pads, pad_op, same, act_name, in_hw)
    return layer, y


def _read_pool(g: _Graph, x: _Tensor) -> Tuple[_Op, _Tensor]:
    op = g.next(x.index)
    what = "the global average pool (MEAN over axes 1, 2 or AVERAGE_POOL_2D over the whole map)"
    if op is None or op.name not in ("MEAN", "AVERAGE_POOL_2D"):
        raise _misfit(g, op, what, x)
    h, w = x.shape[1], x.shape[2]
    if op.name == "MEAN":
        axes = g.const(op.inputs[1]) if len(op.inputs) > 1 else None
        if axes is None or sorted(int(a) % 4 for a in axes.ravel()) != [1, 2]:
            raise g.error(f"{g.desc(op)} averages over axes {None if axes is None else axes.ravel().tolist()}; "
                          "expected 1 and 2 (H and W)")
    else:
        o = g.options(op, "Pool2DOptions")
        fh, fw = int(o.FilterHeight()), int(o.FilterWidth())
        if (fh, fw) != (h, w) or int(o.FusedActivationFunction()) != 0:
            raise g.error(f"{g.desc(op)} pools {fh}x{fw} over a {h}x{w} map; only a global average fits")
        if int(o.Padding()) == _SAME and (int(o.StrideH()) < h or int(o.StrideW()) < w):
            raise g.error(f"{g.desc(op)} pads its window (SAME); only a global average fits")
    y = g.tensors[op.outputs[0]]
    if int(np.prod(y.shape)) != x.shape[3] * (x.shape[0] if x.shape else 1):
        raise g.error(f"{g.desc(op)} gives shape {list(y.shape)}; expected one value per channel")
    return op, y


def _skip_pass(g: _Graph, x: _Tensor) -> Tuple[Optional[_Op], _Tensor]:
    op = g.next(x.index)
    while op is not None and op.name in _HEAD_PASS:
        x = g.tensors[op.outputs[0]]
        op = g.next(x.index)
    return op, x


def _read_classifier(g: _Graph, op: _Op, x: _Tensor, features: int) -> Tuple[_Layer, _Tensor]:
    w_t = g.tensors[op.inputs[1]] if len(op.inputs) > 1 else None
    if w_t is None or w_t.data is None:
        raise g.error(f"{g.desc(op)}: its weights are not a constant of the file")
    b_t = g.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] != -1 else None
    if b_t is not None and b_t.data is None:
        raise g.error(f"{g.desc(op)}: its bias {b_t.name!r} is not a constant of the file")
    if op.name == "FULLY_CONNECTED":
        o = g.options(op, "FullyConnectedOptions")
        act = int(o.FusedActivationFunction()) if o is not None else 0
        if o is not None and int(o.WeightsFormat()) != 0:
            raise g.error(f"{g.desc(op)} uses a shuffled weights format")
        if len(w_t.shape) != 2 or w_t.shape[1] != features:
            raise g.error(f"{g.desc(op)} has weights {list(w_t.shape)}; expected [classes, {features}]")
    else:
        o = g.options(op, "Conv2DOptions")
        act = int(o.FusedActivationFunction())
        if len(w_t.shape) != 4 or w_t.shape[1:] != (1, 1, features):
            raise g.error(f"{g.desc(op)} has weights {list(w_t.shape)}; the classifier as a conv is 1x1 "
                          f"with {features} input channels")
    if act != 0:
        raise g.error(f"{g.desc(op)} fuses activation {_ACT_NAMES.get(act, act)} into the logits")
    n = w_t.shape[0]
    if b_t is not None and b_t.shape != (n,):
        raise g.error(f"{g.desc(op)} has a bias of shape {list(b_t.shape)}; expected [{n}]")
    y = g.tensors[op.outputs[0]]
    return _Layer("classifier", op, "dense", x, y, w_t, b_t), y


def _find_input(g: _Graph) -> _Tensor:
    if len(g.inputs) != 1:
        raise g.error(f"the model has {len(g.inputs)} inputs; a MobileNetV1 has one image input")
    x = g.tensors[g.inputs[0]]
    if len(x.shape) != 4 or x.shape[3] != 3 or x.shape[0] not in (1, -1):
        raise g.error(f"input {x.name!r} has shape {list(x.shape)}; expected [1, H, W, 3] (NHWC RGB)")
    if x.type not in (_FLOAT32, _INT8, _UINT8):
        raise g.error(f"input {x.name!r} is {x.type_name}; expected FLOAT32, INT8 or UINT8")
    if min(x.shape[1], x.shape[2]) < 32:
        raise g.error(f"input {x.name!r} is {x.shape[1]}x{x.shape[2]}; MobileNetV1 needs at least 32x32")
    return x


def _walk(g: _Graph) -> _Found:
    x = _find_input(g)
    found = _Found(input=x, quantize=None)
    op = g.next(x.index)
    if op is not None and op.name == "QUANTIZE":
        found.quantize = op
        x = g.tensors[op.outputs[0]]
    layer, x = _read_conv(g, x, "stem", "conv3x3", 2)
    if layer.w.shape[3] != 3:
        raise g.error(f"{g.desc(layer.op)}: the stem takes 3 channels, its weights {list(layer.w.shape)}")
    found.layers.append(layer)
    for i, (_, stride) in enumerate(BLOCK_CONFIG):
        layer, x = _read_conv(g, x, f"blocks.{i}.dw", "dwconv3x3", stride)
        found.layers.append(layer)
        layer, x = _read_conv(g, x, f"blocks.{i}.pw", "pwconv", 1)
        found.layers.append(layer)
    found.pool_in = x
    found.pool_op, x = _read_pool(g, x)
    found.pool_out = x
    op, x = _skip_pass(g, x)
    if op is not None and (op.name == "FULLY_CONNECTED" or op.name == "CONV_2D"):
        found.classifier, x = _read_classifier(g, op, x, found.pool_in.shape[3])
        op, x = _skip_pass(g, x)
    if op is not None and op.name == "SOFTMAX":
        o = g.options(op, "SoftmaxOptions")
        if o is not None and float(o.Beta()) != 1.0:
            raise g.error(f"{g.desc(op)} has beta {float(o.Beta()):g}; only a plain softmax (beta 1) fits")
        found.softmax = op
        x = g.tensors[op.outputs[0]]
        op = g.next(x.index)
    if op is not None and op.name == "DEQUANTIZE":
        found.dequantize = op
        x = g.tensors[op.outputs[0]]
        op = g.next(x.index)
    if op is not None:
        expected = ("the end of the graph" if found.classifier is not None or found.softmax is not None
                    else "the classifier (FULLY_CONNECTED or a 1x1 CONV_2D), SOFTMAX or the end of the graph")
        raise _misfit(g, op, expected, x)
    if x.index not in g.outputs:
        raise g.error(f"the chain ends at tensor {x.name!r}, which is not an output of the model")
    if len(g.outputs) != 1:
        raise g.error(f"the model has {len(g.outputs)} outputs; a MobileNetV1 has one")
    found.output = x
    return found


# -------------------------------------------------------------------------------- configuration

def _check_widths(g: _Graph, found: _Found) -> float:
    convs = found.layers
    stem = convs[0].w.shape[0]
    pw = [layer.w.shape[0] for layer in convs[2::2]]
    got = infer_alpha(stem, pw)
    if isinstance(got, WidthMismatch):
        layer = convs[0] if got.layer == 0 else convs[2 * got.layer]
        want = f", expected {got.want} for alpha={got.alpha:g}" if got.want else ""
        raise g.error(f"{g.desc(layer.op)} ({_title(layer.name)}) has {got.got} output channels{want}; "
                      "no MobileNetV1 width multiplier explains the channel counts")
    return got


def _choose_padding(g: _Graph, found: _Found) -> str:
    three = [layer for layer in found.layers if layer.kind != "pwconv"]
    hw = (found.input.shape[1], found.input.shape[2])
    want: Dict[str, List[Pads]] = {
        conv: [s.pads for s in MobileNetV1(1.0, hw, 0, conv) if s.kind in ("conv3x3", "dwconv3x3")]
        for conv in PADDING_CONVENTIONS}
    misfits = {conv: [i for i, c in enumerate(three) if tuple(c.pads) != tuple(want[conv][i])]
               for conv in PADDING_CONVENTIONS}
    ok = [conv for conv in PADDING_CONVENTIONS if not misfits[conv]]
    if not ok:
        ref = min(PADDING_CONVENTIONS, key=lambda conv: len(misfits[conv]))
        c = three[misfits[ref][0]]
        i = misfits[ref][0]
        options = ", ".join(f"{conv} {list(want[conv][i])}" for conv in PADDING_CONVENTIONS)
        raise g.error(f"{g.desc(c.op)} ({_title(c.name)}, {c.in_hw[0]}x{c.in_hw[1]} input, stride {c.stride}) pads "
                      f"[top, left, bottom, right] = {list(c.pads)}; at the model's input size {hw[0]}x{hw[1]} the "
                      f"supported padding conventions pad this layer: {options}")
    if all(c.same and c.pad_op is None for c in three) and "tf_same" in ok:
        return "tf_same"
    if all(tuple(c.pads) == (1, 1, 1, 1) and c.pad_op is not None for c in three) and "symmetric" in ok:
        return "symmetric"
    keras_form = all((c.pad_op is not None) == (c.kind == "dwconv3x3" and c.stride == 2) for c in three)
    if keras_form and "keras" in ok:
        return "keras"
    for conv in ("tf_same", "symmetric", "keras"):
        if conv in ok:
            return conv
    return ok[0]


def _activation(g: _Graph, found: _Found) -> str:
    first = found.layers[0].act
    for layer in found.layers:
        if layer.act == "none":
            raise g.error(f"{g.desc(layer.op)} ({_title(layer.name)}) has no activation; MobileNetV1 applies "
                          "RELU6 (or RELU) after every conv")
        if layer.act != first:
            raise g.error(f"{g.desc(layer.op)} applies {layer.act} after {_title(layer.name)} but the stem uses "
                          f"{first}; mobilenet-fast needs one activation for every layer")
    return first


def _labels_from_metadata(p: str, num_classes: int) -> Optional[Tuple[str, ...]]:
    """Class names from a TFLite metadata zip appended to the file (a .txt with one per class)."""
    if num_classes < 1:
        return None
    try:
        if not zipfile.is_zipfile(p):
            return None
        with zipfile.ZipFile(p) as z:
            for info in z.infolist():
                if not info.filename.lower().endswith(".txt") or info.file_size > 16 << 20:
                    continue
                lines = z.read(info).decode("utf-8").splitlines()
                while lines and not lines[-1].strip():
                    lines.pop()
                if len(lines) == num_classes:
                    return tuple(line.strip() for line in lines)
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError, ValueError, RuntimeError, NotImplementedError):
        return None
    return None


def _is_quantized(found: _Found) -> bool:
    return any(layer.x.type in (_INT8, _UINT8) for layer in found.layers)


def _read_file(path: PathLike) -> Tuple[Any, str, str, bytes, _Graph, _Found]:
    tfl = _import_tflite_package()
    p, where = checked_path(path, "TFLite model file")
    with open(p, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise ImportFormatError(f"{where}: file is {len(buf)} bytes, too short to be a TFLite model")
    if buf[4:8] != _IDENTIFIER:
        raise ImportFormatError(f"{where}: not a TFLite flatbuffer (file identifier {buf[4:8]!r}, expected "
                                f"{_IDENTIFIER!r})")
    try:
        g = _Graph(tfl, buf, where)
        found = _walk(g)
    except MobileNetFastError:
        raise
    except Exception as e:  # noqa: BLE001 - the generated code raises anything on a corrupt buffer
        raise ImportFormatError(f"{where}: not a valid TFLite model; the file is truncated or corrupt "
                                f"({type(e).__name__}: {e})") from None
    return tfl, p, where, buf, g, found


def _config(g: _Graph, found: _Found, p: str, where: str, labels: Optional[Sequence[str]],
            input_mean: Optional[Sequence[float]], input_std: Optional[Sequence[float]], source: Optional[str],
            what: str) -> ModelConfig:
    alpha = _check_widths(g, found)
    padding = _choose_padding(g, found)
    activation = _activation(g, found)
    num_classes = found.classifier.w.shape[0] if found.classifier is not None else 0
    if labels is not None:
        lab = checked_labels(labels, num_classes, where)
    else:
        lab = _labels_from_metadata(p, num_classes)
    mean = check_rgb(input_mean, "input_mean") if input_mean is not None else TF_MEAN
    std = check_rgb(input_std, "input_std") if input_std is not None else TF_STD
    if source is None:
        desc = g.model.Description()
        desc_s = desc.decode("utf-8", "replace") if desc else "no description"
        source = (f"TFLite model {where} (sha256 {file_sha256(p)}, schema version {g.model.Version()}, "
                  f"{desc_s}), {what}, imported by mobilenet_fast.importers.tflite")
    return ModelConfig(alpha=alpha, resolution=(found.input.shape[1], found.input.shape[2]),
                       num_classes=num_classes, padding=padding, bn_epsilon=0.0, input_mean=mean,
                       input_std=std, labels=lab, source=source, activation=activation)


def _weights_precision(found: _Found) -> str:
    if any(layer.w.from_float16 for layer in found.layers):
        return "float16 weights (widened to float32 exactly), float32 compute"
    return "float32"


def tflite_precision(path: PathLike) -> str:
    """``"int8"`` for a quantised (integer activations) ``.tflite``, else ``"float32"``; raises like
    :func:`import_tflite` for files that are not a MobileNetV1."""
    _, _, _, _, _, found = _read_file(path)
    return "int8" if _is_quantized(found) else "float32"


def import_tflite(path: PathLike, *, labels: Optional[Sequence[str]] = None,
                  input_mean: Optional[Sequence[float]] = None, input_std: Optional[Sequence[float]] = None,
                  source: Optional[str] = None) -> WeightSet:
    """Read a float MobileNetV1 ``.tflite`` (float32, or float16 weights) into a :class:`WeightSet`.

    ``labels`` replaces the labels of the file's metadata (if any); ``input_mean``/``input_std``
    (per RGB channel, on 0..255 pixels) replace the default normalisation 127.5 / 127.5;
    ``source`` replaces the provenance string.

    Raises :class:`FileNotFoundError`, :class:`MissingDependencyError` when the ``tflite`` package
    is missing, and :class:`ImportFormatError` naming the first operator that does not fit, for a
    corrupt file, or for a quantised file (read those with :func:`import_tflite_int8`).
    """
    _, p, where, _, g, found = _read_file(path)
    if _is_quantized(found):
        raise ImportFormatError(f"{where}: a quantised TFLite model (int8 activations), not float32 weights; "
                                "mobilenet_fast.load (or import_tflite_int8) reads it as an int8 model")
    for layer in found.layers + ([found.classifier] if found.classifier is not None else []):
        for t in (layer.w, layer.b):
            if t is not None and t.data is not None and t.data.dtype != np.float32:
                raise g.error(f"{g.desc(layer.op)}: {t.name!r} holds {t.type_name} values in a float graph "
                              "(dynamic-range quantised weights are not supported)")
    config = _config(g, found, p, where, labels, input_mean, input_std, source, _weights_precision(found))
    tensors: Dict[str, np.ndarray] = {}
    for layer in found.layers:
        assert layer.w.data is not None
        w = layer.w.data
        if layer.kind == "conv3x3":
            tensors["stem.conv.weight"] = w.transpose(1, 2, 3, 0)
        elif layer.kind == "dwconv3x3":
            tensors[f"{layer.name}.weight"] = w[0]
        else:
            tensors[f"{layer.name}.weight"] = w[:, 0, 0, :].T
        c = w.shape[0] if layer.kind != "dwconv3x3" else w.shape[3]
        bias = layer.b.data if layer.b is not None and layer.b.data is not None else np.zeros(c, np.float32)
        prefix = "stem" if layer.name == "stem" else layer.name
        tensors[f"{prefix}.bn.gamma"] = np.ones(c, np.float32)
        tensors[f"{prefix}.bn.beta"] = bias
        tensors[f"{prefix}.bn.mean"] = np.zeros(c, np.float32)
        tensors[f"{prefix}.bn.var"] = np.ones(c, np.float32)
    if found.classifier is not None:
        cl = found.classifier
        assert cl.w.data is not None
        w = cl.w.data if cl.w.data.ndim == 2 else cl.w.data[:, 0, 0, :]
        n = w.shape[0]
        tensors["classifier.weight"] = w.T
        tensors["classifier.bias"] = cl.b.data if cl.b is not None and cl.b.data is not None \
            else np.zeros(n, np.float32)
    for name, arr in tensors.items():
        if not np.isfinite(arr).all():
            raise g.error(f"the weights of {name} contain NaN or Inf")
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
    try:
        return WeightSet(config, arrays)
    except (WeightFileError, InputError) as e:
        raise g.error(f"the imported tensors do not form a valid MobileNetV1: {e}") from None


def _act_params(g: _Graph, t: _Tensor, what: str) -> Tuple[float, int]:
    """(scale, uint8 zero point) of a per-tensor quantised int8 or uint8 activation. An int8 code
    q is the uint8 code q + 128 with the zero point moved by 128: the same real values, exactly."""
    if t.type not in (_INT8, _UINT8) or not t.quantized:
        raise g.error(f"{what} {t.name!r} is {t.type_name}{'' if t.quantized else ' without quantisation'}; "
                      "a quantised MobileNetV1 has int8 or uint8 activations with a scale and a zero point")
    assert t.scale is not None and t.zero_point is not None
    if t.scale.size != 1 or t.zero_point.size != 1:
        raise g.error(f"{what} {t.name!r} has {t.scale.size} scales and {t.zero_point.size} zero points; "
                      "an activation is quantised per tensor (one of each)")
    scale = float(t.scale[0])
    # The bounds of our int8 files (qweights): every ratio of two scales stays a finite, non-zero float32.
    if not (np.isfinite(scale) and 1e-12 <= scale <= 1e12):
        raise g.error(f"{what} {t.name!r} has scale {scale!r}; an activation scale must be in 1e-12..1e12")
    zp = int(t.zero_point[0]) + (128 if t.type == _INT8 else 0)
    if not 0 <= zp <= 255:
        raise g.error(f"{what} {t.name!r} has zero point {int(t.zero_point[0])}, outside its type's range")
    return scale, zp


def _int8_weights(g: _Graph, layer: _Layer, channels: int, qdim: int) -> Tuple[np.ndarray, np.ndarray]:
    """A layer's weight codes minus their zero point (file layout) and one float32 scale per output
    channel: symmetric int8 weights as int8; weights with a zero point (legacy uint8 files' per-tensor
    asymmetric uint8, or int8 with a zero point) as int16 ``code - zero point``, which must span at
    most 255 steps (``quantization.split_weight_offset``)."""
    w = layer.w
    if w.type not in (_INT8, _UINT8) or w.data is None or not w.quantized:
        raise g.error(f"{g.desc(layer.op)}: weights {w.name!r} are {w.type_name}; a quantised MobileNetV1 "
                      "has int8 (or legacy uint8) weights with per-channel (or per-tensor) scales")
    assert w.scale is not None and w.zero_point is not None
    if w.scale.size not in (1, channels) or w.zero_point.size not in (1, w.scale.size):
        raise g.error(f"{g.desc(layer.op)}: weights {w.name!r} have {w.scale.size} scales and "
                      f"{w.zero_point.size} zero points for {channels} output channels")
    if w.scale.size > 1 and w.qdim != qdim:
        raise g.error(f"{g.desc(layer.op)}: weights {w.name!r} are quantised along dimension {w.qdim}, "
                      f"expected {qdim} (the output channels)")
    scale = np.broadcast_to(w.scale.astype(np.float32), (channels,)).copy()
    if not (np.all(np.isfinite(scale)) and np.all(scale > 0)):
        raise g.error(f"{g.desc(layer.op)}: weights {w.name!r} have a scale that is not finite and > 0")
    lo, hi = (0, 255) if w.type == _UINT8 else (-128, 127)
    zp = w.zero_point.astype(np.int64)
    if np.any((zp < lo) | (zp > hi)):
        raise g.error(f"{g.desc(layer.op)}: weights {w.name!r} have a zero point outside {lo}..{hi}")
    if w.type == _INT8 and not np.any(zp):
        if np.any(w.data == -128):
            raise g.error(f"{g.desc(layer.op)}: weights {w.name!r} hold -128; symmetric int8 weights are -127..127")
        return w.data, scale
    # Zero points along the output channels (qdim), or one for the tensor.
    shape = [1] * w.data.ndim
    if zp.size > 1:
        shape[qdim] = zp.size
    wide = w.data.astype(np.int16) - zp.reshape(shape).astype(np.int16)
    if wide.size and int(wide.max()) - int(wide.min()) > 255:
        raise g.error(f"{g.desc(layer.op)}: weights {w.name!r} minus their per-channel zero points span "
                      f"{int(wide.min())}..{int(wide.max())}, more than 255 steps; the int8 engine runs weights with "
                      "a zero point as int8 plus one offset per layer")
    return wide, scale


def _int32_bias(g: _Graph, layer: _Layer, channels: int, in_scale: float, w_scale: np.ndarray,
                weight: np.ndarray) -> np.ndarray:
    """The int32 bias, checked: at the accumulator's scale, and leaving the int32 accumulator room
    for the largest sum any input can give with the channel's weights (``weight``: canonical
    layout, output channels last)."""
    from ..quantization import overflowing_channel

    b = layer.b
    if b is None:
        return np.zeros(channels, np.int32)
    if b.type != _INT32 or b.data is None or b.data.shape != (channels,):
        raise g.error(f"{g.desc(layer.op)}: bias {b.name!r} is {b.type_name} of shape {list(b.shape)}; "
                      f"expected int32 [{channels}]")
    if b.quantized:
        assert b.scale is not None
        want = np.float64(in_scale) * w_scale.astype(np.float64)
        got = np.broadcast_to(b.scale.astype(np.float64), (channels,))
        if not np.allclose(got, want, rtol=1e-5, atol=0):
            raise g.error(f"{g.desc(layer.op)}: bias {b.name!r} is not at the accumulator's scale "
                          "(input scale x weight scale)")
    c = overflowing_channel(weight, b.data)
    if c is not None:
        raise g.error(f"{g.desc(layer.op)}: bias {b.name!r} (channel {c}) could overflow the int32 accumulator with "
                      "its weights")
    return b.data.astype(np.int32)


def import_tflite_int8(path: PathLike, *, labels: Optional[Sequence[str]] = None,
                       input_mean: Optional[Sequence[float]] = None, input_std: Optional[Sequence[float]] = None,
                       source: Optional[str] = None) -> Tuple[ModelConfig, Any]:
    """Read a full-integer MobileNetV1 ``.tflite`` (int8 or uint8 activations, symmetric int8 or
    zero-pointed 8-bit weights per channel or per tensor, int32 biases) as our int8 network: returns
    ``(config, qnet)`` (a :class:`~mobilenet_fast.quantization.QuantizedNet`), what
    :func:`mobilenet_fast.load` turns into a :class:`~mobilenet_fast.quantization.QuantizedModel`.

    The file's arithmetic maps onto ours without change: an int8 activation code q is the uint8
    code q + 128 (zero point + 128), weights and biases are taken as they are (transposed to our
    layouts), each layer requantises with the float32 multiplier input scale x weight scale /
    output scale, round half to even, and clamps to the fused activation's range
    (``zp + rint(6 / scale)`` for RELU6), which is how LiteRT's default XNNPACK delegate computes
    (its "fp32" requantisation). The pool requantises its int32 sum with input scale / (H x W x
    output scale); the classifier requantises onto the file's int8 logit grid and the model's
    logits are those codes dequantised, the numbers LiteRT returns (``QuantizedNet.logits_output``). Whether the file takes int8 or float input, the model
    takes normalised float images (``input_mean``/``input_std``, default 127.5) and quantises them
    with the scale and zero point of the file's (quantised) input.

    Weights with a zero point (legacy uint8 files: per-tensor asymmetric uint8) are kept as int16
    ``code - zero point`` (at most 255 steps apart; the engine runs them as int8 plus one offset per
    layer, exactly). A quantised ``AVERAGE_POOL_2D`` rounds half up in integers as TFLite's does
    (``QuantizedNet.pool_half_up``; it must keep its input's quantisation), MEAN requantises.

    Raises :class:`ImportFormatError` for a float file (use :func:`import_tflite`), weights whose
    zero-point-corrected codes span more than 255 steps, per-channel activations, scales that are
    not finite and positive, zero points outside their type, a bias at another scale, and
    everything :func:`import_tflite` refuses.
    """
    from ..quantization import QLayer, QParams, QuantizedNet, logit_scale, requant_multiplier  # lazily

    _, p, where, _, g, found = _read_file(path)
    if not _is_quantized(found):
        raise ImportFormatError(f"{where}: a float TFLite model; read it with import_tflite (mobilenet_fast.load "
                                "does this by itself)")
    config = _config(g, found, p, where, labels, input_mean, input_std, source,
                     "int8 (full-integer quantised: 8-bit weights, integer activations)")
    specs = [s for s in config.architecture() if s.kind in ("conv3x3", "dwconv3x3", "pwconv")]
    x_t = g.tensors[found.quantize.outputs[0]] if found.quantize is not None else found.input
    qin = QParams(*_act_params(g, x_t, "the input"))
    prev = qin
    layers = []
    for layer, spec in zip(found.layers, specs):
        qx = QParams(*_act_params(g, layer.x, f"{_title(layer.name)}: input"))
        if qx != prev:
            raise g.error(f"{g.desc(layer.op)}: its input is quantised with scale {qx.scale:g}, zero point "
                          f"{qx.zero_point} but the previous layer's output with {prev.scale:g}, {prev.zero_point}")
        qy = QParams(*_act_params(g, layer.y, f"{_title(layer.name)}: output"))
        if layer.kind == "dwconv3x3":
            w8, ws = _int8_weights(g, layer, spec.out_channels, 3)
            weight = w8[0]
        else:
            w8, ws = _int8_weights(g, layer, spec.out_channels, 0)
            weight = w8.transpose(1, 2, 3, 0) if layer.kind == "conv3x3" else w8[:, 0, 0, :].T
        bias = _int32_bias(g, layer, spec.out_channels, qx.scale, ws, weight)
        lo = qy.zero_point
        hi = 255 if layer.act == "relu" else min(255, qy.zero_point + int(np.rint(np.float32(6.0) / np.float32(qy.scale))))
        layers.append(QLayer(spec, np.ascontiguousarray(weight), ws, bias, qx, qy, (lo, hi)))
        m = layers[-1].multiplier
        if not (np.all(np.isfinite(m)) and np.all(m > 0)):
            raise g.error(f"{g.desc(layer.op)}: its scales give a requantisation multiplier that is 0 or not "
                          "finite in float32")
        prev = qy
    assert found.pool_in is not None and found.pool_out is not None
    pool_out = QParams(*_act_params(g, found.pool_out, "the pool's output"))
    classifier = None
    if found.classifier is not None:
        cl = found.classifier
        qx = QParams(*_act_params(g, cl.x, "the classifier's input"))
        if qx != pool_out:
            raise g.error(f"{g.desc(cl.op)}: its input is not quantised as the pool's output")
        n = cl.w.shape[0]
        w8, ws = _int8_weights(g, cl, n, 0)
        weight = (w8 if w8.ndim == 2 else w8[:, 0, 0, :]).T
        bias = _int32_bias(g, cl, n, qx.scale, ws, weight)
        dense = next(s for s in config.architecture() if s.kind == "dense")
        classifier = QLayer(dense, np.ascontiguousarray(weight), ws, bias, qx, None)
        m = logit_scale(qx.scale, ws)
        if not (np.all(np.isfinite(m)) and np.all(m > 0)):
            raise g.error(f"{g.desc(cl.op)}: its scales give a logit scale that is 0 or not finite in float32")
    logits_output = None
    if found.classifier is not None and classifier is not None:
        logits_output = QParams(*_act_params(g, found.classifier.y, "the logits"))
        m = requant_multiplier(pool_out.scale, classifier.weight_scale, logits_output.scale)
        if not (np.all(np.isfinite(m)) and np.all(m > 0)):
            raise g.error(f"{g.desc(found.classifier.op)}: its scales give a requantisation multiplier that is 0 "
                          "or not finite in float32")
    # A quantised AVERAGE_POOL_2D (TFLite requires the same quantisation on both sides) rounds the
    # average half up in integers, in LiteRT's XNNPACK and builtin kernels alike; MEAN requantises.
    half_up = found.pool_op is not None and found.pool_op.name == "AVERAGE_POOL_2D"
    if found.pool_op is not None and half_up and pool_out != prev:
        raise g.error(f"{g.desc(found.pool_op)}: a quantised AVERAGE_POOL_2D keeps its input's scale and zero point; "
                      f"this one has {pool_out.scale:g}, {pool_out.zero_point} for an input with {prev.scale:g}, "
                      f"{prev.zero_point}")
    qnet = QuantizedNet(config.alpha, qin, layers, pool_out, classifier, method="tflite", bias_correction=False,
                        pair_limit=False, rounding="file", logits_output=logits_output, pool_half_up=half_up)
    return config, qnet
