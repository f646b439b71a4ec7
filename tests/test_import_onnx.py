"""ONNX importer (:mod:`mobilenet_fast.importers.onnx_graph`).

* Our own exporter's graphs come back bit for bit (tensors and config), also after graph rewrites
  that other tools produce (old-opset Clip attributes, Pad + VALID conv, auto_pad SAME_UPPER, NCHW
  input, other pooling / classifier ops);
* timm ``mobilenetv1_100`` and a 0.25-wide variant with random BatchNorm statistics, exported by
  ``torch.onnx.export`` (legacy TorchScript exporter and, when onnxscript is installed, the dynamo
  exporter; BatchNorm kept and folded into the Conv), give our logits equal to torch's forward and to
  onnxruntime on the file;
* malformed files and graphs that are not MobileNetV1 give an ImportFormatError naming the file
  and the node or initializer that does not fit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import sys
import warnings

import numpy as np
import pytest

from helpers import random_input, random_weights, run_onnxruntime
from mobilenet_fast import Model

onnx = pytest.importorskip("onnx", reason="the 'onnx' package (extra 'onnx') is needed to read ONNX files")

from onnx import helper, numpy_helper  # noqa: E402

from mobilenet_fast import reference as R  # noqa: E402
from mobilenet_fast.errors import (  # noqa: E402
    ImportFormatError,
    InputError,
    MissingDependencyError,
    MobileNetFastError,
)
from mobilenet_fast.export_onnx import export_onnx, to_onnx_model  # noqa: E402
from mobilenet_fast.importers.onnx_graph import IMAGENET_MEAN, IMAGENET_STD, TF_MEAN, TF_STD, import_onnx  # noqa: E402
from mobilenet_fast.runner import folded_tensors  # noqa: E402
from mobilenet_fast.weights import WeightSet  # noqa: E402


# -- helpers ---------------------------------------------------------------------------------------

def save(model, tmp_path, name="m.onnx"):
    path = tmp_path / name
    onnx.save_model(model, str(path))
    return path


def strip_metadata(model):
    del model.metadata_props[:]
    return model


def node(model, name):
    return next(n for n in model.graph.node if n.name == name)


def set_attr(n, name, value):
    for i, a in enumerate(n.attribute):
        if a.name == name:
            del n.attribute[i]
            break
    if value is not None:
        n.attribute.append(helper.make_attribute(name, value))


def replace_init(model, name, array):
    for i, t in enumerate(model.graph.initializer):
        if t.name == name:
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(np.asarray(array, np.float32), name))
            return
    raise AssertionError(name)


def import_error(path) -> str:
    with pytest.raises(ImportFormatError) as info:
        import_onnx(path)
    msg = str(info.value)
    assert path.name in msg, msg
    return msg


def assert_same_weights(got: WeightSet, want: WeightSet, check_source=True):
    if check_source:
        assert got.config == want.config
    assert set(got.tensors) == set(want.tensors)
    for name, arr in want.tensors.items():
        t = got.tensors[name]
        assert t.dtype == np.float32 and t.flags.c_contiguous, name
        assert t.shape == arr.shape and t.tobytes() == arr.tobytes(), name


def scaled_tol(ref):
    return 1e-4 * max(1.0, float(np.abs(ref).max()))


# -- round trips through our own exporter ------------------------------------------------------------

@pytest.mark.parametrize("num_classes", [10, 0], ids=["classifier", "features"])
@pytest.mark.parametrize("padding", ["tf_same", "symmetric"])
@pytest.mark.parametrize("alpha", [0.25, 1.0])
def test_round_trip_of_our_exporter_is_exact(tmp_path, alpha, padding, num_classes):
    labels = [f"class {i}" for i in range(num_classes)] if num_classes else None
    ws = random_weights(alpha, num_classes, padding, (96, 112), seed=int(alpha * 8) + num_classes, labels=labels)
    path = tmp_path / "ours.onnx"
    export_onnx(ws, path)
    back = import_onnx(path)
    assert_same_weights(back, ws)


@pytest.mark.parametrize("padding, activation", [("keras", "relu6"), ("keras", "relu"), ("symmetric", "relu")])
@pytest.mark.parametrize("metadata", [True, False], ids=["metadata", "bare"])
def test_round_trip_keras_padding_and_relu(tmp_path, padding, activation, metadata):
    # 97x65: odd at every stride-2 layer, where keras (0/0/1/1) differs from tf_same (1/1/1/1)
    ws = random_weights(0.25, 10, padding, (97, 65), seed=9, activation=activation)
    model = to_onnx_model(ws)
    if not metadata:
        strip_metadata(model)
    back = import_onnx(save(model, tmp_path))
    assert_same_weights(back, ws, check_source=metadata)
    assert back.config.padding == padding and back.config.activation == activation
    x = random_input(2, 97, 65, seed=9)
    (ort,) = run_onnxruntime(model, {"input": x}, ["logits"])
    assert np.abs(Model(back, threads=1).logits(x) - ort).max() <= scaled_tol(ort)


def test_round_trip_keeps_the_whole_config(tmp_path):
    ws = random_weights(0.5, 7, "symmetric", (97, 131), seed=3, bn_epsilon=1e-5, labels=list("abcdefg"))
    ws = WeightSet(dataclasses.replace(ws.config, input_mean=(1.0, 2.0, 3.0), input_std=(4.0, 5.0, 6.0),
                                       source="a test"), ws.tensors)
    path = tmp_path / "ours.onnx"
    export_onnx(ws, path, resolution=(64, 80), batch=2)  # exported at another size than the config's
    assert_same_weights(import_onnx(path), ws)
    # through the registry too
    import mobilenet_fast
    from mobilenet_fast.importers import import_weights

    assert_same_weights(mobilenet_fast.load_weight_set(path), ws)
    assert_same_weights(import_weights(str(path), "onnx"), ws)
    # explicit labels and source win over the metadata
    other = import_onnx(path, labels=list("ABCDEFG"), source="mine")
    assert other.config.labels == tuple("ABCDEFG") and other.config.source == "mine"
    with pytest.raises(InputError, match="3 labels"):
        import_onnx(path, labels=["a", "b", "c"])


@pytest.mark.parametrize("resolution", [(128, 128), (97, 65)], ids=["even", "odd"])
def test_tf_same_at_an_odd_size_stays_tf_same(tmp_path, resolution):
    # At 97x65 every stride-2 input is odd, so TF SAME pads 1/1/1/1 like PyTorch: the metadata decides,
    # and without metadata explicit 1/1/1/1 pads read as "symmetric" (which computes the same numbers).
    ws = random_weights(0.25, 10, "tf_same", resolution, seed=4)
    model = to_onnx_model(ws)
    assert_same_weights(import_onnx(save(model, tmp_path)), ws)
    bare = import_onnx(save(strip_metadata(model), tmp_path, "bare.onnx"))
    odd = resolution[0] % 2 == 1
    assert bare.config.padding == ("symmetric" if odd else "tf_same")
    assert bare.config.input_mean == TF_MEAN and bare.config.input_std == TF_STD
    assert bare.config.bn_epsilon == 1e-3 and bare.config.source.startswith("ONNX model bare.onnx (sha256 ")
    assert_same_weights(bare, ws, check_source=False)


@pytest.mark.parametrize("opset", [11, 13, 17])
def test_round_trip_across_opsets(tmp_path, opset):
    ws = random_weights(0.25, 10, "symmetric", (64, 64), seed=5)
    path = tmp_path / "ours.onnx"
    export_onnx(ws, path, opset=opset)
    assert_same_weights(import_onnx(path), ws)


def test_folded_export_imports_as_identity_batchnorm(tmp_path):
    ws = random_weights(0.25, 10, "tf_same", (96, 96), seed=6, gamma_scale=1.2)
    model = to_onnx_model(ws, fold_bn=True)
    back = import_onnx(save(model, tmp_path))
    assert back.config == dataclasses.replace(ws.config, bn_epsilon=0.0)
    for prefix in ["stem"] + [f"blocks.{i}.{k}" for i in range(13) for k in ("dw", "pw")]:
        for fld, value in (("gamma", 1.0), ("mean", 0.0), ("var", 1.0)):
            assert (back.tensors[f"{prefix}.bn.{fld}"] == value).all(), (prefix, fld)
    # folding the imported "identity" BatchNorm gives back the file's weights and biases bit for bit
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    folded = folded_tensors(back)
    np.testing.assert_array_equal(folded["stem"][0], inits["stem.conv.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(folded["stem"][1], inits["stem.conv.bias"])
    np.testing.assert_array_equal(folded["blocks.7.dw"][0], inits["blocks.7.dw.weight"][:, 0].transpose(1, 2, 0))
    np.testing.assert_array_equal(folded["blocks.7.pw"][1], inits["blocks.7.pw.bias"])
    x = random_input(2, 96, 96, seed=6)
    ours = Model(back, threads=1).logits(x)
    (ort,) = run_onnxruntime(model, {"input": x}, ["logits"])
    ref = R.forward(ws, x)
    assert np.abs(ours - ort).max() <= scaled_tol(ort)
    assert np.abs(ours - ref).max() <= scaled_tol(ref)


def test_external_data_file(tmp_path):
    # weights in a separate .data file (what the dynamo exporter writes by default)
    ws = random_weights(0.25, 10, "symmetric", (64, 64), seed=10)
    path = tmp_path / "ext.onnx"
    onnx.save_model(to_onnx_model(ws), str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext.onnx.data", size_threshold=0)
    assert (tmp_path / "ext.onnx.data").stat().st_size > path.stat().st_size
    assert_same_weights(import_onnx(path), ws)
    (tmp_path / "ext.onnx.data").write_bytes((tmp_path / "ext.onnx.data").read_bytes()[:1000])
    import_error(path)  # truncated data file
    (tmp_path / "ext.onnx.data").unlink()
    import_error(path)  # missing data file


# -- graphs as other tools write them (rewrites of our exporter's graph) ---------------------------------

def old_opset_clip(model):
    """Clip with min/max attributes, as in opset < 11."""
    for n in model.graph.node:
        if n.op_type == "Clip":
            del n.input[1:]
            n.attribute.extend([helper.make_attribute("min", 0.0), helper.make_attribute("max", 6.0)])
    model.opset_import[0].version = 10
    model.ir_version = 5
    return model


def explicit_pad_nodes(model):
    """Every padded 3x3 Conv becomes Pad (opset 11+: pads input) + Conv(pads 0), as tf2onnx writes
    Keras' ZeroPadding2D; the pads go on H and W of NCHW: [0, 0, t, l, 0, 0, b, r]."""
    g = model.graph
    out = []
    for n in g.node:
        if n.op_type == "Conv":
            pads = next(helper.get_attribute_value(a) for a in n.attribute if a.name == "pads")
            if any(pads):
                name = n.name + ".pad"
                g.initializer.append(numpy_helper.from_array(
                    np.array([0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]], np.int64), name + ".pads"))
                out.append(helper.make_node("Pad", [n.input[0], name + ".pads"], [name + ".out"], name=name))
                n.input[0] = name + ".out"
                set_attr(n, "pads", [0, 0, 0, 0])
        out.append(n)
    del g.node[:]
    g.node.extend(out)
    return model


