"""The ``mobilenet-fast`` command line: classify, convert, --help, --version, and the console entry."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import mobilenet_fast
from helpers import random_input, random_weights, run_onnxruntime
from mobilenet_fast import cli
from mobilenet_fast.architecture import MobileNetV1
from mobilenet_fast.weights import load_weights, save_weights

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHELSEA = os.path.join(ROOT, "examples", "chelsea.png")
COFFEE = os.path.join(ROOT, "examples", "coffee.png")


@pytest.fixture(scope="module")
def small_weights_file(tmp_path_factory):
    ws = random_weights(0.25, 10, "tf_same", (64, 64), seed=11)
    p = tmp_path_factory.mktemp("cli") / "small.safetensors"
    save_weights(p, ws)
    return ws, p


# ---------------------------------------------------------------------------------- classify

def test_classify_table(capsys):
    assert cli.main(["classify", CHELSEA, COFFEE, "--top", "3"]) == 0
    out, err = capsys.readouterr()
    assert CHELSEA in out and COFFEE in out
    assert "espresso" in out
    assert "cat" in out  # tabby / tiger cat / Egyptian cat
    # 2 header lines + 3 predictions each
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 2 + 2 * 3
    assert err == ""


def test_classify_json(capsys):
    assert cli.main(["classify", CHELSEA, COFFEE, "--top", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["image"] for d in data] == [CHELSEA, COFFEE]
    for d in data:
        top = d["top"]
        assert len(top) == 3
        probs = [t["probability"] for t in top]
        assert probs == sorted(probs, reverse=True)
        assert all(0.0 <= p <= 1.0 for p in probs)
        assert len({t["index"] for t in top}) == 3
    assert data[1]["top"][0]["label"] == "espresso"
    assert data[1]["top"][0]["probability"] > 0.5


def test_classify_bad_image_among_good(tmp_path, capsys):
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is a text file, not a JPEG\n")
    code = cli.main(["classify", str(bad), COFFEE, "--top", "2"])
    out, err = capsys.readouterr()
    assert code == 1
    assert COFFEE in out and "espresso" in out  # the good image is still classified
    assert str(bad) in err
    assert str(bad) not in out
    assert "not a readable image" in err


def test_classify_bad_image_json(tmp_path, capsys):
    bad = tmp_path / "notes.jpg"
    bad.write_text("text\n")
    assert cli.main(["classify", COFFEE, str(bad), "--json", "--top", "1"]) == 1
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert [d["image"] for d in data] == [COFFEE]
    assert str(bad) in err


def test_classify_missing_file(tmp_path, capsys):
    missing = tmp_path / "does_not_exist.png"
    code = cli.main(["classify", CHELSEA, str(missing), "--top", "1"])
    out, err = capsys.readouterr()
    assert code == 1
    assert CHELSEA in out
    assert str(missing) in err and "not found" in err


def test_classify_with_weights_file(small_weights_file, capsys):
    _, p = small_weights_file
    assert cli.main(["classify", COFFEE, "--weights", str(p), "--top", "4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data[0]["top"]) == 4
    assert all(t["label"].startswith("class_") for t in data[0]["top"])


@pytest.mark.parametrize("top", ["0", "-1", "three"])
def test_classify_bad_top(top, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["classify", COFFEE, "--top", top])
    assert e.value.code == 2
    assert "positive integer" in capsys.readouterr().err


# ----------------------------------------------------------------------------------- convert

def test_convert_to_onnx(small_weights_file, tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    ws, src = small_weights_file
    dst = tmp_path / "small.onnx"
    assert cli.main(["convert", str(src), str(dst)]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and str(dst) in out
    assert dst.is_file() and dst.stat().st_size > 0

    model = onnx.load(str(dst))
    onnx.checker.check_model(model)
    x = random_input(2, 64, 64, seed=12)
    ort_logits = run_onnxruntime(model, {"input": x}, ["logits"])[0]
    ours = mobilenet_fast.Model(ws).logits(x)
    assert ort_logits.shape == ours.shape == (2, 10)
    assert np.abs(ours).max() > 0.1  # not trivially zero
    np.testing.assert_allclose(ort_logits, ours, rtol=0, atol=1e-3)


def test_convert_to_safetensors(small_weights_file, tmp_path):
    ws, src = small_weights_file
    dst = tmp_path / "copy.safetensors"
    assert cli.main(["convert", str(src), str(dst)]) == 0
    assert dst.read_bytes() == src.read_bytes()
    assert load_weights(dst).config == ws.config


def test_convert_refuses_overwrite(small_weights_file, tmp_path, capsys):
    _, src = small_weights_file
    dst = tmp_path / "exists.safetensors"
    dst.write_bytes(b"keep me")
    assert cli.main(["convert", str(src), str(dst)]) == 1
    assert "--force" in capsys.readouterr().err
    assert dst.read_bytes() == b"keep me"
    assert cli.main(["convert", str(src), str(dst), "--force"]) == 0
    assert dst.read_bytes() == src.read_bytes()


@pytest.mark.parametrize("name", ["out.bin", "out.pt", "out"])
def test_convert_unknown_extension(small_weights_file, tmp_path, capsys, name):
    _, src = small_weights_file
    dst = tmp_path / name
    assert cli.main(["convert", str(src), str(dst)]) == 1
    err = capsys.readouterr().err
    assert "output format" in err and ".onnx" in err
    assert not dst.exists()


def test_convert_missing_source(tmp_path, capsys):
    assert cli.main(["convert", str(tmp_path / "nope.safetensors"), str(tmp_path / "o.onnx")]) == 1
    assert "not found" in capsys.readouterr().err


def test_convert_bad_source(tmp_path, capsys):
    src = tmp_path / "bad.safetensors"
    src.write_bytes(b"\x00" * 3)
    assert cli.main(["convert", str(src), str(tmp_path / "o.safetensors")]) == 1
    assert "too short" in capsys.readouterr().err
    assert not (tmp_path / "o.safetensors").exists()


def test_convert_labels_resolution_and_from(small_weights_file, tmp_path, capsys):
    ws, src = small_weights_file
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"thing {i}" for i in range(10)) + "\n\n")
    dst = tmp_path / "relabelled.safetensors"
    assert cli.main(["convert", str(src), str(dst), "--from", "ours", "--labels", str(labels),
                     "--resolution", "96x80"]) == 0
    out = capsys.readouterr().out
    assert "alpha=0.25, resolution=64x64, classes=10" not in out  # the override is what gets printed
    assert "resolution=96x80, classes=10, padding=tf_same, activation=relu6" in out and "labels=yes" in out
    back = load_weights(dst)
    assert back.config.labels == tuple(f"thing {i}" for i in range(10))
    assert back.config.resolution == (96, 80)
    for k, t in ws.tensors.items():
        np.testing.assert_array_equal(back.tensors[k], t)
    # the labels reach classify's output, for images at the recorded resolution
    img = tmp_path / "img.png"
    from PIL import Image

    Image.fromarray((random_input(1, 50, 70, seed=3)[0] * 127 + 128).astype(np.uint8)).save(img)
    assert cli.main(["classify", str(img), "--weights", str(dst), "--top", "2", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert all(t["label"].startswith("thing ") for t in res[0]["top"])


def test_convert_labels_must_match_classes(small_weights_file, tmp_path, capsys):
    _, src = small_weights_file
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\nc\n")
    assert cli.main(["convert", str(src), str(tmp_path / "o.safetensors"), "--labels", str(labels)]) == 1
    assert "got 3 labels for a model with 10 classes" in capsys.readouterr().err
    assert not (tmp_path / "o.safetensors").exists()


def test_convert_wrong_from_format(small_weights_file, tmp_path, capsys):
    _, src = small_weights_file
    with pytest.raises(SystemExit):
        cli.main(["convert", str(src), str(tmp_path / "o.safetensors"), "--from", "caffe"])
    assert "invalid choice" in capsys.readouterr().err
    # a .safetensors file read as a TF graph: a clear error, not a crash
    assert cli.main(["convert", str(src), str(tmp_path / "o.safetensors"), "--from", "pb"]) == 1
    assert "mobilenet-fast:" in capsys.readouterr().err


def test_classify_labels_option(small_weights_file, tmp_path, capsys):
    _, src = small_weights_file
    labels = tmp_path / "names.txt"
    labels.write_text("".join(f"name{i}\n" for i in range(10)))
    assert cli.main(["classify", CHELSEA, "--weights", str(src), "--labels", str(labels), "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("name") == 3


def test_load_with_labels_and_custom_class_count(tmp_path):
    ws = random_weights(0.25, 3, "symmetric", (64, 64), seed=8)
    p = tmp_path / "three.safetensors"
    save_weights(p, ws)
    model = mobilenet_fast.load(p, labels=["cat", "dog", "bird"], threads=1)
    preds = model.classify(CHELSEA, top=5)
    assert len(preds) == 3 and {q.label for q in preds} == {"cat", "dog", "bird"}
    assert abs(sum(q.probability for q in preds) - 1.0) < 1e-5
    (tmp_path / "l.txt").write_text("x\ny\nz\n")
    assert mobilenet_fast.load(p, labels=tmp_path / "l.txt").labels == ["x", "y", "z"]
    with pytest.raises(mobilenet_fast.InputError, match="2 labels for a model with 3 classes"):
        mobilenet_fast.load(p, labels=["a", "b"])


# ------------------------------------------------------------------------------------- bench
# Tiny runs on the small random-weights model; no assertion on how fast anything is.

def _table(out):
    """The bench table's header and value row as a {column: float} dict."""
    lines = out.splitlines()
    i = next(k for k, ln in enumerate(lines) if "median ms" in ln)
    header = [c.strip() for c in lines[i].split("  ") if c.strip()]
    values = [float(v) for v in lines[i + 1].split()]
    assert len(header) == len(values), (header, values)
    return dict(zip(header, values))


