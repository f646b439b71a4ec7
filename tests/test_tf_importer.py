"""TensorFlow frozen GraphDef importer, and the packaged default model it produced.

Synthetic TF-slim-style graphs are built here with the protobuf classes shipped by tensorboard
(no TensorFlow needed), written to disk, imported, and compared tensor by tensor with what was
put in. The expected canonical layouts are written out independently of the importer.
"""

from __future__ import annotations

import hashlib
import os
import sys

import numpy as np
import pytest

from mobilenet_fast.architecture import BLOCK_CONFIG, MobileNetV1
from mobilenet_fast.errors import ImportFormatError, InputError, MissingDependencyError, MobileNetFastError
from mobilenet_fast.importers import import_tf_graphdef
from mobilenet_fast.weights import load_weights, save_weights

P = "MobilenetV1/"
MODELS = os.path.join(os.path.dirname(os.path.abspath(sys.modules["mobilenet_fast.weights"].__file__)), "models")
MODEL_NAME = "mobilenet_v1_1.0_224.safetensors"
DEFAULT_PB = "/tmp/dl/nudity-0.2.3/nudity/files/retrained_graph.pb"
DT_FLOAT, DT_DOUBLE = 1, 2


@pytest.fixture(scope="module")
def graph_pb2():
    return pytest.importorskip("tensorboard.compat.proto.graph_pb2",
                               reason="tensorboard (the 'tf' extra) is needed to build GraphDefs")


# -- synthetic TF-slim graphs ----------------------------------------------------------------------

def layer_scopes(n_blocks=13):
    out = ["Conv2d_0"]
    for i in range(1, n_blocks + 1):
        out += [f"Conv2d_{i}_depthwise", f"Conv2d_{i}_pointwise"]
    return out


def make_tf_tensors(alpha=0.25, num_classes=7, seed=0):
    """TF-slim node name -> float32 array, with realistic BatchNorm statistics."""
    rng = np.random.default_rng(seed)
    arch = MobileNetV1(alpha, 224, num_classes)
    t = {}

    def bn(scope, c):
        t[f"{P}{scope}/BatchNorm/gamma"] = rng.uniform(0.3, 2.0, c)
        t[f"{P}{scope}/BatchNorm/beta"] = rng.normal(0.0, 0.5, c)
        t[f"{P}{scope}/BatchNorm/moving_mean"] = rng.normal(0.0, 1.0, c)
        t[f"{P}{scope}/BatchNorm/moving_variance"] = rng.uniform(0.01, 3.0, c)

    c = arch.stem_channels
    t[f"{P}Conv2d_0/weights"] = rng.normal(0, 0.3, (3, 3, 3, c))
    bn("Conv2d_0", c)
    for i, co in enumerate(arch.block_channels, start=1):
        t[f"{P}Conv2d_{i}_depthwise/depthwise_weights"] = rng.normal(0, 0.3, (3, 3, c, 1))
        bn(f"Conv2d_{i}_depthwise", c)
        t[f"{P}Conv2d_{i}_pointwise/weights"] = rng.normal(0, 0.3, (1, 1, c, co))
        bn(f"Conv2d_{i}_pointwise", co)
        c = co
    t[f"{P}Logits/Conv2d_1c_1x1/weights"] = rng.normal(0, 0.1, (1, 1, c, num_classes))
    t[f"{P}Logits/Conv2d_1c_1x1/biases"] = rng.normal(0, 0.1, num_classes)
    return {k: v.astype(np.float32) for k, v in t.items()}


def expected_canonical(t):
    """The canonical tensors the importer must produce from the TF tensors ``t``."""
    out = {"stem.conv.weight": t[f"{P}Conv2d_0/weights"]}
    names = [("stem", "Conv2d_0")]
    for i in range(1, 14):
        out[f"blocks.{i - 1}.dw.weight"] = t[f"{P}Conv2d_{i}_depthwise/depthwise_weights"][:, :, :, 0]
        out[f"blocks.{i - 1}.pw.weight"] = t[f"{P}Conv2d_{i}_pointwise/weights"][0, 0]
        names += [(f"blocks.{i - 1}.dw", f"Conv2d_{i}_depthwise"), (f"blocks.{i - 1}.pw", f"Conv2d_{i}_pointwise")]
    for canonical, scope in names:
        for ours, theirs in (("gamma", "gamma"), ("beta", "beta"), ("mean", "moving_mean"),
                             ("var", "moving_variance")):
            out[f"{canonical}.bn.{ours}"] = t[f"{P}{scope}/BatchNorm/{theirs}"]
    out["classifier.weight"] = t[f"{P}Logits/Conv2d_1c_1x1/weights"][0, 0]
    out["classifier.bias"] = t[f"{P}Logits/Conv2d_1c_1x1/biases"]
    return out


