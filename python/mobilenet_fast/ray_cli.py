"""``mobilenet-fast classify --ray``: classify (or embed) images on a Ray cluster into one Parquet file.

Kept apart from :mod:`mobilenet_fast.cli` so that the CLI does not import Ray unless asked to.
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
import sys
from typing import Any, List, Tuple

from .cli import EXIT_USAGE, IMAGE_EXTENSIONS, _show_progress, find_images

__all__ = ["classify_on_ray"]


#: Read tasks take no CPU: the actors may hold every CPU of the cluster, and a read task waiting for
#: one would wait for ever (reading files is I/O, the decoding happens in the actors).
_READ_ARGS = {"num_cpus": 0}


def _import_ray() -> Any:
    from .errors import InputError

    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise InputError("--ray needs Ray Data: pip install 'mobilenet-fast[ray]'") from None
    return ray


def _is_uri(source: str) -> bool:
    return "://" in source


def _datasets(ray: Any, sources: List[str], listing_failed: Any) -> Tuple[List[Tuple[str, Any]], List[str], int]:
    """(kind, dataset) per source (kind: local, files or parquet), the local directories without
    images, and the local image count.

    Local files, directories and globs become one dataset of paths, found exactly as
    ``classify`` finds them on one machine (the actors read the files: on a multi-node cluster
    they must be on a shared file system); a ``.parquet`` is read as rows of image bytes; any
    other URI is read with ``ray.data.read_binary_files``.
    """
    from .errors import InputError

    local: List[str] = []
    out: List[Tuple[str, Any]] = []
    for s in sources:
        if s.lower().endswith(".parquet"):
            import pyarrow.parquet as pq

            names = set(pq.read_schema(s).names) if not _is_uri(s) else set(ray.data.read_parquet(s).schema().names)
            if "path" not in names or not names & {"bytes", "image"}:
                raise InputError(f"{s}: a Parquet source needs a 'path' column and a 'bytes' (or 'image') column of "
                                 f"encoded image files, it has {sorted(names)}")
            # Ray 2.60's Parquet read needs a CPU of its own even when asked for none (it waited
            # for ever with both CPUs of a 2-CPU cluster held by actors): "parquet" leaves it one.
            out.append(("parquet", ray.data.read_parquet(s).select_columns(["path", "bytes" if "bytes" in names
                                                                             else "image"])))
        elif _is_uri(s):
            exts = [e.lstrip(".") for e in IMAGE_EXTENSIONS]
            ds = ray.data.read_binary_files(s, include_paths=True, file_extensions=exts + [e.upper() for e in exts],
                                            ray_remote_args=_READ_ARGS)
            out.append(("files", ds))
        elif glob.has_magic(s) and not os.path.exists(s):
            found = sorted(glob.glob(s, recursive=True))
            if not found:
                raise InputError(f"{s}: no file matches this pattern")
            local.extend(found)
        else:
            local.append(s)
    images, empty = find_images(local, listing_failed) if local else ([], [])
    if images:
        # Blocks of about 64 images: enough blocks to spread over the actors and to bound what a
        # killed actor's retried task redoes.
        blocks = max(1, min(len(images), (len(images) + 63) // 64 * 4))
        out.insert(0, ("local", ray.data.from_items([{"path": p} for p in images], override_num_blocks=blocks)))
    return out, empty, len(images)


def classify_on_ray(args: argparse.Namespace) -> int:
    """Run ``classify --ray``: returns the exit status (1 when some image failed)."""
    import pyarrow.parquet as pq

    from .errors import InputError
    from .ray import classify_dataset, embed_dataset

    ray = _import_ray()
    failed = 0

    def listing_failed(path: str, reason: str) -> None:
        nonlocal failed
        failed += 1
        print(f"mobilenet-fast: {path}: {reason}", file=sys.stderr)

    address = args.ray_address or os.environ.get("RAY_ADDRESS")
    started = False
    if not ray.is_initialized():
        # No address: a local cluster of this machine's CPUs for this run only ("local" never
        # joins a cluster some other process started).
        ray.init(address=address or "local", include_dashboard=False, logging_level=logging.WARNING,
                 log_to_driver=False)
        started = True
    try:
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        datasets, empty, count = _datasets(ray, args.images, listing_failed)
        if not datasets:
            print(f"mobilenet-fast classify: error: no images found in {', '.join(empty)}", file=sys.stderr)
            return EXIT_USAGE
        for d in empty:
            print(f"mobilenet-fast: warning: {d}: no images found", file=sys.stderr)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = _show_progress(args.progress, count or 2)
        cpus = args.threads or 1
        common = dict(weights=args.weights, precision=args.precision, actors=args.actors, cpus_per_actor=cpus,
                      batch_size=args.batch, isa=args.isa)
        writer = None
        rows = 0
        try:
            for kind, ds in datasets:
                if kind == "parquet" and args.actors is None:
                    total = int(ray.cluster_resources().get("CPU", 1))
                    common["actors"] = max(1, total // cpus - 1) if total // cpus > 1 else 1
                else:
                    common["actors"] = args.actors
                if args.features:
                    out = embed_dataset(ds, **common)
                else:
                    out = classify_dataset(ds, top=args.top, labels=args.labels, **common)
                for table in out.iter_batches(batch_format="pyarrow", batch_size=None):
                    if writer is None:
                        writer = pq.ParquetWriter(args.output, table.schema)
                    writer.write_table(table.cast(writer.schema))
                    rows += table.num_rows
                    for image, error in zip(table.column("image").to_pylist(), table.column("error").to_pylist()):
                        if error is not None:
                            failed += 1
                            print(f"mobilenet-fast: {image}: {error}", file=sys.stderr)
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise InputError("no images were read from " + ", ".join(args.images))
        print(f"mobilenet-fast: wrote {rows} rows to {args.output}" + (f" ({failed} failed)" if failed else ""),
              file=sys.stderr)
    finally:
        if started:
            ray.shutdown()
    return 1 if failed else 0
