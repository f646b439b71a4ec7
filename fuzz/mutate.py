"""Mutations of seed files: byte-level damage and format-aware edits.

Every mutator is a function ``(data, rng, ctx) -> (new_data, description)``: ``data`` is the file's
bytes, ``rng`` a :class:`random.Random` seeded from (run seed, format, input index), so the same
triple always gives the same file, and ``ctx`` the :class:`Context` of the seed (its data spans,
its extension). The description says what was done, in words a reader of a finding understands
("safetensors: tensor 'blocks.3.dw.weight' shape -> [10737418240]").

Byte-level mutators (any format): bit flips, bytes and little-/big-endian integers overwritten
with interesting values, truncation, junk appended or inserted, chunks duplicated or removed.
Their offsets fall on the seed's *structure* (everything but raw tensor values) three times out of
four.

Format-aware mutators parse the seed with the format's own library, change one thing and write it
back: safetensors header JSON (shapes, dtypes, data_offsets, a 10 GB declared tensor, metadata
values), GraphDef fields (Const shapes/dtypes/contents, op types, inputs, attributes), HDF5
datasets and attributes via h5py on a copy, ``.keras``/``.pth`` zip members and central-directory
fields, pickle opcodes of ``torch.save`` files (zip and legacy), ONNX initializers, nodes,
attributes and external-data references.
"""

from __future__ import annotations

import io
import json
import os
import pickletools
import random
import re
import struct
import tempfile
import zipfile
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Sequence, Tuple

Span = Tuple[int, int]
Mutator = Callable[[bytes, random.Random, "Context"], Tuple[bytes, str]]

GiB = 1 << 30
#: Integers that break size arithmetic: 0/1, sign and width boundaries, 10 GiB, 2**63.
INTERESTING_INTS = [0, 1, 2, 3, 4, 7, 8, 16, 64, 127, 128, 255, 256, 1000, 4096, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
                    0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32, 10 * GiB, 10 * GiB // 4, 1 << 40, (1 << 62) + 1,
                    0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF]
