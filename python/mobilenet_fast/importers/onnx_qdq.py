"""Import a quantised MobileNetV1 ONNX graph onto our int8 engine: the QDQ form (QuantizeLinear /
DequantizeLinear around float operators, as onnxruntime's ``quantize_static(quant_format=QDQ)``
writes it) and the QOperator form (QLinearConv, QLinearGlobalAveragePool, QGemm, as
``quant_format=QOperator`` writes it; the same parameters, read from the operators' inputs).

What is read, by structure (names are not relied on): the 27 ``Conv`` nodes in graph order, each
with its weights and bias as ``DequantizeLinear`` of constants (int8 weights, per output channel
or per tensor, zero point 0; int32 bias at scale input x weight scale), its input from a
``DequantizeLinear`` and its output into a ``QuantizeLinear`` (through a ``Relu`` / ``Clip`` the
quantiser may have kept); then the ``GlobalAveragePool``'s ``QuantizeLinear``, and the classifier
(``Gemm``, weights ``[C, N]`` or ``transB``) with its logits' ``QuantizeLinear``. Activations are
uint8 (or int8: code + 128). Strides and pads come from the ``Conv`` attributes and are matched
against the padding conventions; alpha from the channel counts; the input is NHWC (a
``Transpose`` to NCHW in front, as our exporter writes) or NCHW.

The arithmetic is onnxruntime's (its fused QLinearConv / QLinearGlobalAveragePool / QGemm on the
CPU): per-channel requantisation with the float32 multiplier (input scale x weight scale) /
output scale, round half to even; the input is quantised by **dividing** by its scale, as
``QuantizeLinear`` does (``QuantizedNet.input_divide``); the logits are the graph's quantised
logits (``QuantizedNet.logits_output``). Anything else - another network, asymmetric weights,
per-channel activations, a missing quantisation - is an :class:`ImportFormatError` naming the node.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..architecture import PADDING_CONVENTIONS, MobileNetV1
from ..errors import ImportFormatError, InputError, MissingDependencyError, MobileNetFastError
from ..weights import ModelConfig, check_rgb, file_sha256
from ._common import WidthMismatch, checked_labels, checked_path, infer_alpha

__all__ = ["import_onnx_int8", "onnx_is_quantized"]

PathLike = Union[str, "os.PathLike[str]"]
_QUANT_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "QGemm", "ConvInteger",
              "MatMulInteger"}


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise MissingDependencyError('reading .onnx files needs the onnx package: pip install "mobilenet-fast[onnx]"') \
            from None
    return onnx


def _load(path: PathLike) -> Tuple[Any, str, str]:
    onnx = _onnx()
    p, where = checked_path(path, "ONNX model file")
    try:
        model = onnx.load(p)
    except Exception as e:  # noqa: BLE001 - protobuf raises anything on a corrupt file
        raise ImportFormatError(f"{where}: not a valid ONNX model ({type(e).__name__}: {e})") from None
    return model, p, where


def onnx_is_quantized(path: PathLike) -> bool:
    """Whether an ONNX file holds quantisation operators (QDQ or QOperator form)."""
    model, _, _ = _load(path)
    return any(isinstance(n.op_type, str) and n.op_type in _QUANT_OPS for n in model.graph.node)


class _G:
    def __init__(self, model: Any, where: str) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.where, self.g = helper, where, model.graph
        try:
            self.init: Dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in self.g.initializer}
        except Exception as e:  # noqa: BLE001
            raise self.error(f"an initializer cannot be read ({type(e).__name__}: {e})") from None
        for n in self.g.node:  # Constant nodes are constants too
            if n.op_type == "Constant" and n.output:
                for a in n.attribute:
                    if a.name == "value":
                        self.init[n.output[0]] = numpy_helper.to_array(a.t)
        self.prod = {o: n for n in self.g.node for o in n.output}
        self.cons: Dict[str, List[Any]] = defaultdict(list)
        for n in self.g.node:
            for i in n.input:
                self.cons[i].append(n)

    def error(self, msg: str) -> ImportFormatError:
        return ImportFormatError(f"{self.where}: {msg}")

    def desc(self, n: Any) -> str:
        return f"node {n.name or '?'} ({n.op_type}, output {n.output[0] if n.output else '?'!r})"

    def attr(self, n: Any, name: str, default: Any = None) -> Any:
        for a in n.attribute:
            if a.name == name:
                return self.helper.get_attribute_value(a)
        return default

    def const(self, name: str, what: str) -> np.ndarray:
        if name not in self.init:
            raise self.error(f"{what} {name!r} is not a constant of the file")
        return self.init[name]

    def dq_const(self, name: str, what: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """(codes, scales, zero points, axis) of a DequantizeLinear of constants."""
        n = self.prod.get(name)
        if n is None or n.op_type != "DequantizeLinear":
            raise self.error(f"{what} {name!r} is not a DequantizeLinear of quantised constants")
        q = self.const(n.input[0], what)
        s = np.atleast_1d(self.const(n.input[1], f"{what} scale")).astype(np.float32)
        z = np.atleast_1d(self.const(n.input[2], f"{what} zero point")) if len(n.input) > 2 and n.input[2] \
            else np.zeros(s.shape, np.int64)
        return q, s, z, int(self.attr(n, "axis", 1))

    def act(self, q_node: Any, what: str) -> Tuple[float, int]:
        """(scale, uint8 zero point) of a Quantize/DequantizeLinear of an activation."""
        return self.act_names(q_node.input[1], q_node.input[2] if len(q_node.input) > 2 else "", what)

    def act_names(self, scale_name: str, zp_name: str, what: str) -> Tuple[float, int]:
        """(scale, uint8 zero point) from the constants named (no zero point: 0, uint8)."""
        s = np.atleast_1d(self.const(scale_name, f"{what} scale"))
        z = np.atleast_1d(self.const(zp_name, f"{what} zero point")) if zp_name else np.zeros(1, np.uint8)
        if s.size != 1 or z.size != 1:
            raise self.error(f"{what}: {s.size} scales and {z.size} zero points; an activation is quantised per "
                             "tensor")
        scale = float(s[0])
        if not (np.isfinite(scale) and 1e-12 <= scale <= 1e12):
            raise self.error(f"{what} has scale {scale!r}; an activation scale must be in 1e-12..1e12")
        if z.dtype not in (np.uint8, np.int8):
            raise self.error(f"{what} has a {z.dtype} zero point; activations must be uint8 or int8")
        zp = int(z[0]) + (128 if z.dtype == np.int8 else 0)
        return scale, zp

    def input_of(self, n: Any, what: str) -> Tuple[float, int]:
        """The quantisation of node n's first input (a DequantizeLinear of an activation)."""
        d = self.prod.get(n.input[0])
        if d is None or d.op_type != "DequantizeLinear" or d.input[0] in self.init:
            raise self.error(f"{self.desc(n)}: its input is not a DequantizeLinear of a quantised activation "
                             f"({what})")
        return self.act(d, what)

    def clip_max(self, n: Any) -> Optional[float]:
        """The upper bound of a Clip between node n and its QuantizeLinear (None: no Clip)."""
        users = self.cons.get(n.output[0], [])
        for _ in range(3):
            if len(users) != 1 or users[0].op_type not in ("Relu", "Clip"):
                return None
            u = users[0]
            if u.op_type == "Clip":
                hi = u.input[2] if len(u.input) > 2 and u.input[2] else None
                value = self.const(hi, "the Clip's max") if hi is not None else self.attr(u, "max")
                return None if value is None else float(np.asarray(value).ravel()[0])
            users = self.cons.get(u.output[0], [])
        return None

    def output_of(self, n: Any, what: str) -> Tuple[float, int]:
        """The quantisation of node n's output (its QuantizeLinear, through a Relu/Clip)."""
        out = n.output[0]
        for _ in range(3):
            users = self.cons.get(out, [])
            q = [u for u in users if u.op_type == "QuantizeLinear"]
            if q:
                return self.act(q[0], what)
            act = [u for u in users if u.op_type in ("Relu", "Clip")]
            if len(users) != 1 or not act:
                break
            out = act[0].output[0]
        raise self.error(f"{self.desc(n)}: its output is not quantised by a QuantizeLinear ({what})")


