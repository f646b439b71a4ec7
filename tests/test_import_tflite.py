"""TFLite importer (:mod:`mobilenet_fast.importers.tflite`) on the files of tests/data/tflite/.

Those files were written by TensorFlow's own converter (scripts/make_import_fixtures.py, from a
Keras MobileNet 0.25/128 with 100 classes, seeded weights and real BatchNorm statistics) next to
the same weights in our format, so the imported model is checked against both:

* float32 and float16-weight files through our engine against LiteRT (``ai_edge_litert``, its
  default XNNPACK delegate) running the same file, and against our engine on the original
  (unfolded) weights;
* ``mobilenet_fast.load``, ``mobilenet-fast convert`` / ``classify --weights`` / ``info``;
* malformed files (empty, truncated, wrong identifier, flatbuffer fields edited to an unsupported
  operator, a depth multiplier of 2, a wrong stride) give an ImportFormatError naming the problem;
* full-integer int8 files (int8 or float input/output) through our int8 engine against LiteRT on
  the same file: the same int8 logits and probabilities, bit for bit; C++ equal to the numpy
  integer reference on every ISA; convert to our int8 file and back; quantisation parameters
  edited to zero / NaN scales, out-of-range or nonzero weight zero points, scale vectors of the
  wrong length: refused by name.
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

from mobilenet_fast import quantization as Q  # noqa: E402
from mobilenet_fast.importers.tflite import import_tflite, import_tflite_int8  # noqa: E402

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


def _classify_and_info(tmp_path, capsys, classify_with: str, info_of: str) -> str:
    """``classify`` a fixture crop with one file (it must print a class), then return ``info``'s
    output for another."""
    png = tmp_path / "crop.png"
    from PIL import Image

    Image.fromarray(np.load(PREFIX + "_images.npy")[0]).save(png)
    capsys.readouterr()
    assert cli.main(["classify", str(png), "--weights", classify_with, "--threads", "1"]) == 0
    assert "class_" in capsys.readouterr().out
    assert cli.main(["info", "--weights", info_of]) == 0
    return str(capsys.readouterr().out)


def test_cli_convert_classify_info(tmp_path, capsys):
    dst = tmp_path / "from_tflite.safetensors"
    assert cli.main(["convert", FLOAT32, str(dst)]) == 0
    back = load_weights(dst)
    direct = import_tflite(FLOAT32)
    assert back.config == direct.config
    for name, t in direct.tensors.items():
        assert np.array_equal(back.tensors[name], t), name
    out = _classify_and_info(tmp_path, capsys, FLOAT32, FLOAT16)
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
    with pytest.raises(ImportFormatError, match="quantised TFLite model.*int8 model"):
        import_tflite(INT8)
    with pytest.raises(ImportFormatError, match="float TFLite model"):
        import_tflite_int8(FLOAT32)
    with pytest.raises(mf.InputError, match="quantised"):
        mf.load(INT8, precision="float32")


# -- quantised (full-integer int8) files: our int8 engine against LiteRT ----------------------------

def _file_tensor(path: str, which: str):
    """A tensor of the walked graph (``output`` or ``logits``), for its quantisation parameters."""
    from mobilenet_fast.importers import tflite as T

    found = T._read_file(path)[5]
    return found.output if which == "output" else found.classifier.y


def _on_grid(values: np.ndarray, t) -> np.ndarray:
    """float values onto an int8 tensor's grid: clamp(zp + rne(v / scale)) (float32, as XNNPACK)."""
    s, zp = np.float32(t.scale[0]), int(t.zero_point[0])
    return np.clip(np.rint(values.astype(np.float32) / s) + zp, -128, 127).astype(np.int64)


def int8_inputs() -> np.ndarray:
    """sample_inputs plus ten more seeded noise images: ~1600 logits to compare."""
    rng = np.random.default_rng(11)
    return np.concatenate([sample_inputs(), rng.uniform(-1, 1, (10, 128, 128, 3)).astype(np.float32)])


