"""Import a TensorFlow frozen GraphDef (``.pb``) of the TF-slim MobileNetV1 release.

A frozen graph stores every variable as a ``Const`` node. TF-slim names them (scope prefix
``MobilenetV1/``, possibly under an outer scope such as ``module/``)::

    MobilenetV1/Conv2d_0/weights                                 [3, 3, 3, C0]     HWIO
    MobilenetV1/Conv2d_{i}_depthwise/depthwise_weights           [3, 3, C, 1]      i = 1..13
    MobilenetV1/Conv2d_{i}_pointwise/weights                     [1, 1, Cin, Cout]
    MobilenetV1/<layer>/BatchNorm/{gamma,beta,moving_mean,moving_variance}   [C]
    MobilenetV1/Logits/Conv2d_1c_1x1/{weights,biases}            [1, 1, C, N], [N]

and this module maps them onto the canonical tensors of :mod:`mobilenet_fast.weights`
(``stem.conv.weight``, ``blocks.{i-1}.dw.weight`` [3, 3, C], ``blocks.{i-1}.pw.weight``
[Cin, Cout], ``*.bn.*``, ``classifier.*``). Everything else in the graph (the ops, a retrained
``final_training_ops`` layer on top, ...) is ignored, except for what tells us the model's
configuration:

* alpha from the stem's channel count (C0 / 32; if that does not reproduce the other layers'
  channel counts, from the last block's, C / 1024), num_classes from the logits;
* BatchNorm epsilon from the ``.../BatchNorm/batchnorm/add/y`` Consts (or ``epsilon`` attribute of
  ``FusedBatchNorm*`` ops) when present, else TF-slim's default 0.001; all layers must agree;
* the padding and strides of the 3x3 convolutions (``SAME`` -> our ``tf_same`` convention; the
  1x1 layers are padding-free either way);
* the input resolution from the ``Placeholder`` feeding the stem, 224 when its shape is unknown.

TF-slim MobileNetV1 expects pixels scaled to [-1, 1], i.e. ``(x - 127.5) / 127.5``.
A BatchNorm built with ``scale=False`` (no ``gamma``) or ``center=False`` (no ``beta``) gets
ones / zeros, which is what TensorFlow computes in that case.

Tensor values are decoded as TensorFlow does (``tensor_util.MakeNdarray``): from
``tensor_content`` (little-endian float32) when present, else from ``float_val``, where fewer
values than elements repeat the last one and no values at all mean zeros.

Parsing needs the compiled protos shipped by the ``tensorboard`` package (and ``protobuf``),
installed by ``pip install "mobilenet-fast[tf]"``; TensorFlow itself is not needed.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..architecture import BLOCK_CONFIG, MAX_ALPHA
from ..errors import ImportFormatError, InputError, MissingDependencyError, WeightFileError
from ..weights import ModelConfig, WeightSet, file_sha256
from ._common import checked_labels, checked_path, infer_alpha

__all__ = ["import_tf_graphdef", "SCOPE", "DEFAULT_BN_EPSILON", "DEFAULT_RESOLUTION"]

PathLike = Union[str, "os.PathLike[str]"]

#: Variable scope of the TF-slim network.
SCOPE = "MobilenetV1/"
#: ``batch_norm_epsilon`` of TF-slim's ``mobilenet_v1_arg_scope``, used when the graph does not say.
DEFAULT_BN_EPSILON = 1e-3
#: Input size when the graph's input placeholder has no fixed height/width.
DEFAULT_RESOLUTION = 224
#: TF-slim MobileNetV1 maps 0..255 pixels to [-1, 1].
INPUT_MEAN = (127.5, 127.5, 127.5)
INPUT_STD = (127.5, 127.5, 127.5)

_DT_FLOAT = 1  # tensorflow.DataType.DT_FLOAT
#: Most elements a Const may declare. ``float_val`` broadcasting lets a few bytes declare any size,
#: so the size is checked before anything is allocated: 2**26 float32 (256 MiB) is far above any
#: MobileNetV1 tensor (the classifier of alpha 2.0 over 21k classes has 45M).
_MAX_ELEMENTS = 1 << 26
_STEM = "Conv2d_0"
_LOGITS = "Logits/Conv2d_1c_1x1"
_NUM_BLOCKS = len(BLOCK_CONFIG)
_CONV_OPS = ("Conv2D", "DepthwiseConv2dNative")
# Ops that forward their first input unchanged (``weights/read`` is an Identity of ``weights``).
_PASS_THROUGH_OPS = ("Identity", "Snapshot", "StopGradient", "PreventGradient")
_BLOCK_RE = re.compile(r"Conv2d_(\d+)_(depthwise|pointwise)/")


def _load_protos() -> Tuple[Any, Any, Any]:
    try:
        from google.protobuf.message import DecodeError
        from tensorboard.compat.proto import graph_pb2, types_pb2
    except ImportError as e:
        raise MissingDependencyError(
            "reading TensorFlow .pb files needs the 'protobuf' and 'tensorboard' packages "
            f'({e}); install them with: pip install "mobilenet-fast[tf]"'
        ) from None
    return graph_pb2, types_pb2, DecodeError


def _clean_input(name: str) -> Optional[str]:
    """Node name of a NodeDef input (``"x:0"`` -> ``"x"``); None for control inputs (``"^x"``)."""
    if name.startswith("^"):
        return None
    return name.split(":", 1)[0]


class _Graph:
    """Name lookups over a parsed GraphDef, raising errors that name the node."""

    def __init__(self, graph: Any, where: str, types_pb2: Any) -> None:
        self.where = where
        self.types_pb2 = types_pb2
        self.nodes: Dict[str, Any] = {}
        self.duplicates = set()
        for node in graph.node:
            if node.name in self.nodes:
                self.duplicates.add(node.name)
            self.nodes[node.name] = node

    def error(self, msg: str) -> ImportFormatError:
        return ImportFormatError(f"{self.where}: {msg}")

    def get(self, name: str) -> Optional[Any]:
        if name in self.duplicates:
            raise self.error(f"node {name!r} is defined more than once")
        return self.nodes.get(name)

    def resolve(self, name: str) -> Optional[Any]:
        """The node called ``name``, following pass-through ops (Identity...) up to a non-trivial one."""
        node = self.get(name)
        for _ in range(64):
            if node is None or node.op not in _PASS_THROUGH_OPS or not node.input:
                return node
            src = _clean_input(node.input[0])
            node = self.get(src) if src else None
        return node

    def has(self, name: str) -> bool:
        return self.get(name) is not None

    def const(self, name: str, what: str) -> np.ndarray:
        """Decode the float32 Const ``name`` (``what`` says what it is, for the error message)."""
        node = self.get(name)
        if node is None:
            raise self.error(f"node {name!r} ({what}) is missing; not a TF-slim MobileNetV1 frozen graph")
        target = self.resolve(name)
        if target is None or target.op != "Const":
            op = target.op if target is not None else "dangling " + node.op
            raise self.error(f"node {name!r} ({what}) is a {op} op, not a Const; only frozen graphs "
                             "(variables converted to constants) can be imported")
        return self.decode(target, name)

    def decode(self, node: Any, name: str) -> np.ndarray:
        if "value" not in node.attr:
            raise self.error(f"Const node {name!r} has no 'value' attribute")
        t = node.attr["value"].tensor
        if t.dtype != _DT_FLOAT:
            try:
                dtype = self.types_pb2.DataType.Name(t.dtype)
            except ValueError:
                dtype = f"dtype enum {t.dtype}"
            raise self.error(f"node {name!r} has dtype {dtype}, expected DT_FLOAT (float32)")
        if t.tensor_shape.unknown_rank:
            raise self.error(f"node {name!r} has a tensor of unknown rank")
        shape = tuple(int(d.size) for d in t.tensor_shape.dim)
        if any(s < 0 for s in shape):
            raise self.error(f"node {name!r} has an unknown dimension in its shape {list(shape)}")
        n = math.prod(shape)
        if n > _MAX_ELEMENTS:
            raise self.error(f"node {name!r} declares a tensor of shape {list(shape)} ({n:,} elements), larger "
                             f"than any MobileNetV1 tensor (at most {_MAX_ELEMENTS:,} are accepted)")
        if t.tensor_content:
            nbytes = len(t.tensor_content)
            if nbytes != 4 * n:
                raise self.error(f"node {name!r}: tensor_content has {nbytes} bytes but shape {list(shape)} "
                                 f"of float32 needs {4 * n}")
            arr = np.frombuffer(t.tensor_content, dtype="<f4").astype(np.float32)
        else:
            vals = t.float_val
            k = len(vals)
            if k > n:
                raise self.error(f"node {name!r}: float_val has {k} values but shape {list(shape)} holds {n}")
            if k == 0:
                arr = np.zeros(n, dtype=np.float32)
            else:
                arr = np.empty(n, dtype=np.float32)
                arr[:k] = np.asarray(list(vals), dtype=np.float32)
                arr[k:] = arr[k - 1]  # TensorFlow repeats the last value
        return arr.reshape(shape)


def _check_shape(g: _Graph, name: str, arr: np.ndarray, expected: Sequence[Optional[int]], note: str = "") -> None:
    """``expected`` may hold None for a free dimension."""
    ok = arr.ndim == len(expected) and all(e is None or e == s for e, s in zip(expected, arr.shape))
    if not ok:
        exp = "[" + ", ".join("C" if e is None else str(e) for e in expected) + "]"
        raise g.error(f"node {name!r} has shape {list(arr.shape)}, expected {exp}{note}")


def _find_scope(g: _Graph) -> str:
    key = SCOPE + _STEM + "/weights"
    hits = sorted(n for n in g.nodes if n == key or n.endswith("/" + key))
    if not hits:
        n_mobilenet = sum(1 for n in g.nodes if SCOPE in n)
        hint = (f" ({n_mobilenet} other {SCOPE}* nodes are present)" if n_mobilenet
                else f" (the graph has {len(g.nodes)} nodes, none under {SCOPE!r})")
        raise g.error(f"node {key!r} (stem convolution weights) is missing; not a TF-slim MobileNetV1 "
                      f"frozen graph{hint}")
    if len(hits) > 1:
        raise g.error(f"the graph holds several MobileNetV1 networks ({', '.join(hits)}); cannot choose one")
    return hits[0][: -len(_STEM + "/weights")]


def _check_block_count(g: _Graph, prefix: str) -> None:
    found = set()
    for name in g.nodes:
        if name.startswith(prefix):
            m = _BLOCK_RE.match(name, len(prefix))
            if m:
                found.add(int(m.group(1)))
    extra = sorted(i for i in found if not 1 <= i <= _NUM_BLOCKS)
    if extra:
        raise g.error(f"found layer {prefix}Conv2d_{extra[0]}_*: a MobileNetV1 has exactly {_NUM_BLOCKS} "
                      f"depthwise-separable blocks (Conv2d_1 .. Conv2d_{_NUM_BLOCKS})")
    missing = [i for i in range(1, _NUM_BLOCKS + 1) if i not in found]
    if missing:
        raise g.error(f"no nodes for block {prefix}Conv2d_{missing[0]}_depthwise/pointwise "
                      f"(found {len(found)} of the {_NUM_BLOCKS} depthwise-separable blocks)")


def _infer_alpha(g: _Graph, prefix: str, stem_name: str, stem_c: int, pw_out: List[int]) -> float:
    """Width multiplier reproducing the observed channel counts (stem C0 / 32, else last C / 1024)."""
    m = infer_alpha(stem_c, pw_out)
    if isinstance(m, float):
        return m
    if m.basis == "too_wide":
        raise g.error(f"node {stem_name!r} has {stem_c} output channels, more than any MobileNetV1 (alpha at "
                      f"most {MAX_ALPHA:g})")
    if m.layer == 0:
        raise g.error(f"node {stem_name!r} has shape [3, 3, 3, {stem_c}], expected [3, 3, 3, {m.want}] for a "
                      f"MobileNetV1 with alpha={m.alpha:g} (from the {pw_out[-1]} output channels of the last block)")
    raise g.error(f"node '{prefix}Conv2d_{m.layer}_pointwise/weights' has {m.got} output channels (shape "
                  f"[1, 1, Cin, {m.got}]), expected {m.want} for a MobileNetV1 with alpha={m.alpha:g} "
                  f"(from the {stem_c} output channels of {stem_name})")


def _conv_consumers(g: _Graph) -> Dict[str, List[Any]]:
    """Const name -> the Conv2D / DepthwiseConv2dNative nodes using it as their filter."""
    out: Dict[str, List[Any]] = {}
    for node in g.nodes.values():
        if node.op in _CONV_OPS and len(node.input) >= 2:
            src = _clean_input(node.input[1])
            target = g.resolve(src) if src and src not in g.duplicates else None
            if target is not None:
                out.setdefault(target.name, []).append(node)
    return out


def _spatial(values: Sequence[int], data_format: bytes) -> Tuple[int, int]:
    if data_format == b"NCHW":
        return int(values[2]), int(values[3])
    return int(values[1]), int(values[2])


def _check_conv(g: _Graph, weight_name: str, convs: List[Any], stride: int) -> None:
    """The 3x3 convolutions reading ``weight_name`` must use SAME padding, the right stride, no dilation."""
    if not convs:
        raise g.error(f"no Conv2D/DepthwiseConv2dNative node uses {weight_name!r}; cannot check its padding")
    for conv in convs:
        pad = conv.attr["padding"].s if "padding" in conv.attr else b""
        if pad != b"SAME":
            why = (" (graphs built with use_explicit_padding=True are not supported)" if pad == b"VALID" else "")
            raise g.error(f"node {conv.name!r} has padding {pad.decode(errors='replace') or 'unset'!r}, "
                          f"expected 'SAME'{why}")
        fmt = conv.attr["data_format"].s if "data_format" in conv.attr else b"NHWC"
        if "strides" in conv.attr and len(conv.attr["strides"].list.i) == 4:
            sh, sw = _spatial(conv.attr["strides"].list.i, fmt)
            if (sh, sw) != (stride, stride):
                raise g.error(f"node {conv.name!r} has strides {sh}x{sw}, expected {stride}x{stride} "
                              "for this MobileNetV1 layer")
        if "dilations" in conv.attr and len(conv.attr["dilations"].list.i) == 4:
            dh, dw = _spatial(conv.attr["dilations"].list.i, fmt)
            if (dh, dw) != (1, 1):
                raise g.error(f"node {conv.name!r} has dilation {dh}x{dw}; dilated (output_stride) "
                              "MobileNetV1 graphs are not supported")


def _find_epsilon(g: _Graph, layers: List[str]) -> float:
    found: List[Tuple[str, float]] = []
    add_y = {f"{SCOPE}{layer}/BatchNorm/batchnorm/add/y": layer for layer in layers}
    fused = {f"{SCOPE}{layer}/BatchNorm/": layer for layer in layers}
    for name, node in g.nodes.items():
        if node.op == "Const" and "/add/y" in name:
            for suffix in add_y:
                if name == suffix or name.endswith("/" + suffix):
                    arr = g.decode(node, name)
                    if arr.size != 1:
                        raise g.error(f"node {name!r} (BatchNorm epsilon) has shape {list(arr.shape)}, "
                                      "expected a scalar")
                    found.append((name, float(arr.reshape(-1)[0])))
        elif node.op.startswith("FusedBatchNorm") and "epsilon" in node.attr:
            if any(key in name for key in fused):
                found.append((name, float(node.attr["epsilon"].f)))
    if not found:
        return DEFAULT_BN_EPSILON
    # The graph stores float32; report the shortest decimal of that float32 (0.001, not 0.0010000000475).
    values = {float(str(np.float32(v))) for _, v in found}
    if len(values) > 1:
        lo = min(found, key=lambda t: t[1])
        hi = max(found, key=lambda t: t[1])
        raise g.error(f"BatchNorm epsilon differs between layers (node {lo[0]!r} has {lo[1]:g}, node "
                      f"{hi[0]!r} has {hi[1]:g}); mobilenet-fast stores a single epsilon")
    eps = values.pop()
    if not math.isfinite(eps) or eps < 0:
        raise g.error(f"node {found[0][0]!r} holds an invalid BatchNorm epsilon {eps!r}")
    return eps


def _find_resolution(g: _Graph, stem_conv: Any) -> Tuple[int, int]:
    """Height and width of the Placeholder feeding the stem (through preprocessing ops), else 224x224."""
    node = stem_conv
    for _ in range(64):
        if not node.input:
            break
        src = _clean_input(node.input[0])
        node = g.get(src) if src else None
        if node is None:
            break
        if node.op in ("Placeholder", "PlaceholderWithDefault"):
            if node.op == "PlaceholderWithDefault" or "shape" not in node.attr:
                break
            shape = node.attr["shape"].shape
            if shape.unknown_rank or len(shape.dim) != 4:
                break
            fmt = stem_conv.attr["data_format"].s if "data_format" in stem_conv.attr else b"NHWC"
            h, w = _spatial([d.size for d in shape.dim], fmt)
            if h <= 0 or w <= 0:
                break
            if not (32 <= h <= 16384 and 32 <= w <= 16384):
                raise g.error(f"input node {node.name!r} has size {h}x{w}; MobileNetV1 needs 32..16384 per side")
            return (h, w)
    return (DEFAULT_RESOLUTION, DEFAULT_RESOLUTION)


def _resolved_name(g: _Graph, name: str) -> str:
    """Name of the node ``name`` resolves to through pass-through ops (``name`` itself if dangling)."""
    node = g.resolve(name)
    return str(node.name) if node is not None else name


def import_tf_graphdef(path: PathLike, *, labels: Optional[Sequence[str]] = None,
                       source: Optional[str] = None) -> WeightSet:
    """Read a TF-slim MobileNetV1 frozen GraphDef ``.pb`` file into a :class:`WeightSet`.

    ``labels`` (one name per class, e.g. 1001 names with ``"background"`` first for the ImageNet
    release) is attached to the result; ``source`` replaces the default provenance string
    (the file's name and sha256).

    Raises :class:`FileNotFoundError` if ``path`` does not exist, :class:`ImportFormatError` naming
    the offending node if the file is not a TF-slim MobileNetV1 frozen graph we can map (or the
    protobuf/tensorboard packages are missing), and :class:`InputError` if ``labels`` does not
    have one entry per class.
    """
    graph_pb2, types_pb2, DecodeError = _load_protos()
    p, where = checked_path(path, "TensorFlow graph file", "SavedModel directories are not supported; freeze "
                                                           "the graph first")
    try:
        with open(p, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ImportFormatError(f"{where}: could not be read ({e})") from None
    if not data:
        raise ImportFormatError(f"{where}: file is empty, not a TensorFlow GraphDef")
    graph = graph_pb2.GraphDef()
    try:
        graph.ParseFromString(data)
    except DecodeError as e:
        raise ImportFormatError(f"{where}: not a valid TensorFlow GraphDef; the file is truncated or is not "
                                f"a frozen .pb ({e})") from None
    except Exception as e:  # other protobuf backends may raise other types on corrupt input
        raise ImportFormatError(f"{where}: not a valid TensorFlow GraphDef ({type(e).__name__}: {e})") from None

    g = _Graph(graph, where, types_pb2)
    prefix = _find_scope(g)
    _check_block_count(g, prefix)

    # -- convolution weights, with their layouts and the channel chain --------------------------
    stem_name = f"{prefix}{_STEM}/weights"
    stem_w = g.const(stem_name, "stem convolution weights")
    _check_shape(g, stem_name, stem_w, (3, 3, 3, None), " (HWIO, 3x3 kernel over RGB)")
    stem_c = int(stem_w.shape[3])
    if stem_c < 1:
        raise g.error(f"node {stem_name!r} has no output channels")

    # Read every block first (only ranks and kernel sizes are checked), infer alpha from the output
    # channel counts, then check every shape exactly against MobileNetV1(alpha).
    raw: List[Tuple[str, np.ndarray, str, np.ndarray]] = []
    for i in range(1, _NUM_BLOCKS + 1):
        dw_name = f"{prefix}Conv2d_{i}_depthwise/depthwise_weights"
        dw = g.const(dw_name, f"depthwise weights of block {i}")
        _check_shape(g, dw_name, dw, (3, 3, None, 1), " (3x3 depthwise, channel multiplier 1)")
        pw_name = f"{prefix}Conv2d_{i}_pointwise/weights"
        pw = g.const(pw_name, f"pointwise weights of block {i}")
        _check_shape(g, pw_name, pw, (1, 1, None, None), " (1x1 convolution)")
        raw.append((dw_name, dw, pw_name, pw))
    pw_out = [int(pw.shape[3]) for _, _, _, pw in raw]
    alpha = _infer_alpha(g, prefix, stem_name, stem_c, pw_out)

    weights: Dict[str, Tuple[str, np.ndarray]] = {"stem.conv.weight": (stem_name, stem_w)}
    layer_scopes: List[Tuple[str, str, int]] = [("stem", _STEM, stem_c)]  # canonical, TF name, channels
    c = stem_c
    for i, (dw_name, dw, pw_name, pw) in enumerate(raw, start=1):
        _check_shape(g, dw_name, dw, (3, 3, c, 1), f" ({c} channels come out of the previous layer)")
        cout = pw_out[i - 1]
        _check_shape(g, pw_name, pw, (1, 1, c, cout), f" ({c} channels come out of the depthwise layer)")
        weights[f"blocks.{i - 1}.dw.weight"] = (dw_name, dw.reshape(3, 3, c))
        weights[f"blocks.{i - 1}.pw.weight"] = (pw_name, pw.reshape(c, cout))
        layer_scopes.append((f"blocks.{i - 1}.dw", f"Conv2d_{i}_depthwise", c))
        layer_scopes.append((f"blocks.{i - 1}.pw", f"Conv2d_{i}_pointwise", cout))
        c = cout

    fc_name = f"{prefix}{_LOGITS}/weights"
    fc = g.const(fc_name, "classifier weights")
    _check_shape(g, fc_name, fc, (1, 1, c, None), f" ({c} features come out of the last block)")
    num_classes = int(fc.shape[3])
    if num_classes < 1:
        raise g.error(f"node {fc_name!r} has no output classes")
    bias_name = f"{prefix}{_LOGITS}/biases"
    bias = g.const(bias_name, "classifier biases")
    _check_shape(g, bias_name, bias, (num_classes,), f" (one per class of {fc_name})")
    weights["classifier.weight"] = (fc_name, fc.reshape(c, num_classes))
    weights["classifier.bias"] = (bias_name, bias)

    # -- BatchNorm ---------------------------------------------------------------------------------
    for canonical, scope, channels in layer_scopes:
        bn = f"{prefix}{scope}/BatchNorm/"
        for tf_field, field, default in (("gamma", "gamma", 1.0), ("beta", "beta", 0.0),
                                         ("moving_mean", "mean", None), ("moving_variance", "var", None)):
            name = bn + tf_field
            if default is not None and not g.has(name):
                # TF-slim batch_norm(scale=False) has no gamma, (center=False) no beta.
                arr = np.full(channels, default, dtype=np.float32)
            else:
                arr = g.const(name, f"BatchNorm {tf_field} of {scope}")
                _check_shape(g, name, arr, (channels,), f" (one per output channel of {scope})")
            weights[f"{canonical}.bn.{field}"] = (name, arr)

    for canonical, (name, arr) in weights.items():
        if not np.isfinite(arr).all():
            raise g.error(f"node {name!r} contains NaN or Inf")
        if canonical.endswith(".bn.var") and (arr < 0).any():
            raise g.error(f"node {name!r} has negative variances")

    # -- configuration: padding, epsilon, resolution ---------------------------------------------
    consumers = _conv_consumers(g)
    stem_convs = consumers.get(_resolved_name(g, stem_name), [])
    _check_conv(g, stem_name, stem_convs, 2)
    for i, (_, stride) in enumerate(BLOCK_CONFIG, start=1):
        dw_name = f"{prefix}Conv2d_{i}_depthwise/depthwise_weights"
        _check_conv(g, dw_name, consumers.get(_resolved_name(g, dw_name), []), stride)
    bn_epsilon = _find_epsilon(g, [scope for _, scope, _ in layer_scopes])
    resolution = _find_resolution(g, stem_convs[0])

    labels = checked_labels(labels, num_classes, where)
    if source is None:
        source = (f"TensorFlow frozen GraphDef {where} (sha256 {file_sha256(p)}), "
                  f"TF-slim {prefix}* nodes, imported by mobilenet_fast.importers.tf_graphdef")
    config = ModelConfig(alpha=alpha, resolution=resolution, num_classes=num_classes, padding="tf_same",
                         bn_epsilon=bn_epsilon, input_mean=INPUT_MEAN, input_std=INPUT_STD,
                         labels=labels, source=source)
    tensors = {k: np.ascontiguousarray(arr, dtype=np.float32) for k, (_, arr) in weights.items()}
    try:
        return WeightSet(config, tensors)
    except (WeightFileError, InputError) as e:
        raise g.error(f"the imported tensors do not form a valid MobileNetV1: {e}") from None
