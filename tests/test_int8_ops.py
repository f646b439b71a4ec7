"""The int8 kernels (``ops.qgemm_u8s8``, ``ops.qdwconv3x3``) on every ISA path against numpy integer references.

The reference sums in int64 and requantises with the float32 operations the kernels document
(int32 -> float32, one float32 multiply, clamp, round half to even), so the comparison is exact:
every path must give the same bytes, including the exact ties.
"""

from __future__ import annotations

import numpy as np
import pytest

from mobilenet_fast import ops
from mobilenet_fast.errors import InputError

from isa import isas_to_test

ISAS = isas_to_test()


def reference(a, w, scale, bias=None, zin=0, zout=0, clamp=(0, 255)):
    acc = (a.astype(np.int64) - zin) @ w.astype(np.int64)
    if bias is not None:
        acc = acc + bias.astype(np.int64)
    assert np.all(np.abs(acc) < 2**31)
    y = acc.astype(np.int32).astype(np.float32) * scale.astype(np.float32)
    y = np.clip(y, np.float32(clamp[0] - zout), np.float32(clamp[1] - zout))
    return (np.rint(y).astype(np.int32) + zout).astype(np.uint8)


def operands(rng, m, k, n, wmax=127):
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    w = rng.integers(-wmax, wmax + 1, (k, n), dtype=np.int8)
    bias = rng.integers(-50000, 50001, n, dtype=np.int32)
    scale = (rng.uniform(0.5, 4.0, n) / (64 * np.sqrt(k) * 40)).astype(np.float32)
    return a, w, bias, scale


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 5, 7), (14, 33, 32), (15, 64, 33), (17, 100, 9), (49, 256, 40),
                                   (196, 32, 64), (2, 1024, 1001)])
def test_matches_integer_reference(isa, m, k, n):
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    a, w, bias, scale = operands(rng, m, k, n)
    for zin, zout, clamp in [(0, 0, (0, 255)), (3, 128, (0, 255)), (128, 7, (7, 200))]:
        got = ops.qgemm_u8s8(a, w, scale, bias, input_zero_point=zin, output_zero_point=zout, clamp=clamp, isa=isa)
        assert got.dtype == np.uint8 and got.shape == (m, n)
        np.testing.assert_array_equal(got, reference(a, w, scale, bias, zin, zout, clamp))


@pytest.mark.parametrize("isa", ISAS)
def test_ties_round_to_even(isa):
    rng = np.random.default_rng(7)
    a, w, _, _ = operands(rng, 20, 5, 40, wmax=1)
    scale = np.full(40, 0.125, np.float32)
    got = ops.qgemm_u8s8(a, w, scale, output_zero_point=128, isa=isa)
    want = reference(a, w, scale, zout=128)
    np.testing.assert_array_equal(got, want)
    # the case matters: many products land exactly halfway, where rounding half up would differ
    acc = a.astype(np.int64) @ w.astype(np.int64)
    assert np.mean(acc % 8 == 4) > 0.05
    away = (np.floor(np.abs(acc / 8) + 0.5) * np.sign(acc) + 128).clip(0, 255).astype(np.uint8)
    assert np.any(away != want)


def test_every_isa_gives_the_same_bytes():
    rng = np.random.default_rng(3)
    a, w, bias, scale = operands(rng, 57, 300, 77)
    outs = [ops.qgemm_u8s8(a, w, scale, bias, 5, 9, isa=isa) for isa in ISAS]
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])


def limit_pairs(w):
    """Pair-limited copy of w[K, N]: |w[2j]| + |w[2j+1]| <= 128 in every column, the second weight
    of an offending pair cut to what the first leaves (so many pairs sit exactly at the limit)."""
    w = w.astype(np.int64).copy()
    for p in range(0, w.shape[0] - 1, 2):
        room = 128 - np.abs(w[p])
        w[p + 1] = np.clip(w[p + 1], -room, room)
    return w.astype(np.int8)


def pair_sums(w):
    wp = np.abs(np.pad(w.astype(np.int64), ((0, w.shape[0] % 2), (0, 0))))
    return wp[0::2] + wp[1::2]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (13, 7, 9), (25, 64, 33), (12, 27, 32), (2, 1024, 1001)])
def test_pairs_kernel_matches_integer_reference(isa, m, k, n):
    """kernel="pairs" (vpmaddubsw on AVX2) on pair-limited weights at the int16 edge: all-255
    activations on some rows, pairs summing to exactly 128."""
    rng = np.random.default_rng(m * 7 + k * 3 + n)
    a, w, bias, scale = operands(rng, m, k, n)
    w = limit_pairs(w)
    if k > 1:
        assert (pair_sums(w) == 128).any()
    a[::3] = 255
    for zin, zout, clamp in [(0, 0, (0, 255)), (128, 7, (7, 200))]:
        want = reference(a, w, scale, bias, zin, zout, clamp)
        for kernel in ("pairs", "auto", "general"):
            got = ops.qgemm_u8s8(a, w, scale, bias, zin, zout, clamp, isa, kernel=kernel)
            np.testing.assert_array_equal(got, want, err_msg=kernel)


def test_pairs_kernel_refuses_weights_over_the_limit():
    a = np.full((2, 2), 255, np.uint8)
    w = np.array([[64], [65]], np.int8)  # 64 + 65 > 128: vpmaddubsw could saturate
    scale = np.ones(1, np.float32) / 1024
    with pytest.raises(InputError, match="pair-limited"):
        ops.qgemm_u8s8(a, w, scale, kernel="pairs")
    # "auto" takes the general kernel for them, and stays exact on every ISA
    for isa in ISAS:
        np.testing.assert_array_equal(ops.qgemm_u8s8(a, w, scale, isa=isa), reference(a, w, scale))
    with pytest.raises(InputError, match="kernel must be"):
        ops.qgemm_u8s8(a, w, scale, kernel="fast")


