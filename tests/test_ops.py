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
    # widths and heights 1..5 (every border case of a 3x3 window, rows narrower than any block)
    (1, 1, 5, 3), (1, 2, 2, 9), (1, 5, 1, 24), (2, 4, 3, 15), (1, 5, 5, 48), (1, 3, 4, 80),
    # row widths around the 8-pixel blocks, channel counts that peel a head block for alignment
    (1, 6, 15, 64), (1, 9, 16, 96), (1, 7, 17, 144), (1, 10, 23, 160), (1, 4, 33, 8),
    # the MobileNetV1 1.0 depthwise layers (and the odd sizes TF "SAME" meets at other resolutions)
    (1, 112, 112, 32), (1, 56, 56, 128), (1, 28, 28, 256), (1, 14, 14, 512), (1, 7, 7, 1024),
    (1, 15, 15, 512), (1, 27, 29, 256),
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


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("stride", [1, 2])
def test_dwconv3x3_every_channel_remainder(isa, stride):
    """Every channel count 1..40 (all remainders mod 8 and 16, one to two and a half vectors)."""
    rng = np.random.default_rng(stride)
    for c in range(1, 41):
        for h, w in [(5, 9), (6, 4)]:
            x = rng.standard_normal((1, h, w, c)).astype(np.float32)
            wt = rng.standard_normal((3, 3, c)).astype(np.float32)
            b = rng.standard_normal(c).astype(np.float32)
            for pads in [(1, 1, 1, 1), tf_same_pads(h, w, stride), (0, 0, 0, 0), (1, 0, 0, 1)]:
                got = ops.dwconv3x3(x, wt, b, stride=stride, pads=pads, clamp=None, isa=isa)
                want = R.dwconv3x3(x, wt, b, stride, pads, None)
                assert rel_err(got, want) < 1e-5, (c, h, w, pads)


