"""PyTorch / timm state-dict importer against real timm MobileNetV1 models.

Every model here is built by timm itself (``pretrained=False``; no weights are downloaded), given
random but realistic BatchNorm statistics, put in eval mode and saved as PyTorch does
(``torch.save(model.state_dict())``, ``safetensors.torch.save_file``). The imported weights must
reproduce timm's own forward pass (NCHW in timm, NHWC here). The canonical layouts are also
checked tensor by tensor, written out independently of the importer.
"""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import struct
import sys
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is needed to write .pth state dicts and run the reference")
timm = pytest.importorskip("timm", reason="timm is needed to build the reference mobilenetv1 models")
safetensors_torch = pytest.importorskip("safetensors.torch", reason="safetensors.torch writes the .safetensors files")

from timm.models.efficientnet import _gen_mobilenet_v1  # noqa: E402

import mobilenet_fast  # noqa: E402
from mobilenet_fast.errors import ImportFormatError, InputError, MissingDependencyError, WeightFileError  # noqa: E402
from mobilenet_fast.importers import detect_format, import_weights  # noqa: E402
from mobilenet_fast.importers.torch_state import (  # noqa: E402
    IMAGENET_MEAN,
    IMAGENET_STD,
    import_torch,
    timm_round_channels,
)
from mobilenet_fast.weights import save_weights  # noqa: E402

# Our block i <- timm's blocks.{stage}.{index}: stages of 1, 2, 2, 6, 2 blocks.
TIMM_BLOCKS = ["blocks.0.0", "blocks.1.0", "blocks.1.1", "blocks.2.0", "blocks.2.1"] + \
              [f"blocks.3.{b}" for b in range(6)] + ["blocks.4.0", "blocks.4.1"]
SIZES = (128, 160)
MEASURED = {}  # test id -> max |diff| / logit scale, printed at the end of the module


def timm_model(alpha=1.0, num_classes=1000, seed=0, **kwargs):
    """A timm MobileNetV1 with random weights and realistic BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    if alpha == 1.0 and not kwargs:
        model = timm.create_model("mobilenetv1_100", pretrained=False, num_classes=num_classes)
    else:  # how timm builds other widths: the generator behind mobilenetv1_100 / _125
        model = _gen_mobilenet_v1("mobilenetv1_100", alpha, pretrained=False, num_classes=num_classes, **kwargs)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)          # gamma ~ U(0.5, 1.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)           # beta ~ N(0, 0.1)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)   # mean ~ N(0, 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)     # var ~ U(0.5, 1.5)
                m.num_batches_tracked.fill_(1234)
            elif isinstance(m, torch.nn.Linear):
                m.weight.normal_(0.0, (1.0 / m.in_features) ** 0.5, generator=g)
                m.bias.normal_(0.0, 0.1, generator=g)
    return model.eval()


def nchw_input(batch, size, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, (batch, 3, size, size)).astype(np.float32)


_REFERENCE_CACHE = {}


def reference(model, x_nchw):
    """timm's forward pass (cached: the .pth and .safetensors tests share a model and inputs)."""
    key = (id(model), x_nchw.shape, x_nchw.tobytes()[:64], float(x_nchw.sum()))
    if key not in _REFERENCE_CACHE:
        with torch.no_grad():
            _REFERENCE_CACHE[key] = (model, model(torch.from_numpy(x_nchw)).numpy())  # keep model alive: id stays unique
    return _REFERENCE_CACHE[key][1]


def nhwc(x_nchw):
    return np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))


def save(model_or_state, path, fmt):
    state = model_or_state.state_dict() if hasattr(model_or_state, "state_dict") else model_or_state
    if fmt == "pth":
        torch.save(state, path)
    else:
        safetensors_torch.save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


def check_against_timm(ws, model, label, sizes=SIZES, features=False):
    ours_model = mobilenet_fast.Model(ws, threads=1)
    worst = 0.0
    for i, size in enumerate(sizes):
        x = nchw_input(2, size, seed=i)
        ref = reference(model, x)
        got = ours_model.features(nhwc(x)) if features else ours_model.logits(nhwc(x))
        assert got.shape == ref.shape
        scale = max(1.0, float(np.abs(ref).max()))
        diff = float(np.abs(got - ref).max())
        assert diff <= 1e-4 * scale, f"{label} at {size}x{size}: max |diff| {diff:.3g}, logit scale {scale:.3g}"
        worst = max(worst, diff / scale)
    MEASURED[label] = worst


