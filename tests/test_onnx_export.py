"""export_onnx: the exported graph, run by onnxruntime, against the numpy reference forward pass."""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import pytest

from helpers import random_input, random_weights, run_onnxruntime
from mobilenet_fast import reference as R
from mobilenet_fast.errors import InputError, MobileNetFastError
from mobilenet_fast.weights import ModelConfig, WeightSet

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from mobilenet_fast.errors import MissingDependencyError  # noqa: E402
from mobilenet_fast.export_onnx import export_onnx, to_onnx_model  # noqa: E402

TOL = 1e-3  # absolute, on logits of order 1


def _max_diffs(ws, x, ref_logits, fold_bn, batch, record):
    model = to_onnx_model(ws, resolution=x.shape[1:3], batch=batch, fold_bn=fold_bn)
    logits, probs = run_onnxruntime(model, {"input": x}, ["logits", "probabilities"])
    assert logits.shape == probs.shape == ref_logits.shape
    d_logits = float(np.abs(logits - ref_logits).max())
    d_probs = float(np.abs(probs - R.softmax(ref_logits)).max())
    record(f"max_abs_diff_logits_fold{int(fold_bn)}", d_logits)
    print(f"fold_bn={fold_bn}: max |logits diff| = {d_logits:.3g}, max |prob diff| = {d_probs:.3g}")
    return d_logits, d_probs


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("padding", ["tf_same", "symmetric"])
@pytest.mark.parametrize("resolution", [(128, 128), (97, 131)], ids=["128x128", "97x131"])
@pytest.mark.parametrize("alpha", [0.25, 0.5])
def test_whole_network_matches_onnxruntime(alpha, resolution, padding, batch, record_property):
    seed = int(alpha * 100) + resolution[1] + 7 * batch + (padding == "symmetric")
    ws = random_weights(alpha, 10, padding, resolution, seed=seed)
    x = random_input(batch, *resolution, seed=seed)
    ref = R.forward(ws, x)
    assert np.abs(ref).max() > 0.1  # not a degenerate net where everything is ~0
    for fold_bn in (False, True):
        # batch 1: a model with a fixed batch; batch 3: the dynamic-batch model
        d_logits, d_probs = _max_diffs(ws, x, ref, fold_bn, 1 if batch == 1 else None, record_property)
        assert d_logits < TOL, f"fold_bn={fold_bn}: logits differ by {d_logits}"
        assert d_probs < TOL, f"fold_bn={fold_bn}: probabilities differ by {d_probs}"


@pytest.mark.parametrize("padding, activation, hw", [
    ("keras", "relu6", (97, 131)), ("keras", "relu", (128, 128)), ("tf_same", "relu", (96, 97)),
    ("symmetric", "relu", (64, 80))])
def test_keras_padding_and_relu_match_onnxruntime(padding, activation, hw, record_property):
    ws = random_weights(0.25, 10, padding, hw, seed=33, gamma_scale=1.5, activation=activation)
    x = random_input(2, *hw, seed=33)
    ref = R.forward(ws, x)
    graph = to_onnx_model(ws, resolution=hw)
    ops = {n.op_type for n in graph.graph.node}
    assert ("Relu" in ops) == (activation == "relu") and ("Clip" in ops) == (activation == "relu6")
    for fold_bn in (False, True):
        d_logits, d_probs = _max_diffs(ws, x, ref, fold_bn, None, record_property)
        assert d_logits < TOL * max(1.0, float(np.abs(ref).max())) and d_probs < TOL


@pytest.mark.parametrize("padding", ["tf_same", "symmetric"])
def test_saturating_network_matches_onnxruntime(padding, record_property):
    # gamma x1.5: 5-10% of activations clip at 6, so the upper clamp matters
    ws = random_weights(0.25, 10, padding, (96, 112), seed=21, gamma_scale=1.5)
    x = random_input(2, 96, 112, seed=21)
    acts = R.activations(ws, x)
    assert np.mean(acts["blocks.6.pw"] == 6.0) > 0.02
    for fold_bn in (False, True):
        d_logits, d_probs = _max_diffs(ws, x, acts["classifier"], fold_bn, None, record_property)
        assert d_logits < TOL and d_probs < TOL


def test_wrong_padding_convention_is_detected():
    # The tolerance is tight enough to catch a padding-convention mix-up.
    ws = random_weights(0.25, 10, "tf_same", (128, 128), seed=5)
    other = random_weights(0.25, 10, "symmetric", (128, 128), seed=5)
    x = random_input(2, 128, 128, seed=5)
    (logits,) = run_onnxruntime(to_onnx_model(other), {"input": x}, ["logits"])
    assert np.abs(logits - R.forward(ws, x)).max() > 10 * TOL


