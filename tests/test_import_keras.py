"""Keras importer: real ``keras.applications.MobileNet`` models saved by Keras 3 (torch backend).

Models are built with random weights and realistic BatchNorm statistics, saved as ``.keras``
(zip of config.json + model.weights.h5), legacy ``.h5`` and bare ``.weights.h5``, imported, and
our logits/features are compared with Keras' own forward pass on the same NHWC input. Other
layouts (tf.keras 2.x ``kernel:0`` naming, weights files without layer names) are derived from
the real files with h5py, and so are the malformed files.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import warnings
import zipfile

import numpy as np
import pytest

from helpers import random_input

import mobilenet_fast
from mobilenet_fast.errors import ImportFormatError, InputError, MissingDependencyError
from mobilenet_fast.importers import detect_format, import_weights
from mobilenet_fast.importers.keras_h5 import import_keras
from mobilenet_fast.weights import load_weights, save_weights

h5py = pytest.importorskip("h5py", reason="h5py (the 'keras' extra) is needed to read Keras files")

BATCH = 2
#: (name, alpha, input_shape, include_top, classes, pooling)
SPECS = {
    "top025": (0.25, (128, 128, 3), True, 7, None),
    "top100": (1.0, (160, 160, 3), True, 10, None),
    "feat100": (1.0, (128, 128, 3), False, 0, "avg"),
    "feat025": (0.25, (None, None, 3), False, 0, "avg"),  # input size not fixed: resolution 224
}


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras", reason="Keras 3 is needed to build reference MobileNets")
    if not keras.__version__.startswith("3.") or keras.backend.backend() != "torch":
        pytest.skip(f"needs Keras 3 with the torch backend (have Keras {keras.__version__}, "
                    f"backend {keras.backend.backend()})")
    return keras


def randomize(model, seed):
    """He-scaled random kernels, realistic BatchNorm statistics, random classifier bias."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        cls = type(layer).__name__
        if cls == "BatchNormalization":
            c = layer.get_weights()[0].shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.1, c), rng.normal(0, 0.1, c),
                               rng.uniform(0.5, 1.5, c)])
        elif cls in ("Conv2D", "DepthwiseConv2D"):
            ws = layer.get_weights()
            k = ws[0]
            fan_in = k.shape[0] * k.shape[1] * (1 if cls == "DepthwiseConv2D" else k.shape[2])
            gain = 1.0 if layer.name == "conv_preds" else 2.0
            new = [rng.normal(0, np.sqrt(gain / fan_in), k.shape)]
            if len(ws) > 1:
                new.append(rng.normal(0, 0.1, ws[1].shape))
            layer.set_weights([w.astype(np.float32) for w in new])


def keras_forward(keras, model, x):
    import torch

    with torch.no_grad():
        out = model(x, training=False)
    if isinstance(out, (list, tuple)):
        return [np.asarray(keras.ops.convert_to_numpy(o), dtype=np.float64) for o in out]
    return np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float64)


@pytest.fixture(scope="module")
def built(keras, tmp_path_factory):
    """name -> (keras model, {ext: path}); each model saved as .keras, .h5 and .weights.h5."""
    out_dir = tmp_path_factory.mktemp("keras_models")
    models = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed, (name, (alpha, shape, top, classes, pooling)) in enumerate(SPECS.items()):
            kw = dict(classes=classes, classifier_activation=None) if top else dict(pooling=pooling)
            m = keras.applications.MobileNet(alpha=alpha, input_shape=shape, include_top=top, weights=None, **kw)
            randomize(m, seed)
            paths = {}
            for ext in (".keras", ".h5", ".weights.h5"):
                paths[ext] = out_dir / f"{name}{ext}"
                if ext == ".weights.h5":
                    m.save_weights(paths[ext])
                else:
                    m.save(paths[ext])
            models[name] = (m, paths)
    return models


