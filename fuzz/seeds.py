"""Seed files for the fuzzer: small, valid MobileNetV1 weight files of every importer format.

Every seed is a real file written the way the format's own tools write it (our ``save_weights``,
a TF-slim-named GraphDef serialised with tensorboard's protos, Keras 3 ``model.save`` /
``save_weights``, ``torch.save`` in both its zip and legacy layouts, ``safetensors.torch``-style
timm state dicts, our ONNX exporter), at alpha 0.25 with a few classes, so one file is ~1 MB and
loads in milliseconds. The weights are random (seeded) with realistic BatchNorm statistics; the
few bytes tools stamp with the time or a random id (``.keras`` dates, torch's serialization id) are
normalised, so a seed's bytes depend only on the installed library versions.

Next to each file the manifest records its *data spans*: the byte ranges holding raw tensor
values. Byte-level mutations aim most of their hits at the rest of the file (headers, names,
shapes, offsets, the container's own structures), where damage is interesting.

Run as a script (``python fuzz/seeds.py OUT_DIR fmt ...``) it writes the seeds and
``OUT_DIR/manifest.json``; :func:`build_seeds` does the same in-process. A seed whose framework is
not installed is skipped with a note in the manifest.
"""

from __future__ import annotations

import collections
import io
import json
import os
import struct
import sys
import warnings
import zipfile
import zlib
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

Span = Tuple[int, int]

ALPHA = 0.25
NUM_CLASSES = 5
RESOLUTION = 64


class Skip(Exception):
    """A seed that cannot be built here (its framework is missing)."""


def _require(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise Skip(f"needs {module} ({extra}): {e}") from None


def canonical_weights(num_classes: int = NUM_CLASSES, seed: int = 0, labels: bool = True) -> Any:
    """A random, valid WeightSet (He-scaled weights, gamma/var ~ U(0.5, 1.5), beta/mean ~ N(0, 0.1))."""
    from mobilenet_fast.weights import ModelConfig, WeightSet, expected_shapes

    cfg = ModelConfig(alpha=ALPHA, resolution=(RESOLUTION, RESOLUTION), num_classes=num_classes,
                      padding="tf_same", labels=tuple(f"class {i}" for i in range(num_classes)) if labels and
                      num_classes else None, source="fuzz seed")
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in expected_shapes(cfg).items():
        if name.endswith((".bn.gamma", ".bn.var")):
            t = rng.uniform(0.5, 1.5, shape)
        elif name.endswith((".bn.beta", ".bn.mean", "classifier.bias")):
            t = rng.normal(0.0, 0.1, shape)
        else:
            fan_in = int(np.prod(shape[:-1]))
            t = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        tensors[name] = np.ascontiguousarray(t, dtype=np.float32)
    return WeightSet(cfg, tensors)


# -- data spans ----------------------------------------------------------------------------------

def _spans_of_blobs(data: bytes, blobs: Sequence[bytes], min_len: int = 16) -> List[Span]:
    """Where each (long enough) raw tensor blob sits in ``data`` (first occurrence)."""
    out = []
    for b in blobs:
        if len(b) >= min_len:
            at = data.find(b)
            if at >= 0:
                out.append((at, at + len(b)))
    return sorted(out)


def _hdf5_spans(path_or_bytes: Any, base: int = 0) -> List[Span]:
    import h5py

    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    out: List[Span] = []
    with h5py.File(src, "r") as f:
        def visit(_: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset) and obj.chunks is None:
                off = obj.id.get_offset()
                if off is not None:
                    out.append((base + off, base + off + obj.id.get_storage_size()))
        f.visititems(visit)
    return sorted(out)


def _zip_member_spans(data: bytes, select: Callable[[str], bool]) -> Dict[str, Span]:
    """name -> byte span of each selected member's stored bytes inside a zip archive."""
    out = {}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            if select(info.filename):
                h = info.header_offset
                name_len, extra_len = struct.unpack_from("<HH", data, h + 26)
                start = h + 30 + name_len + extra_len
                out[info.filename] = (start, start + info.compress_size)
    return out


# -- builders: each writes one seed and returns its data spans --------------------------------------

def build_ours(path: str, variant: str) -> List[Span]:
    from mobilenet_fast.weights import save_weights

    ws = canonical_weights(num_classes=0 if variant == "features" else NUM_CLASSES, seed=1)
    save_weights(path, ws)
    data = open(path, "rb").read()
    n = int.from_bytes(data[:8], "little")
    return [(8 + n, len(data))]


def build_int8(path: str, variant: str) -> List[Span]:
    """Our int8 .safetensors: the ``ours`` seed's weights quantised with a few random calibration
    images (``features``: no classifier)."""
    from mobilenet_fast.quantization import quantize_network
    from mobilenet_fast.qweights import save_quantized

    ws = canonical_weights(num_classes=0 if variant == "features" else NUM_CLASSES, seed=1)
    calib = np.random.default_rng(3).normal(0, 0.5, (2, RESOLUTION, RESOLUTION, 3)).astype(np.float32)
    save_quantized(path, ws.config, quantize_network(ws, calib))
    data = open(path, "rb").read()
    n = int.from_bytes(data[:8], "little")
    return [(8 + n, len(data))]


#: The committed .tflite files written by TensorFlow's converter (scripts/make_import_fixtures.py).
_TFLITE_FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "data",
                                "tflite", "mnv1_025_128_{}.tflite")


