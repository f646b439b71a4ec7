"""Every C++ op, on every ISA path this machine runs, against the numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
from isa import isas_to_test

from mobilenet_fast import InputError, ops
from mobilenet_fast import reference as R

ISAS = isas_to_test()
RELU6 = (0.0, 6.0)


def rel_err(got: np.ndarray, want: np.ndarray) -> float:
    """Max abs error relative to the output's scale (max |want|, at least 1)."""
    return float(np.abs(got.astype(np.float64) - want).max() / max(1.0, float(np.abs(want).max())))


def tf_same_pads(h: int, w: int, stride: int):
    def one(n: int):
        out = -(-n // stride)
        total = max((out - 1) * stride + 3 - n, 0)
        return total // 2, total - total // 2
    t, b = one(h)
    l, r = one(w)
    return (t, l, b, r)


def pads_for(conv: str, h: int, w: int, stride: int):
    return tf_same_pads(h, w, stride) if conv == "tf_same" else (1, 1, 1, 1)


# Odd/even sizes, channel counts that are not multiples of 8/16 (and ones that are).
DW_SHAPES = [
    (1, 1, 1, 1), (1, 3, 3, 5), (3, 7, 9, 17), (1, 8, 8, 16), (2, 13, 6, 33), (1, 14, 14, 64),
    (1, 5, 11, 100), (3, 4, 4, 7), (1, 28, 28, 31), (1, 2, 17, 129),
]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("conv", ["tf_same", "symmetric"])
@pytest.mark.parametrize("shape", DW_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_dwconv3x3_matches_reference(isa, stride, conv, shape):
    n, h, w, c = shape
    rng = np.random.default_rng(hash((shape, stride, conv)) % 2**32)
    x = rng.standard_normal(shape).astype(np.float32)
    wt = rng.standard_normal((3, 3, c)).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    pads = pads_for(conv, h, w, stride)
    if h + pads[0] + pads[2] < 3 or w + pads[1] + pads[3] < 3:
        with pytest.raises(InputError):
            ops.dwconv3x3(x, wt, b, stride, pads, RELU6, isa=isa)
        return
    for clamp in (RELU6, None, (-0.5, 0.25)):
        got = ops.dwconv3x3(x, wt, b, stride=stride, pads=pads, clamp=clamp, isa=isa)
        want = R.dwconv3x3(x, wt, b, stride, pads, clamp)
        assert got.shape == want.shape
        assert got.dtype == np.float32
        assert rel_err(got, want) < 1e-5


STEM_SHAPES = [(1, 32, 32, 3, 32), (3, 17, 23, 3, 8), (1, 9, 4, 3, 5), (2, 10, 10, 3, 17), (1, 6, 7, 2, 24),
               (1, 224, 224, 3, 32)]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("conv", ["tf_same", "symmetric"])
@pytest.mark.parametrize("shape", STEM_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_conv3x3_matches_reference(isa, stride, conv, shape):
    n, h, w, ci, co = shape
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, h, w, ci)).astype(np.float32)
    wt = rng.standard_normal((3, 3, ci, co)).astype(np.float32)
    b = rng.standard_normal(co).astype(np.float32)
    pads = pads_for(conv, h, w, stride)
    for clamp in (RELU6, None):
        got = ops.conv3x3(x, wt, b, stride=stride, pads=pads, clamp=clamp, isa=isa)
        want = R.conv3x3(x, wt, b, stride, pads, clamp)
        assert got.shape == want.shape
        assert rel_err(got, want) < 1e-5


GEMM_SHAPES = [(1, 1, 1), (1, 7, 5), (13, 17, 19), (49, 1024, 1024), (100, 33, 65), (3, 8, 16), (196, 512, 512),
               (5, 1000, 3),
               # (m, k, n) of MobileNetV1 1.0/224: pointwise layers and the classifier
               (12544, 32, 64), (3136, 64, 128), (784, 128, 256), (196, 256, 512), (49, 512, 1024),
               (1, 1024, 1001), (2, 1024, 1001),
               # k = 1, and row/column counts just off the AVX2 (6x16) and AVX-512 (14x32) tiles
               (29, 1, 33), (15, 3, 47), (7, 2, 65), (8, 5, 31), (27, 9, 17), (20, 64, 97)]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("mkn", GEMM_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_gemm_and_pwconv_match_reference(isa, mkn):
    m, k, n = mkn
    rng = np.random.default_rng(m * 1000 + n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    for clamp in (RELU6, None, (-1.0, 1.0)):
        got = ops.gemm(a, w, b, clamp=clamp, isa=isa)
        want = R._apply_clamp(a.astype(np.float64) @ w + b, clamp)
        assert rel_err(got, want) < 1e-5
    # the same numbers as a 1x1 conv over a [1, m, 1, k] image and a batch of m 1x1 images
    x = a.reshape(1, m, 1, k)
    assert rel_err(ops.pwconv(x, w, b, clamp=RELU6, isa=isa), R.pwconv(x, w, b, RELU6)) < 1e-5
    x = a.reshape(m, 1, 1, k)
    assert rel_err(ops.pwconv(x, w, b, clamp=RELU6, isa=isa), R.pwconv(x, w, b, RELU6)) < 1e-5


@pytest.mark.parametrize("isa", ISAS)
def test_gemm_every_tile_remainder(isa):
    """Every row count m % MR and column count n % NR of the register tiles (MR <= 14, NR <= 32)."""
    rng = np.random.default_rng(11)
    for k in (1, 2, 19):
        for m in range(1, 30):
            for n in (1, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 47, 48, 49, 63, 64, 65):
                a = rng.standard_normal((m, k)).astype(np.float32)
                w = rng.standard_normal((k, n)).astype(np.float32)
                b = rng.standard_normal(n).astype(np.float32)
                clamp = (-1.5, 2.0) if (m + n) % 2 else None
                got = ops.gemm(a, w, b, clamp=clamp, isa=isa)
                want = R._apply_clamp(a.astype(np.float64) @ w + b, clamp)
                assert got.shape == (m, n)
                assert rel_err(got, want) < 1e-5, (m, k, n)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("shape", [(1, 7, 7, 1024), (3, 5, 3, 17), (2, 1, 1, 8), (1, 31, 29, 3)])
def test_global_avg_pool_dense_softmax(isa, shape):
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 6, shape).astype(np.float32)
    assert rel_err(ops.global_avg_pool(x, isa=isa), R.global_avg_pool(x)) < 1e-6
    feats = R.global_avg_pool(x).astype(np.float32)
    w = rng.standard_normal((shape[3], 11)).astype(np.float32)
    b = rng.standard_normal(11).astype(np.float32)
    logits = ops.dense(feats, w, b, isa=isa)
    assert rel_err(logits, R.dense(feats, w, b)) < 1e-5
    p = ops.softmax(logits, isa=isa)
    np.testing.assert_allclose(p, R.softmax(logits), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("isa", ISAS)
def test_softmax_is_stable_for_large_logits(isa):
    z = np.array([[1000.0, 999.0, -1000.0], [-5e4, -5e4, -5e4]], np.float32)
    p = ops.softmax(z, isa=isa)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p, R.softmax(z), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("op", ["dw", "stem"])
def test_row_ranges_compose(isa, op):
    """Computing disjoint row ranges and stitching them gives the full result."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 15, 12, 3 if op == "stem" else 21)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 8) if op == "stem" else (3, 3, 21)).astype(np.float32)
    f = ops.conv3x3 if op == "stem" else ops.dwconv3x3
    full = f(x, w, None, 2, (1, 0, 1, 1), RELU6, isa=isa)
    oh = full.shape[1]
    parts = [f(x, w, None, 2, (1, 0, 1, 1), RELU6, rows=(a, b), isa=isa) for a, b in [(0, 3), (3, 4), (4, oh)]]
    stitched = np.concatenate([parts[0][:, 0:3], parts[1][:, 3:4], parts[2][:, 4:oh]], axis=1)
    np.testing.assert_array_equal(stitched, full)
    assert not parts[0][:, 3:].any(), "rows outside the range must not be written"
    with pytest.raises(InputError, match="rows"):
        f(x, w, None, 2, (1, 0, 1, 1), RELU6, rows=(0, oh + 1), isa=isa)


# ------------------------------------------------------------------------------ bad inputs
def _dw_args():
    x = np.zeros((1, 8, 8, 4), np.float32)
    w = np.zeros((3, 3, 4), np.float32)
    return x, w


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda x, w: (x.astype(np.float64), w), "float32"),
        (lambda x, w: (x[0], w), "4 dimensions"),
        (lambda x, w: (x[:, :, ::2], w), "C-contiguous"),
        (lambda x, w: (x, np.ascontiguousarray(w[:, :, :3])), "shape"),
        (lambda x, w: (x.tolist(), w), "numpy array"),
        (lambda x, w: (x[:, :1, :1], w), "smaller than the 3x3 kernel"),
        (lambda x, w: (x[:0], w), "empty"),
    ],
)
def test_dwconv_rejects_bad_arrays(mutate, match):
    x, w = mutate(*_dw_args())
    with pytest.raises(InputError, match=match):
        ops.dwconv3x3(x, w, None, 1, (0, 0, 0, 0))


@pytest.mark.parametrize("kwargs, match", [
    (dict(stride=3), "stride"), (dict(pads=(2, 0, 0, 0)), "pads"), (dict(pads=(1, 1, 1)), "pads"),
    (dict(clamp=(6.0, 0.0)), "clamp"), (dict(bias=np.zeros(5, np.float32)), "bias"),
    (dict(isa="sse9"), "unknown"),
])
def test_dwconv_rejects_bad_parameters(kwargs, match):
    x, w = _dw_args()
    args = dict(bias=None, stride=1, pads=(1, 1, 1, 1))
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        ops.dwconv3x3(x, w, **args)


def test_gemm_and_pool_reject_bad_arrays():
    a = np.zeros((4, 5), np.float32)
    with pytest.raises(InputError, match="expected \\(5, N\\)"):
        ops.gemm(a, np.zeros((4, 5), np.float32))
    with pytest.raises(InputError, match="float32"):
        ops.gemm(a, np.zeros((5, 5), np.float16))
    with pytest.raises(InputError, match="C-contiguous"):
        ops.gemm(np.zeros((5, 4), np.float32).T, np.zeros((5, 5), np.float32))
    with pytest.raises(InputError, match="4 dimensions"):
        ops.global_avg_pool(a)
    with pytest.raises(InputError, match="empty"):
        ops.softmax(np.zeros((1, 0), np.float32))
    with pytest.raises(InputError, match="HWIO"):
        ops.conv3x3(np.zeros((1, 8, 8, 3), np.float32), np.zeros((3, 3, 4, 8), np.float32))


def test_unsupported_or_missing_isa_is_a_clear_error(monkeypatch):
    from mobilenet_fast import _core

    x, w = _dw_args()
    compiled = set(_core.compiled_isas())
    for isa in ("scalar", "avx2", "avx512", "neon"):
        if isa in _core.supported_isas():
            ops.dwconv3x3(x, w, isa=isa)
        else:
            with pytest.raises(InputError, match="not (compiled|supported)"):
                ops.dwconv3x3(x, w, isa=isa)
    assert "scalar" in compiled
    monkeypatch.setenv("MOBILENET_FAST_ISA", "bogus")
    with pytest.raises(InputError, match="MOBILENET_FAST_ISA 'bogus' is unknown"):
        ops.dwconv3x3(x, w)
    monkeypatch.setenv("MOBILENET_FAST_ISA", "scalar")
    assert _core.select_isa(None) == "scalar"
