"""Inputs from Python: every public entry point refuses what it cannot handle with a clear error
(InputError, ImageReadError, MemoryError with a message) before C++ touches memory, and converts
every image mode it accepts correctly. Odd images are made with Pillow (or by hand, for headers
Pillow will not write) in tmp_path."""

from __future__ import annotations

import gc
import importlib
import os
import struct
import subprocess
import sys
import time
import warnings
import zlib

import numpy as np
import pytest
from helpers import random_input, random_weights

import mobilenet_fast as mf
from mobilenet_fast import ImageReadError, InputError, _core, ops
from mobilenet_fast import reference as R

Image = pytest.importorskip("PIL.Image", reason="Pillow is needed to make test images")
# the module (the package's `mobilenet_fast.preprocess` is the function of the same name)
P = importlib.import_module("mobilenet_fast.preprocess")


@pytest.fixture(scope="module")
def weights():
    return random_weights(0.25, 7, "tf_same", (64, 64), seed=3)


@pytest.fixture(scope="module")
def model(weights):
    return mf.Model(weights, threads=2)


def _dw():
    return np.zeros((1, 8, 8, 4), np.float32), np.zeros((3, 3, 4), np.float32)


def _unaligned(shape):
    n = int(np.prod(shape))
    buf = bytearray(4 * n + 1)
    a = np.frombuffer(buf, dtype=np.float32, count=n, offset=1).reshape(shape)
    assert not a.flags.aligned and a.flags.c_contiguous
    return a


def _huge_view(shape):
    """A C-contiguous-looking float32 array of `shape` over 64 bytes: only its header may be read."""
    base = np.zeros(16, np.float32)
    strides = tuple(int(np.prod(shape[i + 1:])) * 4 for i in range(len(shape)))
    a = np.lib.stride_tricks.as_strided(base, shape=shape, strides=strides, writeable=False)
    assert a.flags.c_contiguous
    return a


# ------------------------------------------------------------------------------ ops (bindings)
@pytest.mark.parametrize("make, match", [
    (lambda x, w: (np.ma.masked_array(x), w), "masked"),
    (lambda x, w: (x.astype(">f4"), w), "native byte order"),
    (lambda x, w: (_unaligned(x.shape), w), "aligned"),
    (lambda x, w: (x, w.astype(np.float16)), "weights must have dtype float32"),
    (lambda x, w: (x, np.ma.masked_array(w)), "weights is a masked array"),
    (lambda x, w: (np.zeros((0, 2**33, 1, 1), np.float32), w), "limit of 2\\^31"),
    (lambda x, w: (_huge_view((1, 2**16, 2**16, 1)), w), "limit of 2\\^31"),
    (lambda x, w: (x.tolist(), w), "must be a numpy array, got list"),
])
def test_ops_refuse_bad_arrays(make, match):
    x, w = make(*_dw())
    with pytest.raises(InputError, match=match):
        ops.dwconv3x3(x, w)


@pytest.mark.parametrize("kwargs, match", [
    (dict(stride=2.0), "stride must be an int, got float"),
    (dict(stride=True), "stride must be an int, got bool"),
    (dict(stride="2"), "stride must be an int"),
    (dict(stride=2**70), "stride must be in"),
    (dict(stride=-1), "stride must be 1 or 2"),
    (dict(pads=(1, 1, 1)), "pads must be four ints"),
    (dict(pads="1111"), "pads must be four ints"),
    (dict(pads=None), "pads must be four ints"),
    (dict(pads=(1.0, 1, 1, 1)), "pads top must be an int"),
    (dict(pads=(1, 1, 1, 2**40)), "pads right must be in"),
    (dict(pads=(-1, 0, 0, 0)), "pads must be 0 or 1"),
    (dict(clamp=(np.nan, 6.0)), "no NaN"),
    (dict(clamp=(0.0, float("nan"))), "no NaN"),
    (dict(clamp=(6.0, 0.0)), "min <= max"),
    (dict(clamp=(0.0,)), "clamp must be \\(min, max\\)"),
    (dict(clamp=("a", 1.0)), "clamp min must be a real number"),
    (dict(clamp=(0, 1j)), "clamp max must be a real number"),
    (dict(rows=(0, 1.5)), "rows end must be an int"),
    (dict(rows=(-1, 2)), "rows must satisfy"),
    (dict(rows=(3, 2)), "rows must satisfy"),
    (dict(rows=(0, 2**40)), "rows must satisfy"),
    (dict(rows="ab"), "rows must be \\(begin, end\\)"),
    (dict(isa=5), "isa must be a string"),
    (dict(isa="mmx"), "unknown"),
    (dict(bias=np.zeros(4, np.float64)), "bias must have dtype float32"),
    (dict(bias=np.zeros((4, 1), np.float32)), "bias must have 1 dimensions"),
])
def test_ops_refuse_bad_parameters(kwargs, match):
    x, w = _dw()
    with pytest.raises(InputError, match=match):
        ops.dwconv3x3(x, w, **kwargs)


