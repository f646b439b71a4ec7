"""Images/s per CPU through Ray Data (mobilenet_fast.ray) against a plain local run on the same images.

Both sides get the same CPUs: the local run is one process with ``--cpus`` threads (decoding in a
thread pool of that size, as ``mobilenet-fast classify`` does); the Ray run is a local Ray
instance with ``--cpus`` CPUs and one 1-CPU actor per CPU. Two workloads:

- **decode included**: JPEG files on disk -> top-5 (read, decode, resize, normalise, run);
- **decode excluded**: images already normalised (float32 [N, 224, 224, 3]) -> top-5.

Ray's figure is given twice: over the whole run (actor start included, a cost paid once per
job) and in steady state (from the first result to the last, the rate a long job runs at).
Medians over ``--rounds`` rounds, each side timed in the same round. The overhead is
1 - Ray's steady-state rate / the local rate.

    python bench/ray_overhead.py --images 1024 --cpus 2 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Tuple

import numpy as np


def make_images(d: str, n: int) -> List[str]:
    """``n`` JPEGs of 500x375 (a typical photo size), crops and flips of the example photos."""
    from PIL import Image

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    photos = [Image.open(os.path.join(root, "examples", p)).convert("RGB") for p in ("coffee.png", "chelsea.png")]
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        im = photos[i % 2]
        x, y = int(rng.integers(0, im.width // 4)), int(rng.integers(0, im.height // 4))
        im = im.crop((x, y, x + im.width * 3 // 4, y + im.height * 3 // 4)).resize((500, 375))
        if i % 3 == 0:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        p = os.path.join(d, f"img_{i:05d}.jpg")
        im.save(p, quality=90)
        paths.append(p)
    return paths


def local_files(paths: List[str], cpus: int, batch: int) -> float:
    import mobilenet_fast as mf

    model = mf.load(threads=cpus)
    t = time.perf_counter()
    with ThreadPoolExecutor(cpus) as pool:
        for s in range(0, len(paths), batch):
            x = np.concatenate(list(pool.map(model.preprocess, paths[s:s + batch])))
            model.predict(x)
    return len(paths) / (time.perf_counter() - t)


def local_arrays(x: np.ndarray, cpus: int, batch: int) -> float:
    import mobilenet_fast as mf

    model = mf.load(threads=cpus)
    t = time.perf_counter()
    for s in range(0, len(x), batch):
        model.predict(x[s:s + batch])
    return len(x) / (time.perf_counter() - t)


def through_ray(ds: Any, cpus: int, batch: int, n: int, **kw: Any) -> Tuple[float, float]:
    """(images/s over the whole run, images/s from the first result to the last)."""
    import mobilenet_fast.ray as mfr

    out = mfr.classify_dataset(ds, top=5, actors=cpus, cpus_per_actor=1, batch_size=batch, **kw)
    t0 = time.perf_counter()
    first = None
    after_first = rows = 0
    for table in out.iter_batches(batch_format="pyarrow", batch_size=None):
        rows += table.num_rows
        if first is None:
            first = time.perf_counter()
        else:
            after_first += table.num_rows
    end = time.perf_counter()
    assert rows == n, f"{rows} rows for {n} images"
    return n / (end - t0), after_first / (end - first) if first is not None and end > first else float("nan")


def main(argv: Any = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    import ray

    import mobilenet_fast as mf

    results: Dict[str, List[float]] = {}
    with tempfile.TemporaryDirectory() as d:
        paths = make_images(d, args.images)
        model = mf.load(threads=args.cpus)
        x = np.concatenate([model.preprocess(p) for p in paths])
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False,
                 object_store_memory=max(256 << 20, 2 * x.nbytes))
        ray.data.DataContext.get_current().enable_progress_bars = False
        blocks = max(args.cpus * 4, args.images // 64)
        for r in range(args.rounds):
            results.setdefault("local, decode included", []).append(local_files(paths, args.cpus, args.batch))
            ds = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=blocks)
            whole, steady = through_ray(ds, args.cpus, args.batch, len(paths))
            results.setdefault("Ray, decode included (whole run)", []).append(whole)
            results.setdefault("Ray, decode included (steady state)", []).append(steady)
            results.setdefault("local, decode excluded", []).append(local_arrays(x, args.cpus, args.batch))
            ds = ray.data.from_numpy([x[i::blocks] for i in range(blocks)])  # one block each
            whole, steady = through_ray(ds, args.cpus, args.batch, len(paths), input_column="data")
            results.setdefault("Ray, decode excluded (whole run)", []).append(whole)
            results.setdefault("Ray, decode excluded (steady state)", []).append(steady)
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
        ray.shutdown()
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"{args.images} images (500x375 JPEG), {args.cpus} CPUs, batch {args.batch}, "
          f"median of {args.rounds} rounds; images/s per CPU (images/s)\n")
    print("| run | images/s per CPU | vs local |")
    print("|---|---|---|")
    for k, v in med.items():
        base = med["local, " + k.split(", ")[1].split(" (")[0]]
        print(f"| {k} | {v / args.cpus:.1f} ({v:.1f}) | {v / base:.2f} |")
    for what in ("decode included", "decode excluded"):
        over = 1 - med[f"Ray, {what} (steady state)"] / med[f"local, {what}"]
        print(f"\nRay's overhead, {what}, steady state: {100 * over:.1f}%", end="")
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