@pytest.fixture(scope="module")
def reference(keras, built):
    """reference(name, h, w) -> (x, keras logits or None, keras pooled features), computed once.

    For models with a top, one Keras call gives both the logits and the output of its
    GlobalAveragePooling2D layer (Keras' forward is ~0.5 s a call even for the small models)."""
    cache = {}

    def get(name, h, w):
        if (name, h, w) not in cache:
            model, _ = built[name]
            x = random_input(BATCH, h, w, seed=h * 1000 + w)
            if SPECS[name][2]:
                gap = next(layer for layer in model.layers if type(layer).__name__ == "GlobalAveragePooling2D")
                both = keras.Model(model.input, [model.output, gap.output])
                logits, feats = keras_forward(keras, both, x)
                cache[name, h, w] = (x, logits, feats.reshape(BATCH, -1))
            else:
                cache[name, h, w] = (x, None, keras_forward(keras, model, x))
        return cache[name, h, w]

    return get


def tol(ref):
    return 1e-4 * max(1.0, float(np.abs(ref).max()))


def assert_close(ours, ref, what):
    diff = float(np.abs(ours.astype(np.float64) - ref).max())
    assert diff <= tol(ref), f"{what}: max |diff| {diff:.3g} > {tol(ref):.3g} (max |ref| {np.abs(ref).max():.3g})"
    return diff


def import_error(path, match=None):
    with pytest.raises(ImportFormatError) as info:
        import_keras(path)
    msg = str(info.value)
    assert os.path.basename(str(path)) in msg, msg
    if match is not None:
        for m in ([match] if isinstance(match, str) else match):
            assert m in msg, msg
    return msg


# -- numerical parity with Keras -------------------------------------------------------------------

@pytest.mark.parametrize("ext", [".keras", ".h5"])
@pytest.mark.parametrize("name", ["top025", "top100"])
def test_logits_match_keras(built, reference, name, ext):
    alpha, shape, _, classes, _ = SPECS[name]
    model, paths = built[name]
    ws = import_keras(paths[ext])
    c = ws.config
    assert (c.alpha, c.num_classes, c.resolution) == (alpha, classes, shape[:2])
    assert c.padding == "keras" and c.activation == "relu6"
    assert c.bn_epsilon == 1e-3
    assert c.input_mean == (127.5,) * 3 and c.input_std == (127.5,) * 3
    assert os.path.basename(str(paths[ext])) in c.source
    x, ref, ref_feat = reference(name, shape[0], shape[1])
    ours = mobilenet_fast.Model(ws, threads=1)
    logits = ours.logits(x)
    assert logits.shape == (BATCH, classes)
    assert_close(logits, ref, f"{name}{ext} logits")
    # The pooled features too, against the output of Keras' GlobalAveragePooling2D layer.
    assert_close(ours.features(x), ref_feat, f"{name}{ext} features")


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_features_match_keras_without_top(built, reference, ext):
    _, paths = built["feat100"]
    ws = import_keras(paths[ext])
    assert ws.config.num_classes == 0 and ws.config.alpha == 1.0 and ws.config.resolution == (128, 128)
    assert "classifier.weight" not in ws.tensors
    x, _, ref = reference("feat100", 128, 128)
    ours = mobilenet_fast.Model(ws, threads=1).features(x)
    assert ours.shape == (BATCH, 1024)
    assert_close(ours, ref, f"feat100{ext}")


@pytest.mark.parametrize("size", [160, 96, pytest.param(129, id="odd129"), pytest.param((113, 97), id="odd113x97")])
def test_features_any_size_without_fixed_input(built, reference, size):
    """A model with input_shape=(None, None, 3) records resolution 224 and runs at any size; odd sizes
    need the 'keras' padding convention (ZeroPadding2D((0,1),(0,1)) + valid on stride-2 depthwise)."""
    h, w = (size, size) if isinstance(size, int) else size
    _, paths = built["feat025"]
    ws = import_keras(paths[".keras"])
    assert ws.config.resolution == (224, 224) and ws.config.alpha == 0.25
    x, _, ref = reference("feat025", h, w)
    assert_close(mobilenet_fast.Model(ws, threads=1).features(x), ref, f"feat025 at {h}x{w}")