def test_ops_accept_numpy_scalars_arrays_and_read_only_inputs():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 9, 7, 5)).astype(np.float32)
    w = rng.standard_normal((3, 3, 5)).astype(np.float32)
    want = ops.dwconv3x3(x, w, None, 2, (0, 0, 1, 1), (0.0, 6.0))
    x.setflags(write=False)
    w_ro = np.frombuffer(w.tobytes(), np.float32).reshape(w.shape)  # read-only buffer
    got = ops.dwconv3x3(x, w_ro, None, np.int64(2), np.array([0, 0, 1, 1]), (np.float32(0), np.float64(6)))
    np.testing.assert_array_equal(got, want)
    assert got.flags.writeable and got is not x
    np.testing.assert_array_equal(ops.dwconv3x3(x, w_ro, None, 2, [0, 0, 1, 1], [0, 6], rows=np.array([0, 4])), want)
    # a clamp beyond the float range is an infinite clamp, not an error
    np.testing.assert_array_equal(ops.dwconv3x3(x, w, clamp=(-1e300, 1e300)), ops.dwconv3x3(x, w))


def test_outputs_of_2_31_values_are_refused_before_allocating():
    a = np.zeros((2**20, 1), np.float32)
    with pytest.raises(InputError, match="output would have shape \\(1048576, 2048\\)"):
        ops.gemm(a, np.zeros((1, 2048), np.float32))
    x = np.zeros((1, 1024, 1024, 1), np.float32)
    with pytest.raises(InputError, match="limit of 2\\^31"):
        ops.pwconv(x, np.zeros((1, 2048), np.float32))
    with pytest.raises(InputError, match="limit of 2\\^31"):
        ops.conv3x3(x, np.zeros((3, 3, 1, 2048), np.float32))
    # just under the limit per side is fine, and so is an empty batch
    assert ops.gemm(np.zeros((0, 3), np.float32), np.ones((3, 4), np.float32)).shape == (0, 4)
    assert ops.pwconv(np.zeros((0, 2, 2, 3), np.float32), np.ones((3, 4), np.float32)).shape == (0, 2, 2, 4)


@pytest.mark.parametrize("call", [
    lambda x4, x2: ops.dwconv3x3(x4, np.ones((3, 3, 3), np.float32), check_finite=True),
    lambda x4, x2: ops.conv3x3(x4, np.ones((3, 3, 3, 2), np.float32), check_finite=True),
    lambda x4, x2: ops.pwconv(x4, np.ones((3, 2), np.float32), check_finite=True),
    lambda x4, x2: ops.gemm(x2, np.ones((3, 2), np.float32), check_finite=True),
    lambda x4, x2: ops.dense(x2, np.ones((3, 2), np.float32), check_finite=True),
    lambda x4, x2: ops.global_avg_pool(x4, check_finite=True),
    lambda x4, x2: ops.softmax(x2, check_finite=True),
])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_ops_check_finite_on_request(call, bad):
    x4 = np.zeros((2, 6, 6, 3), np.float32)
    x2 = np.zeros((4, 3), np.float32)
    call(x4, x2)  # finite: fine
    x4[1, 5, 5, 2] = bad
    x2[3, 2] = bad
    with pytest.raises(InputError, match="NaN or Inf"):
        call(x4, x2)
    # unchecked by default: no error (the result is unspecified)
    ops.softmax(x2)
    ops.dwconv3x3(x4, np.ones((3, 3, 3), np.float32))