def test_int8_file_imports_as_our_int8_network():
    model = mf.load(INT8, threads=1)
    assert isinstance(model, mf.QuantizedModel) and model.precision == "int8"
    c, qn = model.config, model.qnet
    assert (c.alpha, c.resolution, c.num_classes, c.padding) == (0.25, (128, 128), 100, "tf_same")
    assert "int8" in c.source and "mnv1_025_128_int8.tflite" in c.source
    # int8 codes are uint8 codes - 128: the file's input zero point -1 is our 127
    assert qn.input.zero_point == 127 and np.float32(qn.input.scale) == np.float32(1 / 127.5)
    assert len(qn.layers) == 27 and qn.classifier is not None
    for layer in qn.layers:
        assert layer.weight.dtype == np.int8 and np.abs(layer.weight.astype(int)).max() <= 127
        assert layer.output.zero_point == layer.clamp[0] == 0  # ReLU6 outputs: int8 zero point -128
    assert qn.layers[0].weight.shape == (3, 3, 3, 8) and qn.layers[1].weight.shape == (3, 3, 8)
    assert qn.classifier.weight.shape == (256, 100)
    # the C++ int8 network equals the numpy integer reference bit for bit, on every ISA
    x = int8_inputs()[:3]
    ref = Q.int8_forward(qn, x)
    for isa in mf.cpu_info()["supported_isas"]:
        got = mf.load(INT8, isa=isa, threads=2).logits(x)
        assert np.array_equal(got.astype(np.float64), ref), isa


def test_int8_file_matches_litert_exactly():
    """int8 input and int8 logits: LiteRT (XNNPACK) fed the codes our model quantises the images
    to gives exactly our logits rounded onto the file's output grid."""
    model = mf.load(INT8, threads=1)
    x = int8_inputs()
    codes = (model.qnet.input.quantize(x) - 128).astype(np.int8)
    ref = run_litert(INT8, codes).astype(np.int64)
    logits = model.logits(x)  # on the file's logit grid (QuantizedNet.logits_output)
    ours = _on_grid(logits, _file_tensor(INT8, "output"))
    assert ref.shape == ours.shape == (len(x), 100)
    assert np.array_equal(ours, ref), f"{int((ours != ref).sum())} of {ours.size} logits differ"
    t = _file_tensor(INT8, "output")
    assert np.array_equal(logits, ((ref - int(t.zero_point[0])) * np.float32(t.scale[0])).astype(np.float32))
    assert np.array_equal(logits.argmax(1), ref.argmax(1))  # ties included: the same numbers


def test_int8_float_io_file_matches_litert():
    """float input (QUANTIZE) and SOFTMAX + DEQUANTIZE output: our logits (on the file's logit
    grid) through a float softmax give LiteRT's probabilities (int8, 1/256 steps)."""
    model = mf.load(INT8_FLOATIO, threads=1)
    x = int8_inputs()
    ref = run_litert(INT8_FLOATIO, x)
    ref_codes = np.rint(ref.astype(np.float64) * 256) - 128
    logits_t = _file_tensor(INT8_FLOATIO, "logits")
    lq = (_on_grid(model.logits(x), logits_t) - int(logits_t.zero_point[0])) * float(logits_t.scale[0])
    e = np.exp(lq - lq.max(axis=1, keepdims=True))
    codes = np.clip(np.rint(e / e.sum(axis=1, keepdims=True) * 256) - 128, -128, 127)
    diff = np.abs(codes - ref_codes)
    assert diff.max() <= 1 and (diff == 0).mean() >= 0.999, (diff.max(), (diff == 0).mean())
    p = model.predict(x)
    assert np.abs(p - ref).max() <= 1 / 256 + 1e-6
    assert np.array_equal(p.argmax(1), ref.argmax(1))


def test_int8_tflite_convert_classify_info(tmp_path, capsys):
    dst = tmp_path / "from_int8.safetensors"
    assert cli.main(["convert", INT8, str(dst)]) == 0
    x = int8_inputs()[:4]
    a, b = mf.load(INT8, threads=1), mf.load(dst, threads=1)
    assert isinstance(b, mf.QuantizedModel) and b.config == a.config
    assert np.array_equal(a.logits(x), b.logits(x))
    out = _classify_and_info(tmp_path, capsys, INT8_FLOATIO, INT8)
    assert "precision int8" in out
    assert cli.main(["convert", INT8, str(tmp_path / "x.onnx")]) != 0
    assert "int8 model: exporting int8 to ONNX is not supported" in capsys.readouterr().err
    # the logits' quantisation travels as two optional tensors, both or neither
    assert b.qnet.logits_output == a.qnet.logits_output is not None
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(dst), framework="numpy") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    del tensors["classifier.output_zero_point"]
    half = tmp_path / "half.safetensors"
    save_file(tensors, str(half), metadata=meta)
    with pytest.raises(mf.WeightFileError, match="missing tensor 'classifier.output_zero_point'"):
        mf.load(half)