def test_tf_same_would_be_wrong_on_odd_sizes(built, reference):
    """Why Keras imports use their own convention: tf_same pads stride-2 layers (1, 1) on odd sizes."""
    from dataclasses import replace

    from mobilenet_fast.weights import WeightSet

    _, paths = built["feat025"]
    ws = import_keras(paths[".h5"])
    x, _, ref = reference("feat025", 129, 129)
    wrong = WeightSet(replace(ws.config, padding="tf_same"), ws.tensors)
    diff = float(np.abs(mobilenet_fast.Model(wrong, threads=1).features(x) - ref).max())
    assert diff > 100 * tol(ref)


# -- tensor layouts --------------------------------------------------------------------------------

def expected_tensors(model):
    """Canonical tensors straight from the Keras layers (written out independently of the importer)."""
    def get(name):
        return [np.asarray(w) for w in model.get_layer(name).get_weights()]

    out = {"stem.conv.weight": get("conv1")[0]}
    names = [("stem", "conv1")]
    for i in range(1, 14):
        out[f"blocks.{i - 1}.dw.weight"] = get(f"conv_dw_{i}")[0][:, :, :, 0]
        out[f"blocks.{i - 1}.pw.weight"] = get(f"conv_pw_{i}")[0][0, 0]
        names += [(f"blocks.{i - 1}.dw", f"conv_dw_{i}"), (f"blocks.{i - 1}.pw", f"conv_pw_{i}")]
    for canonical, layer in names:
        for field, arr in zip(("gamma", "beta", "mean", "var"), get(f"{layer}_bn")):
            out[f"{canonical}.bn.{field}"] = arr
    if any(layer.name == "conv_preds" for layer in model.layers):
        kernel, bias = get("conv_preds")
        out["classifier.weight"] = kernel[0, 0]
        out["classifier.bias"] = bias
    return out


def assert_tensors(ws, want):
    assert set(ws.tensors) == set(want)
    for name, arr in want.items():
        got = ws.tensors[name]
        assert got.dtype == np.float32 and got.flags.c_contiguous, name
        np.testing.assert_array_equal(got, arr, err_msg=name)


@pytest.mark.parametrize("ext", [".keras", ".h5", ".weights.h5"])
def test_tensors_are_the_keras_weights(built, ext):
    model, paths = built["top025"]
    ws = import_keras(paths[ext])
    assert_tensors(ws, expected_tensors(model))
    if ext == ".weights.h5":  # no architecture in the file: defaults
        c = ws.config
        assert c.resolution == (224, 224) and c.bn_epsilon == 1e-3 and c.num_classes == 7 and c.alpha == 0.25
        assert c.padding == "keras"


def test_bare_weights_without_top_and_without_layer_names(built, tmp_path):
    """Layers are found by their paths (conv2d_k = conv_pw_k, ... in keras.applications.MobileNet's
    fixed order), as Keras loads them, not by the 'name' attribute only recent Keras writes."""
    model, paths = built["feat100"]
    path = tmp_path / "nonames.weights.h5"
    shutil.copy(paths[".weights.h5"], path)
    with h5py.File(path, "r+") as f:
        stripped = 0
        def strip(name, obj):
            nonlocal stripped
            if isinstance(obj, h5py.Group) and "name" in obj.attrs:
                del obj.attrs["name"]
                stripped += 1
        f.visititems(strip)
    assert stripped > 50
    ws = import_keras(path)
    assert ws.config.num_classes == 0 and ws.config.alpha == 1.0
    assert_tensors(ws, expected_tensors(model))


