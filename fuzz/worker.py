"""Fuzz worker: builds mutated inputs and loads them, in a child process of :mod:`run`.

Protocol (JSON lines): the parent writes ``{"fmt": ..., "index": i}`` to stdin; the worker derives
the input from (run seed, format, index), writes it to ``WORK/input<ext>``, answers
``{"start": i, ...}`` (so the parent knows what was running if the worker dies), loads it with
``import_weights(path, fmt)`` (odd ``i``: ``load_weight_set(path)``, which detects the format from the
extension and, for ``.safetensors``, the header) and answers ``{"done": i, "status": ...}``. Library output that goes
to stdout is redirected to stderr (the worker's log), so the protocol channel stays clean, and
``faulthandler`` writes the native stack of a crash there too.

The oracle, per input:

* ``ok``: the importer returned a :class:`WeightSet` that validates (names, shapes, float32,
  finite values, a config that survives ``to_metadata``/``from_metadata``);
* ``refused``: it raised a :class:`MobileNetFastError` (or ``FileNotFoundError``);
* anything else is a finding: another exception type (``exception``), one of ours that is not
  about files (``error-type``: an :class:`InputError` is about arguments, and we pass none), a
  refusal whose message says an allocation failed (``alloc``: the file made us try to allocate
  what it declared), a
  returned WeightSet that does not validate (``invalid``), a file descriptor left open
  (``fd-leak``), or a peak resident size more than ``--rss-limit-mb`` above the worker's baseline
  (``memory``). Crashes and hangs are detected by the parent.

The address space is capped (``RLIMIT_AS`` = size after start-up + ``--as-limit-mb``), so a file
that makes the importer allocate what it declares fails (MemoryError or the library's own
allocation error) instead of exhausting the machine.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import json
import os
import random
import re
import resource
import sys
import time
import traceback
import warnings
from typing import Any, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import mutate  # noqa: E402
from formats import FORMATS, Variant, unavailable  # noqa: E402

_ALLOC_RE = re.compile(r"MemoryError|[Cc]an'?not allocate|[Uu]nable to allocate|bad_alloc|out of memory|"
                       r"can't allocate|[Ff]ailed to allocate|DefaultCPUAllocator")


def count_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # not Linux
        return -1


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def vmsize_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def _where(tb: Any) -> str:
    """file:line of the deepest mobilenet_fast frame and of the deepest frame overall."""
    frames = traceback.extract_tb(tb)
    ours = [f for f in frames if "mobilenet_fast" in f.filename]
    deepest = frames[-1] if frames else None
    parts = []
    if ours:
        parts.append(f"{os.path.basename(ours[-1].filename)}:{ours[-1].lineno}")
    if deepest is not None and (not ours or deepest is not ours[-1]):
        parts.append(f"{deepest.filename.split('site-packages/')[-1]}:{deepest.lineno}")
    return " <- ".join(reversed(parts))


WARNINGS_AS_ERRORS = False
SELFTEST = False


def _file_errors() -> Tuple[type, ...]:
    from mobilenet_fast.errors import ImportFormatError, MissingDependencyError, WeightFileError

    return (ImportFormatError, WeightFileError, MissingDependencyError, FileNotFoundError)


FILE_ERRORS = _file_errors()


def _selftest_load(index: int) -> Any:
    """``--selftest``: misbehave on purpose, by input index, to check that the parent sees it."""
    import signal

    import numpy as np

    kind = index % 6
    if kind == 1:
        os.kill(os.getpid(), signal.SIGSEGV)
    if kind == 2:
        time.sleep(3600)
    if kind == 3:
        return np.empty(1 << 44, dtype=np.uint8)  # 16 TiB: beyond the address-space limit
    if kind == 4:
        return np.ones(400 << 20, dtype=np.uint8)  # 400 MiB really touched: beyond --rss-limit-mb 256
    if kind == 5:
        return {}["a foreign exception type"]
    return None


#: Formats whose files load as int8 models (mobilenet_fast.load) and are then run once.
INT8_FORMATS = ("int8", "tflite_int8", "onnx_int8")


def _load_int8(path: str, detect: bool) -> Any:
    """An int8 file as ``mobilenet_fast.load`` reads it (``detect``) or through ``load_quantized``."""
    from mobilenet_fast import QuantizedModel, load
    from mobilenet_fast.qweights import load_quantized

    if detect:
        return load(path, threads=1)
    config, qnet = load_quantized(path)
    return QuantizedModel(config, qnet, threads=1)


def _check_int8(model: Any) -> None:
    """A loaded int8 model must run (the C++ int8 network on the file's parameters) and give finite
    numbers of the right shape."""
    import numpy as np

    from mobilenet_fast import QuantizedModel

    if not isinstance(model, QuantizedModel):
        raise TypeError(f"an int8 file loaded as a {type(model).__name__}")
    x = np.random.default_rng(0).normal(0, 1, (1, 32, 40, 3)).astype(np.float32)
    y = model.logits(x) if model.num_classes else model.features(x)
    want = (1, model.num_classes or model.config.architecture().feature_channels)
    if y.shape != want or not np.isfinite(y).all():
        raise ValueError(f"the int8 network gave shape {y.shape} (expected {want}) or values that are not finite")


def check(path: str, fmt: str, detect: bool = False, index: int = 0) -> Dict[str, Any]:
    """Load ``path`` as ``fmt`` (``detect``: as ``load_weight_set(path)`` does, the format from the file)
    and classify the outcome (see the module docstring)."""
    from mobilenet_fast import load_weight_set
    from mobilenet_fast.errors import MobileNetFastError
    from mobilenet_fast.importers import import_weights
    from mobilenet_fast.weights import ModelConfig, WeightSet, validate_tensors

    out: Dict[str, Any] = {}
    fds = count_fds()
    rss = maxrss_mb()
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("error" if WARNINGS_AS_ERRORS else "always")
        try:
            if SELFTEST:
                _selftest_load(index)
            if fmt in INT8_FORMATS:
                ws = _load_int8(path, detect or fmt != "int8")
            else:
                ws = load_weight_set(path) if detect else import_weights(path, fmt)
        except (MobileNetFastError, FileNotFoundError) as e:
            msg = str(e)
            out.update(status="refused", etype=type(e).__name__, msg=msg)
            if _ALLOC_RE.search(msg):
                out.update(status="finding", kind="alloc", where=_where(e.__traceback__))
            elif not isinstance(e, FILE_ERRORS):  # e.g. an InputError: that is about arguments, not files
                out.update(status="finding", kind="error-type", where=_where(e.__traceback__))
        except BaseException as e:  # noqa: B902 - everything else is a finding
            if isinstance(e, KeyboardInterrupt):
                raise
            out.update(status="finding", kind="memory" if isinstance(e, MemoryError) else "exception",
                       etype=type(e).__name__, msg=str(e)[:2000], where=_where(e.__traceback__),
                       traceback="".join(traceback.format_exception(type(e), e, e.__traceback__))[-6000:])
        else:
            try:
                if fmt in INT8_FORMATS:
                    _check_int8(ws)
                elif not isinstance(ws, WeightSet):
                    raise TypeError(f"import_weights returned a {type(ws).__name__}")
                if fmt not in INT8_FORMATS:
                    validate_tensors(ws.tensors, ws.config, "fuzz")
                    for name, t in ws.tensors.items():
                        if not t.flags.c_contiguous:
                            raise ValueError(f"tensor {name!r} is not C-contiguous")
                back = ModelConfig.from_metadata(ws.config.to_metadata(), "fuzz")
                if back != ws.config:
                    raise ValueError(f"config does not survive to_metadata/from_metadata: {ws.config} != {back}")
                out.update(status="ok")
            except Exception as e:  # noqa: BLE001
                out.update(status="finding", kind="invalid", etype=type(e).__name__, msg=str(e)[:2000],
                           traceback="".join(traceback.format_exception(type(e), e, e.__traceback__))[-6000:])
            del ws
    out["ms"] = round(1000 * (time.perf_counter() - t0), 1)
    if caught:
        out["warnings"] = sorted({f"{w.category.__name__}: {str(w.message)[:120]}" for w in caught})
    leaked = count_fds() - fds
    if fds >= 0 and leaked > 0 and out["status"] != "finding":
        out.update(status="finding", kind="fd-leak", msg=f"{leaked} file descriptor(s) left open "
                   f"(after: {sorted(os.listdir('/proc/self/fd'))})", etype=out.get("etype", ""))
    grown = maxrss_mb() - rss
    out["rss_grown_mb"] = round(grown, 1)
    return out


class Seeds:
    """The seed files of the selected formats, with their mutation contexts."""

    def __init__(self, manifest: Dict[str, Any], formats: List[str]) -> None:
        self.by_format: Dict[str, List[Tuple[Variant, bytes, mutate.Context]]] = {}
        self.skipped: List[str] = [f"{s['format']}/{s['variant']}: {s['why']}" for s in manifest.get("skipped", [])]
        for entry in manifest["seeds"]:
            fmt = FORMATS.get(entry["format"])
            if fmt is None or fmt.name not in formats:
                continue
            variant = next(v for v in fmt.variants if v.name == entry["variant"])
            why = unavailable(fmt, variant)
            if why:
                self.skipped.append(f"{fmt.name}/{variant.name}: {why}")
                continue
            with open(entry["path"], "rb") as f:
                data = f.read()
            ctx = mutate.Context(fmt.name, variant.name, variant.ext, [tuple(s) for s in entry["data_spans"]],
                                 len(data))
            self.by_format.setdefault(fmt.name, []).append((variant, data, ctx))

    def make(self, seed: int, fmt: str, index: int) -> Tuple[Variant, bytes, List[str]]:
        """The mutated input (seed, fmt, index): deterministic."""
        rng = random.Random(f"{seed}/{fmt}/{index}")
        variant, data, ctx = self.by_format[fmt][rng.randrange(len(self.by_format[fmt]))]
        try:
            with warnings.catch_warnings():  # zipfile's "Duplicate name" when a mutator doubles a member...
                warnings.simplefilter("ignore")
                new, steps = mutate.mutate(data, rng, ctx, variant.mutators)
        except Exception as e:  # noqa: BLE001 - a mutator bug must not stop the run; it is reported
            new, step = mutate.bit_flips(data, rng, ctx)
            steps = [f"MUTATOR ERROR {type(e).__name__}: {e}", step]
        return variant, new, steps


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--formats", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--as-limit-mb", type=int, default=2048)
    ap.add_argument("--rss-limit-mb", type=int, default=1024)
    ap.add_argument("--warnings-as-errors", action="store_true")
    ap.add_argument("--selftest", action="store_true")
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args(argv)

    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything a library prints goes to the log, not into the protocol
    sys.stdout = sys.stderr
    faulthandler.enable(sys.stderr)

    def send(obj: Dict[str, Any]) -> None:
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    global WARNINGS_AS_ERRORS, SELFTEST
    with open(args.manifest) as f:
        manifest = json.load(f)
    formats = args.formats.split(",")
    seeds = Seeds(manifest, formats)
    for fmt, entries in seeds.by_format.items():  # import now, not while the clock runs on an input
        spec = FORMATS[fmt]
        for mod in (spec.importer,) + spec.needs + tuple(m for v, _, _ in entries for m in v.needs):
            importlib.import_module(mod)
    if "keras" in seeds.by_format:
        # The Keras importer kills its HDF5 child after HDF5_TIMEOUT seconds: well before we call it a hang.
        from mobilenet_fast.importers import keras_h5

        keras_h5.HDF5_TIMEOUT = args.timeout / 2
    os.makedirs(args.work, exist_ok=True)
    # Every seed must load as it is (else the harness or the importer is broken); this also warms up
    # lazy imports and caches, so the fd and memory checks below see only what an input causes.
    broken = []
    for fmt, entries in seeds.by_format.items():
        for variant, data, _ in entries:
            path = os.path.join(args.work, "seed" + variant.ext)
            with open(path, "wb") as f:
                f.write(data)
            for _ in range(2):
                result = check(path, fmt)
            if result["status"] != "ok":
                broken.append(f"{fmt}/{variant.name}: {result}")
            os.remove(path)
    WARNINGS_AS_ERRORS = args.warnings_as_errors  # after the seed checks: those must load either way
    SELFTEST = args.selftest
    base_vm = vmsize_mb()
    if args.as_limit_mb > 0:
        limit = int((base_vm + args.as_limit_mb) * 1024 * 1024)
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    send({"ready": True, "formats": sorted(seeds.by_format), "skipped": seeds.skipped, "broken": broken,
          "vm_mb": round(base_vm), "rss_mb": round(maxrss_mb())})
    base_rss = maxrss_mb()

    last: Optional[str] = None
    for line in sys.stdin:
        task = json.loads(line)
        fmt = task["fmt"]
        if last and os.path.exists(last):
            os.remove(last)
        if "replay" in task:
            path, variant_name, steps = task["replay"], "replay", ["replayed file"]
        else:
            variant, data, steps = seeds.make(args.seed, fmt, task["index"])
            variant_name = variant.name
            path = last = os.path.join(args.work, "input" + variant.ext)
            with open(path, "wb") as f:
                f.write(data)
        detect = task.get("index", 0) % 2 == 1  # odd inputs go through format detection
        send({"start": task.get("index"), "fmt": fmt, "variant": variant_name, "path": path, "steps": steps,
              "detect": detect})
        result = check(path, fmt, detect, task.get("index", 0))
        restart = False
        if maxrss_mb() - base_rss > args.rss_limit_mb and result["status"] != "finding":
            result.update(status="finding", kind="memory", etype=result.get("etype", ""),
                          msg=f"peak RSS grew by {maxrss_mb() - base_rss:.0f} MB while loading "
                              f"(limit {args.rss_limit_mb} MB); outcome: {result.get('msg', 'loaded')}")
            restart = True  # the high-water mark cannot be reset; start afresh
        result.update(done=task.get("index"), fmt=fmt, exiting=restart)
        send(result)
        if restart:
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
