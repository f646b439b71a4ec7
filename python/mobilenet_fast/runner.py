"""The thin Python runner: weights -> BatchNorm folding -> C++ Plan -> results."""

from __future__ import annotations

import os
import threading
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core
from .architecture import MobileNetV1, activation_clamp
from .errors import InputError
from .preprocess import ImageLike, preprocess
from .weights import ModelConfig, WeightSet

__all__ = ["Model", "Prediction", "fold_batchnorm", "folded_tensors", "default_threads", "MAX_THREADS"]

#: Upper bound of ``threads`` (the C++ Plan refuses more).
MAX_THREADS = 256

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


def default_threads() -> int:
    """Physical cores among the CPUs this process may run on (its affinity mask).

    Hyper-threads of one core share its FMA units, so they do not help these kernels. Falls back
    to the number of usable logical CPUs where the topology is not readable (non-Linux).
    """
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
    cores = set()
    for cpu in cpus:
        base = f"/sys/devices/system/cpu/cpu{cpu}/topology"
        try:
            with open(f"{base}/core_id") as f:
                core = f.read().strip()
            with open(f"{base}/physical_package_id") as f:
                package = f.read().strip()
        except OSError:
            return max(1, len(cpus))
        cores.add((package, core))
    return max(1, min(len(cores), MAX_THREADS))


def _check_threads(threads: Any) -> int:
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)):
        raise InputError(f"threads must be an int, got {type(threads).__name__}")
    if not 1 <= int(threads) <= MAX_THREADS:
        raise InputError(f"threads must be in 1..{MAX_THREADS}, got {threads}")
    return int(threads)


class Model:
    """A loaded MobileNetV1, ready to run.

    Plans (packed weights + activation buffers for one input size) are built lazily per input
    size and cached. ``threads`` (default: the physical cores this process may use) is how many
    threads one call uses; 1 runs on the calling thread with no pool.

    A Model may be shared between Python threads: calls on the same input size are serialised by
    that Plan's lock (each call still uses all of the model's threads), calls on different sizes
    run concurrently. Results do not depend on the thread count or on the batch they are in.
    """

    def __init__(self, weights: WeightSet, *, isa: Optional[str] = None, threads: Optional[int] = None,
                 path: Optional[str] = None) -> None:
        self.weights = weights
        self.config: ModelConfig = weights.config
        self.path = path
        self._isa_request = isa
        self.isa: str = _core.select_isa(isa)  # raises InputError for a bad / unsupported request
        self._threads = default_threads() if threads is None else _check_threads(threads)
        self._folded = folded_tensors(weights)
        self._feature_channels = self.config.architecture().feature_channels
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

    @property
    def threads(self) -> int:
        """Threads one call uses (settable; the plans are rebuilt for the new count)."""
        return self._threads

    @threads.setter
    def threads(self, value: int) -> None:
        value = _check_threads(value)
        with self._lock:
            if value != self._threads:
                self._threads = value
                self._plans = {}

    def __repr__(self) -> str:
        c = self.config
        where = f", path={os.path.basename(self.path)!r}" if self.path else ""
        return (f"Model(alpha={c.alpha:g}, resolution={c.resolution[0]}x{c.resolution[1]}, "
                f"num_classes={c.num_classes}, padding={c.padding!r}, "
                f"{'' if c.activation == 'relu6' else f'activation={c.activation!r}, '}isa={self.isa!r}, "
                f"threads={self._threads}{where})")

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
                          blocks, classifier, self._isa_request, self._threads,
                          activation_clamp(self.config.activation)[1])

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
        # NaN/Inf are refused by the Plan itself (check_finite): a C++ pass with no temporary array.
        return batch

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """float32 NHWC [N, H, W, 3] (normalised) -> logits [N, num_classes]."""
        x = self._check_batch(batch)
        if self.num_classes == 0:
            raise InputError("this model has no classifier (num_classes = 0); use features()")
        if x.shape[0] == 0:
            return np.zeros((0, self.num_classes), np.float32)
        return self.plan(x.shape[1], x.shape[2]).run(x, check_finite=True)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """float32 NHWC [N, H, W, 3] (normalised) -> class probabilities [N, num_classes]."""
        z = self.logits(batch)
        if z.shape[0] == 0:
            return z
        return _core.ops.softmax(z, isa=self._isa_request)

    def features(self, batch: np.ndarray) -> np.ndarray:
        """float32 NHWC [N, H, W, 3] (normalised) -> pooled features [N, 1024 * alpha]."""
        x = self._check_batch(batch)
        if x.shape[0] == 0:
            return np.zeros((0, self._feature_channels), np.float32)
        return self.plan(x.shape[1], x.shape[2]).features(x, check_finite=True)

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
