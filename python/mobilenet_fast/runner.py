"""The thin Python runner: weights -> BatchNorm folding -> C++ Plan -> results."""

from __future__ import annotations

import os
import threading
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core
from .architecture import MobileNetV1
from .errors import InputError
from .preprocess import ImageLike, preprocess
from .weights import ModelConfig, WeightSet

__all__ = ["Model", "Prediction", "fold_batchnorm", "folded_tensors"]

Folded = Tuple[np.ndarray, np.ndarray]


class Prediction(NamedTuple):
    """One class of a top-k result."""

    label: str
    index: int
    probability: float


def fold_batchnorm(weight: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray,
                   var: np.ndarray, eps: float) -> Folded:
    """Fold inference BatchNorm into the preceding conv (output channels on the last axis).

    Computed in float64 and rounded once to float32.
    """
    scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
    w = (weight.astype(np.float64) * scale).astype(np.float32)
    b = (beta.astype(np.float64) - mean.astype(np.float64) * scale).astype(np.float32)
    return np.ascontiguousarray(w), np.ascontiguousarray(b)


def folded_tensors(weights: WeightSet) -> Dict[str, Folded]:
    """Every conv layer's folded (weight, bias), keyed ``stem``, ``blocks.{i}.dw``, ``blocks.{i}.pw``."""
    t, eps = weights.tensors, weights.config.bn_epsilon
    out: Dict[str, Folded] = {}
    for layer in weights.config.architecture():
        if layer.kind in ("avgpool", "dense"):
            continue
        prefix = layer.name
        w = t["stem.conv.weight"] if layer.kind == "conv3x3" else t[f"{prefix}.weight"]
        out[prefix] = fold_batchnorm(w, *(t[f"{prefix}.bn.{f}"] for f in ("gamma", "beta", "mean", "var")), eps)
    return out