def add_const(graph, name, arr, *, encoding="content", dtype=DT_FLOAT, read=True):
    node = graph.node.add()
    node.name, node.op = name, "Const"
    node.attr["dtype"].type = dtype
    tensor = node.attr["value"].tensor
    tensor.dtype = dtype
    arr = np.asarray(arr)
    for s in arr.shape:
        tensor.tensor_shape.dim.add().size = s
    if encoding == "content":
        tensor.tensor_content = arr.astype("<f8" if dtype == DT_DOUBLE else "<f4").tobytes()
    elif encoding == "float_val":
        tensor.float_val.extend(arr.reshape(-1).tolist())
    elif encoding == "scalar":  # one value, broadcast by TensorFlow to the whole shape
        tensor.float_val.append(float(arr.reshape(-1)[0]))
    else:
        raise AssertionError(encoding)
    if read:
        add_op(graph, name + "/read", "Identity", [name])
    return node


def add_op(graph, name, op, inputs, **attrs):
    node = graph.node.add()
    node.name, node.op = name, op
    node.input.extend(inputs)
    for key, value in attrs.items():
        if isinstance(value, bytes):
            node.attr[key].s = value
        elif isinstance(value, list):
            node.attr[key].list.i.extend(value)
        else:
            raise AssertionError(value)
    return node


def build_graph(graph_pb2, t, *, epsilon=1e-3, input_shape=(1, 160, 160, 3), encodings=None, dtypes=None,
                paddings=None, strides=None, extra_blocks=0):
    """Serialized frozen GraphDef with TF-slim node naming: Consts for ``t`` plus the ops using them."""
    encodings, dtypes, paddings, strides = encodings or {}, dtypes or {}, paddings or {}, strides or {}
    g = graph_pb2.GraphDef()
    ph = add_op(g, "input", "Placeholder", [])
    ph.attr["dtype"].type = DT_FLOAT
    if input_shape is not None:
        for s in input_shape:
            ph.attr["shape"].shape.dim.add().size = s
    for name, arr in t.items():
        add_const(g, name, arr, encoding=encodings.get(name, "content"), dtype=dtypes.get(name, DT_FLOAT))

    x = "input"
    n_blocks = 13 + extra_blocks
    block_strides = [s for _, s in BLOCK_CONFIG] + [1] * extra_blocks
    for scope in layer_scopes(n_blocks):
        ops = f"{P}{P}{scope}"
        if scope == "Conv2d_0":
            op, weight, stride = "Conv2D", f"{P}{scope}/weights", 2
        elif scope.endswith("_depthwise"):
            op, weight = "DepthwiseConv2dNative", f"{P}{scope}/depthwise_weights"
            stride = block_strides[int(scope.split("_")[1]) - 1]
        else:
            op, weight, stride = "Conv2D", f"{P}{scope}/weights", 1
        if weight not in t:
            continue
        stride = strides.get(scope, stride)
        conv = add_op(g, f"{ops}/convolution", op, [x, weight + "/read"], padding=paddings.get(scope, b"SAME"),
                      strides=[1, stride, stride, 1], data_format=b"NHWC")
        y = conv.name
        if epsilon is not None:
            eps_name = f"{ops}/BatchNorm/batchnorm/add/y"
            add_const(g, eps_name, np.float32(epsilon), encoding="float_val", read=False)
            add_op(g, f"{ops}/BatchNorm/batchnorm/add", "Add", [f"{P}{scope}/BatchNorm/moving_variance/read", eps_name])
        x = add_op(g, f"{ops}/Relu6", "Relu6", [y]).name
    pool = add_op(g, f"{P}Logits/AvgPool_1a/AvgPool", "AvgPool", [x], padding=b"VALID")
    logits = add_op(g, f"{P}Logits/Conv2d_1c_1x1/convolution", "Conv2D",
                    [pool.name, f"{P}Logits/Conv2d_1c_1x1/weights/read"], padding=b"SAME", strides=[1, 1, 1, 1])
    add_op(g, f"{P}Logits/Conv2d_1c_1x1/BiasAdd", "BiasAdd", [logits.name, f"{P}Logits/Conv2d_1c_1x1/biases/read"])
    # An unrelated retrained layer on top, as in image-retraining graphs: must be ignored.
    add_const(g, "final_training_ops/weights/final_weights", np.ones((3, 2), np.float32))
    add_op(g, "final_training_ops/Wx_plus_b/MatMul", "MatMul",
           [f"{P}Logits/Conv2d_1c_1x1/BiasAdd", "final_training_ops/weights/final_weights/read"])
    add_op(g, "final_result", "Softmax", ["final_training_ops/Wx_plus_b/MatMul"])
    return g.SerializeToString()