def keras_pad_nodes(model):
    """Pad nodes only in front of the stride-2 depthwise convs, as tf2onnx writes Keras' MobileNet
    (ZeroPadding2D(((0, 1), (0, 1))) + VALID); even sizes, where this equals tf_same."""
    g = model.graph
    out = []
    for n in g.node:
        strides = [helper.get_attribute_value(a) for a in n.attribute if a.name == "strides"]
        if n.op_type == "Conv" and n.name.endswith(".dw") and strides == [[2, 2]]:
            name = n.name + ".pad"
            g.initializer.append(numpy_helper.from_array(np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int64), name + ".pads"))
            out.append(helper.make_node("Pad", [n.input[0], name + ".pads"], [name + ".out"], name=name))
            n.input[0] = name + ".out"
            set_attr(n, "pads", [0, 0, 0, 0])
        out.append(n)
    del g.node[:]
    g.node.extend(out)
    return model


def same_upper(model):
    for n in model.graph.node:
        if n.op_type == "Conv" and not n.name.endswith(".pw"):
            set_attr(n, "pads", None)
            set_attr(n, "auto_pad", "SAME_UPPER")
    return model


def nchw_input(model):
    """Drop the NHWC -> NCHW Transpose: the graph input is NCHW, as in PyTorch exports."""
    g = model.graph
    t = node(model, "to_nchw")
    dims = [d.dim_param or d.dim_value for d in g.input[0].type.tensor_type.shape.dim]
    g.node.remove(t)
    node(model, "stem.conv").input[0] = "input"
    del g.input[:]
    g.input.append(helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [dims[0], 3, dims[1], dims[2]]))
    return model


