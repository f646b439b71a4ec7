"""Weight files: save/load round trip, deterministic bytes, and a clear error for every kind of bad file."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import numpy as np
import pytest
from safetensors.numpy import save_file

import mobilenet_fast
from helpers import random_weights
from mobilenet_fast.errors import WeightFileError
from mobilenet_fast.weights import ModelConfig, WeightSet, expected_shapes, load_weights, save_weights

LABELS = [f"thing {i}" for i in range(10)]


@pytest.fixture(scope="module")
def ws():
    return random_weights(0.25, 10, "tf_same", (64, 64), seed=3, labels=LABELS)


@pytest.fixture
def saved(ws, tmp_path):
    p = tmp_path / "w.safetensors"
    save_weights(p, ws)
    return p


def _write_raw(path, tensors, metadata):
    """Write a safetensors file directly, bypassing save_weights' validation."""
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, os.fspath(path), metadata=metadata)
    return path


def _load_fails(path, match):
    with pytest.raises(WeightFileError, match=match):
        load_weights(path)


# --------------------------------------------------------------------------------- round trip

def test_round_trip(ws, saved):
    back = load_weights(saved)
    assert back.config == ws.config
    assert back.config.labels == tuple(LABELS)
    assert isinstance(back.config.labels, tuple)
    assert back.config.source == "random_weights(seed=3)"
    assert list(back.tensors) == list(expected_shapes(ws.config))
    assert set(back.tensors) == set(ws.tensors)
    for name, t in ws.tensors.items():
        b = back.tensors[name]
        assert b.dtype == np.float32 and b.shape == t.shape, name
        assert b.tobytes() == t.tobytes(), name  # bitwise equal


def test_round_trip_no_labels_no_classifier(tmp_path):
    ws = random_weights(0.5, 0, "symmetric", (96, 80), seed=1)
    p = tmp_path / "f.safetensors"
    save_weights(p, ws)
    back = load_weights(p)
    assert back.config == ws.config
    assert back.config.labels is None and back.config.padding == "symmetric"
    assert back.config.resolution == (96, 80)
    assert "classifier.weight" not in back.tensors
    for name, t in ws.tensors.items():
        assert back.tensors[name].tobytes() == t.tobytes(), name


def test_deterministic_bytes(ws, tmp_path):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_weights(a, ws)
    save_weights(b, ws)
    assert a.read_bytes() == b.read_bytes()
    # and a load -> save cycle reproduces the file exactly
    c = tmp_path / "c.safetensors"
    save_weights(c, load_weights(a))
    assert c.read_bytes() == a.read_bytes()
    # a different weight set gives different bytes (the check above can fail)
    d = tmp_path / "d.safetensors"
    save_weights(d, random_weights(0.25, 10, "tf_same", (64, 64), seed=4, labels=LABELS))
    assert d.read_bytes() != a.read_bytes()


def test_header_is_aligned_and_sorted(saved):
    blob = saved.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    assert n % 8 == 0
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__")
    assert list(meta) == sorted(meta)
    offsets = [header[k]["data_offsets"] for k in header]
    assert offsets == sorted(offsets)


def test_weightset_repr(ws):
    r = repr(ws)
    assert "alpha=0.25" in r
    assert f"tensors={len(ws.tensors)}" in r
    assert "64x64" in r and "num_classes=10" in r


def test_package_load_repr_names_file(tmp_path):
    ws = random_weights(0.25, 7, "tf_same", (64, 64), seed=5)
    p = tmp_path / "my_model.safetensors"
    save_weights(p, ws)
    model = mobilenet_fast.load(p)
    assert isinstance(model, mobilenet_fast.Model)
    assert "my_model.safetensors" in repr(model)
    assert model.num_classes == 7
    assert model.config == ws.config


# ------------------------------------------------------------------------------ broken files

def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_weights(tmp_path / "nope.safetensors")
    with pytest.raises(FileNotFoundError):
        mobilenet_fast.load(tmp_path / "nope.safetensors")


def test_directory(tmp_path):
    _load_fails(tmp_path, "is a directory")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.safetensors"
    p.write_bytes(b"")
    _load_fails(p, "0 bytes, too short")


