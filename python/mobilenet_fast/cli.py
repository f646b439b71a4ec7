"""The ``mobilenet-fast`` command line: classify, info, convert, quantize, bench.

``classify`` is the everyday command. Its arguments are image files and directories:

* a directory is walked recursively in sorted order (directory entries sorted by name, a
  directory's files before its subdirectories; symbolic links to directories are not followed)
  and only files with an image extension (:data:`IMAGE_EXTENSIONS`, any case) are taken;
* a file named on the command line is always tried, whatever its extension.

Images are decoded and preprocessed exactly as :meth:`Model.preprocess` does (decoding runs on
the model's threads), stacked ``--batch`` at a time and run through :meth:`Model.predict`. An
image that cannot be read does not stop anything: it is reported on stderr as
``mobilenet-fast: <path>: <reason>`` and the rest of its batch still runs. Output goes to stdout
as a table (default), JSON (``--json``) or CSV (``--csv``; failed images appear only on stderr,
so the CSV stays a plain table of predictions). Exit status: 0 when every image was classified,
1 when some failed (or the weights could not be loaded), 2 for usage errors, including
"no images found".

``bench`` times the whole network; ``info`` prints the layer table and the CPU's kernel paths;
``convert`` converts weights between formats; ``quantize`` makes an int8 model from calibration
images and prints its top-1 agreement with float32 on held-out ones. Every command runs int8
files too (``--weights model_int8.safetensors``, or ``--precision int8`` for the shipped one).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import textwrap
import time
import warnings
from typing import IO, TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

if TYPE_CHECKING:
    from .runner import Model

__all__ = ["main", "build_parser", "find_images", "IMAGE_EXTENSIONS"]

#: File extensions ``classify`` takes when it walks a directory (compared case-insensitively).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")

#: Exit status for usage errors, as argparse uses.
EXIT_USAGE = 2

_DEFAULT_CLASSIFY_BATCH = 16


# --------------------------------------------------------------------------- argument types

def _resolution(text: str) -> Tuple[int, int]:
    try:
        if "x" in text.lower():
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


def _rgb(text: str) -> Tuple[float, float, float]:
    """An argparse type: three finite numbers "R,G,B" (one number means all three)."""
    from .errors import InputError
    from .weights import check_rgb

    parts = text.split(",")
    try:
        return check_rgb(parts * 3 if len(parts) == 1 else parts, "the value")
    except InputError:
        raise argparse.ArgumentTypeError(f"expected three finite numbers R,G,B, got {text!r}") from None


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


# ---------------------------------------------------------------------------------- parser

def _text(s: str) -> str:
    """A description/epilog block for RawDescriptionHelpFormatter: dedented, no outer blank lines."""
    return textwrap.dedent(s).strip("\n")


class _VersionAction(argparse.Action):
    """``--version``: the package version and the kernel set this CPU gets (computed when asked)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: Any = argparse.SUPPRESS, help: Optional[str] = None) -> None:
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: Optional[str] = None) -> None:
        parser._print_message(version_text() + "\n", sys.stdout)
        parser.exit()


def version_text() -> str:
    """``mobilenet-fast 0.1.0 (kernels: avx512 of scalar, avx2, avx512)``: what ``--version`` prints."""
    from . import __version__, cpu_info

    info = cpu_info()
    compiled = ", ".join(info["compiled_isas"])
    if info.get("selected_isa"):
        kernels = f"kernels: {info['selected_isa']}; compiled: {compiled}"
    else:
        kernels = f"no usable kernels: {info.get('error', 'unknown error')}"
    return f"mobilenet-fast {__version__} ({kernels})"


_ISA_HELP = ("force a kernel set: scalar, avx2, avx512, avx512_vnni, neon, neon_dotprod, neon_i8mm "
             "(default: $MOBILENET_FAST_ISA if set, else the best this CPU supports)")
_THREADS_HELP = "threads one call uses (default: the physical cores this process may run on)"
_WEIGHTS_HELP = ("weight file: our .safetensors (float32 or int8) or any format `convert` reads (.pb, .h5, .keras, "
                 ".onnx, .pth, ...) (default: the shipped ImageNet MobileNetV1 1.0/224)")
_PRECISION_HELP = ("float32 or int8: without --weights, which shipped model to run (default float32); with "
                   "--weights, the precision the file must hold (default: whatever it holds)")


def _add_progress_options(p: argparse.ArgumentParser, what: str) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help=f"always show a progress bar on stderr (default: only when stderr is a terminal{what})")
    g.add_argument("--no-progress", dest="progress", action="store_false",
                   help="never show a progress bar")


