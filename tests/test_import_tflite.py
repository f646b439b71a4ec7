"""TFLite importer (:mod:`mobilenet_fast.importers.tflite`) on the files of tests/data/tflite/.

Those files were written by TensorFlow's own converter (scripts/make_import_fixtures.py, from a
Keras MobileNet 0.25/128 with 100 classes, seeded weights and real BatchNorm statistics) next to
the same weights in our format, so the imported model is checked against both:

* float32 and float16-weight files through our engine against LiteRT (``ai_edge_litert``, its
  default XNNPACK delegate) running the same file, and against our engine on the original
  (unfolded) weights;
* ``mobilenet_fast.load``, ``mobilenet-fast convert`` / ``classify --weights`` / ``info``;
* malformed files (empty, truncated, wrong identifier, flatbuffer fields edited to an unsupported
  operator, a depth multiplier of 2, a wrong stride) give an ImportFormatError naming the problem.
"""

from __future__ import annotations

import os
import pathlib
import struct
import sys

import numpy as np
import pytest

import mobilenet_fast as mf
from mobilenet_fast import cli
from mobilenet_fast.errors import ImportFormatError, MissingDependencyError, MobileNetFastError
from mobilenet_fast.weights import load_weights

tflite = pytest.importorskip("tflite", reason="the 'tflite' package (extra 'tflite') is needed to read .tflite files")

from mobilenet_fast.importers.tflite import import_tflite  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "tflite")
PREFIX = os.path.join(DATA, "mnv1_025_128")
FLOAT32 = PREFIX + "_float32.tflite"
FLOAT16 = PREFIX + "_float16.tflite"
INT8 = PREFIX + "_int8.tflite"
INT8_FLOATIO = PREFIX + "_int8_floatio.tflite"
OURS = PREFIX + ".safetensors"


def images() -> np.ndarray:
    """The 4 photo crops of the fixtures, normalised as the model expects ([-1, 1])."""
    u8 = np.load(PREFIX + "_images.npy")
    return ((u8.astype(np.float32) - 127.5) / 127.5).astype(np.float32)


def sample_inputs() -> np.ndarray:
    """The photo crops plus two seeded uniform-noise images."""
    noise = np.random.default_rng(7).uniform(-1, 1, (2, 128, 128, 3)).astype(np.float32)
    return np.concatenate([images(), noise])


def run_litert(path: str, x: np.ndarray) -> np.ndarray:
    """LiteRT's output for each image of ``x`` (one at a time: the files have batch 1), as the
    file's own dtype (int8 codes for an int8 output)."""
    interp_mod = pytest.importorskip("ai_edge_litert.interpreter",
                                     reason="ai-edge-litert (test extra) runs the reference .tflite")
    it = interp_mod.Interpreter(model_path=path, num_threads=1)
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    outs = []
    for k in range(len(x)):
        it.set_tensor(i["index"], x[k:k + 1].astype(i["dtype"]))
        it.invoke()
        outs.append(np.array(it.get_tensor(o["index"])))
    return np.concatenate(outs)


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def scaled_tol(ref: np.ndarray, rel: float = 1e-4) -> float:
    return rel * max(1.0, float(np.abs(ref).max()))


# -- float files against LiteRT and our own weights -------------------------------------------------

def test_float32_config_and_tensors():
    ws = import_tflite(FLOAT32)
    c = ws.config
    assert (c.alpha, c.resolution, c.num_classes, c.activation) == (0.25, (128, 128), 100, "relu6")
    # Keras' ZeroPadding2D + VALID is written as SAME by the converter (identical on even sizes)
    assert c.padding == "tf_same" and c.bn_epsilon == 0.0
    assert c.input_mean == (127.5,) * 3 and c.input_std == (127.5,) * 3
    assert "mnv1_025_128_float32.tflite" in c.source and "float32" in c.source
    # folded layers: gamma 1, mean 0, var 1; the weights are the file's, transposed to our layouts
    assert np.all(ws.tensors["blocks.3.pw.bn.gamma"] == 1) and np.all(ws.tensors["blocks.3.pw.bn.mean"] == 0)
    assert ws.tensors["stem.conv.weight"].shape == (3, 3, 3, 8)
    assert ws.tensors["blocks.0.dw.weight"].shape == (3, 3, 8)
    assert ws.tensors["blocks.12.pw.weight"].shape == (256, 256)
    assert ws.tensors["classifier.weight"].shape == (256, 100)