@pytest.mark.parametrize("cut", [1, 4, 7])
def test_truncated_inside_length(saved, cut):
    saved.write_bytes(saved.read_bytes()[:cut])
    _load_fails(saved, f"file is {cut} bytes, too short")


def test_truncated_inside_header(saved):
    blob = saved.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    for cut in (8, 9, 8 + n // 2, 8 + n - 1):
        saved.write_bytes(blob[:cut])
        _load_fails(saved, f"header declares {n} bytes but the file has {cut - 8}")


def test_truncated_inside_data(saved):
    blob = saved.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    for cut in (8 + n, 8 + n + 100, len(blob) // 2, len(blob) - 1):
        saved.write_bytes(blob[:cut])
        _load_fails(saved, "not a valid safetensors file")


def test_garbage_bytes(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "garbage.safetensors"
    p.write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(WeightFileError, match="truncated or not a safetensors file|not a valid safetensors"):
        load_weights(p)
    # garbage behind a plausible length prefix reaches the safetensors parser
    p.write_bytes((64).to_bytes(8, "little") + rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    _load_fails(p, "not a valid safetensors file")
    # a text file
    p.write_bytes(b"this is not a weight file, just some text\n" * 10)
    _load_fails(p, "header declares")


def test_header_length_larger_than_file(saved):
    blob = saved.read_bytes()
    saved.write_bytes((len(blob) * 2).to_bytes(8, "little") + blob[8:])
    _load_fails(saved, "header declares")


@pytest.mark.parametrize("how", ["first_brace", "key_quote", "binary"])
def test_tampered_header_invalid_json(saved, how):
    blob = bytearray(saved.read_bytes())
    if how == "first_brace":
        assert blob[8:9] == b"{"
        blob[8] = ord("[")
    elif how == "key_quote":
        i = bytes(blob).index(b'"format_version"')
        blob[i] = ord("x")
    else:
        blob[10:14] = b"\xff\xfe\xfd\xfc"
    saved.write_bytes(bytes(blob))
    _load_fails(saved, "not a valid safetensors file")


# ------------------------------------------------------------------------------ bad tensors

def test_missing_tensor(ws, tmp_path):
    tensors = dict(ws.tensors)
    del tensors["blocks.4.pw.bn.var"]
    p = _write_raw(tmp_path / "m.safetensors", tensors, ws.config.to_metadata())
    _load_fails(p, r"missing tensor 'blocks\.4\.pw\.bn\.var'")


def test_missing_classifier(ws, tmp_path):
    tensors = {k: v for k, v in ws.tensors.items() if not k.startswith("classifier")}
    p = _write_raw(tmp_path / "m.safetensors", tensors, ws.config.to_metadata())
    _load_fails(p, r"missing tensor 'classifier\.")


def test_misshaped_tensor(ws, tmp_path):
    tensors = dict(ws.tensors)
    w = tensors["blocks.2.dw.weight"]
    tensors["blocks.2.dw.weight"] = w.reshape(9, w.shape[2])
    p = _write_raw(tmp_path / "s.safetensors", tensors, ws.config.to_metadata())
    _load_fails(p, r"'blocks\.2\.dw\.weight' has shape \[9, \d+\], expected \[3, 3, \d+\]")


def test_transposed_tensor(ws, tmp_path):
    tensors = dict(ws.tensors)
    tensors["blocks.5.pw.weight"] = np.ascontiguousarray(tensors["blocks.5.pw.weight"].T)
    p = _write_raw(tmp_path / "s.safetensors", tensors, ws.config.to_metadata())
    _load_fails(p, r"'blocks\.5\.pw\.weight' has shape")


@pytest.mark.parametrize("dtype,code", [(np.float16, "F16"), (np.float64, "F64"), (np.int32, "I32")])
def test_wrong_dtype(ws, tmp_path, dtype, code):
    tensors = dict(ws.tensors)
    tensors["stem.conv.weight"] = tensors["stem.conv.weight"].astype(dtype)
    p = _write_raw(tmp_path / "d.safetensors", tensors, ws.config.to_metadata())
    _load_fails(p, rf"'stem\.conv\.weight' has dtype {code}, expected F32")


def test_extra_tensor(ws, tmp_path):
    tensors = dict(ws.tensors)
    tensors["blocks.13.dw.weight"] = np.zeros((3, 3, 8), np.float32)
    p = _write_raw(tmp_path / "x.safetensors", tensors, ws.config.to_metadata())
    _load_fails(p, r"unexpected tensor 'blocks\.13\.dw\.weight'")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_tensor(ws, tmp_path, value):
    tensors = dict(ws.tensors)
    t = tensors["blocks.7.pw.weight"].copy()
    t[3, 5] = value
    tensors["blocks.7.pw.weight"] = t
    p = _write_raw(tmp_path / "n.safetensors", tensors, ws.config.to_metadata())
    _load_fails(p, r"'blocks\.7\.pw\.weight' contains NaN or Inf")


def test_negative_bn_variance(ws, tmp_path):
    tensors = dict(ws.tensors)
    v = tensors["blocks.0.dw.bn.var"].copy()
    v[0] = -0.25
    tensors["blocks.0.dw.bn.var"] = v
    p = _write_raw(tmp_path / "v.safetensors", tensors, ws.config.to_metadata())
    _load_fails(p, r"'blocks\.0\.dw\.bn\.var' has negative variances")


def test_weightset_validates(ws):
    bad = dict(ws.tensors)
    bad["stem.bn.gamma"] = bad["stem.bn.gamma"].astype(np.float64)
    with pytest.raises(WeightFileError, match="'stem.bn.gamma' has dtype float64"):
        WeightSet(ws.config, bad)


def test_save_refuses_tensors_broken_after_construction(ws, tmp_path):
    copy = WeightSet(ws.config, dict(ws.tensors))
    t = copy.tensors["classifier.bias"].copy()
    t[0] = np.nan
    copy.tensors["classifier.bias"] = t  # the dict is mutable; save_weights re-validates
    p = tmp_path / "never.safetensors"
    with pytest.raises(WeightFileError, match="'classifier.bias' contains NaN"):
        save_weights(p, copy)
    assert not p.exists()


# ----------------------------------------------------------------------------- bad metadata

def test_no_metadata(ws, tmp_path):
    p = _write_raw(tmp_path / "nm.safetensors", ws.tensors, None)
    _load_fails(p, "no metadata; not a mobilenet-fast weight file")


def test_empty_metadata(ws, tmp_path):
    p = _write_raw(tmp_path / "nm.safetensors", ws.tensors, {})
    _load_fails(p, "no metadata")


def _meta_fails(ws, tmp_path, match, **changes):
    meta = ws.config.to_metadata()
    for k, v in changes.items():
        if v is None:
            del meta[k]
        else:
            meta[k] = v
    p = _write_raw(tmp_path / "meta.safetensors", ws.tensors, meta)
    _load_fails(p, match)


@pytest.mark.parametrize("fmt", ["pytorch", '"mobilenet-fast"', ""])
def test_wrong_format(ws, tmp_path, fmt):
    _meta_fails(ws, tmp_path, "metadata 'format' is", format=fmt)


def test_missing_format(ws, tmp_path):
    _meta_fails(ws, tmp_path, "metadata 'format' is None", format=None)


@pytest.mark.parametrize("version", ["2", "0", '"1"', "1.5"])
def test_unsupported_format_version(ws, tmp_path, version):
    _meta_fails(ws, tmp_path, "format_version .* is not supported", format_version=version)


@pytest.mark.parametrize("key", ["format_version", "alpha", "resolution", "num_classes", "padding",
                                 "bn_epsilon", "input_mean", "input_std", "labels"])
def test_missing_key(ws, tmp_path, key):
    _meta_fails(ws, tmp_path, f"metadata key '{key}' is missing", **{key: None})


@pytest.mark.parametrize("key", ["alpha", "resolution", "labels", "format_version"])
def test_non_json_value(ws, tmp_path, key):
    _meta_fails(ws, tmp_path, f"metadata key '{key}' is not valid JSON", **{key: "{not json"})


@pytest.mark.parametrize("alpha", ["0", "-0.25", "0.0", '"0.25"', "true", "null", "1e308", "1e7"])
def test_bad_alpha(ws, tmp_path, alpha):
    _meta_fails(ws, tmp_path, "metadata 'alpha' .* must be a number > 0", alpha=alpha)


def test_deeply_nested_metadata_value(ws, tmp_path):
    """100000 nested lists overflow Python's JSON parser (RecursionError; found by fuzz/run.py)."""
    _meta_fails(ws, tmp_path, "metadata key 'padding' is not valid JSON", padding="[" * 100000 + "]" * 100000)


@pytest.mark.parametrize("res", ["[64]", "[64, 64, 3]", "[16, 16]", "[64, 31]", "[64.0, 64.0]", '"64x64"',
                                 "[100000, 64]", "null"])
def test_bad_resolution(ws, tmp_path, res):
    _meta_fails(ws, tmp_path, "metadata 'resolution' .* must be \\[height, width\\]", resolution=res)


@pytest.mark.parametrize("padding", ['"same"', '"SAME"', '"valid"', "null", "1"])
def test_unknown_padding(ws, tmp_path, padding):
    _meta_fails(ws, tmp_path, "metadata 'padding' .* must be one of", padding=padding)


@pytest.mark.parametrize("nc", ["-1", "10.0", '"10"', "true"])
def test_bad_num_classes(ws, tmp_path, nc):
    _meta_fails(ws, tmp_path, "metadata 'num_classes' .* must be an int >= 0", num_classes=nc)


def test_labels_count_mismatch(ws, tmp_path):
    _meta_fails(ws, tmp_path, "metadata has 9 labels but num_classes = 10", labels=json.dumps(LABELS[:9]))
    _meta_fails(ws, tmp_path, "metadata has 11 labels but num_classes = 10",
                labels=json.dumps(LABELS + ["one more"]))


def test_labels_not_strings(ws, tmp_path):
    _meta_fails(ws, tmp_path, "metadata 'labels' .* must be a list of strings", labels=json.dumps(list(range(10))))


@pytest.mark.parametrize("std", ["[127.5, 0, 127.5]", "[0.0, 0.0, 0.0]", "[-0.0, 1, 1]"])
def test_input_std_zero(ws, tmp_path, std):
    _meta_fails(ws, tmp_path, "metadata 'input_std' .* must not contain 0", input_std=std)


@pytest.mark.parametrize("mean", ["[127.5, 127.5]", "[1, 2, \"3\"]", "127.5"])
def test_bad_input_mean(ws, tmp_path, mean):
    _meta_fails(ws, tmp_path, "metadata 'input_mean' .* must be a list of 3 finite numbers", input_mean=mean)


def test_metadata_valid_but_tensors_for_other_alpha(ws, tmp_path):
    # the metadata says alpha 0.5, the tensors are alpha 0.25's
    meta = ws.config.to_metadata()
    meta["alpha"] = "0.5"
    p = _write_raw(tmp_path / "a.safetensors", ws.tensors, meta)
    _load_fails(p, "has shape")


def test_from_metadata_round_trip(ws):
    assert ModelConfig.from_metadata(ws.config.to_metadata()) == ws.config


@pytest.mark.parametrize("activation", ['"relu7"', '"ReLU6"', "null", "6"])
def test_bad_activation(ws, tmp_path, activation):
    _meta_fails(ws, tmp_path, "metadata 'activation' .* must be one of", activation=activation)


def test_activation_round_trips_and_defaults_to_relu6(ws, tmp_path):
    relu = WeightSet(replace(ws.config, activation="relu", padding="keras"), ws.tensors)
    p = tmp_path / "relu.safetensors"
    save_weights(p, relu)
    back = load_weights(p)
    assert back.config.activation == "relu" and back.config.padding == "keras"
    # files written before the key existed (and ReLU6 files now: the default is not written) are ReLU6
    meta = ws.config.to_metadata()
    assert "activation" not in meta and relu.config.to_metadata()["activation"] == '"relu"'
    p2 = _write_raw(tmp_path / "old.safetensors", ws.tensors, meta)
    assert load_weights(p2).config.activation == "relu6"
    with pytest.raises(WeightFileError, match="unknown activation 'gelu'"):
        WeightSet(replace(ws.config, activation="gelu"), ws.tensors)