@pytest.mark.parametrize("kwargs,match", [
    (dict(a=np.zeros((2, 3), np.float32)), "dtype uint8"),
    (dict(weights=np.zeros((3, 4), np.uint8)), "dtype int8"),
    (dict(weights=np.zeros((5, 4), np.int8)), "expected \\(3, N\\)"),
    (dict(scale=np.zeros(4, np.float32)), "positive finite"),
    (dict(scale=np.full(4, np.nan, np.float32)), "positive finite"),
    (dict(scale=np.ones(3, np.float32)), "scale has shape"),
    (dict(bias=np.zeros(4, np.int64)), "dtype int32"),
    (dict(input_zero_point=256), "input_zero_point"),
    (dict(output_zero_point=-1), "output_zero_point"),
    (dict(clamp=(9, 3)), "clamp min"),
    (dict(clamp=(0, 300)), "clamp max"),
    (dict(isa="sse9"), "unknown"),
])
def test_bad_arguments_are_input_errors(kwargs, match):
    args = dict(a=np.zeros((2, 3), np.uint8), weights=np.zeros((3, 4), np.int8), scale=np.ones(4, np.float32))
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        ops.qgemm_u8s8(**args)


def test_bias_overflow_is_an_input_error():
    w = np.full((4, 1), 127, np.int8)
    with pytest.raises(InputError, match="overflows int32"):
        ops.qgemm_u8s8(np.zeros((1, 4), np.uint8), w, np.ones(1, np.float32),
                       np.array([-2**31 + 10], np.int32), input_zero_point=255)


# ---- int8 depthwise 3x3 (ops.qdwconv3x3)

def dw_reference(x, w, scale, bias, stride, pads, zin, zout, clamp=(0, 255)):
    n, h, wd, c = x.shape
    t, l, b, r = pads
    xp = np.pad(x.astype(np.int64) - zin, ((0, 0), (t, b), (l, r), (0, 0)))  # padding = the zero point
    oh, ow = (h + t + b - 3) // stride + 1, (wd + l + r - 3) // stride + 1
    acc = np.zeros((n, oh, ow, c), np.int64) + (0 if bias is None else bias.astype(np.int64))
    for kh in range(3):
        for kw in range(3):
            acc += xp[:, kh:kh + stride * (oh - 1) + 1:stride, kw:kw + stride * (ow - 1) + 1:stride, :] * w[kh, kw]
    y = acc.astype(np.int32).astype(np.float32) * scale.astype(np.float32)
    y = np.clip(y, np.float32(clamp[0] - zout), np.float32(clamp[1] - zout))
    return (np.rint(y).astype(np.int32) + zout).astype(np.uint8)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("n,h,w,c,stride,pads", [
    (1, 1, 1, 1, 1, (1, 1, 1, 1)), (2, 5, 7, 3, 1, (1, 1, 1, 1)), (1, 9, 8, 17, 2, (0, 0, 1, 1)),
    (3, 8, 9, 33, 2, (1, 1, 1, 1)), (1, 14, 14, 64, 1, (1, 1, 1, 1)), (1, 15, 13, 40, 2, (1, 0, 0, 1)),
    (1, 7, 7, 1024, 1, (1, 1, 1, 1)), (2, 3, 3, 8, 1, (0, 0, 0, 0)),
])
def test_qdwconv_matches_integer_reference(isa, n, h, w, c, stride, pads):
    rng = np.random.default_rng(h * 100 + w * 10 + c)
    x = rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)
    wt = rng.integers(-128, 128, (3, 3, c), dtype=np.int8)
    bias = rng.integers(-20000, 20001, c, dtype=np.int32)
    scale = (rng.uniform(0.5, 2.0, c) / 2000).astype(np.float32)
    for zin, zout, clamp in [(0, 0, (0, 255)), (128, 3, (3, 250)), (255, 128, (0, 255))]:
        got = ops.qdwconv3x3(x, wt, scale, bias, stride, pads, zin, zout, clamp, isa=isa)
        np.testing.assert_array_equal(got, dw_reference(x, wt, scale, bias, stride, pads, zin, zout, clamp))


def test_qdwconv_rows_and_errors():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (1, 6, 5, 9), dtype=np.uint8)
    wt = rng.integers(-128, 128, (3, 3, 9), dtype=np.int8)
    scale = np.full(9, 1 / 500, np.float32)
    full = ops.qdwconv3x3(x, wt, scale)
    part = ops.qdwconv3x3(x, wt, scale, rows=(2, 4))
    np.testing.assert_array_equal(part[:, 2:4], full[:, 2:4])
    assert not part[:, :2].any() and not part[:, 4:].any()
    with pytest.raises(InputError, match="dtype uint8"):
        ops.qdwconv3x3(x.astype(np.float32), wt, scale)
    with pytest.raises(InputError, match="expected \\(3, 3, 9\\)"):
        ops.qdwconv3x3(x, np.ascontiguousarray(wt[:, :, :4]), scale)
    with pytest.raises(InputError, match="stride"):
        ops.qdwconv3x3(x, wt, scale, stride=3)
    with pytest.raises(InputError, match="positive finite"):
        ops.qdwconv3x3(x, wt, np.zeros(9, np.float32))
    with pytest.raises(InputError, match="every dimension"):
        ops.qdwconv3x3(np.zeros((0, 4, 4, 9), np.uint8), wt, scale)
