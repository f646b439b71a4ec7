"""Post-training int8 quantisation of MobileNetV1, and the numpy integer reference of the int8 network.

The scheme is the one the int8 kernels implement (``ops.qgemm_u8s8``, ``ops.qdwconv3x3``):

* **weights**: int8, symmetric, one scale per output channel: ``w = s_w[c] * q`` with
  ``q`` in -127..127 and ``s_w[c] = max |w[..., c]| / 127`` (BatchNorm folded first);
* **activations**: uint8, one scale and zero point per tensor: ``x = s * (q - zp)``. After ReLU6
  the range is [0, hi] with ``zp = 0``; ``hi`` is estimated on calibration images (``method``:
  ``"minmax"``, ``"percentile"``, or ``"mse"``, the clip that minimises the mean squared
  quantisation error of the calibration values). The network input (the normalised image) is
  quantised asymmetrically over its calibrated range;
* **bias**: int32 at the scale ``s_in * s_w[c]`` of the accumulator;
* **arithmetic**: exact int32 sums of ``(q_in - zp_in) * q_w`` plus the bias, requantised per
  output channel with the float32 multiplier ``s_in * s_w[c] / s_out``:
  ``q_out = clamp(zp_out + rne(float32(acc) * m[c]), lo, hi)`` (round half to even; ``m`` from
  :func:`requant_multiplier`, float32 arithmetic as LiteRT's XNNPACK), with ReLU6
  in the clamp (``hi = q(6)``, at most 255). A padding tap is the input's zero point (adds 0).
  The stem is the same arithmetic on 3x3x3 patches; the global average pool sums the pixels in
  int32 and requantises with ``s_in / (H * W * s_out)``; the classifier returns float logits
  ``s_in * s_w[n] * acc``.
* **bias correction** (Nagel et al. 2019, the empirical form): layer by layer, the mean over the
  calibration images of (float output - quantised output), per output channel and before the
  clamp, is added to that layer's bias, so the error of the weights and of every earlier layer
  does not shift the channel means.

:func:`quantize_network` computes the parameters from float32 weights and calibration images;
:func:`int8_forward` runs the quantised network in numpy integers with exactly the kernels'
arithmetic (the tests check the kernels against it layer by layer); :func:`agreement` compares
two sets of logits' top-1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

from . import _core, reference
from .architecture import LayerSpec
from .errors import InputError
from .runner import Model, folded_tensors
from .weights import ModelConfig, WeightSet

__all__ = ["QParams", "QLayer", "QuantizedNet", "QuantizedModel", "quantize", "quantize_network", "int8_forward",
           "requant_multiplier", "logit_scale", "overflowing_channel", "split_weight_offset",
           "agreement", "pair_sums", "METHODS", "PAIR_LIMIT", "GEMM_KINDS"]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: Range estimators for the activations.
METHODS = ("minmax", "percentile", "mse")


@dataclass(frozen=True)
class QParams:
    """uint8 quantisation of one tensor: ``real = scale * (q - zero_point)``."""

    scale: float
    zero_point: int

    def quantize(self, x: F64, divide: bool = False) -> I64:
        """Real values to uint8 codes: multiplied by the float32 reciprocal of the scale (computed
        once, as LiteRT/XNNPACK quantise a float input) or, with ``divide``, divided by it (as
        onnxruntime's QuantizeLinear does), rounded half to even, saturated."""
        xf = np.asarray(x, np.float32)
        y = xf / np.float32(self.scale) if divide else xf * (np.float32(1) / np.float32(self.scale))
        q: I64 = np.rint(y).astype(np.int64) + self.zero_point
        return np.clip(q, 0, 255).astype(np.int64)

    def dequantize(self, q: I64) -> F64:
        """uint8 codes to real values."""
        return (np.asarray(q, np.float64) - self.zero_point) * self.scale


@dataclass
class QLayer:
    """One quantised conv / dense layer (canonical weight layouts, output channels last)."""

    spec: LayerSpec
    #: int8 codes; or int16 in -255..255 spanning at most 255 steps: weights that had a zero point
    #: (a legacy uint8 .tflite's ``code - zero_point``; see :func:`split_weight_offset`).
    weight: npt.NDArray[Any]
    weight_scale: F32  # per output channel
    bias: npt.NDArray[np.int32]  # at scale input.scale * weight_scale
    input: QParams
    output: Optional[QParams]  # None: the classifier (float logits)
    clamp: Tuple[int, int] = (0, 255)  # in the output's codes

    @property
    def multiplier(self) -> F32:
        """The per-channel float32 requantisation multiplier ``s_in * s_w / s_out``
        (:func:`requant_multiplier`)."""
        assert self.output is not None
        return requant_multiplier(self.input.scale, self.weight_scale, self.output.scale)


def requant_multiplier(in_scale: float, weight_scale: npt.ArrayLike, out_scale: float) -> F32:
    """``(s_in * s_w[c]) / s_out`` in float32 arithmetic: each scale rounded to float32, the
    product rounded, then the quotient - the multiplier LiteRT's XNNPACK delegate computes for a
    quantised conv, so that an imported ``.tflite`` gives its numbers exactly. (0 or inf where the
    scales are absurd: the loaders refuse those.)"""
    with np.errstate(over="ignore", under="ignore"):
        prod = np.float32(in_scale) * np.asarray(weight_scale, np.float32)
        return np.asarray(prod / np.float32(out_scale), np.float32)


def overflowing_channel(weight: npt.ArrayLike, bias: npt.ArrayLike) -> Optional[int]:
    """The first output channel whose int32 accumulator could overflow for some input - where
    ``|bias| + 255 * sum |w|`` (every ``|x - zp| <= 255``) exceeds 2^31 - 1 - or None.
    ``weight``: int8 codes in a canonical layout, output channels last."""
    w = np.asarray(weight)
    bound = 255 * np.abs(w.astype(np.int64)).reshape(-1, w.shape[-1]).sum(axis=0)
    bad = np.flatnonzero(np.abs(np.asarray(bias, np.int64)) + bound > 2**31 - 1)
    return int(bad[0]) if bad.size else None


def split_weight_offset(weight: npt.NDArray[Any]) -> Tuple[npt.NDArray[np.int8], int]:
    """``(w8, d)`` with ``weight == w8 + d``: int8 weights as they are (``d = 0``); int16 weights
    of a zero-pointed layer (at most 255 steps from lowest to highest) shifted into int8, which is
    how the C++ network runs them (``QLayerParams::weight_offset``: a GEMM adds ``d x`` the row sums
    of its input codes, a depthwise layer runs its scalar kernel). InputError for weights no
    offset brings into int8."""
    w = np.asarray(weight)
    if w.dtype == np.int8:
        return w, 0
    lo, hi = int(w.min()), int(w.max())
    if lo >= -128 and hi <= 127:
        return w.astype(np.int8), 0
    if hi - lo > 255 or lo < -255 or hi > 255:
        raise InputError(f"weights in {lo}..{hi}: more than 255 steps apart, or beyond -255..255, cannot run as int8 "
                         "plus an offset")
    d = hi - 127
    return (w - d).astype(np.int8), d


def logit_scale(in_scale: float, weight_scale: npt.ArrayLike) -> F32:
    """The classifier's per-class float32 scale ``s_in * s_w[n]`` (float32 product)."""
    with np.errstate(over="ignore", under="ignore"):
        return np.asarray(np.float32(in_scale) * np.asarray(weight_scale, np.float32), np.float32)


@dataclass
class QuantizedNet:
    """The parameters of a quantised MobileNetV1: the input's quantisation, every conv layer, the
    pool's output and the classifier (absent for a feature extractor)."""

    config_alpha: float
    input: QParams
    layers: List[QLayer]
    pool_output: QParams
    classifier: Optional[QLayer]
    method: str
    bias_correction: bool
    notes: Dict[str, float] = field(default_factory=dict)
    #: Whether the GEMM weights were quantised with the pair limit (provenance; what the weights
    #: satisfy is :meth:`pairs_within_limit`).
    pair_limit: bool = False
    #: How the weight codes were chosen (provenance).
    rounding: str = "nearest"
    #: The quantisation of the logits in the file this network was imported from (a .tflite's
    #: int8 logits, as uint8 codes): when set, the classifier requantises onto that grid and the
    #: logits are its dequantised codes, the numbers the file's runtime returns. None (our own
    #: quantiser): float32 logits s_in * s_w * acc.
    logits_output: Optional[QParams] = None
    #: Quantise the input by dividing by its scale (onnxruntime's QuantizeLinear; a model imported
    #: from a quantised ONNX file) instead of multiplying by the float32 reciprocal (LiteRT's way,
    #: and ours).
    input_divide: bool = False
    #: Round the pool's average half up in integers, ``(sum of codes + HW // 2) // HW``, as
    #: TFLite's quantised AVERAGE_POOL_2D does (a legacy uint8 .tflite), which keeps the input's
    #: scale and zero point; default: the float32 multiplier ``s_in / (HW s_out)``, half to even.
    pool_half_up: bool = False

    def fc_scale(self) -> F32:
        """The classifier's per-class float32 output scale: ``s_in * s_w`` (float logits) or, with
        :attr:`logits_output`, the requantisation multiplier onto the logits' grid."""
        assert self.classifier is not None
        c = self.classifier
        if self.logits_output is None:
            return logit_scale(c.input.scale, c.weight_scale)
        return requant_multiplier(c.input.scale, c.weight_scale, self.logits_output.scale)

    def finish_logits(self, y: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """The logits from the classifier's output ``y = float32(acc) * fc_scale()``: ``y`` itself,
        or, with :attr:`logits_output`, ``(clamp(zp + rne(y), 0, 255) - zp) * scale`` in float32."""
        o = self.logits_output
        if o is None:
            return y
        q = np.clip(np.rint(np.asarray(y, np.float32)) + o.zero_point, 0, 255) - o.zero_point
        return np.asarray(q.astype(np.float32) * np.float32(o.scale), dtype=np.asarray(y).dtype)

    def pairs_within_limit(self) -> bool:
        """Whether every GEMM layer (stem, pointwise, classifier) has ``|q[2j, n]| + |q[2j+1, n]|
        <= PAIR_LIMIT`` for all pairs of consecutive K rows (what ``vpmaddubsw`` needs to be exact)."""
        gemms = [l for l in self.layers if l.spec.kind in GEMM_KINDS]
        if self.classifier is not None:
            gemms.append(self.classifier)
        return all(int(pair_sums(l.weight).max()) <= PAIR_LIMIT for l in gemms)

    def plan(self, height: int, width: int, *, isa: Optional[str] = None, threads: int = 1) -> "_core.QPlan":
        """The C++ int8 network (``mobilenet_fast._core.QPlan``) for inputs of ``height x width``
        with these parameters; :meth:`finish_logits` of its ``run(x)`` gives the logits of
        :func:`int8_forward`, bit for bit (``run(x)`` alone where :attr:`logits_output` is None)."""
        def params(layer: QLayer) -> Tuple[Any, ...]:
            assert layer.output is not None
            w8, d = split_weight_offset(layer.weight)
            return (np.ascontiguousarray(w8), np.ascontiguousarray(layer.bias),
                    np.ascontiguousarray(layer.multiplier), layer.output.zero_point, layer.clamp[0], layer.clamp[1], d)

        stem, blocks = self.layers[0], self.layers[1:]
        last = self.layers[-1].output
        assert last is not None
        fc = None
        if self.classifier is not None:
            w8, d = split_weight_offset(self.classifier.weight)
            fc = (np.ascontiguousarray(w8), np.ascontiguousarray(self.classifier.bias),
                  np.ascontiguousarray(self.fc_scale()), d)
        return _core.QPlan(
            height, width, (self.input.scale, self.input.zero_point, self.input_divide),
            (stem.spec.stride, stem.spec.pads, params(stem)),
            [(dw.spec.stride, dw.spec.pads, params(dw), params(pw)) for dw, pw in zip(blocks[0::2], blocks[1::2])],
            (last.scale, last.zero_point, self.pool_output.scale, self.pool_output.zero_point, self.pool_half_up), fc,
            isa=isa,
            threads=threads)

    def __repr__(self) -> str:
        return (f"QuantizedNet(alpha={self.config_alpha:g}, layers={len(self.layers)}, method={self.method!r}, "
                f"bias_correction={self.bias_correction}, pair_limit={self.pair_limit})")


# ---------------------------------------------------------------------------------------- ranges

def _clip_mse(values: F64, hi: float) -> float:
    """The clip in (0, hi] minimising the mean squared error of uint8 quantisation over [0, clip]."""
    v = values[values > 0]
    if v.size == 0 or hi <= 0:
        return max(hi, 1e-6)
    if v.size > 200_000:
        v = np.random.default_rng(0).choice(v, 200_000, replace=False)
    best, best_err = hi, np.inf
    for c in np.linspace(0.2 * hi, hi, 41):
        s = c / 255.0
        q = np.clip(np.rint(v / s), 0, 255) * s
        err = float(np.mean((v - q) ** 2))
        if err < best_err:
            best, best_err = float(c), err
    return best


def _relu_range(values: F64, method: str, percentile: float, act_max: float) -> QParams:
    """uint8 parameters (zero point 0) for a non-negative tensor."""
    hi = float(values.max()) if values.size else 0.0
    if method == "percentile":
        hi = float(np.percentile(values, percentile))
    elif method == "mse":
        hi = _clip_mse(values, hi)
    hi = min(max(hi, 1e-6), act_max)
    return QParams(hi / 255.0, 0)


def _input_params(x: F64) -> QParams:
    """Asymmetric uint8 parameters over the calibrated range of the normalised input (254 steps,
    so that the pixel grid of the usual normalisations falls between rounding ties)."""
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = max(hi - lo, 1e-6) / 254.0
    return QParams(scale, int(np.clip(np.rint(-lo / scale), 0, 255)))


# --------------------------------------------------------------------------- integer layer ops

def _taps(q: I64, zp: int, stride: int, pads: Tuple[int, int, int, int]) -> List[F64]:
    """The 9 taps (kh, kw order) of a 3x3 window over uint8 codes minus the zero point, each
    [N, OH, OW, C] (padding: 0). float64 holds these integers and every sum of the layers exactly
    (|sum| < 2^31 < 2^53), and lets numpy use BLAS."""
    t, l, b, r = pads
    x = np.pad(np.asarray(q, np.float64) - zp, ((0, 0), (t, b), (l, r), (0, 0)))
    oh, ow = (x.shape[1] - 3) // stride + 1, (x.shape[2] - 3) // stride + 1
    return [x[:, kh:kh + stride * (oh - 1) + 1:stride, kw:kw + stride * (ow - 1) + 1:stride, :]
            for kh in range(3) for kw in range(3)]


def _accumulate(layer: QLayer, q: I64) -> I64:
    """The exact int32 accumulators of a layer (before requantisation)."""
    s, zp = layer.spec, layer.input.zero_point
    w = layer.weight.astype(np.float64)
    acc: F64
    if s.kind == "conv3x3":
        taps = _taps(q, zp, s.stride, s.pads)
        w_stem = w.reshape(9, s.in_channels, s.out_channels)
        acc = sum((taps[t] @ w_stem[t] for t in range(9)), np.zeros(()))
    elif s.kind == "dwconv3x3":
        taps = _taps(q, zp, s.stride, s.pads)
        w_dw = w.reshape(9, s.in_channels)
        acc = sum((taps[t] * w_dw[t] for t in range(9)), np.zeros(()))
    else:  # pwconv, dense: one 2-D GEMM (numpy runs an N-D @ 2-D product as many small ones)
        qf = np.asarray(q, np.float64) - zp
        acc = (qf.reshape(-1, qf.shape[-1]) @ w).reshape(qf.shape[:-1] + (w.shape[-1],))
    acc = np.asarray(acc) + layer.bias.astype(np.float64)
    if np.any(np.abs(acc) >= 2**31):
        raise InputError(f"{s.name}: int32 accumulator overflow")
    return acc.astype(np.int64)


def _requantize(acc: I64, multiplier: F32, out: QParams, clamp: Tuple[int, int]) -> I64:
    """clamp(zp + rne(float32(acc) * m)): float32 multiply, clamp on the integer bounds, rne."""
    y = acc.astype(np.int32).astype(np.float32) * multiplier
    y = np.clip(y, np.float32(clamp[0] - out.zero_point), np.float32(clamp[1] - out.zero_point))
    r: I64 = np.rint(y).astype(np.int64) + out.zero_point
    return r


def _pool(q: I64, inp: QParams, out: QParams, half_up: bool = False) -> I64:
    """Global average pool of uint8 codes: int32 sums over H*W, requantised with s_in / (HW s_out)
    (or, ``half_up``, ``(sum of codes + HW // 2) // HW``: QuantizedNet.pool_half_up)."""
    hw = q.shape[1] * q.shape[2]
    if half_up:
        return np.asarray((np.asarray(q, np.int64).sum(axis=(1, 2)) + hw // 2) // hw, np.int64)
    acc = (q - inp.zero_point).sum(axis=(1, 2))
    m = np.float32(np.float64(inp.scale) / (hw * out.scale))
    return _requantize(acc, np.full(acc.shape[-1], m, np.float32), out, (0, 255))


def _logits(qnet: QuantizedNet, q: I64) -> F64:
    """The classifier's logits: float32(acc) * fc_scale(), through finish_logits."""
    assert qnet.classifier is not None
    acc = _accumulate(qnet.classifier, q)
    y = acc.astype(np.int32).astype(np.float32) * qnet.fc_scale()
    return np.asarray(qnet.finish_logits(y), np.float64)


def int8_forward(qnet: QuantizedNet, x: F32, *, features: bool = False) -> F64:
    """Run the quantised network on normalised images ``x`` ([N, H, W, 3] float32) with the int8
    kernels' arithmetic, in numpy integers. Returns float64 logits ``[N, classes]`` (or, with
    ``features`` or no classifier, the dequantised pooled features ``[N, C]``)."""
    q = qnet.input.quantize(np.asarray(x, np.float64), divide=qnet.input_divide)
    for layer in qnet.layers:
        assert layer.output is not None
        q = _requantize(_accumulate(layer, q), layer.multiplier, layer.output, layer.clamp)
    q = _pool(q, qnet.layers[-1].output or qnet.input, qnet.pool_output, qnet.pool_half_up)
    if features or qnet.classifier is None:
        return qnet.pool_output.dequantize(q)
    return _logits(qnet, q)


# ---------------------------------------------------------------------------------- quantising

#: With ``pair_limit``, every pair of consecutive int8 weights along the GEMM's K axis satisfies
#: ``|q[2j, n]| + |q[2j+1, n]| <= PAIR_LIMIT``: then a uint8 x int8 pair sum (``vpmaddubsw``, int16
#: with saturation) is at most 255 * 128 = 32640 and never saturates.
PAIR_LIMIT = 128

#: The layer kinds whose weights an int8 GEMM multiplies (pair-limited): the stem (K = the 27
#: (kh, kw, ci) taps of ``weight.reshape(27, C)``), the pointwise layers and the classifier (K = rows).
GEMM_KINDS = ("conv3x3", "pwconv", "dense")


def pair_sums(weight: npt.NDArray[Any]) -> I64:
    """``|q[2j, n]| + |q[2j+1, n]|`` of a GEMM layer's int8 weights (any shape whose last axis is
    the output channel; K is the flattened rest, in the order the GEMM packer takes them; an odd
    K's last row pairs with zero): ``[ceil(K / 2), N]``."""
    a = np.abs(np.asarray(weight).reshape(-1, np.shape(weight)[-1]).astype(np.int64))
    if a.shape[0] % 2:
        a = np.concatenate([a, np.zeros((1, a.shape[1]), np.int64)])
    out: I64 = a[0::2] + a[1::2]
    return out


def _round_pairs(r: F64, qmax: int = 127) -> I64:
    """Nearest codes of ``r`` (real-valued codes, ``[K, N]``) in -qmax..qmax whose pairs of rows
    (2j, 2j+1) keep ``|q0| + |q1| <= PAIR_LIMIT``. Where nearest rounding breaks the limit, the
    pair becomes the lattice point of ``|q0| + |q1| = PAIR_LIMIT`` (same signs) nearest to
    ``(r0, r1)``: the projection onto that line takes the same amount off both magnitudes (the
    least squared error, the scale being the channel's for both), then rounds along the line."""
    r = np.clip(np.asarray(r, np.float64), -qmax, qmax)
    q = np.rint(r).astype(np.int64)
    k = r.shape[0]
    if k % 2:
        r = np.concatenate([r, np.zeros((1, r.shape[1]))])
        q = np.concatenate([q, np.zeros((1, q.shape[1]), np.int64)])
    a, b = np.abs(r[0::2]), np.abs(r[1::2])
    bad = np.abs(q[0::2]) + np.abs(q[1::2]) > PAIR_LIMIT
    if np.any(bad):
        lo = max(PAIR_LIMIT - qmax, 0)
        qa = np.clip(np.rint((a - b + PAIR_LIMIT) / 2), lo, PAIR_LIMIT - lo).astype(np.int64)
        qb = PAIR_LIMIT - qa
        sa, sb = np.where(r[0::2] < 0, -1, 1), np.where(r[1::2] < 0, -1, 1)
        q0, q1 = q[0::2], q[1::2]
        q0[bad] = (sa * qa)[bad]
        q1[bad] = (sb * qb)[bad]
    out: I64 = q[:k]
    return out


def _pair_limited(w: F64, scale: F64, qmax: int = 127, steps: int = 32) -> Tuple[I64, F64]:
    """Pair-limited codes of ``w`` (``[K, N]``) and the scale of each column: among the scales
    from ``scale`` (the usual ``max |w| / qmax``) up to the one at which no pair of real codes
    breaks the limit (``max |w0| + |w1| / PAIR_LIMIT``), in ``steps`` equal steps, the one whose
    :func:`_round_pairs` codes give the least squared error ``sum (w - s q)^2`` of the column.
    A larger scale rounds every weight more coarsely; a smaller one projects more pairs (a
    channel whose weights are all near its maximum, as in the stem, would otherwise lose half
    its gain)."""
    a = np.abs(w)
    if a.shape[0] % 2:
        a = np.concatenate([a, np.zeros((1, a.shape[1]))])
    top = np.maximum((a[0::2] + a[1::2]).max(axis=0) / PAIR_LIMIT, scale)
    best_q = _round_pairs(w / scale, qmax)
    best_s = np.array(scale, np.float64)
    best_e = ((w - best_q * best_s) ** 2).sum(axis=0)
    todo = top > scale
    if not np.any(todo):
        return best_q, best_s
    wt = w[:, todo]
    for t in np.linspace(0.0, 1.0, steps + 1)[1:]:
        sc = scale[todo] + t * (top[todo] - scale[todo])
        q = _round_pairs(wt / sc, qmax)
        e = ((wt - q * sc) ** 2).sum(axis=0)
        better = e < best_e[todo]
        if np.any(better):
            cols = np.flatnonzero(todo)[better]
            best_q[:, cols] = q[:, better]
            best_s[cols] = sc[better]
            best_e[cols] = e[better]
    return best_q, best_s


def _quantize_weight(w: F32, b: F64, in_scale: float, *, pair_limit: bool = False,
                     weight_bits: int = 8) -> Tuple[npt.NDArray[np.int8], F32]:
    """Per-output-channel (last axis) symmetric int8. A channel whose bias would not fit the
    accumulator at the scale in_scale * s_w (near-zero weights but a real bias, as some channels
    of MobileNetV1 have after BatchNorm folding) gets a coarser weight scale: |bias| < 2^29 steps.

    ``pair_limit``: the weights are a GEMM's ``[K, N]`` (flattened, see :data:`GEMM_KINDS`) and
    every pair of consecutive rows keeps ``|q0| + |q1| <= PAIR_LIMIT`` (:func:`_round_pairs`; the
    scale is still ``max |w| / 127``: the few pairs that break the limit are projected onto it).
    ``weight_bits``: 7 gives codes in -63..63 (scale ``max |w| / 63``), the usual other way to keep
    ``vpmaddubsw`` from saturating; the default 8 is -127..127."""
    if weight_bits not in (7, 8):
        raise InputError(f"weight_bits must be 7 or 8, got {weight_bits}")
    qmax = 2 ** (weight_bits - 1) - 1
    wf = w.astype(np.float64)
    amax = np.abs(wf.reshape(-1, wf.shape[-1])).max(axis=0)
    scale = np.maximum(np.where(amax > 0, amax / qmax, 1.0), np.abs(b) / (np.float64(in_scale) * 2.0**29))
    if pair_limit:
        w2 = wf.reshape(-1, wf.shape[-1])
        codes, scale = _pair_limited(w2, scale, qmax)
        q = codes.reshape(wf.shape).astype(np.int8)
    else:
        q = np.clip(np.rint(wf / scale), -qmax, qmax).astype(np.int8)
    return q, scale.astype(np.float32)


#: How the int8 weight codes are chosen (``quantize_network(rounding=...)``).
ROUNDINGS = ("nearest", "gptq")


def _input_covariance(spec: LayerSpec, x: F64) -> F64:
    """The covariance over the calibration pixels of a layer's (real-valued) input vectors, in the
    row order of its weight matrix: ``[K, K]`` shared by every output channel (K = 27 for the
    stem: kh, kw, ci; C_in for pointwise and dense), or ``[C, 9, 9]`` (one per channel) for a
    depthwise layer. With bias correction the mean of a layer's output error is removed, so what
    a weight error ``dw`` adds to the output's mean squared error is ``dw^T cov dw``."""
    if spec.kind in ("conv3x3", "dwconv3x3"):
        taps = [tap for _, _, tap in reference._padded_taps(x, spec.stride, spec.pads)]
    else:
        taps = [x]
    if spec.kind == "dwconv3x3":
        c = taps[0].shape[-1]
        flat = [t.reshape(-1, c) for t in taps]
        flat = [f - f.mean(axis=0) for f in flat]
        cov = np.empty((c, 9, 9))
        for i in range(9):
            for j in range(i + 1):
                cov[:, i, j] = cov[:, j, i] = np.einsum("mc,mc->c", flat[i], flat[j]) / flat[i].shape[0]
        return cov
    a = np.concatenate([t.reshape(-1, t.shape[-1]) for t in taps], axis=1)
    a = a - a.mean(axis=0)
    return np.asarray(a.T @ a / a.shape[0])


def _gptq_factor(cov: F64, damp: float) -> F64:
    """The upper Cholesky factor U of the inverse of the damped covariance (``inv = U^T U``),
    batched over leading axes. ``damp``, relative to the mean variance, is added to the diagonal
    (keeps the inverse finite for dead or collinear inputs and limits how far an error is pushed
    into directions the calibration hardly samples)."""
    k = cov.shape[-1]
    d = np.diagonal(cov, axis1=-2, axis2=-1)
    lam = damp * np.maximum(d.mean(axis=-1), 1e-12)
    h = cov + (lam[..., None, None] if cov.ndim == 3 else lam) * np.eye(k)
    dead = d <= 0  # inputs that never vary: their weights do not matter; keep H invertible
    if np.any(dead):
        h = h + np.where(dead, 1.0, 0.0)[..., None] * np.eye(k)
    inv = np.linalg.inv(h)
    inv = (inv + np.swapaxes(inv, -1, -2)) / 2
    return np.asarray(np.swapaxes(np.linalg.cholesky(inv), -1, -2))


def _gptq_round(w: F64, scale: F64, u: F64, qmax: int = 127, pair_limit: bool = False, block: int = 128) -> I64:
    """Codes of ``w`` ([K, N]: rows are inputs, columns output channels with their ``scale``)
    chosen one input row at a time, each row's rounding error spread over the rows not yet
    rounded so that the output error ``dw^T cov dw`` stays small (Frantar et al. 2022, GPTQ;
    lazy block updates). ``u``: :func:`_gptq_factor` of the covariance, ``[K, K]`` shared by the
    columns or ``[N, K, K]`` one per column (depthwise). With ``pair_limit``, rows 2j and 2j+1
    are a pair: row 2j takes its code from the pair-limited rounding of both rows' current
    values (:func:`_round_pairs`), row 2j+1 is rounded within ``PAIR_LIMIT - |q[2j]|``."""
    w = np.array(w, np.float64)
    k = w.shape[0]
    q = np.zeros(w.shape, np.int64)
    shared = u.ndim == 2
    if pair_limit:
        block += block % 2
    for b0 in range(0, k, block):
        b1 = min(b0 + block, k)
        err = np.zeros((b1 - b0, w.shape[1]))
        for i in range(b0, b1):
            if pair_limit and i % 2 == 0 and i + 1 < k:
                qi = _round_pairs(np.stack([w[i], w[i + 1]]) / scale, qmax)[0].astype(np.float64)
            elif pair_limit and i % 2 == 1:
                room = np.minimum(qmax, PAIR_LIMIT - np.abs(q[i - 1]))
                qi = np.clip(np.rint(w[i] / scale), -room, room)
            else:
                qi = np.clip(np.rint(w[i] / scale), -qmax, qmax)
            q[i] = qi.astype(np.int64)
            if shared:
                e = (w[i] - qi * scale) / u[i, i]
                w[i + 1:b1] -= np.outer(u[i, i + 1:b1], e)
            else:
                e = (w[i] - qi * scale) / u[:, i, i]
                w[i + 1:b1] -= (u[:, i, i + 1:b1] * e[:, None]).T
            err[i - b0] = e
        if b1 < k:
            if shared:
                w[b1:] -= u[b0:b1, b1:].T @ err
            else:
                w[b1:] -= np.einsum("nik,in->kn", u[:, b0:b1, b1:], err)
    return q


def _float_layer(spec: LayerSpec, x: F64, w: F64, b: F64) -> F64:
    """The float layer before its clamp, on real-valued input."""
    if spec.kind == "conv3x3":
        return reference.conv3x3(x, w, b, spec.stride, spec.pads)
    if spec.kind == "dwconv3x3":
        return reference.dwconv3x3(x, w, b, spec.stride, spec.pads)
    if spec.kind == "pwconv":  # as reference.pwconv, but one 2-D GEMM (100x faster than N-D @ 2-D)
        return (x.reshape(-1, x.shape[-1]) @ w + b).reshape(x.shape[:-1] + (w.shape[-1],))
    return reference.dense(x, w, b)


def _quantize_bias(b: F64, in_scale: float, w_scale: F32) -> npt.NDArray[np.int32]:
    q = np.rint(b / (np.float64(in_scale) * w_scale.astype(np.float64)))
    return np.clip(q, -2**31 + 1, 2**31 - 1).astype(np.int32)


def quantize_network(weights: WeightSet, calibration: F32, *, method: str = "mse", percentile: float = 99.99,
                     bias_correction: bool = True, pair_limit: bool = True, weight_bits: int = 8,
                     rounding: str = "nearest", damp: float = 0.01, gptq_kinds: Sequence[str] = ("conv3x3", "dwconv3x3", "pwconv", "dense")) -> QuantizedNet:
    """Quantise ``weights`` with the activation ranges of ``calibration`` (normalised float32
    images ``[N, H, W, 3]``, e.g. :func:`mobilenet_fast.preprocess` of real photos).

    ``method``: how the range of each activation is chosen (see :data:`METHODS`); ``percentile``
    for ``method="percentile"``; ``bias_correction``: the empirical per-channel correction of the
    quantised layers' mean error (on by default: it is what makes MobileNetV1 quantise well).
    ``pair_limit`` (default on): the int8 weights of every GEMM layer (stem, pointwise,
    classifier; not the depthwise ones) keep ``|q[2j, n]| + |q[2j+1, n]| <= 128`` for each output
    channel n and pair j of consecutive input rows, K in the order the GEMM takes them (the stem's
    K is ``weight.reshape(27, C)``'s rows: kh, kw, ci), so that AVX2's ``vpmaddubsw`` (uint8 x int8
    pairs summed in int16, saturating) is exact; the rare pairs that break it are projected onto
    it (:func:`_round_pairs`) and bias correction, computed with the final weights, absorbs the
    mean of the change. ``weight_bits=7``: GEMM weights in -63..63 instead (the other usual remedy;
    less accurate); the depthwise weights stay 8-bit.
    """
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not 0 < percentile <= 100:
        raise InputError(f"percentile must be in (0, 100], got {percentile}")
    if weight_bits not in (7, 8):
        raise InputError(f"weight_bits must be 7 or 8, got {weight_bits}")
    if rounding not in ROUNDINGS:
        raise InputError(f"rounding must be one of {', '.join(ROUNDINGS)}, got {rounding!r}")
    if not damp > 0:
        raise InputError(f"damp must be > 0, got {damp}")
    x = np.asarray(calibration, np.float64)
    if x.ndim != 4 or x.shape[3] != 3 or x.shape[0] == 0:
        raise InputError(f"calibration must be a non-empty [N, H, W, 3] batch, got shape {list(x.shape)}")
    if not np.all(np.isfinite(x)):
        raise InputError("calibration contains NaN or Inf")
    cfg = weights.config
    act_max = 6.0 if cfg.activation == "relu6" else float("inf")
    folded = folded_tensors(weights)
    arch = cfg.architecture((int(x.shape[1]), int(x.shape[2])))
    inp = _input_params(x)
    xf = x  # the float network's activation
    q = inp.quantize(x)  # the quantised network's activation (codes)
    qin = inp
    layers: List[QLayer] = []
    classifier: Optional[QLayer] = None
    pool_out = QParams(1.0, 0)
    for spec in arch:
        if spec.kind == "avgpool":
            feats = reference.global_avg_pool(xf)
            pool_out = _relu_range(feats.ravel(), method, percentile, act_max)
            q = _pool(q, qin, pool_out)
            qin, xf = pool_out, feats
            continue
        if spec.kind == "dense":
            wt = weights.tensors["classifier.weight"].astype(np.float64)
            bt = weights.tensors["classifier.bias"].astype(np.float64)
        else:
            wt, bt = (a.astype(np.float64) for a in folded[spec.name])
        gemm = spec.kind in GEMM_KINDS
        wq, ws = _quantize_weight(wt.astype(np.float32), bt, qin.scale, pair_limit=pair_limit and gemm,
                                  weight_bits=weight_bits if gemm else 8)
        y_float = _float_layer(spec, xf, wt, bt)  # pre-clamp, float input
        if rounding == "gptq" and spec.kind in gptq_kinds:
            cov = _input_covariance(spec, qin.dequantize(q))
            w2 = wt.reshape(9, -1) if spec.kind == "dwconv3x3" else wt.reshape(cov.shape[-1], -1)
            codes = _gptq_round(w2, ws.astype(np.float64), _gptq_factor(cov, damp),
                                qmax=2 ** ((weight_bits if gemm else 8) - 1) - 1, pair_limit=pair_limit and gemm)
            wq = codes.reshape(wt.shape).astype(np.int8)
        if bias_correction:
            w_deq = wq.astype(np.float64) * ws.astype(np.float64)
            y_quant = _float_layer(spec, qin.dequantize(q), w_deq, bt)
            bt = bt + (y_float - y_quant).reshape(-1, y_float.shape[-1]).mean(axis=0)
        if spec.kind == "dense":
            classifier = QLayer(spec, wq, ws, _quantize_bias(bt, qin.scale, ws), qin, None)
            break
        xf = np.clip(y_float, 0.0, act_max) if spec.relu6 else y_float
        out = _relu_range(xf.ravel(), method, percentile, act_max)
        hi = 255 if act_max == float("inf") else int(min(255, np.rint(act_max / out.scale)))
        layer = QLayer(spec, wq, ws, _quantize_bias(bt, qin.scale, ws), qin, out, (0, hi))
        q = _requantize(_accumulate(layer, q), layer.multiplier, out, layer.clamp)
        layers.append(layer)
        qin = out
    return QuantizedNet(cfg.alpha, inp, layers, pool_out, classifier, method, bias_correction,
                        pair_limit=pair_limit, rounding=rounding)


def agreement(a: F64, b: F64, confident: Optional[F64] = None) -> Tuple[float, float]:
    """Top-1 agreement of two logit batches, overall and on the rows where ``confident`` (the
    reference's softmax) has a top probability of at least 0.5 (NaN if there is none)."""
    same = np.argmax(a, axis=1) == np.argmax(b, axis=1)
    if confident is None:
        return float(same.mean()), float("nan")
    mask = confident.max(axis=1) >= 0.5
    return float(same.mean()), float(same[mask].mean()) if mask.any() else float("nan")


# ------------------------------------------------------------------------------- the int8 Model

def _calibration_batch(model: Model, calibration: Any) -> F32:
    """A float32 NHWC batch from calibration images (paths, directories of images, PIL images,
    uint8 HxWx3 arrays, or a list of them) or a batch that is already normalised."""
    if isinstance(calibration, np.ndarray) and calibration.ndim == 4 and calibration.dtype == np.float32:
        return np.ascontiguousarray(calibration)
    from .cli import find_images  # directories walked as `mobilenet-fast classify` walks them

    items = list(calibration) if isinstance(calibration, (list, tuple)) else [calibration]
    images: List[Any] = []
    for item in items:
        if isinstance(item, (str, os.PathLike)):
            images += find_images([os.fspath(item)])[0]
        else:
            images.append(item)
    if not images:
        raise InputError("calibration holds no images")
    return np.concatenate([model.preprocess(im) for im in images])


class QuantizedModel(Model):
    """A MobileNetV1 quantised to int8 (see the module docstring for the scheme), run by the C++
    int8 network (one ``_core.QPlan`` per input size, like :class:`Model`'s plans). Same methods
    as :class:`Model`: :meth:`logits`, :meth:`predict`, :meth:`features`, :meth:`classify`,
    ``threads``, :meth:`save` (an int8 ``.safetensors``, see :mod:`mobilenet_fast.qweights`);
    ``precision`` is ``"int8"`` and ``qnet`` holds the quantised parameters.
    Made by :func:`quantize`, or by :func:`mobilenet_fast.load` from an int8 file.

    ``source`` is the float32 :class:`WeightSet` the model was quantised from, or only its
    :class:`ModelConfig` (a model read from an int8 file has no float32 weights: then
    :attr:`weights` raises :class:`InputError`).
    """

    precision = "int8"

    def __init__(self, source: Union[WeightSet, ModelConfig], qnet: QuantizedNet, *, isa: Optional[str] = None,
                 threads: Optional[int] = None, path: Optional[str] = None) -> None:
        self._float_weights: Optional[WeightSet] = None
        if isinstance(source, WeightSet):
            config, self._float_weights = source.config, source
        elif isinstance(source, ModelConfig):
            config = source
        else:
            raise InputError(f"source must be a WeightSet or a ModelConfig, got {type(source).__name__}")
        if not isinstance(qnet, QuantizedNet):
            raise InputError(f"qnet must be a QuantizedNet, got {type(qnet).__name__}")
        if len(qnet.layers) != 27 or (qnet.classifier is None) != (config.num_classes == 0):
            raise InputError("qnet does not match the config (27 conv layers, a classifier iff num_classes > 0)")
        self._setup(config, isa, threads, path)
        self.qnet = qnet

    @property
    def weights(self) -> WeightSet:
        """The float32 weights this model was quantised from (:class:`InputError` if unknown)."""
        if self._float_weights is None:
            raise InputError("this int8 model was read from an int8 file: it holds no float32 weights")
        return self._float_weights

    @weights.setter
    def weights(self, value: WeightSet) -> None:
        self._float_weights = value

    def save(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Write the int8 model as our ``.safetensors`` (``precision`` = ``"int8"`` in its metadata;
        :func:`mobilenet_fast.load` reads it back and gives the same logits, bit for bit)."""
        from .qweights import save_quantized

        save_quantized(path, self.config, self.qnet)

    def with_labels(self, labels: Optional[Sequence[str]]) -> "QuantizedModel":
        """The same model with these class names (one per class; None removes them)."""
        from dataclasses import replace

        cfg = self.config
        if labels is not None:
            if isinstance(labels, str) or not all(isinstance(s, str) for s in labels):
                raise InputError("labels must be a sequence of strings")
            if len(labels) != cfg.num_classes:
                raise InputError(f"got {len(labels)} labels for a model with {cfg.num_classes} classes")
        source: Union[WeightSet, ModelConfig] = replace(cfg, labels=tuple(labels) if labels is not None else None)
        if self._float_weights is not None:
            source = self._float_weights.with_labels(labels)
        return QuantizedModel(source, self.qnet, isa=self.isa, threads=self._threads, path=self.path)

    def _build_plan(self, height: int, width: int) -> Any:
        self.config.architecture((height, width))  # validates the size (>= 32)
        return self.qnet.plan(height, width, isa=self.isa, threads=self._threads)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """As :meth:`Model.logits`; for a model imported with quantised logits (an int8 .tflite)
        they are on the file's logit grid, the numbers its runtime returns."""
        return self.qnet.finish_logits(super().logits(batch))


def quantize(model: Union[Model, WeightSet, str, None], calibration: Any, *, method: str = "mse",
             percentile: float = 99.99, bias_correction: bool = True, pair_limit: bool = True,
             isa: Optional[str] = None, threads: Optional[int] = None) -> QuantizedModel:
    """Quantise a model to int8 with calibration images.

    ``model``: a :class:`Model`, a :class:`WeightSet`, a weight file's path or None (the shipped
    model). ``calibration``: images (paths, directories, PIL images, uint8 arrays, a list of
    them), preprocessed as the model expects, or a normalised float32 ``[N, H, W, 3]`` batch;
    a few dozen varied photos are enough. ``method``, ``percentile``, ``bias_correction``,
    ``pair_limit`` (on by default: GEMM weight pairs within ``|q0| + |q1| <= 128``): see
    :func:`quantize_network`. ``isa``/``threads``: for the returned model (default: those of
    ``model`` when it is a Model).
    """
    if isinstance(model, Model):
        base = model
    else:
        from . import load

        base = load(model, isa=isa, threads=threads) if not isinstance(model, WeightSet) \
            else Model(model, isa=isa, threads=threads)
    batch = _calibration_batch(base, calibration)
    qnet = quantize_network(base.weights, batch, method=method, percentile=percentile,
                            bias_correction=bias_correction, pair_limit=pair_limit)
    return QuantizedModel(base.weights, qnet, isa=isa or base.isa, threads=threads or base.threads, path=base.path)
