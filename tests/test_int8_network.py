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


# ---- the C++ int8 network (QuantizedNet.plan -> _core.QPlan)

@pytest.mark.parametrize("isa", isas_to_test())
def test_cpp_int8_network_equals_the_reference_bit_for_bit(small, isa):
    ws, cal, qnet = small
    x = random_input(5, 64, 64, seed=11)
    want = Q.int8_forward(qnet, x).astype(np.float32)
    want_feats = Q.int8_forward(qnet, x, features=True).astype(np.float32)
    for threads in (1, 2, 3):
        plan = qnet.plan(64, 64, isa=isa, threads=threads)
        assert plan.isa == isa and plan.threads == threads and plan.num_classes == 10
        for batch in (1, 2, 5):  # one image split over the threads, and whole images per thread
            np.testing.assert_array_equal(plan.run(x[:batch]), want[:batch])
        np.testing.assert_array_equal(plan.features(x), want_feats)


def _pair_limited(qnet):
    """qnet with every GEMM layer's weights (stem, pointwise, classifier) made pair-limited."""
    import dataclasses

    from test_int8_ops import limit_pairs

    def lim(layer):
        if layer.spec.kind == "dwconv3x3":
            return layer
        w = layer.weight
        return dataclasses.replace(layer, weight=limit_pairs(w.reshape(-1, w.shape[-1])).reshape(w.shape))
    return dataclasses.replace(qnet, layers=[lim(layer) for layer in qnet.layers], classifier=lim(qnet.classifier))


@pytest.mark.parametrize("isa", isas_to_test())
def test_cpp_int8_network_on_the_pairs_kernels(small, isa):
    """With pair-limited GEMM weights every GEMM layer takes the pairs kernels (vpmaddubsw on
    AVX2), and the network still equals the numpy reference bit for bit; one pair over the limit
    sends its layer to the general kernels, with the same exactness."""
    import dataclasses

    ws, cal, qnet = small
    limited = _pair_limited(qnet)
    x = random_input(3, 64, 64, seed=12)
    plan = limited.plan(64, 64, isa=isa, threads=2)
    assert plan.gemm_layers == 15 and plan.pair_limited_layers == 15
    np.testing.assert_array_equal(plan.run(x), Q.int8_forward(limited, x).astype(np.float32))
    pw = limited.layers[2]
    assert pw.spec.kind == "pwconv"
    w = pw.weight.copy()
    w[0:2, 0] = 100  # 100 + 100 > 128
    over = dataclasses.replace(limited, layers=limited.layers[:2] + [dataclasses.replace(pw, weight=w)] +
                               limited.layers[3:])
    plan = over.plan(64, 64, isa=isa)
    assert plan.pair_limited_layers == 14
    np.testing.assert_array_equal(plan.run(x), Q.int8_forward(over, x).astype(np.float32))


def test_cpp_int8_network_at_odd_sizes_and_every_isa_alike():
    ws = random_weights(alpha=0.25, num_classes=7, resolution=(61, 45), seed=5, padding="symmetric")
    cal = random_input(3, 61, 45, seed=2)
    qnet = Q.quantize_network(ws, cal)
    x = random_input(2, 61, 45, seed=4)
    want = Q.int8_forward(qnet, x).astype(np.float32)
    outs = [qnet.plan(61, 45, isa=isa).run(x) for isa in isas_to_test()]
    for o in outs:
        np.testing.assert_array_equal(o, want)


def test_cpp_int8_network_refuses_bad_input(small):
    ws, cal, qnet = small
    plan = qnet.plan(64, 64)
    x = random_input(1, 64, 64)
    with pytest.raises(InputError, match="expected \\(N, 64, 64, 3\\)"):
        plan.run(random_input(1, 32, 64))
    bad = x.copy()
    bad[0, 5, 5, 1] = np.inf
    with pytest.raises(InputError, match="NaN or Inf"):
        plan.run(bad)
    with pytest.raises(InputError, match="dtype float32"):
        plan.run(x.astype(np.float64))
    with pytest.raises(InputError, match="threads"):
        qnet.plan(64, 64, threads=0)
    assert "QPlan(64x64" in repr(plan)


def test_cpp_int8_network_refuses_inconsistent_parameters(small):
    import copy

    ws, cal, qnet = small
    for mutate, match in [
        (lambda q: setattr(q.layers[1], "weight", q.layers[1].weight[:2]), "blocks.0.dw weights"),
        (lambda q: setattr(q.layers[2], "bias", q.layers[2].bias[:-1]), "blocks.0.pw weights"),
        (lambda q: setattr(q.layers[3], "weight_scale", -q.layers[3].weight_scale), "positive finite"),
        (lambda q: setattr(q, "input", Q.QParams(0.0, 3)), "input's scale"),
    ]:
        bad = copy.deepcopy(qnet)
        mutate(bad)
        with pytest.raises(InputError, match=match):
            bad.plan(64, 64)


# ---- the user-facing int8 model (mobilenet_fast.quantize)

def test_quantize_gives_a_model_that_runs_the_int8_network(small):
    ws, cal, _ = small
    model = mf.Model(ws, threads=2)
    qm = mf.quantize(model, cal)
    assert isinstance(qm, mf.QuantizedModel) and qm.precision == "int8" and model.precision == "float32"
    assert "precision='int8'" in repr(qm) and "precision" not in repr(model)
    x = random_input(3, 64, 64, seed=21)
    np.testing.assert_array_equal(qm.logits(x), Q.int8_forward(qm.qnet, x).astype(np.float32))
    p = qm.predict(x)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    assert qm.features(x).shape == (3, 256)
    # other input sizes plan on demand (the pool scale follows the size)
    x2 = random_input(1, 96, 80, seed=2)
    np.testing.assert_array_equal(qm.logits(x2), Q.int8_forward(qm.qnet, x2).astype(np.float32))
    qm.threads = 1
    np.testing.assert_array_equal(qm.logits(x), Q.int8_forward(qm.qnet, x).astype(np.float32))
    bad = x.copy()
    bad[1, 0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN or Inf"):
        qm.logits(bad)


def test_quantize_the_shipped_model_from_image_files(tmp_path):
    import shutil

    for f in ("coffee.png", "chelsea.png"):
        shutil.copy(os.path.join(EXAMPLES, f), tmp_path / f)
    model = mf.load(threads=1)
    qm = mf.quantize(model, str(tmp_path))  # a directory of calibration photos
    for f in ("coffee.png", "chelsea.png"):
        path = os.path.join(EXAMPLES, f)
        assert qm.classify(path, top=1)[0].index == model.classify(path, top=1)[0].index
    with pytest.raises(InputError, match="no images"):
        mf.quantize(model, [])