def test_plan_constructor_checks_every_argument(weights):
    model = mf.Model(weights, threads=1)
    plan = model.plan(64, 64)
    f = model._folded
    stem = (f["stem"][0], f["stem"][1], 2, [0, 0, 1, 1])
    arch = weights.config.architecture((64, 64))
    blocks = []
    for i in range(13):
        dw, pw = arch.layer(f"blocks.{i}.dw"), arch.layer(f"blocks.{i}.pw")
        blocks.append((f[dw.name][0], f[dw.name][1], dw.stride, list(dw.pads), f[pw.name][0], f[pw.name][1]))
    cls = (np.ascontiguousarray(weights.tensors["classifier.weight"]), weights.tensors["classifier.bias"])
    x = random_input(2, 64, 64, seed=1)
    # tuples and lists alike, numpy ints for sizes
    good = _core.Plan(np.int64(64), 64, list(stem), [list(b) for b in blocks], list(cls), None, 1)
    np.testing.assert_array_equal(good.run(x), plan.run(x))
    bad_cases = [
        (dict(height="64"), "height must be an int"),
        (dict(width=64.0), "width must be an int"),
        (dict(height=2**40), "height must be in"),
        (dict(height=20000), "outside 3..16384"),
        (dict(threads=0), "threads must be in 1..256"),
        (dict(threads=2**40), "threads must be in"),
        (dict(act_max=float("nan")), "act_max"),
        (dict(act_max="6"), "act_max must be a real number"),
        (dict(stem=stem[:3]), "stem must be \\(weights, bias, stride, pads\\)"),
        (dict(stem=(stem[0], stem[1], 2.0, stem[3])), "stem stride must be an int"),
        (dict(stem=(stem[0], stem[1], 2, (0, 0, 1))), "stem pads must be four ints"),
        (dict(blocks=5), "blocks must be a list"),
        (dict(blocks=blocks[:3] + [blocks[3][:5]] + blocks[4:]), "block 3 must be"),
        (dict(blocks=blocks[:2] + [blocks[2][:2] + (3,) + blocks[2][3:]] + blocks[3:]), "block 2 depthwise: stride"),
        (dict(blocks=blocks[:1] + [blocks[1][:3] + ([1, 1, 1, 1.5],) + blocks[1][4:]] + blocks[2:]),
         "block 1 pads right must be an int"),
        (dict(blocks=[], classifier=None), "at least one block"),
        (dict(classifier=(cls[0],)), "classifier must be \\(weights, bias\\)"),
        (dict(classifier=(cls[0][:5], cls[1])), "classifier weights has shape"),
        (dict(isa=3), "isa must be a string"),
    ]
    args = dict(height=64, width=64, stem=stem, blocks=blocks, classifier=cls, isa=None, threads=1, act_max=6.0)
    for change, match in bad_cases:
        with pytest.raises(InputError, match=match):
            _core.Plan(**{**args, **change})
    with pytest.raises(InputError, match="expected \\(N, 64, 64, 3\\)"):
        plan.run(random_input(1, 64, 96))
    with pytest.raises(InputError, match="native byte order"):
        plan.run(x.astype(">f4"))


def test_huge_plans_are_refused_before_allocating():
    m = mf.Model(random_weights(1.0, 3, "tf_same", (224, 224), seed=1), threads=1)
    t = time.perf_counter()
    with pytest.raises(InputError, match="16384x16384: the stem's output would hold 2147483648 values"):
        m.plan(16384, 16384)
    assert time.perf_counter() - t < 5.0, "the refusal must come before any large allocation"
    for h, w, match in [(16385, 64, "height must be in 32..16384"), (31, 64, "height must be in 32..16384"),
                        (64.0, 64, "height must be an int"), (True, 64, "height must be an int"),
                        (64, "64", "width must be an int")]:
        with pytest.raises(InputError, match=match):
            m.plan(h, w)


def test_allocation_failure_is_a_memory_error_with_a_message(tmp_path):
    """Under an address-space limit, a plan too big for it raises MemoryError saying how much it
    needed, instead of aborting (std::bad_alloc escaping) or being killed."""
    resource = pytest.importorskip("resource", reason="needs setrlimit (POSIX)")
    if not hasattr(resource, "RLIMIT_AS"):
        pytest.skip("no RLIMIT_AS here")
    code = """
import resource, sys
sys.path.insert(0, %r)
from helpers import random_weights
import mobilenet_fast as mf
m = mf.Model(random_weights(1.0, 3, "tf_same", (224, 224), seed=1), threads=1)
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, resource.getrlimit(resource.RLIMIT_AS)[1]))
try:
    m.plan(6000, 6000)
except MemoryError as e:
    print("MemoryError:", e)
m.plan(64, 64)  # still usable afterwards
print("ok")
""" % os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "MemoryError: not enough memory for a plan of 6000x6000 with 1 thread(s)" in out.stdout, out.stdout
    assert "MiB of activation buffers" in out.stdout and out.stdout.rstrip().endswith("ok")


# ------------------------------------------------------------------------------------- Model
@pytest.mark.parametrize("make, match", [
    (lambda x: np.ma.masked_array(x), "masked"),
    (lambda x: x.astype(">f4"), "non-native byte order"),
    (lambda x: _unaligned(x.shape), "aligned"),
    (lambda x: np.zeros((1, 16385, 32, 3), np.float32)[:, :, :0], "at least 32x32"),
])
def test_model_refuses_bad_batches(model, make, match):
    x = random_input(2, 64, 64, seed=2)
    with pytest.raises(InputError, match=match):
        model.logits(make(x))


