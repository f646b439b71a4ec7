"""End-to-end latency: mobilenet-fast against onnxruntime and TFLite (LiteRT + XNNPACK), one run.

Every engine gets the same BatchNorm-folded float32 weights and the same input, and is limited to
the same thread count:
  - mobilenet-fast reads the .safetensors file;
  - onnxruntime runs our ONNX export of it (all graph optimisations on);
  - LiteRT (the `ai-edge-litert` package, XNNPACK delegate) runs a .tflite built from the same
    .safetensors by bench/make_tflite.py under TensorFlow, which lives in its own environment.
The max |logit difference| of each peer against us is printed as proof that the weights agree.
The engines are interleaved over several rounds (each round: warm-up, then the timed runs of
every engine in turn) so that a noisy neighbour hurts all alike; we report the median and the
minimum per engine and the per-round ratio ours / peer (< 1 means we are faster).

    python bench/e2e.py                                  # shipped 1.0/224, 1 thread, batch 1
    python bench/e2e.py --tf-python /path/to/tf/bin/python   # build (and cache) the .tflite
    MOBILENET_FAST_TF_PYTHON=/path/to/tf/bin/python python bench/e2e.py
    python bench/e2e.py --tflite model.tflite --json results.json

The .tflite built for a weight file is cached in bench/.cache/ (keyed by the weights' and
make_tflite.py's sha256), so later runs need no TensorFlow.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import importlib.metadata
import inspect
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE_DIR = os.path.join(HERE, ".cache")
MAKE_TFLITE = os.path.join(HERE, "make_tflite.py")
OURS = "mobilenet-fast"
XNNPACK_LOG_LINE = "XNNPACK delegate"  # LiteRT prints "Created TensorFlow Lite XNNPACK delegate for CPU."


@dataclass
class Engine:
    name: str
    version: str
    run: Callable[[], np.ndarray]
    note: str = ""
    times: List[List[float]] = field(default_factory=list)  # ms, one list per round


def time_runs(fn: Callable[[], object], runs: int) -> List[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return out


@contextlib.contextmanager
def captured_stderr_fd(sink: List[str]) -> Iterator[None]:
    """Capture what C/C++ code writes to file descriptor 2 (LiteRT logs there), then echo it."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
            sink.append(text)
            if text:
                sys.stderr.write(text)
                sys.stderr.flush()


# --- engines ------------------------------------------------------------------------------------

def make_ours(args: argparse.Namespace, x: np.ndarray) -> Engine:
    import mobilenet_fast as mf

    kwargs: Dict[str, Any] = {}
    if "threads" in inspect.signature(mf.load).parameters:
        kwargs["threads"] = args.threads
    elif args.threads != 1:
        print("note: this version of mobilenet-fast has no threads option and runs on one thread; "
              "--threads only limits the peers", file=sys.stderr)
    model = mf.load(args.weights, **kwargs)
    run = model.logits if model.config.num_classes else model.features  # no classifier: pooled features
    return Engine(OURS, mf.__version__, lambda: run(x), note=f"isa={model.isa}")


def make_onnxruntime(args: argparse.Namespace, x: np.ndarray, weights: Any) -> Optional[Engine]:
    try:
        import onnxruntime as ort
    except ImportError:
        print("skipping onnxruntime: not installed (pip install '.[bench]')", file=sys.stderr)
        return None
    from mobilenet_fast.export_onnx import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        export_onnx(weights, path, fold_bn=True)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    output = "logits" if weights.config.num_classes else "features"
    return Engine("onnxruntime", ort.__version__, lambda: sess.run([output], {"input": x})[0],
                  note="CPUExecutionProvider")


