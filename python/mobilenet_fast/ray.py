"""Run mobilenet-fast on a Ray cluster with Ray Data (the optional extra ``mobilenet-fast[ray]``).

:class:`Predictor` is a callable class for :meth:`ray.data.Dataset.map_batches`; each Ray actor
builds its own model from the weights path (a model is never pickled) and sizes its thread pool
from the CPUs Ray assigned to it. :func:`classify_dataset` and :func:`embed_dataset` set up the
actor pool for you::

    import ray
    import mobilenet_fast.ray as mfr

    ds = ray.data.read_binary_files("s3://bucket/photos/", include_paths=True)
    out = mfr.classify_dataset(ds, top=5)            # columns image, labels, indices, probabilities, error
    out.write_parquet("s3://bucket/predictions/")

Input batches may hold, per row, one of:

- ``bytes``: an encoded image file (JPEG, PNG, ... anything Pillow reads), as
  ``ray.data.read_binary_files`` gives;
- ``image``: a uint8 ``HxWx3`` (or ``HxW``) array of any size, as ``ray.data.read_images`` gives
  (it is resized and normalised like any image), or, when the whole column is float32
  ``[N, H, W, 3]``, images already normalised for the model (run as they are, without a copy);
- only ``path``: the file is read by the actor (the path must be readable where the actor runs).

The ``path`` column, when there is one, becomes the ``image`` column of the output (the key to
join results on: Ray does not keep row order). Any other column is passed through. An image that
cannot be decoded gives a row with its ``error`` and no result, not a failed job.

Results do not depend on how Ray splits the data into batches or actors: every image goes through
the same decode, resize and kernels as ``mobilenet-fast classify`` on one machine, and its result is
bitwise the same.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["Predictor", "classify_dataset", "embed_dataset", "assigned_cpus", "OUTPUTS"]

#: What a :class:`Predictor` emits: top-k classes, the logits, or the pooled features.
OUTPUTS = ("top", "logits", "features")


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError("mobilenet_fast.ray needs Ray Data: pip install 'mobilenet-fast[ray]'") from e
    return ray


def assigned_cpus(default: int = 1) -> int:
    """Whole CPUs Ray assigned to the calling actor or task (``default`` outside Ray or with none)."""
    try:
        import ray

        if not ray.is_initialized():
            return default
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 0)
    except Exception:  # noqa: BLE001 - not in a Ray worker, or an API that changed
        return default
    return max(1, int(cpus)) if cpus else default


class Predictor:
    """Callable class for ``Dataset.map_batches(Predictor, fn_constructor_kwargs=...)``.

    Args:
        weights: any file :func:`mobilenet_fast.load` reads (float32 or int8); ``None``: the
            shipped model. The path must be readable where the actors run.
        precision: ``"float32"``, ``"int8"`` or ``None`` (whatever the file holds), as for ``load``.
        top: how many classes per image for ``output="top"``.
        output: ``"top"`` (columns ``labels``, ``indices``, ``probabilities``: lists, most likely
            first), ``"logits"`` or ``"features"`` (the pooled features, an embedding).
        threads: threads per actor; default: the CPUs Ray assigned to the actor.
        labels, isa: as for :func:`mobilenet_fast.load`.
        input_column: the column holding the images (bytes, arrays or paths); default: the first
            of ``bytes``, ``image``, ``path`` the batch has (``ray.data.from_numpy`` names its
            column ``data``).
    """

    def __init__(self, weights: Optional[str] = None, *, precision: Optional[str] = None, top: int = 5,
                 output: str = "top", threads: Optional[int] = None, labels: Optional[Any] = None,
                 isa: Optional[str] = None, input_column: Optional[str] = None) -> None:
        from . import load
        from .errors import InputError

        if output not in OUTPUTS:
            raise InputError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise InputError(f"top must be a positive int, got {top!r}")
        self.output = output
        self.input_column = input_column
        self.model = load(weights, precision=precision, labels=labels, isa=isa,
                          threads=threads if threads is not None else assigned_cpus())
        if output != "features" and not self.model.num_classes:
            raise InputError(f"{self.model.path} is a feature extractor (no classifier): use output='features'")
        self.top = min(top, self.model.num_classes) if self.model.num_classes else top

    def __repr__(self) -> str:
        return f"Predictor({self.model!r}, output={self.output!r}, top={self.top})"

    # ------------------------------------------------------------------------------------ decode
    def _decode(self, batch: Dict[str, Any], n: int) -> Tuple[List[Optional[np.ndarray]], List[Optional[str]]]:
        """One normalised [1, H, W, 3] array or one error per row."""
        from .preprocess import try_preprocess

        column = self._input_column(batch)
        sources: Sequence[Any] = batch[column] if column != "path" else [str(p) for p in batch["path"]]
        names = [str(p) for p in batch["path"]] if "path" in batch else [f"row {i}" for i in range(n)]
        xs: List[Optional[np.ndarray]] = []
        errors: List[Optional[str]] = []
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"PIL(\.|$)")
            for name, src in zip(names, sources):
                x, reason = try_preprocess(self.model.preprocess, src, name)
                xs.append(x)
                errors.append(reason)
        return xs, errors

    def _input_column(self, batch: Dict[str, Any]) -> str:
        if self.input_column is not None:
            if self.input_column not in batch:
                raise KeyError(f"input_column {self.input_column!r} is not in the batch, which has {sorted(batch)}")
            return self.input_column
        for name in ("bytes", "image", "path"):
            if name in batch:
                return name
        raise KeyError(f"a batch needs a 'bytes', 'image' or 'path' column (or input_column=...), got {sorted(batch)}")

    def _inputs(self, batch: Dict[str, Any], n: int) -> Tuple[Optional[np.ndarray], List[bool], List[Optional[str]]]:
        """(the batch to run, which rows it holds, each row's error)."""
        image = batch[self._input_column(batch)]
        if isinstance(image, np.ndarray) and image.dtype == np.float32 and image.ndim == 4:
            x = image if image.flags.c_contiguous else np.ascontiguousarray(image)
            return x, [True] * n, [None] * n  # normalised already: read in place (zero-copy batches)
        xs, errors = self._decode(batch, n)
        good = [x for x in xs if x is not None]
        return (np.concatenate(good) if good else None), [x is not None for x in xs], errors

    # -------------------------------------------------------------------------------------- run
    def __call__(self, batch: Dict[str, Any]) -> Any:
        import pyarrow as pa

        n = len(next(iter(batch.values()))) if batch else 0
        x, ok, errors = self._inputs(batch, n)
        columns: Dict[str, Any] = {}
        if "path" in batch:
            columns["image"] = pa.array([str(p) for p in batch["path"]], pa.string())
        for name, values in batch.items():
            if name not in ("bytes", "image", "path", self.input_column):
                columns[name] = values if isinstance(values, pa.Array) else pa.array(list(values))
        rows = iter(self._run(x) if x is not None else [])
        results = [next(rows) if good else None for good in ok]
        if self.output == "top":
            label = self.model.config.label
            idx = [None if r is None else np.argsort(-r, kind="stable")[:self.top] for r in results]
            columns["labels"] = pa.array([None if i is None else [label(int(j)) for j in i] for i in idx],
                                         pa.list_(pa.string()))
            columns["indices"] = pa.array([None if i is None else i.astype(np.int64) for i in idx],
                                          pa.list_(pa.int64()))
            probs = [None if i is None or r is None else r[i] for i, r in zip(idx, results)]
            columns["probabilities"] = pa.array(probs, pa.list_(pa.float32()))
        else:
            columns[self.output] = pa.array(results, pa.list_(pa.float32()))
        columns["error"] = pa.array(errors, pa.string())
        return pa.table(columns)

    def _run(self, x: np.ndarray) -> np.ndarray:
        if self.output == "features":
            return self.model.features(x)
        if self.output == "logits":
            return self.model.logits(x)
        return self.model.predict(x)


def _map(ds: Any, output: str, weights: Optional[str], *, actors: Optional[int], cpus_per_actor: int,
         batch_size: int, **kwargs: Any) -> Any:
    ray = _ray()
    from .errors import InputError

    if isinstance(cpus_per_actor, bool) or not isinstance(cpus_per_actor, int) or cpus_per_actor < 1:
        raise InputError(f"cpus_per_actor must be a positive int, got {cpus_per_actor!r}")
    if actors is None:
        total = int(ray.cluster_resources().get("CPU", 1)) if ray.is_initialized() else (os.cpu_count() or 1)
        actors = max(1, total // cpus_per_actor)
    if isinstance(actors, bool) or not isinstance(actors, int) or actors < 1:
        raise InputError(f"actors must be a positive int, got {actors!r}")
    # Ray 2.4x-2.60 all take compute=ActorPoolStrategy(size=...); 2.60 deprecates concurrency= for
    # map_batches, which the 2.4x releases preferred.
    from ray.data import ActorPoolStrategy

    return ds.map_batches(Predictor, fn_constructor_kwargs=dict(weights=weights, output=output, **kwargs),
                          batch_size=batch_size, batch_format="numpy", zero_copy_batch=True,
                          compute=ActorPoolStrategy(size=actors), num_cpus=cpus_per_actor,
                          # a killed actor is restarted and its batches retried (Ray 2.60's
                          # default; explicit for the older releases)
                          max_restarts=-1, max_task_retries=-1)


def classify_dataset(ds: Any, weights: Optional[str] = None, *, top: int = 5, precision: Optional[str] = None,
                     actors: Optional[int] = None, cpus_per_actor: int = 1, batch_size: int = 32,
                     labels: Optional[Any] = None, isa: Optional[str] = None,
                     input_column: Optional[str] = None) -> Any:
    """``ds`` with each row classified: columns ``image`` (the ``path``), ``labels``, ``indices``,
    ``probabilities`` (lists, most likely first) and ``error`` (null, or why the image failed).

    ``actors`` actors of ``cpus_per_actor`` CPUs each, one model and thread pool per actor
    (default: as many actors as the cluster has CPUs / ``cpus_per_actor``). Lazy, like any Ray
    Dataset: nothing runs until it is consumed.
    """
    return _map(ds, "top", weights, actors=actors, cpus_per_actor=cpus_per_actor, batch_size=batch_size,
                top=top, precision=precision, labels=labels, isa=isa, input_column=input_column)


def embed_dataset(ds: Any, weights: Optional[str] = None, *, precision: Optional[str] = None,
                  actors: Optional[int] = None, cpus_per_actor: int = 1, batch_size: int = 32,
                  isa: Optional[str] = None, input_column: Optional[str] = None) -> Any:
    """``ds`` with each row's pooled features (``features``: float32 list of 1024 x alpha values),
    for search or clustering; columns ``image`` (the ``path``), ``features``, ``error``. Same
    actor pool arguments as :func:`classify_dataset`."""
    return _map(ds, "features", weights, actors=actors, cpus_per_actor=cpus_per_actor, batch_size=batch_size,
                precision=precision, isa=isa, input_column=input_column)