def to_tf_keras2(src, dst, *, weights_only=False):
    """Rewrite a Keras 3 legacy .h5 in tf.keras 2.x's layout: ``<layer>/<layer>/kernel:0`` datasets,
    ``weight_names`` with ``:0``, ``depthwise_kernel`` names, ``batch_input_shape`` in the config;
    ``weights_only`` puts the layer groups at the root as ``save_weights("x.h5")`` did."""
    with h5py.File(src, "r") as fin, h5py.File(dst, "w") as fout:
        g_in = fin["model_weights"]
        if weights_only:
            g_out = fout
        else:
            cfg = json.loads(fin.attrs["model_config"])
            for layer in cfg["config"]["layers"]:
                if layer["class_name"] == "InputLayer":
                    layer["config"]["batch_input_shape"] = layer["config"].pop("batch_shape")
            cfg["class_name"] = "Functional"
            fout.attrs["model_config"] = json.dumps(cfg).encode("utf-8")
            fout.attrs["keras_version"] = b"2.15.0"
            fout.attrs["backend"] = b"tensorflow"
            g_out = fout.create_group("model_weights")
        g_out.attrs["layer_names"] = np.array([n.encode() for n in g_in.attrs["layer_names"]])
        for layer in g_in.attrs["layer_names"]:
            lg_in, lg_out = g_in[layer], g_out.create_group(layer)
            names = []
            for wn in lg_in.attrs["weight_names"]:
                base = wn.rsplit("/", 1)[1]
                base = "depthwise_kernel" if layer.startswith("conv_dw") and base == "kernel" else base
                new = f"{layer}/{base}:0"
                lg_out.create_dataset(new, data=lg_in[wn][()])
                names.append(new.encode())
            lg_out.attrs["weight_names"] = np.array(names, dtype="S") if names else np.zeros((0,), "S1")


@pytest.mark.parametrize("weights_only", [False, True], ids=["model", "save_weights"])
def test_tf_keras2_layout(built, tmp_path, weights_only):
    model, paths = built["top025"]
    path = tmp_path / "tfkeras2.h5"
    to_tf_keras2(paths[".h5"], path, weights_only=weights_only)
    ws = import_keras(path)
    assert_tensors(ws, expected_tensors(model))
    assert ws.config.resolution == ((224, 224) if weights_only else (128, 128))
    assert "legacy Keras HDF5" in ws.config.source


def test_epsilon_from_config_and_mixed_epsilons(built, tmp_path):
    """Per-layer epsilons come from the config; layers are brought to the smallest one through var."""
    model, paths = built["top025"]

    def edit(cfg):
        for layer in cfg["config"]["layers"]:
            if layer["class_name"] == "BatchNormalization":
                layer["config"]["epsilon"] = 1e-5 if layer["name"] == "conv_dw_3_bn" else 2e-3

    path = rewrite_keras(paths[".keras"], tmp_path / "eps.keras", config=edit)
    ws = import_keras(path)
    assert ws.config.bn_epsilon == 1e-5
    want = expected_tensors(model)
    np.testing.assert_array_equal(ws.tensors["blocks.2.dw.bn.var"], want["blocks.2.dw.bn.var"])
    np.testing.assert_allclose(ws.tensors["blocks.2.pw.bn.var"], want["blocks.2.pw.bn.var"] + (2e-3 - 1e-5),
                               rtol=1e-6)


def test_plain_relu_model(keras, built, tmp_path):
    """ReLU layers without max_value -> activation 'relu'; checked against Keras running that model."""
    _, paths = built["feat025"]

    def edit(cfg):
        for layer in cfg["config"]["layers"]:
            if layer["class_name"] == "ReLU":
                layer["config"]["max_value"] = None

    path = rewrite_keras(paths[".keras"], tmp_path / "relu.keras", config=edit)
    ws = import_keras(path)
    assert ws.config.activation == "relu"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = keras.saving.load_model(path)
    x = random_input(BATCH, 96, 96, seed=8)
    ref = keras_forward(keras, model, x)
    assert_close(mobilenet_fast.Model(ws, threads=1).features(x), ref, "plain ReLU")
    relu6 = keras_forward(keras, built["feat025"][0], x)
    assert float(np.abs(relu6 - ref).max()) > 100 * tol(ref)  # the clamp at 6 really matters here


def test_mixed_activations_are_rejected(built, tmp_path):
    _, paths = built["feat025"]

    def edit(cfg):
        for layer in cfg["config"]["layers"]:
            if layer["name"] == "conv_pw_3_relu":
                layer["config"]["max_value"] = None

    import_error(rewrite_keras(paths[".keras"], tmp_path / "mixed.keras", config=edit), "ReLU and ReLU6")


