"""The ``mobilenet-fast`` command line: classify, info, convert, bench."""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import time
from typing import Any, Callable, List, Optional, Sequence

__all__ = ["main", "build_parser"]


def _resolution(text: str) -> tuple:
    try:
        if "x" in text:
            h, w = text.lower().split("x")
            return (int(h), int(w))
        return (int(text), int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"resolution must be N or HxW, got {text!r}") from None


def _int_at_least(low: int, what: str) -> "Callable[[str], int]":
    """An argparse type: an int >= low, with a message naming what was expected."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {v}")
        return v

    return parse


_positive_int = _int_at_least(1, "a positive integer")
_nonnegative_int = _int_at_least(0, "an integer >= 0")


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(
        prog="mobilenet-fast",
        description="MobileNetV1 inference on the CPU with hand-written C++ kernels.",
        epilog="Run 'mobilenet-fast COMMAND --help' for the options of a command.",
    )
    p.add_argument("--version", action="version", version=f"mobilenet-fast {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("classify", help="print the top-k classes of images",
                       description="Classify image files and print the top-k labels with probabilities. "
                                   "Without --weights, the shipped ImageNet MobileNetV1 1.0/224 is used.")
    c.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ... anything Pillow reads)")
    c.add_argument("--weights", "-w", metavar="W", help="weight file: our .safetensors or any format `convert` reads (.pb, .h5, .keras, .onnx, .pth, ...)")
    c.add_argument("--labels", metavar="FILE", help="class names, one per line (replaces the weights' labels)")
    c.add_argument("--top", "-k", type=_positive_int, default=5, metavar="K", help="how many classes to print (default 5)")
    c.add_argument("--json", action="store_true", help="print JSON instead of a table")
    c.add_argument("--isa", metavar="ISA", help="force a kernel set: scalar, avx2, avx512, neon (default: best)")
    c.add_argument("--threads", "-t", type=_positive_int, default=None, metavar="T",
                   help="threads per image (default: the physical cores this process may use)")

    i = sub.add_parser("info", help="print the layer table, costs and the CPU's kernel paths",
                       description="Print MobileNetV1's per-layer table (shapes, pads, parameters, multiply-adds), "
                                   "totals, the cost of each depthwise-separable block against a standard 3x3 "
                                   "conv, and the CPU features / kernel path this machine uses.")
    i.add_argument("--alpha", "-a", type=float, default=None, help="width multiplier (default 1.0, or the weights')")
    i.add_argument("--resolution", "-r", type=_resolution, default=None, metavar="R",
                   help="input size N or HxW (default 224, or the weights')")
    i.add_argument("--classes", type=int, default=None, help="number of classes (default 1000, or the weights')")
    i.add_argument("--padding", choices=["tf_same", "symmetric", "keras"], default=None, help="padding convention")
    i.add_argument("--weights", "-w", metavar="W", help="describe this weight file's architecture")
    i.add_argument("--json", action="store_true", help="print JSON")

    from .importers import EXTENSIONS, FORMATS

    formats = "; ".join(f"{k}: {FORMATS[k][2]}" for k in FORMATS)
    v = sub.add_parser("convert", help="convert weights from any supported format",
                       description="Convert a MobileNetV1 to our .safetensors (or to ONNX, .onnx). Reads "
                                   f"every importer's format ({formats}); the source format comes from the "
                                   "extension (a .safetensors is ours when its metadata says so, else a "
                                   "PyTorch/timm state dict) unless --from is given. Prints what it found: "
                                   "alpha, resolution, classes, padding convention, activation, input "
                                   "normalisation.")
    v.add_argument("src", metavar="SRC",
                   help=f"source file ({', '.join(sorted(set(EXTENSIONS) | {'.safetensors'}))})")
    v.add_argument("dst", metavar="DST", help="destination file (.safetensors, .onnx)")
    v.add_argument("--from", dest="src_format", choices=list(FORMATS),
                   help="source format (default: from the extension)")
    v.add_argument("--resolution", "-r", type=_resolution, default=None, metavar="R",
                   help="record this input size (N or HxW) as the model's resolution (formats such as "
                        "PyTorch state dicts do not store one; 224 is assumed); also the ONNX input size")
    v.add_argument("--labels", metavar="FILE",
                   help="class names, one per line, stored in the output (must match the class count)")
    v.add_argument("--force", "-f", action="store_true", help="overwrite DST if it exists")

    b = sub.add_parser("bench", help="time mobilenet-fast on this machine",
                       description="Time the whole network on random input (after building the plan and a "
                                   "warm-up) and print the time per call (median, min, 90th percentile), images "
                                   "per second and the arithmetic rate: GFLOP/s = 2 x multiply-adds per image x "
                                   "images per second, and with --peak-gflops its percentage of the peak. "
                                   "To compare with other engines, see bench/e2e.py in the source tree.")
    b.add_argument("--weights", "-w", metavar="W", help="weight file (default: the shipped MobileNetV1 1.0/224)")
    b.add_argument("--threads", "-t", type=_positive_int, default=None, metavar="T",
                   help="threads (default: the model's default)")
    b.add_argument("--batch", "-b", type=_positive_int, default=1, metavar="N", help="images per call (default 1)")
    b.add_argument("--runs", "-n", type=_positive_int, default=50, metavar="R", help="timed calls (default 50)")
    b.add_argument("--warmup", type=_nonnegative_int, default=5, metavar="W",
                   help="untimed calls before timing, after the one that builds the plan (default 5)")
    b.add_argument("--resolution", "-r", type=_resolution, default=None, metavar="R",
                   help="input size N or HxW (default: the weights')")
    b.add_argument("--isa", metavar="ISA", help="force a kernel set: scalar, avx2, avx512, neon (default: best)")
    b.add_argument("--peak-gflops", type=_positive_float, default=None, metavar="G",
                   help="the FMA peak of ONE core in GFLOP/s (e.g. as printed by bench/kernels_bench); "
                        "adds %% of peak = GFLOP/s / (G x threads)")
    b.add_argument("--json", action="store_true", help="print JSON (with every timing) instead of a table")
    b.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return p


def _load(weights: Optional[str], isa: Optional[str] = None, threads: Optional[int] = None,
          labels: Optional[str] = None):  # type: ignore[no-untyped-def]
    from . import load

    return load(weights, isa=isa, threads=threads, labels=labels)


def _cmd_classify(args: argparse.Namespace) -> int:
    from .errors import MobileNetFastError

    model = _load(args.weights, args.isa, args.threads, args.labels)
    results = []
    failed = 0
    for path in args.images:
        try:
            preds = model.classify(path, top=args.top)
        except (MobileNetFastError, OSError) as e:
            failed += 1
            print(f"mobilenet-fast: {path}: {e}", file=sys.stderr)
            continue
        results.append({"image": path, "top": [{"label": p.label, "index": p.index,
                                                 "probability": round(p.probability, 6)} for p in preds]})
        if not args.json:
            print(path)
            for p in preds:
                print(f"  {p.probability:8.2%}  {p.label} ({p.index})")
    if args.json:
        print(json.dumps(results, indent=2))
    return 1 if failed else 0


def _cmd_info(args: argparse.Namespace) -> int:
    from . import cpu_info, default_threads, load_weight_set
    from .architecture import MobileNetV1

    alpha, res, classes, padding = 1.0, (224, 224), 1000, "tf_same"
    if args.weights:
        cfg = load_weight_set(args.weights).config
        alpha, res, classes, padding = cfg.alpha, cfg.resolution, cfg.num_classes, cfg.padding
    arch = MobileNetV1(args.alpha if args.alpha is not None else alpha,
                       args.resolution if args.resolution is not None else tuple(res),
                       args.classes if args.classes is not None else classes,
                       args.padding or padding)
    cpu = cpu_info()
    if args.json:
        print(json.dumps({
            "alpha": arch.alpha, "resolution": list(arch.input_hw), "num_classes": arch.num_classes,
            "padding": arch.padding, "total_params": arch.total_params, "total_macs": arch.total_macs,
            "layers": [dict(name=s.name, kind=s.kind, stride=s.stride, input=[s.in_h, s.in_w, s.in_channels],
                            output=[s.out_h, s.out_w, s.out_channels], pads=list(s.pads), params=s.params,
                            macs=s.macs) for s in arch],
            "cpu": cpu, "default_threads": default_threads(),
        }, indent=2))
        return 0
    print(arch.format_table())
    print()
    feats = ", ".join(k for k, on in cpu["features"].items() if on) or "none"
    print(f"CPU: {cpu['arch']}; features: {feats}")
    print(f"kernel paths compiled: {', '.join(cpu['compiled_isas'])}; supported here: "
          f"{', '.join(cpu['supported_isas'])}; selected: {cpu['selected_isa']}")
    print(f"threads by default: {default_threads()} (physical cores this process may run on)")
    if cpu.get("error"):
        print(f"warning: {cpu['error']}")
    return 0


def _read_labels(path: str) -> List[str]:
    """Class names from a text file, one per line (blank lines at the end ignored)."""
    from .errors import InputError

    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.rstrip("\r\n") for line in f]
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read labels file {path}: {e}") from None
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise InputError(f"labels file {path} is empty")
    return lines


def _cmd_convert(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from . import load_weight_set
    from .errors import InputError
    from .weights import WeightSet, save_weights

    dst = args.dst
    if os.path.exists(dst) and not args.force:
        raise InputError(f"{dst} exists; pass --force to overwrite it")
    if not dst.lower().endswith((".onnx", ".safetensors")):
        raise InputError(f"cannot tell the output format of {dst!r}: use a .safetensors or .onnx extension")
    ws = load_weight_set(args.src, fmt=args.src_format)
    if args.resolution is not None:
        from .architecture import MobileNetV1

        MobileNetV1(ws.config.alpha, args.resolution, ws.config.num_classes, ws.config.padding)  # validates
        ws = WeightSet(replace(ws.config, resolution=tuple(args.resolution)), ws.tensors)
    if args.labels:
        ws = ws.with_labels(_read_labels(args.labels))
    c = ws.config
    mean = "/".join(f"{v:g}" for v in c.input_mean)
    std = "/".join(f"{v:g}" for v in c.input_std)
    print(f"read {args.src}: MobileNetV1 alpha={c.alpha:g}, resolution={c.resolution[0]}x{c.resolution[1]}, "
          f"classes={c.num_classes}{' (feature extractor)' if not c.num_classes else ''}, "
          f"padding={c.padding}, activation={c.activation}, bn_epsilon={c.bn_epsilon:g}, "
          f"input=(x - {mean}) / {std}, labels={'yes' if c.labels else 'no'}")
    if c.source:
        print(f"source: {c.source}")
    if dst.lower().endswith(".onnx"):
        from .export_onnx import export_onnx

        export_onnx(ws, dst, resolution=args.resolution)
    else:
        save_weights(dst, ws)
    print(f"wrote {dst} ({os.path.getsize(dst):,} bytes)")
    return 0


class _Bar:
    """A minimal stderr progress bar, for when tqdm is not installed (same update/close calls)."""

    def __init__(self, total: int, desc: str) -> None:
        self.total, self.desc, self.n, self._shown = total, desc, 0, 0.0
        self._draw()

    def _draw(self) -> None:
        width = 30
        filled = width * self.n // max(self.total, 1)
        sys.stderr.write(f"\r{self.desc} [{'#' * filled}{'.' * (width - filled)}] {self.n}/{self.total}")
        sys.stderr.flush()
        self._shown = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.n >= self.total or time.monotonic() - self._shown > 0.1:
            self._draw()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _Bar(total, desc)
    return tqdm(total=total, desc=desc, unit="run", file=sys.stderr, dynamic_ncols=True)


def _cmd_bench(args: argparse.Namespace) -> int:
    import numpy as np

    from . import __version__, load
    from .errors import InputError

    kwargs: dict = {"isa": args.isa}
    has_threads = "threads" in inspect.signature(load).parameters
    if args.threads is not None:
        if has_threads:
            kwargs["threads"] = args.threads
        elif args.threads != 1:
            raise InputError(f"--threads {args.threads}: this version of mobilenet-fast runs on one thread only")
    model = load(args.weights, **kwargs)
    threads = int(getattr(model, "threads", 1) or 1) if has_threads else 1
    h, w = args.resolution or model.resolution
    arch = model.architecture((h, w))  # validates the size
    macs = arch.total_macs
    x = np.random.default_rng(0).uniform(-1, 1, (args.batch, h, w, 3)).astype(np.float32)
    fn = model.logits if model.num_classes else model.features  # no classifier: pooled features

    fn(x)  # builds (and caches) the plan for this input size
    for _ in range(args.warmup):
        fn(x)
    times: List[float] = []
    bar = _progress_bar(args.runs, "timing", not args.no_progress)
    try:
        for _ in range(args.runs):
            t0 = time.perf_counter()
            fn(x)
            times.append((time.perf_counter() - t0) * 1e3)
            bar.update(1)
    finally:
        bar.close()

    t = np.asarray(times)
    median, p90 = float(np.median(t)), float(np.percentile(t, 90))
    images_per_s = args.batch * 1e3 / median
    gflops = 2.0 * macs * images_per_s / 1e9
    percent = 100.0 * gflops / (args.peak_gflops * threads) if args.peak_gflops else None
    c = model.config
    if args.json:
        print(json.dumps({
            "version": __version__, "weights": model.path, "isa": model.isa, "threads": threads,
            "batch": args.batch, "resolution": [h, w], "alpha": c.alpha, "num_classes": c.num_classes,
            "runs": args.runs, "warmup": args.warmup, "macs_per_image": macs,
            "median_ms": median, "min_ms": float(t.min()), "p90_ms": p90, "mean_ms": float(t.mean()),
            "images_per_s": images_per_s, "gflops": gflops, "peak_gflops_per_core": args.peak_gflops,
            "percent_of_peak": percent, "times_ms": times,
        }, indent=2))
        return 0
    print(f"mobilenet-fast {__version__}: MobileNetV1 {float(c.alpha)} at {h}x{w}, {c.num_classes} classes "
          f"({macs / 1e6:.1f}M multiply-adds per image)")
    print(f"isa {model.isa}, {threads} thread{'s' if threads != 1 else ''}, batch {args.batch}; "
          f"{args.runs} timed runs after {args.warmup} warm-up")
    print()
    cols = ["median ms", "min ms", "p90 ms", "img/s", "GFLOP/s"] + (["% of peak"] if percent is not None else [])
    vals = [f"{median:.2f}", f"{t.min():.2f}", f"{p90:.2f}", f"{images_per_s:.1f}", f"{gflops:.1f}"]
    if percent is not None:
        vals.append(f"{percent:.1f}")
    print("".join(f"{col:>12}" for col in cols))
    print("".join(f"{v:>12}" for v in vals))
    print()
    if percent is not None:
        print(f"GFLOP/s = 2 x multiply-adds x img/s; % of peak = GFLOP/s / ({args.peak_gflops:g} GFLOP/s per core "
              f"x {threads} thread{'s' if threads != 1 else ''})")
    else:
        print("GFLOP/s = 2 x multiply-adds x img/s; pass --peak-gflops G (one core's FMA peak) for % of peak")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``mobilenet-fast`` console script; returns the exit code."""
    from .errors import MobileNetFastError

    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    if not args.command:
        parser.print_help()
        return 2
    commands = {"classify": _cmd_classify, "info": _cmd_info, "convert": _cmd_convert, "bench": _cmd_bench}
    try:
        return commands[args.command](args)
    except (MobileNetFastError, OSError) as e:
        print(f"mobilenet-fast: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