def _weights(g: _G, n: Any, arrays: Tuple[np.ndarray, np.ndarray, np.ndarray], channels: int,
             what: str) -> Tuple[np.ndarray, np.ndarray]:
    q, s, z = arrays
    s = np.atleast_1d(s).astype(np.float32)
    z = np.atleast_1d(z)
    if q.dtype != np.int8:
        raise g.error(f"{g.desc(n)}: {what} are {q.dtype}; symmetric int8 weights are supported")
    if np.any(z != 0):
        raise g.error(f"{g.desc(n)}: {what} have a zero point other than 0 (asymmetric weights); only symmetric "
                      "int8 weights are supported")
    if s.size not in (1, channels):
        raise g.error(f"{g.desc(n)}: {what} have {s.size} scales for {channels} output channels")
    if np.any(q == -128):
        raise g.error(f"{g.desc(n)}: {what} hold -128; symmetric int8 weights are -127..127")
    scale = np.broadcast_to(s, (channels,)).astype(np.float32).copy()
    if not (np.all(np.isfinite(scale)) and np.all(scale > 0)):
        raise g.error(f"{g.desc(n)}: {what} have a scale that is not finite and > 0")
    return q, scale


def _bias(g: _G, n: Any, arrays: Optional[Tuple[np.ndarray, np.ndarray]], channels: int,
          weight: np.ndarray) -> np.ndarray:
    """The int32 bias ((codes, zero points); None: no bias), checked against the int32 room its
    channel's weights (canonical layout) leave."""
    from ..quantization import overflowing_channel

    if arrays is None:
        return np.zeros(channels, np.int32)
    q, z = arrays
    if q.dtype != np.int32 or q.shape != (channels,) or np.any(z != 0):
        raise g.error(f"{g.desc(n)}: the bias is {q.dtype} {list(q.shape)}; expected int32 [{channels}] with zero "
                      "point 0")
    c = overflowing_channel(weight, q)
    if c is not None:
        raise g.error(f"{g.desc(n)}: the bias of channel {c} could overflow the int32 accumulator with its weights")
    return q.astype(np.int32)


