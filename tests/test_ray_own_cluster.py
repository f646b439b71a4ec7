"""``classify --ray`` with no cluster: it starts a local Ray instance for the run and stops it.

Its own module, so that no cluster of the other Ray tests is running in this process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

ray = pytest.importorskip("ray", reason="needs the [ray] extra: pip install 'mobilenet-fast[ray]'")
pytest.importorskip("ray.data", reason="needs the [ray] extra: pip install 'mobilenet-fast[ray]'")
pq = pytest.importorskip("pyarrow.parquet")

pytestmark = pytest.mark.ray

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = [os.path.join(ROOT, "examples", n) for n in ("coffee.png", "chelsea.png")]


def _raylets() -> list:
    """Raylet processes on this machine (one per running Ray node)."""
    found = []
    for p in os.listdir("/proc"):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                if b"raylet" in f.read().split(b"\0")[0]:
                    found.append(int(p))
        except (OSError, ValueError):
            continue
    return found


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="looks for raylet processes in /proc")
def test_cli_ray_starts_and_stops_its_own_local_cluster(tmp_path):
    """No cluster running and no RAY_ADDRESS: the CLI starts a local one and stops it after."""
    assert not ray.is_initialized()
    deadline = time.time() + 30  # another module's cluster may still be stopping
    while _raylets() and time.time() < deadline:
        time.sleep(0.5)
    if _raylets():
        pytest.skip("a Ray node is running on this machine; this test needs none")
    out = tmp_path / "own.parquet"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    r = subprocess.run([sys.executable, "-m", "mobilenet_fast", "classify", "--ray", *EXAMPLES,
                        "--output", str(out), "--threads", "1"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "wrote 2 rows" in r.stderr
    rows = {x["image"]: x for x in pq.read_table(out).to_pylist()}
    assert rows[EXAMPLES[0]]["labels"][0] == "espresso"
    assert rows[EXAMPLES[1]]["labels"][0] == "tabby"
    deadline = time.time() + 30  # the cluster was stopped with the run
    while _raylets() and time.time() < deadline:
        time.sleep(0.5)
    assert not _raylets()