def write(tmp_path, data, name="graph.pb"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def import_error(path) -> str:
    with pytest.raises(ImportFormatError) as info:
        import_tf_graphdef(path)
    return str(info.value)


# -- round trips -----------------------------------------------------------------------------------

def test_round_trip_alpha_025(tmp_path, graph_pb2):
    t = make_tf_tensors(alpha=0.25, num_classes=7, seed=1)
    path = write(tmp_path, build_graph(graph_pb2, t, epsilon=1e-3))
    ws = import_tf_graphdef(path)
    want = expected_canonical(t)
    assert set(ws.tensors) == set(want)
    for name, arr in want.items():
        got = ws.tensors[name]
        assert got.dtype == np.float32, name
        assert got.shape == arr.shape, name
        np.testing.assert_array_equal(got, arr, err_msg=name)
    c = ws.config
    assert c.alpha == 0.25
    assert c.num_classes == 7
    assert c.resolution == (160, 160)
    assert c.padding == "tf_same"
    assert c.bn_epsilon == pytest.approx(1e-3, rel=1e-6)
    assert c.input_mean == (127.5, 127.5, 127.5) and c.input_std == (127.5, 127.5, 127.5)
    assert c.labels is None
    assert "graph.pb" in c.source
    # The layouts matter, not only the shapes: spot-check one element of each transposed tensor.
    assert ws.tensors["blocks.4.dw.weight"][2, 1, 5] == t[f"{P}Conv2d_5_depthwise/depthwise_weights"][2, 1, 5, 0]
    assert ws.tensors["blocks.4.pw.weight"][3, 9] == t[f"{P}Conv2d_5_pointwise/weights"][0, 0, 3, 9]
    assert ws.tensors["stem.conv.weight"][0, 2, 1, 6] == t[f"{P}Conv2d_0/weights"][0, 2, 1, 6]


@pytest.mark.parametrize("alpha", [0.5, 0.75, 1.0])
def test_alpha_is_inferred_from_channels(tmp_path, graph_pb2, alpha):
    t = make_tf_tensors(alpha=alpha, num_classes=3, seed=2)
    ws = import_tf_graphdef(write(tmp_path, build_graph(graph_pb2, t)))
    assert ws.config.alpha == alpha
    assert ws.config.architecture().block_channels == [int(c * alpha) for c, _ in BLOCK_CONFIG]
    np.testing.assert_array_equal(ws.tensors["blocks.12.pw.weight"], t[f"{P}Conv2d_13_pointwise/weights"][0, 0])


def test_float_val_encodings_and_metadata(tmp_path, graph_pb2):
    t = make_tf_tensors(seed=3)
    beta = f"{P}Conv2d_2_pointwise/BatchNorm/beta"
    t[beta][:] = 0.25  # stored as one float_val, broadcast to every channel
    gamma = f"{P}Conv2d_3_depthwise/BatchNorm/gamma"
    encodings = {beta: "scalar", gamma: "float_val", f"{P}Logits/Conv2d_1c_1x1/biases": "float_val"}
    path = write(tmp_path, build_graph(graph_pb2, t, epsilon=1e-5, input_shape=(-1, -1, -1, 3),
                                       encodings=encodings))
    ws = import_tf_graphdef(path, labels=[f"c{i}" for i in range(7)], source="unit test")
    np.testing.assert_array_equal(ws.tensors["blocks.1.pw.bn.beta"], np.full(32, 0.25, np.float32))
    np.testing.assert_array_equal(ws.tensors["blocks.2.dw.bn.gamma"], t[gamma])
    np.testing.assert_array_equal(ws.tensors["classifier.bias"], t[f"{P}Logits/Conv2d_1c_1x1/biases"])
    assert ws.config.bn_epsilon == pytest.approx(1e-5, rel=1e-6)
    assert ws.config.resolution == (224, 224)  # unknown placeholder size -> default
    assert ws.config.labels == tuple(f"c{i}" for i in range(7))
    assert ws.config.source == "unit test"


def test_missing_gamma_means_ones_and_default_epsilon(tmp_path, graph_pb2):
    t = make_tf_tensors(seed=4)
    for scope in layer_scopes():  # TF-slim batch_norm(scale=False): no gamma variables at all
        del t[f"{P}{scope}/BatchNorm/gamma"]
    ws = import_tf_graphdef(write(tmp_path, build_graph(graph_pb2, t, epsilon=None, input_shape=None)))
    for canonical in ["stem"] + [f"blocks.{i}.{k}" for i in range(13) for k in ("dw", "pw")]:
        gamma = ws.tensors[f"{canonical}.bn.gamma"]
        np.testing.assert_array_equal(gamma, np.ones_like(gamma), err_msg=canonical)
    np.testing.assert_array_equal(ws.tensors["blocks.7.pw.bn.var"], t[f"{P}Conv2d_8_pointwise/BatchNorm/moving_variance"])
    assert ws.config.bn_epsilon == 1e-3
    assert ws.config.resolution == (224, 224)


def test_saved_file_is_deterministic_and_loads_back(tmp_path, graph_pb2):
    t = make_tf_tensors(seed=5)
    ws = import_tf_graphdef(write(tmp_path, build_graph(graph_pb2, t)), labels=list("abcdefg"))
    save_weights(tmp_path / "a.safetensors", ws)
    save_weights(tmp_path / "b.safetensors", ws)
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    back = load_weights(tmp_path / "a.safetensors")
    assert back.config == ws.config
    for name, arr in expected_canonical(t).items():
        np.testing.assert_array_equal(back.tensors[name], arr, err_msg=name)


# -- errors ----------------------------------------------------------------------------------------

def test_truncated_file(tmp_path, graph_pb2):
    t = make_tf_tensors(seed=6)
    data = build_graph(graph_pb2, t)
    cut = data.find(t[f"{P}Conv2d_13_pointwise/weights"].tobytes()) + 100  # inside a tensor's bytes
    assert cut > 100
    msg = import_error(write(tmp_path, data[:cut]))
    assert "truncated" in msg and "graph.pb" in msg


@pytest.mark.parametrize("data", [
    bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8)),
    b"\xff" * 64,
    b"",
    b"this is not a protobuf at all, just some text\n" * 20,
])
def test_garbage_bytes(tmp_path, data):
    import_error(write(tmp_path, data))