INTERESTING_BYTES = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x20, 0x0A, 0x22, 0x5B, 0x7B, 0x3A, 0x2C]
#: Dimension values for declared shapes (huge ones are the "10 GB tensor" cases).
HUGE_DIMS = [0, -1, 1 << 31, 1 << 32, 10 * GiB // 4, 10 * GiB, 1 << 40, (1 << 62) + 3, (1 << 63) - 1]
DEEP = "\x00DEEP\x00"  # placeholder, replaced by 100000 nested brackets after serialisation
DEEP_TEXT = "[" * 100_000 + "]" * 100_000


@dataclass
class Context:
    """What mutators know about the seed: its format, variant, extension and data spans."""

    fmt: str
    variant: str
    ext: str
    data_spans: List[Span]
    size: int
    structure: List[Span] = field(default_factory=list)

    def __post_init__(self) -> None:
        out, at = [], 0
        for a, b in sorted(self.data_spans):
            if a > at:
                out.append((at, a))
            at = max(at, b)
        if at < self.size:
            out.append((at, self.size))
        self.structure = out


# -- byte-level --------------------------------------------------------------------------------------

def pick_offset(n: int, rng: random.Random, ctx: Context) -> int:
    """An offset in [0, n): on the structure (non-tensor bytes) 3 times in 4, else uniform."""
    if n <= 0:
        return 0
    spans = [(a, min(b, n)) for a, b in ctx.structure if a < n]
    if spans and rng.random() < 0.75:
        total = sum(b - a for a, b in spans)
        k = rng.randrange(total)
        for a, b in spans:
            if k < b - a:
                return a + k
            k -= b - a
    return rng.randrange(n)


def bit_flips(data: bytes, rng: random.Random, ctx: Context) -> Tuple[bytes, str]:
    b = bytearray(data)
    count = rng.choice([1, 1, 1, 2, 4, 8, 32])
    where = []
    for _ in range(count):
        at = pick_offset(len(b), rng, ctx)
        bit = rng.randrange(8)
        b[at] ^= 1 << bit
        where.append(f"{at}.{bit}")
    return bytes(b), f"flip bit(s) {', '.join(where[:8])}{' ...' if count > 8 else ''}"


def set_bytes(data: bytes, rng: random.Random, ctx: Context) -> Tuple[bytes, str]:
    b = bytearray(data)
    at = pick_offset(len(b), rng, ctx)
    k = rng.choice([1, 1, 2, 4, 16])
    value = rng.choice(INTERESTING_BYTES)
    b[at:at + k] = bytes([value]) * len(b[at:at + k])
    return bytes(b), f"bytes {at}..{at + k - 1} = 0x{value:02x}"


def set_int(data: bytes, rng: random.Random, ctx: Context) -> Tuple[bytes, str]:
    b = bytearray(data)
    width = rng.choice([1, 2, 4, 8, 8])
    at = min(pick_offset(len(b), rng, ctx), max(len(b) - width, 0))
    value = rng.choice(INTERESTING_INTS) & ((1 << (8 * width)) - 1)
    if rng.random() < 0.2:
        value = (int.from_bytes(b[at:at + width], "little") + rng.choice([-1, 1, 8, -8])) % (1 << (8 * width))
    order = "big" if rng.random() < 0.15 else "little"
    b[at:at + width] = value.to_bytes(width, order)
    return bytes(b[:len(data)]), f"{width}-byte {order}-endian int at {at} = {value}"


def truncate(data: bytes, rng: random.Random, ctx: Context) -> Tuple[bytes, str]:
    n = len(data)
    r = rng.random()
    if r < 0.1:
        cut = rng.randrange(min(n, 64) + 1)
    elif r < 0.2:
        cut = max(0, n - rng.randrange(1, 64))
    elif r < 0.6:
        cut = pick_offset(n, rng, ctx)
    else:
        cut = rng.randrange(n + 1)
    return data[:cut], f"truncated to {cut} of {n} bytes"


def _junk(rng: random.Random, n: int) -> bytes:
    kind = rng.randrange(3)
    if kind == 0:
        return bytes(n)
    if kind == 1:
        return bytes([0xFF]) * n
    return rng.randbytes(n)


def append_junk(data: bytes, rng: random.Random, ctx: Context) -> Tuple[bytes, str]:
    n = rng.choice([1, 7, 64, 4096, 65536])
    return data + _junk(rng, n), f"{n} junk bytes appended"


def insert_junk(data: bytes, rng: random.Random, ctx: Context) -> Tuple[bytes, str]:
    at = pick_offset(len(data), rng, ctx)
    n = rng.choice([1, 2, 8, 512])
    return data[:at] + _junk(rng, n) + data[at:], f"{n} junk bytes inserted at {at}"


def duplicate_chunk(data: bytes, rng: random.Random, ctx: Context) -> Tuple[bytes, str]:
    a = pick_offset(len(data), rng, ctx)
    n = rng.choice([1, 8, 64, 1024, 16384])
    dst = pick_offset(len(data), rng, ctx)
    return data[:dst] + data[a:a + n] + data[dst:], f"bytes {a}..{a + n - 1} copied to {dst}"


def remove_chunk(data: bytes, rng: random.Random, ctx: Context) -> Tuple[bytes, str]:
    a = pick_offset(len(data), rng, ctx)
    n = rng.choice([1, 4, 8, 64, 1024, 16384])
    return data[:a] + data[a + n:], f"bytes {a}..{a + n - 1} removed"


BYTE_MUTATORS: List[Tuple[Mutator, float]] = [
    (bit_flips, 3.0), (set_bytes, 2.0), (set_int, 3.0), (truncate, 1.5), (append_junk, 0.5),
    (insert_junk, 0.7), (duplicate_chunk, 0.7), (remove_chunk, 0.7),
]


# -- JSON values -------------------------------------------------------------------------------------

def interesting_json(rng: random.Random) -> Any:
    return rng.choice([
        None, True, False, 0, -1, 1, 2, 6, 32, 224, 2 ** 31, 2 ** 63, 10 ** 30, -(10 ** 30), 1e308, -1e308, 1e-308,
        0.5, 1.0000001, float("nan"), float("inf"), "", "x", "same", "valid", "relu6", "relu", "keras", "tf_same",
        "\u0000", "\u00ff", "A" * 5000, [], {}, [1e9, 1e9], [0, 0], [[0, 1], [0, 1]],
        [None, None, None, None], [None, 100000, 100000, 3], {"a": 1}, [1, 2, 3], DEEP,
    ])


def _json_slots(obj: Any, limit: int = 4000) -> List[Tuple[Any, Any]]:
    """(container, key) for every value in a JSON tree (breadth first, at most ``limit``)."""
    out: List[Tuple[Any, Any]] = []
    todo = [obj]
    while todo and len(out) < limit:
        node = todo.pop(0)
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, v in items:
            out.append((node, k))
            if isinstance(v, (dict, list)):
                todo.append(v)
    return out


def mutate_json(obj: Any, rng: random.Random) -> Tuple[Any, str]:
    """Change one value of a JSON tree in place (or the root); returns (tree, description)."""
    slots = _json_slots(obj)
    if not slots:
        new = interesting_json(rng)
        return new, f"JSON root -> {_short(new)}"
    node, key = rng.choice(slots)
    action = rng.random()
    if action < 0.55:
        new = interesting_json(rng)
        node[key] = new
        return obj, f"JSON [{_short(key)}] -> {_short(new)}"
    if action < 0.75:
        if isinstance(node, dict):
            del node[key]
        else:
            node.pop(key)
        return obj, f"JSON [{_short(key)}] removed"
    if action < 0.85:
        node[key] = [node[key]]
        return obj, f"JSON [{_short(key)}] wrapped in a list"
    if action < 0.93 and isinstance(node[key], (int, float)) and not isinstance(node[key], bool):
        node[key] = str(node[key])
        return obj, f"JSON [{_short(key)}] number -> string"
    if isinstance(node, list):
        node.insert(key, node[key])
        return obj, f"JSON list item {key} duplicated"
    node[key + "_x" if isinstance(key, str) else key] = node[key]
    return obj, f"JSON [{_short(key)}] copied to a new key"


def dump_json(obj: Any) -> str:
    return json.dumps(obj).replace(json.dumps(DEEP), DEEP_TEXT)


def _short(v: Any) -> str:
    if v == DEEP:
        return "<100000 nested lists>"
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


# -- safetensors ---------------------------------------------------------------------------------------

ST_DTYPES = ["F32", "F16", "BF16", "F64", "I8", "U8", "I32", "I64", "U64", "BOOL", "F8_E4M3", "F4", "C64", "XYZ", "",
             "f32", 5, None]


#: Values an int8 file's tensors must not hold, by dtype: zero, negative, NaN/Inf and huge scales;
#: zero points and clamps outside 0..255 (or reversed); the int8 weight -128; int32 extremes.
_BAD_VALUES = {
    "F64": [0.0, -1.0, float("nan"), float("inf"), 1e-300, 1e300, 5e-324],
    "F32": [0.0, -1.0, float("nan"), float("inf"), 1e-45, 3e38],
    "I32": [-1, 256, 255, 2**31 - 1, -2**31, 1000, 0],
    "I8": [-128, 127, -127],
}
_PACK = {"F64": "<d", "F32": "<f", "I32": "<i", "I8": "<b"}


def qtensor_edit(data: bytes, rng: random.Random, ctx: Context) -> Tuple[bytes, str]:
    """Overwrite values inside one tensor of an int8 file (the header stays valid): a scale of 0 or
    NaN, a zero point of 256, a reversed clamp, a weight of -128, a bias near 2^31, or the bytes
    of one tensor swapped with another's."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    names = [k for k in header if k != "__metadata__" and header[k]["dtype"] in _PACK]
    name = rng.choice(names)
    entry = header[name]
    a, b = (8 + n + v for v in entry["data_offsets"])
    fmt = _PACK[entry["dtype"]]
    size = struct.calcsize(fmt)
    count = (b - a) // size
    if count == 0:
        return data, f"tensor {name!r} is empty: unchanged"
    out = bytearray(data)
    if rng.random() < 0.15 and count > 1:  # every value of the tensor
        value = rng.choice(_BAD_VALUES[entry["dtype"]])
        out[a:b] = struct.pack("<" + fmt[1] * count, *([value] * count))
        return bytes(out), f"tensor {name!r}: every value -> {value!r}"
    k = rng.randrange(min(count, 8)) if rng.random() < 0.5 else rng.randrange(count)
    value = rng.choice(_BAD_VALUES[entry["dtype"]])
    out[a + k * size:a + (k + 1) * size] = struct.pack(fmt, value)
    if name.endswith(".clamp") and rng.random() < 0.5:  # low > high
        out[a:a + 8] = struct.pack("<ii", 200, 100)
        return bytes(out), f"tensor {name!r} -> [200, 100]"
    return bytes(out), f"tensor {name!r}[{k}] -> {value!r}"


def safetensors_edit(data: bytes, rng: random.Random, ctx: Context) -> Tuple[bytes, str]:
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    names = [k for k in header if k != "__metadata__"]
    name = rng.choice(names)
    entry = header[name]
    action = rng.choice(["shape", "shape", "dtype", "offsets", "offsets", "10gb", "drop", "alias", "dup_key",
                         "meta", "meta", "meta", "header_len", "header_text", "not_object"])
    desc = ""
    if action == "shape":
        shape = list(entry["shape"])
        how = rng.randrange(5)
        if how == 0 and shape:
            k = rng.randrange(len(shape))
            shape[k] = rng.choice(HUGE_DIMS)
        elif how == 1:
            shape.append(rng.choice([1, 2, 0]))
        elif how == 2 and shape:
            shape.pop(rng.randrange(len(shape)))
        elif how == 3:
            shape = rng.choice([[], [3.0], ["3"], None, [[3]], 7])
        else:
            shape = list(reversed(shape))
        entry["shape"] = shape
        desc = f"tensor {name!r} shape -> {_short(shape)}"
    elif action == "dtype":
        entry["dtype"] = rng.choice(ST_DTYPES)
        desc = f"tensor {name!r} dtype -> {entry['dtype']!r}"
    elif action == "offsets":
        a, b = entry["data_offsets"]
        new = rng.choice([[b, a], [a, b + 4], [a, a], [a - 4, b], [0, len(body) + 4], [a, 10 * GiB], [-4, b],
                          [a, b, b], [a], [float(a), b], [str(a), b], None, [0, 2 ** 64 + 4]])
        entry["data_offsets"] = new
        desc = f"tensor {name!r} data_offsets {[a, b]} -> {_short(new)}"
    elif action == "10gb":
        elems = 10 * GiB // 4
        entry["shape"] = [elems] if rng.random() < 0.5 else [elems // 1024, 1024]
        if rng.random() < 0.5:
            a = entry["data_offsets"][0]
            entry["data_offsets"] = [a, a + 10 * GiB]
        desc = f"tensor {name!r} declares 10 GiB: shape {entry['shape']}, data_offsets {entry['data_offsets']}"
    elif action == "drop":
        del header[name]
        desc = f"tensor {name!r} removed from the header"
    elif action == "alias":
        new_name = rng.choice([n + ".x" for n in names] + ["x" * 300, "", "__metadata__x"])
        header[new_name] = dict(entry)
        desc = f"tensor {new_name!r} added, aliasing the data of {name!r}"
    elif action == "dup_key":
        other = rng.choice(names)
        text = json.dumps(header)
        text = text.replace(json.dumps(other) + ":", json.dumps(name) + ":", 1)
        return _st_pack(text, body, rng), f"header key {other!r} renamed to the existing {name!r} (duplicate key)"
    elif action == "meta":
        meta = header.get("__metadata__")
        if not isinstance(meta, dict) or not meta or rng.random() < 0.1:
            header["__metadata__"] = rng.choice([None, [], {"format": "mobilenet-fast"}, "x", {"a": 1}])
            desc = f"__metadata__ -> {_short(header['__metadata__'])}"
        else:
            key = rng.choice(sorted(meta))
            how = rng.random()
            if how < 0.15:
                del meta[key]
                desc = f"metadata {key!r} removed"
            elif how < 0.25:
                meta[key] = rng.choice([5, None, ["x"], {"a": "b"}])
                desc = f"metadata {key!r} -> non-string {meta[key]!r}"
            elif how < 0.4:
                meta[key] = rng.choice(["", "{", "nan", "NaN", "[1e999, 64]", "\"x\"", "1" * 5000, "[64, 64, 64]",
                                        "-Infinity", "[[1, 2]]", "true"])
                desc = f"metadata {key!r} -> {_short(meta[key])}"
            else:
                try:
                    value = json.loads(meta[key])
                except ValueError:
                    value = meta[key]
                value, what = mutate_json(value, rng)
                meta[key] = dump_json(value)
                desc = f"metadata {key!r}: {what}"
    elif action == "header_len":
        delta = rng.choice([-8, -1, 1, 8, 1 << 20, -n, 10 * GiB, 2 ** 63])
        new_n = (n + delta) % (1 << 64)
        return new_n.to_bytes(8, "little") + data[8:], f"header length field {n} -> {new_n}"
    elif action == "header_text":
        text = bytearray(data[8:8 + n])
        structural = [i for i, c in enumerate(text) if c in b'{}[]:,"']
        at = rng.choice(structural)
        how = rng.randrange(3)
        if how == 0:
            del text[at]
        elif how == 1:
            text[at] = rng.choice(b'{}[]:,"x0 \xff')
        else:
            text[at:at] = bytes([rng.choice(b'{}[]:,"\\')])
        return len(text).to_bytes(8, "little") + bytes(text) + body, f"header JSON byte {at} edited"
    else:
        return _st_pack(dump_json(rng.choice([[], "x", 3, None, [header]])), body, rng), "header is not an object"
    return _st_pack(dump_json(header), body, rng), "safetensors: " + desc


def _st_pack(text: str, body: bytes, rng: random.Random) -> bytes:
    raw = text.encode("utf-8", "surrogatepass")
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw + body


# -- TensorFlow GraphDef -------------------------------------------------------------------------------

_TF_OPS = ["Const", "Identity", "Conv2D", "DepthwiseConv2dNative", "Placeholder", "PlaceholderWithDefault", "Relu6",
           "NoOp", "", "FusedBatchNormV3", "Snapshot", "VariableV2", "\xff"]


def graphdef_edit(data: bytes, rng: random.Random, ctx: Context) -> Tuple[bytes, str]:
    from tensorboard.compat.proto import graph_pb2

    g = graph_pb2.GraphDef()
    g.ParseFromString(data)
    nodes = list(g.node)
    consts = [n for n in nodes if n.op == "Const"]
    node = rng.choice(consts) if rng.random() < 0.6 else rng.choice(nodes)
    desc = f"node {node.name!r}: "
    r = rng.random()
    if node.op == "Const" and r < 0.6:
        t = node.attr["value"].tensor
        how = rng.choice(["dim", "dim", "add_dim", "clear_dims", "unknown_rank", "dtype", "content_cut",
                          "content_grow", "content_clear", "broadcast", "huge_broadcast", "nan", "no_value"])
        if how == "dim" and len(t.tensor_shape.dim):
            d = rng.choice(list(t.tensor_shape.dim))
            d.size = rng.choice(HUGE_DIMS + [2, 3])
            desc += f"a dim -> {d.size}"
        elif how == "add_dim":
            t.tensor_shape.dim.add().size = rng.choice([1, 2, 1 << 20])
            desc += "extra dim"
        elif how == "clear_dims":
            del t.tensor_shape.dim[:]
            desc += "shape cleared (scalar)"
        elif how == "unknown_rank":
            t.tensor_shape.unknown_rank = True
            desc += "unknown_rank"
        elif how == "dtype":
            t.dtype = rng.choice([0, 2, 3, 9, 14, 19, 20, 101, 1000])
            desc += f"dtype -> {t.dtype}"
        elif how == "content_cut":
            t.tensor_content = t.tensor_content[: rng.randrange(len(t.tensor_content) + 1)]
            desc += "tensor_content truncated"
        elif how == "content_grow":
            t.tensor_content = t.tensor_content + bytes(rng.choice([1, 4, 4096]))
            desc += "tensor_content extended"
        elif how == "content_clear":
            t.tensor_content = b""
            desc += "tensor_content cleared (zeros)"
        elif how == "broadcast":
            t.tensor_content = b""
            del t.float_val[:]
            t.float_val.append(0.5)
            desc += "one float_val broadcast"
        elif how == "huge_broadcast":
            t.tensor_content = b""
            del t.float_val[:]
            t.float_val.append(1.0)
            del t.tensor_shape.dim[:]
            for s in rng.choice([[10 * GiB // 4], [1 << 20, 1 << 20], [3, 3, 1 << 30, 1]]):
                t.tensor_shape.dim.add().size = s
            desc += f"declares {[d.size for d in t.tensor_shape.dim]} from one float_val"
        elif how == "nan":
            t.tensor_content = b"\x00\x00\xc0\x7f" * (len(t.tensor_content) // 4)
            desc += "values NaN"
        else:
            del node.attr["value"]
            desc += "'value' attribute removed"
    elif r < 0.7:
        node.op = rng.choice(_TF_OPS)
        desc += f"op -> {node.op!r}"
    elif r < 0.8:
        how = rng.randrange(5)
        names = [n.name for n in nodes]
        if how == 0:
            node.input.append(node.name)
            desc += "input from itself"
        elif how == 1 and node.input:
            k = rng.randrange(len(node.input))
            node.input[k] = rng.choice(names + ["missing", "^" + node.name, node.input[k] + ":7", ""])
            desc += f"input {k} -> {node.input[k]!r}"
        elif how == 2:
            del node.input[:]
            desc += "inputs cleared"
        else:
            node.input.insert(0, rng.choice(names))
            desc += f"input {node.input[0]!r} prepended"
    elif r < 0.92:
        key = rng.choice(["padding", "strides", "data_format", "dilations", "shape", "epsilon", "dtype", "value"])
        a = node.attr[key]
        how = rng.randrange(4)
        if key in ("strides", "dilations"):
            a.list.i[:] = rng.choice([[], [1, 2], [1, 0, 0, 1], [1, 1 << 40, 1 << 40, 1], [1, -2, -2, 1],
                                      [1, 2, 2, 1, 1]])
            desc += f"{key} -> {list(a.list.i)}"
        elif key == "shape":
            a.shape.Clear()
            for s in rng.choice([[1, 1 << 40, 1 << 40, 3], [-1, -5, 64, 3], [1, 64], [1, 0, 0, 3]]):
                a.shape.dim.add().size = s
            desc += f"shape attr -> {[d.size for d in a.shape.dim]}"
        elif key == "epsilon":
            a.f = rng.choice([float("nan"), -1.0, float("inf"), 1e30])
            desc += f"epsilon -> {a.f}"
        elif how == 0:
            del node.attr[key]
            desc += f"attr {key!r} removed"
        else:
            a.s = rng.choice([b"VALID", b"", b"\xff\xfe", b"NCHW", b"SAME", b"x" * 1000])
            desc += f"attr {key!r} -> {a.s[:20]!r}"
    else:
        how = rng.randrange(4)
        if how == 0:
            g.node.remove(node)
            desc += "removed"
        elif how == 1:
            g.node.add().CopyFrom(node)
            desc += "duplicated"
        elif how == 2:
            node.name = rng.choice(nodes).name
            desc = f"node renamed to existing {node.name!r}"
        else:
            node.name = node.name + "_x"
            desc += "renamed"
    return g.SerializeToString(), "GraphDef: " + desc


# -- HDF5 (via h5py on a copy) ---------------------------------------------------------------------------

def _h5_objects(f: Any) -> Tuple[List[Any], List[Any]]:
    import h5py

    datasets: List[Any] = []
    groups: List[Any] = [f]
    f.visititems(lambda _, o: (datasets if isinstance(o, h5py.Dataset) else groups).append(o))
    return datasets, groups


def hdf5_edit_bytes(data: bytes, rng: random.Random) -> Tuple[bytes, str]:
    """One h5py-level edit of an HDF5 file image (dataset shape/dtype/storage, groups, attributes)."""
    import h5py
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "x.h5")
        with open(path, "wb") as f:
            f.write(data)
        with h5py.File(path, "r+") as f:
            datasets, groups = _h5_objects(f)
            r = rng.random()
            if r < 0.5 and datasets:
                ds = rng.choice(datasets)
                name, parent, arr = ds.name, ds.parent, ds[()]
                base = name.rsplit("/", 1)[1]
                how = rng.choice(["shape", "dtype", "dtype", "huge", "huge", "external", "group", "delete",
                                  "scalar", "compressed", "nan"])
                del parent[base]
                if how == "shape":
                    new = rng.choice([arr.reshape(-1), arr[..., None], arr.T, arr[:0], arr.reshape(-1)[:-1],
                                      np.concatenate([arr.reshape(-1), arr.reshape(-1)])])
                    parent.create_dataset(base, data=new)
                    desc = f"dataset {name} shape {list(arr.shape)} -> {list(new.shape)}"
                elif how == "dtype":
                    dt = rng.choice(["i4", "f2", "f8", "u1", "?", "S8", "c8", h5py.string_dtype(), "compound"])
                    if dt == "compound":
                        new = np.zeros(arr.shape, dtype=[("a", "f4"), ("b", "i4")])
                    elif dt == h5py.string_dtype():
                        new = np.array(["x"] * max(arr.size, 1), dtype=object).reshape(arr.shape or (1,))
                    else:
                        new = arr.astype(dt)
                    parent.create_dataset(base, data=new, dtype=None if dt == "compound" else dt)
                    desc = f"dataset {name} dtype -> {dt}"
                elif how == "huge":
                    shape = rng.choice([(10 * GiB // 4,), (1 << 20, 1 << 20), arr.shape[:-1] + (1 << 30,)
                                        if arr.shape else (1 << 30,)])
                    parent.create_dataset(base, shape=shape, dtype="f4", chunks=tuple(1 for _ in shape),
                                          fillvalue=rng.choice([0.0, 1.0]))
                    desc = f"dataset {name} declares shape {list(shape)} (no data written)"
                elif how == "external":
                    target = rng.choice(["/dev/zero", "missing.bin", "/etc/hostname", "../x"])
                    size = rng.choice([arr.nbytes, 10 * GiB])
                    shape = arr.shape if size == arr.nbytes else (size // 4,)
                    parent.create_dataset(base, shape=shape, dtype="f4", external=[(target, 0, size)])
                    desc = f"dataset {name} stored externally in {target!r} ({size} bytes)"
                elif how == "group":
                    parent.create_group(base)
                    desc = f"dataset {name} replaced by a group"
                elif how == "scalar":
                    parent.create_dataset(base, data=np.float32(1.5))
                    desc = f"dataset {name} replaced by a scalar"
                elif how == "compressed":
                    parent.create_dataset(base, data=arr, compression="gzip", chunks=True, fletcher32=True)
                    desc = f"dataset {name} compressed (gzip + fletcher32)"
                elif how == "nan":
                    parent.create_dataset(base, data=np.full(arr.shape, np.nan, dtype=arr.dtype))
                    desc = f"dataset {name} all NaN"
                else:
                    desc = f"dataset {name} deleted"
            elif r < 0.85:
                desc = _h5_attr_edit(f, groups, rng)
            else:
                g = rng.choice(groups[1:] or groups)
                how = rng.randrange(3)
                if how == 0 and g.name != "/":
                    del g.parent[g.name.rsplit("/", 1)[1]]
                    desc = f"group {g.name} deleted"
                elif how == 1 and g.name != "/":
                    g.parent.move(g.name.rsplit("/", 1)[1], g.name.rsplit("/", 1)[1] + "_9")
                    desc = f"group {g.name} renamed"
                else:
                    g.create_group(rng.choice(["conv_dw_14", "vars", "layers", "x"]))
                    desc = f"group added under {g.name}"
        with open(path, "rb") as f:
            return f.read(), "HDF5: " + desc


def _h5_attr_edit(f: Any, groups: List[Any], rng: random.Random) -> str:
    import h5py
    import numpy as np

    with_attrs = [g for g in groups if len(g.attrs)]
    g = rng.choice(with_attrs) if with_attrs and rng.random() < 0.9 else rng.choice(groups)
    keys = list(g.attrs)
    if not keys:
        g.attrs["layer_names"] = np.array([b"conv1"])
        return f"attribute layer_names added to {g.name}"
    key = rng.choice(keys)
    value = g.attrs[key]
    how = rng.randrange(8)
    if key == "model_config" and how < 5:
        text = value.decode() if isinstance(value, bytes) else str(value)
        try:
            obj, what = mutate_json(json.loads(text), rng)
            g.attrs[key] = dump_json(obj)
        except ValueError:
            what = "unparsable"
        return f"{g.name} attribute model_config: {what}"
    if how == 0:
        del g.attrs[key]
        return f"{g.name} attribute {key!r} deleted"
    if how == 1:
        g.attrs[key] = rng.choice([5, np.arange(3), np.array([b"\xff\xfe"]), b"\xff\xfe", np.zeros((2, 2))])
        return f"{g.name} attribute {key!r} replaced by another type"
    if isinstance(value, np.ndarray) and value.size:
        items = list(value.reshape(-1))
        k = rng.randrange(len(items))
        op = rng.randrange(4)
        if op == 0:
            items.pop(k)
        elif op == 1:
            items.insert(k, items[k])
        elif op == 2:
            items[k] = rng.choice(["conv_dw_14", "nonexistent", "", "conv1", "x" * 10000]) if isinstance(
                items[k], str) else rng.choice([b"nonexistent", b"", b"conv1"])
        else:
            rng.shuffle(items)
        g.attrs[key] = np.array(items, dtype=value.dtype) if value.dtype.kind != "O" else np.array(
            items, dtype=h5py.string_dtype())
        return f"{g.name} attribute {key!r} list edited"
    g.attrs[key] = rng.choice(["", "x" * 100000, "{", "3.15.1"])
    return f"{g.name} attribute {key!r} -> another string"


def hdf5_edit(data: bytes, rng: random.Random, ctx: Context) -> Tuple[bytes, str]:
    return hdf5_edit_bytes(data, rng)


# -- zip archives (.keras, torch .pth) ------------------------------------------------------------------------

def _zip_members(data: bytes) -> List[Tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(info, zf.read(info)) for info in zf.infolist()]


def _zip_write(members: Sequence[Tuple[Any, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for info, payload in members:
            zf.writestr(info, payload)
    return buf.getvalue()


def zip_central_edit(data: bytes, rng: random.Random, ctx: Context) -> Tuple[bytes, str]:
    """Overwrite a numeric field of a central-directory or local header entry (sizes, offsets, CRC...)."""
    b = bytearray(data)
    sig = rng.choice([b"PK\x01\x02", b"PK\x03\x04", b"PK\x05\x06"])
    hits = [m.start() for m in re.finditer(re.escape(sig), bytes(b))]
    if not hits:
        return bit_flips(data, rng, ctx)
    at = rng.choice(hits)
    fields = {b"PK\x01\x02": {"method": (10, 2), "crc": (16, 4), "compressed size": (20, 4),
                              "uncompressed size": (24, 4), "name length": (28, 2), "extra length": (30, 2),
                              "local header offset": (42, 4)},
              b"PK\x03\x04": {"method": (8, 2), "crc": (14, 4), "compressed size": (18, 4),
                              "uncompressed size": (22, 4), "name length": (26, 2), "extra length": (28, 2)},
              b"PK\x05\x06": {"entries on disk": (8, 2), "entries": (10, 2), "directory size": (12, 4),
                              "directory offset": (16, 4), "comment length": (20, 2)}}[sig]
    name = rng.choice(sorted(fields))
    off, width = fields[name]
    value = rng.choice([0, 1, 8, 12, 14, 93, 99, 0xFFFF, 0xFFFFFFFF, 0x7FFFFFFF, 10 * GiB]) & ((1 << 8 * width) - 1)
    if rng.random() < 0.3:
        value = (int.from_bytes(b[at + off:at + off + width], "little") + rng.choice([-1, 1, 64])) % (1 << 8 * width)
    b[at + off:at + off + width] = value.to_bytes(width, "little")
    return bytes(b), f"zip {sig!r} entry at {at}: {name} -> {value}"


def keras_archive_edit(data: bytes, rng: random.Random, ctx: Context) -> Tuple[bytes, str]:
    members = _zip_members(data)
    names = [i.filename for i, _ in members]
    r = rng.random()
    if r < 0.35:
        i = names.index("model.weights.h5")
        new, what = hdf5_edit_bytes(members[i][1], rng)
        members[i] = (members[i][0], new)
        return _zip_write(members), f".keras model.weights.h5: {what}"
    if r < 0.65:
        target = "config.json" if rng.random() < 0.85 else "metadata.json"
        i = names.index(target)
        obj, what = mutate_json(json.loads(members[i][1]), rng)
        members[i] = (members[i][0], dump_json(obj).encode("utf-8", "surrogatepass"))
        return _zip_write(members), f".keras {target}: {what}"
    how = rng.randrange(6)
    k = rng.randrange(len(members))
    info, payload = members[k]
    if how == 0:
        members.pop(k)
        return _zip_write(members), f".keras member {info.filename} removed"
    if how == 1:
        members.append((zipfile.ZipInfo(info.filename), payload[: len(payload) // 2]))
        return _zip_write(members), f".keras member {info.filename} appears twice (second one truncated)"
    if how == 2:
        info.compress_type = rng.choice([zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
        return _zip_write(members), f".keras member {info.filename} compressed with method {info.compress_type}"
    if how == 3:
        members[k] = (zipfile.ZipInfo(rng.choice(["model.weights.json", "x/" + info.filename, info.filename.upper()])),
                      payload)
        return _zip_write(members), f".keras member {info.filename} renamed to {members[k][0].filename}"
    if how == 4:
        members[k] = (info, b"")
        return _zip_write(members), f".keras member {info.filename} emptied"
    return zip_central_edit(data, rng, ctx)


# -- pickles (torch.save) -----------------------------------------------------------------------------------------

_TORCH_GLOBALS = ["torch FloatStorage", "torch LongStorage", "torch HalfStorage", "torch BFloat16Storage",
                  "torch DoubleStorage", "torch ComplexFloatStorage", "torch QInt8Storage", "torch BoolStorage",
                  "torch ByteStorage", "torch._utils _rebuild_tensor", "torch._utils _rebuild_sparse_tensor",
                  "torch._utils _rebuild_qtensor", "torch._utils _rebuild_parameter",
                  "torch._utils _rebuild_meta_tensor_no_storage", "torch._tensor _rebuild_from_type_v2",
                  "collections OrderedDict", "builtins set", "builtins dict", "os system", "torch Size",
                  "torch device", "torch float32", "torch._utils _rebuild_wrapper_subclass",
                  "torch._utils _rebuild_device_tensor_from_numpy", "torch._utils _rebuild_nested_tensor"]
_PICKLE_STRINGS = ["cpu", "cuda", "meta", "cuda:7", "", "storage", "0", "1", "99", "conv_stem.weight", "x" * 4000,
                   "classifier.weight", "state_dict", "../data/0"]
_NO_ARG_OPS = ["(", "t", ")", "}", "]", "R", "b", "s", "u", "e", "a", "0", "2", "N", "\x88", "\x89", ".", "Q",
               "\x85", "\x86", "\x87", "1"]


def _encode_op(name: str, arg: Any) -> Optional[bytes]:
    codes = {o.name: o.code.encode("latin-1") for o in pickletools.opcodes}
    if name in ("BININT1", "BININT2", "BININT", "LONG1", "INT") and isinstance(arg, int):
        if 0 <= arg < 256:
            return codes["BININT1"] + bytes([arg])
        if 0 <= arg < 65536:
            return codes["BININT2"] + struct.pack("<H", arg)
        if -(1 << 31) <= arg < (1 << 31):
            return codes["BININT"] + struct.pack("<i", arg)
        raw = arg.to_bytes((arg.bit_length() + 8) // 8, "little", signed=True)
        return codes["LONG1"] + bytes([len(raw)]) + raw
    if name in ("BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "BINSTRING", "SHORT_BINSTRING"):
        raw = str(arg).encode("utf-8", "surrogatepass")
        return codes["BINUNICODE"] + struct.pack("<I", len(raw)) + raw
    if name == "GLOBAL":
        mod, _, attr = str(arg).partition(" ")
        return codes["GLOBAL"] + f"{mod}\n{attr}\n".encode()
    if name in ("BINGET", "BINPUT") and isinstance(arg, int) and 0 <= arg < 256:
        return codes[name] + bytes([arg])
    if name in ("LONG_BINGET", "LONG_BINPUT") and isinstance(arg, int):
        return codes[name] + struct.pack("<I", arg % (1 << 32))
    if name == "PROTO":
        return codes[name] + bytes([arg % 256])
    return None


def pickle_edit_bytes(pkl: bytes, rng: random.Random) -> Tuple[bytes, str]:
    """One opcode-level edit of a pickle: an argument changed, an opcode removed/duplicated/inserted."""
    ops = list(pickletools.genops(pkl))
    ends = [pos for _, _, pos in ops[1:]] + [len(pkl)]
    spans = [(op, arg, pos, end) for (op, arg, pos), end in zip(ops, ends)]
    with_args = [s for s in spans if s[1] is not None and s[0].name != "PROTO"]
    r = rng.random()
    if r < 0.6 and with_args:
        op, arg, pos, end = rng.choice(with_args)
        if isinstance(arg, int) and op.name not in ("BINGET", "BINPUT", "LONG_BINGET", "LONG_BINPUT"):
            new_arg: Any = rng.choice(INTERESTING_INTS + [-1, -(1 << 31), arg + 1, arg * 1000, 1 << 70])
        elif isinstance(arg, int):
            new_arg = rng.choice([arg + 1, 255, 0, 1 << 20])
            if new_arg > 255:
                op = pickletools.code2op["j" if op.name.endswith("GET") else "r"]
        elif op.name == "GLOBAL":
            new_arg = rng.choice(_TORCH_GLOBALS)
        else:
            new_arg = rng.choice(_PICKLE_STRINGS)
        enc = _encode_op(op.name, new_arg)
        if enc is None:
            return pkl, f"pickle: (no edit possible for {op.name})"
        return pkl[:pos] + enc + pkl[end:], f"pickle: {op.name} at {pos} {_short(arg)} -> {_short(new_arg)}"
    op, arg, pos, end = rng.choice(spans[1:-1] or spans)
    how = rng.randrange(3)
    if how == 0:
        return pkl[:pos] + pkl[end:], f"pickle: {op.name} at {pos} removed"
    if how == 1:
        return pkl[:end] + pkl[pos:end] + pkl[end:], f"pickle: {op.name} at {pos} duplicated"
    code = rng.choice(_NO_ARG_OPS).encode("latin-1")
    return pkl[:pos] + code + pkl[pos:], f"pickle: opcode {code!r} inserted at {pos}"


def torch_zip_edit(data: bytes, rng: random.Random, ctx: Context) -> Tuple[bytes, str]:
    members = _zip_members(data)
    names = [i.filename for i, _ in members]
    r = rng.random()
    if r < 0.6:
        k = next(i for i, n in enumerate(names) if n.endswith("/data.pkl"))
        new, what = pickle_edit_bytes(members[k][1], rng)
        members[k] = (members[k][0], new)
        return _zip_write(members), f".pth data.pkl: {what}"
    if r < 0.85:
        k = rng.randrange(len(members))
        info, payload = members[k]
        base = info.filename.rsplit("/", 1)[-1]
        how = rng.randrange(4)
        if base in ("byteorder", "version", ".format_version", ".storage_alignment") and how < 2:
            new = rng.choice([b"big", b"", b"99\n", b"1\n", b"-1", b"x" * 100, b"18446744073709551617"])
            members[k] = (info, new)
            return _zip_write(members), f".pth member {info.filename} -> {new[:20]!r}"
        if how == 0:
            members.pop(k)
            return _zip_write(members), f".pth member {info.filename} removed"
        if how == 1:
            cut = rng.randrange(len(payload) + 1)
            members[k] = (info, payload[:cut])
            return _zip_write(members), f".pth member {info.filename} truncated to {cut} bytes"
        if how == 2:
            members[k] = (info, payload + bytes(rng.choice([4, 4096])))
            return _zip_write(members), f".pth member {info.filename} extended"
        info.compress_type = zipfile.ZIP_DEFLATED
        return _zip_write(members), f".pth member {info.filename} deflated"
    return zip_central_edit(data, rng, ctx)


def _pickle_spans(data: bytes, count: int) -> List[Span]:
    """Byte spans of the first ``count`` pickles stored back to back in ``data``."""
    out, at = [], 0
    for _ in range(count):
        end = at
        for op, _, pos in pickletools.genops(io.BytesIO(data[at:])):
            end = at + pos + 1
            if op.name == "STOP":
                break
        out.append((at, end))
        at = end
    return out


def torch_legacy_edit(data: bytes, rng: random.Random, ctx: Context) -> Tuple[bytes, str]:
    """Legacy torch.save: magic, protocol, sys_info, the object, storage keys (5 pickles), then per storage
    an 8-byte element count and the raw data."""
    spans = _pickle_spans(data, 5)
    r = rng.random()
    if r < 0.7:
        k = rng.choice([3, 3, 3, 4, 2, 0])
        a, b = spans[k]
        new, what = pickle_edit_bytes(data[a:b], rng)
        return data[:a] + new + data[b:], f"legacy .pth pickle #{k}: {what}"
    # the element count of the first storage record
    at = spans[4][1]
    value = rng.choice([0, 1, 10 * GiB // 4, 1 << 62, (1 << 64) - 1, int.from_bytes(data[at:at + 8], "little") + 1])
    return data[:at] + value.to_bytes(8, "little") + data[at + 8:], f"legacy .pth first storage size -> {value}"


# -- ONNX -------------------------------------------------------------------------------------------------------

def onnx_edit(data: bytes, rng: random.Random, ctx: Context) -> Tuple[bytes, str]:
    import onnx

    m = onnx.ModelProto()
    m.ParseFromString(data)
    g = m.graph
    r = rng.random()
    if r < 0.4:
        t = rng.choice(list(g.initializer))
        desc = f"initializer {t.name!r}: "
        how = rng.choice(["dim", "dim", "dims", "dtype", "raw_cut", "raw_grow", "raw_clear", "float_data",
                          "external", "external", "dup", "remove"])
        if how == "dim" and len(t.dims):
            k = rng.randrange(len(t.dims))
            t.dims[k] = rng.choice([d for d in HUGE_DIMS if -(1 << 63) <= d < (1 << 63)])
            desc += f"dims -> {list(t.dims)}"
        elif how == "dims":
            t.dims[:] = rng.choice([[], [1], list(t.dims) + [1], [10 * GiB // 4]])
            desc += f"dims -> {list(t.dims)}"
        elif how == "dtype":
            t.data_type = rng.choice([0, 2, 6, 7, 10, 11, 16, 17, 23, 99])
            desc += f"data_type -> {t.data_type}"
        elif how == "raw_cut":
            t.raw_data = t.raw_data[: rng.randrange(len(t.raw_data) + 1)]
            desc += "raw_data truncated"
        elif how == "raw_grow":
            t.raw_data = t.raw_data + bytes(rng.choice([1, 4, 4096]))
            desc += "raw_data extended"
        elif how == "raw_clear":
            t.raw_data = b""
            desc += "raw_data cleared"
        elif how == "float_data":
            t.raw_data = b""
            t.float_data.extend([1.0] * rng.choice([1, 3]))
            desc += "values moved to a short float_data"
        elif how == "external":
            t.raw_data = b""
            t.data_location = onnx.TensorProto.EXTERNAL
            loc = rng.choice(["missing.bin", "/dev/zero", "../../../etc/hostname", "input" + ctx.ext, "/proc/self/mem"])
            entries = {"location": loc}
            if rng.random() < 0.7:
                entries["offset"] = str(rng.choice([0, 8, 1 << 40, -1]))
            if rng.random() < 0.7:
                entries["length"] = str(rng.choice([4, 10 * GiB, 1 << 62, 0]))
            for k, v in entries.items():
                e = t.external_data.add()
                e.key, e.value = k, v
            desc += f"external data {entries}"
        elif how == "dup":
            g.initializer.add().CopyFrom(t)
            desc += "duplicated"
        else:
            g.initializer.remove(t)
            desc += "removed"
    elif r < 0.75:
        node = rng.choice(list(g.node))
        desc = f"node {node.name!r} ({node.op_type}): "
        how = rng.randrange(6)
        if how == 0:
            node.op_type = rng.choice(["Conv", "BatchNormalization", "Clip", "Relu", "Gemm", "Identity", "If",
                                       "Loop", "", "Pad", "Transpose"])
            desc += f"op_type -> {node.op_type!r}"
        elif how == 1 and node.input:
            k = rng.randrange(len(node.input))
            node.input[k] = rng.choice(["", "missing", node.output[0] if node.output else "x",
                                        rng.choice(list(g.node)).output[0]])
            desc += f"input {k} -> {node.input[k]!r}"
        elif how == 2 and node.attribute:
            a = rng.choice(list(node.attribute))
            if a.ints:
                a.ints[:] = rng.choice([[], [1], [0, 0], [1, 1, 1, 1, 1], [-1, -1, -1, -1], [1 << 40, 1, 1, 1]])
                desc += f"attribute {a.name} -> {list(a.ints)}"
            elif a.type == onnx.AttributeProto.INT:
                a.i = rng.choice([0, -1, 1 << 40, 2, 1000])
                desc += f"attribute {a.name} -> {a.i}"
            elif a.type == onnx.AttributeProto.FLOAT:
                a.f = rng.choice([float("nan"), -1.0, float("inf"), 0.0])
                desc += f"attribute {a.name} -> {a.f}"
            else:
                a.type = rng.choice([onnx.AttributeProto.STRING, onnx.AttributeProto.GRAPH, 99])
                desc += f"attribute {a.name} type -> {a.type}"
        elif how == 3:
            g.node.remove(node)
            desc += "removed"
        elif how == 4:
            g.node.add().CopyFrom(node)
            desc += "duplicated"
        else:
            node.domain = rng.choice(["com.microsoft", "ai.onnx.ml", "x"])
            desc += f"domain -> {node.domain}"
    elif r < 0.85:
        vi = rng.choice(list(g.input) + list(g.output))
        dims = vi.type.tensor_type.shape.dim
        how = rng.randrange(3)
        if how == 0 and len(dims):
            d = rng.choice(list(dims))
            d.dim_value = rng.choice([0, 1, 5, 1 << 40, -3])
            desc = f"value {vi.name!r}: a dim -> {d.dim_value}"
        elif how == 1:
            vi.type.tensor_type.elem_type = rng.choice([0, 7, 10, 16, 99])
            desc = f"value {vi.name!r}: elem_type -> {vi.type.tensor_type.elem_type}"
        else:
            vi.name = rng.choice(["", "other", g.node[0].output[0] if g.node else "x"])
            desc = f"graph input/output renamed to {vi.name!r}"
    elif r < 0.95 and len(m.metadata_props):
        p = rng.choice(list(m.metadata_props))
        try:
            value = json.loads(p.value)
        except ValueError:
            value = p.value
        value, what = mutate_json(value, rng)
        p.value = dump_json(value)
        desc = f"metadata {p.key!r}: {what}"
    else:
        if m.opset_import:
            m.opset_import[0].version = rng.choice([1, 6, 10, 99, 1 << 40])
            desc = f"opset -> {m.opset_import[0].version}"
        else:  # pragma: no cover
            desc = "no opset"
    return m.SerializeToString(), "ONNX: " + desc


def pick_mutator(weighted: Sequence[Tuple[Mutator, float]], rng: random.Random) -> Mutator:
    total = sum(w for _, w in weighted)
    x = rng.random() * total
    for fn, w in weighted:
        x -= w
        if x < 0:
            return fn
    return weighted[-1][0]


def mutate(data: bytes, rng: random.Random, ctx: Context,
           structured: Sequence[Tuple[Mutator, float]]) -> Tuple[bytes, List[str]]:
    """Apply one format-aware edit (half the time, if the format has any) and/or 1-3 byte mutations."""
    steps: List[str] = []
    use_struct = bool(structured) and rng.random() < 0.5
    if use_struct:
        data, what = pick_mutator(structured, rng)(data, rng, ctx)
        steps.append(what)
        n_bytes = 1 if rng.random() < 0.2 else 0
    else:
        n_bytes = rng.choice([1, 1, 1, 2, 3])
    for _ in range(n_bytes):
        data, what = pick_mutator(BYTE_MUTATORS, rng)(data, rng, ctx)
        steps.append(what)
    return data, steps


__all__ = ["Context", "mutate", "BYTE_MUTATORS", "safetensors_edit", "graphdef_edit", "hdf5_edit",
           "keras_archive_edit", "zip_central_edit", "torch_zip_edit", "torch_legacy_edit", "onnx_edit",
           "mutate_json", "pickle_edit_bytes"]