def head_rewrite(kind):
    def rewrite(model):
        g = model.graph
        pool, flat, gemm = node(model, "pool"), node(model, "flatten"), node(model, "classifier")
        w = numpy_helper.to_array(next(t for t in g.initializer if t.name == "classifier.weight"))
        last = pool.input[0]
        keep = [n for n in g.node if n.name not in ("pool", "flatten", "classifier")]
        softmax = keep.pop()
        assert softmax.op_type == "Softmax"
        new = []
        if kind == "matmul":  # ReduceMean(keepdims=0) -> MatMul -> Add, Gemm transB=1 replaced
            g.initializer.append(numpy_helper.from_array(np.array([-1, -2], np.int64), "axes"))
            new.append(helper.make_node("ReduceMean", [last, "axes"], ["pooled"], name="mean", keepdims=0))
            new.append(helper.make_node("MatMul", ["pooled", "classifier.weight"], ["mm"], name="fc"))
            new.append(helper.make_node("Add", ["classifier.bias", "mm"], ["logits"], name="fc.bias"))
            model.opset_import[0].version = 18
        elif kind == "conv":  # AveragePool over the map -> 1x1 Conv -> Squeeze (TF-slim style)
            hw = [d.dim_value for d in g.input[0].type.tensor_type.shape.dim][1:3]
            k = [(v + 1) // 2 for v in hw]
            for _ in range(4):
                k = [(v + 1) // 2 for v in k]  # tf_same: ceil at every stride 2
            g.initializer.append(numpy_helper.from_array(w.T[:, :, None, None].copy(), "fc.w4"))
            g.initializer.append(numpy_helper.from_array(np.array([2, 3], np.int64), "sq.axes"))
            new.append(helper.make_node("AveragePool", [last], ["pooled"], name="avg", kernel_shape=k))
            new.append(helper.make_node("Conv", ["pooled", "fc.w4", "classifier.bias"], ["conv.out"], name="fc",
                                        kernel_shape=[1, 1]))
            new.append(helper.make_node("Squeeze", ["conv.out", "sq.axes"], ["logits"], name="squeeze"))
        elif kind == "dynamic_reshape":  # Reshape to Concat(Shape(x)[:1], [-1]), as dynamic-batch exports do
            g.initializer.append(numpy_helper.from_array(np.array([-1], np.int64), "minus1"))
            new.append(helper.make_node("GlobalAveragePool", [last], ["pooled"], name="gap"))
            new.append(helper.make_node("Shape", ["pooled"], ["shape4"], name="shape", start=0, end=1))
            new.append(helper.make_node("Concat", ["shape4", "minus1"], ["shape2"], name="concat", axis=0))
            new.append(helper.make_node("Reshape", ["pooled", "shape2"], ["flat"], name="reshape"))
            new.append(helper.make_node("Gemm", ["flat", "classifier.weight", "classifier.bias"], ["logits"],
                                        name="fc"))
        elif kind == "gemm_transposed":  # GlobalAveragePool -> Reshape -> Gemm(transB=1) with [N, C] weights
            g.initializer.append(numpy_helper.from_array(w.T.copy(), "fc.wT"))
            g.initializer.append(numpy_helper.from_array(np.array([0, -1], np.int64), "shape"))
            new.append(helper.make_node("GlobalAveragePool", [last], ["pooled"], name="gap"))
            new.append(helper.make_node("Reshape", ["pooled", "shape"], ["flat"], name="reshape"))
            new.append(helper.make_node("Dropout", ["flat"], ["drop"], name="dropout"))
            new.append(helper.make_node("Gemm", ["drop", "fc.wT", "classifier.bias"], ["logits"], name="fc",
                                        transB=1))
        del g.node[:]
        g.node.extend(keep + new + [softmax])
        return model
    return rewrite


@pytest.mark.parametrize("rewrite, padding", [
    (old_opset_clip, "tf_same"),
    (explicit_pad_nodes, "tf_same"),
    (keras_pad_nodes, "keras"),
    (same_upper, "tf_same"),
    (nchw_input, "symmetric"),
    (head_rewrite("matmul"), "tf_same"),
    (head_rewrite("conv"), "tf_same"),
    (head_rewrite("gemm_transposed"), "symmetric"),
    (head_rewrite("dynamic_reshape"), "symmetric"),
], ids=["clip_attributes", "pad_nodes", "keras_pad_nodes", "same_upper", "nchw_input", "reducemean_matmul_add",
        "avgpool_conv_squeeze", "reshape_dropout_gemm_transB", "shape_concat_reshape"])
@pytest.mark.parametrize("metadata", [True, False], ids=["metadata", "bare"])
def test_graph_variants(tmp_path, rewrite, padding, metadata):
    ws = random_weights(0.25, 10, "tf_same" if padding == "keras" else padding, (96, 128), seed=7)
    model = rewrite(to_onnx_model(ws, batch=2))
    if not metadata:
        strip_metadata(model)
    onnx.checker.check_model(model)
    back = import_onnx(save(model, tmp_path))
    if padding == "keras" and metadata:  # the metadata says tf_same, which these pads also are at 96x128
        padding = "tf_same"
    assert_same_weights(back, ws if padding == ws.config.padding else
                        WeightSet(dataclasses.replace(ws.config, padding=padding), ws.tensors), check_source=metadata)
    assert back.config.padding == padding
    x = random_input(2, 96, 128, seed=7)
    feeds = {"input": x if rewrite is not nchw_input else np.ascontiguousarray(x.transpose(0, 3, 1, 2))}
    (ort,) = run_onnxruntime(model, feeds, ["logits"])
    ours = Model(back, threads=1).logits(x)
    assert np.abs(ours - ort).max() <= scaled_tol(ort)


def test_symbolic_input_size_means_224(tmp_path):
    ws = random_weights(0.25, 0, "symmetric", (64, 64), seed=8)
    model = strip_metadata(to_onnx_model(ws))
    for d in model.graph.input[0].type.tensor_type.shape.dim[1:3]:
        d.dim_param = "side"
    back = import_onnx(save(model, tmp_path))
    assert back.config.resolution == (224, 224) and back.config.num_classes == 0
    assert back.config.input_mean == TF_MEAN and back.config.input_std == TF_STD
    mine = import_onnx(tmp_path / "m.onnx", input_mean=IMAGENET_MEAN, input_std=IMAGENET_STD)
    assert mine.config.input_mean == IMAGENET_MEAN and mine.config.input_std == IMAGENET_STD
    for bad in ({"input_mean": (1, 2)}, {"input_std": (1, 0, 1)}, {"input_mean": "abc"}):
        with pytest.raises(InputError):
            import_onnx(tmp_path / "m.onnx", **bad)


# -- timm MobileNetV1 through torch.onnx.export ----------------------------------------------------------

def timm_mobilenet(width, seed):
    """timm ``mobilenetv1_100`` (width 1.0) or the same generator at width 0.25, with random but
    realistic BatchNorm statistics, in eval mode."""
    torch = pytest.importorskip("torch", reason="torch is needed to export timm models")
    timm = pytest.importorskip("timm", reason="timm is needed for the timm MobileNetV1")
    from timm.models.efficientnet import _gen_mobilenet_v1

    torch.manual_seed(seed)
    if width == 1.0:
        model = timm.create_model("mobilenetv1_100", pretrained=False)
    else:  # timm registers only 1.0/1.25; its generator takes the width (channel) multiplier
        model = _gen_mobilenet_v1("mobilenetv1_100", width, pretrained=False)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.normal_(0.0, 0.1, generator=gen)
                m.running_mean.normal_(0.0, 0.1, generator=gen)
                m.running_var.uniform_(0.5, 1.5, generator=gen)
    return model.eval()


def torch_export(model, x, path, *, dynamo, fold, dynamic_hw=False):
    import torch

    if dynamo:
        kwargs = dict(dynamo=True, optimize=fold)  # the optimizer is what folds BN into the Conv
        if dynamic_hw:
            kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch", min=1, max=64), 2: "h", 3: "w"},)
    else:
        kwargs = dict(dynamo=False, opset_version=17)
        if not fold:  # keep BatchNormalization nodes (inference mode): no constant folding
            kwargs.update(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
        if dynamic_hw:
            kwargs["dynamic_axes"] = {"x": {0: "N", 2: "H", 3: "W"}}
            kwargs["input_names"] = ["x"]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.from_numpy(x),), str(path), **kwargs)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert ("BatchNormalization" in ops) != fold, ops
    return path


def run_ort_file(path, x):
    """onnxruntime on the file itself (by path: dynamo exports keep the weights in a .data file next to it)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def compare_with_torch(model, path, sizes, record_property, tag):
    """Import ``path``; our logits on each (h, w) against torch's forward and onnxruntime."""
    import torch

    ws = import_onnx(path)
    ours_model = Model(ws, threads=1)
    for h, w in sizes:
        x_nhwc = random_input(2, h, w, seed=h * w)
        x_nchw = np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))
        with torch.no_grad():
            ref = model(torch.from_numpy(x_nchw)).numpy()
        ours = ours_model.logits(x_nhwc)
        ort = run_ort_file(path, x_nchw)
        d_torch = float(np.abs(ours - ref).max())
        d_ort = float(np.abs(ours - ort).max())
        record_property(f"{tag}_{h}x{w}_max_diff_vs_torch", d_torch)
        record_property(f"{tag}_{h}x{w}_max_diff_vs_onnxruntime", d_ort)
        print(f"{tag} {h}x{w}: max|logits| {np.abs(ref).max():.3g}, vs torch {d_torch:.3g}, vs ort {d_ort:.3g}")
        assert d_torch <= scaled_tol(ref), f"{tag} {h}x{w}: {d_torch} vs torch"
        assert d_ort <= scaled_tol(ort), f"{tag} {h}x{w}: {d_ort} vs onnxruntime"
    return ws


