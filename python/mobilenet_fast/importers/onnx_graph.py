"""Import a MobileNetV1 ONNX graph (``.onnx``).

ONNX has no naming convention for the layers, so this importer does not look at names: it walks
the graph from its image input along the data edges (not in node order) and matches the chain of
operators against MobileNetV1, reading every weight from the initializers (or ``Constant`` nodes,
through ``Identity``/``Cast``/``Reshape``/``Expand``/... of constants, as exporters like to
write them). What it accepts, in order:

========================  ========================================================================
input                     one float32 image input, ``[N, 3, H, W]`` (NCHW), or ``[N, H, W, 3]``
                          followed by ``Transpose(perm=[0, 3, 1, 2])`` (our own exporter, tf2onnx)
stem                      ``Conv`` 3x3, stride 2, group 1, 3 -> C0 channels
13 blocks                 depthwise ``Conv`` 3x3 (``group`` = channels, weight ``[C, 1, 3, 3]``),
                          then a pointwise 1x1 ``Conv``
after every Conv          optional ``BatchNormalization`` (inference mode), then the activation:
                          ``Clip(0, 6)`` (ReLU6; min/max as inputs, or as attributes for opset < 11)
                          or ``Relu``; a ``Pad`` (constant zeros, on H/W only) may precede a Conv
pooling                   ``GlobalAveragePool``, ``AveragePool`` over the whole map, or
                          ``ReduceMean`` over H and W
head                      ``Flatten`` / ``Reshape`` / ``Squeeze`` / ``Dropout`` / ``Identity``, then
                          optionally the classifier: ``Gemm`` (``transB`` 0 or 1), ``MatMul`` (+
                          ``Add``) or a 1x1 ``Conv`` with bias; then optionally ``Softmax``. A graph
                          ending at the pooled features is a feature extractor (``num_classes=0``)
========================  ========================================================================

Anything else gets an :class:`ImportFormatError` naming the first node that does not fit (its name,
op type, and what was expected there), or the initializer whose shape is wrong.

Layouts: ONNX convolution weights are OIHW; they become our stem HWIO ``[3, 3, 3, C0]``
(``W.transpose(2, 3, 1, 0)``), depthwise ``[3, 3, C]`` (``W[:, 0].transpose(1, 2, 0)``), pointwise
``[Cin, Cout]`` (``W[:, :, 0, 0].T``); the classifier becomes ``[C, num_classes]`` (``Gemm`` with
``transB=1`` and 1x1 ``Conv`` weights are transposed, ``MatMul`` and ``transB=0`` weights are not).
Only transposes are applied, so values are bit-for-bit those of the file.

BatchNorm: a ``BatchNormalization`` node gives gamma/beta/mean/var (a Conv bias in front of it is
moved into the mean: ``mean - bias``). A Conv with its BatchNorm folded in (a bias and no BN node,
what ``torch.onnx.export`` writes by default in eval mode) is stored as gamma = 1, beta = bias,
mean = 0, var = 1 with ``bn_epsilon = 0``, which folds back to exactly the file's weights and bias.
All BN nodes must use one epsilon. (In a graph mixing BN nodes and folded Convs the folded layers get
gamma = sqrt(1 + eps) in float32: exact up to one float32 rounding.)

Configuration:

* alpha from the channel counts (C0 / 32, else C_last / 1024; the one reproducing every layer);
  num_classes from the classifier;
* resolution from the input's H and W (``dim_value``); symbolic or unknown sizes give 224;
* padding convention from the 3x3 convs' ``pads`` (ONNX order ``[top, left, bottom, right]``),
  ``auto_pad`` and any ``Pad`` in front, at the input's resolution, among
  :data:`~mobilenet_fast.architecture.PADDING_CONVENTIONS`: ``symmetric`` when every 3x3 conv pads
  1/1/1/1 (PyTorch's padding=1), ``tf_same`` when they match TensorFlow's SAME (``auto_pad=SAME_UPPER``
  always does), ``keras`` when they match Keras' MobileNet (stride-2 depthwise convs padded 0/0/1/1
  whatever the size). Where several give the same pads (TF SAME pads odd sizes 1/1/1/1 too, and
  ``keras`` equals ``tf_same`` on even sizes) the graph's form decides: all 1/1/1/1 -> ``symmetric``,
  ``Pad`` nodes (Keras' ``ZeroPadding2D``) in front of the stride-2 depthwise convs only -> ``keras``,
  else ``tf_same``. No match is an error listing the pads found. Strides must be MobileNetV1's,
  dilations 1;
* activation ``relu6`` (``Clip(0, 6)``) or ``relu`` (``Relu``, or ``Clip`` with min 0 and no max);
  every layer must use the same one;
* input normalisation is not recorded in ONNX. The default is ``(x - 127.5) / 127.5`` (pixels to
  [-1, 1]), what TF-slim/Keras MobileNets and timm's ``mobilenetv1_*`` configs (mean = std = 0.5)
  expect; pass ``input_mean``/``input_std`` for other training setups, e.g. :data:`IMAGENET_MEAN` /
  :data:`IMAGENET_STD` for torchvision-style ImageNet statistics.

Graphs written by :func:`mobilenet_fast.export_onnx.export_onnx` carry our config in
``metadata_props`` (``format`` = ``mobilenet-fast``); then alpha, resolution, padding, epsilon,
input normalisation, labels and source are taken from there (after checking them against the
graph), so exporting and importing gives back the same config and bit-identical tensors.

What real exporters write (timm ``mobilenetv1_*`` through ``torch.onnx.export``, torch 2.14):
the legacy TorchScript exporter (``dynamo=False``) folds BatchNorm into Conv biases by default and
keeps ``BatchNormalization`` with ``training=TrainingMode.PRESERVE, do_constant_folding=False``;
it writes ReLU6 as ``Clip`` with ``Constant`` min/max, ``GlobalAveragePool -> Flatten -> Gemm
(transB=1)``, and ``Identity`` nodes for initializers with equal values. The dynamo exporter folds
BatchNorm in its optimizer (``optimize=False`` keeps it, with Conv biases built by
``Expand(CastLike(0))`` of constants), pools with ``ReduceMean`` + ``Reshape``, and keeps the
weights in a ``.onnx.data`` file next to the model (read through ``onnx.load``).

Needs the ``onnx`` package (``pip install "mobilenet-fast[onnx]"``), imported lazily; onnxruntime
is not used.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Union

import numpy as np

from ..architecture import BLOCK_CONFIG, MAX_ALPHA, PADDING_CONVENTIONS, STEM_CHANNELS, MobileNetV1
from ..errors import ImportFormatError, InputError, MissingDependencyError, MobileNetFastError, WeightFileError
from ..weights import FORMAT_NAME, ModelConfig, WeightSet, check_rgb, file_sha256
from ._common import checked_labels, checked_path

__all__ = ["import_onnx", "DEFAULT_RESOLUTION", "IMAGENET_MEAN", "IMAGENET_STD", "TF_MEAN", "TF_STD"]

PathLike = Union[str, "os.PathLike[str]"]
Pads = Tuple[int, int, int, int]

#: Input size used when the graph's input height/width are symbolic or unknown.
DEFAULT_RESOLUTION = 224
#: torchvision-style ImageNet statistics on 0..255 pixels (not a default: pass them as ``input_mean``/``input_std``).
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
#: Default normalisation (TF-slim, Keras, timm mobilenetv1): pixels to [-1, 1].
TF_MEAN = (127.5, 127.5, 127.5)
TF_STD = (127.5, 127.5, 127.5)

_NUM_BLOCKS = len(BLOCK_CONFIG)
_STD_DOMAINS = ("", "ai.onnx")
#: Consumers that only read a tensor's shape or type, not its values (dynamic-shape exports).
_SHAPE_READERS = ("Shape", "Size")
#: Ops allowed between the pooling and the end of the graph that do not change values.
_HEAD_PASS = ("Flatten", "Reshape", "Squeeze", "Dropout", "Identity")
#: Largest tensor the constant folder will build (elements).
_MAX_FOLD = 1 << 26
_DEFAULT_OPSET = 21


def _import_onnx() -> Any:
    try:
        import onnx
        from onnx import helper, numpy_helper  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError(
            f"reading ONNX files needs the 'onnx' package ({e}); install it with: "
            'pip install "mobilenet-fast[onnx]"') from None
    return onnx


# -- the graph ---------------------------------------------------------------------------------------

@dataclass
class _Conv:
    """One convolution layer as found in the graph (weights still in ONNX layout)."""

    name: str                      # canonical: stem, blocks.{i}.dw, blocks.{i}.pw
    node: Any
    weight_name: str
    weight: np.ndarray             # OIHW
    bias_name: Optional[str]
    bias: Optional[np.ndarray]
    stride: int
    pads: Pads                     # effective (top, left, bottom, right), including a Pad node
    auto_pad: str                  # NOTSET, SAME_UPPER, SAME_LOWER, VALID
    pad_node: Any                  # a Pad node in front of the Conv, or None
    in_hw: Tuple[int, int]
    out_hw: Tuple[int, int]
    bn_node: Any = None
    bn_names: Tuple[str, ...] = ()
    bn: Tuple[np.ndarray, ...] = ()
    bn_eps: Optional[float] = None
    act: str = "relu6"
    act_node: Any = None


@dataclass
class _Found:
    """Everything the walk found."""

    input_name: str
    layout: str
    hw: Tuple[int, int]
    hw_known: bool
    convs: List[_Conv] = field(default_factory=list)
    classifier_node: Any = None
    classifier_weight_name: str = ""
    classifier_weight: Optional[np.ndarray] = None   # [C, N]
    classifier_bias_name: str = ""
    classifier_bias: Optional[np.ndarray] = None     # [N]


class _Graph:
    """Lookups over an ``onnx.GraphProto`` with errors that name the node or tensor."""

    def __init__(self, onnx: Any, model: Any, where: str) -> None:
        self.onnx = onnx
        self.model = model
        self.graph = model.graph
        self.where = where
        self.opset = _DEFAULT_OPSET
        for imp in model.opset_import:
            if imp.domain in _STD_DOMAINS:
                self.opset = int(imp.version)
        self.inits: Dict[str, Any] = {}
        for t in self.graph.initializer:
            self.inits[t.name] = t
        self.producers: Dict[str, Any] = {}
        self.consumers: Dict[str, List[Any]] = {}
        self.index: Dict[int, int] = {}
        for i, node in enumerate(self.graph.node):
            self.index[id(node)] = i
            for out in node.output:
                if not out:
                    continue
                if out in self.producers:
                    raise self.error(f"tensor {out!r} is produced by two nodes ({self.desc(self.producers[out])} "
                                     f"and {self.desc(node)}); not a valid ONNX graph")
                self.producers[out] = node
            for inp in node.input:
                if inp:
                    lst = self.consumers.setdefault(inp, [])
                    if not lst or lst[-1] is not node:
                        lst.append(node)
        self.outputs = [o.name for o in self.graph.output]
        self._const: Dict[str, Optional[np.ndarray]] = {}
        self._folding: Set[str] = set()

    # -- messages -----------------------------------------------------------------------------------
    def error(self, msg: str) -> ImportFormatError:
        return ImportFormatError(f"{self.where}: {msg}")

    def desc(self, node: Any) -> str:
        if node is None:
            return "the end of the graph"
        if node.name:
            return f"node {node.name!r} ({node.op_type})"
        return f"unnamed node #{self.index.get(id(node), '?')} ({node.op_type})"

    def misfit(self, node: Any, expected: str, x: str) -> ImportFormatError:
        """The first node that does not fit: ``node`` reads ``x`` where ``expected`` should be."""
        if node is None:
            return self.error(f"the graph ends at tensor {x!r}, expected {expected}")
        return self.error(f"{self.desc(node)} does not fit a MobileNetV1: expected {expected}")

    # -- attributes ---------------------------------------------------------------------------------
    def attrs(self, node: Any) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for a in node.attribute:
            try:
                out[a.name] = self.onnx.helper.get_attribute_value(a)
            except Exception as e:  # malformed attribute protos
                raise self.error(f"{self.desc(node)} has an unreadable attribute {a.name!r} ({e})") from None
            if isinstance(out[a.name], bytes):
                out[a.name] = out[a.name].decode("utf-8", errors="replace")
        return out

    # -- constants ----------------------------------------------------------------------------------
    def array(self, tp: Any, what: str) -> np.ndarray:
        """Decode a TensorProto after checking its declared size against the data it holds."""
        from onnx import TensorProto, helper, numpy_helper

        if tp.data_location == TensorProto.EXTERNAL:
            raise self.error(f"{what} {tp.name!r} keeps its data in an external file that was not loaded")
        if tp.HasField("segment"):
            raise self.error(f"{what} {tp.name!r} is a segmented tensor; not supported")
        dims = [int(d) for d in tp.dims]
        if any(d < 0 for d in dims):
            raise self.error(f"{what} {tp.name!r} has a negative dimension in its shape {dims}")
        n = math.prod(dims)
        try:
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tp.data_type))
        except Exception:
            raise self.error(f"{what} {tp.name!r} has data type {tp.data_type}, which this importer cannot "
                             "read") from None
        if dtype.kind not in "fiub":
            raise self.error(f"{what} {tp.name!r} has data type {dtype}; expected numbers")
        if tp.raw_data:
            if len(tp.raw_data) != n * dtype.itemsize:
                raise self.error(f"{what} {tp.name!r}: raw_data has {len(tp.raw_data)} bytes but shape {dims} of "
                                 f"{dtype} needs {n * dtype.itemsize} (truncated or corrupt file)")
        else:
            held = (len(tp.float_data) + len(tp.int32_data) + len(tp.int64_data) + len(tp.double_data)
                    + len(tp.uint64_data))
            if held != n:
                raise self.error(f"{what} {tp.name!r} holds {held} values but its shape {dims} needs {n} "
                                 "(truncated or corrupt file)")
        try:
            arr = numpy_helper.to_array(tp)
        except Exception as e:
            raise self.error(f"{what} {tp.name!r} could not be decoded ({type(e).__name__}: {e})") from None
        return np.asarray(arr).reshape(dims)

    def const(self, name: str) -> Optional[np.ndarray]:
        """Value of tensor ``name`` if it does not depend on the input, else None."""
        if not name:
            return None
        if name in self._const:
            return self._const[name]
        if name in self._folding or len(self._folding) > 64:
            return None
        self._folding.add(name)
        try:
            value = self._fold(name)
        finally:
            self._folding.discard(name)
        self._const[name] = value
        return value

    def _fold(self, name: str) -> Optional[np.ndarray]:
        if name in self.inits:
            return self.array(self.inits[name], "initializer")
        node = self.producers.get(name)
        if node is None or node.domain not in _STD_DOMAINS:
            return None
        op = node.op_type
        a = self.attrs(node)
        if op == "Constant":
            if "value" in a:
                return self.array(a["value"], f"tensor of {self.desc(node)}")
            for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                               ("value_int", np.int64), ("value_ints", np.int64)):
                if key in a:
                    return np.asarray(a[key], dtype=dtype)
            raise self.error(f"{self.desc(node)} has no numeric value attribute")
        ins = [self.const(i) if i else None for i in node.input]
        x = ins[0] if ins else None
        if op == "Shape":
            if x is None:
                return None
            start, end = int(a.get("start", 0)), a.get("end", None)
            return np.asarray(x.shape[start:end] if end is not None else x.shape[start:], dtype=np.int64)
        if x is None:
            return None
        if op == "Identity":
            return x
        if op == "Cast":
            from onnx import helper

            return x.astype(helper.tensor_dtype_to_np_dtype(int(a["to"])))
        if op == "CastLike":
            like = ins[1] if len(ins) > 1 else None
            # a non-constant "like" tensor is on the data path, float32 in any graph we accept
            return x.astype(like.dtype if like is not None else np.float32)
        if op == "Reshape" and len(ins) > 1 and ins[1] is not None:
            shape = [int(v) for v in ins[1].reshape(-1)]
            if not a.get("allowzero", 0):
                shape = [x.shape[i] if v == 0 and i < x.ndim else v for i, v in enumerate(shape)]
            return x.reshape(shape)
        if op == "Expand" and len(ins) > 1 and ins[1] is not None:
            target = np.broadcast_shapes(x.shape, tuple(int(v) for v in ins[1].reshape(-1)))
            if math.prod(target) > _MAX_FOLD:
                raise self.error(f"{self.desc(node)} expands a constant to shape {list(target)}; too large")
            return np.broadcast_to(x, target).copy()
        if op in ("Unsqueeze", "Squeeze"):
            axes = a.get("axes")
            if axes is None and len(ins) > 1 and ins[1] is not None:
                axes = [int(v) for v in ins[1].reshape(-1)]
            if op == "Squeeze":
                if axes is None:
                    return np.squeeze(x)
                return np.squeeze(x, axis=tuple(v % x.ndim for v in axes))
            if axes is None:
                return None
            rank = x.ndim + len(axes)
            for v in sorted(v % rank for v in axes):
                x = np.expand_dims(x, v)
            return x
        if op == "Concat":
            parts = [v for v in ins if v is not None]
            if len(parts) != len(ins):
                return None
            return np.concatenate(parts, axis=int(a.get("axis", 0)))
        return None

    def tensor(self, name: str, node: Any, what: str) -> np.ndarray:
        """The float32 constant ``name`` read by ``node`` as its ``what``."""
        value = self.const(name)
        if value is None:
            raise self.error(f"{what} of {self.desc(node)} (tensor {name!r}) is not a constant (initializer "
                             "or Constant); cannot read the weights")
        if value.dtype != np.float32:
            raise self.error(f"{what} of {self.desc(node)} (tensor {name!r}) has dtype {value.dtype}, "
                             "expected float32")
        return value

    def scalar(self, name: str, node: Any, what: str) -> float:
        value = self.const(name)
        if value is None or value.size != 1:
            raise self.error(f"{what} of {self.desc(node)} (tensor {name!r}) must be a constant scalar")
        return float(value.reshape(-1)[0])

    # -- walking ------------------------------------------------------------------------------------
    def next(self, x: str) -> Tuple[Optional[Any], str]:
        """The one node reading the values of tensor ``x`` and the tensor it reads (``x``, or the
        output of the ``Identity`` nodes in between); the node is None at the end of the chain."""
        for _ in range(len(self.graph.node) + 1):
            users = [n for n in self.consumers.get(x, ())
                     if n.op_type not in _SHAPE_READERS
                     and not (n.op_type == "CastLike" and n.input[0] != x)]
            if not users:
                return None, x
            if len(users) > 1:
                names = ", ".join(self.desc(n) for n in users)
                raise self.error(f"tensor {x!r} feeds {len(users)} nodes ({names}); a MobileNetV1 is one chain "
                                 f"of layers, so {self.desc(users[1])} does not fit")
            node = users[0]
            if node.domain not in _STD_DOMAINS:
                raise self.error(f"{self.desc(node)} is in op domain {node.domain!r}; only standard ONNX "
                                 "operators are supported")
            if node.op_type == "Identity" and node.input[0] == x:
                x = node.output[0]
                continue
            return node, x
        raise self.error(f"the graph has a cycle through tensor {x!r}")  # pragma: no cover


# -- reading the layers ---------------------------------------------------------------------------------

def _layer_title(name: str) -> str:
    if name == "stem":
        return "the stem (3x3 Conv, stride 2)"
    i, kind = name.split(".")[1:]
    what = "depthwise 3x3 Conv" if kind == "dw" else "pointwise 1x1 Conv"
    return f"the {what} of block {int(i) + 1} of {_NUM_BLOCKS} ({name})"


def _pad_node_amounts(g: _Graph, node: Any) -> Pads:
    """(top, left, bottom, right) of a 4-D constant-zero ``Pad`` node on H and W only."""
    a = g.attrs(node)
    mode = a.get("mode", "constant")
    if mode != "constant":
        raise g.error(f"{g.desc(node)} pads in mode {mode!r}; only zero padding (mode 'constant') fits")
    if "pads" in a:
        pads = [int(v) for v in a["pads"]]
        value = float(a.get("value", 0.0))
    else:
        p = g.const(node.input[1]) if len(node.input) > 1 else None
        if p is None:
            raise g.error(f"{g.desc(node)} has no constant 'pads' input")
        pads = [int(v) for v in p.reshape(-1)]
        value = g.scalar(node.input[2], node, "constant_value") if len(node.input) > 2 and node.input[2] else 0.0
        if len(node.input) > 3 and node.input[3]:
            axes_arr = g.const(node.input[3])
            if axes_arr is None:
                raise g.error(f"{g.desc(node)} has no constant 'axes' input")
            axes = [int(v) % 4 for v in axes_arr.reshape(-1)]
            full = [0] * 8
            k = len(axes)
            if len(pads) != 2 * k:
                raise g.error(f"{g.desc(node)} has {len(pads)} pads for {k} axes; expected {2 * k}")
            for j, ax in enumerate(axes):
                full[ax], full[ax + 4] = pads[j], pads[j + k]
            pads = full
    if value != 0.0:
        raise g.error(f"{g.desc(node)} pads with {value:g}; only zero padding fits a MobileNetV1")
    if len(pads) != 8 or pads[0] or pads[1] or pads[4] or pads[5]:
        raise g.error(f"{g.desc(node)} has pads {pads}; expected 8 values padding only H and W of an NCHW tensor")
    if any(v < 0 for v in pads):
        raise g.error(f"{g.desc(node)} has negative pads {pads} (cropping); not a MobileNetV1")
    return (pads[2], pads[3], pads[6], pads[7])


def _conv_geometry(g: _Graph, node: Any, a: Dict[str, Any], kernel: int, stride: int, in_hw: Tuple[int, int],
                   extra: Pads) -> Tuple[Pads, str, Tuple[int, int]]:
    """Effective pads, auto_pad and output size of a Conv on ``in_hw`` after a Pad of ``extra``."""
    auto = str(a.get("auto_pad", "NOTSET")) or "NOTSET"
    raw = [int(v) for v in a.get("pads", [0, 0, 0, 0])]
    if len(raw) != 4:
        raise g.error(f"{g.desc(node)} has pads {raw}; expected 4 values for a 2-D convolution")
    if any(v < 0 for v in raw):
        raise g.error(f"{g.desc(node)} has negative pads {raw}")
    h = in_hw[0] + extra[0] + extra[2]
    w = in_hw[1] + extra[1] + extra[3]
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        own: List[Tuple[int, int]] = []
        for n in (h, w):
            out = -(-n // stride)
            need = max((out - 1) * stride + kernel - n, 0)
            small = need // 2
            own.append((small, need - small) if auto == "SAME_UPPER" else (need - small, small))
        pads = (own[0][0], own[1][0], own[0][1], own[1][1])
    elif auto == "VALID":
        pads = (0, 0, 0, 0)
    elif auto == "NOTSET":
        pads = (raw[0], raw[1], raw[2], raw[3])
    else:
        raise g.error(f"{g.desc(node)} has an unknown auto_pad {auto!r}")
    total = (pads[0] + extra[0], pads[1] + extra[1], pads[2] + extra[2], pads[3] + extra[3])
    oh = (in_hw[0] + total[0] + total[2] - kernel) // stride + 1
    ow = (in_hw[1] + total[1] + total[3] - kernel) // stride + 1
    if oh < 1 or ow < 1:
        raise g.error(f"{g.desc(node)}: a {in_hw[0]}x{in_hw[1]} input gives an empty output; the input is too small")
    return total, auto, (oh, ow)


def _read_conv(g: _Graph, x: str, name: str, in_hw: Tuple[int, int]) -> Tuple[_Conv, str]:
    """Read ``[Pad] -> Conv -> [BatchNormalization] -> Clip/Relu`` starting at tensor ``x``."""
    title = _layer_title(name)
    kind = "stem" if name == "stem" else name.rsplit(".", 1)[1]
    if kind == "stem":
        stride = 2
    elif kind == "dw":
        stride = BLOCK_CONFIG[int(name.split(".")[1])][1]
    else:
        stride = 1
    kernel = 1 if kind == "pw" else 3
    node, x = g.next(x)
    extra: Pads = (0, 0, 0, 0)
    pad_node = None
    if node is not None and node.op_type == "Pad" and kind != "pw":
        if node.input[0] != x:
            raise g.misfit(node, title, x)
        extra = _pad_node_amounts(g, node)
        pad_node = node
        node, x = g.next(node.output[0])
    if node is None or node.op_type != "Conv":
        raise g.misfit(node, title, x)
    if len(node.input) < 2 or node.input[0] != x:
        raise g.error(f"{g.desc(node)} ({name}) must read the activations as its first input and the weights "
                      "as its second")
    a = g.attrs(node)
    w_name = node.input[1]
    w = g.tensor(w_name, node, "the weight input")
    if w.ndim != 4:
        raise g.error(f"initializer {w_name!r} (weights of {g.desc(node)}, {name}) has shape {list(w.shape)}; "
                      "expected a 4-D OIHW convolution kernel")
    k = tuple(int(v) for v in a.get("kernel_shape", w.shape[2:]))
    if k != tuple(w.shape[2:]):
        raise g.error(f"{g.desc(node)} ({name}) has kernel_shape {list(k)} but its weights {w_name!r} have "
                      f"shape {list(w.shape)}")
    group = int(a.get("group", 1))
    if k != (kernel, kernel):
        raise g.error(f"{g.desc(node)} has a {k[0]}x{k[1]} kernel where {title} should be {kernel}x{kernel}")
    if kind == "dw":
        if group == 1:
            raise g.error(f"{g.desc(node)} is a full 3x3 convolution (group=1) where {title} should be "
                          f"depthwise (group = channels, weights [C, 1, 3, 3]; found {list(w.shape)})")
        if w.shape[1] != 1 or group != w.shape[0]:
            raise g.error(f"{g.desc(node)} has group={group} and weights {w_name!r} of shape {list(w.shape)}; "
                          f"{title} needs group = channels = C and weights [C, 1, 3, 3] (channel multiplier 1)")
    elif group != 1:
        raise g.error(f"{g.desc(node)} has group={group}; {title} needs group=1")
    strides = [int(v) for v in a.get("strides", [1, 1])]
    if strides != [stride, stride]:
        raise g.error(f"{g.desc(node)} has strides {strides}; {title} needs stride {stride}")
    dilations = [int(v) for v in a.get("dilations", [1, 1])]
    if dilations != [1, 1]:
        raise g.error(f"{g.desc(node)} has dilations {dilations}; dilated MobileNetV1 graphs are not supported")
    pads, auto, out_hw = _conv_geometry(g, node, a, kernel, stride, in_hw, extra)
    if kind == "pw" and pads != (0, 0, 0, 0):
        raise g.error(f"{g.desc(node)} pads its 1x1 input by {list(pads)}; {title} has no padding")
    b_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
    bias = g.tensor(b_name, node, "the bias input") if b_name else None
    conv = _Conv(name, node, w_name, w, b_name, bias, stride, pads, auto, pad_node, in_hw, out_hw)

    y = node.output[0]
    nxt, y = g.next(y)
    if nxt is not None and nxt.op_type == "BatchNormalization":
        if nxt.input[0] != y or len(nxt.input) < 5:
            raise g.error(f"{g.desc(nxt)} must read the Conv output and have scale, B, mean and var inputs")
        ba = g.attrs(nxt)
        if int(ba.get("training_mode", 0)) != 0:
            raise g.error(f"{g.desc(nxt)} has training_mode=1; export the model in eval/inference mode")
        if int(ba.get("spatial", 1)) != 1:
            raise g.error(f"{g.desc(nxt)} has spatial=0 (per-element statistics); not a MobileNetV1 BatchNorm")
        labels = ("scale (gamma)", "B (beta)", "input_mean", "input_var")
        conv.bn_node = nxt
        conv.bn_names = tuple(nxt.input[1:5])
        conv.bn = tuple(g.tensor(t, nxt, f"the {lab} input") for t, lab in zip(conv.bn_names, labels))
        conv.bn_eps = float(ba.get("epsilon", 1e-5))
        y = nxt.output[0]
        nxt, y = g.next(y)
    expected_act = "the activation (Clip(0, 6) or Relu)"
    if conv.bn_node is None:
        expected_act = f"BatchNormalization or {expected_act}"
    expected_act += f" after {title}"
    if nxt is None or nxt.input[0] != y:
        raise g.misfit(nxt, expected_act, y)
    if nxt.op_type == "Relu":
        conv.act = "relu"
    elif nxt.op_type == "Clip":
        ca = g.attrs(nxt)
        if "min" in ca or "max" in ca:  # opset < 11
            lo, hi = float(ca.get("min", -math.inf)), float(ca.get("max", math.inf))
        else:
            lo = g.scalar(nxt.input[1], nxt, "min") if len(nxt.input) > 1 and nxt.input[1] else -math.inf
            hi = g.scalar(nxt.input[2], nxt, "max") if len(nxt.input) > 2 and nxt.input[2] else math.inf
        if lo == 0.0 and hi == 6.0:
            conv.act = "relu6"
        elif lo == 0.0 and hi >= 3.0e38:
            conv.act = "relu"
        else:
            raise g.error(f"{g.desc(nxt)} clips to [{lo:g}, {hi:g}]; {title} needs ReLU6 (Clip(0, 6)) or ReLU")
    else:
        raise g.misfit(nxt, expected_act, y)
    conv.act_node = nxt
    return conv, nxt.output[0]


def _find_input(g: _Graph) -> Tuple[str, str, Tuple[int, int], bool, str]:
    """(input tensor, layout, (h, w), size known?, tensor where NCHW data starts)."""
    from onnx import TensorProto

    inputs = [i for i in g.graph.input if i.name not in g.inits]
    if not inputs:
        raise g.error("the graph has no input (every graph input is an initializer)")
    if len(inputs) > 1:
        names = ", ".join(repr(i.name) for i in inputs)
        raise g.error(f"the graph has {len(inputs)} inputs ({names}); a MobileNetV1 has one image input")
    vi = inputs[0]
    name = vi.name
    if not vi.type.HasField("tensor_type"):
        raise g.error(f"graph input {name!r} is not a tensor")
    tt = vi.type.tensor_type
    if tt.elem_type != TensorProto.FLOAT:
        try:
            elem = TensorProto.DataType.Name(tt.elem_type)
        except ValueError:
            elem = str(tt.elem_type)
        raise g.error(f"graph input {name!r} has element type {elem}, expected FLOAT (float32)")
    dims: List[Optional[int]] = [None] * 4
    if tt.HasField("shape"):
        if len(tt.shape.dim) != 4:
            raise g.error(f"graph input {name!r} has rank {len(tt.shape.dim)}; expected a 4-D image batch "
                          "[N, 3, H, W]")
        dims = [int(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else None for d in tt.shape.dim]
    x = name
    layout = "NCHW"
    node, x = g.next(x)
    if node is not None and node.op_type == "Transpose":
        perm = [int(v) for v in g.attrs(node).get("perm", [])]
        if perm != [0, 3, 1, 2]:
            raise g.error(f"{g.desc(node)} transposes the input with perm {perm}; only NHWC -> NCHW "
                          "(perm [0, 3, 1, 2]) fits in front of the stem")
        layout = "NHWC"
        x = node.output[0]
        dims = [dims[0], dims[3], dims[1], dims[2]]
    if dims[1] is not None and dims[1] != 3:
        raise g.error(f"graph input {name!r} has {dims[1]} channels ({layout}); expected 3 (RGB)")
    known = dims[2] is not None and dims[3] is not None
    hw = (dims[2] or DEFAULT_RESOLUTION, dims[3] or DEFAULT_RESOLUTION)
    if not (32 <= hw[0] <= 16384 and 32 <= hw[1] <= 16384):
        raise g.error(f"graph input {name!r} is {hw[0]}x{hw[1]}; MobileNetV1 needs 32..16384 per side")
    return name, layout, hw, known, x


def _axes(g: _Graph, node: Any, a: Dict[str, Any], rank: int) -> Optional[List[int]]:
    axes = a.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        value = g.const(node.input[1])
        if value is None:
            raise g.error(f"{g.desc(node)} has a non-constant 'axes' input")
        axes = value.reshape(-1).tolist()
    if axes is None:
        return None
    return sorted(int(v) % rank for v in axes)


def _read_pool(g: _Graph, x: str, last: _Conv) -> Tuple[int, str]:
    """Read the global average pooling after the last block; returns (rank after it, output tensor)."""
    node, x = g.next(x)
    after = "global average pooling (GlobalAveragePool, AveragePool over the whole map or ReduceMean " \
            f"over H and W) after {_layer_title(last.name)}"
    if node is None or node.input[0] != x:
        raise g.misfit(node, after, x)
    op = node.op_type
    a = g.attrs(node)
    oh, ow = last.out_hw
    if op == "GlobalAveragePool":
        return 4, node.output[0]
    if op == "AveragePool":
        k = [int(v) for v in a.get("kernel_shape", [])]
        pads = [int(v) for v in a.get("pads", [0, 0, 0, 0])]
        auto = str(a.get("auto_pad", "NOTSET")) or "NOTSET"
        if k != [oh, ow] or any(pads) or auto not in ("NOTSET", "VALID"):
            raise g.error(f"{g.desc(node)} averages {k[0] if k else '?'}x{k[1] if len(k) > 1 else '?'} windows "
                          f"(pads {pads}, auto_pad {auto}); the last feature map is {oh}x{ow} at the graph's "
                          f"input size, so only a {oh}x{ow} pool without padding is a global average")
        return 4, node.output[0]
    if op == "ReduceMean":
        axes = _axes(g, node, a, 4)
        if axes != [2, 3]:
            raise g.error(f"{g.desc(node)} averages over axes {axes}; global pooling of NCHW needs axes [2, 3]")
        return (4 if int(a.get("keepdims", 1)) else 2), node.output[0]
    if op in ("Conv", "Pad"):
        raise g.error(f"{g.desc(node)} starts a 14th depthwise-separable block; a MobileNetV1 has exactly "
                      f"{_NUM_BLOCKS}, so expected {after}")
    raise g.misfit(node, after, x)


def _read_head(g: _Graph, x: str, rank: int, found: _Found) -> str:
    """Flatten/Reshape/Squeeze, optional classifier and Softmax up to the end of the graph."""
    softmax = None
    for _ in range(len(g.graph.node) + 1):
        node, x = g.next(x)
        if node is None:
            return x
        op = node.op_type
        a = g.attrs(node)
        if softmax is not None:
            expected = "nothing after the Softmax but Flatten/Reshape/Squeeze"
        elif found.classifier_node is not None:
            expected = "Softmax, Flatten/Reshape/Squeeze or the end of the graph after the classifier"
        else:
            expected = ("Flatten/Reshape/Squeeze, the classifier (Gemm, MatMul or a 1x1 Conv) or the end of the "
                        "graph after the global pooling")
        if node.input[0] != x:
            raise g.misfit(node, expected, x)
        if op == "Flatten":
            axis = int(a.get("axis", 1)) % rank
            if axis != 1:
                raise g.error(f"{g.desc(node)} flattens at axis {a.get('axis')}; expected axis 1 "
                              "([N, C, ...] -> [N, C])")
            rank = 2
        elif op == "Reshape":
            shape = g.const(node.input[1]) if len(node.input) > 1 else None
            if shape is not None:
                dims = [int(v) for v in shape.reshape(-1)]
                width = _head_width(found)
                keeps_width = len(dims) >= 2 and (dims[1] == width or (dims[1] == -1 and dims[0] != -1))
                if keeps_width and len(dims) == 2:
                    rank = 2
                elif keeps_width and len(dims) == 4 and dims[2:] == [1, 1]:
                    rank = 4
                else:
                    raise g.error(f"{g.desc(node)} reshapes to {dims}; expected [N, {width}] (or [N, {width}, 1, 1]) "
                                  f"at this point of the head")
            else:  # shape computed from Shape(x) (dynamic batch): a flatten to [N, C]
                rank = 2
        elif op == "Squeeze":
            axes = _axes(g, node, a, rank)
            if rank == 4 and axes in (None, [2, 3]):
                rank = 2
            else:
                raise g.error(f"{g.desc(node)} squeezes axes {axes}; expected [2, 3] of an [N, C, 1, 1] tensor")
        elif op == "Dropout":
            if len(node.input) > 2 and node.input[2]:
                mode = g.const(node.input[2])
                if mode is None or bool(mode.reshape(-1)[0]):
                    raise g.error(f"{g.desc(node)} is in training mode; export the model for inference")
        elif op == "Softmax" and found.classifier_node is not None and softmax is None:
            default = 1 if g.opset < 13 else -1  # before opset 13: flatten from axis, [N, K, 1, 1] -> [N, K]
            if int(a.get("axis", default)) % rank != 1:
                raise g.error(f"{g.desc(node)} normalises over axis {a.get('axis', default)} of a rank-{rank} "
                              "tensor; expected the class axis (1)")
            softmax = node
        elif found.classifier_node is None and softmax is None and op in ("Gemm", "MatMul", "Conv"):
            x = _read_classifier(g, node, a, rank, found)
            if op == "Conv":
                rank = 4
            else:
                rank = 2
            continue
        else:
            raise g.misfit(node, expected, x)
        x = node.output[0]
    raise g.error("the graph's head does not end")  # pragma: no cover


def _head_width(found: _Found) -> int:
    """Channels of the tensor flowing through the head (features, or classes after the classifier)."""
    if found.classifier_weight is not None:
        return int(found.classifier_weight.shape[1])
    return int(found.convs[-1].weight.shape[0])


def _read_classifier(g: _Graph, node: Any, a: Dict[str, Any], rank: int, found: _Found) -> str:
    """Read Gemm / MatMul(+Add) / 1x1 Conv; returns the logits tensor."""
    op = node.op_type
    found.classifier_node = node
    if op == "Gemm":
        if rank != 2:
            raise g.error(f"{g.desc(node)} reads a rank-{rank} tensor; flatten the pooled features to [N, C] first")
        if int(a.get("transA", 0)):
            raise g.error(f"{g.desc(node)} has transA=1; expected the features [N, C] as input A")
        w_name = node.input[1]
        w = g.tensor(w_name, node, "the weight input B")
        if w.ndim != 2:
            raise g.error(f"initializer {w_name!r} (weights of {g.desc(node)}) has shape {list(w.shape)}; "
                          "expected a matrix")
        w = w.T if int(a.get("transB", 0)) else w
        alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
        if alpha != 1.0:
            w = (w.astype(np.float64) * alpha).astype(np.float32)
        b_name = node.input[2] if len(node.input) > 2 and node.input[2] else ""
        if b_name:
            b = g.tensor(b_name, node, "the bias input C")
            if b.size != w.shape[1] or b.ndim > 2 or (b.ndim == 2 and b.shape[0] != 1):
                raise g.error(f"initializer {b_name!r} (bias of {g.desc(node)}) has shape {list(b.shape)}; "
                              f"expected [{w.shape[1]}] (one per class)")
            b = b.reshape(-1)
            if beta != 1.0:
                b = (b.astype(np.float64) * beta).astype(np.float32)
        else:
            b = np.zeros(w.shape[1], np.float32)
        out = node.output[0]
    elif op == "MatMul":
        if rank != 2:
            raise g.error(f"{g.desc(node)} reads a rank-{rank} tensor; flatten the pooled features to [N, C] first")
        w_name = node.input[1]
        w = g.tensor(w_name, node, "the weight input B")
        if w.ndim != 2:
            raise g.error(f"initializer {w_name!r} (weights of {g.desc(node)}) has shape {list(w.shape)}; "
                          "expected a matrix [C, num_classes]")
        out = node.output[0]
        b_name = ""
        b = np.zeros(w.shape[1], np.float32)
        add, out = g.next(out)
        if add is not None and add.op_type == "Add":
            other = [i for i in add.input if i != out]
            if len(other) != 1:
                raise g.error(f"{g.desc(add)} adds the logits to themselves; expected a constant bias")
            b_name = other[0]
            b = g.tensor(b_name, add, "the bias input")
            if b.size != w.shape[1] or b.ndim > 2 or (b.ndim == 2 and b.shape[0] != 1):
                raise g.error(f"initializer {b_name!r} (bias added by {g.desc(add)}) has shape {list(b.shape)}; "
                              f"expected [{w.shape[1]}] (one per class)")
            b = b.reshape(-1)
            out = add.output[0]
    else:  # 1x1 Conv on [N, C, 1, 1]
        if rank != 4:
            raise g.error(f"{g.desc(node)} is a Conv on a rank-{rank} tensor; expected [N, C, 1, 1]")
        w_name = node.input[1]
        w4 = g.tensor(w_name, node, "the weight input")
        k = list(w4.shape[2:])
        if w4.ndim != 4 or k != [1, 1] or int(a.get("group", 1)) != 1:
            raise g.error(f"{g.desc(node)} has weights {w_name!r} of shape {list(w4.shape)} and group="
                          f"{a.get('group', 1)}; a classifier Conv must be 1x1 with group=1")
        if any(int(v) for v in a.get("pads", [])) or [int(v) for v in a.get("dilations", [1, 1])] != [1, 1]:
            raise g.error(f"{g.desc(node)} pads or dilates; a classifier 1x1 Conv must not")
        w = w4[:, :, 0, 0].T
        b_name = node.input[2] if len(node.input) > 2 and node.input[2] else ""
        b = g.tensor(b_name, node, "the bias input") if b_name else np.zeros(w.shape[1], np.float32)
        if b.shape != (w.shape[1],):
            raise g.error(f"initializer {b_name!r} (bias of {g.desc(node)}) has shape {list(b.shape)}; "
                          f"expected [{w.shape[1]}] (one per class)")
        out = node.output[0]
    found.classifier_weight_name = w_name
    found.classifier_weight = np.ascontiguousarray(w, dtype=np.float32)
    found.classifier_bias_name = b_name
    found.classifier_bias = np.ascontiguousarray(b, dtype=np.float32)
    return str(out)


def _walk(g: _Graph) -> _Found:
    name, layout, hw, known, x = _find_input(g)
    found = _Found(name, layout, hw, known)
    conv, x = _read_conv(g, x, "stem", hw)
    found.convs.append(conv)
    for i in range(_NUM_BLOCKS):
        node, x = g.next(x)
        if node is not None and node.op_type in ("GlobalAveragePool", "AveragePool", "ReduceMean"):
            raise g.error(f"{g.desc(node)} pools after {i} depthwise-separable blocks; a MobileNetV1 has "
                          f"{_NUM_BLOCKS}, so expected {_layer_title(f'blocks.{i}.dw')}")
        for kind in ("dw", "pw"):
            conv, x = _read_conv(g, x, f"blocks.{i}.{kind}", conv.out_hw)
            found.convs.append(conv)
    rank, x = _read_pool(g, x, conv)
    x = _read_head(g, x, rank, found)
    if x not in g.outputs:
        raise g.error(f"the chain of layers ends at tensor {x!r}, which is not a graph output")
    return found


# -- shapes, alpha, padding ---------------------------------------------------------------------------

def _expected_oihw(arch: MobileNetV1) -> Dict[str, Tuple[int, ...]]:
    out: Dict[str, Tuple[int, ...]] = {}
    for layer in arch:
        if layer.kind == "conv3x3":
            out["stem"] = (layer.out_channels, 3, 3, 3)
        elif layer.kind == "dwconv3x3":
            out[layer.name] = (layer.in_channels, 1, 3, 3)
        elif layer.kind == "pwconv":
            out[layer.name] = (layer.out_channels, layer.in_channels, 1, 1)
    return out


_Problem = Tuple[_Conv, str, str, Tuple[int, ...], Tuple[int, ...]]


def _shape_problems(convs: List[_Conv], alpha: float, hw: Tuple[int, int]) -> List[_Problem]:
    """(layer, tensor, role, found shape, expected shape) for every tensor not fitting MobileNetV1(alpha)."""
    exp = _expected_oihw(MobileNetV1(alpha, hw, 0))
    out = []
    for c in convs:
        want = exp[c.name]
        if tuple(c.weight.shape) != want:
            out.append((c, c.weight_name, "weights", tuple(c.weight.shape), want))
        for t_name, t, role in ([(c.bias_name, c.bias, "bias")] if c.bias is not None else []) + \
                list(zip(c.bn_names, c.bn, ("BatchNorm scale", "BatchNorm B", "BatchNorm mean", "BatchNorm var"))):
            if tuple(t.shape) != (want[0],):
                out.append((c, t_name or "(no name)", role, tuple(t.shape), (want[0],)))
    return out


def _infer_alpha(g: _Graph, found: _Found, meta_alpha: Optional[float]) -> float:
    convs = found.convs
    stem_c = int(convs[0].weight.shape[0])
    last_c = int(convs[-1].weight.shape[0])
    candidates: List[Tuple[float, str]] = []
    if meta_alpha is not None:
        candidates.append((meta_alpha, "from the file's metadata"))
    candidates += [(stem_c / STEM_CHANNELS, f"from the {stem_c} output channels of the stem"),
                   (last_c / BLOCK_CONFIG[-1][0], f"from the {last_c} output channels of the last block")]
    best = None
    for alpha, why in candidates:
        if not 0 < alpha <= MAX_ALPHA:  # a zero-size initializer may declare any other dimension
            continue
        problems = _shape_problems(convs, alpha, found.hw)
        if not problems:
            if meta_alpha is not None and alpha != meta_alpha:
                raise g.error(f"metadata_props say alpha={meta_alpha:g} but the graph's channel counts are those "
                              f"of alpha={alpha:g}")
            return alpha
        if best is None or len(problems) < len(best[2]):
            best = (alpha, why, problems)
    if best is None:
        raise g.error(f"the stem Conv {g.desc(convs[0].node)} has {stem_c} output channels and the last block "
                      f"{last_c}: no MobileNetV1 width multiplier (0 < alpha <= {MAX_ALPHA:g}) gives them")
    alpha, why, problems = best
    c, t_name, role, got, want = problems[0]
    raise g.error(f"initializer {t_name!r} ({role} of {g.desc(c.node)}, {c.name}) has shape {list(got)}, expected "
                  f"{list(want)} for a MobileNetV1 with alpha={alpha:g} ({why})")


def _choose_padding(g: _Graph, found: _Found, meta_padding: Optional[str]) -> str:
    three = [c for c in found.convs if not c.name.endswith(".pw")]
    want: Dict[str, List[Pads]] = {
        conv: [layer.pads for layer in MobileNetV1(1.0, found.hw, 0, conv) if layer.kind in ("conv3x3", "dwconv3x3")]
        for conv in PADDING_CONVENTIONS}
    misfits = {conv: [i for i, c in enumerate(three) if tuple(c.pads) != tuple(want[conv][i])]
               for conv in PADDING_CONVENTIONS}
    ok = [conv for conv in PADDING_CONVENTIONS if not misfits[conv]]
    if meta_padding is not None and meta_padding in ok:
        return meta_padding
    if meta_padding is not None or not ok:
        # name the first 3x3 conv that does not fit (the metadata's convention, else the closest one)
        ref = meta_padding if meta_padding in want else min(PADDING_CONVENTIONS, key=lambda conv: len(misfits[conv]))
        i = misfits[ref][0]
        c = three[i]
        options = ", ".join(f"{conv} {list(want[conv][i])}" for conv in PADDING_CONVENTIONS)
        head = (f"metadata_props say padding={meta_padding!r} but the graph does not pad that way: "
                if meta_padding is not None else "")
        raise g.error(f"{head}{g.desc(c.node)} ({c.name}, {c.in_hw[0]}x{c.in_hw[1]} input, stride {c.stride}) pads "
                      f"[top, left, bottom, right] = {list(c.pads)} (auto_pad {c.auto_pad}); at the graph's input "
                      f"size {found.hw[0]}x{found.hw[1]} the supported padding conventions pad this layer: "
                      f"{options}")
    if len(ok) == 1:
        return ok[0]
    # Several conventions give these pads at this size (odd sizes: TF SAME pads 1/1/1/1 too).
    if all(tuple(c.pads) == (1, 1, 1, 1) for c in three) and "symmetric" in ok:
        return "symmetric"
    keras_form = all((c.pad_node is not None) == (c.name.endswith(".dw") and c.stride == 2) for c in three)
    if keras_form and "keras" in ok:
        return "keras"
    if "tf_same" in ok:
        return "tf_same"
    return ok[0]


def _choose_epsilon(g: _Graph, found: _Found, meta_eps: Optional[float]) -> Optional[float]:
    """The graph's one BatchNorm epsilon (None when every BatchNorm is folded away)."""
    eps = [(c.bn_node, np.float32(c.bn_eps)) for c in found.convs if c.bn_node is not None]
    if not eps:
        return None
    values = {float(v) for _, v in eps}
    if len(values) > 1:
        lo = min(eps, key=lambda t: t[1])
        hi = max(eps, key=lambda t: t[1])
        raise g.error(f"BatchNorm epsilon differs between layers ({g.desc(lo[0])} has {float(lo[1]):g}, "
                      f"{g.desc(hi[0])} has {float(hi[1]):g}); mobilenet-fast stores a single epsilon")
    value = eps[0][1]
    if not np.isfinite(value) or value < 0:
        raise g.error(f"{g.desc(eps[0][0])} has an invalid epsilon {float(value)!r}")
    if meta_eps is not None and abs(meta_eps) <= float(np.finfo(np.float32).max) and np.float32(meta_eps) == value:
        return meta_eps  # (an out-of-range value would overflow the cast, with a RuntimeWarning)
    # the attribute is a float32; report its shortest decimal (1e-05, not 9.999999747378752e-06)
    return float(str(value))