def test_bench_table(small_weights_file, capsys):
    _, p = small_weights_file
    assert cli.main(["bench", "--weights", str(p), "--runs", "2", "--warmup", "1"]) == 0
    out, err = capsys.readouterr()
    row = _table(out)
    assert list(row) == ["median ms", "min ms", "p90 ms", "img/s", "GFLOP/s"]  # no peak given: no % of peak
    assert 0 < row["min ms"] <= row["median ms"] <= row["p90 ms"]
    assert row["img/s"] > 0 and row["GFLOP/s"] > 0
    macs = MobileNetV1(0.25, (64, 64), 10, "tf_same").total_macs
    assert f"{macs / 1e6:.1f}M multiply-adds per image" in out
    assert "batch 1" in out and "2 timed runs after 1 warm-up" in out
    assert "--peak-gflops" in out
    assert "2/2" in err  # the progress bar (tqdm or the built-in one) went to stderr


def test_bench_json(small_weights_file, capsys):
    _, p = small_weights_file
    argv = ["bench", "--weights", str(p), "--runs", "2", "--warmup", "1", "--batch", "3", "--resolution", "48x40",
            "--peak-gflops", "50", "--json", "--no-progress"]
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    assert err == ""
    d = json.loads(out)
    assert d["runs"] == 2 and d["warmup"] == 1 and d["batch"] == 3
    assert d["resolution"] == [48, 40] and d["num_classes"] == 10 and d["alpha"] == 0.25
    assert d["version"] == mobilenet_fast.__version__
    assert d["isa"] in mobilenet_fast.cpu_info()["supported_isas"]
    assert d["threads"] >= 1
    assert len(d["times_ms"]) == 2 and all(t > 0 for t in d["times_ms"])
    assert d["min_ms"] == min(d["times_ms"]) and d["min_ms"] <= d["median_ms"] <= d["p90_ms"]
    assert d["macs_per_image"] == MobileNetV1(0.25, (48, 40), 10, "tf_same").total_macs
    assert d["images_per_s"] == pytest.approx(3e3 / d["median_ms"])
    assert d["gflops"] == pytest.approx(2 * d["macs_per_image"] * d["images_per_s"] / 1e9)
    assert d["peak_gflops_per_core"] == 50
    assert d["percent_of_peak"] == pytest.approx(100 * d["gflops"] / (50 * d["threads"]))