def check_timm_config(ws, model, width, fold, resolution):
    c = ws.config
    assert c.alpha == width and c.num_classes == 1000 and c.resolution == resolution
    # timm's mobilenetv1 configs normalise with mean = std = 0.5, i.e. 127.5 on 0..255 pixels
    assert c.padding == "symmetric" and c.input_mean == TF_MEAN and c.input_std == TF_STD
    assert c.activation == "relu6" and c.bn_epsilon == (0.0 if fold else 1e-5)
    assert "producer pytorch" in c.source
    np.testing.assert_array_equal(ws.tensors["classifier.weight"], model.classifier.weight.detach().numpy().T)
    if not fold:  # the module's own BatchNorm statistics, unfolded
        np.testing.assert_array_equal(ws.tensors["blocks.3.pw.bn.var"], model.blocks[2][0].bn2.running_var.numpy())
        np.testing.assert_array_equal(ws.tensors["stem.conv.weight"],
                                      model.conv_stem.weight.detach().numpy().transpose(2, 3, 1, 0))


SIZES = [(96, 96), (97, 113)]  # the odd size checks that PyTorch's padding=1 is read as "symmetric"


@pytest.mark.parametrize("fold", [False, True], ids=["bn", "folded"])
@pytest.mark.parametrize("width", [1.0, 0.25])
def test_timm_legacy_export(tmp_path, width, fold, record_property):
    # exported with dynamic H and W (so one file serves both sizes; the config's resolution is then 224)
    model = timm_mobilenet(width, seed=int(width * 4) + fold)
    x = random_input(2, 96, 96, seed=1).transpose(0, 3, 1, 2).copy()
    path = torch_export(model, x, tmp_path / "timm.onnx", dynamo=False, fold=fold, dynamic_hw=True)
    ws = compare_with_torch(model, path, SIZES, record_property, f"legacy_w{width}_{'folded' if fold else 'bn'}")
    check_timm_config(ws, model, width, fold, (224, 224))