# -- tensors ---------------------------------------------------------------------------------------------

def _canonical_weight(c: _Conv) -> np.ndarray:
    w = c.weight
    if c.name == "stem":
        return w.transpose(2, 3, 1, 0)
    if c.name.endswith(".dw"):
        return w[:, 0].transpose(1, 2, 0)
    return w[:, :, 0, 0].T


def _bn_tensors(c: _Conv, eps: Optional[float]) -> Tuple[Tuple[str, np.ndarray], ...]:
    """(source tensor name, array) for gamma, beta, mean, var of one layer."""
    ch = int(c.weight.shape[0])
    if c.bn_node is not None:
        gamma, beta, mean, var = c.bn
        mean_name = c.bn_names[2]
        if c.bias is not None:  # conv(x) + b then BN == BN with mean - b
            mean = (mean.astype(np.float64) - c.bias.astype(np.float64)).astype(np.float32)
            mean_name = f"{c.bn_names[2]} - {c.bias_name}"
        return ((c.bn_names[0], gamma), (c.bn_names[1], beta), (mean_name, mean), (c.bn_names[3], var))
    bias = c.bias if c.bias is not None else np.zeros(ch, np.float32)
    # folded layer: y = conv(x) + bias  ==  BN(gamma=1, beta=bias, mean=0, var=1) with eps=0; with a
    # nonzero graph-wide eps, gamma = sqrt(1 + eps) keeps the scale at 1 (to one float32 rounding).
    gamma = np.full(ch, np.float32(math.sqrt(1.0 + eps)) if eps else 1.0, np.float32)
    src = c.bias_name or f"{c.weight_name} (no bias)"
    return ((f"{src} (folded)", gamma), (src, bias), (f"{src} (folded)", np.zeros(ch, np.float32)),
            (f"{src} (folded)", np.ones(ch, np.float32)))


