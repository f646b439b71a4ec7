"""Fuzz the weight loader and every importer with mutated real files.

Usage (from the repository root, with mobilenet-fast installed)::

    python fuzz/run.py --formats all --iterations 10000 --seed 1 --jobs 2
    python fuzz/run.py --formats pb --seed 1 --start 4711 --iterations 1   # one input again
    python fuzz/run.py --replay fuzz-findings/pb-1-4711-exception.pb --format pb

Seeds (small valid files of every format, see :mod:`seeds`) are written to a temporary directory
(or ``--seed-dir``, reused when it already has them) by a child process. ``--jobs`` worker
processes (:mod:`worker`) then derive input ``i`` of format ``f`` deterministically from
``(--seed, f, i)``, load it and report the outcome. This process only dispatches and watches: a
worker that dies (segfault, abort) is a ``crash`` finding, one that takes longer than
``--timeout`` seconds on an input is killed and a ``hang`` finding; either way it is restarted.
Each finding's input is saved in ``--out`` (default ``./fuzz-findings``) with a ``.txt`` next to
it saying what was done to the seed, what happened, and how to reproduce it.

Prints per format: inputs run, loaded, refused (with the most common refusal messages), findings.
Exits 1 if there was any finding, 2 if the run could not start (e.g. a seed does not load).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from formats import FORMATS  # noqa: E402


class Worker:
    """One worker process and its line-buffered protocol channel."""

    def __init__(self, k: int, args: argparse.Namespace, manifest: str, work_root: str, formats: List[str]) -> None:
        self.k = k
        self.work = os.path.join(work_root, f"w{k}")
        self.log_path = os.path.join(work_root, f"worker{k}.log")
        self.log = open(self.log_path, "ab")
        env = dict(os.environ, KERAS_BACKEND="torch", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   MALLOC_ARENA_MAX="2", PYTHONFAULTHANDLER="1", TF_CPP_MIN_LOG_LEVEL="3")
        cmd = ([sys.executable, os.path.join(HERE, "worker.py"), "--manifest", manifest, "--work", self.work,
               "--formats", ",".join(formats), "--seed", str(args.seed), "--as-limit-mb", str(args.as_limit_mb),
               "--rss-limit-mb", str(args.rss_limit_mb), "--timeout", str(args.timeout)] + (["--warnings-as-errors"] if args.warnings_as_errors else [])
               + (["--selftest"] if args.selftest else []))
        self.log_start = self.log.tell()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, env=env)
        self.buf = b""
        self.task: Optional[Tuple[str, int]] = None
        self.started: Optional[Dict[str, Any]] = None
        self.deadline = 0.0
        self.exiting = False  # announced that it exits after its last answer (a fresh one replaces it)

    def fileno(self) -> int:
        return self.proc.stdout.fileno()  # type: ignore[union-attr]

    def send(self, obj: Dict[str, Any]) -> None:
        try:
            self.proc.stdin.write((json.dumps(obj) + "\n").encode())  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError):
            pass  # it died; the main loop sees the end of its output and reports it

    def read_messages(self) -> Optional[List[Dict[str, Any]]]:
        """Complete messages available now; None at end of file (the worker died or exited)."""
        chunk = os.read(self.fileno(), 1 << 16)
        if not chunk:
            return None
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]

    def log_tail(self, n: int = 4000) -> str:
        self.log.flush()
        with open(self.log_path, "rb") as f:
            f.seek(self.log_start)
            return f.read().decode("utf-8", "replace")[-n:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass
        self.log.close()


class Stats:
    def __init__(self) -> None:
        self.inputs = 0
        self.ok = 0
        self.refused = 0
        self.findings = 0
        self.by_variant: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.messages: collections.Counter = collections.Counter()
        self.etypes: collections.Counter = collections.Counter()
        self.warnings: collections.Counter = collections.Counter()
        self.ms = 0.0


def message_key(msg: str) -> str:
    """A refusal message without the file name and the numbers, cut to its first words."""
    msg = re.sub(r"^\S*input[.\w]*:? ", "", msg)
    msg = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", msg)
    msg = re.sub(r"\b\d+\b", "N", msg)
    return " ".join(msg.split()[:7])


def native_where(log_text: str) -> str:
    """The innermost Python frame faulthandler printed for a crash or hang (``file:line``)."""
    frames = re.findall(r'File "([^"]+)", line (\d+)', log_text.rsplit("most recent call first", 1)[-1])
    if not frames:
        return ""
    path, line = frames[0]
    return f"{path.split('site-packages/')[-1]}:{line}"


def build_seeds(seed_dir: str, formats: List[str]) -> Dict[str, Any]:
    manifest_path = os.path.join(seed_dir, "manifest.json")
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            manifest = json.load(f)
        have = {s["format"] for s in manifest["seeds"]} | {s["format"] for s in manifest["skipped"]}
        if set(formats) <= have:
            return manifest
    env = dict(os.environ, KERAS_BACKEND="torch", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, os.path.join(HERE, "seeds.py"), seed_dir, *formats], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"building the seeds failed:\n{proc.stderr[-4000:]}")
    with open(manifest_path) as f:
        return json.load(f)


def save_finding(out_dir: str, args: argparse.Namespace, fmt: str, index: Optional[int], kind: str,
                 started: Optional[Dict[str, Any]], result: Dict[str, Any]) -> str:
    os.makedirs(out_dir, exist_ok=True)
    path = started.get("path") if started else None
    ext = ""
    if path:
        base = os.path.basename(path)
        ext = base[base.index("."):] if "." in base else ""
    stem = os.path.join(out_dir, f"{fmt}-{args.seed}-{index}-{kind}")
    if path and os.path.exists(path):
        shutil.copyfile(path, stem + ext)
    here = os.path.relpath(os.path.join(HERE, "run.py"))
    lines = [
        f"format:    {fmt} (seed variant {started.get('variant') if started else '?'})",
        f"finding:   {kind}",
        f"mutations: {'; '.join(started.get('steps', [])) if started else '?'}",
        "loaded by: " + ("load_weight_set(path) (format detected)" if started and started.get("detect")
                         else f"import_weights(path, {fmt!r})"),
        f"input:     {stem + ext}",
        f"replay:    python {here} --replay {stem + ext}"
        + ("" if started and started.get("detect") else f" --format {fmt}"),
        f"regenerate: python {here} --formats {fmt} --seed {args.seed} --start {index} --iterations 1",
        "",
    ]
    for key in ("etype", "where", "msg", "traceback", "log"):
        if result.get(key):
            lines += [f"--- {key}", str(result[key]), ""]
    with open(stem + ".txt", "w") as f:
        f.write("\n".join(lines))
    return stem + ext


def replay(path: str, fmt: Optional[str]) -> int:
    """Load one file in this process and print what happens (for debugging a finding)."""
    import traceback

    from mobilenet_fast.errors import MobileNetFastError
    from mobilenet_fast.importers import import_weights

    try:
        ws = import_weights(path, fmt)
    except (MobileNetFastError, FileNotFoundError) as e:
        print(f"refused ({type(e).__name__}): {e}")
        return 0
    except BaseException:  # noqa: B902
        traceback.print_exc()
        return 1
    print(f"loaded: {ws!r}")
    return 0


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--formats", default="all", help=f"comma-separated, of: {', '.join(FORMATS)}; or 'all'")
    ap.add_argument("--iterations", type=int, default=1000, help="inputs per format")
    ap.add_argument("--start", type=int, default=0, help="index of the first input (inputs start..start+N-1)")
    ap.add_argument("--seed", type=int, default=0, help="run seed: input i of format f depends on (seed, f, i)")
    ap.add_argument("--jobs", type=int, default=max(1, min(4, os.cpu_count() or 1)), help="worker processes")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds one input may take (a hang beyond)")
    ap.add_argument("--as-limit-mb", type=int, default=2048,
                    help="address space a worker may allocate beyond its start-up size (RLIMIT_AS)")
    ap.add_argument("--rss-limit-mb", type=int, default=1024,
                    help="peak resident memory growth that counts as excessive allocation")
    ap.add_argument("--warnings-as-errors", action="store_true",
                    help="turn warnings into exceptions while loading (as pytest -W error would)")
    ap.add_argument("--selftest", action="store_true",
                    help="check the harness: inputs i with i %% 6 = 1..5 crash, hang, exceed the address space, "
                         "grow the RSS by 400 MB and raise a KeyError instead of loading")
    ap.add_argument("--duration", type=float, default=0, help="stop dispatching after this many seconds (0: no limit)")
    ap.add_argument("--seed-dir", help="where the seed files are written (reused if present); default: temporary")
    ap.add_argument("--out", default="fuzz-findings", help="directory for the inputs of findings")
    ap.add_argument("--json", help="also write the summary as JSON to this file")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    ap.add_argument("--replay", metavar="FILE", help="load one file in-process and print the outcome")
    ap.add_argument("--format", help="format of the --replay file (default: detected, as load_weight_set does)")
    return ap.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.replay:
        return replay(args.replay, args.format)
    formats = list(FORMATS) if args.formats == "all" else [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        print(f"unknown format(s) {unknown}; known: {', '.join(FORMATS)}", file=sys.stderr)
        return 2
    t_start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="mobilenet-fast-fuzz-")
    try:
        return _run(args, formats, tmp, t_start)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(args: argparse.Namespace, formats: List[str], tmp: str, t_start: float) -> int:
    seed_dir = args.seed_dir or os.path.join(tmp, "seeds")
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    log(f"building seeds for {', '.join(formats)} in {seed_dir} ...")
    build_seeds(seed_dir, formats)
    manifest_path = os.path.join(seed_dir, "manifest.json")
    t_seeds = time.monotonic() - t_start

    workers: Dict[int, Worker] = {}
    findings: List[Dict[str, Any]] = []
    stats: Dict[str, Stats] = collections.defaultdict(Stats)
    restarts = 0

    def start_worker(k: int) -> Worker:
        w = Worker(k, args, manifest_path, tmp, formats)
        w.deadline = time.monotonic() + 300  # start-up: imports, seed checks
        return w

    for k in range(max(1, args.jobs)):
        workers[k] = start_worker(k)
    ready_info: Optional[Dict[str, Any]] = None
    pending = set(workers)
    while pending:  # wait until every worker is ready
        r, _, _ = select.select([workers[k] for k in pending], [], [], 5.0)
        for w in r:
            msgs = w.read_messages()
            if msgs is None:
                raise SystemExit(f"worker {w.k} died while starting:\n{w.log_tail()}")
            for msg in msgs:
                if msg.get("ready"):
                    ready_info = msg
                    pending.discard(w.k)
        for k in list(pending):
            if time.monotonic() > workers[k].deadline:
                raise SystemExit(f"worker {k} did not start within 300 s:\n{workers[k].log_tail()}")
    assert ready_info is not None
    if ready_info["broken"]:
        for w in workers.values():
            w.kill()
        print("seed files that do not load unmutated (harness or importer broken):", file=sys.stderr)
        for b in ready_info["broken"]:
            print("  " + b, file=sys.stderr)
        return 2
    active = [f for f in formats if f in ready_info["formats"]]
    skipped = sorted(set(ready_info["skipped"]))
    for s in skipped:
        log(f"skipped: {s}")
    for f in formats:
        if f not in active and not any(s.startswith(f + "/") for s in skipped):
            skipped.append(f"{f}: no seed could be built")
    log(f"seeds ready in {t_seeds:.1f} s; workers use {ready_info['rss_mb']} MB RSS, "
        f"{ready_info['vm_mb']} MB address space (+{args.as_limit_mb} MB allowed)")

    tasks = collections.deque((f, i) for i in range(args.start, args.start + args.iterations) for f in active)
    t_fuzz = time.monotonic()
    last_progress = t_fuzz
    total = len(tasks)
    done = 0

    def dispatch(w: Worker) -> None:
        if not tasks or (args.duration and time.monotonic() - t_fuzz > args.duration):
            w.task = None
            return
        fmt, i = tasks.popleft()
        w.task, w.started = (fmt, i), None
        w.deadline = time.monotonic() + args.timeout
        w.send({"fmt": fmt, "index": i})

    def record(fmt: str, i: int, kind: str, started: Optional[Dict[str, Any]], result: Dict[str, Any]) -> None:
        path = save_finding(args.out, args, fmt, i, kind, started, result)
        findings.append({"format": fmt, "index": i, "kind": kind, "etype": result.get("etype", ""),
                         "where": result.get("where", ""), "msg": str(result.get("msg", ""))[:300],
                         "steps": started.get("steps") if started else None, "file": path})
        msg = str(result.get("msg", ""))
        what = result.get("etype", "") + ("" if msg == result.get("etype") else " " + msg[:160])
        log(f"FINDING {kind} {fmt}#{i}: {what} -> {path}")

    def replace(w: Worker) -> Worker:
        nonlocal restarts
        restarts += 1
        w.kill()
        nw = start_worker(w.k)
        workers[w.k] = nw
        return nw

    for w in workers.values():
        dispatch(w)
    while any(w.task or w.exiting for w in workers.values()):
        waiting = [w for w in workers.values() if w.task is not None or w.exiting]
        timeout = max(0.0, min(w.deadline if w.task else time.monotonic() + 2 for w in waiting) - time.monotonic())
        r, _, _ = select.select(waiting, [], [], min(timeout, 2.0))
        for w in r:
            msgs = w.read_messages()
            if msgs is None:  # ended: a crash if it was working on an input
                rc = w.proc.wait()
                if w.task is not None:
                    fmt, i = w.task
                    sig = -rc if rc < 0 else None
                    what = f"killed by signal {signal.Signals(sig).name}" if sig else f"exited with status {rc}"
                    if w.started is None:
                        what += " before it started the input (while building it from the seed)"
                    stats[fmt].inputs += 1
                    stats[fmt].findings += 1
                    stats[fmt].by_variant[(w.started or {}).get("variant", "?")]["crash"] += 1
                    done += 1
                    log_text = w.log_tail()
                    record(fmt, i, "crash", w.started, {"etype": what, "msg": what, "log": log_text,
                                                        "where": native_where(log_text)})
                nw = replace(w)
                wait_ready(nw)
                dispatch(nw)
                continue
            for msg in msgs:
                if "start" in msg:
                    w.started = msg
                elif "done" in msg:
                    fmt, i = w.task  # type: ignore[misc]
                    st = stats[fmt]
                    st.inputs += 1
                    done += 1
                    st.ms += msg.get("ms", 0.0)
                    variant = (w.started or {}).get("variant", "?")
                    status = msg["status"]
                    st.by_variant[variant][status] += 1
                    for warning in msg.get("warnings", []):
                        st.warnings[warning] += 1
                    if status == "ok":
                        st.ok += 1
                    elif status == "refused":
                        st.refused += 1
                        st.etypes[msg["etype"]] += 1
                        st.messages[message_key(msg["msg"])] += 1
                    else:
                        st.findings += 1
                        record(fmt, i, msg.get("kind", "?"), w.started, msg)
                    w.task = None
                    if msg.get("exiting"):
                        w.exiting = True  # replaced when its output ends
                    else:
                        dispatch(w)
        now = time.monotonic()
        for w in list(workers.values()):
            if w.task is not None and now > w.deadline:  # hang
                fmt, i = w.task
                stats[fmt].inputs += 1
                stats[fmt].findings += 1
                stats[fmt].by_variant[(w.started or {}).get("variant", "?")]["hang"] += 1
                done += 1
                w.proc.send_signal(signal.SIGABRT)  # faulthandler prints where it was stuck
                try:
                    w.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
                log_text = w.log_tail()
                record(fmt, i, "hang", w.started, {"etype": f"no answer within {args.timeout:g} s",
                                                     "msg": f"no answer within {args.timeout:g} s",
                                                     "log": log_text, "where": native_where(log_text)})
                nw = replace(w)
                wait_ready(nw)
                dispatch(nw)
        if now - last_progress > 10:
            last_progress = now
            rate = done / max(now - t_fuzz, 1e-9)
            log(f"  {done}/{total} inputs, {rate:.1f}/s, {len(findings)} finding(s), {restarts} restart(s)")

    for w in workers.values():
        try:
            w.proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass
        w.kill()
    elapsed = time.monotonic() - t_start
    summary = report(args, formats, active, skipped, stats, findings, elapsed, time.monotonic() - t_fuzz, restarts)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    return 1 if findings else 0


def wait_ready(w: Worker) -> None:
    while True:
        r, _, _ = select.select([w], [], [], max(0.0, w.deadline - time.monotonic()))
        if not r:
            raise SystemExit(f"worker {w.k} did not restart:\n{w.log_tail()}")
        msgs = w.read_messages()
        if msgs is None:
            raise SystemExit(f"worker {w.k} died while restarting:\n{w.log_tail()}")
        if any(m.get("ready") for m in msgs):
            return


def report(args: argparse.Namespace, formats: List[str], active: List[str], skipped: List[str],
           stats: Dict[str, Stats], findings: List[Dict[str, Any]], elapsed: float, fuzz_time: float,
           restarts: int) -> Dict[str, Any]:
    print(f"fuzz: seed {args.seed}, inputs {args.start}..{args.start + args.iterations - 1} per format, "
          f"{args.jobs} job(s), {elapsed:.0f} s in all ({fuzz_time:.0f} s fuzzing), {restarts} worker restart(s)")
    print(f"{'format':8s} {'inputs':>8s} {'loaded':>8s} {'refused':>8s} {'findings':>9s} {'ms/input':>9s}")
    out: Dict[str, Any] = {"seed": args.seed, "start": args.start, "iterations": args.iterations, "jobs": args.jobs,
                           "seconds": round(elapsed, 1), "formats": {}, "skipped": skipped, "findings": findings}
    for f in formats:
        st = stats.get(f)
        if f not in active or st is None:
            print(f"{f:8s} {'skipped':>8s}")
            continue
        print(f"{f:8s} {st.inputs:8d} {st.ok:8d} {st.refused:8d} {st.findings:9d} {st.ms / max(st.inputs, 1):9.1f}")
        out["formats"][f] = {"inputs": st.inputs, "loaded": st.ok, "refused": st.refused, "findings": st.findings,
                             "by_variant": {v: dict(c) for v, c in st.by_variant.items()},
                             "refused_by_type": dict(st.etypes), "top_refusals": st.messages.most_common(12),
                             "warnings": dict(st.warnings)}
    for s in skipped:
        print(f"  skipped {s}")
    for f in active:
        st = stats.get(f)
        if st is None:
            continue
        print(f"\n{f}: by seed variant " + ", ".join(f"{v} {dict(c)}" for v, c in sorted(st.by_variant.items())))
        print(f"{f}: refusals by type " + ", ".join(f"{k} {v}" for k, v in st.etypes.most_common()))
        for m, n in st.messages.most_common(8):
            print(f"  {n:6d}  {m}")
        for w, n in st.warnings.most_common(5):
            print(f"  warning x{n}: {w}")
    if findings:
        print(f"\n{len(findings)} finding(s), inputs in {args.out}/:")
        def signature(x: Dict[str, Any]) -> Tuple[str, str, str, str]:
            return (x["format"], x["kind"], x["etype"], x["where"])

        for sig, n in collections.Counter(signature(x) for x in findings).most_common():
            example = next(x for x in findings if signature(x) == sig)
            print(f"  {n:5d} x {sig[0]} {sig[1]}: {sig[2]} at {sig[3] or '?'}  e.g. #{example['index']}: "
                  f"{example['msg'][:120]}")
    else:
        print("\nno findings")
    return out


if __name__ == "__main__":
    sys.exit(main())