def test_timm_legacy_export_fixed_size(tmp_path, record_property):
    # the plain call: torch.onnx.export(model, x, path, dynamo=False) with a fixed input size
    model = timm_mobilenet(0.25, seed=8)
    x = random_input(2, 97, 113, seed=2).transpose(0, 3, 1, 2).copy()
    path = torch_export(model, x, tmp_path / "fixed.onnx", dynamo=False, fold=True)
    ws = compare_with_torch(model, path, [(97, 113)], record_property, "legacy_fixed")
    check_timm_config(ws, model, 0.25, True, (97, 113))


@pytest.mark.parametrize("fold, size", [(True, (96, 96)), (False, (97, 113))], ids=["folded", "bn"])
def test_timm_dynamo_export(tmp_path, fold, size, record_property):
    # torch.onnx.export's default (dynamo) exporter; its optimizer folds BN into the Conv, optimize=False
    # keeps BatchNormalization (with Shape/Expand/CastLike constant plumbing around it). Fixed sizes:
    # dynamic H/W make this exporter about 4x slower.
    pytest.importorskip("onnxscript", reason="the dynamo torch.onnx exporter needs onnxscript")
    model = timm_mobilenet(0.25, seed=11 + fold)
    x = random_input(2, *size, seed=3).transpose(0, 3, 1, 2).copy()
    path = torch_export(model, x, tmp_path / "dynamo.onnx", dynamo=True, fold=fold)
    ws = compare_with_torch(model, path, [size], record_property, f"dynamo_{'folded' if fold else 'bn'}")
    check_timm_config(ws, model, 0.25, fold, size)