def build_parser() -> argparse.ArgumentParser:
    """The ``mobilenet-fast`` argument parser (subcommands classify, info, convert, quantize, bench)."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(
        prog="mobilenet-fast", formatter_class=fmt,
        description="MobileNetV1 inference on the CPU with hand-written C++ kernels.",
        epilog=_text("""
            Examples:
              mobilenet-fast classify examples/chelsea.png examples/coffee.png
              mobilenet-fast classify ~/photos --csv > predictions.csv
              mobilenet-fast info
              mobilenet-fast convert mobilenet_1_0_224_tf.h5 mobilenet.safetensors
              mobilenet-fast bench --threads 2 --batch 8
              mobilenet-fast quantize --calibration photos/ mobilenet_int8.safetensors
              mobilenet-fast classify examples/chelsea.png --precision int8

            Run 'mobilenet-fast COMMAND --help' for the options of a command.
        """),
    )
    p.add_argument("--version", action=_VersionAction,
                   help="print the version and the kernel set (ISA) this CPU uses, then exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND",
                           help="what to do; 'mobilenet-fast COMMAND --help' shows its options")

    # ------------------------------------------------------------------------------ classify
    exts = " ".join(IMAGE_EXTENSIONS)
    c = sub.add_parser(
        "classify", help="print the top-k classes of images (files or directories)", formatter_class=fmt,
        description=_text(f"""
            Classify images and print the top-k labels with their probabilities. Without --weights,
            the shipped ImageNet MobileNetV1 1.0/224 is used.

            Each PATH is an image file or a directory. Directories are searched recursively, in
            sorted order, for files ending in one of
              {exts}
            (any case); symbolic links to directories are not followed. A file named on the command
            line is always tried, whatever its extension. Images are decoded, resized and centre-cropped
            to the model's resolution, normalised as the weights expect, and run --batch at a time.
        """),
        epilog=_text("""
            Output (stdout):
              table    default: each image's path, then one line per class: probability, label (index)
              --json   a list, in input order, of {"image": PATH, "top": [{"label", "index",
                       "probability"}, ...]} and, for images that failed, {"image": PATH, "error": REASON}
              --csv    header image,rank,label,index,probability, then one row per image and class
                       (rank 1 = most likely); failed images are not in the CSV, only on stderr

            An image that cannot be read (missing, not an image, truncated, ...) gets one line on
            stderr, "mobilenet-fast: PATH: REASON"; the others are still classified and printed.

            Exit status:
              0  every image was classified
              1  some images failed, or the weights could not be loaded
              2  usage error (bad option), or no images found in the given directories

            On a Ray cluster (pip install 'mobilenet-fast[ray]'), --ray --output FILE.parquet runs
            on the cluster in RAY_ADDRESS (or --ray-address), else on a local one started for the
            run. One row per image: image (the path), labels, indices, probabilities (lists, most
            likely first) and error (null, or why it failed); --features writes the pooled
            features instead. A PATH may also be a glob, a .parquet of image bytes (columns path
            and bytes or image) or a URI Ray reads (s3://..., gs://...). --threads is each Ray
            actor's CPUs and threads (default 1), --actors how many (default: the cluster's CPUs /
            --threads).

            Examples:
              mobilenet-fast classify examples/chelsea.png examples/coffee.png
              mobilenet-fast classify ~/photos --top 1 --csv > predictions.csv
              mobilenet-fast classify shots/ extra.jpg --json --batch 32 --threads 4
              mobilenet-fast classify cat.jpg --weights mobilenet_v1_0.5_160.h5 --labels names.txt
              mobilenet-fast classify photos/ --precision int8       # the shipped int8 model
              mobilenet-fast classify --ray photos/ --output predictions.parquet
              mobilenet-fast classify --ray s3://bucket/shots/ --output emb.parquet --features
        """),
    )
    c.add_argument("images", nargs="+", metavar="PATH",
                   help="image files (JPEG, PNG, ... anything Pillow reads) and directories to search")
    c.add_argument("--weights", "-w", metavar="W", help=_WEIGHTS_HELP)
    c.add_argument("--precision", "-p", choices=["float32", "int8"], default=None, help=_PRECISION_HELP)
    c.add_argument("--labels", metavar="FILE",
                   help="class names, one per line, replacing the weights' labels (default: the weights' "
                        "labels, else class_N)")
    c.add_argument("--top", "-k", type=_positive_int, default=5, metavar="K",
                   help="how many classes to print per image (default 5)")
    c.add_argument("--batch", "-b", type=_positive_int, default=_DEFAULT_CLASSIFY_BATCH, metavar="N",
                   help=f"images per model call (default {_DEFAULT_CLASSIFY_BATCH}); results do not depend on it")
    out = c.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON instead of a table (see below)")
    out.add_argument("--csv", action="store_true", help="print CSV instead of a table (see below)")
    c.add_argument("--isa", metavar="ISA", help=_ISA_HELP)
    c.add_argument("--threads", "-t", type=_positive_int, default=None, metavar="T", help=_THREADS_HELP)
    _add_progress_options(c, " and there is more than one image")
    r = c.add_argument_group("Ray cluster (the [ray] extra)")
    r.add_argument("--ray", action="store_true",
                   help="run on a Ray cluster (RAY_ADDRESS, --ray-address, else a local one for this run); "
                        "needs --output")
    r.add_argument("--ray-address", metavar="ADDRESS",
                   help="the Ray cluster to run on (implies --ray; default: RAY_ADDRESS, else a local one for the run)")
    r.add_argument("--output", "-o", metavar="FILE",
                   help="with --ray: the Parquet file to write (no default: required)")
    r.add_argument("--features", action="store_true",
                   help="with --ray: write each image's pooled features (an embedding) instead of classes")
    r.add_argument("--actors", type=_positive_int, default=None, metavar="N",
                   help="with --ray: how many actors (default: the cluster's CPUs / --threads)")

    # ---------------------------------------------------------------------------------- info
    i = sub.add_parser(
        "info", help="print the layer table, costs and the CPU's kernel paths", formatter_class=fmt,
        description=_text("""
            Print MobileNetV1's per-layer table (shapes, pads, parameters, multiply-adds), totals,
            the cost of each depthwise-separable block against a standard 3x3 conv, and the CPU
            features / kernel path this machine uses.
        """),
        epilog=_text("""
            Examples:
              mobilenet-fast info                               # MobileNetV1 1.0/224, 1000 classes
              mobilenet-fast info --alpha 0.5 --resolution 160
              mobilenet-fast info --weights mobilenet.safetensors --json
        """),
    )
    i.add_argument("--alpha", "-a", type=float, default=None, metavar="A",
                   help="width multiplier (default: the weights', else 1.0)")
    i.add_argument("--resolution", "-r", type=_resolution, default=None, metavar="R",
                   help="input size N or HxW (default: the weights', else 224)")
    i.add_argument("--classes", type=int, default=None, metavar="N", help="number of classes (default: the weights', else 1000)")
    i.add_argument("--padding", choices=["tf_same", "symmetric", "keras"], default=None,
                   help="padding convention (default: the weights', else tf_same)")
    i.add_argument("--weights", "-w", metavar="W",
                   help="describe this weight file's architecture (default: none, the options above)")
    i.add_argument("--json", action="store_true", help="print JSON instead of text")

    # ------------------------------------------------------------------------------- convert
    from .importers import EXTENSIONS, FORMATS

    formats = "\n".join(f"  {k:<10} {FORMATS[k][2]}" for k in FORMATS)
    v = sub.add_parser(
        "convert", help="convert weights from any supported format", formatter_class=fmt,
        description=_text("""
            Convert a MobileNetV1 to our .safetensors (or to ONNX, .onnx). The source format comes
            from the extension (a .safetensors is ours when its metadata says so, else a PyTorch/timm
            state dict) unless --from is given. Prints what it found: alpha, resolution, classes,
            padding convention, activation, input normalisation.

            Source formats (--from):
        """) + "\n" + formats,
        epilog=_text("""
            Examples:
              mobilenet-fast convert mobilenet_v1_1.0_224_frozen.pb mobilenet.safetensors
              mobilenet-fast convert mobilenet_1_0_224_tf.h5 mobilenet.safetensors --labels names.txt
              mobilenet-fast convert timm_mobilenetv1_100.pth mobilenet.safetensors --resolution 256
              mobilenet-fast convert mobilenet.safetensors mobilenet.onnx
        """),
    )
    v.add_argument("src", metavar="SRC",
                   help=f"source file ({', '.join(sorted(set(EXTENSIONS) | {'.safetensors'}))})")
    v.add_argument("dst", metavar="DST", help="destination file (.safetensors, .onnx)")
    v.add_argument("--from", dest="src_format", choices=list(FORMATS),
                   help="source format (default: from the extension)")
    v.add_argument("--resolution", "-r", type=_resolution, default=None, metavar="R",
                   help="record this input size (N or HxW) as the model's resolution (default: the source's; "
                        "formats such as PyTorch state dicts store none and 224 is assumed); also the ONNX "
                        "input size")
    v.add_argument("--padding", choices=["tf_same", "symmetric", "keras"], default=None,
                   help="override the padding convention the importer recorded (e.g. tf_same for a timm "
                        "model created with pad_type='same'; default: the importer's)")
    v.add_argument("--activation", choices=["relu6", "relu"], default=None,
                   help="override the activation the importer recorded (default: the importer's)")
    v.add_argument("--input-mean", type=_rgb, default=None, metavar="R,G,B",
                   help="override the input normalisation mean, on 0..255 pixels, e.g. 123.675,116.28,103.53 (default: the importer's)")
    v.add_argument("--input-std", type=_rgb, default=None, metavar="R,G,B",
                   help="override the input normalisation std, on 0..255 pixels, e.g. 58.395,57.12,57.375 (default: the importer's)")
    v.add_argument("--labels", metavar="FILE",
                   help="class names, one per line, stored in the output (must match the class count; "
                        "default: the source's labels, if any)")
    v.add_argument("--force", "-f", action="store_true", help="overwrite DST if it exists (default: refuse)")

    # ------------------------------------------------------------------------------ quantize
    q = sub.add_parser(
        "quantize", help="quantise a model to int8 with calibration images", formatter_class=fmt,
        description=_text("""
            Quantise a float32 MobileNetV1 to int8 (per-output-channel int8 weights, uint8
            activations, int32 accumulation; see the README for the scheme) with the activation
            ranges seen on calibration images, and write it as our .safetensors with precision int8,
            which every command and mobilenet_fast.load() run. Then classify held-out images with
            the float32 and the int8 model and print how often their top-1 classes agree, overall
            and on the images where float32 is confident (top probability >= 0.5).

            --calibration and --eval take image files or directories (searched as classify
            searches them) and may be given more than once. A few dozen varied photos of the kind
            the model will see are enough; without --eval, every 4th calibration image is held out
            for the agreement (and not used for calibration).
        """),
        epilog=_text("""
            Examples:
              mobilenet-fast quantize --calibration photos/ mobilenet_int8.safetensors
              mobilenet-fast quantize --weights mobilenet_v1_0.5_160.h5 --calibration calib/ \\
                  --eval holdout/ small_int8.safetensors
              mobilenet-fast classify cat.jpg --weights mobilenet_int8.safetensors
        """),
    )
    q.add_argument("out", metavar="OUT", help="the int8 .safetensors to write")
    q.add_argument("--weights", "-w", metavar="W", help=_WEIGHTS_HELP.replace("(float32 or int8)", "(float32)"))
    q.add_argument("--calibration", "-c", action="append", required=True, metavar="PATH",
                   help="calibration images: a file or directory (repeatable; no default, at least one is required)")
    q.add_argument("--eval", "-e", action="append", default=None, metavar="PATH",
                   help="held-out images for the agreement (repeatable; default: every 4th calibration image)")
    q.add_argument("--max-calibration", type=_positive_int, default=64, metavar="N",
                   help="use at most N calibration images, evenly spaced over the list (default 64)")
    q.add_argument("--method", choices=["mse", "percentile", "minmax"], default="mse",
                   help="how each activation's range is chosen: the clip with the least squared quantisation "
                        "error (default), a percentile of the values, or their maximum")
    q.add_argument("--percentile", type=_positive_float, default=99.99, metavar="P",
                   help="the percentile for --method percentile (default 99.99)")
    q.add_argument("--no-bias-correction", action="store_true",
                   help="skip the per-channel bias correction (it is what makes MobileNetV1 quantise well)")
    q.add_argument("--no-pair-limit", action="store_true",
                   help="do not limit the GEMM weights to |q[2j]| + |q[2j+1]| <= 128 per pair of input channels "
                        "(the limit, on by default, lets AVX2's vpmaddubsw run them exactly; without it the "
                        "int8 GEMM on CPUs without VNNI takes its slower int16 path)")
    q.add_argument("--labels", metavar="FILE",
                   help="class names, one per line, stored in the output (default: the weights' labels)")
    q.add_argument("--isa", metavar="ISA", help=_ISA_HELP)
    q.add_argument("--threads", "-t", type=_positive_int, default=None, metavar="T", help=_THREADS_HELP)
    q.add_argument("--force", "-f", action="store_true", help="overwrite OUT if it exists (default: refuse)")
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    _add_progress_options(q, " and there is more than one image")

    # --------------------------------------------------------------------------------- bench
    b = sub.add_parser(
        "bench", help="time mobilenet-fast on this machine", formatter_class=fmt,
        description=_text("""
            Time the whole network on random input (after building the plan and a warm-up) and print
            the time per call (median, min, 90th percentile), images per second and the arithmetic
            rate: GFLOP/s = 2 x multiply-adds per image x images per second, and, with --peak-gflops,
            its percentage of the peak. To compare with other engines, see bench/e2e.py in the source
            tree.

            The peak is not guessed: it depends on how many FMA units a core has and on its clock
            under AVX2/AVX-512 load, which the CPU does not report (on one of our test machines the
            AVX2 peak is half the AVX-512 one). Measure it once with the microbenchmarks
            (mbf_kernels_bench prints "FMA peak of one core" for each ISA) and pass the number of the
            ISA in use.
        """),
        epilog=_text("""
            Examples:
              mobilenet-fast bench                                   # 1 image per call, all cores
              mobilenet-fast bench --threads 1 --peak-gflops 217.7
              mobilenet-fast bench --threads 2 --batch 8 --runs 200 --json > bench.json
              mobilenet-fast bench --weights mobilenet_v1_0.5_160.safetensors --isa avx2
              mobilenet-fast bench --precision int8 --threads 1      # the shipped int8 model
        """),
    )
    b.add_argument("--weights", "-w", metavar="W", help=_WEIGHTS_HELP)
    b.add_argument("--precision", "-p", choices=["float32", "int8"], default=None, help=_PRECISION_HELP)
    b.add_argument("--threads", "-t", type=_positive_int, default=None, metavar="T", help=_THREADS_HELP)
    b.add_argument("--batch", "-b", type=_positive_int, default=1, metavar="N", help="images per call (default 1)")
    b.add_argument("--runs", "-n", type=_positive_int, default=50, metavar="R", help="timed calls (default 50)")
    b.add_argument("--warmup", type=_nonnegative_int, default=5, metavar="W",
                   help="untimed calls before timing, after the one that builds the plan (default 5)")
    b.add_argument("--resolution", "-r", type=_resolution, default=None, metavar="R",
                   help="input size N or HxW (default: the weights')")
    b.add_argument("--isa", metavar="ISA", help=_ISA_HELP)
    b.add_argument("--peak-gflops", type=_positive_float, default=None, metavar="G",
                   help="the FMA peak of ONE core in GFLOP/s for the ISA in use (for an int8 model: its int8 "
                        "dot-product peak in GOP/s), as printed by "
                        "mbf_kernels_bench; adds the column %% of peak = GFLOP/s / (G x threads) "
                        "(default: none, no such column; see above why it is not estimated)")
    b.add_argument("--json", action="store_true", help="print JSON (with every timing) instead of a table")
    _add_progress_options(b, "")
    return p


# ---------------------------------------------------------------------------- progress bars

class _Bar:
    """A minimal stderr progress bar, for when tqdm is not installed (same update/write/close calls)."""

    def __init__(self, total: int, desc: str, unit: str) -> None:
        self.total, self.desc, self.unit, self.n, self._shown, self._width = total, desc, unit, 0, 0.0, 0
        self._draw()

    def _draw(self) -> None:
        width = 30
        filled = width * self.n // max(self.total, 1)
        line = f"{self.desc} [{'#' * filled}{'.' * (width - filled)}] {self.n}/{self.total} {self.unit}"
        sys.stderr.write("\r" + line)
        sys.stderr.flush()
        self._width = len(line)
        self._shown = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.n >= self.total or time.monotonic() - self._shown > 0.1:
            self._draw()

    def write(self, text: str, file: IO[str]) -> None:
        """Print ``text`` (newline included) to ``file`` without garbling the bar."""
        sys.stderr.write("\r" + " " * self._width + "\r")
        sys.stderr.flush()
        file.write(text)
        file.flush()
        self._draw()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


class _TqdmBar:
    """tqdm behind the same update/write/close calls."""

    def __init__(self, tqdm: Any, total: int, desc: str, unit: str) -> None:
        self._bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def write(self, text: str, file: IO[str]) -> None:
        self._bar.write(text, file=file, end="")  # clears the bar, writes, redraws it

    def close(self) -> None:
        self._bar.close()


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def write(self, text: str, file: IO[str]) -> None:
        file.write(text)
        file.flush()

    def close(self) -> None:
        pass


def _progress_bar(total: int, desc: str, enabled: bool, unit: str = "run") -> Any:
    """A progress bar on stderr (tqdm if installed, else a built-in one), or a no-op one.

    Whatever it returns has ``update(n)``, ``write(text, file)`` (print without garbling the bar;
    use it for everything printed while the bar is up) and ``close()``.
    """
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        return _Bar(total, desc, unit)
    return _TqdmBar(tqdm, total, desc, unit)


def _show_progress(requested: Optional[bool], items: int) -> bool:
    """--progress / --no-progress, else on when stderr is a terminal and there is more than one item."""
    if requested is not None:
        return requested
    try:
        return items > 1 and sys.stderr.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stderr
        return False


# --------------------------------------------------------------------------------- classify

def find_images(paths: Sequence[str], on_error: Optional[Callable[[str, str], None]] = None
                ) -> Tuple[List[str], List[str]]:
    """The images ``classify`` runs on, in order, and the directories in which none was found.

    A directory is walked recursively: entries sorted by name (code-point order: upper case
    before lower case), a directory's files before its subdirectories, symbolic links to
    directories not followed; only files whose extension is in :data:`IMAGE_EXTENSIONS` (any
    case) are taken. Any other path (a file, or a path that does not
    exist) is taken as it is, so that it is tried and, if it cannot be read, reported. A path that
    comes up twice (after ``os.path.normpath``) is kept once, where it first appears.
    ``on_error(path, reason)`` is called for a subdirectory that cannot be listed.
    """
    images: List[str] = []
    empty: List[str] = []
    seen = set()

    def add(path: str) -> None:
        key = os.path.normpath(path)
        if key not in seen:
            seen.add(key)
            images.append(path)

    def walk_error(e: OSError) -> None:
        if on_error is not None:
            on_error(e.filename or "?", f"cannot list directory: {e.strerror or e}")

    for path in paths:
        if not os.path.isdir(path):
            add(path)
            continue
        found = 0
        for root, dirs, files in os.walk(path, onerror=walk_error):
            dirs.sort()
            for name in sorted(files):
                if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                    add(os.path.join(root, name))
                    found += 1
        if not found:
            empty.append(path)
    return images, empty


def _top_entries(row: Any, k: int, label: Callable[[int], str]) -> List[Dict[str, Any]]:
    """The ``k`` most likely classes of one probability row, most likely first (ties: lower index)."""
    import numpy as np

    idx = np.argsort(-row, kind="stable")[:k]
    # 9 significant digits round-trip a float32 exactly, without float64 noise digits.
    return [{"label": label(int(i)), "index": int(i), "probability": float(f"{float(row[i]):.9g}")} for i in idx]


def _format_table(entries: List[Dict[str, Any]]) -> str:
    lines = []
    for e in entries:
        lines.append(e["image"])
        lines.extend(f"  {t['probability']:8.2%}  {t['label']} ({t['index']})" for t in e["top"])
    return "".join(line + "\n" for line in lines)


_CSV_COLUMNS = ("image", "rank", "label", "index", "probability")


def _format_csv(entries: List[Dict[str, Any]], header: bool) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(_CSV_COLUMNS)
    for e in entries:
        for rank, t in enumerate(e["top"], 1):
            w.writerow([e["image"], rank, t["label"], t["index"], repr(t["probability"])])
    return buf.getvalue()


def _cmd_classify(args: argparse.Namespace) -> int:
    from .errors import InputError

    if args.ray_address:
        args.ray = True
    ray_only = [o for o, v in (("--output", args.output), ("--features", args.features), ("--actors", args.actors))
                if v]
    if not args.ray and ray_only:
        print(f"mobilenet-fast classify: error: {', '.join(ray_only)} only with --ray", file=sys.stderr)
        return EXIT_USAGE
    if args.ray:
        if not args.output:
            print("mobilenet-fast classify: error: --ray needs --output FILE.parquet", file=sys.stderr)
            return EXIT_USAGE
        if args.json or args.csv:
            print("mobilenet-fast classify: error: --ray writes Parquet (--output), not --json / --csv",
                  file=sys.stderr)
            return EXIT_USAGE
        from .ray_cli import classify_on_ray

        return classify_on_ray(args)
    failed = 0

    def listing_failed(path: str, reason: str) -> None:  # a directory we could not list: a failure too
        nonlocal failed
        failed += 1
        print(f"mobilenet-fast: {path}: {reason}", file=sys.stderr)

    images, empty = find_images(args.images, listing_failed)
    looked_for = f"looked for {', '.join(IMAGE_EXTENSIONS)} in any case, in subdirectories too"
    if not images:
        where = ", ".join(empty)
        print(f"mobilenet-fast classify: error: no images found in {where} ({looked_for})", file=sys.stderr)
        return EXIT_USAGE
    for d in empty:
        print(f"mobilenet-fast: warning: {d}: no images found ({looked_for})", file=sys.stderr)

    model = _load(args.weights, args.isa, args.threads, args.labels, args.precision)
    if not model.num_classes:
        raise InputError(f"{model.path} is a feature extractor (no classifier): there are no classes to print")
    everything: List[Dict[str, Any]] = []  # --json: successes and failures, in input order
    with warnings.catch_warnings():
        # Pillow warns about files it half-reads ("Truncated File Read"...); such an image either
        # decodes or is reported on its one stderr line, so the warnings would only be noise.
        warnings.filterwarnings("ignore", module=r"PIL(\.|$)")
        failed += _classify_images(args, model, images, everything if args.json else None)
    if args.json:
        print(json.dumps(everything, indent=2))
    return 1 if failed else 0


def _classify_images(args: argparse.Namespace, model: Any, images: List[str],
                     collect: Optional[List[Dict[str, Any]]]) -> int:
    """Decode, run and print ``images`` ``--batch`` at a time; returns how many failed.

    Table and CSV rows are printed batch by batch; with ``collect`` (``--json``) the results and
    failures are appended to it instead, in input order. Each failure gets its stderr line as
    soon as its batch is done.
    """
    import numpy as np

    k = min(args.top, model.num_classes)
    label = model.config.label
    failed = 0
    pool = None
    workers = min(model.threads, args.batch, len(images))
    if workers > 1:  # Pillow decodes and resizes with the GIL released
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mobilenet-fast-decode")
    from .preprocess import try_preprocess

    def decode(path: str) -> Tuple[Any, Optional[str]]:
        return try_preprocess(model.preprocess, path, path)

    bar = _progress_bar(len(images), "classifying", _show_progress(args.progress, len(images)), unit="image")
    try:
        for start in range(0, len(images), args.batch):
            chunk = images[start:start + args.batch]
            decoded = list(pool.map(decode, chunk) if pool is not None else map(decode, chunk))
            good = [x for x, _ in decoded if x is not None]
            probs = iter(model.predict(np.concatenate(good)) if good else [])
            entries: List[Dict[str, Any]] = []
            errors = []
            for path, (x, reason) in zip(chunk, decoded):
                if x is None:
                    errors.append(f"mobilenet-fast: {path}: {reason}\n")
                    entry: Dict[str, Any] = {"image": path, "error": reason}
                else:
                    entry = {"image": path, "top": _top_entries(next(probs), k, label)}
                    entries.append(entry)
                if collect is not None:
                    collect.append(entry)
            failed += len(errors)
            if errors:
                bar.write("".join(errors), sys.stderr)
            if args.csv:
                bar.write(_format_csv(entries, header=start == 0), sys.stdout)
            elif collect is None and entries:
                bar.write(_format_table(entries), sys.stdout)
            bar.update(len(chunk))
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown()
    return failed


def _load(weights: Optional[str], isa: Optional[str] = None, threads: Optional[int] = None,
          labels: Optional[str] = None, precision: Optional[str] = None) -> "Model":
    from . import load

    return load(weights, isa=isa, threads=threads, labels=labels, precision=precision)


# ------------------------------------------------------------------------- info and convert

def _read_any(path: str) -> Tuple[Any, Any]:
    """(config, the QuantizedNet of an int8 file or None) of any weight file ``load`` reads."""
    from . import load_weight_set
    from .qweights import read_int8

    found = read_int8(path)
    if found is not None:
        return found
    return load_weight_set(path).config, None


def _quant_rows(qnet: Any) -> List[Dict[str, Any]]:
    """Per-layer int8 parameters of a QuantizedNet, for ``info``."""
    from .quantization import GEMM_KINDS, PAIR_LIMIT, pair_sums, split_weight_offset

    rows = []
    for layer in list(qnet.layers) + ([qnet.classifier] if qnet.classifier is not None else []):
        ws = layer.weight_scale
        out = layer.output
        if out is None and qnet.logits_output is not None:  # an imported file's int8 logits
            out = qnet.logits_output
        zero_pointed = layer.weight.dtype.itemsize > 1  # int16: code - zero point (a legacy uint8 file)
        per_channel = ws.size > 1 and float(ws.min()) != float(ws.max())
        kind = ("8-bit with a zero point (int8 + offset {:d})".format(split_weight_offset(layer.weight)[1])
                if zero_pointed else "int8")
        rows.append({
            "name": layer.spec.name, "weights": f"{kind} per {'output channel' if per_channel else 'tensor'}",
            "activations": "uint8 per tensor",
            "weight_scale_min": float(ws.min()), "weight_scale_max": float(ws.max()),
            "input_scale": layer.input.scale, "input_zero_point": layer.input.zero_point,
            "output": "float32 logits" if out is None else "uint8 logits" if layer.output is None else "uint8",
            "output_scale": None if out is None else out.scale,
            "output_zero_point": None if out is None else out.zero_point,
            "clamp": None if out is None else list(layer.clamp if layer.output is not None else (0, 255)),
            # |q[2j, n]| + |q[2j+1, n]| <= 128 on every pair (vpmaddubsw exact); None: depthwise
            "pairs_within_limit": (int(pair_sums(layer.weight).max()) <= PAIR_LIMIT
                                   if layer.spec.kind in GEMM_KINDS else None),
        })
    return rows


def _format_quant_rows(rows: List[Dict[str, Any]]) -> str:
    head = f"{'layer':<14}{'weights':>8}{'w scale min..max':>22}{'in scale':>11}{'zp':>4}{'out scale':>11}{'zp':>4}{'clamp':>10}"
    lines = [head, "-" * len(head)]
    for r in rows:
        out = ("float32 logits".rjust(26) if r["output_scale"] is None else
               f"{r['output_scale']:>11.4g}{r['output_zero_point']:>4}{'%d..%d' % tuple(r['clamp']):>10}")
        short = "8b+zp" if "zero point" in r["weights"] else "int8"  # weights that had a zero point
        lines.append(f"{r['name']:<14}{short:>8}{r['weight_scale_min']:>11.3g}..{r['weight_scale_max']:<9.3g}"
                     f"{r['input_scale']:>11.4g}{r['input_zero_point']:>4}{out}")
    return "\n".join(lines)


def _cmd_info(args: argparse.Namespace) -> int:
    from . import cpu_info, default_threads
    from .architecture import MobileNetV1

    alpha, res, classes, padding = 1.0, (224, 224), 1000, "tf_same"
    qnet, precision, size = None, "float32", None
    if args.weights:
        cfg, qnet = _read_any(args.weights)
        alpha, res, classes, padding = cfg.alpha, cfg.resolution, cfg.num_classes, cfg.padding
        precision, size = ("int8" if qnet is not None else "float32"), os.path.getsize(args.weights)
    arch = MobileNetV1(args.alpha if args.alpha is not None else alpha,
                       args.resolution if args.resolution is not None else (int(res[0]), int(res[1])),
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
            "precision": precision, "file_bytes": size,
            "quantization": _quant_rows(qnet) if qnet is not None else None,
        }, indent=2))
        return 0
    print(arch.format_table())
    print()
    if args.weights:
        what = ("int8: 8-bit weights, uint8 activations, int32 accumulators (per layer below)"
                if qnet is not None else "float32 (every layer)")
        print(f"weights: {args.weights}, {size:,} bytes; precision {what}")
        if cfg.source:
            print(f"source: {cfg.source}")
        if qnet is not None:
            print()
            print(_format_quant_rows(_quant_rows(qnet)))
        print()
    feats = ", ".join(k for k, on in cpu["features"].items() if on) or "none"
    print(f"CPU: {cpu['arch']}; features: {feats}")
    print(f"kernel paths compiled: {', '.join(cpu['compiled_isas'])}; supported here: "
          f"{', '.join(cpu['supported_isas'])}; selected: {cpu['selected_isa']}")
    chosen = cpu.get("kernels", {}).get(cpu["selected_isa"] or "", {})
    if chosen:
        print("kernels it runs: " + ", ".join(f"{family} {name}" for family, name in chosen.items()))
    print(f"threads by default: {default_threads()} (physical cores this process may run on)")
    if cpu.get("error"):
        print(f"warning: {cpu['error']}")
    return 0


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
    from .qweights import read_int8

    found = read_int8(args.src, args.src_format)
    if found is not None:
        return _convert_int8(args, *found)
    ws = load_weight_set(args.src, fmt=args.src_format)
    if args.resolution is not None:
        from .architecture import MobileNetV1

        MobileNetV1(ws.config.alpha, args.resolution, ws.config.num_classes, ws.config.padding)  # validates
        ws = WeightSet(replace(ws.config, resolution=tuple(args.resolution)), ws.tensors)
    overrides = {k: v for k, v in (("padding", args.padding), ("activation", args.activation),
                                   ("input_mean", args.input_mean), ("input_std", args.input_std))
                 if v is not None}
    if overrides:
        ws = WeightSet(replace(ws.config, **overrides), ws.tensors)
        ws.config.architecture()  # validates the padding
        if any(v == 0 for v in ws.config.input_std):
            raise InputError("--input-std must not contain 0")
    if args.labels:
        from .weights import read_labels

        ws = ws.with_labels(read_labels(args.labels))
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


def _convert_int8(args: argparse.Namespace, cfg: Any, qnet: Any) -> int:
    """``convert`` of an int8 model (ours, or a quantised .tflite): to our int8 .safetensors, with
    new labels or resolution; the quantisation is kept as it is."""
    from dataclasses import replace

    from .errors import InputError
    from .qweights import save_quantized

    if args.dst.lower().endswith(".onnx"):
        raise InputError(f"{args.src} is an int8 model: exporting int8 to ONNX is not supported (yet); "
                         "convert the float32 weights it was made from")
    changed = [f"--{k.replace('_', '-')}" for k in ("padding", "activation", "input_mean", "input_std")
               if getattr(args, k) is not None]
    if changed:
        raise InputError(f"{', '.join(changed)} would change what the int8 parameters of {args.src} were "
                         "calibrated for: convert the float32 weights, then quantise them again")
    if args.resolution is not None:
        from .architecture import MobileNetV1

        MobileNetV1(cfg.alpha, args.resolution, cfg.num_classes, cfg.padding)  # validates
        cfg = replace(cfg, resolution=tuple(args.resolution))
    if args.labels:
        from .weights import read_labels

        labels = read_labels(args.labels)
        if len(labels) != cfg.num_classes:
            raise InputError(f"got {len(labels)} labels for a model with {cfg.num_classes} classes")
        cfg = replace(cfg, labels=tuple(labels))
    print(f"read {args.src}: int8 MobileNetV1 alpha={cfg.alpha:g}, resolution={cfg.resolution[0]}x"
          f"{cfg.resolution[1]}, classes={cfg.num_classes}, padding={cfg.padding}, "
          f"labels={'yes' if cfg.labels else 'no'}")
    save_quantized(args.dst, cfg, qnet)
    print(f"wrote {args.dst} ({os.path.getsize(args.dst):,} bytes)")
    return 0


# --------------------------------------------------------------------------------- quantize

def _decode_all(model: Any, paths: List[str], what: str, progress: bool) -> Tuple[Any, List[str]]:
    """Preprocess ``paths`` for ``model``: (batch, the paths that decoded). Failures get their
    stderr line and are left out; none decoding is an :class:`InputError`."""
    import numpy as np

    from .errors import InputError
    from .preprocess import try_preprocess

    good, kept = [], []
    bar = _progress_bar(len(paths), f"reading {what} images", progress, unit="image")
    try:
        for path in paths:
            x, reason = try_preprocess(model.preprocess, path, path)
            if x is None:
                bar.write(f"mobilenet-fast: {path}: {reason}\n", sys.stderr)
            else:
                good.append(x)
                kept.append(path)
            bar.update(1)
    finally:
        bar.close()
    if not good:
        raise InputError(f"none of the {len(paths)} {what} images could be read")
    return np.concatenate(good), kept


def _image_list(paths: List[str], what: str) -> List[str]:
    from .errors import InputError

    images, empty = find_images(paths)
    for d in empty:
        print(f"mobilenet-fast: warning: {d}: no images found", file=sys.stderr)
    if not images:
        raise InputError(f"no {what} images found in {', '.join(paths)}")
    return images


def _cmd_quantize(args: argparse.Namespace) -> int:
    import numpy as np

    from .errors import InputError
    from .quantization import agreement, quantize

    out = args.out
    if os.path.exists(out) and not args.force:
        raise InputError(f"{out} exists; pass --force to overwrite it")
    if not out.lower().endswith(".safetensors"):
        raise InputError(f"{out!r}: an int8 model is written as .safetensors")
    model = _load(args.weights, args.isa, args.threads, args.labels, precision="float32")
    calib = _image_list(args.calibration, "calibration")
    if args.eval:
        held = _image_list(args.eval, "evaluation")
    else:
        held = calib[3::4]
        calib = [p for i, p in enumerate(calib) if i % 4 != 3]
    if len(calib) > args.max_calibration:
        pick = np.linspace(0, len(calib) - 1, args.max_calibration).round().astype(int)
        calib = [calib[i] for i in sorted(set(pick.tolist()))]
    show = _show_progress(args.progress, len(calib))
    x_cal, calib = _decode_all(model, calib, "calibration", show)
    if not args.json:
        print(f"calibrating on {len(calib)} images ({args.method} ranges, "
              f"{'no ' if args.no_bias_correction else ''}bias correction, "
              f"{'no ' if args.no_pair_limit else ''}pair limit)...", file=sys.stderr)
    t0 = time.perf_counter()
    qmodel = quantize(model, x_cal, method=args.method, percentile=args.percentile,
                      bias_correction=not args.no_bias_correction, pair_limit=not args.no_pair_limit)
    seconds = time.perf_counter() - t0
    qmodel.save(out)
    result: Dict[str, Any] = {
        "output": out, "bytes": os.path.getsize(out), "weights": model.path, "calibration_images": len(calib),
        "method": args.method, "bias_correction": not args.no_bias_correction,
        "pair_limit": not args.no_pair_limit, "pairs_within_limit": qmodel.qnet.pairs_within_limit(),
        "seconds": round(seconds, 2),
        "eval_images": 0, "agreement": None, "confident_images": 0, "agreement_confident": None,
    }
    if held and model.num_classes:
        x_eval, held = _decode_all(model, held, "evaluation", _show_progress(args.progress, len(held)))
        ref = model.predict(x_eval)
        same, conf = agreement(qmodel.logits(x_eval), ref, ref)
        n_conf = int((ref.max(axis=1) >= 0.5).sum())
        result.update(eval_images=len(held), agreement=same, confident_images=n_conf,
                      agreement_confident=None if n_conf == 0 else conf)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"wrote {out} ({result['bytes']:,} bytes): int8 MobileNetV1 alpha={model.config.alpha:g}, "
          f"calibrated on {len(calib)} images in {seconds:.1f} s")
    if result["agreement"] is None:
        why = "the model has no classifier" if not model.num_classes else "no images were held out (pass --eval)"
        print(f"agreement with float32: not measured ({why})")
    else:
        n = result["eval_images"]
        line = (f"top-1 agreement with float32 on {n} held-out images: {100 * result['agreement']:.1f}% "
                f"({round(result['agreement'] * n)}/{n})")
        if n_conf:
            line += (f"; where float32 is confident (p >= 0.5): {100 * conf:.1f}% "
                     f"({round(conf * n_conf)}/{n_conf})")
        print(line)
    return 0


# ------------------------------------------------------------------------------------ bench

def _arm_prediction(model: Any, arch: Any) -> Optional[Tuple[str, float, float]]:
    """(core, GHz, predicted ms per image on one core) from the llvm-mca model when this is an ARM
    core the model covers and its clock is known, else None."""
    from .armmodel import detect_core, predict

    core = detect_core()
    if core is None or core.ghz is None:
        return None
    dot = str(model.isa) in ("neon_dotprod", "neon_i8mm")
    return core.name, core.ghz, predict(core.name, arch, model.precision, dot) / (core.ghz * 1e6)


def _cmd_bench(args: argparse.Namespace) -> int:
    import numpy as np

    from . import __version__

    model = _load(args.weights, args.isa, args.threads, precision=args.precision)
    threads = model.threads
    h, w = args.resolution or model.resolution
    arch = model.architecture((h, w))  # validates the size
    macs = arch.total_macs
    x = np.random.default_rng(0).uniform(-1, 1, (args.batch, h, w, 3)).astype(np.float32)
    fn = model.logits if model.num_classes else model.features  # no classifier: pooled features

    fn(x)  # builds (and caches) the plan for this input size
    for _ in range(args.warmup):
        fn(x)
    times: List[float] = []
    bar = _progress_bar(args.runs, "timing", _show_progress(args.progress, args.runs))
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
    predicted = _arm_prediction(model, arch)
    if args.json:
        print(json.dumps({
            "version": __version__, "weights": model.path, "precision": model.precision, "isa": model.isa,
            "threads": threads,
            "batch": args.batch, "resolution": [h, w], "alpha": c.alpha, "num_classes": c.num_classes,
            "runs": args.runs, "warmup": args.warmup, "macs_per_image": macs,
            "median_ms": median, "min_ms": float(t.min()), "p90_ms": p90, "mean_ms": float(t.mean()),
            "images_per_s": images_per_s, "gflops": gflops, "peak_gflops_per_core": args.peak_gflops,
            "percent_of_peak": percent, "times_ms": times,
            "arm_model": None if predicted is None else {
                "core": predicted[0], "ghz": predicted[1], "predicted_ms_per_image_1_thread": predicted[2],
                "measured_ms_per_image_1_thread_equivalent": median * threads / args.batch},
        }, indent=2))
        return 0
    plural = "s" if threads != 1 else ""
    print(f"mobilenet-fast {__version__}: MobileNetV1 {float(c.alpha)} at {h}x{w}, {c.num_classes} classes "
          f"({macs / 1e6:.1f}M multiply-adds per image)")
    print(f"{model.precision}, isa {model.isa}, {threads} thread{plural}, batch {args.batch}; "
          f"{args.runs} timed runs after {args.warmup} warm-up")
    print()
    # int8 multiply-adds are integer operations: GOP/s, against the int8 dot-product peak.
    rate = "GFLOP/s" if model.precision == "float32" else "GOP/s"
    cols = ["median ms", "min ms", "p90 ms", "img/s", rate] + (["% of peak"] if percent is not None else [])
    vals = [f"{median:.2f}", f"{t.min():.2f}", f"{p90:.2f}", f"{images_per_s:.1f}", f"{gflops:.1f}"]
    if percent is not None:
        vals.append(f"{percent:.1f}")
    print("".join(f"{col:>12}" for col in cols))
    print("".join(f"{v:>12}" for v in vals))
    print()
    if predicted is not None:
        core, ghz, ms = predicted
        per_image = median * threads / args.batch
        print(f"llvm-mca model for this core ({core}, bench/arm_model.py): {ms:.1f} ms per image on one core at "
              f"{ghz:g} GHz, compute-bound (a lower bound); measured {per_image:.1f} ms per image x cores used. "
              "Please tell us both numbers.")
        print()
    if percent is not None:
        print(f"{rate} = 2 x multiply-adds x img/s; % of peak = {rate} / ({args.peak_gflops:g} {rate} per core "
              f"x {threads} thread{plural})")
    else:
        print(f"{rate} = 2 x multiply-adds x img/s")
        what = "FMA" if model.precision == "float32" else "int8 dot-product"
        print(f"for a % of peak column, pass --peak-gflops G: one core's {model.isa} {what} peak, as "
              "mbf_kernels_bench prints it")
    return 0


# ------------------------------------------------------------------------------------- main

def _silence_stdout() -> None:
    """After a broken pipe (``mobilenet-fast classify dir | head``): no second error at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``mobilenet-fast`` console script; returns the exit code."""
    from .errors import MobileNetFastError

    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    commands = {"classify": _cmd_classify, "info": _cmd_info, "convert": _cmd_convert, "quantize": _cmd_quantize,
                "bench": _cmd_bench}
    try:
        return commands[args.command](args)
    except BrokenPipeError:
        _silence_stdout()
        return 1
    except (MobileNetFastError, OSError) as e:
        print(f"mobilenet-fast: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nmobilenet-fast: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