@pytest.mark.parametrize("path", [FLOAT32, FLOAT16], ids=["float32", "float16"])
def test_float_file_matches_litert(path):
    x = sample_inputs()
    ours = mf.Model(import_tflite(path), threads=1).logits(x)
    ref = run_litert(path, x)  # the files end in SOFTMAX: probabilities
    assert ref.shape == ours.shape == (len(x), 100)
    # compare log-probabilities (logits up to a per-row constant), on the logits' scale
    d = np.abs(log_softmax(ours) - np.log(ref.astype(np.float64)))
    assert d.max() <= scaled_tol(ours), f"max |log p ours - log p litert| = {d.max():.3g}"
    assert np.array_equal(ours.argmax(1), ref.argmax(1))


def test_float32_matches_our_unfolded_weights():
    x = sample_inputs()
    imported = mf.Model(import_tflite(FLOAT32), threads=1).logits(x)
    original = mf.Model(load_weights(OURS), threads=1).logits(x)
    assert np.abs(imported - original).max() <= scaled_tol(original)


def test_float16_weights_are_the_rounded_ones():
    a, b = import_tflite(FLOAT16), import_tflite(FLOAT32)
    for name, t in a.tensors.items():
        assert t.dtype == np.float32
        assert np.array_equal(t, b.tensors[name].astype(np.float16).astype(np.float32)), name
    assert "float16 weights" in a.config.source


# -- entry points ------------------------------------------------------------------------------------

def test_load_and_classify_tflite():
    model = mf.load(FLOAT32, threads=1)
    assert type(model) is mf.Model
    x = images()[:1]
    ref = mf.Model(import_tflite(FLOAT32), threads=1).logits(x)
    assert np.array_equal(model.logits(x), ref)
    top = model.classify(np.load(PREFIX + "_images.npy")[0], top=3)
    assert len(top) == 3 and top[0].label.startswith("class_")


def test_cli_convert_classify_info(tmp_path, capsys):
    dst = tmp_path / "from_tflite.safetensors"
    assert cli.main(["convert", FLOAT32, str(dst)]) == 0
    back = load_weights(dst)
    direct = import_tflite(FLOAT32)
    assert back.config == direct.config
    for name, t in direct.tensors.items():
        assert np.array_equal(back.tensors[name], t), name
    png = tmp_path / "crop.png"
    from PIL import Image

    Image.fromarray(np.load(PREFIX + "_images.npy")[0]).save(png)
    capsys.readouterr()
    assert cli.main(["classify", str(png), "--weights", FLOAT32, "--threads", "1"]) == 0
    assert "class_" in capsys.readouterr().out
    assert cli.main(["info", "--weights", FLOAT16]) == 0
    out = capsys.readouterr().out
    assert "alpha" in out.lower() or "0.25" in out


# -- refusals ------------------------------------------------------------------------------------------

def _field_pos(table, slot: int) -> int:
    o = table._tab.Offset(slot)
    assert o, f"field at vtable slot {slot} is absent in the fixture"
    return table._tab.Pos + o


def _model(buf: bytes):
    return tflite.Model.GetRootAsModel(buf, 0)


def _edited(tmp_path, edits, name="edited.tflite"):
    """A copy of the float32 fixture with ``edits`` [(position, struct format, value)] applied."""
    buf = bytearray(pathlib.Path(FLOAT32).read_bytes())
    for pos, fmt, value in edits:
        struct.pack_into(fmt, buf, pos, value)
    path = tmp_path / name
    path.write_bytes(bytes(buf))
    return path


def _op(buf: bytes, k: int):
    return _model(buf).Subgraphs(0).Operators(k)