def import_error(path, **kwargs) -> str:
    with pytest.raises(ImportFormatError) as info:
        import_torch(path, **kwargs)
    return str(info.value)


@pytest.fixture(scope="module")
def model_025():
    return timm_model(alpha=0.25, num_classes=10, seed=3)


@pytest.fixture(scope="module")
def model_100():
    return timm_model(alpha=1.0, num_classes=1000, seed=5)


@pytest.fixture(scope="module", autouse=True)
def report_measured():
    yield
    if MEASURED:
        lines = [f"  {k}: {v:.3g}" for k, v in sorted(MEASURED.items())]
        sys.stdout.write("\nmax |ours - timm| / max(1, |timm|):\n" + "\n".join(lines) + "\n")


# -- matches timm's own forward pass ---------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
@pytest.mark.parametrize("which", ["025", "100"])
def test_logits_match_timm(tmp_path, fmt, which, model_025, model_100):
    model, alpha, classes = (model_025, 0.25, 10) if which == "025" else (model_100, 1.0, 1000)
    path = save(model, tmp_path / f"mobilenetv1.{fmt}", fmt)
    ws = import_torch(path)
    c = ws.config
    assert c.alpha == alpha
    assert c.num_classes == classes
    assert c.padding == "symmetric"
    assert c.bn_epsilon == 1e-5
    assert c.resolution == (224, 224)
    assert c.input_mean == (127.5, 127.5, 127.5) and c.input_std == (127.5, 127.5, 127.5)
    assert c.labels is None and c.activation == "relu6"
    assert "timm mobilenetv1" in c.source and path.name in c.source
    check_against_timm(ws, model, f"alpha={alpha:g} {fmt}")


def test_canonical_layouts(tmp_path, model_025):
    """Each canonical tensor against timm's, with the layout change written out by hand."""
    sd = {k: v.numpy() for k, v in model_025.state_dict().items()}
    ws = import_torch(save(model_025, tmp_path / "m.pth", "pth"))
    t = ws.tensors
    w = sd["conv_stem.weight"]  # [co, ci, ky, kx]
    for ky, kx, ci, co in [(0, 0, 0, 0), (2, 1, 2, 5), (1, 2, 1, 7)]:
        assert t["stem.conv.weight"][ky, kx, ci, co] == w[co, ci, ky, kx]
    for i, prefix in enumerate(TIMM_BLOCKS):
        dw = sd[f"{prefix}.conv_dw.weight"]  # [C, 1, 3, 3]
        pw = sd[f"{prefix}.conv_pw.weight"]  # [Cout, Cin, 1, 1]
        c, cout = dw.shape[0], pw.shape[0]
        assert t[f"blocks.{i}.dw.weight"].shape == (3, 3, c)
        assert t[f"blocks.{i}.dw.weight"][2, 0, c - 1] == dw[c - 1, 0, 2, 0]
        assert t[f"blocks.{i}.pw.weight"].shape == (c, cout)
        assert t[f"blocks.{i}.pw.weight"][c - 1, 0] == pw[0, c - 1, 0, 0]
        for bn, ours in (("bn1", "dw"), ("bn2", "pw")):
            for theirs, field in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "mean"),
                                  ("running_var", "var")):
                np.testing.assert_array_equal(t[f"blocks.{i}.{ours}.bn.{field}"], sd[f"{prefix}.{bn}.{theirs}"])
    np.testing.assert_array_equal(t["stem.bn.gamma"], sd["bn1.weight"])
    np.testing.assert_array_equal(t["stem.bn.var"], sd["bn1.running_var"])
    np.testing.assert_array_equal(t["classifier.weight"], sd["classifier.weight"].T)
    np.testing.assert_array_equal(t["classifier.bias"], sd["classifier.bias"])
    assert all(a.dtype == np.float32 and a.flags.c_contiguous for a in t.values())


@pytest.fixture(scope="module")
def model_features():
    return timm_model(alpha=0.25, num_classes=0, seed=7)


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_feature_extractor(tmp_path, fmt, model_features):
    """num_classes=0: timm's model(x) returns the pooled features; ours is a feature extractor."""
    model = model_features
    assert not any(k.startswith("classifier") for k in model.state_dict())
    ws = import_torch(save(model, tmp_path / f"features.{fmt}", fmt))
    assert ws.config.num_classes == 0
    assert "classifier.weight" not in ws.tensors
    x = nchw_input(2, 96)
    with torch.no_grad():
        pooled = model.forward_features(torch.from_numpy(x)).mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(reference(model, x), pooled, rtol=0, atol=1e-6)
    check_against_timm(ws, model, f"features alpha=0.25 {fmt}", features=True)
    with pytest.raises(InputError, match="no classifier"):
        mobilenet_fast.Model(ws, threads=1).logits(nhwc(x))


