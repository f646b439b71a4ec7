"""Our int8 weight file (mobilenet_fast.qweights), load(precision=...), the shipped int8 model and the
int8 commands of the CLI (quantize; classify, info, convert, bench on int8 files).

* a quantised model saved and loaded gives the same logits, bit for bit, and the same bytes when
  saved again; labels and the config survive;
* every kind of bad int8 file is a WeightFileError naming the tensor (missing, wrong dtype or
  shape, scale 0/NaN, zero point 256, reversed clamp, weight -128, bias that could overflow int32,
  truncation, wrong precision);
* float32 and int8 files are not mistaken for each other.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import mobilenet_fast as mf
from mobilenet_fast import quantization as Q
from mobilenet_fast.cli import main
from mobilenet_fast.errors import InputError, WeightFileError
from mobilenet_fast.qweights import load_quantized, quantized_tensors, save_quantized
from mobilenet_fast.weights import save_weights

from helpers import random_input, random_weights

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(HERE), "examples")


@pytest.fixture(scope="module")
def qmodel():
    ws = random_weights(alpha=0.25, num_classes=7, resolution=(64, 64), seed=5)
    ws = ws.with_labels([f"thing {i}" for i in range(7)])
    return mf.quantize(ws, random_input(4, 64, 64, seed=2), threads=1)


@pytest.fixture(scope="module")
def qfile(qmodel, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("int8") / "small_int8.safetensors")
    qmodel.save(path)
    return path


def test_round_trip_is_bit_exact(qmodel, qfile, tmp_path):
    back = mf.load(qfile, threads=1)
    assert isinstance(back, mf.QuantizedModel) and back.precision == "int8"
    assert "precision='int8'" in repr(back)
    assert back.labels == qmodel.labels and back.config == qmodel.config
    x = random_input(3, 64, 80, seed=11)
    np.testing.assert_array_equal(back.logits(x), qmodel.logits(x))
    np.testing.assert_array_equal(back.features(x), qmodel.features(x))
    # and equal to the numpy integer reference
    np.testing.assert_array_equal(back.logits(x), Q.int8_forward(qmodel.qnet, x).astype(np.float32))
    again = tmp_path / "again.safetensors"
    back.save(again)
    assert again.read_bytes() == Path(qfile).read_bytes()  # deterministic, nothing lost
    assert back.qnet.method == qmodel.qnet.method and back.qnet.bias_correction == qmodel.qnet.bias_correction


def test_feature_extractor_round_trip(tmp_path):
    ws = random_weights(alpha=0.25, num_classes=0, resolution=(64, 64), seed=6)
    qm = mf.quantize(ws, random_input(2, 64, 64, seed=3), threads=1)
    path = tmp_path / "features_int8.safetensors"
    qm.save(path)
    back = mf.load(path, threads=1)
    x = random_input(2, 64, 64, seed=4)
    np.testing.assert_array_equal(back.features(x), qm.features(x))
    with pytest.raises(InputError, match="no classifier"):
        back.logits(x)


def test_labels_override_and_float_weights(qmodel, qfile):
    back = mf.load(qfile, labels=[f"x{i}" for i in range(7)], threads=1)
    assert back.labels[3] == "x3"
    with pytest.raises(InputError, match="no float32 weights"):
        back.weights
    assert qmodel.weights.config.alpha == 0.25  # a quantised model keeps what it was made from
    with pytest.raises(InputError, match="labels"):
        mf.load(qfile, labels=["only one"])


def test_precision_is_checked(qfile, tmp_path):
    f32 = tmp_path / "f32.safetensors"
    save_weights(f32, random_weights(alpha=0.25, num_classes=7, resolution=(64, 64), seed=5))
    assert mf.load(f32, precision="float32").precision == "float32"
    with pytest.raises(InputError, match="float32 weights, not an int8 model"):
        mf.load(f32, precision="int8")
    with pytest.raises(InputError, match="int8 model, not float32"):
        mf.load(qfile, precision="float32")
    with pytest.raises(InputError, match="precision must be"):
        mf.load(qfile, precision="fp16")
    with pytest.raises(WeightFileError, match="int8 model"):
        mf.load_weights(qfile)  # the float32 reader refuses an int8 file by name
    with pytest.raises(WeightFileError, match="precision"):
        load_quantized(f32)
    with pytest.raises(FileNotFoundError):
        mf.load(tmp_path / "nothing.safetensors", precision="int8")


# ------------------------------------------------------------------------------ bad files

def _write(path, tensors, meta):
    from safetensors.numpy import save

    with open(path, "wb") as f:
        f.write(save(tensors, metadata=meta))


def _tampered(qmodel, tmp_path, edit):
    tensors = {k: v.copy() for k, v in quantized_tensors(qmodel.qnet).items()}
    meta = qmodel.config.to_metadata()
    meta["precision"] = "int8"
    edit(tensors, meta)
    path = tmp_path / "bad.safetensors"
    _write(path, tensors, meta)
    return path


def _set(name, value, index=0):
    def edit(t, meta):
        t[name].reshape(-1)[index] = value
    return edit


BAD = {
    "missing tensor": (lambda t, m: t.pop("blocks.3.pw.bias"), "missing tensor 'blocks.3.pw.bias'"),
    "extra tensor": (lambda t, m: t.update(extra=np.zeros(1, np.float32)), "unexpected tensor 'extra'"),
    "weight dtype": (lambda t, m: t.update({"blocks.0.dw.weight": t["blocks.0.dw.weight"].astype(np.int32)}),
                     "'blocks.0.dw.weight' has dtype I32"),
    # int16 weights (weights that had a zero point) more than 255 steps apart
    "wide weights": (lambda t, m: t.update({"blocks.0.dw.weight": t["blocks.0.dw.weight"].astype(np.int16) * 3}),
                     "'blocks.0.dw.weight' holds int16 weights in .* at most 255 apart"),
    "pool half up": (lambda t, m: m.update(quantization='{"pool_rounding": "half_up"}'),
                     "pool rounds half up .* differ from the last layer's output"),
    "bias shape": (lambda t, m: t.update({"stem.conv.bias": t["stem.conv.bias"][:-1].copy()}),
                   "'stem.conv.bias' has shape"),
    "zero scale": (_set("blocks.2.pw.output_scale", 0.0), "blocks.2.pw.output_scale"),
    "nan scale": (_set("input.scale", np.nan), "input.scale"),
    "zero point": (_set("blocks.1.dw.output_zero_point", 256), "zero point must be in 0..255"),
    "clamp": (lambda t, m: t.update({"blocks.4.dw.clamp": np.array([200, 100], np.int32)}),
              "'blocks.4.dw.clamp' is \\[200, 100\\]"),
    "weight -128": (_set("blocks.5.pw.weight", -128, 17), "-127..127"),
    "weight scale": (_set("classifier.weight_scale", -1.0, 2), "classifier.weight_scale"),
    "bias overflow": (_set("blocks.6.pw.bias", 2**31 - 1, 3), "int32 accumulator could overflow"),
    "no precision": (lambda t, m: m.pop("precision"), None),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_int8_files_are_refused(qmodel, tmp_path, case):
    edit, message = BAD[case]
    path = _tampered(qmodel, tmp_path, edit)
    if message is None:  # without the key it is read as a float32 file, which it is not
        with pytest.raises(WeightFileError, match="dtype"):
            mf.load(path)
        with pytest.raises(WeightFileError, match="precision"):
            load_quantized(path)
        return
    with pytest.raises(WeightFileError, match=message):
        mf.load(path)


def test_the_untampered_file_of_the_bad_cases_loads(qmodel, tmp_path):
    """The harness above refuses for the edit, not for the way it writes files."""
    path = _tampered(qmodel, tmp_path, lambda t, m: None)
    x = random_input(1, 64, 64, seed=1)
    np.testing.assert_array_equal(mf.load(path, threads=1).logits(x), qmodel.logits(x))


@pytest.mark.parametrize("keep", [0.0, 0.3, 0.999])
def test_truncated_int8_file(qfile, tmp_path, keep):
    data = Path(qfile).read_bytes()
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(WeightFileError):
        load_quantized(path)


def test_save_refuses_an_inconsistent_network(qmodel, tmp_path):
    layer = qmodel.qnet.layers[3]
    bad = Q.QuantizedNet(qmodel.qnet.config_alpha, qmodel.qnet.input, list(qmodel.qnet.layers),
                         qmodel.qnet.pool_output, qmodel.qnet.classifier, "mse", True)
    bad.layers[3] = Q.QLayer(layer.spec, layer.weight, layer.weight_scale, layer.bias, layer.input, layer.output,
                             (9, 3))
    with pytest.raises(WeightFileError, match="clamp"):
        save_quantized(tmp_path / "x.safetensors", qmodel.config, bad)
    assert not (tmp_path / "x.safetensors").exists()


# ------------------------------------------------------------------------------ shipped model

def test_shipped_int8_model():
    path = mf.default_int8_model_path()
    from mobilenet_fast.weights import file_sha256

    with open(os.path.join(os.path.dirname(path), "SHA256SUMS"), encoding="utf-8") as f:
        sums = dict(reversed(line.split()) for line in f if line.strip())
    assert sums[os.path.basename(path)] == file_sha256(path)
    q = mf.load(precision="int8", threads=1)
    assert isinstance(q, mf.QuantizedModel) and q.num_classes == 1001
    f = mf.load(threads=1)
    images = [os.path.join(EXAMPLES, n) for n in ("chelsea.png", "coffee.png")]
    for img in images:
        assert q.classify(img, top=1)[0].index == f.classify(img, top=1)[0].index


# ------------------------------------------------------------------------------ the CLI

def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_quantize_then_classify_info_convert_bench(tmp_path, capsys):
    weights = tmp_path / "small.safetensors"
    save_weights(weights, random_weights(alpha=0.25, num_classes=7, resolution=(64, 64), seed=5))
    calib = tmp_path / "calib"
    calib.mkdir()
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)).save(calib / f"img{i}.png")
    (calib / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "small_int8.safetensors"
    code, text, err = _run(capsys, "quantize", "--weights", str(weights), "--calibration", str(calib),
                           str(out), "--json")
    assert code == 0, err
    result = json.loads(text)
    # sorted: broken.png, img0..img5; every 4th (img2) held out, broken.png reported and skipped
    assert result["calibration_images"] == 5 and result["eval_images"] == 1
    assert 0.0 <= result["agreement"] <= 1.0 and "broken.png" in err
    assert mf.load(out).precision == "int8"
    code, _, err = _run(capsys, "quantize", "--weights", str(weights), "--calibration", str(calib), str(out))
    assert code == 1 and "exists" in err
    code, text, err = _run(capsys, "quantize", "--weights", str(weights), "--calibration", str(calib),
                           "--eval", str(calib / "img0.png"), "--force", "--method", "percentile", str(out))
    assert code == 0 and "agreement with float32 on 1 held-out images" in text, err

    code, text, _ = _run(capsys, "classify", str(calib / "img0.png"), "--weights", str(out), "--json")
    assert code == 0
    top = json.loads(text)[0]["top"]
    want = mf.load(out, threads=1).classify(str(calib / "img0.png"), top=5)
    assert [t["index"] for t in top] == [p.index for p in want]

    code, text, _ = _run(capsys, "info", "--weights", str(out), "--json")
    info = json.loads(text)
    assert code == 0 and info["precision"] == "int8" and info["file_bytes"] == os.path.getsize(out)
    assert len(info["quantization"]) == 28 and info["quantization"][-1]["output"] == "float32 logits"
    code, text, _ = _run(capsys, "info", "--weights", str(out))
    assert code == 0 and "precision int8" in text and "blocks.12.pw" in text

    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"name{i}\n" for i in range(7)))
    conv = tmp_path / "relabelled.safetensors"
    code, text, err = _run(capsys, "convert", str(out), str(conv), "--labels", str(labels))
    assert code == 0, err
    assert mf.load(conv).labels[6] == "name6"
    code, _, err = _run(capsys, "convert", str(out), str(tmp_path / "x.onnx"))
    assert code == 1 and "int8" in err
    code, _, err = _run(capsys, "convert", str(out), str(tmp_path / "y.safetensors"), "--input-mean", "0")
    assert code == 1 and "calibrated" in err

    code, text, _ = _run(capsys, "bench", "--weights", str(out), "--runs", "2", "--warmup", "0", "--json")
    b = json.loads(text)
    assert code == 0 and b["precision"] == "int8" and len(b["times_ms"]) == 2
    code, text, _ = _run(capsys, "bench", "--weights", str(out), "--runs", "2", "--warmup", "0")
    assert code == 0 and "GOP/s" in text and "int8" in text
    code, _, err = _run(capsys, "bench", "--weights", str(out), "--precision", "float32", "--runs", "1")
    assert code == 1 and "int8 model, not float32" in err


def test_int8_plan_refuses_a_size_too_large_before_allocating():
    """1.0 at 16384x16384: the stem's output would hold 2^31 values; refused, as the fp32 Plan
    refuses it, before anything is allocated (this would otherwise take gigabytes)."""
    q = mf.load(precision="int8", threads=1)
    with pytest.raises(InputError, match="2\\^31 - 1"):
        q.plan(16384, 16384)
    assert q.plan(32, 32) is not None