def test_softmax_head_is_accepted(built, tmp_path):
    """keras.applications' default classifier_activation='softmax': the weights are the same and we
    import the logits under it (Model.predict applies the softmax)."""
    model, paths = built["top025"]

    def edit(cfg):
        for layer in cfg["config"]["layers"]:
            if layer["name"] == "predictions":
                assert layer["config"]["activation"] == "linear"
                layer["config"]["activation"] = "softmax"

    ws = import_keras(rewrite_keras(paths[".keras"], tmp_path / "softmax.keras", config=edit))
    assert_tensors(ws, expected_tensors(model))


def test_registry_and_round_trip(built, tmp_path):
    _, paths = built["top025"]
    for ext in (".keras", ".h5", ".weights.h5"):
        assert detect_format(paths[ext]) == "keras"
        ws = import_weights(paths[ext])
        assert ws.config.num_classes == 7
    assert mobilenet_fast.load_weight_set(paths[".h5"]).config.num_classes == 7
    ws = import_keras(paths[".keras"], labels=[f"c{i}" for i in range(7)], source="unit test")
    assert ws.config.labels[3] == "c3" and ws.config.source == "unit test"
    save_weights(tmp_path / "k.safetensors", ws)
    back = load_weights(tmp_path / "k.safetensors")
    assert back.config == ws.config
    with pytest.raises(InputError, match="3 labels"):
        import_keras(paths[".keras"], labels=["a", "b", "c"])


# -- malformed files -------------------------------------------------------------------------------

def rewrite_keras(src, dst, *, config=None, weights=None, drop=()):
    """Copy a .keras archive, editing config.json (``config(dict)``), the weights (``weights(h5 file)``)
    or dropping members."""
    with zipfile.ZipFile(src) as zin:
        members = {n: zin.read(n) for n in zin.namelist() if n not in drop}
    if config is not None and "config.json" in members:
        cfg = json.loads(members["config.json"])
        config(cfg)
        members["config.json"] = json.dumps(cfg).encode()
    if weights is not None:
        buf = io.BytesIO(members["model.weights.h5"])
        with h5py.File(buf, "r+") as f:
            weights(f)
        members["model.weights.h5"] = buf.getvalue()
    with zipfile.ZipFile(dst, "w") as zout:
        for n, data in members.items():
            zout.writestr(n, data)
    return dst


def copy(src, dst):
    shutil.copy(src, dst)
    return dst


@pytest.mark.parametrize("ext", [".keras", ".h5", ".weights.h5"])
@pytest.mark.parametrize("fraction", [0.5, 0.97, 0.0003])
def test_truncated_file(built, tmp_path, ext, fraction):
    _, paths = built["top025"]
    data = paths[ext].read_bytes()
    path = tmp_path / f"cut{ext}"
    path.write_bytes(data[: int(len(data) * fraction)])
    import_error(path)


@pytest.mark.parametrize("name, data", [
    ("empty.h5", b""),
    ("garbage.h5", bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8))),
    ("garbage.keras", b"PK\x03\x04" + b"\x00" * 200),
    ("text.keras", b"not a zip at all\n" * 10),
    ("hdf5head.h5", b"\x89HDF\r\n\x1a\n" + b"\xff" * 600),
])
def test_garbage_bytes(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    import_error(path)


def test_deeply_nested_config_json(tmp_path):
    """config.json of 100000 nested lists overflows Python's JSON parser (found by fuzz/run.py)."""
    path = tmp_path / "deep.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", "[" * 100000 + "]" * 100000)
        zf.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n")
    import_error(path, ["config.json is not valid JSON", "recursion"])


def set_zip_method(data, name, method):
    """``data`` (a zip archive) with the compression method of member ``name`` changed in the central directory."""
    data = bytearray(data)
    entry = data.index(b"PK\x01\x02")
    while data[entry + 46:entry + 46 + len(name)] != name.encode():
        entry = data.index(b"PK\x01\x02", entry + 4)
    data[entry + 10:entry + 12] = method.to_bytes(2, "little")
    return bytes(data)