def test_wrapped_checkpoint_with_module_prefix(tmp_path, model_025):
    """A training checkpoint: the state dict under 'state_dict', keys from DataParallel ('module.')."""
    state = {f"module.{k}": v for k, v in model_025.state_dict().items()}
    ckpt = {"epoch": 12, "arch": "mobilenetv1_100", "state_dict": state,
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]}}
    path = tmp_path / "checkpoint.pth.tar.pth"
    torch.save(ckpt, path)
    ws = import_torch(path)
    assert "'state_dict'" in ws.config.source and "'module.' prefix removed" in ws.config.source
    check_against_timm(ws, model_025, "alpha=0.25 wrapped checkpoint, module. prefix", sizes=(128,))


def test_checkpoint_prefers_ema_like_timm(tmp_path, model_025):
    good = model_025.state_dict()
    other = {k: (v + 1.0 if v.is_floating_point() else v) for k, v in good.items()}
    path = tmp_path / "ema.pth"
    torch.save({"state_dict": other, "state_dict_ema": good}, path)
    ws = import_torch(path)  # timm's load_state_dict(use_ema=True) takes the EMA weights
    assert "'state_dict_ema'" in ws.config.source
    np.testing.assert_array_equal(ws.tensors["classifier.bias"], good["classifier.bias"].numpy())
    ws = import_torch(path, use_ema=False)
    np.testing.assert_array_equal(ws.tensors["classifier.bias"], other["classifier.bias"].numpy())
    # torch.compile's '_orig_mod.' wrapped in DDP's 'module.', under 'model'
    torch.save({"model": {f"module._orig_mod.{k}": v for k, v in good.items()}}, path)
    np.testing.assert_array_equal(import_torch(path).tensors["stem.conv.weight"],
                                  good["conv_stem.weight"].numpy().transpose(2, 3, 1, 0))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_other_float_dtypes_are_converted(tmp_path, model_025, dtype, fmt):
    tdtype = getattr(torch, dtype)
    state = {k: (v.to(tdtype) if v.is_floating_point() else v) for k, v in model_025.state_dict().items()}
    ws = import_torch(save(state, tmp_path / f"{dtype}.{fmt}", fmt))
    for key, ours in (("conv_stem.weight", "stem.conv.weight"), ("blocks.3.5.bn2.running_var", "blocks.10.pw.bn.var"),
                      ("classifier.weight", "classifier.weight")):
        want = state[key].to(torch.float32).numpy()
        got = ws.tensors[ours]
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got.reshape(-1), (want.transpose(2, 3, 1, 0) if want.ndim == 4
                                                       else want.T if want.ndim == 2 else want).reshape(-1))


def test_safetensors_needs_no_torch(tmp_path, model_025, monkeypatch):
    path = save({k: (v.bfloat16() if k == "classifier.weight" else v) for k, v in model_025.state_dict().items()},
                tmp_path / "bf16.safetensors", "safetensors")
    pth = save(model_025, tmp_path / "m.pth", "pth")
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    ws = import_torch(path)
    np.testing.assert_array_equal(ws.tensors["classifier.weight"],
                                  model_025.classifier.weight.detach().bfloat16().float().numpy().T)
    with pytest.raises(MissingDependencyError, match="pip install torch"):
        import_torch(pth)


@pytest.mark.parametrize("ext", [".pth", ".pt", ".bin", ".safetensors"])
def test_registry_routes_to_torch_importer(tmp_path, model_025, ext):
    path = save(model_025, tmp_path / f"model{ext}", "safetensors" if ext == ".safetensors" else "pth")
    assert detect_format(path) == "torch"
    ws = mobilenet_fast.load_weight_set(path)
    assert ws.config.alpha == 0.25 and ws.config.padding == "symmetric"
    assert import_weights(path, "torch").config.num_classes == 10