# -- malformed files and graphs that are not MobileNetV1 -------------------------------------------------

@pytest.fixture(scope="module")
def small():
    ws = random_weights(0.25, 10, "tf_same", (64, 64), seed=12)
    return ws, to_onnx_model(ws).SerializeToString()


def fresh(small):
    return onnx.load_from_string(small[1])


@pytest.mark.parametrize("fraction", [0.0005, 0.3, 0.6, 0.999])
def test_truncated_file(tmp_path, small, fraction):
    data = small[1]
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: max(1, int(len(data) * fraction))])
    msg = import_error(path)
    assert "truncated" in msg or "not" in msg


@pytest.mark.parametrize("data", [
    b"\xff" * 64,
    bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8)),
    b"this is not a protobuf at all, just some text\n" * 20,
    b"",
    b"\x89PNG\r\n\x1a\n" + bytes(200),
], ids=["ff", "random", "text", "empty", "png"])
def test_garbage_bytes(tmp_path, data):
    path = tmp_path / "junk.onnx"
    path.write_bytes(data)
    import_error(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        import_onnx(tmp_path / "nope.onnx")
    with pytest.raises(ImportFormatError, match="directory"):
        import_onnx(tmp_path)


def remove_nodes(model, prefix, reconnect_from, reconnect_to):
    keep = [n for n in model.graph.node if not n.name.startswith(prefix)]
    del model.graph.node[:]
    model.graph.node.extend(keep)
    for n in model.graph.node:
        for i, inp in enumerate(n.input):
            if inp == reconnect_from:
                n.input[i] = reconnect_to
    return model


def test_one_block_removed_names_the_pooling_node(tmp_path, small):
    model = remove_nodes(fresh(small), "blocks.12.", "blocks.12.pw.relu6.out", "blocks.11.pw.relu6.out")
    msg = import_error(save(model, tmp_path))
    assert "'pool' (GlobalAveragePool)" in msg and "after 12 depthwise-separable blocks" in msg
    assert "13" in msg and "blocks.12.dw" in msg


def test_middle_block_removed_names_the_next_conv(tmp_path, small):
    model = remove_nodes(fresh(small), "blocks.5.", "blocks.5.pw.relu6.out", "blocks.4.pw.relu6.out")
    msg = import_error(save(model, tmp_path))
    assert "'blocks.6.dw' (Conv)" in msg and "stride" in msg


def test_extra_block_is_refused(tmp_path, small):
    model = fresh(small)
    g = model.graph
    extra = [n for n in g.node if n.name.startswith("blocks.12.")]
    copies = []
    for n in extra:
        c = onnx.NodeProto()
        c.CopyFrom(n)
        c.name = c.name.replace("blocks.12.", "blocks.13.")
        c.input[0] = c.input[0].replace("blocks.11.", "blocks.12.").replace("blocks.12.", "blocks.13.") \
            if c.input[0].startswith("blocks.12.") else "blocks.12.pw.relu6.out"
        c.output[0] = c.output[0].replace("blocks.12.", "blocks.13.")
        copies.append(c)
    node(model, "pool").input[0] = "blocks.13.pw.relu6.out"
    i = [k for k, n in enumerate(g.node) if n.name == "pool"][0]
    for c in reversed(copies):
        g.node.insert(i, c)
    msg = import_error(save(model, tmp_path))
    assert "'blocks.13.dw' (Conv)" in msg and "14th" in msg


@pytest.mark.parametrize("init, shape, why", [
    ("blocks.4.pw.weight", (60, 64, 1, 1), "[64, 64, 1, 1]"),     # Cout 64 at alpha 0.25
    ("blocks.6.dw.weight", (128, 1, 5, 5), "kernel_shape [3, 3]"),
    ("blocks.3.dw.bn.mean", (31,), "expected [32]"),
    ("stem.conv.weight", (8, 1, 3, 3), "[8, 3, 3, 3]"),
    ("classifier.weight", (128, 10), "takes 128 features"),
])
def test_wrong_shape_names_the_initializer(tmp_path, small, init, shape, why):
    model = fresh(small)
    replace_init(model, init, np.zeros(shape, np.float32))
    msg = import_error(save(model, tmp_path))
    assert repr(init) in msg or init.rsplit(".", 1)[0] in msg, msg
    assert why in msg, msg


def test_not_a_mobilenet_names_the_node(tmp_path):
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(8, 3, 3, 3)).astype(np.float32), "w")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv1", kernel_shape=[3, 3], strides=[2, 2],
                              pads=[1, 1, 1, 1]),
             helper.make_node("MaxPool", ["c"], ["y"], name="maxpool1", kernel_shape=[2, 2], strides=[2, 2])]
    graph = helper.make_graph(nodes, "not_mobilenet",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 64, 64])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], inits)
    path = save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path)
    msg = import_error(path)
    assert "'maxpool1' (MaxPool)" in msg and "BatchNormalization or the activation" in msg