def test_feature_extractor_export():
    ws = random_weights(0.5, 0, "tf_same", (64, 80), seed=6)
    x = random_input(2, 64, 80, seed=6)
    model = to_onnx_model(ws)
    assert [o.name for o in model.graph.output] == ["features"]
    for fold_bn in (False, True):
        (feats,) = run_onnxruntime(to_onnx_model(ws, fold_bn=fold_bn), {"input": x})
        assert feats.shape == (2, 512)
        np.testing.assert_allclose(feats, R.features(ws, x), atol=TOL)


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_graph_structure_unfolded():
    ws = random_weights(0.25, 10, "tf_same", (128, 128), seed=1)
    model = to_onnx_model(ws)
    onnx.checker.check_model(model, full_check=True)
    g = model.graph
    assert [i.name for i in g.input] == ["input"]
    assert _dims(g.input[0]) == ["N", 128, 128, 3]
    assert g.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [o.name for o in g.output] == ["logits", "probabilities"]
    assert _dims(g.output[0]) == ["N", 10] and _dims(g.output[1]) == ["N", 10]
    ops = [n.op_type for n in g.node]
    assert ops[0] == "Transpose" and ops[-4:] == ["GlobalAveragePool", "Flatten", "Gemm", "Softmax"]
    assert ops.count("Conv") == 27 and ops.count("BatchNormalization") == 27 and ops.count("Clip") == 27
    assert model.opset_import[0].version == 17
    arch = ws.config.architecture()
    convs = [n for n in g.node if n.op_type == "Conv"]
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in g.initializer}
    for node, layer in zip(convs, [s for s in arch if s.kind in ("conv3x3", "dwconv3x3", "pwconv")]):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["pads"] == list(layer.pads), layer.name
        assert attrs["strides"] == [layer.stride] * 2, layer.name
        assert attrs["group"] == (layer.in_channels if layer.kind == "dwconv3x3" else 1), layer.name
        assert len(node.input) == 2  # no bias when BN is separate
        w = inits[node.input[1]]
        k = 1 if layer.kind == "pwconv" else 3
        cin = 1 if layer.kind == "dwconv3x3" else layer.in_channels
        assert w.shape == (layer.out_channels, cin, k, k), layer.name
    # tf_same at 128: every stride-2 layer pads 0 top/left, 1 bottom/right
    assert onnx.helper.get_attribute_value(next(a for a in convs[0].attribute if a.name == "pads")) == [0, 0, 1, 1]
    bn = next(n for n in g.node if n.op_type == "BatchNormalization")
    assert onnx.helper.get_attribute_value(bn.attribute[0]) == pytest.approx(ws.config.bn_epsilon)
    # layout transposes: HWIO -> OIHW for the stem
    np.testing.assert_array_equal(inits["stem.conv.weight"], ws.tensors["stem.conv.weight"].transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(inits["classifier.weight"], ws.tensors["classifier.weight"])


def test_graph_structure_folded_and_fixed_batch():
    ws = random_weights(0.25, 10, "symmetric", (97, 131), seed=1)
    model = to_onnx_model(ws, batch=4, fold_bn=True, resolution=(64, 72))
    g = model.graph
    assert _dims(g.input[0]) == [4, 64, 72, 3]
    assert _dims(g.output[0]) == [4, 10]
    ops = [n.op_type for n in g.node]
    assert "BatchNormalization" not in ops and ops.count("Clip") == 27
    assert all(len(n.input) == 3 for n in g.node if n.op_type == "Conv")  # folded bias
    for n in g.node:
        if n.op_type == "Conv":
            pads = onnx.helper.get_attribute_value(next(a for a in n.attribute if a.name == "pads"))
            assert pads == ([0, 0, 0, 0] if n.name.endswith(".pw") else [1, 1, 1, 1]), n.name
    x = random_input(4, 64, 72, seed=2)
    logits, _ = run_onnxruntime(model, {"input": x})
    np.testing.assert_allclose(logits, R.forward(ws, x), atol=TOL)


def test_metadata_round_trips_the_config():
    labels = [f"thing {i}" for i in range(10)]
    ws = random_weights(0.5, 10, "symmetric", (97, 131), seed=2, labels=labels, bn_epsilon=1e-5)
    ws = WeightSet(replace(ws.config, input_mean=(1.0, 2.0, 3.0), input_std=(4.0, 5.0, 6.0)), ws.tensors)
    model = to_onnx_model(ws, resolution=(128, 160), fold_bn=True)
    props = {p.key: p.value for p in model.metadata_props}
    assert ModelConfig.from_metadata(props, "onnx") == ws.config
    assert props["padding"] == '"symmetric"' and props["alpha"] == "0.5"
    assert props["num_labels"] == "10" and props["num_classes"] == "10"
    assert props["input_hw"] == "[128, 160]" and props["bn_folded"] == "true"
    assert props["input_layout"] == "NHWC"
    assert model.producer_name == "mobilenet-fast"


@pytest.mark.parametrize("opset", [11, 13, 17])
def test_export_file_and_opsets(tmp_path, opset):
    ws = random_weights(0.25, 10, "tf_same", (97, 131), seed=3)
    path = tmp_path / f"m{opset}.onnx"
    export_onnx(ws, path, opset=opset)
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert model.opset_import[0].version == opset
    x = random_input(2, 97, 131, seed=3)
    logits, probs = run_onnxruntime(model, {"input": x})
    np.testing.assert_allclose(logits, R.forward(ws, x), atol=TOL)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    export_onnx(ws, str(path), opset=opset, fold_bn=True)  # str paths too
    assert onnx.load(str(path)).graph.node[1].op_type == "Conv"


def test_export_argument_errors(tmp_path):
    ws = random_weights(0.25, 10, "tf_same", (64, 64), seed=4)
    for kwargs, match in [({"batch": 0}, "batch"), ({"batch": 2.5}, "batch"), ({"opset": 10}, "opset"),
                          ({"opset": 10_000}, "opset"), ({"resolution": (31, 64)}, "at least 32"),
                          ({"resolution": "big"}, "resolution"), ({"resolution": (64.0, 64)}, "ints")]:
        with pytest.raises(InputError, match=match):
            to_onnx_model(ws, **kwargs)
    with pytest.raises(InputError, match="WeightSet"):
        export_onnx(ws.tensors, tmp_path / "x.onnx")  # type: ignore[arg-type]
    assert not (tmp_path / "x.onnx").exists()


def test_missing_onnx_says_how_to_install(monkeypatch):
    ws = random_weights(0.25, 10, "tf_same", (64, 64), seed=4)
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    with pytest.raises(MissingDependencyError, match=r'pip install "mobilenet-fast\[onnx\]"') as info:
        to_onnx_model(ws)
    assert isinstance(info.value, MobileNetFastError) and isinstance(info.value, ImportError)