def test_bench_peak_column_and_builtin_bar(small_weights_file, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm fails: the built-in bar is used
    _, p = small_weights_file
    assert cli.main(["bench", "-w", str(p), "-n", "3", "--warmup", "0", "--peak-gflops", "100"]) == 0
    out, err = capsys.readouterr()
    row = _table(out)
    assert list(row)[-1] == "% of peak"
    assert row["% of peak"] > 0
    assert "timing [" in err and "3/3" in err


def test_bench_isa(small_weights_file, capsys):
    _, p = small_weights_file
    assert cli.main(["bench", "-w", str(p), "-n", "2", "--warmup", "0", "--isa", "scalar", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["isa"] == "scalar"
    assert cli.main(["bench", "-w", str(p), "-n", "2", "--isa", "no-such-isa"]) == 1
    assert "no-such-isa" in capsys.readouterr().err


def test_bench_threads(small_weights_file, capsys):
    _, p = small_weights_file
    assert cli.main(["bench", "-w", str(p), "-n", "2", "--warmup", "0", "--threads", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["threads"] == 1
    code = cli.main(["bench", "-w", str(p), "-n", "2", "--warmup", "0", "--threads", "2", "--json"])
    out, err = capsys.readouterr()
    if "threads" in inspect.signature(mobilenet_fast.load).parameters:
        assert code == 0 and json.loads(out)["threads"] == 2
    else:  # an engine without threads says so instead of quietly running on one
        assert code == 1 and "one thread" in err


@pytest.mark.parametrize("option,value", [("--runs", "0"), ("--batch", "0"), ("--warmup", "-1"),
                                          ("--peak-gflops", "0"), ("--peak-gflops", "fast"), ("--threads", "0")])
def test_bench_bad_options(option, value, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["bench", option, value])
    assert e.value.code == 2
    assert option in capsys.readouterr().err


def test_bench_too_small_resolution(small_weights_file, capsys):
    _, p = small_weights_file
    assert cli.main(["bench", "-w", str(p), "-n", "2", "--resolution", "16"]) == 1
    assert "at least 32x32" in capsys.readouterr().err


# ------------------------------------------------------------------------- help, version, misc

@pytest.mark.parametrize("command,options", [
    ("classify", ["--top", "--json", "--weights", "--isa", "IMAGE"]),
    ("info", ["--alpha", "--resolution", "--classes", "--padding", "--weights", "--json"]),
    ("convert", ["--from", "--resolution", "--labels", "--force", "SRC", "DST", "keras", "onnx", "torch"]),
    ("bench", ["--weights", "--threads", "--batch", "--runs", "--warmup", "--resolution", "--isa", "--peak-gflops",
               "--json", "--no-progress"]),
])
def test_subcommand_help(command, options, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert f"mobilenet-fast {command}" in out
    for opt in options:
        assert opt in out, opt


def test_top_level_help(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for command in ("classify", "info", "convert", "bench"):
        assert command in out


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"mobilenet-fast {mobilenet_fast.__version__}"


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "usage:" in capsys.readouterr().out


def test_unknown_command(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["frobnicate"])
    assert e.value.code == 2


def test_module_entry_point_subprocess():
    env = dict(os.environ)
    probe = subprocess.run([sys.executable, "-c", "import mobilenet_fast"], capture_output=True, env=env,
                           cwd=ROOT, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"mobilenet_fast is not importable in a subprocess: {probe.stderr.decode()[-300:]}")
    r = subprocess.run([sys.executable, "-m", "mobilenet_fast", "info"], capture_output=True, text=True,
                       env=env, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "selected:" in r.stdout
    assert f"{mobilenet_fast.MobileNetV1().total_macs:,}" in r.stdout
    r = subprocess.run([sys.executable, "-m", "mobilenet_fast", "info", "--alpha", "-1"], capture_output=True,
                       text=True, env=env, cwd=ROOT, timeout=60)
    assert r.returncode == 1
    assert "alpha" in r.stderr


def test_classify_threads_option_and_info_reports_default_threads(capsys):
    import mobilenet_fast as mf
    from mobilenet_fast.cli import main

    examples = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "examples")
    assert main(["classify", os.path.join(examples, "coffee.png"), "--threads", "2", "--top", "1"]) == 0
    assert "espresso" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["classify", os.path.join(examples, "coffee.png"), "--threads", "0"])
    assert e.value.code == 2
    capsys.readouterr()
    assert main(["info"]) == 0
    assert f"threads by default: {mf.default_threads()}" in capsys.readouterr().out
