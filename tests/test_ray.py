"""mobilenet_fast.ray and ``classify --ray`` on a real local Ray cluster (ray.init, 2 CPUs).

Needs the [ray] extra (``pip install 'mobilenet-fast[ray]'``); without it every test here is
skipped with that reason. Every result is compared with the same images classified on one
machine, bit for bit.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="needs the [ray] extra: pip install 'mobilenet-fast[ray]'")
pytest.importorskip("ray.data", reason="needs the [ray] extra: pip install 'mobilenet-fast[ray]'")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

import mobilenet_fast as mf  # noqa: E402
import mobilenet_fast.ray as mfr  # noqa: E402
from mobilenet_fast.cli import main  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EXAMPLES = [os.path.join(ROOT, "examples", n) for n in ("coffee.png", "chelsea.png")]


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance on 127.0.0.1 with 2 CPUs and a small object store, for this module."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, object_store_memory=96 * 1024 * 1024, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> List[str]:
    """Photos, synthetic images of odd sizes and modes (PNG, JPEG, grey, RGBA), a corrupt file and
    an empty one."""
    from PIL import Image

    d = tmp_path_factory.mktemp("ray_images")
    rng = np.random.default_rng(7)
    paths = list(EXAMPLES)
    for i in range(22):
        h, w = int(rng.integers(40, 300)), int(rng.integers(40, 300))
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        mode, ext = [("RGB", "png"), ("RGB", "jpg"), ("L", "png"), ("RGBA", "png")][i % 4]
        im = Image.fromarray(a).convert(mode)
        p = str(d / f"img_{i:02d}.{ext}")
        im.save(p)
        paths.append(p)
    bad = d / "corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    empty = d / "empty.jpg"
    empty.write_bytes(b"")
    return paths + [str(bad), str(empty)]


def local_json(paths: List[str], *extra: str, capsys: Any) -> Dict[str, Dict[str, Any]]:
    """``mobilenet-fast classify --json`` on one machine, keyed by image path."""
    capsys.readouterr()
    code = main(["classify", *paths, "--json", "--no-progress", *extra])
    out = capsys.readouterr().out
    assert code in (0, 1)
    return {e["image"]: e for e in json.loads(out)}


def assert_same_as_local(rows: List[Dict[str, Any]], want: Dict[str, Dict[str, Any]]) -> None:
    got = {r["image"]: r for r in rows}
    assert len(got) == len(rows), "an image came out twice"
    assert set(got) == set(want)
    for path, w in want.items():
        r = got[path]
        if "error" in w:
            assert r["labels"] is None and r["error"] == w["error"], path
            continue
        assert r["error"] is None, (path, r["error"])
        assert r["labels"] == [t["label"] for t in w["top"]], path
        assert r["indices"] == [t["index"] for t in w["top"]], path
        # JSON keeps 9 significant digits, which round-trip float32 exactly: compare the bits.
        want_p = np.array([t["probability"] for t in w["top"]], np.float32)
        got_p = np.array(r["probabilities"], np.float32)
        assert want_p.tobytes() == got_p.tobytes(), path


def rows_of(ds: Any) -> List[Dict[str, Any]]:
    return [dict(r) for r in ds.take_all()]


# ------------------------------------------------------------------------------ no cluster needed

def test_predictor_in_process_every_input_kind(images):
    """The callable on hand-made batches: paths, bytes, uint8 arrays and normalised float32 give the
    same result as Model.classify; a bad image is a row with its error."""
    model = mf.load()
    pred = mfr.Predictor(top=3, threads=1)
    assert "Predictor(" in repr(pred) and "top=3" in repr(pred)
    paths = EXAMPLES + [images[-2]]
    want = [model.classify(p, top=3) for p in EXAMPLES]
    by_path = pred({"path": np.array(paths, dtype=object)})
    blobs = np.array([open(p, "rb").read() for p in paths], dtype=object)
    by_bytes = pred({"bytes": blobs, "path": np.array(paths, dtype=object), "id": np.arange(3)})
    assert by_bytes.column("id").to_pylist() == [0, 1, 2]  # other columns pass through
    from PIL import Image

    arrays = np.empty(2, dtype=object)
    arrays[:] = [np.asarray(Image.open(p).convert("RGB")) for p in EXAMPLES]
    by_array = pred({"image": arrays})
    floats = np.concatenate([model.preprocess(p) for p in EXAMPLES])
    floats.setflags(write=False)  # Ray's zero-copy batches are read-only
    by_float = pred({"image": floats})
    for table in (by_path, by_bytes, by_array, by_float):
        for i, w in enumerate(want):
            assert table.column("indices")[i].as_py() == [p.index for p in w]
            assert table.column("labels")[i].as_py() == [p.label for p in w]
            assert np.array(table.column("probabilities")[i].as_py(), np.float32).tolist() == \
                np.array([p.probability for p in w], np.float32).tolist()
    for table in (by_path, by_bytes):
        assert table.column("labels")[2].as_py() is None
        assert "not a readable image" in table.column("error")[2].as_py()
        assert "BytesIO" not in table.column("error")[2].as_py()
    assert by_path.column("image").to_pylist() == paths
    assert "image" not in by_array.column_names


def test_predictor_outputs_and_bad_arguments():
    model = mf.load()
    x = np.concatenate([model.preprocess(p) for p in EXAMPLES])
    feats = mfr.Predictor(output="features", threads=1)({"image": x})
    assert np.array(feats.column("features").to_pylist(), np.float32).tobytes() == model.features(x).tobytes()
    logits = mfr.Predictor(output="logits", threads=1)({"image": x})
    assert np.array(logits.column("logits").to_pylist(), np.float32).tobytes() == model.logits(x).tobytes()
    with pytest.raises(mf.InputError, match="output must be one of"):
        mfr.Predictor(output="probabilities")
    with pytest.raises(mf.InputError, match="top must be a positive int"):
        mfr.Predictor(top=0)
    with pytest.raises(KeyError, match="needs a 'bytes', 'image' or 'path' column"):
        mfr.Predictor(threads=1)({"pixels": np.zeros(1)})
    with pytest.raises(KeyError, match="input_column 'data' is not in the batch"):
        mfr.Predictor(threads=1, input_column="data")({"image": x})
    named = mfr.Predictor(output="logits", threads=1, input_column="data")({"data": x, "id": np.arange(2)})
    assert named.column_names == ["id", "logits", "error"]
    assert np.array(named.column("logits").to_pylist(), np.float32).tobytes() == model.logits(x).tobytes()
    assert mfr.assigned_cpus(default=3) == 3  # outside Ray


# --------------------------------------------------------------------------------- on the cluster

def test_threads_follow_the_cpus_ray_assigns(cluster):
    @ray.remote(num_cpus=2)
    def threads_of_a_predictor() -> int:
        return mfr.Predictor().model.threads

    @ray.remote(num_cpus=1)
    def threads_of_a_one_cpu_predictor() -> int:
        return mfr.Predictor().model.threads

    assert ray.get(threads_of_a_predictor.remote()) == 2
    assert ray.get(threads_of_a_one_cpu_predictor.remote()) == 1


@pytest.mark.parametrize("batch_size,actors,cpus", [(1, 2, 1), (5, 1, 2), (64, 2, 1)])
def test_classify_dataset_equals_one_machine(cluster, images, capsys, batch_size, actors, cpus):
    """Every image's top-5 is bitwise the CLI's on one machine, whatever the batch split."""
    want = local_json(images, capsys=capsys)
    ds = ray.data.from_items([{"path": p} for p in images], override_num_blocks=7)
    out = mfr.classify_dataset(ds, top=5, batch_size=batch_size, actors=actors, cpus_per_actor=cpus)
    assert_same_as_local(rows_of(out), want)


def test_read_binary_files_and_int8(cluster, images, capsys):
    """Bytes from ray.data.read_binary_files, the shipped int8 model: same as one machine."""
    good = [p for p in images if os.path.getsize(p) > 0]
    want = local_json(good, "--precision", "int8", "--top", "3", capsys=capsys)
    # read tasks take no CPU: the 2 actors hold both (a 1-CPU read task would wait for ever)
    ds = ray.data.read_binary_files(good, include_paths=True, ray_remote_args={"num_cpus": 0})
    rows = rows_of(mfr.classify_dataset(ds, top=3, precision="int8", batch_size=4, actors=2))
    # read_binary_files reports absolute paths; ours are absolute too (tmp_path)
    assert_same_as_local(rows, want)


def test_embed_dataset(cluster, images):
    model = mf.load()
    photos = images[:6]
    ds = ray.data.from_items([{"path": p} for p in photos], override_num_blocks=3)
    rows = {r["image"]: r for r in rows_of(mfr.embed_dataset(ds, batch_size=2, actors=2))}
    assert set(rows) == set(photos)
    for p in photos:
        want = model.features(model.preprocess(p))[0]
        assert np.array(rows[p]["features"], np.float32).tobytes() == want.tobytes()


def _map_worker_pids() -> List[int]:
    """Processes of Ray Data's actor pool (their title is ray::MapWorker(...))."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if cmd.startswith(b"ray::MapWorker"):
            pids.append(int(entry))
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the actor through /proc")
def test_killed_actor_loses_and_duplicates_nothing(cluster, images, capsys, tmp_path):
    """SIGKILL one actor after the first results arrive: Ray restarts it and retries its batches;
    every image is in the output exactly once, with the same result as on one machine."""
    from PIL import Image

    rng = np.random.default_rng(11)
    many = []
    for i in range(240):
        p = str(tmp_path / f"k{i:03d}.png")
        Image.fromarray(rng.integers(0, 256, (160, 200, 3), dtype=np.uint8)).save(p)
        many.append(p)
    want = local_json(many, capsys=capsys)
    ds = ray.data.from_items([{"path": p} for p in many], override_num_blocks=60)
    out = mfr.classify_dataset(ds, top=5, batch_size=2, actors=2)
    it = iter(out.iter_batches(batch_format="pyarrow", batch_size=None))
    tables = [next(it)]
    pids = _map_worker_pids()
    assert pids, "no Ray Data actor process found"
    os.kill(pids[0], signal.SIGKILL)
    killed_at = sum(t.num_rows for t in tables)
    tables.extend(it)
    rows = [r for t in tables for r in t.to_pylist()]
    assert killed_at < len(many), "the run was over before the kill"
    counts = collections.Counter(r["image"] for r in rows)
    assert [p for p, c in counts.items() if c != 1] == []
    assert_same_as_local(rows, want)