class _QDQ:
    """Accessors of the QDQ form: float operators between Dequantize/QuantizeLinear."""

    conv, pool, heads = "Conv", "GlobalAveragePool", ("Gemm", "MatMul")

    def __init__(self, g: _G) -> None:
        self.g = g

    def weights(self, n: Any, what: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        q, s, z, _ = self.g.dq_const(n.input[1], what)
        return q, s, z

    def bias(self, n: Any) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        if len(n.input) < 3 or not n.input[2]:
            return None
        q, _, z, _ = self.g.dq_const(n.input[2], "bias")
        return q, z

    def q_in(self, n: Any, what: str) -> Tuple[float, int]:
        return self.g.input_of(n, what)

    def q_out(self, n: Any, what: str) -> Tuple[float, int]:
        return self.g.output_of(n, what)

    def clip_max(self, n: Any) -> Optional[float]:
        return self.g.clip_max(n)

    def input_node(self, first: Any) -> Optional[Any]:
        d = self.g.prod.get(first.input[0])
        return self.g.prod.get(d.input[0]) if d is not None and d.op_type == "DequantizeLinear" else None


class _QOp:
    """Accessors of the QOperator form: QLinearConv (x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp,
    B), QLinearGlobalAveragePool (x, x_scale, x_zp, y_scale, y_zp), QGemm (a, a_scale, a_zp, b,
    b_scale, b_zp, c, y_scale, y_zp)."""

    conv, pool, heads = "QLinearConv", "QLinearGlobalAveragePool", ("QGemm",)

    def __init__(self, g: _G) -> None:
        self.g = g

    def _in(self, n: Any, i: int) -> str:
        return n.input[i] if len(n.input) > i else ""

    def weights(self, n: Any, what: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        g = self.g
        zp = self._in(n, 5)
        return (g.const(n.input[3], what), g.const(n.input[4], f"{what} scale"),
                g.const(zp, f"{what} zero point") if zp else np.zeros(1, np.int8))

    def bias(self, n: Any) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        b = self._in(n, 8 if n.op_type == "QLinearConv" else 6)
        return None if not b else (self.g.const(b, "bias"), np.zeros(1, np.int32))

    def q_in(self, n: Any, what: str) -> Tuple[float, int]:
        return self.g.act_names(n.input[1], self._in(n, 2), what)

    def q_out(self, n: Any, what: str) -> Tuple[float, int]:
        i = {"QLinearConv": 6, "QLinearGlobalAveragePool": 3, "QGemm": 7}[n.op_type]
        if not self._in(n, i):
            raise self.g.error(f"{self.g.desc(n)} has no output quantisation (a float output is not supported)")
        return self.g.act_names(n.input[i], self._in(n, i + 1), what)

    def clip_max(self, n: Any) -> Optional[float]:
        return None  # the quantiser folds the activations into the output ranges

    def input_node(self, first: Any) -> Optional[Any]:
        return self.g.prod.get(first.input[0])


def import_onnx_int8(path: PathLike, *, labels: Optional[Sequence[str]] = None,
                     input_mean: Optional[Sequence[float]] = None, input_std: Optional[Sequence[float]] = None,
                     source: Optional[str] = None) -> Tuple[ModelConfig, Any]:
    """Read a QDQ-quantised MobileNetV1 ONNX file as ``(config, qnet)`` (see the module docstring;
    :func:`mobilenet_fast.load` turns it into a :class:`~mobilenet_fast.quantization.QuantizedModel`).
    ``labels``, ``input_mean``/``input_std`` (default 127.5) and ``source`` as for the other
    importers."""
    model, p, where = _load(path)
    try:
        return _import(model, p, where, labels, input_mean, input_std, source)
    except InputError as e:  # the architecture refused what the file declares (sizes, channels)
        raise ImportFormatError(f"{where}: the file does not describe a valid MobileNetV1: {e}") from None
    except MobileNetFastError:
        raise
    except Exception as e:  # noqa: BLE001 - a corrupt graph makes the walk fail anywhere
        raise ImportFormatError(f"{where}: not a valid quantised MobileNetV1 ONNX model "
                                f"({type(e).__name__}: {e})") from None


def _import(model: Any, p: str, where: str, labels: Optional[Sequence[str]], input_mean: Optional[Sequence[float]],
            input_std: Optional[Sequence[float]], source: Optional[str]) -> Tuple[ModelConfig, Any]:
    from ..quantization import QLayer, QParams, QuantizedNet, logit_scale, requant_multiplier

    g = _G(model, where)
    if not all(isinstance(n.op_type, str) for n in g.g.node):
        raise g.error("a node's operator type is not valid UTF-8")
    if not any(n.op_type in _QUANT_OPS for n in g.g.node):
        raise g.error("not a quantised ONNX model; mobilenet_fast.load reads float ONNX files as float32")
    qop = any(n.op_type == "QLinearConv" for n in g.g.node)
    if any(n.op_type in ("ConvInteger", "MatMulInteger", "QLinearMatMul") for n in g.g.node):
        raise g.error("a ConvInteger / MatMulInteger / QLinearMatMul graph; the QDQ form and QLinearConv / QGemm are "
                      "supported")
    # Per-channel activation scales (NNCF quantises the inputs of depthwise convs so, with float
    # biases): onnxruntime runs such graphs as float operators on dequantised values, so there is no
    # integer arithmetic to reproduce, and ours has one scale per activation tensor.
    for n in g.g.node:
        if n.op_type == "QuantizeLinear" and len(n.input) > 1 and n.input[1] in g.init \
                and np.asarray(g.init[n.input[1]]).size > 1:
            raise g.error(f"{g.desc(n)} quantises an activation per channel ({np.asarray(g.init[n.input[1]]).size} "
                          "scales), as NNCF does for depthwise inputs; onnxruntime runs such a graph in float, and "
                          "the int8 engine takes one scale per activation tensor (quantise with onnxruntime's "
                          "quantize_static)")
    f: Union[_QDQ, _QOp] = _QOp(g) if qop else _QDQ(g)
    convs = [n for n in g.g.node if n.op_type == f.conv]
    if len(convs) not in (27, 28):
        raise g.error(f"the graph has {len(convs)} Conv nodes; a quantised MobileNetV1 has 27 (28 with a 1x1 conv "
                      "classifier)")
    ins = [i for i in g.g.input if i.name not in g.init]
    if len(ins) != 1:
        raise g.error(f"the model has {len(ins)} inputs; a MobileNetV1 has one image input")
    dims = [d.dim_value for d in ins[0].type.tensor_type.shape.dim]
    nhwc = len(dims) == 4 and dims[3] == 3
    if len(dims) != 4 or not (nhwc or dims[1] == 3):
        raise g.error(f"input {ins[0].name!r} has shape {dims}; expected [N, H, W, 3] or [N, 3, H, W]")
    hw = (dims[1], dims[2]) if nhwc else (dims[2], dims[3])
    if min(hw) < 32:
        raise g.error(f"input {ins[0].name!r} is {hw[0]}x{hw[1]}; MobileNetV1 needs at least 32x32")
    stem_w = f.weights(convs[0], "the stem's weights")[0]
    channels = [int(f.weights(c, "weights")[0].shape[0]) for c in convs[:27]]
    alpha = infer_alpha(channels[0], channels[2:27:2])
    if isinstance(alpha, WidthMismatch):
        raise g.error(f"the Conv output channels {channels} fit no MobileNetV1 width multiplier")
    head = [n for n in g.g.node if n.op_type in f.heads] + convs[27:]
    pools = [n for n in g.g.node if n.op_type == f.pool]
    if len(pools) != 1:
        raise g.error(f"the graph has {len(pools)} GlobalAveragePool nodes; expected one")
    num_classes = 0
    if head:
        wq = f.weights(head[0], "the classifier's weights")[0]
        trans = head[0].op_type in ("Gemm", "QGemm") and bool(g.attr(head[0], "transB", 0))
        num_classes = int(wq.shape[0] if (trans or head[0].op_type == f.conv) else wq.shape[1])
    pads3 = [tuple(int(v) for v in g.attr(c, "pads", [0, 0, 0, 0])) for c in convs[:27]
             if list(g.attr(c, "kernel_shape", [1, 1])) == [3, 3]]
    padding = None
    for conv in PADDING_CONVENTIONS:
        want = [s.pads for s in MobileNetV1(alpha, hw, num_classes, conv) if s.kind in ("conv3x3", "dwconv3x3")]
        if len(want) == len(pads3) and all(tuple(a) == tuple(b) for a, b in zip(pads3, want)):
            padding = conv
            break
    if padding is None:
        raise g.error(f"the 3x3 Conv pads {pads3} match no padding convention at {hw[0]}x{hw[1]}")
    if stem_w.shape[1:] != (3, 3, 3):
        raise g.error(f"{g.desc(convs[0])}: the stem's weights are {list(stem_w.shape)}; expected [C, 3, 3, 3]")
    lab = checked_labels(labels, num_classes, where) if labels is not None else None
    config = ModelConfig(
        alpha=alpha, resolution=hw, num_classes=num_classes, padding=padding, bn_epsilon=0.0,
        input_mean=check_rgb(input_mean, "input_mean") if input_mean is not None else (127.5,) * 3,
        input_std=check_rgb(input_std, "input_std") if input_std is not None else (127.5,) * 3, labels=lab,
        source=source or (f"quantised ONNX model {where} (sha256 {file_sha256(p)}), "
                          f"{'QOperator' if qop else 'QDQ'} form, int8, imported by mobilenet_fast.importers.onnx_qdq"),
        activation="relu6")
    specs = [s for s in config.architecture() if s.kind in ("conv3x3", "dwconv3x3", "pwconv")]
    qnode = f.input_node(convs[0])
    if qnode is None or qnode.op_type != "QuantizeLinear":
        raise g.error(f"{g.desc(convs[0])}: its input is not a quantised image (a QuantizeLinear)")
    qin = QParams(*g.act(qnode, "the input"))
    prev, layers = qin, []
    for c, spec in zip(convs[:27], specs):
        stride = list(g.attr(c, "strides", [1, 1]))
        group = int(g.attr(c, "group", 1))
        if stride != [spec.stride] * 2 or (spec.kind == "dwconv3x3") != (group == spec.in_channels != 1):
            raise g.error(f"{g.desc(c)} has strides {stride} and group {group}; {spec.name} of MobileNetV1 has "
                          f"stride {spec.stride}{' and is depthwise' if spec.kind == 'dwconv3x3' else ''}")
        qx = QParams(*f.q_in(c, f"{spec.name} input"))
        if qx != prev:
            raise g.error(f"{g.desc(c)}: its input is quantised differently from the previous layer's output")
        qy = QParams(*f.q_out(c, f"{spec.name} output"))
        w8, ws = _weights(g, c, f.weights(c, "weights"), spec.out_channels, "weights")
        if spec.kind == "conv3x3":
            w = w8.transpose(2, 3, 1, 0)
        elif spec.kind == "dwconv3x3":
            w = w8[:, 0].transpose(1, 2, 0)
        else:
            w = w8[:, :, 0, 0].T
        if w.shape != spec.weight_shape:
            raise g.error(f"{g.desc(c)}: weights {list(w8.shape)} do not fit {spec.name} ({list(spec.weight_shape)})")
        top = f.clip_max(c)  # a Clip the quantiser kept; else the range already ends where it should
        hi = 255 if top is None else int(np.clip(qy.zero_point + np.rint(np.float32(top) / np.float32(qy.scale)), 0, 255))
        layer = QLayer(spec, np.ascontiguousarray(w, np.int8), ws, _bias(g, c, f.bias(c), spec.out_channels, w), qx, qy,
                       (qy.zero_point, max(hi, qy.zero_point)))
        m = layer.multiplier
        if not (np.all(np.isfinite(m)) and np.all(m > 0)):
            raise g.error(f"{g.desc(c)}: its scales give a requantisation multiplier that is 0 or not finite")
        layers.append(layer)
        prev = qy
    if QParams(*f.q_in(pools[0], "the pool's input")) != prev:
        raise g.error(f"{g.desc(pools[0])}: its input is not the last conv's quantised output")
    pool_out = QParams(*f.q_out(pools[0], "the pool's output"))
    classifier, logits_output = None, None
    if head:
        h = head[0]
        qx = QParams(*f.q_in(h, "the classifier's input"))
        if qx != pool_out:
            raise g.error(f"{g.desc(h)}: its input is not quantised as the pool's output")
        w8, ws = _weights(g, h, f.weights(h, "the classifier's weights"), num_classes, "the classifier's weights")
        trans = h.op_type in ("Gemm", "QGemm") and bool(g.attr(h, "transB", 0))
        w = w8[:, :, 0, 0].T if h.op_type == f.conv else (w8.T if trans else w8)
        dense = next(s for s in config.architecture() if s.kind == "dense")
        if w.shape != dense.weight_shape:
            raise g.error(f"{g.desc(h)}: weights {list(w8.shape)} do not fit the classifier {list(dense.weight_shape)}")
        classifier = QLayer(dense, np.ascontiguousarray(w, np.int8), ws, _bias(g, h, f.bias(h), num_classes, w),
                            qx, None)
        logits_output = QParams(*f.q_out(h, "the logits"))
        for m in (logit_scale(qx.scale, ws), requant_multiplier(qx.scale, ws, logits_output.scale)):
            if not (np.all(np.isfinite(m)) and np.all(m > 0)):
                raise g.error(f"{g.desc(h)}: its scales give a multiplier that is 0 or not finite in float32")
    qnet = QuantizedNet(alpha, qin, layers, pool_out, classifier, method="onnx-qop" if qop else "onnx-qdq", bias_correction=False,
                        pair_limit=False, rounding="file", logits_output=logits_output, input_divide=True)
    return config, qnet
