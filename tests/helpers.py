"""Shared test helpers: random but realistic MobileNetV1 weights, inputs and naive twins of the ops.

Imported as a plain module (``tests/conftest.py`` puts this directory on ``sys.path``).
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np

from mobilenet_fast.weights import ModelConfig, WeightSet, expected_shapes

__all__ = [
    "random_weights",
    "random_input",
    "naive_conv3x3",
    "naive_dwconv3x3",
    "run_onnxruntime",
]


def random_weights(alpha: float = 0.25, num_classes: int = 10, padding: str = "tf_same",
                   resolution: Union[int, Tuple[int, int]] = (128, 128), seed: int = 0, *,
                   bn_epsilon: float = 1e-3, labels: Optional[Sequence[str]] = None,
                   gamma_scale: float = 1.0, activation: str = "relu6") -> WeightSet:
    """A valid :class:`WeightSet` with random weights whose activations stay O(1) through the net.

    * conv weights ~ N(0, 2 / fan_in) (He; fan_in = 27 for the stem, 9 for depthwise, Cin for
      pointwise), so the ReLU6 activations neither vanish nor saturate at 6 everywhere;
    * BatchNorm gamma ~ U(0.5, 1.5), beta ~ N(0, 0.1), mean ~ N(0, 0.1), var ~ U(0.5, 1.5) (so the
      unfolded and the folded forms really differ from the identity);
    * ``gamma_scale`` multiplies every gamma: at 1.0 (the default) about half the activations clip
      at 0 but fewer than 0.3% at 6; at 1.5 about 5-10% of the activations of every layer clip at 6,
      which exercises the upper clamp of the fused kernels, while float32 rounding still moves the
      logits by only ~1e-5. Do not go much higher for tight comparisons: at 2.0 the net becomes
      chaotic (a 1-ulp change of the input moves the logits by ~2e-4);
    * classifier weight ~ N(0, 1 / K), bias ~ N(0, 0.1): logits of order 1, so an absolute
      tolerance of 1e-3 is a meaningful relative one.

    Deterministic for a given ``seed`` (numpy ``default_rng``); all tensors are float32 and
    C-contiguous. ``resolution`` only sets ``config.resolution`` (the net runs at any size >= 32).
    """
    if isinstance(resolution, int):
        resolution = (resolution, resolution)
    hw = (int(resolution[0]), int(resolution[1]))
    config = ModelConfig(alpha=float(alpha), resolution=hw, num_classes=num_classes, padding=padding,
                         bn_epsilon=bn_epsilon, labels=tuple(labels) if labels is not None else None,
                         source=f"random_weights(seed={seed})", activation=activation)
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in expected_shapes(config).items():
        if name.endswith(".bn.gamma"):
            t = rng.uniform(0.5, 1.5, shape) * gamma_scale
        elif name.endswith(".bn.beta") or name.endswith(".bn.mean"):
            t = rng.normal(0.0, 0.1, shape)
        elif name.endswith(".bn.var"):
            t = rng.uniform(0.5, 1.5, shape)
        elif name == "classifier.weight":
            t = rng.normal(0.0, np.sqrt(1.0 / shape[0]), shape)
        elif name == "classifier.bias":
            t = rng.normal(0.0, 0.1, shape)
        elif name == "stem.conv.weight":
            t = rng.normal(0.0, np.sqrt(2.0 / 27.0), shape)
        elif name.endswith(".dw.weight"):
            t = rng.normal(0.0, np.sqrt(2.0 / 9.0), shape)
        elif name.endswith(".pw.weight"):
            t = rng.normal(0.0, np.sqrt(2.0 / shape[0]), shape)
        else:  # pragma: no cover - expected_shapes grew a tensor we do not know
            raise AssertionError(f"random_weights does not know tensor {name!r}")
        tensors[name] = np.ascontiguousarray(t, dtype=np.float32)
    return WeightSet(config, tensors)


def random_input(batch: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """A normalised-looking float32 NHWC input, values ~ U(-1, 1)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, (batch, height, width, 3)).astype(np.float32)


def naive_conv3x3(x: np.ndarray, w: np.ndarray, bias: Optional[np.ndarray], stride: int,
                  pads: Tuple[int, int, int, int], groups_depthwise: bool = False) -> np.ndarray:
    """Direct-loop 3x3 convolution by bounds checks (no padded copy), float64; slow, small shapes only.

    ``w`` is HWIO ``[3,3,Cin,Cout]``, or ``[3,3,C]`` with ``groups_depthwise=True``.
    """
    n_, h, wd, cin = x.shape
    top, left, bottom, right = pads
    oh = (h + top + bottom - 3) // stride + 1
    ow = (wd + left + right - 3) // stride + 1
    cout = w.shape[2] if groups_depthwise else w.shape[3]
    y = np.zeros((n_, oh, ow, cout))
    for n in range(n_):
        for oy in range(oh):
            for ox in range(ow):
                for co in range(cout):
                    acc = 0.0 if bias is None else float(bias[co])
                    for ky in range(3):
                        iy = oy * stride - top + ky
                        if not 0 <= iy < h:
                            continue
                        for kx in range(3):
                            ix = ox * stride - left + kx
                            if not 0 <= ix < wd:
                                continue
                            if groups_depthwise:
                                acc += float(x[n, iy, ix, co]) * float(w[ky, kx, co])
                            else:
                                for ci in range(cin):
                                    acc += float(x[n, iy, ix, ci]) * float(w[ky, kx, ci, co])
                    y[n, oy, ox, co] = acc
    return y


def naive_dwconv3x3(x: np.ndarray, w: np.ndarray, bias: Optional[np.ndarray], stride: int,
                    pads: Tuple[int, int, int, int]) -> np.ndarray:
    """Direct-loop depthwise 3x3 convolution (see :func:`naive_conv3x3`)."""
    return naive_conv3x3(x, w, bias, stride, pads, groups_depthwise=True)


def run_onnxruntime(model, feeds: dict, outputs: Optional[Sequence[str]] = None) -> list:
    """Run an ``onnx.ModelProto`` (or serialized bytes) on onnxruntime's CPU provider.

    Graph optimisations are disabled so that onnxruntime computes the graph as written (no
    Conv+BatchNorm fusion hiding an unfolded-BN bug).
    """
    import onnxruntime as ort

    data = model if isinstance(model, (bytes, bytearray)) else model.SerializeToString()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    return sess.run(list(outputs) if outputs is not None else None, feeds)
