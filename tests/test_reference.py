"""The numpy reference ops against independent formulations (direct loops, einsum, onnxruntime)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import naive_conv3x3, naive_dwconv3x3, random_input, random_weights
from mobilenet_fast import reference as R
from mobilenet_fast.architecture import conv_output_and_pads
from mobilenet_fast.errors import InputError, MobileNetFastError
from mobilenet_fast.weights import ModelConfig

# (N, H, W, channels, stride): odd and even sizes, stride 1 and 2, channel counts 3, 5, 17.
CONV_SHAPES = [
    (1, 7, 9, 3, 2),
    (2, 8, 6, 5, 2),
    (1, 9, 8, 17, 2),
    (2, 6, 7, 3, 1),
    (1, 5, 5, 17, 1),
    (1, 3, 4, 5, 1),
]
EXTRA_PADS = [(0, 0, 0, 0), (2, 1, 0, 2), (0, 1, 1, 0)]


def _pad_cases():
    for n, h, w, c, s in CONV_SHAPES:
        for conv in ("tf_same", "symmetric"):
            yield pytest.param(n, h, w, c, s, conv_output_and_pads(h, w, s, conv)[2], id=f"{n}x{h}x{w}x{c}-s{s}-{conv}")
        for pads in EXTRA_PADS:
            if h + pads[0] + pads[2] >= 3 and w + pads[1] + pads[3] >= 3:
                yield pytest.param(n, h, w, c, s, pads, id=f"{n}x{h}x{w}x{c}-s{s}-pads{''.join(map(str, pads))}")


PAD_CASES = list(_pad_cases())


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(list(key))


def test_padding_conventions_differ_on_stride2_even():
    # What the convention tests rest on: the two conventions really pad differently.
    assert conv_output_and_pads(8, 8, 2, "tf_same") == (4, 4, (0, 0, 1, 1))
    assert conv_output_and_pads(8, 8, 2, "symmetric") == (4, 4, (1, 1, 1, 1))
    assert conv_output_and_pads(7, 9, 2, "tf_same") == (4, 5, (1, 1, 1, 1))


@pytest.mark.parametrize("n,h,w,cin,stride,pads", PAD_CASES)
@pytest.mark.parametrize("cout", [1, 4])
def test_conv3x3_matches_direct_loops(n, h, w, cin, stride, pads, cout):
    rng = _rng(n, h, w, cin, stride, cout, *pads)
    x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
    wt = rng.standard_normal((3, 3, cin, cout)).astype(np.float32)
    bias = rng.standard_normal(cout).astype(np.float32)
    expect = naive_conv3x3(x, wt, bias, stride, pads)
    got = R.conv3x3(x, wt, bias, stride, pads)
    oh = (h + pads[0] + pads[2] - 3) // stride + 1
    ow = (w + pads[1] + pads[3] - 3) // stride + 1
    assert got.shape == expect.shape == (n, oh, ow, cout)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expect, rtol=1e-12, atol=1e-12)
    # fused clamp == clamp afterwards
    np.testing.assert_allclose(R.conv3x3(x, wt, bias, stride, pads, clamp=(-0.5, 0.7)),
                               np.clip(expect, -0.5, 0.7), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(R.conv3x3(x, wt, None, stride, pads), naive_conv3x3(x, wt, None, stride, pads),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n,h,w,c,stride,pads", PAD_CASES)
def test_dwconv3x3_matches_direct_loops(n, h, w, c, stride, pads):
    rng = _rng(7, n, h, w, c, stride, *pads)
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    wt = rng.standard_normal((3, 3, c)).astype(np.float32)
    bias = rng.standard_normal(c).astype(np.float32)
    expect = naive_dwconv3x3(x, wt, bias, stride, pads)
    got = R.dwconv3x3(x, wt, bias, stride, pads)
    assert got.shape == expect.shape
    np.testing.assert_allclose(got, expect, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(R.dwconv3x3(x, wt, bias, stride, pads, clamp=R.RELU6), np.clip(expect, 0, 6),
                               rtol=1e-12, atol=1e-12)
    # depthwise == dense conv with a diagonal weight
    diag = np.zeros((3, 3, c, c), dtype=np.float32)
    for ch in range(c):
        diag[:, :, ch, ch] = wt[:, :, ch]
    np.testing.assert_allclose(got, R.conv3x3(x, diag, bias, stride, pads), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cin,cout", [(3, 5), (17, 4), (8, 16)])
def test_pwconv_matches_einsum(cin, cout):
    rng = _rng(cin, cout)
    x = rng.standard_normal((2, 5, 3, cin)).astype(np.float32)
    wt = rng.standard_normal((cin, cout)).astype(np.float32)
    bias = rng.standard_normal(cout).astype(np.float32)
    expect = np.einsum("nhwi,io->nhwo", x.astype(np.float64), wt.astype(np.float64)) + bias
    np.testing.assert_allclose(R.pwconv(x, wt, bias), expect, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(R.pwconv(x, wt, None, clamp=(0.0, 1.0)), np.clip(expect - bias, 0, 1),
                               rtol=1e-12, atol=1e-12)
    # a 1x1 conv is a 3x3 conv whose only non-zero tap is the centre
    w3 = np.zeros((3, 3, cin, cout), dtype=np.float32)
    w3[1, 1] = wt
    np.testing.assert_allclose(R.pwconv(x, wt, bias), R.conv3x3(x, w3, bias, 1, (1, 1, 1, 1)), rtol=1e-12, atol=1e-12)


def test_global_avg_pool_and_dense():
    rng = _rng(1)
    x = rng.standard_normal((3, 5, 7, 6))
    pooled = R.global_avg_pool(x)
    assert pooled.shape == (3, 6)
    for n in range(3):
        for c in range(6):
            assert pooled[n, c] == pytest.approx(sum(x[n, i, j, c] for i in range(5) for j in range(7)) / 35, abs=1e-12)
    wt = rng.standard_normal((6, 4))
    b = rng.standard_normal(4)
    out = R.dense(pooled, wt, b)
    for n in range(3):
        for m in range(4):
            assert out[n, m] == pytest.approx(b[m] + sum(pooled[n, k] * wt[k, m] for k in range(6)), abs=1e-12)
    np.testing.assert_allclose(R.dense(pooled, wt), out - b, atol=1e-12)


def test_softmax():
    rng = _rng(2)
    x = rng.standard_normal((4, 10)) * 3
    p = R.softmax(x)
    e = np.exp(x)
    np.testing.assert_allclose(p, e / e.sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(R.softmax(x + 1000.0), p, rtol=1e-12)  # shift invariance, no overflow
    big = R.softmax(np.array([[1000.0, 1000.0, -1000.0]]))
    assert np.isfinite(big).all()
    np.testing.assert_allclose(big, [[0.5, 0.5, 0.0]], atol=1e-12)
    np.testing.assert_allclose(R.softmax(x.T, axis=0), p.T, rtol=1e-12)


def test_batchnorm_formula():
    rng = _rng(3)
    x = rng.standard_normal((2, 3, 4, 5))
    g, b, m = rng.uniform(0.5, 1.5, 5), rng.normal(0, 0.1, 5), rng.normal(0, 0.1, 5)
    v = rng.uniform(0.5, 1.5, 5)
    y = R.batchnorm(x, g, b, m, v, 1e-3)
    for c in range(5):
        np.testing.assert_allclose(y[..., c], g[c] * (x[..., c] - m[c]) / np.sqrt(v[c] + 1e-3) + b[c], rtol=1e-12)


def _bn_params(rng, c):
    return (rng.uniform(0.5, 1.5, c).astype(np.float32), rng.normal(0, 0.1, c).astype(np.float32),
            rng.normal(0, 0.1, c).astype(np.float32), rng.uniform(0.5, 1.5, c).astype(np.float32))


@pytest.mark.parametrize("eps", [1e-3, 1e-5])
def test_fold_batchnorm(eps):
    rng = _rng(4)
    x = rng.standard_normal((2, 9, 8, 5)).astype(np.float32)
    # stem-like conv3x3
    wt = rng.standard_normal((3, 3, 5, 7)).astype(np.float32)
    bn = _bn_params(rng, 7)
    fw, fb = R.fold_batchnorm(wt, *bn, eps=eps)
    assert fw.dtype == np.float32 and fb.dtype == np.float32 and fw.shape == wt.shape and fb.shape == (7,)
    np.testing.assert_allclose(R.conv3x3(x, fw, fb, 2, (0, 0, 1, 1)),
                               R.batchnorm(R.conv3x3(x, wt, None, 2, (0, 0, 1, 1)), *bn, eps=eps), atol=1e-5)
    # depthwise
    wd = rng.standard_normal((3, 3, 5)).astype(np.float32)
    bn = _bn_params(rng, 5)
    fw, fb = R.fold_batchnorm(wd, *bn, eps=eps)
    np.testing.assert_allclose(R.dwconv3x3(x, fw, fb, 1, (1, 1, 1, 1)),
                               R.batchnorm(R.dwconv3x3(x, wd, None, 1, (1, 1, 1, 1)), *bn, eps=eps), atol=1e-5)
    # pointwise
    wp = rng.standard_normal((5, 6)).astype(np.float32)
    bn = _bn_params(rng, 6)
    fw, fb = R.fold_batchnorm(wp, *bn, eps=eps)
    np.testing.assert_allclose(R.pwconv(x, fw, fb), R.batchnorm(R.pwconv(x, wp), *bn, eps=eps), atol=1e-5)
    # float64 in -> float64 out, exact to rounding
    fw64, fb64 = R.fold_batchnorm(wp.astype(np.float64), *(p.astype(np.float64) for p in bn), eps=eps)
    assert fw64.dtype == np.float64
    np.testing.assert_allclose(R.pwconv(x, fw64, fb64), R.batchnorm(R.pwconv(x, wp), *bn, eps=eps), atol=1e-12)


# ---------------------------------------------------------------------------------------------
# against onnxruntime single-node Conv graphs


def _ort_conv(x_nhwc, w_oihw, bias, stride, pads, group):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    from helpers import run_onnxruntime

    n, h, w, c = x_nhwc.shape
    oh = (h + pads[0] + pads[2] - 3) // stride + 1
    ow = (w + pads[1] + pads[3] - 3) // stride + 1
    inits = [numpy_helper.from_array(w_oihw.astype(np.float32), "W")]
    ins = ["X", "W"]
    if bias is not None:
        inits.append(numpy_helper.from_array(bias.astype(np.float32), "B"))
        ins.append("B")
    node = helper.make_node("Conv", ins, ["Y"], kernel_shape=[3, 3], strides=[stride, stride], pads=list(pads),
                            group=group)
    graph = helper.make_graph([node], "conv", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [n, c, h, w])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [n, w_oihw.shape[0], oh, ow])],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    (y,) = run_onnxruntime(model, {"X": np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))})
    return y.transpose(0, 2, 3, 1)


@pytest.mark.parametrize("n,h,w,cin,stride,pads", PAD_CASES)
def test_conv3x3_matches_onnxruntime(n, h, w, cin, stride, pads):
    rng = _rng(5, n, h, w, cin, stride, *pads)
    x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
    wt = rng.standard_normal((3, 3, cin, 6)).astype(np.float32)
    bias = rng.standard_normal(6).astype(np.float32)
    expect = _ort_conv(x, wt.transpose(3, 2, 0, 1), bias, stride, pads, 1)
    got = R.conv3x3(x, wt, bias, stride, pads)
    assert got.shape == expect.shape
    np.testing.assert_allclose(got, expect, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("n,h,w,c,stride,pads", PAD_CASES)
def test_dwconv3x3_matches_onnxruntime(n, h, w, c, stride, pads):
    rng = _rng(6, n, h, w, c, stride, *pads)
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    wt = rng.standard_normal((3, 3, c)).astype(np.float32)
    bias = rng.standard_normal(c).astype(np.float32)
    expect = _ort_conv(x, wt.transpose(2, 0, 1)[:, None], bias, stride, pads, c)
    got = R.dwconv3x3(x, wt, bias, stride, pads)
    assert got.shape == expect.shape
    np.testing.assert_allclose(got, expect, atol=1e-4, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# bad arguments


def test_op_argument_errors():
    x = np.zeros((1, 5, 5, 3), dtype=np.float32)
    with pytest.raises(InputError, match="Cin=3"):
        R.conv3x3(x, np.zeros((3, 3, 4, 2)), None, 1, (1, 1, 1, 1))
    with pytest.raises(InputError, match="4 dimensions"):
        R.conv3x3(x[0], np.zeros((3, 3, 3, 2)), None, 1, (1, 1, 1, 1))
    with pytest.raises(InputError, match="pads"):
        R.conv3x3(x, np.zeros((3, 3, 3, 2)), None, 1, (1, 1, 1))
    with pytest.raises(InputError, match="pads"):
        R.dwconv3x3(x, np.zeros((3, 3, 3)), None, 1, (1, -1, 1, 1))
    with pytest.raises(InputError, match="stride"):
        R.dwconv3x3(x, np.zeros((3, 3, 3)), None, 0, (1, 1, 1, 1))
    with pytest.raises(InputError, match="does not fit"):
        R.dwconv3x3(np.zeros((1, 2, 5, 3)), np.zeros((3, 3, 3)), None, 1, (0, 0, 0, 0))
    with pytest.raises(InputError, match="bias"):
        R.pwconv(x, np.zeros((3, 4)), np.zeros(3))
    with pytest.raises(InputError, match="Cin=3"):
        R.pwconv(x, np.zeros((4, 4)))
    with pytest.raises(InputError, match="K=3"):
        R.dense(np.zeros((2, 3)), np.zeros((4, 4)))
    with pytest.raises(InputError, match="clamp"):
        R.pwconv(x, np.zeros((3, 4)), clamp=(6.0, 0.0))
    with pytest.raises(InputError, match="real numbers"):
        R.pwconv(x.astype(np.complex64), np.zeros((3, 4)))
    with pytest.raises(InputError, match="channels"):
        R.batchnorm(x, np.ones(4), np.zeros(4), np.zeros(4), np.ones(4), 1e-3)
    with pytest.raises(InputError, match="output channels"):
        R.fold_batchnorm(np.zeros((3, 4)), np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), 1e-3)
    with pytest.raises(InputError, match="var"):
        R.batchnorm(x, np.ones(3), np.zeros(3), np.zeros(3), np.array([1.0, 0.0, 1.0]), 0.0)
    with pytest.raises(MobileNetFastError):  # all errors share the package's base class
        R.global_avg_pool(np.zeros((1, 0, 3, 2)))


# ---------------------------------------------------------------------------------------------
# normalize and the whole network


def test_normalize():
    cfg = ModelConfig(input_mean=(123.675, 116.28, 103.53), input_std=(58.395, 57.12, 57.375))
    img = np.arange(2 * 4 * 5 * 3, dtype=np.int64).reshape(2, 4, 5, 3).astype(np.uint8)
    out = R.normalize(img, cfg)
    assert out.dtype == np.float32 and out.shape == img.shape
    for c in range(3):
        np.testing.assert_allclose(out[..., c], (img[..., c].astype(np.float64) - cfg.input_mean[c]) / cfg.input_std[c],
                                   rtol=1e-6)
    np.testing.assert_array_equal(R.normalize(img.astype(np.float32), cfg), out)
    np.testing.assert_array_equal(R.normalize(img[0], cfg), out[0])  # a single HWC image
    default = R.normalize(np.array([[[0, 255, 127.5]]]), ModelConfig())
    np.testing.assert_allclose(default, [[[-1.0, 1.0, 0.0]]], atol=1e-7)
    with pytest.raises(InputError, match="3 \\(RGB\\)"):
        R.normalize(np.zeros((1, 4, 4, 4), np.uint8), cfg)
    with pytest.raises(InputError, match="dtype"):
        R.normalize(np.zeros((4, 4, 3), dtype=object), cfg)


def test_forward_outputs_and_options():
    ws = random_weights(0.25, 7, "tf_same", (64, 64), seed=11)
    x = random_input(2, 64, 64, seed=1)
    logits = R.forward(ws, x)
    assert logits.shape == (2, 7) and logits.dtype == np.float64
    probs = R.forward(ws, x, logits=False)
    np.testing.assert_allclose(probs, R.softmax(logits), rtol=1e-12)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    feats = R.features(ws, x)
    assert feats.shape == (2, 256)
    np.testing.assert_allclose(logits, R.dense(feats, ws.tensors["classifier.weight"], ws.tensors["classifier.bias"]),
                               rtol=1e-12, atol=1e-12)
    acts = R.activations(ws, x)
    arch = ws.config.architecture((64, 64))
    assert list(acts) == [layer.name for layer in arch]
    for layer in arch:
        if layer.kind in ("conv3x3", "dwconv3x3", "pwconv"):
            a = acts[layer.name]
            assert a.shape == (2, layer.out_h, layer.out_w, layer.out_channels)
            assert a.min() >= 0.0 and a.max() <= 6.0
    np.testing.assert_array_equal(acts["pool"], feats)
    np.testing.assert_array_equal(acts["classifier"], logits)


def test_forward_runs_at_the_input_size_and_odd_sizes():
    ws = random_weights(0.25, 5, "tf_same", (128, 128), seed=3)
    x = random_input(1, 97, 131, seed=3)
    acts = R.activations(ws, x)
    assert acts["stem"].shape[1:3] == (49, 66)
    assert acts["blocks.12.pw"].shape[1:3] == (4, 5)


def test_forward_stem_and_first_block_by_hand():
    # An independent assembly of the first layers from the naive loops, with folded BN.
    ws = random_weights(0.25, 3, "symmetric", (32, 32), seed=5)
    t, eps = ws.tensors, ws.config.bn_epsilon
    x = random_input(1, 32, 34, seed=5)
    bn = lambda p: [t[f"{p}.bn.{f}"] for f in ("gamma", "beta", "mean", "var")]  # noqa: E731
    w, b = R.fold_batchnorm(t["stem.conv.weight"], *bn("stem"), eps=eps)
    y = np.clip(naive_conv3x3(x, w, b, 2, (1, 1, 1, 1)), 0, 6)
    w, b = R.fold_batchnorm(t["blocks.0.dw.weight"], *bn("blocks.0.dw"), eps=eps)
    y = np.clip(naive_dwconv3x3(y, w, b, 1, (1, 1, 1, 1)), 0, 6)
    acts = R.activations(ws, x)
    np.testing.assert_allclose(acts["blocks.0.dw"], y, atol=1e-5)


def test_forward_batch_is_independent_per_image():
    ws = random_weights(0.25, 4, "symmetric", (64, 64), seed=2)
    x = random_input(3, 64, 48, seed=4)
    together = R.forward(ws, x)
    for i in range(3):
        np.testing.assert_allclose(together[i], R.forward(ws, x[i:i + 1])[0], rtol=1e-12, atol=1e-12)


def test_padding_convention_changes_the_result():
    # Same tensors, other convention: the logits must differ clearly (so 1e-3 tests can tell them apart).
    a = random_weights(0.25, 10, "tf_same", (64, 64), seed=8)
    b = random_weights(0.25, 10, "symmetric", (64, 64), seed=8)
    for k in a.tensors:
        np.testing.assert_array_equal(a.tensors[k], b.tensors[k])
    x = random_input(1, 64, 64, seed=8)
    assert np.abs(R.forward(a, x) - R.forward(b, x)).max() > 1e-2


def test_feature_extractor():
    ws = random_weights(0.25, 0, "tf_same", (64, 64), seed=9)
    x = random_input(2, 64, 64, seed=9)
    out = R.forward(ws, x)
    assert out.shape == (2, 256)
    np.testing.assert_array_equal(out, R.forward(ws, x, logits=False))
    np.testing.assert_array_equal(out, R.features(ws, x))


def test_forward_argument_errors():
    ws = random_weights(0.25, 3, "tf_same", (64, 64), seed=1)
    with pytest.raises(InputError, match="3 channels"):
        R.forward(ws, np.zeros((1, 64, 64, 4), np.float32))
    with pytest.raises(InputError, match="4 dimensions"):
        R.forward(ws, np.zeros((64, 64, 3), np.float32))
    with pytest.raises(InputError, match="at least 32"):
        R.forward(ws, np.zeros((1, 31, 64, 3), np.float32))
    with pytest.raises(InputError, match="batch size 0"):
        R.forward(ws, np.zeros((0, 64, 64, 3), np.float32))
    with pytest.raises(InputError, match="WeightSet"):
        R.forward(ws.tensors, np.zeros((1, 64, 64, 3), np.float32))  # type: ignore[arg-type]


def test_random_weights_helper_is_deterministic_and_realistic():
    a = random_weights(0.5, 10, "tf_same", (97, 131), seed=3)
    b = random_weights(0.5, 10, "tf_same", (97, 131), seed=3)
    c = random_weights(0.5, 10, "tf_same", (97, 131), seed=4)
    assert a.config.resolution == (97, 131) and a.config.alpha == 0.5
    for k in a.tensors:
        assert a.tensors[k].dtype == np.float32 and a.tensors[k].flags.c_contiguous
        np.testing.assert_array_equal(a.tensors[k], b.tensors[k])
    assert any(not np.array_equal(a.tensors[k], c.tensors[k]) for k in a.tensors)
    acts = R.activations(a, random_input(1, 97, 131))
    for name, act in acts.items():
        if name not in ("pool", "classifier"):
            assert 0.05 < act.mean() < 2.0, name  # neither vanishing nor exploding
    assert 0.05 < acts["classifier"].std() < 5.0
    sat = R.activations(random_weights(0.5, 10, "tf_same", (97, 131), seed=3, gamma_scale=1.5),
                        random_input(1, 97, 131))
    assert np.mean([np.mean(sat[f"blocks.{i}.pw"] == 6.0) for i in range(13)]) > 0.03