def _quant_vector_pos(buf: bytes, tensor: int, slot: int) -> int:
    """Byte position of element 0 of a tensor's quantisation vector (slot 8: scale, 10: zero point)."""
    q = _model(buf).Subgraphs(0).Tensors(tensor).Quantization()
    o = q._tab.Offset(slot)
    assert o, "the fixture tensor has no such quantisation vector"
    return q._tab.Vector(o)


def _int8_edited(tmp_path, edits):
    buf = bytearray(pathlib.Path(INT8).read_bytes())
    for pos, fmt, value in edits:
        struct.pack_into(fmt, buf, pos, value)
    path = tmp_path / "edited_int8.tflite"
    path.write_bytes(bytes(buf))
    return path


def _stem(buf: bytes):
    """(input tensor, weight tensor, output tensor) indices of the stem conv (operator 0)."""
    op = _op(buf, 0)
    return int(op.Inputs(0)), int(op.Inputs(1)), int(op.Outputs(0))


@pytest.mark.parametrize("what, match", [
    ("weight scale 0", r"weights .* scale that is not finite and > 0"),
    ("weight scale count", r"weights .* have 3 scales .* for 8 output channels"),
    ("weight zero point", r"weights .* have a zero point outside -128\.\.127"),
    ("weight zero points span", r"minus their per-channel zero points span -?\d+\.\.\d+, more than 255 steps"),
    ("activation scale nan", r"has scale nan"),
    ("activation scale tiny", r"has scale 9\.9\d*e-41; an activation scale must be in 1e-12\.\.1e12"),
    ("activation zero point", r"zero point 300, outside"),
    ("activation scales 2", r"2 scales and 1 zero points"),
])
def test_int8_bad_quantisation_refused(tmp_path, what, match):
    buf = pathlib.Path(INT8).read_bytes()
    _, w, y = _stem(buf)
    if what == "weight scale 0":
        edits = [(_quant_vector_pos(buf, w, 8) + 4, "<f", 0.0)]
    elif what == "weight scale count":
        edits = [(_quant_vector_pos(buf, w, 8) - 4, "<I", 3)]  # the vector's length prefix
    elif what == "weight zero point":
        edits = [(_quant_vector_pos(buf, w, 10) + 8, "<q", 300)]
    elif what == "weight zero points span":  # channel 1 shifted by 100: its weights and the others' are > 255 apart
        edits = [(_quant_vector_pos(buf, w, 10) + 8, "<q", 100)]
    elif what == "activation scale nan":
        edits = [(_quant_vector_pos(buf, y, 8), "<f", float("nan"))]
    elif what == "activation scale tiny":  # a float32 denormal: its reciprocal is infinite
        edits = [(_quant_vector_pos(buf, y, 8), "<f", 1e-40)]
    elif what == "activation zero point":
        edits = [(_quant_vector_pos(buf, y, 10), "<q", 300)]
    else:
        edits = [(_quant_vector_pos(buf, y, 8) - 4, "<I", 2)]
    path = _int8_edited(tmp_path, edits)
    with pytest.raises(ImportFormatError, match=match):
        import_tflite_int8(path)
    with pytest.raises(MobileNetFastError):
        mf.load(path)


def test_int8_random_byte_edits_only_refuse(tmp_path):
    """Random edits of the int8 file's tables: an ImportFormatError, or a model that runs."""
    blob = pathlib.Path(INT8).read_bytes()
    rng = np.random.default_rng(5)
    path = tmp_path / "fuzz_int8.tflite"
    x = int8_inputs()[:1]
    for _ in range(30):
        buf = bytearray(blob)
        for pos in rng.integers(8, 8192, 3):
            buf[int(pos)] = int(rng.integers(256))
        path.write_bytes(bytes(buf))
        try:
            model = mf.load(path, threads=1)
        except MobileNetFastError:
            continue
        assert model.logits(x).shape[0] == 1


def test_missing_tflite_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "tflite", None)
    with pytest.raises(MissingDependencyError, match="tflite"):
        import_tflite(FLOAT32)


def test_directory_and_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        import_tflite(tmp_path / "nope.tflite")
    with pytest.raises(ImportFormatError, match="directory"):
        import_tflite(tmp_path)
