"""End-to-end latency: mobilenet-fast against onnxruntime on identical weights, in one run.

Both engines get the same BatchNorm-folded weights (ours from the .safetensors file, onnxruntime
from our ONNX export of it) and the same input; each is limited to the same thread count. The
engines are interleaved over several rounds so that a noisy neighbour hurts both alike; we report
the median and minimum per engine and the per-round ratio ours / peer (< 1 means we are faster).

    python bench/e2e.py                       # shipped 1.0/224 model, 1 thread, batch 1
    python bench/e2e.py --runs 50 --rounds 3 --threads 1 --batch 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from typing import Callable, Dict, List

import numpy as np


def time_runs(fn: Callable[[], object], runs: int) -> List[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="our .safetensors file (default: the shipped model)")
    ap.add_argument("--runs", type=int, default=50, help="timed runs per engine per round (default 50)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed runs first (default 5)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--threads", type=int, default=1, help="threads per engine (default 1)")
    ap.add_argument("--batch", type=int, default=1, help="images per call (default 1)")
    args = ap.parse_args()

    import onnxruntime as ort

    import mobilenet_fast as mf
    from mobilenet_fast.export_onnx import export_onnx

    if args.threads != 1:
        print("note: this version of mobilenet-fast runs on one thread; --threads only limits the peers",
              file=sys.stderr)
    model = mf.load(args.weights)
    h, w = model.resolution
    x = np.random.default_rng(0).uniform(-1, 1, (args.batch, h, w, 3)).astype(np.float32)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        export_onnx(model.weights, path, fold_bn=True)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

    engines: Dict[str, Callable[[], object]] = {
        "mobilenet-fast": lambda: model.logits(x),
        f"onnxruntime {ort.__version__}": lambda: sess.run(["logits"], {"input": x}),
    }
    ours_out = model.logits(x)
    (ort_out,) = sess.run(["logits"], {"input": x})
    print(f"max |ours - onnxruntime| logits: {np.abs(ours_out - ort_out).max():.2e}")

    times: Dict[str, List[float]] = {k: [] for k in engines}
    ratios: Dict[str, List[float]] = {k: [] for k in engines if k != "mobilenet-fast"}
    for r in range(args.rounds):
        medians = {}
        for name, fn in engines.items():
            time_runs(fn, args.warmup)
            t = time_runs(fn, args.runs)
            times[name] += t
            medians[name] = statistics.median(t)
        for peer in ratios:
            ratios[peer].append(medians["mobilenet-fast"] / medians[peer])
        print(f"round {r + 1}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in medians.items()))

    print(f"\nMobileNetV1 {model.config.alpha:g}/{h}, batch {args.batch}, {args.threads} thread(s), isa={model.isa}, "
          f"{args.rounds} rounds x {args.runs} runs")
    print(f"{'engine':<28}{'median ms':>10}{'min ms':>10}{'img/s':>9}   ours/peer per round")
    for name, t in times.items():
        med = statistics.median(t)
        rr = " ".join(f"{v:.2f}" for v in ratios.get(name, []))
        print(f"{name:<28}{med:>10.2f}{min(t):>10.2f}{args.batch * 1e3 / med:>9.1f}   {rr}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
