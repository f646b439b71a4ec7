"""The thin Python runner: weights -> BatchNorm folding -> C++ Plan -> results.

Inputs are checked here and again in C++ (dtype, rank, shape, layout, size, NaN/Inf), so a bad
argument is an :class:`~mobilenet_fast.errors.InputError` naming what is wrong, never a crash.

Threads and processes: a :class:`Model` may be shared by Python threads, and it keeps working in a
child process made by ``fork()`` (``multiprocessing``'s "fork" start method) after the parent used
it: the C++ side waits for runs in progress before the fork and restarts the thread pool's workers
in the child, and the hook below gives every Model a fresh lock in the child (a thread of the parent
might have held the old one while it built a plan).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
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
#: Largest input height or width a plan accepts (the C++ Plan refuses more).
MAX_INPUT_SIDE = 16384
#: Largest number of values in one input or output array (the C++ bindings refuse more).
MAX_ARRAY_VALUES = 2**31 - 1

Folded = Tuple[np.ndarray, np.ndarray]


class Prediction(NamedTuple):
    """One class of a top-k result."""

    label: str
    index: int  # type: ignore[assignment]  # the class index; shadows tuple.index() on purpose
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
        gamma, beta, mean, var = (t[f"{prefix}.bn.{f}"] for f in ("gamma", "beta", "mean", "var"))
        out[prefix] = fold_batchnorm(w, gamma, beta, mean, var, eps)
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


def _check_side(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if not 32 <= int(value) <= MAX_INPUT_SIDE:
        raise InputError(f"{name} must be in 32..{MAX_INPUT_SIDE}, got {value}")
    return int(value)


# Every live Model, so that a forked child can replace their locks (see the module docstring).
_live_models: "weakref.WeakSet[Model]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # The child has one thread: whoever held a Model's lock in the parent does not exist here.
    for model in list(_live_models):
        model._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Model:
    """A loaded MobileNetV1, ready to run.

    Plans (packed weights + activation buffers for one input size) are built lazily per input
    size and cached. ``threads`` (default: the physical cores this process may use) is how many
    threads one call uses; 1 runs on the calling thread with no pool.

    A Model may be shared between Python threads: calls on the same input size are serialised by
    that Plan's lock (each call still uses all of the model's threads), calls on different sizes
    run concurrently. Results do not depend on the thread count or on the batch they are in.
    Setting :attr:`threads`, or dropping the last reference to the model, while other threads are
    inside a call is safe: each call keeps the plan it runs on alive until it returns. The
    :attr:`max_plans` most recently used input sizes keep their plan (each holds activation
    buffers and, with threads > 1, worker threads). After ``fork()`` the model keeps working in
    the child (see the module docstring).

    The ISA is resolved once, here (``isa``, else ``MOBILENET_FAST_ISA``, else the best this CPU
    supports): changing the environment variable later does not change an existing model.

    NaN and Inf inputs are refused: :meth:`logits`, :meth:`predict`, :meth:`features` and
    :meth:`classify` raise :class:`InputError` if any value of any image of the batch is not
    finite (checked in C++ as the first layer reads the input).
    """

    #: How many input sizes keep their plan (least recently used ones are dropped first).
    max_plans: int = 8
    #: "float32" here; "int8" for a :class:`QuantizedModel`.
    precision: str = "float32"

    def __init__(self, weights: WeightSet, *, isa: Optional[str] = None, threads: Optional[int] = None,
                 path: Optional[str] = None) -> None:
        if not isinstance(weights, WeightSet):
            raise InputError(f"weights must be a WeightSet (see mobilenet_fast.load_weight_set), "
                             f"got {type(weights).__name__}")
        self._setup(weights.config, isa, threads, path)
        self.weights = weights
        self._folded = folded_tensors(weights)

    def _setup(self, config: ModelConfig, isa: Optional[str], threads: Optional[int], path: Optional[str]) -> None:
        """What every model has, whatever its precision: config, ISA, threads, the plan cache."""
        if isa is not None and not isinstance(isa, str):
            raise InputError(f"isa must be a string (\"scalar\", \"avx2\", ...) or None, got {type(isa).__name__}")
        self.config: ModelConfig = config
        self.path = path
        self.isa: str = _core.select_isa(isa)  # raises InputError for a bad / unsupported request
        self._threads = default_threads() if threads is None else _check_threads(threads)
        self._feature_channels = self.config.architecture().feature_channels
        self._plans: "OrderedDict[Tuple[int, int], _core.Plan]" = OrderedDict()
        self._lock = threading.Lock()
        _live_models.add(self)

    # ----------------------------------------------------------------------------------- info
    @property
    def num_classes(self) -> int:
        """Number of classes (0 for a feature extractor)."""
        return self.config.num_classes

    @property
    def labels(self) -> List[str]:
        """Class names, one per class (``class_<i>`` where the weights carry none)."""
        return [self.config.label(i) for i in range(self.num_classes)]

    @property
    def resolution(self) -> Tuple[int, int]:
        """The input size the weights were trained at (other sizes work too)."""
        return self.config.resolution

    def architecture(self, resolution: Optional[Tuple[int, int]] = None) -> MobileNetV1:
        """The layer list (shapes, pads, parameters, multiply-adds) at ``resolution`` (default: the weights')."""
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
                self._plans = OrderedDict()  # calls in progress keep their (old) plan alive

    def __repr__(self) -> str:
        c = self.config
        where = f", path={os.path.basename(self.path)!r}" if self.path else ""
        return (f"Model(alpha={c.alpha:g}, resolution={c.resolution[0]}x{c.resolution[1]}, "
                f"num_classes={c.num_classes}, padding={c.padding!r}, "
                f"{'' if c.activation == 'relu6' else f'activation={c.activation!r}, '}isa={self.isa!r}, "
                f"threads={self._threads}{'' if self.precision == 'float32' else f', precision={self.precision!r}'}"
                f"{where})")

    def save(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Write the model as our ``.safetensors`` (float32 here; int8 for a :class:`QuantizedModel`),
        which :func:`mobilenet_fast.load` reads back."""
        from .weights import save_weights

        save_weights(path, self.weights)

    # ------------------------------------------------------------------------------- planning
    def plan(self, height: int, width: int) -> "_core.Plan":
        """The C++ Plan for [N, height, width, 3] inputs (built once, then cached).

        ``height`` and ``width`` are ints in 32..16384; a size whose activations would need a
        buffer of 2^31 values or more is refused (:class:`InputError`) before anything is
        allocated, and a failed allocation raises ``MemoryError`` saying how much was needed.
        """
        key = (_check_side("height", height), _check_side("width", width))
        with self._lock:
            p = self._plans.get(key)
            if p is None:
                p = self._build_plan(*key)
                self._plans[key] = p
                while len(self._plans) > max(1, int(self.max_plans)):
                    self._plans.popitem(last=False)
            else:
                self._plans.move_to_end(key)
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
                          blocks, classifier, self.isa, self._threads,
                          activation_clamp(self.config.activation)[1])

    # ------------------------------------------------------------------------------ inference
    def _check_batch(self, batch: Any) -> np.ndarray:
        if not isinstance(batch, np.ndarray):
            raise InputError(f"batch must be a numpy array, got {type(batch).__name__}")
        if isinstance(batch, np.ma.MaskedArray):
            raise InputError("batch is a masked array: the engine would ignore its mask (use batch.filled(value))")
        if batch.ndim != 4:
            hint = " (add a batch axis: x[None])" if batch.ndim == 3 else ""
            raise InputError(f"batch must be 4-D NHWC [N, H, W, 3], got shape {batch.shape}{hint}")
        if batch.shape[3] != 3:
            hint = "; it looks like NCHW, transpose with x.transpose(0, 2, 3, 1)" if batch.shape[1] == 3 else ""
            raise InputError(f"batch must be NHWC with 3 channels last, got shape {batch.shape}{hint}")
        if batch.dtype != np.float32:
            order = " in non-native byte order" if batch.dtype.kind == "f" and batch.dtype.itemsize == 4 else ""
            raise InputError(f"batch must be float32, got {batch.dtype}{order} (use x.astype(np.float32))")
        if not batch.flags.c_contiguous:
            raise InputError("batch must be C-contiguous (use np.ascontiguousarray(x))")
        if not batch.flags.aligned:
            raise InputError("batch is not aligned to its 4-byte float32 items (use x.copy())")
        if batch.shape[1] < 32 or batch.shape[2] < 32:
            raise InputError(f"input images must be at least 32x32, got {batch.shape[1]}x{batch.shape[2]}")
        if batch.shape[1] > MAX_INPUT_SIDE or batch.shape[2] > MAX_INPUT_SIDE:
            raise InputError(f"input images must be at most {MAX_INPUT_SIDE}x{MAX_INPUT_SIDE}, "
                             f"got {batch.shape[1]}x{batch.shape[2]}")
        if batch.size > MAX_ARRAY_VALUES:
            raise InputError(f"batch {batch.shape} holds {batch.size:,} values, more than the limit of 2^31 - 1 "
                             "per array: split it into smaller batches")
        # NaN/Inf are refused by the Plan itself (check_finite): a C++ pass with no temporary array.
        return batch

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """float32 NHWC [N, H, W, 3] (normalised) -> logits [N, num_classes].

        ``batch`` must be a C-contiguous float32 numpy array with H and W in 32..16384; any NaN or
        Inf in it (in any image) raises :class:`InputError` and no result is returned.
        """
        x = self._check_batch(batch)
        if self.num_classes == 0:
            raise InputError("this model has no classifier (num_classes = 0); use features()")
        if x.shape[0] == 0:
            return np.zeros((0, self.num_classes), np.float32)
        logits: np.ndarray = self.plan(x.shape[1], x.shape[2]).run(x, check_finite=True)
        return logits

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """float32 NHWC [N, H, W, 3] (normalised) -> class probabilities [N, num_classes].

        Same input rules as :meth:`logits` (NaN/Inf refused with :class:`InputError`).
        """
        z = self.logits(batch)
        if z.shape[0] == 0:
            return z
        return _core.ops.softmax(z, isa=self.isa)

    def features(self, batch: np.ndarray) -> np.ndarray:
        """float32 NHWC [N, H, W, 3] (normalised) -> pooled features [N, 1024 * alpha].

        Same input rules as :meth:`logits` (NaN/Inf refused with :class:`InputError`).
        """
        x = self._check_batch(batch)
        if x.shape[0] == 0:
            return np.zeros((0, self._feature_channels), np.float32)
        feats: np.ndarray = self.plan(x.shape[1], x.shape[2]).features(x, check_finite=True)
        return feats

    def preprocess(self, image: ImageLike, resolution: Optional[Union[int, Tuple[int, int]]] = None) -> np.ndarray:
        """Decode and normalise one image as this model's weights expect -> [1, H, W, 3].

        ``resolution`` defaults to the one the weights were trained at; see
        :func:`mobilenet_fast.preprocess` for the image types and modes accepted.
        """
        if resolution is None:
            resolution = self.config.resolution
        return preprocess(image, resolution, self.config.input_mean, self.config.input_std)

    def classify(self, image: Union[ImageLike, Sequence[ImageLike]], top: int = 5) -> Any:
        """Top-``top`` :class:`Prediction` list for an image (path, encoded file bytes, PIL image or
        uint8 HxWx3 array).

        A list/tuple of images gives a list of such lists, run as one batch. Images are decoded and
        normalised by :meth:`preprocess`; if the normalised batch holds NaN or Inf (e.g. an input
        std of 0), :class:`InputError` is raised instead of returning meaningless probabilities.
        """
        if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
            raise InputError(f"top must be a positive int, got {top!r}")
        top = int(top)
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