def _at_offset(a: np.ndarray, offset: int) -> np.ndarray:
    """A C-contiguous copy of ``a`` whose data starts ``offset`` floats past a 64-byte boundary."""
    buf = np.empty(a.size + 32, np.float32)
    start = (-(buf.ctypes.data // 4)) % 16 + offset
    out = buf[start:start + a.size].reshape(a.shape)
    out[...] = a
    assert out.ctypes.data % 64 == 4 * offset and out.flags.c_contiguous
    return out


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("c", [16, 64, 80, 128, 144, 17])
def test_dwconv3x3_any_alignment(isa, stride, c):
    """Inputs and weights at every float offset from a 64-byte boundary (the kernels may align
    their channel blocks to the input, so each offset takes a different channel split)."""
    rng = np.random.default_rng(c)
    x0 = rng.standard_normal((1, 6, 11, c)).astype(np.float32)
    w0 = rng.standard_normal((3, 3, c)).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    pads = tf_same_pads(6, 11, stride)
    want = R.dwconv3x3(x0, w0, b, stride, pads, RELU6)
    for offset in range(16):
        x, wt = _at_offset(x0, offset), _at_offset(w0, (offset * 7) % 16)
        got = ops.dwconv3x3(x, wt, b, stride=stride, pads=pads, clamp=RELU6, isa=isa)
        assert rel_err(got, want) < 1e-5, offset


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("op", ["dw1", "dw2", "stem"])
@pytest.mark.parametrize("conv", ["tf_same", "symmetric"])
def test_reads_stay_inside_the_image(isa, op, conv):
    """The images before and after the one computed are NaN: any read outside an image (a row
    above or below, a pixel left or right of a row's ends, channels past the last one) would
    poison the result."""
    stride = 1 if op == "dw1" else 2
    for h, w, c in [(5, 7, 24), (4, 6, 3), (7, 5, 33), (1, 3, 16), (3, 1, 64)]:
        rng = np.random.default_rng(h * w * c)
        x = np.full((3, h, w, c), np.nan, np.float32)
        x[1] = rng.standard_normal((h, w, c))
        pads = pads_for(conv, h, w, stride)
        if h + pads[0] + pads[2] < 3 or w + pads[1] + pads[3] < 3:
            continue
        if op == "stem":
            wt = rng.standard_normal((3, 3, c, 5)).astype(np.float32)
            got = ops.conv3x3(x, wt, None, stride=stride, pads=pads, clamp=None, isa=isa)
            want = R.conv3x3(x[1:2], wt, None, stride, pads, None)
        else:
            wt = rng.standard_normal((3, 3, c)).astype(np.float32)
            got = ops.dwconv3x3(x, wt, None, stride=stride, pads=pads, clamp=None, isa=isa)
            want = R.dwconv3x3(x[1:2], wt, None, stride, pads, None)
        assert np.isfinite(got[1]).all(), (h, w, c)
        assert rel_err(got[1:2], want) < 1e-5, (h, w, c)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("conv", ["tf_same", "symmetric"])
@pytest.mark.parametrize("op", ["dw", "stem"])
def test_every_row_range(isa, stride, conv, op):
    """Each single output row computed alone equals that row of the full result, and nothing else
    of the output is written (top and bottom border rows included)."""
    rng = np.random.default_rng(5)
    h, w, c = 9, 10, 3 if op == "stem" else 40
    x = rng.standard_normal((1, h, w, c)).astype(np.float32)
    f = ops.conv3x3 if op == "stem" else ops.dwconv3x3
    wt = rng.standard_normal((3, 3, c, 24) if op == "stem" else (3, 3, c)).astype(np.float32)
    b = rng.standard_normal(wt.shape[-1]).astype(np.float32)
    pads = pads_for(conv, h, w, stride)
    full = f(x, wt, b, stride, pads, RELU6, isa=isa)
    oh = full.shape[1]
    for r in range(oh):
        part = f(x, wt, b, stride, pads, RELU6, rows=(r, r + 1), isa=isa)
        np.testing.assert_array_equal(part[:, r], full[:, r])
        assert not np.delete(part, r, axis=1).any(), f"row range ({r}, {r + 1}) wrote other rows"
    assert not f(x, wt, b, stride, pads, RELU6, rows=(2, 2), isa=isa).any()


STEM_SHAPES = [(1, 32, 32, 3, 32), (3, 17, 23, 3, 8), (1, 9, 4, 3, 5), (2, 10, 10, 3, 17), (1, 6, 7, 2, 24),
               (1, 224, 224, 3, 32),
               # every alpha's stem width (8, 16, 24, 32), other Cin, widths 1..5, Cout past one block
               (1, 13, 19, 3, 16), (1, 11, 12, 3, 24), (1, 5, 3, 1, 33), (1, 1, 4, 4, 48), (1, 2, 5, 5, 64),
               (1, 4, 1, 3, 7), (1, 3, 2, 8, 40), (1, 15, 9, 3, 1), (1, 192, 160, 3, 8)]


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


@pytest.mark.parametrize("isa", ISAS)
def test_conv3x3_every_output_channel_count(isa):
    """Cout 1..40 (every remainder of the 8/16-wide output vectors) with Cin 3, both strides."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((1, 7, 10, 3)).astype(np.float32)
    for co in range(1, 41):
        wt = rng.standard_normal((3, 3, 3, co)).astype(np.float32)
        b = rng.standard_normal(co).astype(np.float32)
        for stride in (1, 2):
            for pads in [(1, 1, 1, 1), tf_same_pads(7, 10, stride)]:
                got = ops.conv3x3(x, wt, b, stride=stride, pads=pads, clamp=(-1.0, 1.5), isa=isa)
                want = R.conv3x3(x, wt, b, stride, pads, (-1.0, 1.5))
                assert rel_err(got, want) < 1e-5, (co, stride, pads)


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
def test_global_avg_pool_channels_and_precision(isa):
    """Every channel remainder, and means of many pixels: a large offset with small variations
    (what a naive float32 running sum gets wrong), and a feature map from a ~4000 x 4000 image."""
    rng = np.random.default_rng(4)
    for c in list(range(1, 34)) + [1000]:
        x = rng.uniform(0, 6, (2, 3, 5, c)).astype(np.float32)
        assert rel_err(ops.global_avg_pool(x, isa=isa), R.global_avg_pool(x)) < 1e-6, c
    x = (1000.0 + rng.uniform(-1, 1, (1, 512, 512, 3))).astype(np.float32)
    assert rel_err(ops.global_avg_pool(x, isa=isa), R.global_avg_pool(x)) < 1e-6
    x = rng.uniform(0, 6, (1, 125, 125, 40)).astype(np.float32)
    assert rel_err(ops.global_avg_pool(x, isa=isa), R.global_avg_pool(x)) < 1e-6


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
    for isa in ("scalar", "avx2", "avx512", "neon", "neon_dotprod", "neon_i8mm"):
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