def import_onnx(path: PathLike, *, labels: Optional[Sequence[str]] = None,
                input_mean: Optional[Sequence[float]] = None, input_std: Optional[Sequence[float]] = None,
                source: Optional[str] = None) -> WeightSet:
    """Read a MobileNetV1 ONNX model into a :class:`WeightSet`.

    ``labels`` (one name per class) replaces the labels stored in the file's metadata (if any);
    ``input_mean``/``input_std`` (per RGB channel, on 0..255 pixels) replace the normalisation
    (default: the metadata's, else 127.5 / 127.5, see the module docstring); ``source`` replaces
    the provenance string (default: the metadata's, else the file's name, sha256 and producer).

    Raises :class:`FileNotFoundError` if ``path`` does not exist, :class:`MissingDependencyError`
    when ``onnx`` is not installed, :class:`ImportFormatError` naming the first node (or
    initializer) that does not fit if the graph is not a MobileNetV1 we can map, and
    :class:`InputError` if ``labels`` does not have one entry per class.
    """
    onnx = _import_onnx()
    p, where = checked_path(path, "ONNX model file")
    if os.path.getsize(p) == 0:
        raise ImportFormatError(f"{where}: file is empty, not an ONNX model")
    try:
        model = onnx.load_model(p, load_external_data=True)
    except Exception as e:  # DecodeError, onnx's own errors, missing external data files...
        msg = str(e).splitlines()[0] if str(e) else ""
        raise ImportFormatError(f"{where}: not a valid ONNX model; the file is truncated, corrupt or not ONNX "
                                f"({type(e).__name__}{': ' + msg if msg else ''})") from None
    norm = [_check_norm(input_mean, "input_mean"), _check_norm(input_std, "input_std")]
    if norm[1] is not None and 0.0 in norm[1]:
        raise InputError("input_std must not contain 0")
    try:
        return _convert(onnx, model, p, where, labels, norm[0], norm[1], source)
    except (MobileNetFastError, FileNotFoundError):
        raise
    except (KeyError, IndexError, ValueError, TypeError, AttributeError, OverflowError) as e:
        raise ImportFormatError(f"{where}: could not be mapped onto MobileNetV1 ({type(e).__name__}: {e})") from None