def test_not_a_mobilenet_graph(tmp_path, graph_pb2):
    g = graph_pb2.GraphDef()
    add_const(g, "resnet/conv1/weights", np.zeros((7, 7, 3, 8), np.float32))
    msg = import_error(write(tmp_path, g.SerializeToString()))
    assert "MobilenetV1/Conv2d_0/weights" in msg


def test_png_is_not_a_graph(tmp_path):
    png = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "chelsea.png")
    if not os.path.exists(png):
        pytest.skip("examples/chelsea.png not present")
    import_error(png)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        import_tf_graphdef(tmp_path / "nope.pb")
    import_error(tmp_path)


def test_missing_pointwise_weights(tmp_path, graph_pb2):
    t = make_tf_tensors(seed=8)
    del t[f"{P}Conv2d_5_pointwise/weights"]
    msg = import_error(write(tmp_path, build_graph(graph_pb2, t)))
    assert f"'{P}Conv2d_5_pointwise/weights'" in msg and "missing" in msg


def test_missing_moving_variance(tmp_path, graph_pb2):
    t = make_tf_tensors(seed=8)
    del t[f"{P}Conv2d_9_depthwise/BatchNorm/moving_variance"]
    msg = import_error(write(tmp_path, build_graph(graph_pb2, t)))
    assert f"{P}Conv2d_9_depthwise/BatchNorm/moving_variance" in msg