def test_unsupported_operator_is_named(tmp_path):
    buf = pathlib.Path(FLOAT32).read_bytes()
    m = _model(buf)
    oc = m.OperatorCodes(_op(buf, 1).OpcodeIndex())  # operator 1 is block 1's DEPTHWISE_CONV_2D
    assert oc.BuiltinCode() == 4
    path = _edited(tmp_path, [(_field_pos(oc, 4), "<b", 18), (_field_pos(oc, 10), "<i", 18)])  # -> MUL
    with pytest.raises(ImportFormatError, match=r"operator 1 \(MUL, output .*\) does not fit a MobileNetV1: "
                                                r"expected DEPTHWISE_CONV_2D 3x3, stride 1 \(block 1's depthwise"):
        import_tflite(path)


def test_depth_multiplier_refused(tmp_path):
    buf = pathlib.Path(FLOAT32).read_bytes()
    t = _op(buf, 1).BuiltinOptions()
    o = tflite.DepthwiseConv2DOptions()
    o.Init(t.Bytes, t.Pos)
    path = _edited(tmp_path, [(_field_pos(o, 10), "<i", 2)])
    with pytest.raises(ImportFormatError, match=r"operator 1 \(DEPTHWISE_CONV_2D.*depth multiplier 2"):
        import_tflite(path)


def test_wrong_stride_refused(tmp_path):
    buf = pathlib.Path(FLOAT32).read_bytes()
    t = _op(buf, 0).BuiltinOptions()
    o = tflite.Conv2DOptions()
    o.Init(t.Bytes, t.Pos)
    path = _edited(tmp_path, [(_field_pos(o, 6), "<i", 1), (_field_pos(o, 8), "<i", 1)])
    with pytest.raises(ImportFormatError, match=r"operator 0 \(CONV_2D.*stride 1x1; the stem conv"):
        import_tflite(path)


@pytest.mark.parametrize("content, match", [
    (b"", "too short"),
    (b"\x1c\x00\x00\x00ONNX" + bytes(64), "not a TFLite flatbuffer"),
    (b"PK\x03\x04" + bytes(64), "not a TFLite flatbuffer"),
])
def test_not_a_tflite_file(tmp_path, content, match):
    path = tmp_path / "bad.tflite"
    path.write_bytes(content)
    with pytest.raises(ImportFormatError, match=match):
        import_tflite(path)
    with pytest.raises(MobileNetFastError):
        mf.load(path)


def test_truncated_files_are_refused(tmp_path):
    blob = pathlib.Path(FLOAT32).read_bytes()
    path = tmp_path / "cut.tflite"
    for cut in [9, 64, 1000, len(blob) // 3, len(blob) // 2, len(blob) - 4096, len(blob) - 1]:
        path.write_bytes(blob[:cut])
        with pytest.raises(ImportFormatError, match="bad.tflite|cut.tflite"):
            import_tflite(path)


def test_random_byte_edits_only_refuse(tmp_path):
    """Flatbuffer offsets and values overwritten at random: an ImportFormatError or a valid model."""
    blob = pathlib.Path(FLOAT32).read_bytes()
    rng = np.random.default_rng(3)
    path = tmp_path / "fuzz.tflite"
    for _ in range(40):
        buf = bytearray(blob)
        for pos in rng.integers(8, 4096, 3):  # the tables and vtables live at the start
            buf[int(pos)] = int(rng.integers(256))
        path.write_bytes(bytes(buf))
        try:
            import_tflite(path)
        except ImportFormatError:
            pass


def test_quantised_file_refused_as_float_weights():
    with pytest.raises(ImportFormatError, match="quantised TFLite model"):
        import_tflite(INT8)


def test_missing_tflite_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "tflite", None)
    with pytest.raises(MissingDependencyError, match="tflite"):
        import_tflite(FLOAT32)


def test_directory_and_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        import_tflite(tmp_path / "nope.tflite")
    with pytest.raises(ImportFormatError, match="directory"):
        import_tflite(tmp_path)
