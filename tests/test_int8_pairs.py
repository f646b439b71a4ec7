"""The pair limit of the int8 GEMM weights (``quantize_network(pair_limit=True)``, the default).

AVX2 without VNNI multiplies uint8 x int8 with ``vpmaddubsw``, which adds the two products of a
pair of consecutive K rows in int16 with saturation; it is exact when every pair keeps
``|q[2j, n]| + |q[2j+1, n]| <= 128`` (255 * 128 = 32640). K is the order the GEMM packer takes the
weights in: rows of the pointwise and classifier weights, ``weight.reshape(27, C)`` for the stem.

* the constraint holds on every GEMM layer of a quantised model (nearest and GPTQ rounding), and
  fails without it on weights where it can (the shipped float32 model, a seeded random one);
* the pair rounding is the least-squares choice on the limit; the scale search never does worse
  than projecting at the usual scale; the depthwise weights are not touched;
* the C++ int8 network still equals the numpy integer reference bit for bit, on every ISA;
* the choice is recorded in the file and reported by the CLI.
"""

from __future__ import annotations

import itertools
import json
import os

import numpy as np
import pytest

import mobilenet_fast as mf
from mobilenet_fast import quantization as Q
from mobilenet_fast.cli import main
from mobilenet_fast.qweights import load_quantized, save_quantized
from mobilenet_fast.runner import folded_tensors
from mobilenet_fast.weights import save_weights

from helpers import random_input, random_weights
from isa import isas_to_test


def _gemm_layers(qnet):
    layers = [l for l in qnet.layers if l.spec.kind in Q.GEMM_KINDS]
    return layers + ([qnet.classifier] if qnet.classifier is not None else [])


@pytest.fixture(scope="module")
def seeded():
    # gamma_scale 1.5 spreads the folded weights: pairs near the channel maximum are common
    ws = random_weights(alpha=0.25, num_classes=10, resolution=(64, 64), seed=7, gamma_scale=1.5)
    return ws, random_input(4, 64, 64, seed=1)


@pytest.fixture(scope="module")
def limited(seeded):
    ws, cal = seeded
    return Q.quantize_network(ws, cal)


@pytest.fixture(scope="module")
def unlimited(seeded):
    ws, cal = seeded
    return Q.quantize_network(ws, cal, pair_limit=False)


def test_pair_sums_follow_the_packer_order():
    w = np.arange(-13, 14, dtype=np.int8).reshape(3, 3, 3, 1)  # the stem layout: K = 27 (kh, kw, ci)
    flat = np.abs(w.reshape(27).astype(int))
    want = [flat[2 * j] + (flat[2 * j + 1] if 2 * j + 1 < 27 else 0) for j in range(14)]
    assert Q.pair_sums(w).ravel().tolist() == want  # the odd K's last row pairs with zero


def test_limit_holds_on_every_gemm_layer(limited):
    assert limited.pair_limit and limited.pairs_within_limit()
    for layer in _gemm_layers(limited):
        assert Q.pair_sums(layer.weight).max() <= Q.PAIR_LIMIT, layer.spec.name
        assert np.abs(layer.weight.astype(int)).max() <= 127


def test_without_the_limit_some_pair_breaks_it(unlimited):
    assert not unlimited.pair_limit
    assert not unlimited.pairs_within_limit()
    assert max(int(Q.pair_sums(l.weight).max()) for l in _gemm_layers(unlimited)) > Q.PAIR_LIMIT


def test_shipped_float_model_breaks_the_limit_unless_asked():
    ws = mf.load_weight_set(None)
    w, b = (a.astype(np.float64) for a in folded_tensors(ws)["stem"])
    plain, _ = Q._quantize_weight(w.astype(np.float32), b, 0.02)
    assert (Q.pair_sums(plain) > Q.PAIR_LIMIT).mean() > 0.05  # the stem: ~17% of its pairs
    q, s = Q._quantize_weight(w.astype(np.float32), b, 0.02, pair_limit=True)
    assert Q.pair_sums(q).max() <= Q.PAIR_LIMIT and q.shape == w.shape
    # the scale search keeps the stem's weights close (a pure projection halves whole channels)
    err = np.abs(q * s.astype(np.float64) - w).max() / np.abs(w).max()
    assert err < 0.02, err


def test_depthwise_weights_are_not_limited(limited, unlimited):
    for a, b in zip(limited.layers, unlimited.layers):
        if a.spec.kind == "dwconv3x3":
            np.testing.assert_array_equal(a.weight, b.weight, err_msg=a.spec.name)
            np.testing.assert_array_equal(a.weight_scale, b.weight_scale)