class Model:
    """A loaded MobileNetV1, ready to run.

    Plans (packed weights + activation buffers for one input size) are built lazily per input
    size and cached. A Model may be shared between threads: each Plan serialises its own runs.
    """

    def __init__(self, weights: WeightSet, *, isa: Optional[str] = None, path: Optional[str] = None) -> None:
        self.weights = weights
        self.config: ModelConfig = weights.config
        self.path = path
        self._isa_request = isa
        self.isa: str = _core.select_isa(isa)  # raises InputError for a bad / unsupported request
        self._folded = folded_tensors(weights)
        self._plans: Dict[Tuple[int, int], Any] = {}
        self._lock = threading.Lock()

    # ----------------------------------------------------------------------------------- info
    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def labels(self) -> List[str]:
        return [self.config.label(i) for i in range(self.num_classes)]

    @property
    def resolution(self) -> Tuple[int, int]:
        """The input size the weights were trained at (other sizes work too)."""
        return self.config.resolution

    def architecture(self, resolution: Optional[Tuple[int, int]] = None) -> MobileNetV1:
        return self.config.architecture(resolution)

    def __repr__(self) -> str:
        c = self.config
        where = f", path={os.path.basename(self.path)!r}" if self.path else ""
        return (f"Model(alpha={c.alpha:g}, resolution={c.resolution[0]}x{c.resolution[1]}, "
                f"num_classes={c.num_classes}, padding={c.padding!r}, isa={self.isa!r}{where})")

    # ------------------------------------------------------------------------------- planning
    def plan(self, height: int, width: int) -> Any:
        """The C++ Plan for [N, height, width, 3] inputs (built once, then cached)."""
        key = (int(height), int(width))
        with self._lock:
            p = self._plans.get(key)
            if p is None:
                p = self._build_plan(*key)
                self._plans[key] = p
            return p

    def _build_plan(self, height: int, width: int) -> Any:
        arch = self.config.architecture((height, width))  # validates the size (>= 32)
        f = self._folded
        stem = arch.layer("stem")
        blocks = []
        for i in range(len(arch.block_channels)):
            dw, pw = arch.layer(f"blocks.{i}.dw"), arch.layer(f"blocks.{i}.pw")
            blocks.append((f[dw.name][0], f[dw.name][1], dw.stride, list(dw.pads), f[pw.name][0], f[pw.name][1]))
        classifier = None
        if self.num_classes:
            t = self.weights.tensors
            classifier = (np.ascontiguousarray(t["classifier.weight"]), np.ascontiguousarray(t["classifier.bias"]))
        return _core.Plan(height, width, (f["stem"][0], f["stem"][1], stem.stride, list(stem.pads)),
                          blocks, classifier, self._isa_request)

    # ------------------------------------------------------------------------------ inference
    def _check_batch(self, batch: Any) -> np.ndarray:
        if not isinstance(batch, np.ndarray):
            raise InputError(f"batch must be a numpy array, got {type(batch).__name__}")
        if batch.ndim != 4:
            hint = " (add a batch axis: x[None])" if batch.ndim == 3 else ""
            raise InputError(f"batch must be 4-D NHWC [N, H, W, 3], got shape {batch.shape}{hint}")
        if batch.shape[3] != 3:
            hint = "; it looks like NCHW, transpose with x.transpose(0, 2, 3, 1)" if batch.shape[1] == 3 else ""
            raise InputError(f"batch must be NHWC with 3 channels last, got shape {batch.shape}{hint}")
        if batch.dtype != np.float32:
            raise InputError(f"batch must be float32, got {batch.dtype} (use x.astype(np.float32))")
        if not batch.flags.c_contiguous:
            raise InputError("batch must be C-contiguous (use np.ascontiguousarray(x))")
        if batch.shape[1] < 32 or batch.shape[2] < 32:
            raise InputError(f"input images must be at least 32x32, got {batch.shape[1]}x{batch.shape[2]}")
        if not np.isfinite(batch).all():
            raise InputError("batch contains NaN or Inf values")
        return batch

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """float32 NHWC [N, H, W, 3] (normalised) -> logits [N, num_classes]."""
        x = self._check_batch(batch)
        if self.num_classes == 0:
            raise InputError("this model has no classifier (num_classes = 0); use features()")
        if x.shape[0] == 0:
            return np.zeros((0, self.num_classes), np.float32)
        return self.plan(x.shape[1], x.shape[2]).run(x)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """float32 NHWC [N, H, W, 3] (normalised) -> class probabilities [N, num_classes]."""
        z = self.logits(batch)
        if z.shape[0] == 0:
            return z
        return _core.ops.softmax(z, isa=self._isa_request)

    def features(self, batch: np.ndarray) -> np.ndarray:
        """float32 NHWC [N, H, W, 3] (normalised) -> pooled features [N, 1024 * alpha]."""
        x = self._check_batch(batch)
        arch = self.config.architecture()
        if x.shape[0] == 0:
            return np.zeros((0, arch.feature_channels), np.float32)
        return self.plan(x.shape[1], x.shape[2]).features(x)

    def preprocess(self, image: ImageLike, resolution: Optional[Union[int, Tuple[int, int]]] = None) -> np.ndarray:
        """Decode and normalise one image as this model's weights expect -> [1, H, W, 3]."""
        return preprocess(image, resolution or self.config.resolution, self.config.input_mean, self.config.input_std)

    def classify(self, image: Union[ImageLike, Sequence[ImageLike]], top: int = 5) -> Any:
        """Top-``top`` :class:`Prediction` list for an image (path, PIL image or uint8 HxWx3 array).

        A list/tuple of images gives a list of such lists, run as one batch.
        """
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise InputError(f"top must be a positive int, got {top!r}")
        many = isinstance(image, (list, tuple))
        images = list(image) if many else [image]  # type: ignore[arg-type]
        if not images:
            return []
        batch = np.concatenate([self.preprocess(im) for im in images])
        probs = self.predict(batch)
        k = min(top, self.num_classes)
        results = []
        for row in probs:
            idx = np.argsort(-row, kind="stable")[:k]
            results.append([Prediction(self.config.label(int(i)), int(i), float(row[i])) for i in idx])
        return results if many else results[0]
