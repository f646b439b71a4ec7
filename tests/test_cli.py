"""The ``mobilenet-fast`` command line: classify (files, directories, batches, table/JSON/CSV, progress),
convert, bench, info, --help, --version, and the console entry."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
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
    assert [d["image"] for d in data] == [COFFEE, str(bad)]
    assert "top" in data[0] and "error" not in data[0]
    assert set(data[1]) == {"image", "error"} and "not a readable image" in data[1]["error"]
    assert err.splitlines() == [f"mobilenet-fast: {bad}: {data[1]['error']}"]


def test_classify_missing_file(tmp_path, capsys):
    missing = tmp_path / "does_not_exist.png"
    code = cli.main(["classify", CHELSEA, str(missing), "--top", "1"])
    out, err = capsys.readouterr()
    assert code == 1
    assert CHELSEA in out
    assert err == f"mobilenet-fast: {missing}: no such file or directory\n"


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


# ------------------------------------------------------- classify: directories, batches, formats

@pytest.fixture
def mixed_dir(tmp_path):
    """A directory of mixed files; returns (root, the images in classify's order, good ones, bad ones).

    Good: two example photos (one with an upper-case .JPG extension although it is a PNG), a
    grayscale PNG and an image in a nested subdirectory. Bad: a text file named .jpg and an empty
    .png. Skipped: a .txt file and an extension-less file.
    """
    from PIL import Image

    root = tmp_path / "photos"
    (root / "sub" / "deeper").mkdir(parents=True)
    shutil.copy(CHELSEA, root / "a_chelsea.png")
    shutil.copy(COFFEE, root / "b_coffee.JPG")
    (root / "c_notes.jpg").write_text("this is a text file, not a JPEG\n")
    (root / "d_empty.png").write_bytes(b"")
    with Image.open(CHELSEA) as im:
        im.convert("L").save(root / "e_gray.png")
    (root / "f_readme.txt").write_text("not an image, skipped\n")
    (root / "Makefile").write_text("all:\n")
    with Image.open(COFFEE) as im:
        im.resize((120, 90)).save(root / "sub" / "deeper" / "g_nested.png")
    order = ["a_chelsea.png", "b_coffee.JPG", "c_notes.jpg", "d_empty.png", "e_gray.png",
             os.path.join("sub", "deeper", "g_nested.png")]
    images = [str(root / n) for n in order]
    good = [images[i] for i in (0, 1, 4, 5)]
    bad = [images[i] for i in (2, 3)]
    return root, images, good, bad


def _error_lines(err):
    """stderr lines that report a failed image, as {path: reason}; asserts each path appears once."""
    lines = [ln for ln in err.splitlines() if ln.startswith("mobilenet-fast: ") and ": warning: " not in ln]
    out = {}
    for ln in lines:
        path, reason = ln[len("mobilenet-fast: "):].split(": ", 1)  # the test paths hold no ": "
        assert path not in out, f"{path} reported twice"
        out[path] = reason
    return out


def test_find_images_order_and_filter(mixed_dir, tmp_path):
    root, images, _, _ = mixed_dir
    found, empty = cli.find_images([str(root)])
    assert found == images and empty == []
    # explicit files are always taken (whatever the extension), in argument order, once each
    readme = str(root / "f_readme.txt")
    found, _ = cli.find_images([readme, str(root), os.path.join(str(root), "a_chelsea.png"), "missing.png"])
    assert found == [readme] + images + ["missing.png"]
    (tmp_path / "nothing").mkdir()
    assert cli.find_images([str(tmp_path / "nothing")]) == ([], [str(tmp_path / "nothing")])


def test_find_images_does_not_follow_directory_symlinks(tmp_path):
    root = tmp_path / "loop"
    root.mkdir()
    shutil.copy(COFFEE, root / "x.png")
    try:
        os.symlink(root, root / "again", target_is_directory=True)
    except (OSError, NotImplementedError):
        pytest.skip("cannot create a directory symlink here")
    assert cli.find_images([str(root)]) == ([str(root / "x.png")], [])


def test_classify_directory_table(mixed_dir, capsys):
    """The shipped model on a mixed directory: good images classified, bad ones one stderr line each."""
    root, images, good, bad = mixed_dir
    code = cli.main(["classify", str(root), "--top", "2", "--batch", "4", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 1
    heads = [ln for ln in out.splitlines() if not ln.startswith(" ")]
    assert heads == good  # in walk order; bad and skipped files are not in stdout
    lines = out.split("\n")
    top = {g: lines[lines.index(g) + 1: lines.index(g) + 3] for g in good}
    assert "espresso" in top[good[1]][0] and "espresso" in top[good[3]][0]
    assert "tabby" in top[good[0]][0] and "cat" in top[good[0]][1]  # tabby, tiger cat
    assert "tabby" in top[good[2]][0]  # the grayscale copy of Chelsea is still a cat
    assert len(err.splitlines()) == 2
    reasons = _error_lines(err)
    assert list(reasons) == bad
    assert reasons[bad[0]] == "not a readable image (UnidentifiedImageError: cannot identify image file)"
    assert reasons[bad[1]] == "empty file, not an image"
    assert "readme" not in out + err and "Makefile" not in out + err


def test_classify_directory_json(mixed_dir, small_weights_file, capsys):
    root, images, good, bad = mixed_dir
    _, w = small_weights_file
    assert cli.main(["classify", str(root), "-w", str(w), "--top", "3", "--json"]) == 1
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert [d["image"] for d in data] == images  # every image, in order, failures included
    for d in data:
        if d["image"] in good:
            assert set(d) == {"image", "top"}
            assert [set(t) for t in d["top"]] == [{"label", "index", "probability"}] * 3
            probs = [t["probability"] for t in d["top"]]
            assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
            assert all(t["label"] == f"class_{t['index']}" for t in d["top"])
        else:
            assert set(d) == {"image", "error"} and d["error"]
    assert _error_lines(err) == {d["image"]: d["error"] for d in data if "error" in d}


def test_classify_directory_csv(mixed_dir, small_weights_file, tmp_path, capsys):
    import csv

    root, images, good, bad = mixed_dir
    _, w = small_weights_file
    labels = tmp_path / "labels.txt"  # commas and quotes in labels must survive the CSV round trip
    labels.write_text("".join(f'thing, "no. {i}"\n' for i in range(10)))
    assert cli.main(["classify", str(root), "-w", str(w), "--labels", str(labels), "-k", "2", "--csv",
                     "--batch", "3"]) == 1
    out, err = capsys.readouterr()
    rows = list(csv.reader(out.splitlines()))
    assert rows[0] == ["image", "rank", "label", "index", "probability"]
    assert [(r[0], r[1]) for r in rows[1:]] == [(g, rank) for g in good for rank in ("1", "2")]
    for r in rows[1:]:
        assert r[2] == f'thing, "no. {r[3]}"'
        assert 0 < float(r[4]) <= 1
    assert list(_error_lines(err)) == bad  # failures only on stderr
    # the same numbers as --json
    assert cli.main(["classify", str(root), "-w", str(w), "-k", "2", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [float(r[4]) for r in rows[1:]] == [t["probability"] for d in data if "top" in d for t in d["top"]]


def test_classify_batch_size_does_not_change_results(mixed_dir, small_weights_file, capsys):
    root, _, good, _ = mixed_dir
    _, w = small_weights_file
    results = []
    for batch in ("1", "3", "16"):
        assert cli.main(["classify", str(root), "-w", str(w), "-k", "10", "--json", "--batch", batch,
                         "--threads", "2"]) == 1
        results.append(json.loads(capsys.readouterr().out))
    assert results[0] == results[1] == results[2]
    assert sum("top" in d for d in results[0]) == len(good)


def test_classify_matches_model_predict(mixed_dir, small_weights_file, capsys):
    """What the CLI prints is Model.predict on Model.preprocess's batch, to float32 precision."""
    root, _, good, _ = mixed_dir
    ws, w = small_weights_file
    assert cli.main(["classify", *good, "-w", str(w), "-k", "10", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    model = mobilenet_fast.Model(ws, threads=1)
    probs = model.predict(np.concatenate([model.preprocess(g) for g in good]))
    for d, row in zip(data, probs):
        got = np.zeros(10, np.float32)
        for t in d["top"]:
            got[t["index"]] = t["probability"]
        np.testing.assert_array_equal(got, row)


def test_classify_explicit_files_are_always_tried(mixed_dir, small_weights_file, tmp_path, capsys):
    root, _, _, _ = mixed_dir
    _, w = small_weights_file
    odd = tmp_path / "picture.data"
    shutil.copy(COFFEE, odd)
    readme = str(root / "f_readme.txt")
    assert cli.main(["classify", str(odd), readme, "-w", str(w), "-k", "1"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == str(odd)  # a PNG with an unknown extension is classified
    assert list(_error_lines(err)) == [readme]


def test_classify_unlistable_subdirectory_is_a_failure(mixed_dir, small_weights_file, capsys, monkeypatch):
    root, _, good, bad = mixed_dir
    _, w = small_weights_file
    locked = str(root / "sub")
    real_walk = os.walk

    def walk(top, onerror=None, **kw):  # as if root/sub could not be listed (tests may run as root)
        for entry in real_walk(top, onerror=onerror, **kw):
            if entry[0] == locked:
                onerror(PermissionError(13, "Permission denied", locked))
                entry[1][:] = []
                continue
            yield entry

    monkeypatch.setattr(os, "walk", walk)
    assert cli.main(["classify", str(root), "-w", str(w), "-k", "1", "--csv"]) == 1
    out, err = capsys.readouterr()
    assert [r.split(",")[0] for r in out.splitlines()[1:]] == good[:3]  # the nested image is not reached
    assert _error_lines(err) == {locked: "cannot list directory: Permission denied",
                                 bad[0]: "not a readable image (UnidentifiedImageError: cannot identify image file)",
                                 bad[1]: "empty file, not an image"}


@pytest.mark.parametrize("content", [[], ["notes.txt", "sub/"]])
def test_classify_no_images_found(tmp_path, capsys, content):
    d = tmp_path / "empty"
    d.mkdir()
    for name in content:
        if name.endswith("/"):
            (d / name).mkdir()
        else:
            (d / name).write_text("x")
    assert cli.main(["classify", str(d)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"no images found in {d}" in err and ".jpg" in err and err.count("\n") == 1


def test_classify_empty_directory_among_images(tmp_path, small_weights_file, capsys):
    _, w = small_weights_file
    (tmp_path / "empty").mkdir()
    assert cli.main(["classify", str(tmp_path / "empty"), COFFEE, "-w", str(w), "-k", "1"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == COFFEE
    assert err.startswith(f"mobilenet-fast: warning: {tmp_path / 'empty'}: no images found")


def test_classify_every_image_fails(tmp_path, small_weights_file, capsys):
    _, w = small_weights_file
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    assert cli.main(["classify", str(tmp_path), "-w", str(w), "--csv"]) == 1
    out, err = capsys.readouterr()
    assert out == "image,rank,label,index,probability\n"
    assert list(_error_lines(err)) == [str(tmp_path / "a.png"), str(tmp_path / "b.jpg")]


def test_classify_pillow_warnings_do_not_reach_stderr(tmp_path, small_weights_file, capsys):
    """A truncated TIFF makes Pillow warn ("Tag data larger than file", "Truncated File Read"):
    stderr still holds exactly one line for it."""
    import io
    import warnings

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 30, 30)).save(buf, "TIFF", description="x" * 300)
    (tmp_path / "cut.tif").write_bytes(buf.getvalue()[:300])
    shutil.copy(COFFEE, tmp_path / "ok.png")
    _, w = small_weights_file
    def show(message, category, filename, lineno, file=None, line=None):  # as Python does outside pytest
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show  # restored by catch_warnings
        assert cli.main(["classify", str(tmp_path), "-w", str(w), "-k", "1"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == str(tmp_path / "ok.png")
    assert len(err.splitlines()) == 1 and err.startswith(f"mobilenet-fast: {tmp_path / 'cut.tif'}: ")


def test_classify_unexpected_decoder_error_is_one_failure(tmp_path, small_weights_file, capsys, monkeypatch):
    shutil.copy(COFFEE, tmp_path / "a.png")
    shutil.copy(CHELSEA, tmp_path / "b.png")
    _, w = small_weights_file
    real = mobilenet_fast.Model.preprocess

    def preprocess(self, image, resolution=None):
        if str(image).endswith("a.png"):
            raise struct.error("unpack requires a buffer of 4 bytes")  # what a buggy plugin might raise
        return real(self, image, resolution)

    monkeypatch.setattr(mobilenet_fast.Model, "preprocess", preprocess)
    assert cli.main(["classify", str(tmp_path), "-w", str(w), "-k", "1", "--json"]) == 1
    out, err = capsys.readouterr()
    assert [d["image"] for d in json.loads(out) if "top" in d] == [str(tmp_path / "b.png")]
    assert err == (f"mobilenet-fast: {tmp_path / 'a.png'}: unexpected error while reading it "
                   "(error: unpack requires a buffer of 4 bytes)\n")


def test_classify_feature_extractor_is_refused(tmp_path, capsys):
    p = tmp_path / "features.safetensors"
    save_weights(p, random_weights(0.25, 0, "tf_same", (64, 64), seed=2))
    assert cli.main(["classify", COFFEE, "-w", str(p)]) == 1
    assert "feature extractor" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--json", "--csv"], ["--progress", "--no-progress"], ["--batch", "0"]])
def test_classify_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["classify", COFFEE, *argv])
    assert e.value.code == 2
    assert argv[-1] in capsys.readouterr().err


@pytest.mark.parametrize("tqdm_installed", [True, False])
def test_classify_progress_bar_on_stderr_only(mixed_dir, small_weights_file, capsys, monkeypatch, tqdm_installed):
    if not tqdm_installed:
        monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm fails: the built-in bar is used
    root, _, good, bad = mixed_dir
    _, w = small_weights_file
    assert cli.main(["classify", str(root), "-w", str(w), "-k", "1", "--batch", "4", "--progress"]) == 1
    out, err = capsys.readouterr()
    assert "classifying" in err and "6/6" in err
    assert "classifying" not in out and "\r" not in out
    assert [ln for ln in out.splitlines() if not ln.startswith(" ")] == good
    reasons = _error_lines(err.replace("\r", "\n"))
    assert set(reasons) == set(bad)


def test_classify_progress_bar_default(mixed_dir, small_weights_file, capsys, monkeypatch):
    root, _, _, _ = mixed_dir
    _, w = small_weights_file
    # not a terminal (captured): no bar
    assert cli.main(["classify", str(root), "-w", str(w), "-k", "1", "--csv"]) == 1
    assert "classifying" not in capsys.readouterr().err
    # a terminal: a bar for several images, none for one
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert cli.main(["classify", str(root), "-w", str(w), "-k", "1", "--csv"]) == 1
    assert "classifying" in capsys.readouterr().err
    assert cli.main(["classify", COFFEE, "-w", str(w), "-k", "1", "--csv"]) == 0
    assert capsys.readouterr().err == ""
    assert cli.main(["classify", str(root), "-w", str(w), "-k", "1", "--no-progress"]) == 1
    assert "classifying" not in capsys.readouterr().err


def test_bench_progress_default(small_weights_file, capsys, monkeypatch):
    _, p = small_weights_file
    assert cli.main(["bench", "-w", str(p), "-n", "2", "--warmup", "0"]) == 0
    assert capsys.readouterr().err == ""  # stderr is not a terminal here
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert cli.main(["bench", "-w", str(p), "-n", "2", "--warmup", "0"]) == 0
    assert "2/2" in capsys.readouterr().err


def test_every_option_has_help_and_every_command_examples():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == {"classify", "info", "convert", "quantize", "bench"}
    for action in parser._actions:
        assert action.help, action
    for name, p in sub.choices.items():
        assert p.epilog and "Examples:" in p.epilog, name
        assert p.description, name
        for action in p._actions:
            assert action.help and len(action.help) > 10, (name, action.dest)
            takes_value = action.option_strings and action.nargs != 0 and not isinstance(
                action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._HelpAction))
            if takes_value and action.choices is None:
                assert "default" in action.help, (name, action.dest)  # every value option says its default


def test_console_script_classify_directory(mixed_dir, small_weights_file):
    """The real process: stdout/stderr separation, exit status, no progress bar when not a terminal."""
    root, _, good, bad = mixed_dir
    _, w = small_weights_file
    r = subprocess.run([sys.executable, "-m", "mobilenet_fast", "classify", str(root), "-w", str(w), "-k", "1",
                        "--csv"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 1, r.stderr
    assert [row.split(",")[0] for row in r.stdout.splitlines()[1:]] == good
    assert r.stderr.splitlines() == [f"mobilenet-fast: {b}: {reason}" for b, reason in _error_lines(r.stderr).items()]
    assert list(_error_lines(r.stderr)) == bad


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


def test_convert_overrides_and_timm_safetensors(small_weights_file, tmp_path, capsys):
    # A timm-style state dict (.safetensors, no torch needed): format found from the content,
    # what was found is printed, and the overrides land in the output's metadata.
    from safetensors.numpy import save_file

    ws, _ = small_weights_file
    t = ws.tensors
    sd = {"conv_stem.weight": t["stem.conv.weight"].transpose(3, 2, 0, 1)}
    bn = {"gamma": "weight", "beta": "bias", "mean": "running_mean", "var": "running_var"}
    for f, g in bn.items():
        sd[f"bn1.{g}"] = t[f"stem.bn.{f}"]
    depths = [1, 2, 2, 6, 2]
    i = 0
    for s_, d in enumerate(depths):
        for b in range(d):
            sd[f"blocks.{s_}.{b}.conv_dw.weight"] = t[f"blocks.{i}.dw.weight"].transpose(2, 0, 1)[:, None]
            sd[f"blocks.{s_}.{b}.conv_pw.weight"] = t[f"blocks.{i}.pw.weight"].T[:, :, None, None]
            for f, g in bn.items():
                sd[f"blocks.{s_}.{b}.bn1.{g}"] = t[f"blocks.{i}.dw.bn.{f}"]
                sd[f"blocks.{s_}.{b}.bn2.{g}"] = t[f"blocks.{i}.pw.bn.{f}"]
            i += 1
    sd["classifier.weight"] = t["classifier.weight"].T
    sd["classifier.bias"] = t["classifier.bias"]
    src = tmp_path / "timm_like.safetensors"
    save_file({k: np.ascontiguousarray(v) for k, v in sd.items()}, str(src))
    dst = tmp_path / "ours.safetensors"
    assert cli.main(["convert", str(src), str(dst), "--padding", "tf_same", "--activation", "relu",
                     "--input-mean", "123.675,116.28,103.53", "--input-std", "58.395,57.12,57.375",
                     "--resolution", "160"]) == 0
    out = capsys.readouterr().out
    assert "alpha=0.25, resolution=160x160, classes=10" in out
    assert "padding=tf_same, activation=relu" in out and "input=(x - 123.675/116.28/103.53)" in out
    back = load_weights(dst)
    c = back.config
    assert (c.padding, c.activation, c.resolution) == ("tf_same", "relu", (160, 160))
    assert c.input_std == (58.395, 57.12, 57.375) and c.bn_epsilon == 1e-5  # timm's BatchNorm default
    for k, v in t.items():
        np.testing.assert_array_equal(back.tensors[k], v, err_msg=k)
    # without overrides: what the torch importer assumes for timm
    assert cli.main(["convert", str(src), str(tmp_path / "plain.safetensors")]) == 0
    assert "padding=symmetric, activation=relu6" in capsys.readouterr().out
    # bad overrides are usage errors
    for bad in (["--input-std", "1,2"], ["--input-mean", "a,b,c"], ["--padding", "same"]):
        with pytest.raises(SystemExit):
            cli.main(["convert", str(src), str(tmp_path / "x.safetensors")] + bad)
    capsys.readouterr()
    assert cli.main(["convert", str(src), str(tmp_path / "x.safetensors"), "--input-std", "0"]) == 1
    assert "must not contain 0" in capsys.readouterr().err


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
    assert cli.main(["bench", "--weights", str(p), "--runs", "2", "--warmup", "1", "--progress"]) == 0
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
    assert cli.main(["bench", "-w", str(p), "-n", "3", "--warmup", "0", "--peak-gflops", "100", "--progress"]) == 0
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
    assert cli.main(["bench", "-w", str(p), "-n", "2", "--warmup", "0", "--threads", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["threads"] == 2


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
    ("classify", ["--top", "--json", "--csv", "--batch", "--progress", "--no-progress", "--weights", "--isa",
                  "--threads", "--labels", "PATH", ".jpg .jpeg .png .bmp .gif .webp .tif .tiff .ppm .pgm",
                  "image,rank,label,index,probability", "Exit status"]),
    ("info", ["--alpha", "--resolution", "--classes", "--padding", "--weights", "--json"]),
    ("convert", ["--from", "--resolution", "--labels", "--force", "SRC", "DST", "keras", "onnx", "torch"]),
    ("bench", ["--weights", "--threads", "--batch", "--runs", "--warmup", "--resolution", "--isa", "--peak-gflops",
               "--json", "--progress", "--no-progress", "mbf_kernels_bench"]),
])
def test_subcommand_help(command, options, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert f"mobilenet-fast {command}" in out
    for opt in options:
        assert opt in out, opt
    assert "\nExamples:\n" in out
    examples = out.split("\nExamples:\n", 1)[1].splitlines()
    assert examples and all(ln.startswith(f"  mobilenet-fast {command}") for ln in examples if ln.strip())


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
    out = capsys.readouterr().out
    assert out.startswith(f"mobilenet-fast {mobilenet_fast.__version__} (")
    assert len(out.splitlines()) == 1
    selected = mobilenet_fast.cpu_info()["selected_isa"]
    assert f"kernels: {selected};" in out


def test_version_with_an_unusable_isa_request(monkeypatch, capsys):
    monkeypatch.setenv("MOBILENET_FAST_ISA", "no-such-isa")
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"mobilenet-fast {mobilenet_fast.__version__} (no usable kernels: ")
    assert "no-such-isa" in out


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