def test_pair_rounding_is_the_nearest_point_on_the_limit():
    rng = np.random.default_rng(3)
    r = rng.uniform(-127, 127, (2, 400))
    q = Q._round_pairs(r)
    assert Q.pair_sums(q).max() <= Q.PAIR_LIMIT
    ok = np.abs(np.rint(r)).sum(axis=0) <= Q.PAIR_LIMIT
    np.testing.assert_array_equal(q[:, ok], np.rint(r[:, ok]))  # pairs within the limit: nearest
    grid = np.array([(a, b) for a, b in itertools.product(range(-127, 128), repeat=2)
                     if abs(a) + abs(b) <= Q.PAIR_LIMIT], np.float64)
    for j in np.flatnonzero(~ok)[:40]:
        best = ((grid - r[:, j]) ** 2).sum(axis=1).min()
        assert ((q[:, j] - r[:, j]) ** 2).sum() == pytest.approx(best), j


def test_scale_search_is_never_worse_than_projecting():
    rng = np.random.default_rng(4)
    w = rng.standard_normal((64, 48)) * rng.uniform(0.5, 2, 48)
    w[:, :8] = np.sign(w[:, :8]) * rng.uniform(0.9, 1.0, (64, 8))  # channels of near-equal magnitudes
    s0 = np.abs(w).max(axis=0) / 127
    q, s = Q._pair_limited(w, s0)
    assert Q.pair_sums(q).max() <= Q.PAIR_LIMIT and np.all(s >= s0)
    err = ((w - q * s) ** 2).sum(axis=0)
    proj = ((w - Q._round_pairs(w / s0) * s0) ** 2).sum(axis=0)
    assert np.all(err <= proj + 1e-12)
    assert err[:8].sum() < 0.1 * proj[:8].sum()


def test_seven_bit_weights(seeded):
    ws, cal = seeded
    qn = Q.quantize_network(ws, cal, pair_limit=False, weight_bits=7)
    for layer in qn.layers + [qn.classifier]:
        top = np.abs(layer.weight.astype(int)).max()
        assert top <= (63 if layer.spec.kind in Q.GEMM_KINDS else 127), layer.spec.name
    assert qn.pairs_within_limit()
    with pytest.raises(mf.InputError, match="weight_bits"):
        Q.quantize_network(ws, cal, weight_bits=6)


def test_gptq_rounding_keeps_the_limit(seeded):
    ws, cal = seeded
    qn = Q.quantize_network(ws, cal, rounding="gptq")
    assert qn.pairs_within_limit() and qn.rounding == "gptq"
    with pytest.raises(mf.InputError, match="rounding"):
        Q.quantize_network(ws, cal, rounding="stochastic")


@pytest.mark.parametrize("isa", isas_to_test())
def test_cpp_network_equals_the_reference(limited, isa):
    x = random_input(3, 64, 72, seed=9)
    got = limited.plan(64, 72, isa=isa, threads=1).run(x)
    np.testing.assert_array_equal(got, Q.int8_forward(limited, x).astype(np.float32))


def test_the_file_records_the_choice(seeded, limited, unlimited, tmp_path):
    ws, _ = seeded
    for qn in (limited, unlimited):
        path = tmp_path / f"m{int(qn.pair_limit)}.safetensors"
        save_quantized(path, ws.config, qn)
        _, back = load_quantized(path)
        assert back.pair_limit == qn.pair_limit and back.rounding == qn.rounding
        assert back.pairs_within_limit() == qn.pairs_within_limit()


def test_cli_pair_limit_option(tmp_path, capsys):
    weights = tmp_path / "small.safetensors"
    save_weights(weights, random_weights(alpha=0.25, num_classes=7, resolution=(64, 64), seed=7, gamma_scale=1.5))
    calib = tmp_path / "calib"
    calib.mkdir()
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)).save(calib / f"img{i}.png")
    results = {}
    for flag in ([], ["--no-pair-limit"]):
        out = tmp_path / f"q{len(flag)}.safetensors"
        code = main(["quantize", "--weights", str(weights), "--calibration", str(calib), str(out), "--json", *flag])
        text, err = capsys.readouterr()
        assert code == 0, err
        results[bool(flag)] = json.loads(text)
        assert load_quantized(out)[1].pair_limit == (not flag)
    assert results[False]["pair_limit"] and results[False]["pairs_within_limit"]
    assert not results[True]["pair_limit"] and not results[True]["pairs_within_limit"]
    code = main(["info", "--weights", str(tmp_path / "q0.safetensors"), "--json"])
    rows = json.loads(capsys.readouterr()[0])["quantization"]
    assert code == 0
    assert all(r["pairs_within_limit"] is (None if ".dw" in r["name"] else True) for r in rows)
    assert os.path.exists(tmp_path / "q1.safetensors")