def tflite_path(args: argparse.Namespace, weights_path: str) -> Optional[str]:
    """The .tflite to run: --tflite, else a cached or freshly built one; None to skip LiteRT."""
    if args.tflite:
        if not os.path.isfile(args.tflite):
            raise SystemExit(f"--tflite {args.tflite}: no such file")
        return args.tflite
    from mobilenet_fast.weights import file_sha256

    key = hashlib.sha256((file_sha256(weights_path) + file_sha256(MAKE_TFLITE)).encode()).hexdigest()[:16]
    stem = os.path.splitext(os.path.basename(weights_path))[0]
    cached = os.path.join(CACHE_DIR, f"{stem}-{key}.tflite")
    if os.path.isfile(cached):
        print(f"tflite: using cached {os.path.relpath(cached)}", file=sys.stderr)
        return cached
    tf_python = args.tf_python or os.environ.get("MOBILENET_FAST_TF_PYTHON")
    if not tf_python:
        print("skipping TFLite: no .tflite for these weights; pass --tflite PATH, or a Python with TensorFlow "
              "as --tf-python PATH or MOBILENET_FAST_TF_PYTHON=PATH to build one with bench/make_tflite.py",
              file=sys.stderr)
        return None
    os.makedirs(CACHE_DIR, exist_ok=True)
    cmd = [tf_python, MAKE_TFLITE, cached, "--weights", weights_path]
    print(f"tflite: building {os.path.relpath(cached)} with {tf_python} ...", file=sys.stderr)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    except OSError as e:
        raise SystemExit(f"cannot run the TF python {tf_python!r}: {e}") from None
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"bench/make_tflite.py failed (exit {proc.returncode}): {' '.join(cmd)}")
    print(f"tflite: {proc.stdout.strip()}", file=sys.stderr)
    return cached


def make_litert(args: argparse.Namespace, x: np.ndarray, path: str, xnnpack: bool) -> Engine:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    log: List[str] = []
    with captured_stderr_fd(log):
        interp = Interpreter(model_path=path, num_threads=args.threads, experimental_op_resolver_type=resolver)
        inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
        if tuple(inp["shape"][1:]) != x.shape[1:]:
            raise SystemExit(f"{path}: input shape {[int(v) for v in inp['shape']]} does not fit images of {list(x.shape[1:])}")
        if tuple(inp["shape"]) != x.shape:  # batch > 1
            interp.resize_tensor_input(inp["index"], list(x.shape))
        interp.allocate_tensors()
    out_index = interp.get_output_details()[0]["index"]

    def run() -> np.ndarray:
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        return interp.get_tensor(out_index)

    run()
    # The delegate's proof: the log line, and one DELEGATE node taking the model's input and
    # producing its output (so the whole network runs inside XNNPACK, nothing falls back).
    nodes = interp._get_ops_details()
    delegates = [n for n in nodes if n["op_name"] == "DELEGATE"]
    logged = XNNPACK_LOG_LINE in "".join(log)
    whole = (len(delegates) == 1 and inp["index"] in delegates[0]["inputs"]
             and out["index"] in delegates[0]["outputs"])
    n_ops = len(nodes) - len(delegates)
    if xnnpack:
        if not (logged and whole):
            raise SystemExit(f"LiteRT did not put the whole model into XNNPACK (log line seen: {logged}, "
                             f"DELEGATE nodes: {len(delegates)}, covers input->output: {whole})")
        check = f"XNNPACK verified: log line seen, 1 DELEGATE node replaces all {n_ops} ops (input->output)"
    else:
        if delegates or logged:
            raise SystemExit("LiteRT applied a delegate despite BUILTIN_WITHOUT_DEFAULT_DELEGATES")
        check = f"no delegate: {n_ops} ops on LiteRT's builtin kernels"
    print(f"litert: {check}", file=sys.stderr)
    name = "litert+xnnpack" if xnnpack else "litert builtin"
    return Engine(name, importlib.metadata.version("ai-edge-litert"), run, note=check)


