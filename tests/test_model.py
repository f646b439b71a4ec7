"""The whole network through the C++ Plan: against the numpy reference and onnxruntime, on the
shipped ImageNet weights and on random weights; real photos; the Python API's checks."""

from __future__ import annotations

import os
import threading
from dataclasses import replace

import numpy as np
import pytest
from helpers import random_input, random_weights
from isa import isas_to_test

import mobilenet_fast as mf
from mobilenet_fast import InputError
from mobilenet_fast import reference as R
from mobilenet_fast.weights import WeightSet

ISAS = isas_to_test()
HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(HERE, os.pardir, "examples")
CAT_CLASSES = {"tabby", "tiger cat", "Egyptian cat"}


@pytest.fixture(scope="module")
def default_weights():
    return mf.load_weight_set()


@pytest.fixture(scope="module")
def photos(default_weights):
    cfg = default_weights.config
    return np.concatenate([
        mf.preprocess(os.path.join(EXAMPLES, f), cfg.resolution, cfg.input_mean, cfg.input_std)
        for f in ("chelsea.png", "coffee.png")
    ])


@pytest.mark.slow
@pytest.mark.parametrize("isa", ISAS)
def test_default_model_matches_reference_and_onnxruntime(isa, default_weights, photos, tmp_path):
    from helpers import run_onnxruntime

    from mobilenet_fast.export_onnx import to_onnx_model

    model = mf.Model(default_weights, isa=isa)
    noise = random_input(1, 224, 224, seed=5)
    x = np.concatenate([photos, noise])
    ours = model.logits(x)
    ref = R.forward(default_weights, x)
    (ort,) = run_onnxruntime(to_onnx_model(default_weights), {"input": x}, ["logits"])
    assert ours.shape == (3, 1001)
    assert np.abs(ours - ref).max() < 1e-3, np.abs(ours - ref).max()
    assert np.abs(ours - ort).max() < 1e-3, np.abs(ours - ort).max()
    # the three images really are different inputs with different answers
    assert len({int(i) for i in ours.argmax(1)}) == 3


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("alpha, padding, hw, batch", [
    (0.25, "tf_same", (128, 128), 1),
    (0.25, "symmetric", (97, 131), 3),
    (0.5, "tf_same", (161, 96), 2),
    (0.75, "symmetric", (64, 64), 1),
    (1.0, "tf_same", (32, 33), 2),
    (0.3, "tf_same", (45, 45), 1),
])
def test_random_networks_match_reference(isa, alpha, padding, hw, batch):
    ws = random_weights(alpha, 17, padding, hw, seed=int(alpha * 100) + batch, gamma_scale=1.5)
    model = mf.Model(ws, isa=isa)
    x = random_input(batch, *hw, seed=batch)
    ours = model.logits(x)
    ref = R.forward(ws, x)
    assert np.abs(ours - ref).max() < 1e-3 * max(1.0, np.abs(ref).max())
    feats = model.features(x)
    assert feats.shape == (batch, model.architecture().feature_channels)
    # gamma_scale=1.5 clips 5-10% of the activations at 6 (exercising the upper clamp)
    assert np.abs(feats - R.features(ws, x)).max() < 1e-3
    # batch results equal single-image results
    for i in range(batch):
        np.testing.assert_allclose(model.logits(x[i:i + 1])[0], ours[i], rtol=0, atol=1e-6)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("alpha, padding, activation, hw", [
    (0.25, "keras", "relu6", (97, 131)),
    (0.5, "keras", "relu6", (128, 128)),
    (0.25, "tf_same", "relu", (96, 97)),
    (0.25, "symmetric", "relu", (64, 80)),
])
def test_keras_padding_and_relu_networks_match_reference(isa, alpha, padding, activation, hw):
    ws = random_weights(alpha, 11, padding, hw, seed=40, gamma_scale=1.5, activation=activation)
    model = mf.Model(ws, isa=isa)
    x = random_input(2, *hw, seed=41)
    ours, ref = model.logits(x), R.forward(ws, x)
    assert np.abs(ours - ref).max() < 1e-3 * max(1.0, np.abs(ref).max())
    acts = R.activations(ws, x)
    top = max(float(a.max()) for name, a in acts.items() if name.startswith("blocks."))
    if activation == "relu":
        assert top > 6.5  # values above 6 really flow through the net: no clamp at 6
        assert "activation='relu'" in repr(model)
    else:
        assert top == 6.0
    # the other activation on the same weights gives a visibly different answer
    other = WeightSet(replace(ws.config, activation="relu" if activation == "relu6" else "relu6"), ws.tensors)
    assert np.abs(mf.Model(other, isa=isa).logits(x) - ours).max() > 1e-2


def test_feature_extractor_model_without_classifier():
    ws = random_weights(0.25, 0, "tf_same", (64, 64), seed=3)
    model = mf.Model(ws)
    x = random_input(2, 64, 64)
    np.testing.assert_allclose(model.features(x), R.features(ws, x), atol=1e-4, rtol=1e-4)
    with pytest.raises(InputError, match="no classifier"):
        model.logits(x)