@pytest.mark.parametrize("member", ["config.json", "model.weights.h5"])
@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_LZMA])
def test_member_claiming_another_compression(tmp_path, member, method):
    """zlib.error / lzma.LZMAError from decompressing stored bytes (found by fuzz/run.py)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("config.json", json.dumps({"class_name": "Functional", "config": {"layers": []}}) + " " * 500)
        zf.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8)
    path = tmp_path / "method.keras"
    path.write_bytes(set_zip_method(buf.getvalue(), member, method))
    import_error(path, [member, "cannot be read from the archive"])


def test_corrupted_keras_archive(built, tmp_path):
    """A changed byte inside model.weights.h5 is caught by the zip's CRC before HDF5 sees it."""
    _, paths = built["top025"]
    data = bytearray(paths[".keras"].read_bytes())
    with zipfile.ZipFile(paths[".keras"]) as zf:
        info = zf.getinfo("model.weights.h5")
    data[info.header_offset + 30 + len(info.filename) + info.compress_size // 2] ^= 0xFF
    path = tmp_path / "flipped.keras"
    path.write_bytes(bytes(data))
    import_error(path, ["model.weights.h5", "CRC"])


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        import_keras(tmp_path / "nope.keras")
    with pytest.raises(ImportFormatError, match="directory"):
        import_keras(tmp_path)


def test_zip_without_weights(built, tmp_path):
    _, paths = built["top025"]
    import_error(rewrite_keras(paths[".keras"], tmp_path / "now.keras", drop=("model.weights.h5",)),
                 "model.weights.h5")


def test_zip_without_config_uses_defaults(built, tmp_path):
    model, paths = built["top025"]
    ws = import_keras(rewrite_keras(paths[".keras"], tmp_path / "nocfg.keras", drop=("config.json",)))
    assert ws.config.resolution == (224, 224)
    assert_tensors(ws, expected_tensors(model))


def test_layer_removed_from_h5(built, tmp_path):
    _, paths = built["top025"]
    path = copy(paths[".h5"], tmp_path / "removed.h5")
    with h5py.File(path, "r+") as f:
        g = f["model_weights"]
        del g["conv_pw_5"]
        g.attrs["layer_names"] = [n for n in g.attrs["layer_names"] if n != "conv_pw_5"]
    import_error(path, ["'conv_pw_5'", "12 of the 13"])


def test_block_removed_from_keras_config(built, tmp_path):
    _, paths = built["top025"]

    def edit(cfg):
        cfg["config"]["layers"] = [layer for layer in cfg["config"]["layers"]
                                   if not layer["name"].startswith("conv_dw_7")]

    import_error(rewrite_keras(paths[".keras"], tmp_path / "noblock.keras", config=edit), "'conv_dw_7'")


def test_extra_block(built, tmp_path):
    _, paths = built["top025"]
    path = copy(paths[".h5"], tmp_path / "extra.h5")
    with h5py.File(path, "r+") as f:
        g = f["model_weights"]
        g.copy("conv_dw_13", "conv_dw_14")
        g.attrs["layer_names"] = list(g.attrs["layer_names"]) + ["conv_dw_14"]
    import_error(path, ["conv_dw_14", "13"])


@pytest.mark.parametrize("layer, shape", [
    ("conv_pw_4", (1, 1, 16, 64)),    # Cin should be 32 at alpha 0.25
    ("conv_pw_4", (1, 1, 32, 60)),    # Cout should be 64
    ("conv_dw_7", (3, 3, 64, 1)),     # 128 channels come in
    ("conv_dw_7", (5, 5, 128, 1)),    # wrong kernel
    ("conv_dw_13", (3, 3, 256, 2)),   # channel multiplier 2
    ("conv1", (3, 3, 1, 8)),          # not RGB
    ("conv1", (3, 3, 3, 9)),          # stem should have 8 channels
])
def test_wrong_kernel_shape_in_h5(built, tmp_path, layer, shape):
    _, paths = built["top025"]
    path = copy(paths[".h5"], tmp_path / "shape.h5")
    with h5py.File(path, "r+") as f:
        g = f[f"model_weights/{layer}/{layer}"]
        del g["kernel"]
        g.create_dataset("kernel", data=np.zeros(shape, np.float32))
    import_error(path, [f"'{layer}'", "shape"])


def test_declared_huge_stem_without_data(built, tmp_path):
    """An HDF5 dataset may declare any shape without storing data: 2**40 filters is refused as such,
    not as an alpha out of range (found by fuzz/run.py)."""
    _, paths = built["top025"]
    path = copy(paths[".h5"], tmp_path / "huge.h5")
    with h5py.File(path, "r+") as f:
        g = f["model_weights/conv1/conv1"]
        del g["kernel"]
        g.create_dataset("kernel", shape=(3, 3, 3, 1 << 40), dtype="f4", chunks=(1, 1, 1, 16))
    import_error(path, ["'conv1' has 1099511627776 filters", "more than any MobileNet"])


@pytest.mark.parametrize("target", ["/etc/hostname", "/dev/zero", "missing.bin"])
def test_dataset_stored_in_another_file(built, tmp_path, target):
    """HDF5 external storage would read any file's bytes into the weights (seen while fuzzing): refused."""
    _, paths = built["top025"]
    path = copy(paths[".weights.h5"], tmp_path / "external.weights.h5")
    with h5py.File(path, "r+") as f:
        g = f["layers/batch_normalization/vars"]
        n = g["0"].shape[0]
        del g["0"]
        g.create_dataset("0", shape=(n,), dtype="f4", external=[(target, 0, 4 * n)])
    import_error(path, ["layers/batch_normalization/vars/0", "another file"])


def test_wrong_shapes_in_keras_archive(built, tmp_path):
    _, paths = built["top025"]

    def bn(f):  # conv_pw_3_bn's moving_mean (3rd variable)
        key = next(k for k in f["layers"] if f[f"layers/{k}/vars"].attrs.get("name") == "conv_pw_3_bn")
        del f[f"layers/{key}/vars/2"]
        f[f"layers/{key}/vars/2"] = np.zeros(31, np.float32)

    import_error(rewrite_keras(paths[".keras"], tmp_path / "bn.keras", weights=bn),
                 ["'conv_pw_3_bn'", "moving_mean", "[31]"])

    def preds(f):
        key = next(k for k in f["layers"] if f[f"layers/{k}/vars"].attrs.get("name") == "conv_preds")
        del f[f"layers/{key}/vars/1"]
        f[f"layers/{key}/vars/1"] = np.zeros(8, np.float32)

    import_error(rewrite_keras(paths[".keras"], tmp_path / "preds.keras", weights=preds), ["'conv_preds'", "bias"])


def test_nan_and_negative_variance(built, tmp_path):
    _, paths = built["top025"]
    path = copy(paths[".h5"], tmp_path / "nan.h5")
    with h5py.File(path, "r+") as f:
        f["model_weights/conv_pw_10/conv_pw_10/kernel"][0, 0, 1, 2] = np.nan
    import_error(path, ["conv_pw_10/kernel", "NaN"])
    path = copy(paths[".h5"], tmp_path / "negvar.h5")
    with h5py.File(path, "r+") as f:
        f["model_weights/conv_dw_2_bn/conv_dw_2_bn/moving_variance"][3] = -1.0
    import_error(path, ["conv_dw_2_bn/moving_variance", "negative"])


def test_wrong_dtype(built, tmp_path):
    _, paths = built["top025"]
    path = copy(paths[".h5"], tmp_path / "int.h5")
    with h5py.File(path, "r+") as f:
        g = f["model_weights/conv_pw_2/conv_pw_2"]
        shape = g["kernel"].shape
        del g["kernel"]
        g.create_dataset("kernel", data=np.zeros(shape, np.int32))
    import_error(path, ["conv_pw_2", "int32"])


def test_not_a_mobilenet(keras, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(2)])
        m.save(tmp_path / "tiny.keras")
        m.save(tmp_path / "tiny.h5")
        m.save_weights(tmp_path / "tiny.weights.h5")
    for ext in (".keras", ".h5", ".weights.h5"):
        import_error(tmp_path / f"tiny{ext}", "'conv1'")


