"""Plain-numpy reference implementation of MobileNetV1 inference.

This module is the ground truth the C++ kernels are tested against, and a debugging tool: every
layer is computed in the most direct way numpy allows, with no packing, no folding (unless asked)
and no cleverness. It does not use the C++ extension.

Conventions
-----------
* Activations are NHWC; the input of :func:`forward` is ``[N, H, W, 3]``, already normalised
  (see :func:`normalize`).
* Weights use the canonical layouts of :mod:`mobilenet_fast.weights`: stem ``[3, 3, Cin, Cout]``
  (HWIO), depthwise ``[3, 3, C]``, pointwise ``[Cin, Cout]``, dense ``[K, num_classes]``.
* Padding is explicit: ``pads = (top, left, bottom, right)`` zeros around the input. A 3x3 conv
  with stride ``s`` on an ``H x W`` input has ``OH = (H + top + bottom - 3) // s + 1`` output rows
  (likewise for columns); output pixel ``(oy, ox)`` reads input rows ``oy * s - top + ky`` for
  ``ky`` in 0..2, and columns ``ox * s - left + kx``.
* ``clamp = (lo, hi)`` clips the output (ReLU6 is ``(0, 6)``); ``None`` means linear.
* **Precision**: everything is computed in float64 and every function returns float64, except
  :func:`normalize` (float32, what the engine consumes) and :func:`fold_batchnorm` (the dtype of
  its inputs). Cast with ``.astype(np.float32)`` to compare with float32 engines.
* **Arguments** are checked like the engine's (:class:`~mobilenet_fast.errors.InputError`): arrays
  of real numbers (any int/float dtype, any layout; masked arrays are refused, their mask would be
  ignored), ranks and shapes, ints for stride/pads, ``clamp`` as (min, max) without NaN, ``eps``
  finite and >= 0, and no intermediate of 2^31 values or more (refused before allocating).
  NaN/Inf values are not refused here: they propagate as IEEE arithmetic says.
"""

from __future__ import annotations

from typing import Dict, Iterator, Optional, Sequence, Tuple

import numpy as np

from .architecture import LayerSpec, activation_clamp
from .errors import InputError
from .weights import ModelConfig, WeightSet

__all__ = [
    "conv3x3",
    "dwconv3x3",
    "pwconv",
    "global_avg_pool",
    "dense",
    "softmax",
    "batchnorm",
    "fold_batchnorm",
    "normalize",
    "forward",
    "features",
    "activations",
    "RELU6",
]

Pads = Tuple[int, int, int, int]
Clamp = Optional[Tuple[float, float]]

#: The clamp of ReLU6.
RELU6: Tuple[float, float] = (0.0, 6.0)
#: Largest array (values) an op builds, as in the engine.
MAX_VALUES = 2**31 - 1


# --------------------------------------------------------------------------------------------
# argument checking


def _real_array(name: str, a: np.ndarray) -> np.ndarray:
    if isinstance(a, np.ma.MaskedArray):
        raise InputError(f"{name} is a masked array: its mask would be ignored (use .filled(value))")
    try:
        arr = np.asarray(a)
    except (TypeError, ValueError) as e:
        raise InputError(f"{name} must be an array of real numbers ({e})") from None
    if arr.dtype.kind not in "fiu":
        raise InputError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def _as_f64(name: str, a: np.ndarray, ndim: int) -> np.ndarray:
    arr = _real_array(name, a)
    if arr.ndim != ndim:
        raise InputError(f"{name} must have {ndim} dimensions, got shape {list(arr.shape)}")
    return arr.astype(np.float64, copy=False)


def _check_values(what: str, shape: Sequence[int]) -> None:
    n = 1
    for d in shape:
        n *= max(int(d), 1)
    if n > MAX_VALUES:
        raise InputError(f"{what} would have shape {tuple(int(d) for d in shape)}, more than the limit of "
                         f"2^31 - 1 values")