def test_missing_logits(tmp_path, graph_pb2):
    t = make_tf_tensors(seed=8)
    del t[f"{P}Logits/Conv2d_1c_1x1/biases"]
    msg = import_error(write(tmp_path, build_graph(graph_pb2, t)))
    assert f"{P}Logits/Conv2d_1c_1x1/biases" in msg


@pytest.mark.parametrize("node, shape", [
    ("Conv2d_7_depthwise/depthwise_weights", (3, 3, 64, 1)),   # 128 channels come in
    ("Conv2d_7_depthwise/depthwise_weights", (5, 5, 128, 1)),  # wrong kernel
    ("Conv2d_4_pointwise/weights", (1, 1, 16, 64)),             # Cin should be 32
    ("Conv2d_4_pointwise/weights", (1, 1, 32, 60)),             # Cout should be 64 at alpha 0.25
    ("Conv2d_0/weights", (3, 3, 1, 8)),                         # not RGB
    ("Conv2d_0/weights", (3, 3, 3, 9)),                         # stem should have 8 channels
    ("Conv2d_13_depthwise/depthwise_weights", (3, 3, 256, 2)),  # channel multiplier 2
    ("Conv2d_3_pointwise/BatchNorm/moving_mean", (31,)),
    ("Logits/Conv2d_1c_1x1/biases", (8,)),                      # 7 classes in the weights
])
def test_wrong_shape_names_the_node(tmp_path, graph_pb2, node, shape):
    t = make_tf_tensors(seed=9)
    t[P + node] = np.zeros(shape, np.float32)
    msg = import_error(write(tmp_path, build_graph(graph_pb2, t)))
    assert f"'{P}{node}'" in msg
    assert "shape" in msg


def test_wrong_dtype_names_the_node(tmp_path, graph_pb2):
    t = make_tf_tensors(seed=10)
    name = f"{P}Conv2d_11_pointwise/weights"
    msg = import_error(write(tmp_path, build_graph(graph_pb2, t, dtypes={name: DT_DOUBLE})))
    assert name in msg and "DT_DOUBLE" in msg


def test_byte_length_mismatch_names_the_node(tmp_path, graph_pb2):
    t = make_tf_tensors(seed=11)
    data = bytearray(build_graph(graph_pb2, t))
    g = graph_pb2.GraphDef()
    g.ParseFromString(bytes(data))
    name = f"{P}Conv2d_6_depthwise/depthwise_weights"
    node = next(n for n in g.node if n.name == name)
    node.attr["value"].tensor.tensor_content = node.attr["value"].tensor.tensor_content[:-4]
    msg = import_error(write(tmp_path, g.SerializeToString()))
    assert name in msg and "bytes" in msg