def test_model_accepts_read_only_and_memory_mapped_batches(model, tmp_path):
    x = random_input(3, 64, 64, seed=4)
    want = model.logits(x)
    ro = x.copy()
    ro.setflags(write=False)
    np.testing.assert_array_equal(model.logits(ro), want)
    path = tmp_path / "batch.npy"
    np.save(path, x)
    mm = np.load(path, mmap_mode="r")
    np.testing.assert_array_equal(model.logits(mm), want)
    np.testing.assert_array_equal(model.features(mm), model.features(x))


def test_model_argument_types(weights, monkeypatch):
    with pytest.raises(InputError, match="weights must be a WeightSet"):
        mf.Model({"stem.conv.weight": np.zeros(3)})
    with pytest.raises(InputError, match="isa must be a string"):
        mf.Model(weights, isa=2)
    for bad in (0, 257, 2**70, 2.0, None.__class__):
        with pytest.raises(InputError, match="threads"):
            mf.Model(weights, threads=bad)
    assert mf.Model(weights, threads=np.int64(2)).threads == 2
    with pytest.raises(InputError, match="path must be a str"):
        mf.load_weight_set(123)
    with pytest.raises(InputError, match="fmt must be"):
        mf.load_weight_set("model.onnx", fmt=1)
    with pytest.raises(InputError, match="top must be a positive int"):
        mf.Model(weights, threads=1).classify(np.zeros((40, 40, 3), np.uint8), top=1.5)
    monkeypatch.setenv("MOBILENET_FAST_ISA", "bogus")
    with pytest.raises(InputError, match="MOBILENET_FAST_ISA 'bogus' is unknown"):
        mf.Model(weights)
    with pytest.raises(InputError, match="MOBILENET_FAST_ISA 'bogus' is unknown"):
        mf.load(threads=1)
    with pytest.raises(InputError, match="MOBILENET_FAST_ISA 'bogus' is unknown"):
        ops.softmax(np.zeros((1, 2), np.float32))


def test_the_isa_is_resolved_once_per_model(weights, monkeypatch):
    monkeypatch.delenv("MOBILENET_FAST_ISA", raising=False)
    m = mf.Model(weights, threads=1)
    monkeypatch.setenv("MOBILENET_FAST_ISA", "scalar")
    assert m.plan(64, 64).isa == m.isa  # the plan follows the model, not the later environment
    monkeypatch.setenv("MOBILENET_FAST_ISA", "bogus")
    m.predict(random_input(1, 96, 96))  # a new plan and the softmax still use the model's ISA


def test_plan_cache_keeps_the_most_recent_sizes(weights):
    m = mf.Model(weights, threads=1)
    m.max_plans = 3
    plans = [m.plan(32 + 8 * i, 64) for i in range(5)]
    assert list(m._plans) == [(48, 64), (56, 64), (64, 64)]
    assert m.plan(48, 64) is plans[2]  # cached, and now the most recent
    m.plan(32, 64)
    assert list(m._plans) == [(64, 64), (48, 64), (32, 64)]
    np.testing.assert_array_equal(plans[0].run(random_input(1, 32, 64)), m.logits(random_input(1, 32, 64)))


# ------------------------------------------------------------------------------ NaN / Inf
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_one_image_of_a_batch_is_refused_everywhere(weights, threads, value):
    model = mf.Model(weights, threads=threads)
    feats = mf.Model(random_weights(0.25, 0, "tf_same", (64, 64), seed=3), threads=threads)
    clean = random_input(4, 64, 80, seed=5)
    want = model.logits(clean)
    for image in range(4):
        x = clean.copy()
        x[image, (17 * image) % 64, (29 * image + 3) % 80, image % 3] = value
        for call in (model.logits, model.predict, model.features, feats.features):
            with pytest.raises(InputError, match="NaN or Inf"):
                call(x)
        with pytest.raises(InputError, match="NaN or Inf"):
            model.plan(64, 80).run(x, check_finite=True)
    # the clean images still give the same answers afterwards, alone and as a batch
    np.testing.assert_array_equal(model.logits(clean), want)
    np.testing.assert_array_equal(model.logits(clean[2:3]), want[2:3])


def test_classify_refuses_non_finite_normalised_input(weights, monkeypatch):
    model = mf.Model(weights, threads=1)
    real = mf.Model.preprocess

    def poisoned(self, image, resolution=None):
        x = real(self, image, resolution)
        x[0, 0, 0, 0] = np.nan
        return x

    img = np.full((70, 50, 3), 120, np.uint8)
    assert len(model.classify([img, img], top=2)) == 2
    monkeypatch.setattr(mf.Model, "preprocess", poisoned)
    with pytest.raises(InputError, match="NaN or Inf"):
        model.classify(img)
    with pytest.raises(InputError, match="NaN or Inf"):
        model.classify([img, img])


