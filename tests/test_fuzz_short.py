"""A short pass of the fuzzer (fuzz/run.py) over every importer: mutated real files must load or be
refused with our own exception types, never crash, hang or allocate what they declare.

A few hundred inputs per format with a fixed run seed (``MOBILENET_FAST_FUZZ_SEED`` picks another,
``MOBILENET_FAST_FUZZ_ITERATIONS`` another count); formats whose libraries are missing are skipped
by the fuzzer and listed here. The long run (10,000+ inputs per format) is documented in
fuzz/README.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(ROOT, "fuzz", "run.py")
ITERATIONS = int(os.environ.get("MOBILENET_FAST_FUZZ_ITERATIONS", "300"))
SEED = int(os.environ.get("MOBILENET_FAST_FUZZ_SEED", "20240601"))


@pytest.mark.slow
def test_fuzz_short(tmp_path):
    if not os.path.exists(RUN):
        pytest.skip("fuzz/ is not part of this checkout (installed package only)")
    summary_path = tmp_path / "summary.json"
    cmd = [sys.executable, RUN, "--formats", "all", "--iterations", str(ITERATIONS), "--seed", str(SEED),
           "--jobs", "2", "--warnings-as-errors", "--quiet", "--out", str(tmp_path / "findings"),
           "--seed-dir", str(tmp_path / "seeds"), "--json", str(summary_path)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=900)
    report = f"$ {' '.join(cmd)}\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    assert proc.returncode in (0, 1), report  # 2: the run could not start (a seed does not load...)
    summary = json.loads(summary_path.read_text())
    assert not summary["findings"], report
    assert proc.returncode == 0, report
    assert "ours" in summary["formats"], report  # needs only safetensors, a core dependency
    for fmt, counts in summary["formats"].items():
        assert counts["inputs"] == ITERATIONS, (fmt, counts)
        assert counts["loaded"] + counts["refused"] == ITERATIONS, (fmt, counts)
        # A mutator that never leaves a loadable file, or never breaks one, is not doing its job.
        assert 0 < counts["loaded"] < ITERATIONS and counts["refused"] > ITERATIONS // 4, (fmt, counts)
    for reason in summary["skipped"]:
        print(f"fuzz: skipped {reason}")


def test_harness_sees_crashes_hangs_and_allocations(tmp_path):
    """--selftest makes the workers misbehave on purpose (inputs i % 6 = 1..5): each must be reported."""
    if not os.path.exists(RUN):
        pytest.skip("fuzz/ is not part of this checkout (installed package only)")
    summary_path = tmp_path / "summary.json"
    cmd = [sys.executable, RUN, "--formats", "ours", "--iterations", "6", "--seed", "0", "--jobs", "2",
           "--timeout", "3", "--rss-limit-mb", "256", "--selftest", "--quiet", "--out", str(tmp_path / "findings"),
           "--seed-dir", str(tmp_path / "seeds"), "--json", str(summary_path)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    report = f"$ {' '.join(cmd)}\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    assert proc.returncode == 1, report
    findings = {f["index"]: f for f in json.loads(summary_path.read_text())["findings"]}
    assert sorted(findings) == [1, 2, 3, 4, 5], report
    assert findings[1]["kind"] == "crash" and "SIGSEGV" in findings[1]["etype"], report
    assert findings[2]["kind"] == "hang", report
    assert findings[3]["kind"] == "memory" and findings[3]["etype"] == "MemoryError", report
    assert findings[4]["kind"] == "memory" and "peak RSS" in findings[4]["msg"], report
    assert findings[5]["kind"] == "exception" and findings[5]["etype"] == "KeyError", report
    for f in findings.values():  # each input is kept with a note saying how to reproduce it
        assert os.path.exists(f["file"]), f
        with open(os.path.splitext(f["file"])[0] + ".txt") as note_file:
            note = note_file.read()
        assert f"--start {f['index']} --iterations 1" in note and "mutations:" in note