def test_cli_ray_parquet_equals_local_classify(cluster, images, capsys, tmp_path):
    """``classify --ray DIR --output F.parquet`` (on the running cluster) = ``classify --json``,
    row for row joined on the path; failures are rows with an error and a stderr line."""
    d = os.path.dirname(images[-1])
    want = local_json([d], capsys=capsys)
    out = tmp_path / "r.parquet"
    code = main(["classify", "--ray", d, "--output", str(out), "--batch", "3", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1  # the corrupt and the empty file
    assert f"{images[-2]}: " in err and f"{images[-1]}: empty file, not an image" in err
    table = pq.read_table(out)
    assert table.column_names == ["image", "labels", "indices", "probabilities", "error"]
    assert table.schema.field("probabilities").type == pa.list_(pa.float32())
    assert_same_as_local(table.to_pylist(), want)

    # a glob and a parquet of image bytes, --features
    blobs = pa.table({"path": images[:3], "bytes": [open(p, "rb").read() for p in images[:3]]})
    src = tmp_path / "src.parquet"
    pq.write_table(blobs, src)
    feats = tmp_path / "f.parquet"
    assert main(["classify", "--ray", str(src), "--output", str(feats), "--features", "--no-progress"]) == 0
    model = mf.load()
    got = {r["image"]: r for r in pq.read_table(feats).to_pylist()}
    assert set(got) == set(images[:3])
    for p in images[:3]:
        assert np.array(got[p]["features"], np.float32).tobytes() == model.features(model.preprocess(p))[0].tobytes()
    globbed = tmp_path / "g.parquet"
    assert main(["classify", "--ray", os.path.join(d, "img_0*.png"), "--output", str(globbed), "--no-progress"]) == 0
    assert sorted(pq.read_table(globbed).column("image").to_pylist()) == \
        sorted(p for p in images if os.path.basename(p).startswith("img_0") and p.endswith(".png"))


def test_cli_ray_usage_errors(capsys, tmp_path):
    assert main(["classify", "--ray", EXAMPLES[0]]) == 2
    assert "--ray needs --output" in capsys.readouterr().err
    assert main(["classify", EXAMPLES[0], "--output", str(tmp_path / "x.parquet")]) == 2
    assert "--output only with --ray" in capsys.readouterr().err
    assert main(["classify", "--ray", EXAMPLES[0], "--output", "x.parquet", "--json"]) == 2
    assert "not --json" in capsys.readouterr().err