def test_real_photos_top1(default_weights):
    model = mf.Model(default_weights)
    cat = model.classify(os.path.join(EXAMPLES, "chelsea.png"), top=5)
    coffee = model.classify(os.path.join(EXAMPLES, "coffee.png"), top=3)
    assert cat[0].label in CAT_CLASSES, cat
    assert coffee[0].label == "espresso", coffee
    assert len(cat) == 5 and len(coffee) == 3
    assert all(a.probability >= b.probability for a, b in zip(cat, cat[1:]))
    assert 0.0 < sum(p.probability for p in cat) <= 1.0 + 1e-6
    both = model.classify([os.path.join(EXAMPLES, "coffee.png"), os.path.join(EXAMPLES, "chelsea.png")], top=1)
    assert [r[0].label for r in both] == ["espresso", cat[0].label]


def test_load_default_and_repr():
    model = mf.load()
    assert model.num_classes == 1001 and model.labels[0] == "background"
    r = repr(model)
    assert "alpha=1" in r and "224x224" in r and "num_classes=1001" in r and "isa=" in r
    assert "Plan" in repr(model.plan(224, 224))
    assert model.plan(224, 224) is model.plan(224, 224)


def test_predict_probabilities_and_other_resolutions(default_weights, photos):
    model = mf.Model(default_weights)
    p = model.predict(photos)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(p, R.softmax(model.logits(photos)), rtol=1e-4, atol=1e-7)
    small = mf.preprocess(os.path.join(EXAMPLES, "coffee.png"), 160)
    np.testing.assert_allclose(model.logits(small), R.forward(default_weights, small), atol=1e-3)
    assert model.predict(np.zeros((0, 224, 224, 3), np.float32)).shape == (0, 1001)


def test_results_are_reproducible_and_thread_safe(default_weights, photos):
    model = mf.Model(default_weights)
    want = model.logits(photos)
    got = []

    def work():
        for _ in range(3):
            got.append(model.logits(photos))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 12
    for g in got:
        np.testing.assert_array_equal(g, want)


@pytest.mark.parametrize("make, match", [
    (lambda: np.zeros((224, 224, 3), np.float32), "x\\[None\\]"),
    (lambda: np.zeros((1, 3, 224, 224), np.float32), "NCHW"),
    (lambda: np.zeros((1, 224, 224, 3), np.float64), "float32"),
    (lambda: np.zeros((1, 224, 448, 3), np.float32)[:, :, ::2], "C-contiguous"),
    (lambda: np.zeros((1, 16, 16, 3), np.float32), "at least 32x32"),
    (lambda: np.full((1, 64, 64, 3), np.nan, np.float32), "NaN"),
    (lambda: [[0.0]], "numpy array"),
])
def test_predict_rejects_bad_batches(default_weights, make, match):
    model = mf.Model(default_weights)
    with pytest.raises(InputError, match=match):
        model.predict(make())


def test_classify_bad_images(default_weights, tmp_path):
    model = mf.Model(default_weights)
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a picture")
    with pytest.raises(mf.ImageReadError, match="notes.jpg"):
        model.classify(str(text))
    with pytest.raises(FileNotFoundError, match="missing.png"):
        model.classify(str(tmp_path / "missing.png"))
    with pytest.raises(InputError, match="top"):
        model.classify(os.path.join(EXAMPLES, "coffee.png"), top=0)
    with pytest.raises(InputError, match="uint8"):
        model.classify(np.zeros((50, 50, 3), np.float32))


def test_image_modes_are_converted(default_weights, tmp_path):
    from PIL import Image

    model = mf.Model(default_weights)
    rgb = Image.open(os.path.join(EXAMPLES, "coffee.png")).convert("RGB")
    for mode in ("L", "RGBA", "CMYK", "P", "I;16"):
        im = rgb.convert(mode) if mode != "I;16" else rgb.convert("L").convert("I;16")
        path = tmp_path / f"img_{mode.replace(';', '')}.{'jpg' if mode == 'CMYK' else 'png'}"
        im.save(path)
        preds = model.classify(str(path), top=5)
        assert len(preds) == 5 and np.isfinite([p.probability for p in preds]).all()
    gray = np.asarray(rgb.convert("L"))
    assert model.classify(gray, top=1)[0].probability > 0


def test_bad_isa_request_is_a_clear_error(default_weights):
    with pytest.raises(InputError, match="unknown"):
        mf.Model(default_weights, isa="mmx")


@pytest.mark.parametrize("isa", ISAS)
def test_environment_variable_forces_the_path(isa):
    """MOBILENET_FAST_ISA picks the kernel table of a whole process, as a user would set it."""
    import subprocess
    import sys

    code = ("import mobilenet_fast as mf; m = mf.load(); "
            "print(m.isa, mf.cpu_info()['selected_isa'], m.classify(%r, top=1)[0].label)"
            % os.path.join(EXAMPLES, "coffee.png"))
    env = dict(os.environ, MOBILENET_FAST_ISA=isa)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [isa, isa, "espresso"]


def test_environment_variable_naming_a_missing_path_fails_clearly():
    import subprocess
    import sys

    env = dict(os.environ, MOBILENET_FAST_ISA="neon" if mf.cpu_info()["arch"] != "aarch64" else "avx512")
    out = subprocess.run([sys.executable, "-c", "import mobilenet_fast as mf; mf.load()"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "InputError" in out.stderr and "MOBILENET_FAST_ISA" in out.stderr