def test_content_decides_the_reader(tmp_path, model_025):
    """A safetensors file named .pth (or a pickle named .bin) is read by what it is."""
    st = save(model_025, tmp_path / "really_safetensors.pth", "safetensors")
    assert import_torch(st).config.alpha == 0.25
    assert "safetensors" in import_torch(st).config.source


def test_overrides(tmp_path, model_025):
    path = save(model_025, tmp_path / "m.pth", "pth")
    labels = [f"c{i}" for i in range(10)]
    ws = import_torch(path, resolution=(192, 160), bn_epsilon=1e-3, input_mean=IMAGENET_MEAN, input_std=IMAGENET_STD,
                      labels=labels, source="mine")
    c = ws.config
    assert c.resolution == (192, 160) and c.bn_epsilon == 1e-3 and c.labels == tuple(labels)
    assert c.source == "mine"
    np.testing.assert_allclose(c.input_mean, (123.675, 116.28, 103.53))
    np.testing.assert_allclose(c.input_std, (58.395, 57.12, 57.375))
    with pytest.raises(InputError, match="labels"):
        import_torch(path, labels=["a"])
    with pytest.raises(InputError, match="padding"):
        import_torch(path, padding="same")
    with pytest.raises(InputError, match="resolution"):
        import_torch(path, resolution=16)
    with pytest.raises(InputError, match="input_std"):
        import_torch(path, input_std=(1.0, 0.0, 1.0))


def test_pad_type_same_imports_as_tf_same(tmp_path):
    """timm's pad_type='same' (Conv2dSame on stride 2) stores the same tensors; padding='tf_same' matches it,
    on odd sizes too."""
    model = timm_model(alpha=0.25, num_classes=5, seed=11, pad_type="same")
    ws = import_torch(save(model, tmp_path / "same.pth", "pth"), padding="tf_same")
    check_against_timm(ws, model, "alpha=0.25 pad_type=same as tf_same", sizes=(128, 131))


def test_act_layer_relu(tmp_path):
    model = timm_model(alpha=0.25, num_classes=5, seed=13, act_layer="relu")
    assert isinstance(model.bn1.act, torch.nn.ReLU)
    path = save(model, tmp_path / "relu.safetensors", "safetensors")
    ws = import_torch(path, activation="relu")
    assert ws.config.activation == "relu"
    check_against_timm(ws, model, "alpha=0.25 act_layer=relu", sizes=(128,))
    assert import_torch(path).config.activation == "relu6"  # the state dict cannot tell
    with pytest.raises(InputError, match="activation"):
        import_torch(path, activation="gelu")


def test_save_round_trip(tmp_path, model_025):
    ws = import_torch(save(model_025, tmp_path / "m.pth", "pth"))
    save_weights(tmp_path / "ours.safetensors", ws)
    again = mobilenet_fast.load_weight_set(tmp_path / "ours.safetensors")  # detected as ours, not torch
    assert again.config == ws.config
    msg = import_error(tmp_path / "ours.safetensors")
    assert "load_weights" in msg


# -- widths: timm's make_divisible(c * m, 8) against our int(c * alpha) ----------------------------

def test_round_channels_matches_timm():
    from timm.models._efficientnet_builder import round_channels

    for m in (0.1, 0.125, 0.25, 0.3, 0.35, 0.5, 0.75, 1.0, 1.25, 1.4, 2.0):
        for c in (32, 64, 128, 256, 512, 1024):
            assert timm_round_channels(c, m) == round_channels(c, m), (c, m)


@pytest.mark.parametrize("alpha", [0.5, 0.75, 1.25])
def test_widths_where_rounding_agrees(tmp_path, alpha):
    model = _gen_mobilenet_v1("mobilenetv1_100", alpha, pretrained=False, num_classes=3)
    ws = import_torch(save(model, tmp_path / "m.pth", "pth"))
    assert ws.config.alpha == alpha
    assert ws.tensors["stem.conv.weight"].shape[3] == model.conv_stem.weight.shape[0]
    assert ws.tensors["blocks.12.pw.weight"].shape[1] == model.num_features


def test_mobilenetv1_125_by_name(tmp_path):
    model = timm.create_model("mobilenetv1_125", pretrained=False, num_classes=4)
    assert import_torch(save(model, tmp_path / "m125.pth", "pth")).config.alpha == 1.25


@pytest.mark.parametrize("alpha, first_bad, theirs, ours", [(0.35, "conv_stem.weight", 16, 11),
                                                            (0.125, "conv_stem.weight", 8, 4),
                                                            (1.4, "conv_stem.weight", 48, 44)])