def build_tflite(path: str, variant: str) -> List[Span]:
    """A copy of one of the committed .tflite fixtures (``float32``, ``float16``, ``int8``,
    ``int8_floatio``, ``uint8`` (the legacy layout, scripts/make_uint8_tflite.py): MobileNetV1
    0.25/128, 100 classes); the data spans are its weight buffers,
    so that byte mutations mostly hit the flatbuffer's tables, offsets and quantisation vectors."""
    tfl = _require("tflite", "the 'tflite' extra")
    with open(_TFLITE_FIXTURES.format(variant), "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data)
    model = tfl.Model.GetRootAsModel(data, 0)
    blobs = [model.Buffers(i).DataAsNumpy().tobytes() for i in range(model.BuffersLength())
             if model.Buffers(i).DataLength() >= 64]
    return _spans_of_blobs(data, blobs, 64)


def build_onnx_qdq(path: str, variant: str) -> List[Span]:
    """A copy of a committed quantised ONNX fixture (``qdq`` or ``qop`` form; tests/data/onnx, made by
    onnxruntime's quantize_static: scripts/make_qdq_fixture.py); data spans: its initializers' raw bytes."""
    onnx = _require("onnx", "the 'onnx' extra")
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "data", "onnx",
                       f"mnv1_025_128_{variant}.onnx")
    with open(src, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data)
    model = onnx.load_from_string(data)
    return _spans_of_blobs(data, [t.raw_data for t in model.graph.initializer if t.raw_data], 64)


_TF = "MobilenetV1/"


def build_pb(path: str, variant: str) -> List[Span]:
    """A TF-slim MobileNetV1 frozen graph: Const weights (+ ``/read`` Identity), the conv ops with
    their padding/strides, BatchNorm epsilon Consts, an input Placeholder and the logits."""
    graph_pb2 = _require("tensorboard.compat.proto.graph_pb2", "the 'tf' extra: tensorboard, protobuf")
    ws = canonical_weights(seed=2)
    t = ws.tensors
    g = graph_pb2.GraphDef()
    blobs: List[bytes] = []

    def op(name: str, kind: str, inputs: Sequence[str] = (), **attrs: Any) -> Any:
        node = g.node.add()
        node.name, node.op = name, kind
        node.input.extend(inputs)
        for key, value in attrs.items():
            if isinstance(value, bytes):
                node.attr[key].s = value
            else:
                node.attr[key].list.i.extend(value)
        return node

    def const(name: str, arr: np.ndarray, float_val: bool = False) -> None:
        node = op(name, "Const")
        node.attr["dtype"].type = 1
        tensor = node.attr["value"].tensor
        tensor.dtype = 1
        for s in arr.shape:
            tensor.tensor_shape.dim.add().size = s
        if float_val:
            tensor.float_val.extend(arr.reshape(-1).tolist())
        else:
            tensor.tensor_content = arr.astype("<f4").tobytes()
            blobs.append(tensor.tensor_content)
        op(name + "/read", "Identity", [name])

    ph = op("input", "Placeholder")
    ph.attr["dtype"].type = 1
    for s in (1, RESOLUTION, RESOLUTION, 3):
        ph.attr["shape"].shape.dim.add().size = s
    x = "input"
    arch = ws.config.architecture()
    for layer in arch:
        if layer.kind == "avgpool":
            x = op(_TF + "Logits/AvgPool_1a/AvgPool", "AvgPool", [x], padding=b"VALID").name
            continue
        if layer.kind == "dense":
            scope = _TF + "Logits/Conv2d_1c_1x1/"
            const(scope + "weights", t["classifier.weight"][None, None])
            const(scope + "biases", t["classifier.bias"], float_val=variant == "float_val")
            conv = op(scope + "convolution", "Conv2D", [x, scope + "weights/read"], padding=b"SAME",
                      strides=[1, 1, 1, 1])
            op(scope + "BiasAdd", "BiasAdd", [conv.name, scope + "biases/read"])
            continue
        if layer.kind == "conv3x3":
            scope, canonical, w, kind = "Conv2d_0", "stem", t["stem.conv.weight"], "Conv2D"
            wname = "weights"
        else:
            i = int(layer.name.split(".")[1]) + 1
            dw = layer.kind == "dwconv3x3"
            scope = f"Conv2d_{i}_{'depthwise' if dw else 'pointwise'}"
            canonical = layer.name
            w = t[f"{layer.name}.weight"]
            w = w[:, :, :, None] if dw else w[None, None]
            kind, wname = ("DepthwiseConv2dNative", "depthwise_weights") if dw else ("Conv2D", "weights")
        s = _TF + scope + "/"
        const(s + wname, w)
        for tf_field, f in (("gamma", "gamma"), ("beta", "beta"), ("moving_mean", "mean"),
                            ("moving_variance", "var")):
            const(s + "BatchNorm/" + tf_field, t[f"{canonical}.bn.{f}"],
                  float_val=variant == "float_val" and f in ("gamma", "beta"))
        conv = op(s + "convolution", kind, [x, s + wname + "/read"], padding=b"SAME",
                  strides=[1, layer.stride, layer.stride, 1], data_format=b"NHWC")
        eps = s + "BatchNorm/batchnorm/add/y"
        node = op(eps, "Const")
        node.attr["dtype"].type = 1
        node.attr["value"].tensor.dtype = 1
        node.attr["value"].tensor.float_val.append(1e-3)
        op(s + "BatchNorm/batchnorm/add", "Add", [s + "BatchNorm/moving_variance/read", eps])
        x = op(s + "Relu6", "Relu6", [conv.name]).name
    data = g.SerializeToString()
    with open(path, "wb") as f:
        f.write(data)
    return _spans_of_blobs(data, blobs)