def test_mobilenet_nested_in_another_model(keras, built, tmp_path):
    base, _ = built["feat025"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = keras.Sequential([keras.Input((96, 96, 3)), base, keras.layers.Dense(3)])
        m.save(tmp_path / "nested.keras")
        m.save_weights(tmp_path / "nested.weights.h5")
    import_error(tmp_path / "nested.keras", "nested")
    import_error(tmp_path / "nested.weights.h5", "nested")


@pytest.mark.parametrize("change, match", [
    (("GlobalAveragePooling2D", "class_name", "GlobalMaxPooling2D"), "pooling='max'"),
    (("conv_dw_5_relu", "max_value", 4.0), "max_value"),
    (("conv_dw_4", "strides", [1, 1]), "strides"),
    (("conv_pad_6", "padding", [[1, 1], [1, 1]]), "conv_pad_6"),
    (("conv_dw_9", "dilation_rate", [2, 2]), "dilation"),
])
def test_architecture_changes_are_rejected(built, tmp_path, change, match):
    target, key, value = change
    _, paths = built["feat100"]

    def edit(cfg):
        for layer in cfg["config"]["layers"]:
            if target in (layer["name"], layer["class_name"]):
                if key == "class_name":
                    layer["class_name"] = value
                else:
                    layer["config"][key] = value

    import_error(rewrite_keras(paths[".keras"], tmp_path / "arch.keras", config=edit), match)


def test_missing_h5py_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    path = tmp_path / "x.h5"
    path.write_bytes(b"\x00")
    with pytest.raises(MissingDependencyError, match=r"mobilenet-fast\[keras\]"):
        import_keras(path)


# -- libhdf5 crashes and hangs: the file is parsed in a forked child --------------------------------

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="files are read in-process without os.fork")