def _check_eps(eps: float) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)) \
            or not np.isfinite(eps) or eps < 0:
        raise InputError(f"BatchNorm needs eps >= 0 (a finite number), got {eps!r}")
    return float(eps)


def _check_bias(bias: Optional[np.ndarray], channels: int) -> Optional[np.ndarray]:
    if bias is None:
        return None
    b = _as_f64("bias", bias, 1)
    if b.shape[0] != channels:
        raise InputError(f"bias has {b.shape[0]} values, expected {channels} (one per output channel)")
    return b


def _check_pads(pads: Sequence[int]) -> Pads:
    try:
        items = list(pads)
    except TypeError:
        raise InputError(f"pads must be four ints (top, left, bottom, right), got {pads!r}") from None
    if len(items) != 4 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0 for v in items):
        raise InputError(f"pads must be four ints >= 0 (top, left, bottom, right), got {pads!r}")
    return tuple(int(v) for v in items)  # type: ignore[return-value]


def _check_stride(stride: int) -> int:
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise InputError(f"stride must be an int >= 1, got {stride!r}")
    return int(stride)


def _apply_clamp(y: np.ndarray, clamp: Clamp) -> np.ndarray:
    if clamp is None:
        return y
    try:
        lo, hi = (float(v) for v in clamp)
    except (TypeError, ValueError):
        raise InputError(f"clamp must be (min, max) or None, got {clamp!r}") from None
    if not lo <= hi:  # also refuses NaN
        raise InputError(f"clamp must be (min, max) with min <= max, got {clamp!r}")
    out: np.ndarray = np.clip(y, lo, hi)
    return out


def _padded_taps(x: np.ndarray, stride: int, pads: Pads) -> Iterator[Tuple[int, int, np.ndarray]]:
    """Zero-pad ``x`` [N,H,W,C] and yield ``(ky, kx, tap)`` for the 9 taps of a 3x3 window.

    ``tap[n, oy, ox, c] = padded[n, oy * stride + ky, ox * stride + kx, c]``.
    """
    n, h, w, _ = x.shape
    top, left, bottom, right = pads
    oh = (h + top + bottom - 3) // stride + 1
    ow = (w + left + right - 3) // stride + 1
    if oh < 1 or ow < 1:
        raise InputError(f"a 3x3 window does not fit a {h}x{w} input with pads {pads}")
    _check_values("the padded input", (n, h + top + bottom, w + left + right, x.shape[3]))
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    for ky in range(3):
        for kx in range(3):
            yield ky, kx, xp[:, ky:ky + (oh - 1) * stride + 1:stride, kx:kx + (ow - 1) * stride + 1:stride, :]


# --------------------------------------------------------------------------------------------
# ops


