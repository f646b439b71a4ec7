"""Quantised ONNX (QDQ and QOperator forms) through our int8 engine
(:mod:`mobilenet_fast.importers.onnx_qdq`), against onnxruntime running the same file.

The files, tests/data/onnx/mnv1_025_128_{qdq,qop}.onnx, are onnxruntime's own ``quantize_static``
(QDQ / QOperator, per-channel int8 weights, uint8 activations) of the 0.25/128 test weights
exported by our ONNX exporter (scripts/make_qdq_fixture.py). onnxruntime runs both as QLinearConv /
QLinearGlobalAveragePool / QGemm; our logits must be its logits exactly.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import mobilenet_fast as mf
from mobilenet_fast import cli
from mobilenet_fast import quantization as Q
from mobilenet_fast.errors import ImportFormatError

onnx = pytest.importorskip("onnx", reason="the onnx package (extra 'onnx') reads .onnx files")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime (test extra) runs the reference model")

from mobilenet_fast.importers.onnx_qdq import import_onnx_int8  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
QDQ = os.path.join(HERE, "data", "onnx", "mnv1_025_128_qdq.onnx")
QOP = os.path.join(HERE, "data", "onnx", "mnv1_025_128_qop.onnx")
BOTH = pytest.mark.parametrize("path", [QDQ, QOP], ids=["qdq", "qoperator"])
IMAGES = os.path.join(HERE, "data", "tflite", "mnv1_025_128_images.npy")


def inputs() -> np.ndarray:
    """The 4 photo crops of the fixtures and 12 seeded noise images, normalised to [-1, 1]."""
    u8 = np.load(IMAGES)
    noise = np.random.default_rng(1).uniform(-1, 1, (12, 128, 128, 3)).astype(np.float32)
    return np.concatenate([((u8.astype(np.float32) - 127.5) / 127.5).astype(np.float32), noise])


def ort_logits(path: str, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return np.concatenate([sess.run(None, {"input": x[i:i + 1]})[names.index("logits")] for i in range(len(x))])


@BOTH
def test_qdq_loads_as_int8_model(path):
    model = mf.load(path, threads=1)
    assert isinstance(model, mf.QuantizedModel)
    c, qn = model.config, model.qnet
    assert (c.alpha, c.resolution, c.num_classes, c.padding) == (0.25, (128, 128), 100, "tf_same")
    assert qn.input_divide and qn.logits_output is not None and len(qn.layers) == 27
    assert ("QDQ" if path == QDQ else "QOperator") in c.source
    with pytest.raises(mf.InputError, match="quantised"):
        mf.load(path, precision="float32")


@BOTH
def test_qdq_matches_onnxruntime_exactly(path):
    x = inputs()
    ours = mf.load(path, threads=1).logits(x)
    ref = ort_logits(path, x)
    assert ours.shape == ref.shape == (len(x), 100)
    assert np.array_equal(ours, ref), f"{int((ours != ref).sum())} of {ours.size} logits differ"
    assert np.array_equal(ours.argmax(1), ref.argmax(1))


@BOTH
def test_qdq_same_bits_on_every_isa_and_the_numpy_reference(path):
    x = inputs()[:3]
    model = mf.load(path)
    ref = Q.int8_forward(model.qnet, x)
    for isa in mf.cpu_info()["supported_isas"]:
        assert np.array_equal(mf.load(path, isa=isa, threads=2).logits(x).astype(np.float64), ref), isa


@BOTH
def test_qdq_convert_to_our_int8_file(tmp_path, path):
    dst = tmp_path / "qdq.safetensors"
    assert cli.main(["convert", path, str(dst)]) == 0
    a, b = mf.load(path, threads=1), mf.load(dst, threads=1)
    assert b.qnet.input_divide and b.qnet.logits_output == a.qnet.logits_output
    x = inputs()[:4]
    assert np.array_equal(a.logits(x), b.logits(x))


def _edited(tmp_path, edit) -> str:
    m = onnx.load(QDQ)
    edit(m)
    path = str(tmp_path / "edited.onnx")
    onnx.save(m, path)
    return path


def _set_initializer(m, name_part: str, fn) -> None:
    from onnx import numpy_helper

    for i, t in enumerate(m.graph.initializer):
        if name_part in t.name:
            a = fn(numpy_helper.to_array(t).copy())
            m.graph.initializer[i].CopyFrom(numpy_helper.from_array(a, t.name))
            return
    raise AssertionError(name_part)


@pytest.mark.parametrize("what, match", [
    ("weight zero point", r"zero point other than 0"),
    ("activation scale", r"scale .*must be in 1e-12..1e12"),
    ("weight scale count", r"scales for 64 output channels"),
    # NNCF's ONNX output quantises depthwise inputs per channel (onnxruntime runs it in float)
    ("per-channel activation", r"quantises an activation per channel \(16 scales\)"),
])
def test_qdq_bad_quantisation_refused(tmp_path, what, match):
    def edit(m):
        if what == "weight zero point":
            _set_initializer(m, "blocks.3.pw.weight_zero_point", lambda a: a + np.int8(3))
        elif what == "activation scale":
            _set_initializer(m, "blocks.2.pw.relu6.out_scale", lambda a: np.float32(0.0) * a)
        elif what == "per-channel activation":
            _set_initializer(m, "blocks.2.pw.relu6.out_scale", lambda a: np.full(16, a, np.float32))
        else:
            _set_initializer(m, "blocks.3.pw.weight_scale", lambda a: a[:5])
    path = _edited(tmp_path, edit)
    with pytest.raises(ImportFormatError, match=match):
        import_onnx_int8(path)
    with pytest.raises(mf.MobileNetFastError):
        mf.load(path)


def test_float_onnx_is_not_read_as_int8(tmp_path):
    from mobilenet_fast.export_onnx import export_onnx

    path = tmp_path / "float.onnx"
    export_onnx(mf.load_weight_set(os.path.join(HERE, "data", "tflite", "mnv1_025_128.safetensors")), path)
    with pytest.raises(ImportFormatError, match="not a quantised"):
        import_onnx_int8(path)
    assert type(mf.load(path)) is mf.Model


@pytest.mark.slow
def test_qdq_and_qoperator_at_alpha_1_match_onnxruntime(tmp_path):
    """alpha 1.0 at 224: the shipped float32 weights exported with BatchNorm folded and quantised
    by onnxruntime's quantize_static here (QDQ and QOperator, per-channel int8 weights, uint8
    activations, MinMax on two images): our logits equal onnxruntime's on every value."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from mobilenet_fast.export_onnx import export_onnx

    shipped = mf.load()  # the default float32 1.0/224 model
    rng = np.random.default_rng(3)
    cal = rng.uniform(-1, 1, (2, 224, 224, 3)).astype(np.float32)

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.feeds = iter([{"input": cal[i:i + 1]} for i in range(len(cal))])

        def get_next(self):  # type: ignore[no-untyped-def]
            return next(self.feeds, None)

    float_path = str(tmp_path / "float.onnx")
    export_onnx(shipped.weights, float_path, fold_bn=True, batch=1)
    x = rng.uniform(-1, 1, (3, 224, 224, 3)).astype(np.float32)
    for form, fmt in (("qdq", QuantFormat.QDQ), ("qop", QuantFormat.QOperator)):
        path = str(tmp_path / f"mnv1_1_0_{form}.onnx")
        quantize_static(float_path, path, Reader(), quant_format=fmt, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        model = mf.load(path, threads=2)
        assert isinstance(model, mf.QuantizedModel) and model.config.alpha == 1.0
        ours, ref = model.logits(x), ort_logits(path, x)
        assert ours.shape == ref.shape == (3, 1001)
        assert np.array_equal(ours, ref), f"{form}: {int((ours != ref).sum())} of {ours.size} logits differ"