def test_widths_where_rounding_disagrees_are_refused(tmp_path, alpha, first_bad, theirs, ours):
    model = _gen_mobilenet_v1("mobilenetv1_100", alpha, pretrained=False, num_classes=3)
    assert model.conv_stem.weight.shape[0] == theirs
    msg = import_error(save(model, tmp_path / "m.pth", "pth"))
    assert repr(first_bad) in msg and f"channel_multiplier={alpha:g}" in msg
    assert f"= {ours} channels" in msg and "multiple of 8" in msg


def test_head_conv_variant_refused(tmp_path):
    model = timm.create_model("mobilenetv1_100h", pretrained=False, num_classes=3)
    msg = import_error(save(model, tmp_path / "h.pth", "pth"))
    assert "'conv_head.weight'" in msg and "mobilenetv1_100h" in msg


def test_other_mobilenet_refused(tmp_path):
    model = timm.create_model("mobilenetv2_050", pretrained=False, num_classes=3)
    msg = import_error(save(model, tmp_path / "v2.safetensors", "safetensors"))
    assert "unexpected key" in msg and "not a timm mobilenetv1 state dict" in msg


# -- malformed files -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def state_025(model_025):
    return {k: v.clone() for k, v in model_025.state_dict().items()}


@pytest.mark.parametrize("fraction", [0.0005, 0.3, 0.9, 0.999])
def test_truncated_pth(tmp_path, model_025, fraction):
    data = save(model_025, tmp_path / "full.pth", "pth").read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[:max(1, int(len(data) * fraction))])
    msg = import_error(path)
    assert "cut.pth" in msg and ("truncated or corrupt" in msg or "not a PyTorch checkpoint" in msg)