def conv3x3(x: np.ndarray, w: np.ndarray, bias: Optional[np.ndarray] = None, stride: int = 1,
            pads: Sequence[int] = (1, 1, 1, 1), clamp: Clamp = None) -> np.ndarray:
    """Dense 3x3 convolution (cross-correlation, as in every DL framework).

    ``x`` is ``[N, H, W, Cin]``, ``w`` is ``[3, 3, Cin, Cout]`` (HWIO), ``bias`` is ``[Cout]`` or
    None; returns float64 ``[N, OH, OW, Cout]`` with ``OH = (H + top + bottom - 3) // stride + 1``.
    """
    x = _as_f64("x", x, 4)
    w = _as_f64("w", w, 4)
    if w.shape[:2] != (3, 3) or w.shape[2] != x.shape[3]:
        raise InputError(f"w must be [3, 3, Cin={x.shape[3]}, Cout], got {list(w.shape)}")
    b = _check_bias(bias, w.shape[3])
    stride, pads = _check_stride(stride), _check_pads(pads)
    _check_values("the output", (x.shape[0], max(0, x.shape[1] + pads[0] + pads[2] - 3) // stride + 1,
                                 max(0, x.shape[2] + pads[1] + pads[3] - 3) // stride + 1, w.shape[3]))
    y = None
    for ky, kx, tap in _padded_taps(x, stride, pads):
        term = tap @ w[ky, kx]  # [N,OH,OW,Cin] @ [Cin,Cout]
        y = term if y is None else y + term
    assert y is not None
    if b is not None:
        y = y + b
    return _apply_clamp(y, clamp)


def dwconv3x3(x: np.ndarray, w: np.ndarray, bias: Optional[np.ndarray] = None, stride: int = 1,
              pads: Sequence[int] = (1, 1, 1, 1), clamp: Clamp = None) -> np.ndarray:
    """Depthwise 3x3 convolution: channel ``c`` of the output sees only channel ``c`` of the input.

    ``x`` is ``[N, H, W, C]``, ``w`` is ``[3, 3, C]``, ``bias`` is ``[C]`` or None; returns float64
    ``[N, OH, OW, C]`` (output size as in :func:`conv3x3`).
    """
    x = _as_f64("x", x, 4)
    w = _as_f64("w", w, 3)
    if w.shape != (3, 3, x.shape[3]):
        raise InputError(f"w must be [3, 3, C={x.shape[3]}], got {list(w.shape)}")
    b = _check_bias(bias, w.shape[2])
    stride, pads = _check_stride(stride), _check_pads(pads)
    y = None
    for ky, kx, tap in _padded_taps(x, stride, pads):
        term = tap * w[ky, kx]
        y = term if y is None else y + term
    assert y is not None
    if b is not None:
        y = y + b
    return _apply_clamp(y, clamp)


def pwconv(x: np.ndarray, w: np.ndarray, bias: Optional[np.ndarray] = None, clamp: Clamp = None) -> np.ndarray:
    """Pointwise (1x1) convolution: ``y[n,h,w,:] = x[n,h,w,:] @ w + bias``.

    ``x`` is ``[N, H, W, Cin]``, ``w`` is ``[Cin, Cout]``; returns float64 ``[N, H, W, Cout]``.
    """
    x = _as_f64("x", x, 4)
    w = _as_f64("w", w, 2)
    if w.shape[0] != x.shape[3]:
        raise InputError(f"w must be [Cin={x.shape[3]}, Cout], got {list(w.shape)}")
    b = _check_bias(bias, w.shape[1])
    _check_values("the output", x.shape[:3] + (w.shape[1],))
    y = x @ w
    if b is not None:
        y = y + b
    return _apply_clamp(y, clamp)


def global_avg_pool(x: np.ndarray) -> np.ndarray:
    """Mean over the spatial axes: ``[N, H, W, C] -> [N, C]`` (float64)."""
    x = _as_f64("x", x, 4)
    if x.shape[1] == 0 or x.shape[2] == 0:
        raise InputError(f"cannot pool an empty feature map of shape {list(x.shape)}")
    pooled: np.ndarray = x.mean(axis=(1, 2))
    return pooled


def dense(x: np.ndarray, w: np.ndarray, bias: Optional[np.ndarray] = None) -> np.ndarray:
    """Fully connected layer: ``[N, K] @ [K, M] + bias[M] -> [N, M]`` (float64)."""
    x = _as_f64("x", x, 2)
    w = _as_f64("w", w, 2)
    if w.shape[0] != x.shape[1]:
        raise InputError(f"w must be [K={x.shape[1]}, M], got {list(w.shape)}")
    b = _check_bias(bias, w.shape[1])
    _check_values("the output", (x.shape[0], w.shape[1]))
    y: np.ndarray = x @ w
    return y if b is None else y + b


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis`` (the max is subtracted first); float64."""
    x = _real_array("x", x).astype(np.float64, copy=False)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -x.ndim <= axis < x.ndim:
        raise InputError(f"axis must be an int in {-x.ndim}..{x.ndim - 1} for x of shape {list(x.shape)}, got {axis!r}")
    if x.shape[axis] == 0:
        raise InputError(f"cannot take a softmax over an empty axis (x has shape {list(x.shape)})")
    z = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(z)
    p: np.ndarray = e / np.sum(e, axis=axis, keepdims=True)
    return p


def _bn_params(gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray,
               eps: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    g, b, m, v = (_as_f64(n, a, 1) for n, a in (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var)))
    if not g.shape == b.shape == m.shape == v.shape:
        raise InputError(f"BatchNorm parameters differ in shape: gamma {list(g.shape)}, beta {list(b.shape)}, "
                         f"mean {list(m.shape)}, var {list(v.shape)}")
    eps = _check_eps(eps)
    if (v + eps <= 0).any():
        raise InputError("BatchNorm needs eps >= 0 and var + eps > 0")
    return g, b, m, v


def batchnorm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray,
              eps: float) -> np.ndarray:
    """Inference BatchNorm over the last axis: ``(x - mean) / sqrt(var + eps) * gamma + beta`` (float64)."""
    x = _real_array("x", x)
    g, b, m, v = _bn_params(gamma, beta, mean, var, eps)
    if x.ndim < 1 or x.shape[-1] != g.shape[0]:
        raise InputError(f"BatchNorm has {g.shape[0]} channels but x {list(x.shape)} has "
                         f"{x.shape[-1] if x.ndim else 0} (last axis)")
    y: np.ndarray = (x.astype(np.float64) - m) / np.sqrt(v + float(eps)) * g + b
    return y


def fold_batchnorm(weight: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray,
                   var: np.ndarray, eps: float) -> Tuple[np.ndarray, np.ndarray]:
    """Fold an inference BatchNorm into the preceding bias-free conv/dense layer.

    The output channel is the last axis of ``weight`` (canonical layouts: HWIO, ``[3,3,C]``,
    ``[Cin,Cout]``). Returns ``(weight * s, beta - mean * s)`` with ``s = gamma / sqrt(var + eps)``,
    so that ``op(x, folded_weight) + bias == batchnorm(op(x, weight), ...)``. Computed in float64
    and returned in the floating dtype of the inputs (float32 in, float32 out).
    """
    w = _real_array("weight", weight)
    if w.ndim < 1:
        raise InputError("weight must have at least one dimension")
    g, b, m, v = _bn_params(gamma, beta, mean, var, eps)
    scale = g / np.sqrt(v + float(eps))
    shift = b - m * scale
    if w.shape[-1] != scale.shape[0]:
        raise InputError(f"weight {list(w.shape)} has {w.shape[-1]} output channels (last axis) but BatchNorm has "
                         f"{scale.shape[0]}")
    dtype = np.result_type(w, np.asarray(gamma), np.asarray(beta), np.asarray(mean), np.asarray(var), np.float32)
    return (w.astype(np.float64) * scale).astype(dtype), shift.astype(dtype)


def normalize(images: np.ndarray, config: ModelConfig) -> np.ndarray:
    """Map pixels in 0..255 (uint8 or float, RGB, channels last) to ``(x - mean) / std`` as float32.

    Works on ``[N, H, W, 3]`` as well as a single ``[H, W, 3]`` image (the shape is kept).
    """
    x = _real_array("images", images)
    if x.ndim < 1 or x.shape[-1] != 3:
        raise InputError(f"images must have 3 (RGB) channels on the last axis, got shape {list(x.shape)}")
    mean = np.asarray(config.input_mean, dtype=np.float64)
    std = np.asarray(config.input_std, dtype=np.float64)
    return ((x.astype(np.float64) - mean) / std).astype(np.float32)


# --------------------------------------------------------------------------------------------
# the network


def _layer_weights(weights: WeightSet, layer: LayerSpec) -> Tuple[np.ndarray, Tuple[np.ndarray, ...]]:
    """(weight, (gamma, beta, mean, var)) of a conv layer in canonical layout."""
    t = weights.tensors
    prefix = "stem" if layer.kind == "conv3x3" else layer.name
    w = t["stem.conv.weight"] if layer.kind == "conv3x3" else t[f"{layer.name}.weight"]
    bn = tuple(t[f"{prefix}.bn.{f}"] for f in ("gamma", "beta", "mean", "var"))
    return w, bn


def _run(weights: WeightSet, x: np.ndarray, upto_pool: bool) -> Iterator[Tuple[LayerSpec, np.ndarray]]:
    if not isinstance(weights, WeightSet):
        raise InputError(f"weights must be a WeightSet, got {type(weights).__name__}")
    x = _as_f64("x", x, 4)
    if x.shape[3] != 3:
        raise InputError(f"x must be NHWC with 3 channels, got shape {list(x.shape)}")
    if x.shape[0] == 0:
        raise InputError("x holds no images (batch size 0)")
    cfg = weights.config
    arch = cfg.architecture((int(x.shape[1]), int(x.shape[2])))
    for layer in arch:
        if layer.kind in ("conv3x3", "dwconv3x3", "pwconv"):
            w, bn = _layer_weights(weights, layer)
            if layer.kind == "conv3x3":
                x = conv3x3(x, w, None, layer.stride, layer.pads)
            elif layer.kind == "dwconv3x3":
                x = dwconv3x3(x, w, None, layer.stride, layer.pads)
            else:
                x = pwconv(x, w)
            gamma, beta, mean, var = bn
            x = batchnorm(x, gamma, beta, mean, var, eps=cfg.bn_epsilon)
            if layer.relu6:
                x = _apply_clamp(x, activation_clamp(cfg.activation))
            assert x.shape[1:] == (layer.out_h, layer.out_w, layer.out_channels), (layer, x.shape)
        elif layer.kind == "avgpool":
            x = global_avg_pool(x)
            yield layer, x
            if upto_pool:
                return
            continue
        elif layer.kind == "dense":
            x = dense(x, weights.tensors["classifier.weight"], weights.tensors["classifier.bias"])
        else:  # pragma: no cover - the architecture only has the kinds above
            raise AssertionError(f"unknown layer kind {layer.kind!r}")
        yield layer, x


def forward(weights: WeightSet, x: np.ndarray, *, logits: bool = True) -> np.ndarray:
    """Run the whole network on ``x`` ([N, H, W, 3], already normalised) and return float64 output.

    The layer list is built for the actual input size (``weights.config.architecture((H, W))``),
    with the padding convention of the weights. Each conv is followed by an explicit (unfolded)
    BatchNorm and activation (ReLU6, or ReLU for ``activation="relu"``); then a global mean pool and the classifier. Returns ``[N, num_classes]``
    logits, or softmax probabilities with ``logits=False``; for a feature extractor
    (``num_classes == 0``) returns the pooled ``[N, C]`` features whatever ``logits`` says.
    """
    out = None
    for _, out in _run(weights, x, upto_pool=False):
        pass
    assert out is not None
    if weights.config.num_classes and not logits:
        out = softmax(out, axis=-1)
    return out


def features(weights: WeightSet, x: np.ndarray) -> np.ndarray:
    """The pooled feature vector ``[N, C]`` (C = 1024 * alpha) before the classifier (float64)."""
    out = None
    for _, out in _run(weights, x, upto_pool=True):
        pass
    assert out is not None
    return out


def activations(weights: WeightSet, x: np.ndarray) -> Dict[str, np.ndarray]:
    """Every layer's output by layer name (``"stem"``, ``"blocks.0.dw"``, ..., ``"pool"``,
    ``"classifier"``), after BatchNorm and ReLU6: for finding the first layer where two engines
    disagree. Float64 NHWC (``[N, C]`` from ``"pool"`` on)."""
    return {layer.name: out for layer, out in _run(weights, x, upto_pool=False)}