def _check_norm(values: Optional[Sequence[float]], what: str) -> Optional[Tuple[float, float, float]]:
    return None if values is None else check_rgb(values, what)


def _convert(onnx: Any, model: Any, p: str, where: str, labels: Optional[Sequence[str]],
             input_mean: Optional[Tuple[float, float, float]], input_std: Optional[Tuple[float, float, float]],
             source: Optional[str]) -> WeightSet:
    if not model.HasField("graph") or not model.graph.node:
        raise ImportFormatError(f"{where}: the ONNX model has no graph nodes (truncated or not a model file)")
    g = _Graph(onnx, model, where)

    props = {entry.key: entry.value for entry in model.metadata_props}
    meta: Optional[ModelConfig] = None
    if props.get("format") == FORMAT_NAME:
        try:
            meta = ModelConfig.from_metadata(props, f"{where} metadata_props")
        except WeightFileError as e:
            raise ImportFormatError(str(e)) from None

    found = _walk(g)
    acts = {c.act for c in found.convs}
    if len(acts) > 1:
        first = found.convs[0].act
        odd = next(c for c in found.convs if c.act != first)
        raise g.error(f"{g.desc(odd.act_node)} applies {odd.act} after {odd.name} but the stem uses {first}; "
                      "mobilenet-fast needs one activation for every layer")
    activation = acts.pop()

    alpha = _infer_alpha(g, found, meta.alpha if meta else None)
    padding = _choose_padding(g, found, meta.padding if meta else None)
    eps = _choose_epsilon(g, found, meta.bn_epsilon if meta else None)

    tensors: Dict[str, Tuple[str, np.ndarray]] = {}
    for c in found.convs:
        key = "stem.conv.weight" if c.name == "stem" else f"{c.name}.weight"
        tensors[key] = (c.weight_name, _canonical_weight(c))
        for fld, (t_name, arr) in zip(("gamma", "beta", "mean", "var"), _bn_tensors(c, eps)):
            tensors[f"{c.name}.bn.{fld}"] = (t_name, arr)
    num_classes = 0
    if found.classifier_weight is not None:
        cw = found.classifier_weight
        feat = int(found.convs[-1].weight.shape[0])
        if cw.shape[0] != feat:
            raise g.error(f"initializer {found.classifier_weight_name!r} (weights of "
                          f"{g.desc(found.classifier_node)}) takes {cw.shape[0]} features but the last block gives "
                          f"{feat} (shape as [features, classes]: {list(cw.shape)})")
        num_classes = int(cw.shape[1])
        if num_classes < 1:
            raise g.error(f"{g.desc(found.classifier_node)} has no output classes")
        tensors["classifier.weight"] = (found.classifier_weight_name, cw)
        cb = found.classifier_bias if found.classifier_bias is not None else np.zeros(num_classes, np.float32)
        tensors["classifier.bias"] = (found.classifier_bias_name or "(no bias)", cb)
    for canonical, (t_name, arr) in tensors.items():
        if not np.isfinite(arr).all():
            raise g.error(f"tensor {t_name!r} ({canonical}) contains NaN or Inf")
        if canonical.endswith(".bn.var"):
            if (arr < 0).any():
                raise g.error(f"tensor {t_name!r} ({canonical}) has negative variances")
            if (arr + (eps or 0.0) <= 0).any():
                raise g.error(f"tensor {t_name!r} ({canonical}) has zero variances with epsilon 0")

    if meta is not None:
        if meta.num_classes != num_classes:
            raise g.error(f"metadata_props say num_classes={meta.num_classes} but the graph has {num_classes}")
        if meta.activation != activation:
            raise g.error(f"metadata_props say activation={meta.activation!r} but the graph applies {activation!r}")
    if labels is not None:
        labels = checked_labels(labels, num_classes, where)
    elif meta is not None:
        labels = meta.labels
    if source is None:
        if meta is not None:
            source = meta.source
        else:
            producer = " ".join(s for s in (model.producer_name, model.producer_version) if s) or "unknown"
            source = (f"ONNX model {where} (sha256 {file_sha256(p)}), producer {producer}, opset {g.opset}, "
                      f"imported by mobilenet_fast.importers.onnx_graph")
    if meta is not None:
        mean, std, resolution = meta.input_mean, meta.input_std, meta.resolution
    else:
        mean, std, resolution = TF_MEAN, TF_STD, found.hw
    mean = input_mean if input_mean is not None else mean
    std = input_std if input_std is not None else std
    config = ModelConfig(
        alpha=alpha, resolution=tuple(resolution), num_classes=num_classes, padding=padding,  # type: ignore[arg-type]
        bn_epsilon=0.0 if eps is None else eps, input_mean=mean, input_std=std, labels=labels,
        source=source, activation=activation)
    arrays = {k: np.ascontiguousarray(arr, dtype=np.float32) for k, (_, arr) in tensors.items()}
    try:
        return WeightSet(config, arrays)
    except (WeightFileError, InputError) as e:
        raise g.error(f"the imported tensors do not form a valid MobileNetV1: {e}") from None