def test_truncated_legacy_pth(tmp_path, state_025):
    torch.save(state_025, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    data = (tmp_path / "legacy.pth").read_bytes()
    for cut in (len(data) // 2, len(data) - 10):
        (tmp_path / "cut.pth").write_bytes(data[:cut])
        import_error(tmp_path / "cut.pth")
    assert import_torch(tmp_path / "legacy.pth").config.alpha == 0.25  # the whole file is fine


def legacy_with_int(data, value, after=None):
    """A legacy torch.save file with one integer of its object pickle replaced by ``value``: the element
    count of the first storage (``after=None``), else the ``after``-th integer following it (0: the
    first tensor's storage offset, then its sizes, then its strides)."""
    f = io.BytesIO(data)
    for _ in range(3):  # magic number, protocol version, system info: plain values
        pickle.load(f)
    start = f.tell()
    ints, persid = [], None
    for op, arg, pos in pickletools.genops(io.BytesIO(data[start:])):
        if op.name in ("BININT1", "BININT2", "BININT"):
            ints.append((start + pos, 1 + {"BININT1": 1, "BININT2": 2, "BININT": 4}[op.name]))
        if op.name == "BINPERSID" and persid is None:  # ('storage', type, key, 'cpu', numel, None)
            persid = len(ints)
    at, length = ints[persid - 1] if after is None else ints[persid + after]
    return data[:at] + b"\x8a\x08" + value.to_bytes(8, "little", signed=True) + data[at + length:]


@pytest.mark.parametrize("what, value, after, match", [
    ("numel", 10 * 2 ** 30 // 4, None, "tensor data"),
    ("numel", 2 ** 62, None, "tensor data"),
    ("stride", 10 * 2 ** 30, 5, "stride [10737418240, 9, 3, 1] needs"),  # conv_stem [8, 3, 3, 3]: stride[0] 27
    ("size", 2 ** 40, 1, "needs"),
])
def test_legacy_pth_declaring_a_huge_storage(tmp_path, state_025, what, value, after, match):
    """torch.load allocates a legacy storage's declared size before reading it, and set_ grows it to what
    a tensor's sizes and strides reach: refused first (found by fuzz/run.py, where they failed the
    address-space limit)."""
    torch.save(state_025, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    path = tmp_path / "huge.pth"
    path.write_bytes(legacy_with_int((tmp_path / "legacy.pth").read_bytes(), value, after))
    msg = import_error(path)
    assert "huge.pth" in msg and match in msg, msg


def test_zip_member_declaring_a_huge_size(tmp_path, model_025):
    """torch.load allocates a zip record's declared size before reading it: refused first."""
    data = bytearray(save(model_025, tmp_path / "full.pth", "pth").read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        name = next(i.filename for i in zf.infolist() if "/data/" in i.filename)
    entry = bytes(data).index(b"PK\x01\x02")  # central directory entries: name at +46
    while bytes(data[entry + 46:entry + 46 + len(name)]) != name.encode():
        entry = bytes(data).index(b"PK\x01\x02", entry + 4)
    data[entry + 24:entry + 28] = struct.pack("<I", 0xFFFFFFF0)  # uncompressed size
    path = tmp_path / "bigrecord.pth"
    path.write_bytes(bytes(data))
    msg = import_error(path)
    assert "bigrecord.pth" in msg and "declares" in msg


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_LZMA])
def test_zip_member_claiming_another_compression(tmp_path, model_025, method):
    """zlib.error / lzma.LZMAError while reading data.pkl for the size checks (the same damage that
    made the Keras importer leak them, found by fuzz/run.py)."""
    data = bytearray(save(model_025, tmp_path / "full.pth", "pth").read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        name = next(i.filename for i in zf.infolist() if i.filename.endswith("/data.pkl")).encode()
    entry = data.index(b"PK\x01\x02")  # central directory entries: method at +10, name at +46
    while data[entry + 46:entry + 46 + len(name)] != name:
        entry = data.index(b"PK\x01\x02", entry + 4)
    data[entry + 10:entry + 12] = method.to_bytes(2, "little")
    path = tmp_path / "method.pth"
    path.write_bytes(bytes(data))
    assert "method.pth" in import_error(path)


@pytest.mark.parametrize("data", [b"\x80\x02K\x05.", b"\x80\x02\x8a\x0alK\x05.", pickle.dumps({"a": 1}, protocol=2)])
def test_pickle_that_is_not_a_torch_save_file(tmp_path, data):
    path = tmp_path / "plain.pth"
    path.write_bytes(data)
    assert "not a PyTorch checkpoint" in import_error(path)


@pytest.mark.parametrize("cut", ["header", "data", "length"])
def test_truncated_safetensors(tmp_path, model_025, cut):
    data = save(model_025, tmp_path / "full.safetensors", "safetensors").read_bytes()
    n = int.from_bytes(data[:8], "little")
    keep = {"length": 5, "header": 8 + n // 2, "data": len(data) - 100}[cut]
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[:keep])
    msg = import_error(path)
    assert "cut.safetensors" in msg
    # Through the registry such a file may be taken for ours (unreadable metadata): still a clean error.
    with pytest.raises((ImportFormatError, WeightFileError)):
        mobilenet_fast.load_weight_set(path)


def test_deeply_nested_safetensors_header(tmp_path):
    """A header of 100000 nested lists overflows Python's JSON parser (found by fuzz/run.py)."""
    text = b"[" * 100000 + b"]" * 100000
    path = tmp_path / "deep.safetensors"
    path.write_bytes(len(text).to_bytes(8, "little") + text)
    assert "not valid JSON" in import_error(path)
    with pytest.raises(WeightFileError):  # through the registry: taken for ours, refused by the loader
        mobilenet_fast.load_weight_set(path)


@pytest.mark.parametrize("name", ["random.pth", "random.bin", "random.safetensors", "empty.pt"])
def test_random_bytes(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"" if name.startswith("empty") else np.random.default_rng(4).bytes(5000))
    assert name in import_error(path)


def test_block_removed(tmp_path, state_025):
    state = {k: v for k, v in state_025.items() if not k.startswith("blocks.3.2.")}
    msg = import_error(save(state, tmp_path / "no_block.pth", "pth"))
    assert "missing key 'blocks.3.2.conv_dw.weight'" in msg


def test_extra_block(tmp_path, state_025):
    state = dict(state_025)
    state.update({k.replace("blocks.3.5.", "blocks.3.6."): v.clone() for k, v in state_025.items()
                  if k.startswith("blocks.3.5.")})
    msg = import_error(save(state, tmp_path / "extra.safetensors", "safetensors"))
    assert "unexpected key 'blocks.3.6." in msg and "1, 2, 2, 6, 2" in msg


def test_missing_classifier_bias(tmp_path, state_025):
    state = {k: v for k, v in state_025.items() if k != "classifier.bias"}
    assert "missing key 'classifier.bias'" in import_error(save(state, tmp_path / "m.pth", "pth"))


@pytest.mark.parametrize("key, shape, expect", [
    ("blocks.2.1.conv_pw.weight", (64, 60, 1, 1), "expected [64, 64, 1, 1]"),
    ("blocks.2.1.bn1.running_var", (63,), "expected [64]"),
    ("blocks.0.0.conv_dw.weight", (8, 1, 5, 5), "expected [8, 1, 3, 3]"),
    ("classifier.weight", (10, 200), "expected [10, 256]"),
    ("blocks.4.1.conv_pw.weight", (250, 256, 1, 1), "has 250 output channels, expected 256"),
    ("blocks.2.0.conv_pw.weight", (60, 32, 1, 1), "has 60 output channels, expected 64"),
    ("conv_stem.weight", (8, 3, 3), "4-D"),
])
def test_wrong_shape(tmp_path, state_025, key, shape, expect):
    state = dict(state_025)
    state[key] = torch.zeros(shape)
    msg = import_error(save(state, tmp_path / "shape.pth", "pth"))
    assert repr(key) in msg and expect in msg


def test_pickle_with_arbitrary_objects_refused(tmp_path, state_025):
    path = tmp_path / "object.pth"
    torch.save({"state_dict": state_025, "extra": _NotATensor(3)}, path)
    msg = import_error(path)
    assert "arbitrary Python objects" in msg and "refused" in msg and "GLOBAL posix.system" in msg
    torch.save(_Plain(5), path)  # the whole file is one instance of a class of ours
    msg = import_error(path)
    assert "arbitrary Python objects" in msg and "_Plain" in msg
    torch.save({"conv_stem.weight": np.zeros((8, 3, 3, 3), np.float32)}, path)  # numpy arrays need globals too
    assert "arbitrary Python objects" in import_error(path)


class _Plain:
    def __init__(self, x):
        self.x = x


class _NotATensor:
    def __init__(self, x):
        self.x = x

    def __reduce__(self):  # unpickling this without weights_only would run os.system
        return (os.system, ("echo pwned",))


def test_not_a_state_dict(tmp_path, state_025):
    path = tmp_path / "x.pth"
    torch.save(torch.zeros(3), path)
    assert "not a state dict" in import_error(path)
    torch.save(dict(state_025, **{"conv_stem.weight": 3.0}), path)
    assert "entry 'conv_stem.weight' is a float, not a tensor" in import_error(path)
    torch.save({"state_dict": [1, 2]}, path)
    assert "'state_dict' is a list" in import_error(path)
    torch.save({}, path)
    assert "empty" in import_error(path)


def test_zero_size_stem_declaring_huge_width(tmp_path, state_025):
    """A zero-size tensor may declare any other dimension: 2**40 output channels is refused as such, not
    as an alpha out of range (found by fuzz/run.py)."""
    state = dict(state_025)
    state["conv_stem.weight"] = torch.zeros((1 << 40, 3, 3, 0))
    msg = import_error(save(state, tmp_path / "zero.safetensors", "safetensors"))
    assert "'conv_stem.weight' has 1099511627776 output channels" in msg


def test_bad_dtype_and_values(tmp_path, state_025):
    state = dict(state_025)
    state["blocks.1.0.conv_dw.weight"] = state["blocks.1.0.conv_dw.weight"].to(torch.int8)
    msg = import_error(save(state, tmp_path / "int.safetensors", "safetensors"))
    assert "'blocks.1.0.conv_dw.weight' has dtype int8" in msg
    state = dict(state_025)
    state["blocks.4.0.conv_pw.weight"] = state["blocks.4.0.conv_pw.weight"].clone()
    state["blocks.4.0.conv_pw.weight"][0, 0, 0, 0] = float("nan")
    assert "'blocks.4.0.conv_pw.weight' contains NaN" in import_error(save(state, tmp_path / "nan.pth", "pth"))
    state = dict(state_025)
    state["bn1.running_var"] = -state["bn1.running_var"]
    assert "'bn1.running_var'" in import_error(save(state, tmp_path / "var.pth", "pth"))
    state = dict(state_025)
    state["classifier.bias"] = torch.full((10,), 1e300, dtype=torch.float64)
    assert "after conversion to float32" in import_error(save(state, tmp_path / "big.safetensors", "safetensors"))


def test_missing_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        import_torch(tmp_path / "nope.pth")
    with pytest.raises(ImportFormatError, match="directory"):
        import_torch(tmp_path)