# ---------------------------------------------------------------------------- image modes
def _png(path, width, height, bit_depth, color_type, raw_rows=None):
    """A PNG written by hand (Pillow will not write 16-bit RGB, nor a header without pixels)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    rows = raw_rows if raw_rows is not None else [b"\x00" * 63]  # no pixels for a header-only file
    data = zlib.compress(b"".join(b"\x00" + r for r in rows))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return str(path)


def test_grayscale_palette_and_bilevel(tmp_path):
    g = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(g).save(tmp_path / "l.png")
    rgb = mf.load_image(str(tmp_path / "l.png"))
    assert rgb.shape == (16, 16, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, np.repeat(g[:, :, None], 3, axis=2))
    # 1-bit: 0 -> black, 1 -> white
    bits = Image.fromarray(g >= 128).convert("1")
    bits.save(tmp_path / "b.png")
    got = mf.load_image(str(tmp_path / "b.png"))
    np.testing.assert_array_equal(got[:, :, 0], np.where(g >= 128, 255, 0))
    # palette without transparency: the palette colours
    pal = Image.new("P", (4, 1))
    pal.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    pal.putdata([0, 1, 1, 0])
    pal.save(tmp_path / "p.png")
    np.testing.assert_array_equal(mf.load_image(str(tmp_path / "p.png"))[0],
                                  [[10, 20, 30], [200, 100, 50], [200, 100, 50], [10, 20, 30]])


def test_transparency_is_composited_onto_white(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0, 0] = (200, 10, 10, 255)   # opaque: kept
    rgba[0, 1] = (200, 10, 10, 0)     # transparent: white
    rgba[0, 2] = (0, 0, 0, 128)       # half: mid gray
    rgba[1] = (10, 200, 10, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    for source in (str(tmp_path / "rgba.png"), Image.fromarray(rgba, "RGBA"), rgba):
        got = mf.load_image(source)
        assert tuple(got[0, 0]) == (200, 10, 10) and tuple(got[0, 1]) == (255, 255, 255)
        assert 125 <= got[0, 2, 0] <= 128 and tuple(got[1, 1]) == (10, 200, 10)
    la = Image.fromarray(np.stack([np.full((2, 2), 60, np.uint8), np.array([[255, 0], [255, 0]], np.uint8)], -1), "LA")
    la.save(tmp_path / "la.png")
    got = mf.load_image(str(tmp_path / "la.png"))
    np.testing.assert_array_equal(got[:, 0], [[60] * 3] * 2)
    np.testing.assert_array_equal(got[:, 1], [[255] * 3] * 2)
    # palette with a transparent index, as GIF and PNG store it
    pal = Image.new("P", (3, 1))
    pal.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    pal.putdata([0, 1, 0])
    for ext in ("png", "gif"):
        pal.save(tmp_path / f"pt.{ext}", transparency=0)
        np.testing.assert_array_equal(mf.load_image(str(tmp_path / f"pt.{ext}"))[0],
                                      [[255, 255, 255], [0, 0, 255], [255, 255, 255]])
    # premultiplied modes exist only in memory
    assert tuple(mf.load_image(Image.new("RGBa", (1, 1), (100, 50, 0, 255)))[0, 0]) == (100, 50, 0)
    assert tuple(mf.load_image(Image.new("La", (1, 1), (80, 255)))[0, 0]) == (80, 80, 80)
    assert tuple(mf.load_image(Image.new("La", (1, 1), (0, 0)))[0, 0]) == (255, 255, 255)


def test_16_bit_images_are_scaled_not_clipped(tmp_path):
    values = np.array([[0, 128, 129, 257, 4096, 32896, 65279, 65535]], np.uint16)
    want = np.round(values / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(want[0], [0, 0, 1, 1, 16, 128, 254, 255])
    # I;16 PNG (little-endian in memory), I;16B from big-endian bytes, in files and in memory
    Image.fromarray(values).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode.startswith("I;16")
    big = Image.frombytes("I;16B", (8, 1), values.astype(">u2").tobytes())
    big.save(tmp_path / "g16b.tif")
    for source in (str(tmp_path / "g16.png"), Image.fromarray(values), big, str(tmp_path / "g16b.tif"), values):
        got = mf.load_image(source)
        np.testing.assert_array_equal(got[0], np.repeat(want[0][:, None], 3, axis=1), err_msg=str(source))
    # a dark 16-bit image stays dark (values <= 255 are not mistaken for 8-bit ones)
    dark = np.full((4, 4), 200, np.uint16)
    Image.fromarray(dark).save(tmp_path / "dark16.png")
    assert mf.load_image(str(tmp_path / "dark16.png")).max() == 1
    # 16-bit RGB PNG: Pillow keeps the high byte of each channel
    row = np.array([[65535, 0, 32896], [257, 65280, 0]], ">u2")
    path = _png(tmp_path / "rgb16.png", 2, 1, 16, 2, [row.tobytes()])
    np.testing.assert_array_equal(mf.load_image(path)[0], [[255, 0, 128], [1, 255, 0]])
    # 32-bit integer images: 8-bit or 16-bit ranges, anything else refused
    assert mf.load_image(Image.fromarray(np.full((2, 2), 200, np.int32)))[0, 0, 0] == 200
    assert mf.load_image(Image.fromarray(np.full((2, 2), 65535, np.int32)))[0, 0, 0] == 255
    with pytest.raises(InputError, match="mode I.*-5..70000"):
        mf.load_image(Image.fromarray(np.array([[-5, 70000]], np.int32)))


def test_float_images_are_refused_with_advice(tmp_path):
    f = Image.fromarray(np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8))
    assert f.mode == "F"
    with pytest.raises(InputError, match="mode F.*no standard pixel range.*numpy.clip"):
        mf.load_image(f)
    f.save(tmp_path / "f.tif")
    with pytest.raises(ImageReadError, match="f.tif: a 32-bit float image"):
        mf.load_image(str(tmp_path / "f.tif"))
    with pytest.raises(ImageReadError, match="f.tif"):
        mf.preprocess(str(tmp_path / "f.tif"))


def test_colour_spaces(tmp_path):
    rgb = Image.new("RGB", (4, 4), (200, 30, 30))
    rgb.convert("CMYK").save(tmp_path / "c.jpg", quality=100)
    got = mf.load_image(str(tmp_path / "c.jpg"))
    assert np.abs(got.astype(int) - (200, 30, 30)).max() <= 3
    rgb.convert("YCbCr").save(tmp_path / "y.jpg", quality=100)
    assert np.abs(mf.load_image(str(tmp_path / "y.jpg")).astype(int) - (200, 30, 30)).max() <= 3
    assert np.abs(mf.load_image(rgb.convert("HSV")).astype(int) - (200, 30, 30)).max() <= 2
    # Lab is converted colorimetrically (Pillow's plain convert would copy the channels)
    from PIL import ImageCms

    to_lab = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")
    lab = ImageCms.applyTransform(rgb, to_lab)
    assert lab.mode == "LAB"
    assert np.abs(mf.load_image(lab).astype(int) - (200, 30, 30)).max() <= 3


def test_every_mode_classifies(model, tmp_path):
    base = Image.fromarray(np.random.default_rng(1).integers(0, 256, (50, 70, 3), dtype=np.uint8))
    images = [base.convert(m) for m in ("L", "LA", "RGBA", "P", "CMYK", "1", "YCbCr", "HSV", "I")]
    images.append(Image.fromarray((np.asarray(base.convert("L")).astype(np.uint16) * 257)))
    results = model.classify(images, top=3)
    assert len(results) == len(images)
    for r in results:
        assert len(r) == 3 and all(np.isfinite(p.probability) and 0 <= p.probability <= 1 for p in r)


def test_image_arrays(tmp_path):
    g = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(mf.load_image(g[:, :, None]), mf.load_image(g))
    np.testing.assert_array_equal(mf.load_image(g.astype(np.uint16) * 257), mf.load_image(g))
    for bad, match in [(g.astype(bool), "dtype bool"), (g.astype(np.float32), "dtype float32"),
                       (np.zeros((3, 4, 2), np.uint8), "HxWx3"), (np.zeros((0, 4, 3), np.uint8), "empty"),
                       (np.ma.masked_array(g), "masked"), (np.zeros((2, 3, 4, 3), np.uint8), "HxWx3")]:
        with pytest.raises(InputError, match=match):
            mf.load_image(bad)
    with pytest.raises(InputError, match="expected an image path"):
        mf.load_image(12)


# ----------------------------------------------------------------------- decompression bombs
def test_decompression_bombs_are_refused_before_decoding(tmp_path, monkeypatch):
    # 50000 x 50000: more than twice Pillow's limit, its DecompressionBombError
    huge = _png(tmp_path / "huge.png", 50000, 50000, 8, 2)
    # 10000 x 9000 = 90M pixels: over Pillow's limit (a warning) and ours
    big = _png(tmp_path / "big.png", 10000, 9000, 8, 2)
    t = time.perf_counter()
    with pytest.raises(ImageReadError, match="huge.png"):
        mf.load_image(huge)
    # pytest turns warnings into errors here: the warning must not escape as an exception
    with pytest.raises(ImageReadError, match="big.png"):
        mf.load_image(big)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ImageReadError, match="big.png: 10000x9000 = 90,000,000 pixels is more than the limit"):
            mf.load_image(big)
        with pytest.raises(ImageReadError, match="big.png"):
            mf.preprocess(big)
    assert time.perf_counter() - t < 5.0, "nothing may be decoded"
    # the limit is ours to set, for files and for (lazy) PIL images alike
    Image.new("RGB", (40, 30)).save(tmp_path / "small.png")
    small = str(tmp_path / "small.png")
    with pytest.raises(ImageReadError, match="40x30 = 1,200 pixels is more than the limit of 1,000.*max_pixels="):
        mf.load_image(small, max_pixels=1000)
    with pytest.raises(ImageReadError, match="limit of 1,000"):
        mf.preprocess(small, 32, max_pixels=1000)
    with Image.open(small) as lazy:
        with pytest.raises(ImageReadError, match="limit of 1,000"):
            mf.load_image(lazy, max_pixels=1000)
    assert mf.load_image(small, max_pixels=1200).shape == (30, 40, 3)
    with pytest.raises(InputError, match="max_pixels"):
        mf.load_image(small, max_pixels=0)
    monkeypatch.setattr(P, "MAX_PIXELS", 1000)  # the module default
    with pytest.raises(ImageReadError, match="limit of 1,000"):
        mf.load_image(small)


def test_broken_files(tmp_path):
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "junk.gif").write_bytes(b"GIF89a" + os.urandom(40))
    for name in ("cut.png", "empty.jpg", "junk.gif"):
        with pytest.raises(ImageReadError, match=name):
            mf.load_image(str(tmp_path / name))
    with pytest.raises(ImageReadError, match="is a directory"):
        mf.load_image(str(tmp_path))
    with pytest.raises(FileNotFoundError):
        mf.load_image(str(tmp_path / "none.png"))


# ------------------------------------------------------------------------------- preprocess
@pytest.mark.parametrize("kwargs, match", [
    (dict(resolution=0), "resolution must be in 1..16384"),
    (dict(resolution=(224,)), "resolution must be an int or a \\(height, width\\)"),
    (dict(resolution=224.0), "resolution must be an int"),
    (dict(resolution=True), "resolution must be an int"),
    (dict(resolution=(224, 20000)), "resolution must be in 1..16384"),
    (dict(crop_fraction=0.0), "crop_fraction"),
    (dict(crop_fraction=float("nan")), "crop_fraction"),
    (dict(crop_fraction="0.9"), "crop_fraction"),
    (dict(mean=(1.0, 2.0)), "mean must be three finite numbers"),
    (dict(mean=(1.0, 2.0, float("nan"))), "mean must be three finite numbers"),
    (dict(std=(1.0, 0.0, 1.0)), "std must be > 0"),
    (dict(std="abc"), "std must be three numbers"),
])
def test_preprocess_refuses_bad_arguments(kwargs, match):
    with pytest.raises(InputError, match=match):
        mf.preprocess(np.zeros((40, 40, 3), np.uint8), **kwargs)


def test_model_preprocess_resolution(model):
    img = np.full((50, 60, 3), 100, np.uint8)
    assert model.preprocess(img).shape == (1, 64, 64, 3)
    assert model.preprocess(img, (40, 48)).shape == (1, 40, 48, 3)
    with pytest.raises(InputError, match="resolution"):
        model.preprocess(img, 0)  # not silently the default


def test_extreme_aspect_ratios_do_not_blow_up_memory(monkeypatch):
    import tracemalloc

    strip = np.random.default_rng(2).integers(0, 256, (1, 200_000, 3), dtype=np.uint8)
    tracemalloc.start()
    try:
        t = time.perf_counter()
        x = mf.preprocess(strip, 224)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert x.shape == (1, 224, 224, 3) and np.isfinite(x).all()
    assert time.perf_counter() - t < 5.0
    assert peak < 50 * 2**20, f"peak numpy memory {peak / 2**20:.0f} MiB (a full resize would be ~45 GiB)"
    # the cropped-box resampling agrees with resize-then-crop to within one 8-bit level
    photo = np.random.default_rng(3).integers(0, 256, (90, 700, 3), dtype=np.uint8)
    full = mf.preprocess(photo, 96)
    monkeypatch.setattr(P, "_FULL_RESIZE_PIXELS", 0)
    boxed = mf.preprocess(photo, 96)
    assert np.abs(full - boxed).max() <= 1.0 / 127.5 + 1e-6


# ------------------------------------------------------------------------------- reference
def test_reference_checks_its_arguments():
    x = np.zeros((1, 5, 5, 3))
    w = np.zeros((3, 3, 3, 2))
    with pytest.raises(InputError, match="masked"):
        R.conv3x3(np.ma.masked_array(x), w)
    with pytest.raises(InputError, match="pads must be four ints"):
        R.conv3x3(x, w, pads=(1.5, 1, 1, 1))
    with pytest.raises(InputError, match="pads must be four ints"):
        R.dwconv3x3(x, np.zeros((3, 3, 3)), pads=(True, 1, 1, 1))
    with pytest.raises(InputError, match="limit of 2\\^31"):
        R.dwconv3x3(x, np.zeros((3, 3, 3)), pads=(10**9, 0, 10**9, 0))
    with pytest.raises(InputError, match="limit of 2\\^31"):
        R.conv3x3(x, np.zeros((3, 3, 3, 2)), pads=(10**5, 10**5, 10**5, 10**5))
    with pytest.raises(InputError, match="clamp must be \\(min, max\\) or None"):
        R.conv3x3(x, w, clamp=(0, 1, 2))
    with pytest.raises(InputError, match="clamp must be \\(min, max\\) with"):
        R.conv3x3(x, w, clamp=(float("nan"), 6))
    with pytest.raises(InputError, match="axis"):
        R.softmax(np.zeros((2, 3)), axis=2)
    with pytest.raises(InputError, match="empty axis"):
        R.softmax(np.zeros((2, 0)))
    with pytest.raises(InputError, match="real numbers"):
        R.softmax(np.array(["a", "b"]))
    with pytest.raises(InputError, match="eps"):
        R.batchnorm(np.zeros((1, 2)), *(np.ones(2),) * 4, eps=float("nan"))
    with pytest.raises(InputError, match="eps"):
        R.fold_batchnorm(np.zeros((3, 2)), *(np.ones(2),) * 4, eps="1e-3")
    with pytest.raises(InputError, match="masked"):
        R.pwconv(np.ma.masked_array(x), np.zeros((3, 2)))
    # NaN propagates in the reference (documented), it is not an error
    assert np.isnan(R.pwconv(np.full((1, 1, 1, 3), np.nan), np.ones((3, 2)))).all()


def test_garbage_collected_models_release_their_plans(weights):
    import weakref

    m = mf.Model(weights, threads=2)
    m.logits(random_input(1, 64, 64))
    ref, plan_ref = weakref.ref(m), weakref.ref(m.plan(64, 64))
    del m
    gc.collect()
    assert ref() is None and plan_ref() is None


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_exif_orientation_of_files_is_applied(tmp_path, orientation):
    from PIL import Image

    from mobilenet_fast.preprocess import load_image

    # a 40x20 image whose left half is red, right half blue, stored with an Orientation tag
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20, 0] = 255
    a[:, 20:, 2] = 255
    im = Image.fromarray(a)
    exif = Image.Exif()
    exif[0x0112] = orientation
    p = tmp_path / f"o{orientation}.png"
    im.save(p, exif=exif)
    out = load_image(str(p))
    upright = {1: a, 3: a[::-1, ::-1], 6: np.rot90(a, -1), 8: np.rot90(a, 1)}[orientation]
    np.testing.assert_array_equal(out, upright)
    # a PIL image handed over directly is taken as it is
    with Image.open(p) as again:
        np.testing.assert_array_equal(load_image(again), a)


def test_image_bytes_decode_as_the_file_does(tmp_path):
    """load_image / preprocess take an encoded file's bytes: the same pixels as the path; bad bytes
    are an ImageReadError whose reason (as classify prints it) names no in-memory object."""
    from mobilenet_fast.preprocess import failure_reason, load_image, try_preprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "examples", "coffee.png")
    with open(path, "rb") as f:
        data = f.read()
    assert np.array_equal(load_image(data), load_image(path))
    assert np.array_equal(mf.preprocess(bytearray(data), 224), mf.preprocess(path, 224))
    with pytest.raises(ImageReadError, match="image bytes: not a readable image"):
        load_image(b"\x89PNG\r\n\x1a\n truncated")
    x, reason = try_preprocess(lambda s: mf.preprocess(s, 224), b"not an image", "shots/a.jpg")
    assert x is None and reason is not None
    assert reason.startswith("not a readable image") and "BytesIO" not in reason and "0x" not in reason
    empty = tmp_path / "e.jpg"
    empty.write_bytes(b"")
    assert failure_reason(str(empty), OSError("x")) == "empty file, not an image"