@needs_fork
@pytest.mark.parametrize("sig", ["SIGSEGV", "SIGABRT", "SIGBUS"])
def test_hdf5_crash_is_an_import_error(tmp_path, monkeypatch, sig):
    """libhdf5 segfaults on some damaged legacy .h5 files (fuzz/run.py finds ~1 in 5,000 while reading
    their attributes): the forked child dies, the caller gets an ImportFormatError. The child here
    inherits a reader that dies the same way."""
    import signal

    from mobilenet_fast.importers import keras_h5

    path = tmp_path / "crash.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(600))
    monkeypatch.setattr(keras_h5, "_open_container", lambda *a: os.kill(os.getpid(), getattr(signal, sig)))
    import_error(path, ["crashed the HDF5 library", sig])


@needs_fork
def test_hdf5_hang_times_out(tmp_path, monkeypatch):
    """libhdf5 loops on other damaged files: the child is killed after HDF5_TIMEOUT seconds."""
    import time

    from mobilenet_fast.importers import keras_h5

    path = tmp_path / "hang.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(600))
    monkeypatch.setattr(keras_h5, "HDF5_TIMEOUT", 1.0)
    monkeypatch.setattr(keras_h5, "_open_container", lambda *a: time.sleep(60))
    t0 = time.monotonic()
    import_error(path, ["did not finish reading the file within 1 s"])
    assert time.monotonic() - t0 < 10


@pytest.mark.parametrize("isolate", [True, False])
def test_same_result_in_a_child_and_in_process(built, tmp_path, monkeypatch, isolate):
    """The result (and an error) crosses from the child unchanged; without isolation nothing differs."""
    from mobilenet_fast.importers import keras_h5

    monkeypatch.setattr(keras_h5, "ISOLATE_HDF5", isolate)
    model, paths = built["top025"]
    ws = import_keras(paths[".h5"], labels=[f"c{i}" for i in range(7)])
    assert_tensors(ws, expected_tensors(model))
    assert ws.config.labels == tuple(f"c{i}" for i in range(7))
    with pytest.raises(InputError, match="2 labels given"):
        import_keras(paths[".h5"], labels=["a", "b"])
    import_error(copy_truncated(paths[".weights.h5"], tmp_path / "cut.weights.h5"), "cut.weights.h5")


def copy_truncated(src, dst):
    dst.write_bytes(src.read_bytes()[:5000])
    return dst