def test_maxpool_where_a_block_should_be(tmp_path, small):
    model = fresh(small)
    dw = node(model, "blocks.0.dw")
    mp = helper.make_node("MaxPool", [dw.input[0]], ["mp.out"], name="oops", kernel_shape=[1, 1])
    dw.input[0] = "mp.out"
    model.graph.node.insert(list(model.graph.node).index(dw), mp)
    msg = import_error(save(model, tmp_path))
    assert "'oops' (MaxPool)" in msg and "depthwise 3x3 Conv of block 1" in msg


def test_branching_graph_names_the_second_consumer(tmp_path, small):
    model = fresh(small)
    model.graph.node.append(helper.make_node("Relu", ["blocks.2.dw.relu6.out"], ["side"], name="side_branch"))
    model.graph.output.append(helper.make_tensor_value_info("side", onnx.TensorProto.FLOAT, None))
    msg = import_error(save(model, tmp_path))
    assert "'side_branch' (Relu)" in msg and "one chain" in msg


@pytest.mark.parametrize("edit, expect", [
    (lambda m: set_attr(node(m, "blocks.2.dw"), "dilations", [2, 2]), ["'blocks.2.dw' (Conv)", "dilations"]),
    (lambda m: set_attr(node(m, "blocks.1.dw"), "strides", [1, 1]), ["'blocks.1.dw' (Conv)", "stride 2"]),
    (lambda m: set_attr(node(m, "blocks.3.dw"), "pads", [1, 1, 1, 1]), ["'blocks.3.dw' (Conv)", "[1, 1, 1, 1]",
                                                                        "tf_same [0, 0, 1, 1]"]),
    (lambda m: set_attr(node(m, "blocks.4.pw.bn"), "epsilon", 1e-5), ["'blocks.4.pw.bn'", "epsilon differs"]),
    (lambda m: set_attr(node(m, "blocks.4.dw"), "group", 1), ["'blocks.4.dw' (Conv)", "group"]),
    (lambda m: set_attr(node(m, "blocks.4.pw.bn"), "training_mode", 1), ["'blocks.4.pw.bn'", "training_mode"]),
    (lambda m: node(m, "blocks.9.pw.relu6").input.__setitem__(2, "relu6.min"), ["'blocks.9.pw.relu6' (Clip)",
                                                                               "[0, 0]"]),
    (lambda m: setattr(node(m, "blocks.5.pw.relu6"), "op_type", "Sigmoid"), ["'blocks.5.pw.relu6' (Sigmoid)",
                                                                            "activation"]),
])
def test_bad_attributes_name_the_node(tmp_path, small, edit, expect):
    model = fresh(small)
    edit(model)
    msg = import_error(save(model, tmp_path))
    for part in expect:
        assert part in msg, msg


