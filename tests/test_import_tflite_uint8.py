"""Legacy uint8 ``.tflite`` files (per-tensor asymmetric uint8 weights with zero points, uint8
activations, AVERAGE_POOL_2D), and alpha 1.0 files (float32, full-integer int8, legacy uint8),
against LiteRT.

TensorFlow 2.21 no longer writes the legacy layout, so the files are assembled with the flatbuffers
builder (``tests/tflite_writer.py``): the committed ``mnv1_025_128_uint8.tflite``
(``scripts/make_uint8_tflite.py``, softmax output like Google's files) and, at test time, files
ending at the logits from the 0.25/128 int8 fixture and from the shipped 1.0/224 int8 model. LiteRT
(its default XNNPACK delegate) runs every one of them; our logits must equal its on every value.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import mobilenet_fast as mf
from mobilenet_fast import quantization as Q
from mobilenet_fast.errors import InputError
from mobilenet_fast.importers.tflite import import_tflite_int8

from test_import_tflite import DATA, INT8, int8_inputs, run_litert, scaled_tol  # noqa: E402
from tflite_writer import legacy_uint8, pool_keeps_quantisation, write_float_tflite, write_tflite

UINT8 = os.path.join(DATA, "mnv1_025_128_uint8.tflite")
SHIPPED_INT8 = os.path.join(os.path.dirname(mf.__file__), "models", "mobilenet_v1_1.0_224_int8.safetensors")


def _source(which: str):
    """(qnet, height) of the 0.25/128 int8 fixture or the shipped 1.0/224 int8 model."""
    m = mf.load(INT8 if which == "0.25" else SHIPPED_INT8)
    return m.qnet, m.config.resolution[0]


def _inputs(h: int, n: int) -> np.ndarray:
    if h == 128:
        return int8_inputs()[:n]
    return np.random.default_rng(5).uniform(-1, 1, (n, h, h, 3)).astype(np.float32)


def _dequantized(codes: np.ndarray, q: Q.QParams, shift: int = 0) -> np.ndarray:
    """LiteRT's integer logits as the float32 numbers our model returns for the same grid."""
    return ((codes.astype(np.int64) + shift - q.zero_point) * np.float32(q.scale)).astype(np.float32)


def test_uint8_fixture_imports_as_zero_pointed_weights():
    model = mf.load(UINT8, threads=1)
    assert isinstance(model, mf.QuantizedModel)
    qn = model.qnet
    assert qn.pool_half_up and qn.logits_output is not None
    for layer in qn.layers + [qn.classifier]:
        w = layer.weight
        assert w.dtype == np.int16 and -255 <= w.min() and w.max() <= 255 and int(w.max()) - int(w.min()) <= 255
        assert np.all(layer.weight_scale == layer.weight_scale[0])  # per tensor
    # the weights do not fit int8: the offset path is what runs
    assert any(Q.split_weight_offset(layer.weight)[1] != 0 for layer in qn.layers)
    # the C++ network equals the numpy integer reference bit for bit, on every ISA
    x = int8_inputs()[:3]
    ref = Q.int8_forward(qn, x)
    for isa in mf.cpu_info()["supported_isas"]:
        got = mf.load(UINT8, isa=isa, threads=2).logits(x)
        assert np.array_equal(got.astype(np.float64), ref), isa


@pytest.mark.parametrize("which", ["0.25", pytest.param("1.0", marks=pytest.mark.slow)])
def test_uint8_file_matches_litert_exactly(tmp_path, which):
    """The legacy layout ending at the logits: LiteRT fed the codes our model quantises the images
    to gives exactly our logits, every value (weight zero points: row-sum correction in the
    GEMMs, int16 weights in the depthwise layers; the pool rounds half up as TFLite's does)."""
    qn, h = _source(which)
    legacy, zps = legacy_uint8(qn)
    path = str(tmp_path / f"legacy_{which}.tflite")
    write_tflite(legacy, path, height=h, width=h, weight_zero_points=zps)
    model = mf.load(path, threads=2)
    x = _inputs(h, 16 if which == "0.25" else 4)
    ref = run_litert(path, model.qnet.input.quantize(x).astype(np.uint8))
    assert ref.dtype == np.uint8
    logits = model.logits(x)
    want = _dequantized(ref, model.qnet.logits_output)
    assert np.array_equal(logits, want), f"{int((logits != want).sum())} of {want.size} logits differ"
    assert np.array_equal(logits.argmax(1), ref.argmax(1))