@pytest.mark.parametrize("dims", [[10 * 2 ** 30 // 4], [2 ** 63 - 1], [1 << 20, 1 << 20]])
def test_huge_declared_const_is_refused_before_allocating(tmp_path, graph_pb2, dims):
    """One float_val broadcast to a declared 10 GiB shape (found by fuzz/run.py): refused, not allocated."""
    t = make_tf_tensors(seed=12)
    g = graph_pb2.GraphDef()
    g.ParseFromString(build_graph(graph_pb2, t))
    name = f"{P}Conv2d_7_pointwise/BatchNorm/beta"
    tensor = next(n for n in g.node if n.name == name).attr["value"].tensor
    tensor.tensor_content = b""
    tensor.float_val.append(1.0)
    del tensor.tensor_shape.dim[:]
    for d in dims:
        tensor.tensor_shape.dim.add().size = d
    msg = import_error(write(tmp_path, g.SerializeToString()))
    assert name in msg and "declares" in msg


def test_valid_padding_is_rejected(tmp_path, graph_pb2):
    t = make_tf_tensors(seed=12)
    msg = import_error(write(tmp_path, build_graph(graph_pb2, t, paddings={"Conv2d_4_depthwise": b"VALID"})))
    assert f"{P}{P}Conv2d_4_depthwise/convolution" in msg and "SAME" in msg


def test_wrong_stride_is_rejected(tmp_path, graph_pb2):
    t = make_tf_tensors(seed=12)
    msg = import_error(write(tmp_path, build_graph(graph_pb2, t, strides={"Conv2d_2_depthwise": 1})))
    assert f"{P}{P}Conv2d_2_depthwise/convolution" in msg and "stride" in msg


def test_extra_block_is_rejected(tmp_path, graph_pb2):
    t = make_tf_tensors(seed=13)
    t[f"{P}Conv2d_14_depthwise/depthwise_weights"] = np.zeros((3, 3, 256, 1), np.float32)
    msg = import_error(write(tmp_path, build_graph(graph_pb2, t, extra_blocks=1)))
    assert "Conv2d_14" in msg and "13" in msg


def test_nan_and_negative_variance_name_the_node(tmp_path, graph_pb2):
    t = make_tf_tensors(seed=14)
    t[f"{P}Conv2d_2_depthwise/BatchNorm/moving_variance"][3] = -1.0
    msg = import_error(write(tmp_path, build_graph(graph_pb2, t)))
    assert f"{P}Conv2d_2_depthwise/BatchNorm/moving_variance" in msg and "negative" in msg
    t = make_tf_tensors(seed=14)
    t[f"{P}Conv2d_10_pointwise/weights"][0, 0, 1, 2] = np.nan
    msg = import_error(write(tmp_path, build_graph(graph_pb2, t), "nan.pb"))
    assert f"{P}Conv2d_10_pointwise/weights" in msg and "NaN" in msg


def test_wrong_label_count(tmp_path, graph_pb2):
    path = write(tmp_path, build_graph(graph_pb2, make_tf_tensors(seed=15)))
    with pytest.raises(InputError, match="6 labels"):
        import_tf_graphdef(path, labels=list("abcdef"))


def test_missing_tensorboard_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard.compat.proto", None)
    monkeypatch.setitem(sys.modules, "tensorboard.compat.proto.graph_pb2", None)
    with pytest.raises(MissingDependencyError, match=r"mobilenet-fast\[tf\]"):
        import_tf_graphdef(write(tmp_path, b"\x00"))


# -- the packaged default model --------------------------------------------------------------------

def read_sums():
    with open(os.path.join(MODELS, "SHA256SUMS"), encoding="utf-8") as f:
        return {name: digest for digest, name in (line.split("  ", 1) for line in f.read().splitlines() if line)}


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_embedded_model_checksum_and_contents():
    path = os.path.join(MODELS, MODEL_NAME)
    assert sha256_file(path) == read_sums()[MODEL_NAME]
    ws = load_weights(path)
    c = ws.config
    assert c.alpha == 1.0 and c.num_classes == 1001 and c.resolution == (224, 224)
    assert c.padding == "tf_same" and c.bn_epsilon == 1e-3
    assert c.labels[0] == "background"
    # TF-slim class i + 1 is ImageNet-1k class i (espresso is 967, tiger cat 282 in ImageNet-1k).
    assert "espresso" in c.labels and c.labels.index("espresso") == 968
    assert c.labels[283] == "tiger cat" and c.labels[1] == "tench"
    assert len(set(c.labels)) == 1001
    with open(os.path.join(MODELS, "imagenet_1001_labels.txt"), encoding="utf-8") as f:
        assert tuple(f.read().splitlines()) == c.labels
    assert "nudity 0.2.3" in c.source


def test_reconverting_the_real_graph_reproduces_the_embedded_model(tmp_path):
    pytest.importorskip("tensorboard.compat.proto.graph_pb2", reason="tensorboard (the 'tf' extra) is not installed")
    pb = os.environ.get("MOBILENET_FAST_TF_PB", DEFAULT_PB)
    if not os.path.isfile(pb):
        pytest.skip(f"TF-slim frozen graph not found at {pb} (set MOBILENET_FAST_TF_PB; get it with "
                    "`pip download --no-deps nudity==0.2.3` and extract nudity/files/retrained_graph.pb)")
    embedded = load_weights(os.path.join(MODELS, MODEL_NAME))
    ws = import_tf_graphdef(pb, labels=embedded.config.labels, source=embedded.config.source)
    assert ws.config == embedded.config
    assert set(ws.tensors) == set(embedded.tensors)
    for name, arr in embedded.tensors.items():
        np.testing.assert_array_equal(ws.tensors[name], arr, err_msg=name)
    out = tmp_path / MODEL_NAME
    save_weights(out, ws)
    assert sha256_file(out) == read_sums()[MODEL_NAME]  # byte-for-byte reproducible


def test_errors_are_package_errors():
    assert issubclass(ImportFormatError, MobileNetFastError) and issubclass(ImportFormatError, ValueError)
