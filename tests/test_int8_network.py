"""The int8 network: quantisation (mobilenet_fast.quantization) and its numpy integer reference.

* the int8 kernels (ops.qdwconv3x3, ops.qgemm_u8s8) give the exact bytes of the numpy integer
  reference on every depthwise and pointwise layer of a quantised network, on every ISA path;
* the quantised network follows the float one (logits, top-1), bias correction reduces the
  per-channel mean error, the range methods behave;
* bad arguments are InputErrors.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import mobilenet_fast as mf
from mobilenet_fast import ops, quantization as Q, reference
from mobilenet_fast.errors import InputError

from helpers import random_input, random_weights
from isa import isas_to_test

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(HERE), "examples")


@pytest.fixture(scope="module")
def small():
    ws = random_weights(alpha=0.25, num_classes=10, resolution=(64, 64), seed=3)
    cal = random_input(6, 64, 64, seed=1)
    return ws, cal, Q.quantize_network(ws, cal)


def _layer_inputs(qnet, x):
    """(layer, uint8 input codes, reference output codes) of every conv layer."""
    q = qnet.input.quantize(np.asarray(x, np.float64))
    for layer in qnet.layers:
        out = Q._requantize(Q._accumulate(layer, q), layer.multiplier, layer.output, layer.clamp)
        yield layer, q, out
        q = out


@pytest.mark.parametrize("isa", isas_to_test())
def test_kernels_equal_the_integer_reference_on_every_layer(small, isa):
    ws, cal, qnet = small
    checked = 0
    for layer, q, want in _layer_inputs(qnet, random_input(2, 64, 64, seed=9)):
        s = layer.spec
        if s.kind == "dwconv3x3":
            got = ops.qdwconv3x3(q.astype(np.uint8), layer.weight, layer.multiplier, layer.bias, s.stride, s.pads,
                                 layer.input.zero_point, layer.output.zero_point, layer.clamp, isa=isa)
        elif s.kind == "pwconv":
            n, h, w, c = q.shape
            got = ops.qgemm_u8s8(q.reshape(-1, c).astype(np.uint8), layer.weight, layer.multiplier, layer.bias,
                                 layer.input.zero_point, layer.output.zero_point, layer.clamp,
                                 isa=isa).reshape(n, h, w, -1)
        else:
            continue
        np.testing.assert_array_equal(got, want, err_msg=s.name)
        checked += 1
    assert checked == 26


def test_quantised_network_follows_the_float_one(small):
    ws, cal, qnet = small
    x = random_input(8, 64, 64, seed=5)
    lf, li = reference.forward(ws, x), Q.int8_forward(qnet, x)
    assert li.shape == lf.shape == (8, 10)
    err = np.abs(li - lf).max() / np.abs(lf).max()
    assert err < 0.1, err
    feats = Q.int8_forward(qnet, x, features=True)
    np.testing.assert_allclose(feats, reference.features(ws, x), atol=0.1 * np.abs(feats).max())
    assert repr(qnet).startswith("QuantizedNet(alpha=0.25, layers=27")


def test_bias_correction_removes_the_mean_error(small):
    ws, cal, corrected = small
    plain = Q.quantize_network(ws, cal, bias_correction=False)
    x = cal  # the correction is fitted on these: the channel means of the logits must match better
    lf = reference.forward(ws, x)
    mean_err = [np.abs((Q.int8_forward(qn, x) - lf).mean(axis=0)).mean() for qn in (plain, corrected)]
    assert mean_err[1] < mean_err[0], mean_err


@pytest.mark.parametrize("method", Q.METHODS)
def test_range_methods(small, method):
    ws, cal, _ = small
    qn = Q.quantize_network(ws, cal, method=method, bias_correction=False)
    assert all(layer.output.zero_point == 0 and 0 < layer.output.scale <= 6 / 255 for layer in qn.layers)
    # minmax covers every calibration value; the others clip some of the tail
    lf = reference.forward(ws, cal)
    assert np.corrcoef(Q.int8_forward(qn, cal).ravel(), lf.ravel())[0, 1] > 0.95


def test_shipped_model_keeps_the_top1_of_the_example_photos():
    ws = mf.load_weight_set(None)
    cfg = ws.config
    photos = [mf.preprocess(os.path.join(EXAMPLES, f), 224, cfg.input_mean, cfg.input_std)
              for f in ("coffee.png", "chelsea.png")]
    x = np.concatenate(photos)
    # calibration: mirrored and shifted crops of the same photos (a smoke test, not an evaluation:
    # bench/int8_accuracy.py measures on disjoint photos)
    cal = np.concatenate([x[:, ::-1, :, :], x[:, :, ::-1, :]])
    qn = Q.quantize_network(ws, np.ascontiguousarray(cal))
    np.testing.assert_array_equal(np.argmax(Q.int8_forward(qn, x), 1), np.argmax(reference.forward(ws, x), 1))


def test_agreement():
    a = np.array([[0.0, 1.0], [2.0, 0.0], [0.0, 3.0]])
    b = np.array([[0.0, 2.0], [0.0, 2.0], [0.0, 1.0]])
    p = np.array([[0.1, 0.9], [0.6, 0.4], [0.3, 0.3]])
    overall, confident = Q.agreement(a, b)
    assert overall == pytest.approx(2 / 3) and np.isnan(confident)
    assert Q.agreement(a, b, p) == (pytest.approx(2 / 3), pytest.approx(0.5))


def test_bad_arguments(small):
    ws, cal, _ = small
    with pytest.raises(InputError, match="method"):
        Q.quantize_network(ws, cal, method="kl")
    with pytest.raises(InputError, match="percentile"):
        Q.quantize_network(ws, cal, method="percentile", percentile=0)
    with pytest.raises(InputError, match="calibration"):
        Q.quantize_network(ws, cal[0])
    bad = cal.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        Q.quantize_network(ws, bad)