def _keras_model() -> Any:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = _require("keras", "the 'frameworks' extra: keras with the torch backend")
    if keras.backend.backend() != "torch" or not keras.__version__.startswith("3."):
        raise Skip(f"needs Keras 3 with the torch backend (have {keras.__version__}, {keras.backend.backend()})")
    rng = np.random.default_rng(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = keras.applications.MobileNet(alpha=ALPHA, input_shape=(RESOLUTION, RESOLUTION, 3), include_top=True,
                                         weights=None, classes=NUM_CLASSES, classifier_activation=None)
    for layer in m.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        if type(layer).__name__ == "BatchNormalization":
            c = ws[0].shape[0]
            new = [rng.uniform(0.5, 1.5, c), rng.normal(0, 0.1, c), rng.normal(0, 0.1, c), rng.uniform(0.5, 1.5, c)]
        else:
            new = [rng.normal(0, 0.3, w.shape) for w in ws]
        layer.set_weights([np.asarray(w, dtype=np.float32) for w in new])
    return m


_KERAS_MODEL: List[Any] = []


def _normalise_keras_archive(path: str) -> None:
    """Rewrite a .keras zip with fixed member dates and a fixed ``date_saved``."""
    with zipfile.ZipFile(path) as zin:
        members = [(info, zin.read(info)) for info in zin.infolist()]
    with zipfile.ZipFile(path, "w") as zout:
        for info, data in members:
            if info.filename == "metadata.json":
                meta = json.loads(data)
                meta["date_saved"] = "2000-01-01@00:00:00"
                data = json.dumps(meta).encode()
            new = zipfile.ZipInfo(info.filename, date_time=(2000, 1, 1, 0, 0, 0))
            new.compress_type = info.compress_type
            new.external_attr = info.external_attr
            zout.writestr(new, data)


def build_keras(path: str, variant: str) -> List[Span]:
    _require("h5py", "the 'keras' extra")
    if not _KERAS_MODEL:
        _KERAS_MODEL.append(_keras_model())
    m = _KERAS_MODEL[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import logging

        logging.getLogger("absl").setLevel(logging.ERROR)
        if variant == "weights":
            m.save_weights(path)
        else:
            m.save(path)
    if variant == "archive":
        _normalise_keras_archive(path)
        data = open(path, "rb").read()
        spans = _zip_member_spans(data, lambda n: n == "model.weights.h5")
        start, end = spans["model.weights.h5"]
        return _hdf5_spans(data[start:end], base=start)
    return _hdf5_spans(path)


def timm_state_dict(ws: Any) -> "collections.OrderedDict[str, np.ndarray]":
    """The timm mobilenetv1 state dict (numpy) holding ``ws``'s tensors, in timm's layouts."""
    from mobilenet_fast.importers.torch_state import timm_key_map

    sd: "collections.OrderedDict[str, np.ndarray]" = collections.OrderedDict()
    for key, (name, layout) in timm_key_map(ws.config.num_classes > 0).items():
        a = ws.tensors[name]
        if layout == "oihw":
            a = a.transpose(3, 2, 0, 1)
        elif layout == "dw":
            a = a.transpose(2, 0, 1)[:, None]
        elif layout == "pw":
            a = a.T[:, :, None, None]
        elif layout == "linear":
            a = a.T
        sd[key] = np.ascontiguousarray(a, dtype=np.float32)
        if key.endswith(".running_var"):
            sd[key[: -len("running_var")] + "num_batches_tracked"] = np.array(1000, dtype=np.int64)
    return sd


def build_torch(path: str, variant: str) -> List[Span]:
    sd = timm_state_dict(canonical_weights(seed=4, labels=False))
    if variant == "safetensors":
        from safetensors.numpy import save_file

        save_file(dict(sd), path)
        data = open(path, "rb").read()
        return [(8 + int.from_bytes(data[:8], "little"), len(data))]
    torch = _require("torch", "the 'torch' extra")
    state = collections.OrderedDict((k, torch.from_numpy(v.copy())) for k, v in sd.items())
    if variant == "legacy":
        torch.save(state, path, _use_new_zipfile_serialization=False)
        data = open(path, "rb").read()
        return _spans_of_blobs(data, [v.tobytes() for v in sd.values()])
    torch.save(state, path)
    _normalise_torch_zip(path)
    data = open(path, "rb").read()
    return sorted(_zip_member_spans(data, lambda n: "/data/" in n).values())


def _normalise_torch_zip(path: str) -> None:
    """Replace torch's random ``.data/serialization_id`` by zeros (same length), fixing its CRC."""
    data = bytearray(open(path, "rb").read())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        infos = [i for i in zf.infolist() if i.filename.endswith(".data/serialization_id")]
        if not infos:
            return
        old = zf.read(infos[0])
    new = b"0" * len(old)
    at = data.find(old)
    old_crc, new_crc = struct.pack("<I", zlib.crc32(old)), struct.pack("<I", zlib.crc32(new))
    if at < 0 or data.count(old_crc) != 2:
        return  # leave it; only determinism suffers
    data[at:at + len(old)] = new
    data = bytearray(bytes(data).replace(old_crc, new_crc))
    with open(path, "wb") as f:
        f.write(data)


def build_onnx(path: str, variant: str) -> List[Span]:
    onnx = _require("onnx", "the 'onnx' extra")
    from mobilenet_fast.export_onnx import to_onnx_model

    model = to_onnx_model(canonical_weights(seed=5), fold_bn=variant == "folded")
    data = model.SerializeToString()
    with open(path, "wb") as f:
        f.write(data)
    blobs = [t.raw_data for t in onnx.load_from_string(data).graph.initializer]
    return _spans_of_blobs(data, blobs)


def build_seeds(out_dir: str, formats: Sequence[str]) -> Dict[str, Any]:
    """Write the seeds of ``formats`` into ``out_dir``; returns (and writes) the manifest."""
    from formats import FORMATS

    os.makedirs(out_dir, exist_ok=True)
    manifest: Dict[str, Any] = {"seeds": [], "skipped": []}
    for fmt in formats:
        for v in FORMATS[fmt].variants:
            variant = v.name
            path = os.path.join(out_dir, v.filename)
            try:
                spans = v.build(path, variant)
            except Skip as e:
                manifest["skipped"].append({"format": fmt, "variant": variant, "why": str(e)})
                continue
            manifest["seeds"].append({"format": fmt, "variant": variant, "path": path,
                                      "size": os.path.getsize(path), "data_spans": spans})
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return manifest


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: seeds.py OUT_DIR [format ...]", file=sys.stderr)
        return 2
    from formats import FORMATS

    out, formats = args[0], args[1:] or list(FORMATS)
    manifest = build_seeds(out, formats)
    for s in manifest["seeds"]:
        print(f"{s['format']:6s} {s['variant']:12s} {s['size']:>9,d} bytes  {s['path']}")
    for s in manifest["skipped"]:
        print(f"{s['format']:6s} {s['variant']:12s} skipped: {s['why']}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import seeds  # the builders in formats.FORMATS raise seeds.Skip, not __main__.Skip

    sys.exit(seeds.main())