def test_uint8_softmax_fixture_matches_litert():
    """The committed file, as Google's are laid out (uint8 SOFTMAX output, 1/256 steps): our
    logits through a float softmax are within one step of LiteRT's probabilities, same top-1."""
    model = mf.load(UINT8, threads=1)
    x = int8_inputs()
    ref = run_litert(UINT8, model.qnet.input.quantize(x).astype(np.uint8)).astype(np.float64) / 256
    p = model.predict(x)
    assert np.abs(p - ref).max() <= 1 / 256 + 1e-6
    assert (np.abs(p - ref) < 0.5 / 256).mean() >= 0.999
    assert np.array_equal(p.argmax(1), ref.argmax(1))


@pytest.mark.slow
def test_int8_1_0_file_matches_litert_exactly(tmp_path):
    """alpha 1.0 at 224 in the full-integer int8 layout (per-channel int8 weights, int8
    activations): the shipped int8 model written as a .tflite, run by LiteRT and by us."""
    qn, h = _source("1.0")
    path = str(tmp_path / "int8_1_0.tflite")
    write_tflite(pool_keeps_quantisation(qn), path, height=h, width=h)
    model = mf.load(path, threads=2)
    assert model.config.alpha == 1.0 and model.qnet.layers[5].weight.dtype == np.int8
    x = _inputs(h, 4)
    codes = (model.qnet.input.quantize(x) - 128).astype(np.int8)
    ref = run_litert(path, codes)
    logits = model.logits(x)
    want = _dequantized(ref, model.qnet.logits_output, shift=128)
    assert np.array_equal(logits, want), f"{int((logits != want).sum())} of {want.size} logits differ"


def test_uint8_convert_round_trip(tmp_path):
    """convert keeps the zero-pointed weights (int16 tensors) and the pool's rounding."""
    out = tmp_path / "ours.safetensors"
    from mobilenet_fast import cli

    assert cli.main(["convert", UINT8, str(out)]) == 0
    a, b = mf.load(UINT8, threads=1), mf.load(str(out), threads=1)
    assert b.qnet.pool_half_up and b.qnet.layers[0].weight.dtype == np.int16
    x = int8_inputs()[:4]
    assert np.array_equal(a.logits(x), b.logits(x))


def test_split_weight_offset():
    w8, d = Q.split_weight_offset(np.array([-3, 5], np.int8))
    assert d == 0 and w8.dtype == np.int8
    w = np.array([-200, 0, 55], np.int16)  # 255 apart
    w8, d = Q.split_weight_offset(w)
    assert w8.dtype == np.int8 and np.array_equal(w8.astype(np.int16) + d, w)
    with pytest.raises(InputError, match="255 steps"):
        Q.split_weight_offset(np.array([-200, 56], np.int16))


def test_zero_pointed_weights_need_room(tmp_path):
    """A bias that leaves no room once the offset's row sums are added: refused, not wrapped."""
    qn = import_tflite_int8(UINT8)[1]
    stem = qn.layers[0]
    stem.bias = stem.bias.copy()
    stem.bias[0] = 2**31 - 2
    with pytest.raises(InputError, match="could overflow"):
        qn.plan(128, 128)


@pytest.mark.slow
def test_float_1_0_file_matches_litert(tmp_path):
    """alpha 1.0 at 224, float32: the shipped weights written as a .tflite (BatchNorm folded, as
    TensorFlow's converter writes them) and read back by import_tflite; logits against LiteRT's
    to float32 rounding, same top-1."""
    shipped = mf.load(threads=2)
    path = str(tmp_path / "float_1_0.tflite")
    write_float_tflite(shipped.weights, path)
    model = mf.load(path, threads=2)
    assert model.precision == "float32" and model.config.alpha == 1.0 and model.config.num_classes == 1001
    x = _inputs(224, 3)
    ours, ref = model.logits(x), run_litert(path, x)
    assert ref.shape == ours.shape == (3, 1001)
    assert np.abs(ours - ref).max() <= scaled_tol(ref)
    assert np.array_equal(ours.argmax(1), ref.argmax(1))
    # and the imported weights are the shipped ones (BatchNorm folded): the same logits
    assert np.abs(ours - shipped.logits(x)).max() <= scaled_tol(ref)