# --- main -----------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="our .safetensors file (default: the shipped model)")
    ap.add_argument("--runs", type=int, default=50, help="timed runs per engine per round (default 50)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed runs per engine before each round (default 5)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--threads", type=int, default=1, help="threads per engine (default 1)")
    ap.add_argument("--batch", type=int, default=1, help="images per call (default 1)")
    ap.add_argument("--tflite", metavar="PATH", help="prebuilt .tflite of the same weights (default: build/cache one)")
    ap.add_argument("--tf-python", metavar="PATH",
                    help="Python with TensorFlow, to build the .tflite (default: $MOBILENET_FAST_TF_PYTHON)")
    ap.add_argument("--no-tflite", action="store_true", help="skip LiteRT")
    ap.add_argument("--tflite-builtin", action="store_true",
                    help="also time LiteRT without XNNPACK (its builtin kernels), for reference")
    ap.add_argument("--json", metavar="PATH", help="also write the raw results (every timing) as JSON")
    args = ap.parse_args()
    for opt in ("runs", "rounds", "threads", "batch"):
        if getattr(args, opt) < 1:
            ap.error(f"--{opt} must be >= 1")
    if args.warmup < 0:
        ap.error("--warmup must be >= 0")

    import mobilenet_fast as mf

    weight_set = mf.load_weight_set(args.weights)
    model_cfg = weight_set.config
    h, w = model_cfg.resolution
    x = np.random.default_rng(0).uniform(-1, 1, (args.batch, h, w, 3)).astype(np.float32)

    engines: List[Engine] = [make_ours(args, x)]
    ort_engine = make_onnxruntime(args, x, weight_set)
    if ort_engine:
        engines.append(ort_engine)
    with tempfile.TemporaryDirectory() as tmp:
        if args.no_tflite:
            pass
        elif not _litert_importable():
            print("skipping TFLite: ai_edge_litert is not importable (pip install ai-edge-litert)", file=sys.stderr)
        else:
            if args.weights is None:
                weights_path = mf.default_model_path()
            elif args.weights.lower().endswith(".safetensors"):
                weights_path = os.path.abspath(args.weights)
            else:  # e.g. a TF frozen graph: hand make_tflite.py our format of the same tensors
                weights_path = os.path.join(tmp, os.path.splitext(os.path.basename(args.weights))[0] + ".safetensors")
                mf.save_weights(weights_path, weight_set)
            path = tflite_path(args, weights_path)
            if path:
                engines.append(make_litert(args, x, path, xnnpack=True))
                if args.tflite_builtin:
                    engines.append(make_litert(args, x, path, xnnpack=False))

    ref = np.asarray(engines[0].run())
    diffs: Dict[str, float] = {}
    what = "logits" if model_cfg.num_classes else "features"
    for e in engines[1:]:
        got = np.asarray(e.run())
        if got.shape != ref.shape:
            raise SystemExit(f"{e.name}: output shape {got.shape}, ours {ref.shape}")
        diffs[e.name] = float(np.abs(got - ref).max())
        print(f"max |ours - {e.name}| {what}: {diffs[e.name]:.2e}")

    ratios: Dict[str, List[float]] = {e.name: [] for e in engines[1:]}
    for r in range(args.rounds):
        medians = {}
        for e in engines:
            time_runs(e.run, args.warmup)
            t = time_runs(e.run, args.runs)
            e.times.append(t)
            medians[e.name] = statistics.median(t)
        for e in engines[1:]:
            ratios[e.name].append(medians[OURS] / medians[e.name])
        print(f"round {r + 1}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in medians.items()), flush=True)

    load = " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    print(f"\nMobileNetV1 alpha {model_cfg.alpha:g}, {h}x{w}, {model_cfg.num_classes} classes; batch {args.batch}, "
          f"{args.threads} thread(s); {args.rounds} rounds x {args.runs} timed runs (+{args.warmup} warm-up) per engine; "
          f"{platform.machine()}, {os.cpu_count()} CPUs, load average {load}")
    header = f"{'engine':<18}{'version':<22}{'median ms':>10}{'min ms':>9}{'img/s':>8}   ours/peer per round"
    print(header)
    print("-" * len(header))
    summary = []
    for e in engines:
        flat = [v for t in e.times for v in t]
        med, lo = statistics.median(flat), min(flat)
        version = f"{e.version} ({e.note.split(':')[0]})" if e.name == OURS else e.version
        rr = " ".join(f"{v:.2f}" for v in ratios.get(e.name, []))
        print(f"{e.name:<18}{version:<22}{med:>10.2f}{lo:>9.2f}{args.batch * 1e3 / med:>8.1f}   {rr}")
        summary.append({"engine": e.name, "version": e.version, "note": e.note, "median_ms": med, "min_ms": lo,
                        "images_per_s": args.batch * 1e3 / med,
                        "round_medians_ms": [statistics.median(t) for t in e.times],
                        "ours_over_peer_per_round": ratios.get(e.name),
                        "max_abs_logit_diff_vs_ours": diffs.get(e.name), "times_ms": e.times})

    if args.json:
        doc = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "model": {"alpha": model_cfg.alpha, "resolution": [h, w], "num_classes": model_cfg.num_classes,
                      "padding": model_cfg.padding, "weights": args.weights or "shipped"},
            "settings": {k: getattr(args, k) for k in ("runs", "warmup", "rounds", "threads", "batch")},
            "machine": {"platform": platform.platform(), "machine": platform.machine(), "cpus": os.cpu_count(),
                        "python": platform.python_version(), "numpy": np.__version__},
            "engines": summary,
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
        print(f"wrote {args.json}")
    return 0


def _litert_importable() -> bool:
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