def test_relu_network(tmp_path, small):
    model = strip_metadata(fresh(small))
    for n in model.graph.node:
        if n.op_type == "Clip":
            n.op_type = "Relu"
            del n.input[1:]
    path = save(model, tmp_path)
    ws = import_onnx(path)
    assert ws.config.activation == "relu"
    x = random_input(2, 64, 64, seed=1)
    (ort,) = run_onnxruntime(model, {"input": x}, ["logits"])
    assert np.abs(Model(ws, threads=1).logits(x) - ort).max() <= scaled_tol(ort)
    # Clip with min 0 and no max is a ReLU too
    model = strip_metadata(fresh(small))
    for n in model.graph.node:
        if n.op_type == "Clip":
            n.input[2] = ""
    assert import_onnx(save(model, tmp_path, "clip_min.onnx")).config.activation == "relu"


def test_mixed_activations_are_refused(tmp_path, small):
    model = fresh(small)
    n = node(model, "blocks.7.dw.relu6")
    n.op_type = "Relu"
    del n.input[1:]
    msg = import_error(save(model, tmp_path))
    assert "'blocks.7.dw.relu6' (Relu)" in msg


def test_bad_input(tmp_path, small):
    for dims, elem, expect in ([[1, 64, 64, 1], onnx.TensorProto.FLOAT, "1 channels"],
                               [[1, 64, 64, 3], onnx.TensorProto.UINT8, "UINT8"],
                               [[1, 16, 16, 3], onnx.TensorProto.FLOAT, "16x16"],
                               [[64, 64, 3], onnx.TensorProto.FLOAT, "rank 3"]):
        model = fresh(small)
        del model.graph.input[:]
        model.graph.input.append(helper.make_tensor_value_info("input", elem, dims))
        msg = import_error(save(model, tmp_path))
        assert "'input'" in msg and expect in msg, msg


def test_nan_weights_name_the_initializer(tmp_path, small):
    model = fresh(small)
    w = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "blocks.10.pw.weight")).copy()
    w[3, 2, 0, 0] = np.nan
    replace_init(model, "blocks.10.pw.weight", w)
    msg = import_error(save(model, tmp_path))
    assert "'blocks.10.pw.weight'" in msg and "NaN" in msg


def test_raw_data_shorter_than_its_shape(tmp_path, small):
    model = fresh(small)
    t = next(t for t in model.graph.initializer if t.name == "blocks.2.pw.weight")
    t.raw_data = t.raw_data[:-8]
    msg = import_error(save(model, tmp_path))
    assert "'blocks.2.pw.weight'" in msg and "bytes" in msg


def test_weights_that_are_not_constants(tmp_path, small):
    model = fresh(small)
    model.graph.initializer.remove(next(t for t in model.graph.initializer if t.name == "blocks.8.dw.weight"))
    msg = import_error(save(model, tmp_path))
    assert "'blocks.8.dw' (Conv)" in msg and "'blocks.8.dw.weight'" in msg and "not a constant" in msg


def test_metadata_that_contradicts_the_graph(tmp_path, small):
    model = fresh(small)
    for p in model.metadata_props:
        if p.key == "alpha":
            p.value = "0.5"
    msg = import_error(save(model, tmp_path))
    assert "alpha=0.5" in msg and "alpha=0.25" in msg
    model = fresh(small)
    for p in model.metadata_props:
        if p.key == "padding":
            p.value = '"symmetric"'
    msg = import_error(save(model, tmp_path, "p.onnx"))
    assert "padding='symmetric'" in msg and "'stem.conv' (Conv)" in msg and "symmetric [1, 1, 1, 1]" in msg
    model = fresh(small)
    for p in model.metadata_props:
        if p.key == "format_version":
            p.value = "99"
    assert "format_version" in import_error(save(model, tmp_path, "v.onnx"))


@pytest.mark.parametrize("metadata", [True, False])
def test_zero_size_stem_declaring_huge_width(tmp_path, small, metadata):
    """A zero-size initializer may declare any other dimension: refused as a wrong shape, not as an alpha
    out of range (found by fuzz/run.py)."""
    model = fresh(small)
    if not metadata:
        strip_metadata(model)
    t = next(t for t in model.graph.initializer if t.name == "stem.conv.weight")
    t.ClearField("raw_data")
    t.dims[:] = [1 << 40, 0, 3, 3]
    assert "1099511627776" in import_error(save(model, tmp_path))


def test_metadata_epsilon_beyond_float32(tmp_path, small):
    """A metadata bn_epsilon of 1e308 (found by fuzz/run.py) is not cast to float32 (an overflow warning,
    an error under pytest's -W error); it does not match the graph's epsilon, which is used."""
    model = fresh(small)
    for p in model.metadata_props:
        if p.key == "bn_epsilon":
            p.value = "1e+308"
    ws = import_onnx(save(model, tmp_path))
    assert ws.config.bn_epsilon == pytest.approx(small[0].config.bn_epsilon, rel=1e-6)


def test_missing_onnx_says_how_to_install(tmp_path, small, monkeypatch):
    path = tmp_path / "m.onnx"
    path.write_bytes(small[1])
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MissingDependencyError, match=r'mobilenet-fast\[onnx\]') as info:
        import_onnx(path)
    assert isinstance(info.value, MobileNetFastError)
