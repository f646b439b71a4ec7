"""Import a PyTorch state dict of timm's MobileNetV1 (``mobilenetv1_100``, ``mobilenetv1_125``, ...).

timm builds MobileNetV1 as an ``EfficientNet`` (``timm.models.efficientnet._gen_mobilenet_v1``):
a 3x3 stride-2 stem, then five stages of ``DepthwiseSeparableConv`` blocks with 1, 2, 2, 6 and 2
blocks, global average pooling and a ``Linear`` classifier. ``model.state_dict()`` (timm 1.0)
names its tensors::

    conv_stem.weight                       [C0, 3, 3, 3]      OIHW
    bn1.{weight,bias,running_mean,running_var,num_batches_tracked}
    blocks.{s}.{b}.conv_dw.weight          [C, 1, 3, 3]       depthwise, groups = C
    blocks.{s}.{b}.bn1.*                   [C]
    blocks.{s}.{b}.conv_pw.weight          [Cout, Cin, 1, 1]
    blocks.{s}.{b}.bn2.*                   [Cout]
    classifier.{weight,bias}               [N, C], [N]        absent when num_classes = 0

and this module maps them onto the canonical tensors of :mod:`mobilenet_fast.weights`: stage ``s``
block ``b`` is our block ``sum(depths[:s]) + b`` (0..12); ``conv_stem`` OIHW -> HWIO,
``conv_dw`` -> [3, 3, C], ``conv_pw`` -> [Cin, Cout], ``classifier.weight`` [N, C] -> [C, N];
BatchNorm ``weight``/``bias``/``running_mean``/``running_var`` -> ``gamma``/``beta``/``mean``/
``var`` (``num_batches_tracked`` is a training counter and is ignored). A state dict without
``classifier.*`` (a model created with ``num_classes=0``) becomes a feature extractor.

Width: timm scales every channel count ``c`` by ``channel_multiplier`` and rounds it to a multiple
of 8 (``round_channels`` -> ``make_divisible(c * m, 8)``: nearest multiple, never more than 10%
below, at least 8), while mobilenet-fast uses ``int(c * alpha)`` (the Keras/TF-slim rule). The two
agree whenever every ``c * alpha`` is a multiple of 8, i.e. alpha a multiple of 0.25 (0.25, 0.5,
0.75, 1.0 = ``mobilenetv1_100``, 1.25 = ``mobilenetv1_125``, ...); alpha is read from the channel
counts, and a state dict whose widths only timm's rounding produces (e.g. multiplier 0.35:
16, 24, 48, 88, ...) is refused with an error naming the first layer that differs.

What a state dict does not store, and what we assume (each can be overridden by a keyword):

* padding: timm's default ``pad_type=''`` is PyTorch ``padding=1`` on every side -> our
  ``symmetric`` convention. A model created with ``pad_type='same'`` has the same tensors but
  pads like TensorFlow: import it with ``padding="tf_same"``;
* BatchNorm epsilon: ``nn.BatchNorm2d``'s default 1e-5 (timm's ``bn_eps`` argument changes it);
* activation: ReLU6 (``_gen_mobilenet_v1`` resolves ``act_layer`` to ``relu6``); a model created
  with ``act_layer='relu'`` is imported with ``activation="relu"``;
* input normalisation: the ``pretrained_cfg`` of timm's ``mobilenetv1_100``, ``mobilenetv1_100h``
  and ``mobilenetv1_125`` (``ra4_e3600_r224_in1k``) uses ``IMAGENET_INCEPTION_MEAN``/``_STD``
  = (0.5, 0.5, 0.5), i.e. ``(x - 127.5) / 127.5`` on 0..255 pixels -- *not* the (0.485, 0.456,
  0.406) / (0.229, 0.224, 0.225) ImageNet statistics of most other timm models. Pass
  ``input_mean``/``input_std`` (0..255 scale) for weights trained with other statistics, e.g.
  :data:`IMAGENET_MEAN` / :data:`IMAGENET_STD`;
* resolution: 224x224 (the ``input_size`` of those configs).

Files: ``.pth``/``.pt``/``.bin`` pickles written by ``torch.save`` need PyTorch and are always
read with ``torch.load(path, map_location="cpu", weights_only=True)``, so a pickle that would
build arbitrary Python objects is refused instead of executed. ``.safetensors`` files (e.g.
``safetensors.torch.save_file(model.state_dict(), path)``) are read with ``safetensors.numpy``
and need no PyTorch. The file's content decides which reader is used, not its extension. Accepted
as well: a training checkpoint dict holding the state dict under ``state_dict_ema``/``model_ema``
(preferred, as timm's ``load_state_dict(use_ema=True)`` does; ``use_ema=False`` skips them),
``state_dict`` or ``model``, and keys prefixed by ``module.`` (DataParallel/DDP) or ``_orig_mod.``
(``torch.compile``). Tensors may be float32, float16, bfloat16 or float64 (converted to float32);
any other dtype, an unknown key (e.g. ``conv_head.weight`` of ``mobilenetv1_100h`` or of another
MobileNet), a missing key or a wrong shape is an :class:`ImportFormatError` naming the key.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from ..architecture import ACTIVATIONS, BLOCK_CONFIG, MAX_ALPHA, PADDING_CONVENTIONS, STEM_CHANNELS, MobileNetV1
from ..errors import ImportFormatError, InputError, MissingDependencyError, WeightFileError
from ..weights import FORMAT_NAME, ModelConfig, WeightSet, check_rgb, expected_shapes, file_sha256
from ._common import checked_labels, checked_path

__all__ = [
    "import_torch",
    "timm_key_map",
    "timm_round_channels",
    "STAGE_DEPTHS",
    "DEFAULT_BN_EPSILON",
    "DEFAULT_RESOLUTION",
    "INPUT_MEAN",
    "INPUT_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]

PathLike = Union[str, "os.PathLike[str]"]

#: Blocks per stage of timm's ``_gen_mobilenet_v1`` (``dsa_r1``, ``r2``, ``r2``, ``r6``, ``r2``).
STAGE_DEPTHS: Tuple[int, ...] = (1, 2, 2, 6, 2)
#: ``nn.BatchNorm2d``'s default eps, which timm uses unless ``bn_eps`` is given.
DEFAULT_BN_EPSILON = 1e-5
#: ``input_size`` of timm's mobilenetv1 pretrained configs.
DEFAULT_RESOLUTION = 224
#: timm's mobilenetv1 configs normalise with IMAGENET_INCEPTION_MEAN/STD = 0.5, on 0..255 pixels.
INPUT_MEAN = (127.5, 127.5, 127.5)
INPUT_STD = (127.5, 127.5, 127.5)
#: The usual ImageNet statistics (timm's IMAGENET_DEFAULT_MEAN/STD) on 0..255 pixels, for weights
#: trained with them (pass as ``input_mean``/``input_std``).
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)

#: Wrapper keys of training checkpoints, in the order timm's ``load_state_dict`` tries them
#: (the first two only with ``use_ema``).
_EMA_KEYS = ("state_dict_ema", "model_ema")
_PLAIN_KEYS = ("state_dict", "model")
#: Key prefixes added by DataParallel/DDP and torch.compile.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_BN_FIELDS = (("weight", "gamma"), ("bias", "beta"), ("running_mean", "mean"), ("running_var", "var"))
_BN_COUNTER = "num_batches_tracked"
_FLOAT_DTYPES = ("float32", "float16", "bfloat16", "float64")
# Headers larger than this are not safetensors files (the safetensors library's own limit).
_MAX_HEADER = 100 << 20

assert sum(STAGE_DEPTHS) == len(BLOCK_CONFIG)


def timm_round_channels(channels: int, multiplier: float, divisor: int = 8) -> int:
    """Channel count timm gives a layer of ``channels`` at ``channel_multiplier`` = ``multiplier``.

    timm's rule (``round_channels`` / ``make_divisible`` with ``round_limit`` 0.9): round
    ``channels * multiplier`` to the nearest multiple of ``divisor`` (halves up), at least
    ``divisor``, and one more step up if that lost more than 10%.
    """
    scaled = channels * multiplier
    rounded = max(divisor, (int(scaled + divisor / 2) // divisor) * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def _block_prefixes() -> List[str]:
    """timm module prefix of our blocks 0..12: ``blocks.{stage}.{index in stage}``."""
    return [f"blocks.{s}.{b}" for s, depth in enumerate(STAGE_DEPTHS) for b in range(depth)]


def timm_key_map(classifier: bool = True) -> Dict[str, Tuple[str, str]]:
    """timm state-dict key -> (canonical tensor name, layout) in network order.

    ``layout`` is one of ``oihw`` (stem), ``dw`` (depthwise [C,1,3,3]), ``pw`` ([Cout,Cin,1,1]),
    ``linear`` ([N, C]) or ``vector``. ``num_batches_tracked`` counters are not listed.
    """
    out: Dict[str, Tuple[str, str]] = {"conv_stem.weight": ("stem.conv.weight", "oihw")}

    def bn(theirs: str, ours: str) -> None:
        for t_field, o_field in _BN_FIELDS:
            out[f"{theirs}.{t_field}"] = (f"{ours}.bn.{o_field}", "vector")

    bn("bn1", "stem")
    for i, prefix in enumerate(_block_prefixes()):
        out[f"{prefix}.conv_dw.weight"] = (f"blocks.{i}.dw.weight", "dw")
        bn(f"{prefix}.bn1", f"blocks.{i}.dw")
        out[f"{prefix}.conv_pw.weight"] = (f"blocks.{i}.pw.weight", "pw")
        bn(f"{prefix}.bn2", f"blocks.{i}.pw")
    if classifier:
        out["classifier.weight"] = ("classifier.weight", "linear")
        out["classifier.bias"] = ("classifier.bias", "vector")
    return out


def _counter_keys() -> List[str]:
    bns = ["bn1"] + [f"{p}.{bn}" for p in _block_prefixes() for bn in ("bn1", "bn2")]
    return [f"{b}.{_BN_COUNTER}" for b in bns]


# -- reading the file ------------------------------------------------------------------------------

class _Entry(NamedTuple):
    """One stored tensor: its dtype (torch-style name, e.g. ``float32``), shape and a loader."""

    dtype: str
    shape: Tuple[int, ...]
    load: Callable[[], np.ndarray]


_ST_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64", "F8_E4M3": "float8_e4m3fn",
              "F8_E5M2": "float8_e5m2", "I8": "int8", "U8": "uint8", "I16": "int16", "U16": "uint16",
              "I32": "int32", "U32": "uint32", "I64": "int64", "U64": "uint64", "BOOL": "bool"}


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    """A safetensors file starts with a little-endian u64 header length, then a JSON object."""
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return 2 <= n <= size - 8 and head[8:9] == b"{"


def _read_safetensors(p: str, where: str, size: int) -> Tuple[Dict[str, _Entry], Dict[str, str]]:
    """Tensor entries and metadata of a safetensors file (data read lazily, without torch)."""
    from safetensors import SafetensorError, safe_open

    with open(p, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if size < 8 or n > size - 8:
            raise ImportFormatError(f"{where}: safetensors header declares {n} bytes but the file has "
                                    f"{max(size - 8, 0)} after the length field (truncated or not a "
                                    "safetensors file)")
        if n > _MAX_HEADER:
            raise ImportFormatError(f"{where}: safetensors header of {n} bytes is larger than the "
                                    f"{_MAX_HEADER >> 20} MiB limit")
        raw_header = f.read(n)
    try:
        header = json.loads(raw_header)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise ImportFormatError(f"{where}: safetensors header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise ImportFormatError(f"{where}: safetensors header is not a JSON object")
    data_start = 8 + n
    try:
        handle = safe_open(p, framework="numpy")  # validates every offset against the file size
    except SafetensorError as e:
        raise ImportFormatError(f"{where}: not a valid safetensors file; truncated or corrupt ({e})") from None
    except (OSError, ValueError) as e:
        raise ImportFormatError(f"{where}: could not be read as safetensors ({type(e).__name__}: {e})") from None

    entries: Dict[str, _Entry] = {}
    with handle as st:
        meta = st.metadata() or {}
        for name in st.keys():
            sl = st.get_slice(name)
            st_dtype = sl.get_dtype()
            dtype = _ST_DTYPES.get(st_dtype, st_dtype)
            shape = tuple(int(d) for d in sl.get_shape())
            if st_dtype == "BF16":
                info = header.get(name)
                begin, end = (info or {}).get("data_offsets", (0, 0))
                entries[name] = _Entry(dtype, shape, _bf16_loader(p, where, name, data_start + int(begin),
                                                                  int(end) - int(begin), shape))
            else:
                entries[name] = _Entry(dtype, shape, _st_loader(p, where, name))
    return entries, dict(meta)


def _st_loader(p: str, where: str, name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(p, framework="numpy") as st:
                return np.asarray(st.get_tensor(name))
        except (SafetensorError, OSError, ValueError, TypeError) as e:
            raise ImportFormatError(f"{where}: tensor {name!r} could not be read ({type(e).__name__}: {e})") from None
    return load


def _bf16_loader(p: str, where: str, name: str, offset: int, nbytes: int,
                 shape: Tuple[int, ...]) -> Callable[[], np.ndarray]:
    """numpy has no bfloat16: read the raw 16-bit words and widen them (bfloat16 = top half of a float32)."""
    def load() -> np.ndarray:
        count = math.prod(shape)
        if nbytes != 2 * count:
            raise ImportFormatError(f"{where}: tensor {name!r} holds {nbytes} bytes, but bfloat16 shape "
                                    f"{list(shape)} needs {2 * count}")
        with open(p, "rb") as f:
            f.seek(offset)
            data = f.read(nbytes)
        if len(data) != nbytes:
            raise ImportFormatError(f"{where}: tensor {name!r} is cut off by the end of the file")
        words = np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16
        return words.view(np.float32).reshape(shape)
    return load


def _load_torch() -> Any:
    try:
        import torch
    except ImportError as e:
        raise MissingDependencyError(
            f"reading PyTorch .pth/.pt/.bin pickles needs PyTorch ({e}); install it with: pip install torch "
            '(or pip install "mobilenet-fast[torch]"), or save the state dict with safetensors.torch.save_file, '
            "which mobilenet-fast reads without torch"
        ) from None
    return torch


def _weights_only_refusal(message: str) -> Optional[str]:
    """What the weights-only unpickler refused to build (``GLOBAL __main__.Foo``...), if it refused an
    object rather than choking on bytes that are no pickle at all."""
    m = re.search(r"GLOBAL\s+([\w.]+)", message)
    if m:
        return f"GLOBAL {m.group(1)}"
    for marker in ("Unsupported class", "Can only build"):
        at = message.find(marker)
        if at >= 0:
            return " ".join(message[at:].split("\n", 1)[0].split())[:160]
    return None


#: ``torch.save``'s legacy (pre-1.6, ``_use_new_zipfile_serialization=False``) files start with this
#: number, pickled, then the protocol version, system info, the object and its storage keys.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_ZIP_SIGNATURE = b"PK\x03\x04"
#: Bytes per element of the legacy storage classes (``torch.FloatStorage``...); unknown ones count 16.
_STORAGE_ITEMSIZE = {"Double": 8, "Float": 4, "Half": 2, "BFloat16": 2, "Long": 8, "Int": 4, "Short": 2, "Char": 1,
                     "Byte": 1, "Bool": 1, "ComplexFloat": 8, "ComplexDouble": 16, "Untyped": 1}
#: A zip member may inflate to at most this many times its stored size (float weights compress far less).
_MAX_COMPRESSION = 1000


class _ScanStub:
    """Stands for any object while scanning a pickle: accepts every call, item, append and state."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


class _ScanStorage(_ScanStub):
    """A storage as the scanned pickle declares it: key and element count."""

    def __init__(self, key: str, numel: int) -> None:
        self.key, self.numel = key, numel


def _check_view(storage: Any, offset: Any, size: Any, stride: Any, *rest: Any) -> _ScanStub:
    """Scan-time ``torch._utils._rebuild_tensor(_v2)``: the tensor must lie inside its storage (else
    ``set_`` grows a legacy file's storage to whatever the sizes and strides reach)."""
    if isinstance(storage, _ScanStorage):
        ints = [offset, *size, *stride] if isinstance(size, tuple) and isinstance(stride, tuple) else [None]
        if (not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ints)
                or len(size) != len(stride)):
            raise ValueError(f"tensor of storage {storage.key!r} has offset {offset!r}, size {size!r}, "
                             f"stride {stride!r}")
        if all(n > 0 for n in size):
            needed = offset + sum((n - 1) * st for n, st in zip(size, stride)) + 1
            if needed > storage.numel:
                raise ValueError(f"a tensor with size {list(size)} and stride {list(stride)} needs {needed:,} "
                                 f"elements of storage {storage.key!r}, which holds {storage.numel:,}")
    return _ScanStub()


def _scan_pickles(data: bytes, count: int) -> Tuple[Dict[str, int], List[Any], int]:
    """Read ``count`` pickles from ``data`` without importing or executing anything.

    Every global is an inert stub class (except that ``torch._utils._rebuild_tensor(_v2)`` checks its
    tensor against its storage); persistent ids ``("storage", type, key, location, numel, ...)`` are
    recorded. Returns storage key -> bytes declared, the unpickled values (stubs inside) and where
    the data after them starts. Raises ValueError (or the unpickler's errors) for damaged pickles.
    The pure-Python unpickler is used on purpose: its memo is a dict, while the C one allocates an
    array as long as the largest memo index a file names.
    """
    import io
    import pickle

    storages: Dict[str, int] = {}

    class Scanner(pickle._Unpickler):  # type: ignore[name-defined, misc, unused-ignore]
        def find_class(self, module: str, name: str) -> Any:
            if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
                return _check_view
            return type(name, (_ScanStub,), {"torch_name": f"{module}.{name}"})

        def persistent_load(self, pid: Any) -> Any:
            if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] in ("storage", b"storage")):
                return _ScanStub()
            kind, key, numel = pid[1], str(pid[2]), pid[4]
            if isinstance(numel, bool) or not isinstance(numel, int) or numel < 0:
                raise ValueError(f"storage {key!r} declares {numel!r} elements")
            name = str(getattr(kind, "torch_name", "")).rsplit(".", 1)[-1]
            itemsize = _STORAGE_ITEMSIZE.get(name[: -len("Storage")] if name.endswith("Storage") else name, 16)
            storages[key] = max(storages.get(key, 0), numel * itemsize)
            return _ScanStorage(key, numel)

    f = io.BytesIO(data)  # from memory: a declared string length can only be as long as the file
    values = [Scanner(f).load() for _ in range(count)]
    return storages, values, f.tell()


def _check_container(p: str, where: str, size: int) -> None:
    """Refuse a ``torch.save`` file that would make ``torch.load`` allocate more than the file holds.

    ``torch.load`` allocates a zip record's declared size before reading it, each storage of a
    legacy file with the element count its pickle declares before reading the data, and grows a
    legacy storage to whatever a tensor's sizes and strides reach; a damaged or crafted file can
    declare gigabytes in a few bytes. So the declarations are checked first, without unpickling
    anything real (:func:`_scan_pickles`): every zip member must fit in the archive (and inflate at
    most 1000-fold); a legacy file's storages must fit in the bytes after its pickles; every tensor
    must lie inside its storage.
    """
    import tarfile
    import zipfile

    with open(p, "rb") as f:
        head = f.read(4)
    if head == _ZIP_SIGNATURE:
        try:
            with zipfile.ZipFile(p) as zf:
                infos = zf.infolist()
                for info in infos:
                    if (info.compress_size > size
                            or info.file_size > _MAX_COMPRESSION * info.compress_size + (1 << 20)
                            or (info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size)):
                        raise ImportFormatError(f"{where}: archive member {info.filename!r} declares {info.file_size} "
                                                f"bytes ({info.compress_size} stored) in a {size}-byte file; the file "
                                                "is corrupt")
                pkl = [i for i in infos if i.filename == "data.pkl" or i.filename.endswith("/data.pkl")]
                data = zf.read(pkl[0]) if len(pkl) == 1 else None
        except Exception as e:  # noqa: BLE001 - BadZipFile, zlib.error, lzma.LZMAError, EOFError...: all damage
            if isinstance(e, ImportFormatError):
                raise
            raise ImportFormatError(f"{where}: not a readable torch.save zip archive; the file is truncated or "
                                    f"corrupt ({type(e).__name__}: {e})") from None
        if data is None:
            return  # torch.load explains what is missing
        count = 1
    else:
        with open(p, "rb") as f:
            data = f.read()
        count = 5  # magic number, protocol version, system info, the object, its storage keys
    try:
        storages, values, start = _scan_pickles(data, count)
        if count == 5 and values[0] != _LEGACY_MAGIC:
            raise ValueError("no torch.save magic number at the start")
    except Exception as e:  # noqa: BLE001 - any failure of the scan: not a torch.save file we can read
        detail = f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
        if count == 1:
            raise ImportFormatError(f"{where}: not a valid PyTorch checkpoint; the archive's data.pkl is damaged "
                                    f"({detail})") from None
        raise ImportFormatError(f"{where}: not a PyTorch checkpoint; neither a torch.save zip archive nor a "
                                f"readable legacy torch.save pickle ({detail})") from None
    if count == 1:
        return  # torch checks every record's size against its declared element count before using it
    declared = sum(storages.values())
    if declared > size - start:
        raise ImportFormatError(f"{where}: the pickle declares {declared:,} bytes of tensor data in "
                                f"{len(storages)} storage(s) but only {size - start:,} bytes follow it; the file "
                                "is truncated or corrupt")
    try:
        is_tar = tarfile.is_tarfile(p)
    except (OSError, ValueError, EOFError):
        is_tar = False
    if is_tar:  # torch.load would try its pre-0.4 tar reader first
        raise ImportFormatError(f"{where}: also parses as a tar archive (PyTorch's pre-0.4 format), which is "
                                "not supported")


def _read_pickle(p: str, where: str, size: int) -> Any:
    """``torch.load`` with ``weights_only=True`` (after :func:`_check_container`); every failure becomes
    an :class:`ImportFormatError`."""
    torch = _load_torch()
    import pickle

    _check_container(p, where, size)
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e)
        refused = _weights_only_refusal(msg)
        if refused is not None:
            raise ImportFormatError(
                f"{where}: the file contains arbitrary Python objects ({refused}) and was refused: "
                "mobilenet-fast only loads pickles with torch.load(weights_only=True), which allows tensors "
                "and plain containers. Save model.state_dict() (or use safetensors) instead") from None
        detail = msg.split("WeightsUnpickler error:", 1)[-1].split("Check the documentation", 1)[0]
        detail = " ".join(detail.split())[:200]
        raise ImportFormatError(f"{where}: not a PyTorch checkpoint; torch.load(weights_only=True) could not "
                                f"unpickle it ({detail or type(e).__name__})") from None
    except Exception as e:  # noqa: BLE001 - torch.load raises all sorts (AssertionError, struct.error...) on damage
        detail = " ".join(str(e).split())[:200]
        raise ImportFormatError(f"{where}: not a valid PyTorch checkpoint; the file is truncated or corrupt "
                                f"({type(e).__name__}: {detail or 'unexpected end of file'})") from None


def _torch_entries(state: Mapping[str, Any], where: str) -> Dict[str, _Entry]:
    import torch

    entries: Dict[str, _Entry] = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise ImportFormatError(f"{where}: state dict key {key!r} is not a string")
        if not isinstance(value, torch.Tensor):
            raise ImportFormatError(f"{where}: entry {key!r} is a {type(value).__name__}, not a tensor; "
                                    "expected a state dict of tensors")
        if value.layout != torch.strided:
            raise ImportFormatError(f"{where}: tensor {key!r} has layout {value.layout}; only dense tensors "
                                    "can be imported")
        dtype = str(value.dtype).replace("torch.", "")

        def load(t: Any = value, key: str = key) -> np.ndarray:
            t = t.detach()
            if t.dtype != torch.float32:
                t = t.to(torch.float32)  # float16/bfloat16/float64; other dtypes are refused earlier
            arr: np.ndarray = t.contiguous().numpy()
            return arr

        entries[key] = _Entry(dtype, tuple(int(d) for d in value.shape), load)
    return entries


def _unwrap(obj: Any, where: str, use_ema: bool) -> Tuple[Mapping[str, Any], Optional[str]]:
    """The state dict inside a torch.load result (a checkpoint dict may wrap it) and its wrapper key."""
    if not isinstance(obj, Mapping):
        raise ImportFormatError(f"{where}: holds a {type(obj).__name__}, not a state dict (a dict of tensors); "
                                "save model.state_dict()")
    for key in (_EMA_KEYS if use_ema else ()) + _PLAIN_KEYS:
        inner = obj.get(key)
        if inner is not None:
            if not isinstance(inner, Mapping):
                raise ImportFormatError(f"{where}: checkpoint entry {key!r} is a {type(inner).__name__}, "
                                        "not a state dict")
            return inner, key
    return obj, None


def _strip_prefixes(entries: Dict[str, _Entry]) -> Tuple[Dict[str, _Entry], List[str]]:
    """Remove ``module.`` / ``_orig_mod.`` prefixes shared by every key (any order, any nesting)."""
    removed: List[str] = []
    changed = True
    while changed and entries:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in entries):
                entries, changed = {k[len(prefix):]: v for k, v in entries.items()}, True
                removed.append(prefix)
    return entries, removed


# -- mapping ---------------------------------------------------------------------------------------

def _check_keys(entries: Mapping[str, _Entry], where: str) -> bool:
    """Every key known and none missing; returns whether the classifier is present."""
    if not entries:
        raise ImportFormatError(f"{where}: the state dict is empty")
    if "stem.conv.weight" in entries:
        raise ImportFormatError(f"{where}: this is a {FORMAT_NAME} weight file without its metadata "
                                "(canonical tensor names), not a timm state dict")
    known = set(timm_key_map(True)) | set(_counter_keys())
    for key in entries:
        if key not in known:
            hint = ""
            if key.startswith(("conv_head.", "bn2.")):
                hint = (" (a head convolution, as in timm's mobilenetv1_100h or MobileNetV2/V3; "
                        "MobileNetV1 pools the last block's output directly)")
            elif key.startswith("blocks."):
                hint = (f" (timm's MobileNetV1 has stages of {', '.join(map(str, STAGE_DEPTHS))} "
                        "DepthwiseSeparableConv blocks with conv_dw, bn1, conv_pw, bn2)")
            raise ImportFormatError(f"{where}: unexpected key {key!r}{hint}; not a timm mobilenetv1 state dict")
    has_classifier = "classifier.weight" in entries or "classifier.bias" in entries
    for key in timm_key_map(has_classifier):
        if key not in entries:
            raise ImportFormatError(f"{where}: missing key {key!r}; not a complete timm mobilenetv1 state dict")
    return has_classifier


def _check_dtype(key: str, entry: _Entry, where: str) -> None:
    if entry.dtype not in _FLOAT_DTYPES:
        raise ImportFormatError(f"{where}: tensor {key!r} has dtype {entry.dtype}; expected float32 "
                                "(float16, bfloat16 and float64 are converted)")


def _infer_alpha(entries: Mapping[str, _Entry], where: str) -> float:
    """alpha from the channel counts (stem / 32, else last block / 1024), checked against int(c*alpha)."""
    stem = entries["conv_stem.weight"].shape
    pws = [(f"{p}.conv_pw.weight", entries[f"{p}.conv_pw.weight"].shape) for p in _block_prefixes()]
    if len(stem) != 4 or stem[0] < 1 or any(len(s) != 4 for _, s in pws):
        bad = "conv_stem.weight" if len(stem) != 4 or stem[0] < 1 else next(k for k, s in pws if len(s) != 4)
        raise ImportFormatError(f"{where}: tensor {bad!r} has shape {list(entries[bad].shape)}; expected a 4-D "
                                "OIHW convolution weight")
    stem_c = int(stem[0])
    if stem_c / STEM_CHANNELS > MAX_ALPHA:  # a zero-size tensor may declare any other dimension
        raise ImportFormatError(f"{where}: tensor 'conv_stem.weight' has {stem_c} output channels (shape "
                                f"{list(stem)}), more than any MobileNetV1 (alpha at most {MAX_ALPHA:g})")
    outs = [int(s[0]) for _, s in pws]
    observed = [stem_c] + outs
    for alpha in (stem_c / STEM_CHANNELS, outs[-1] / BLOCK_CONFIG[-1][0]):
        if 0 < alpha <= MAX_ALPHA:
            arch = MobileNetV1(alpha, DEFAULT_RESOLUTION, 0)
            if [arch.stem_channels] + arch.block_channels == observed:
                return alpha
    names = ["conv_stem.weight"] + [k for k, _ in pws]
    base = [STEM_CHANNELS] + [c for c, _ in BLOCK_CONFIG]
    multiplier = _timm_multiplier(observed)
    if multiplier is not None:
        # timm's rounding made these widths; name the first layer where int(c * alpha) differs.
        i = next(j for j, (c, o) in enumerate(zip(base, observed)) if int(c * multiplier) != o)
        raise ImportFormatError(
            f"{where}: tensor {names[i]!r} has {observed[i]} output channels, timm's width for channel_multiplier="
            f"{multiplier:g} ({base[i]} * {multiplier:g} = {base[i] * multiplier:g} rounded to a multiple of 8), "
            f"while mobilenet-fast builds int({base[i]} * {multiplier:g}) = {int(base[i] * multiplier)} channels; only "
            "multipliers where every c * alpha is a multiple of 8 (0.25, 0.5, 0.75, 1.0, 1.25, ...) can be imported")
    from_last = outs[-1] / BLOCK_CONFIG[-1][0]
    if 0 < from_last <= MAX_ALPHA and MobileNetV1(from_last, DEFAULT_RESOLUTION, 0).block_channels == outs:
        alpha, note = from_last, f"from the {outs[-1]} channels of the last block"  # only the stem is off
    else:
        alpha, note = stem_c / STEM_CHANNELS, f"from the {stem_c} channels of conv_stem"
    arch = MobileNetV1(alpha, DEFAULT_RESOLUTION, 0)
    expected = [arch.stem_channels] + arch.block_channels
    i = next(j for j, (a, b) in enumerate(zip(observed, expected)) if a != b)
    raise ImportFormatError(f"{where}: tensor {names[i]!r} has {observed[i]} output channels, expected "
                            f"{expected[i]} = int({base[i]} * {alpha:g}) for a MobileNetV1 with alpha={alpha:g} "
                            f"({note})")


def _timm_multiplier(observed: Sequence[int]) -> Optional[float]:
    """A channel_multiplier for which timm builds the widths ``observed`` (stem, 13 blocks), or None.

    Tries multipliers with 2 decimals (up to 4), then last-block width / 1024, then 3 decimals.
    """
    base = [STEM_CHANNELS] + [c for c, _ in BLOCK_CONFIG]
    candidates = [k / 100 for k in range(1, 401)] + [observed[-1] / base[-1]] + [k / 1000 for k in range(1, 4001)]
    for m in candidates:
        if m > 0 and all(timm_round_channels(c, m) == o for c, o in zip(base, observed)):
            return m
    return None


def _timm_shape(layout: str, canonical_shape: Tuple[int, ...]) -> Tuple[int, ...]:
    """The shape timm stores for a canonical tensor of ``canonical_shape``."""
    if layout == "oihw":
        kh, kw, ci, co = canonical_shape
        return (co, ci, kh, kw)
    if layout == "dw":
        kh, kw, c = canonical_shape
        return (c, 1, kh, kw)
    if layout == "pw":
        ci, co = canonical_shape
        return (co, ci, 1, 1)
    if layout == "linear":
        c, n = canonical_shape
        return (n, c)
    return canonical_shape


def _to_canonical(layout: str, arr: np.ndarray) -> np.ndarray:
    if layout == "oihw":
        arr = arr.transpose(2, 3, 1, 0)
    elif layout == "dw":
        arr = arr[:, 0].transpose(1, 2, 0)
    elif layout == "pw":
        arr = arr[:, :, 0, 0].T
    elif layout == "linear":
        arr = arr.T
    return np.ascontiguousarray(arr, dtype=np.float32)


def _rgb(values: Any, what: str) -> Tuple[float, float, float]:
    return check_rgb(values, what)


def import_torch(path: PathLike, *, resolution: Union[int, Tuple[int, int], None] = None,
                 padding: str = "symmetric", activation: str = "relu6", bn_epsilon: float = DEFAULT_BN_EPSILON,
                 input_mean: Optional[Sequence[float]] = None, input_std: Optional[Sequence[float]] = None,
                 use_ema: bool = True, labels: Optional[Sequence[str]] = None,
                 source: Optional[str] = None) -> WeightSet:
    """Read a timm ``mobilenetv1_*`` state dict (``.pth``/``.pt``/``.bin`` pickle or ``.safetensors``).

    A state dict stores only tensors, so the rest of the configuration comes from the arguments,
    whose defaults are what timm's mobilenetv1 models use: ``resolution`` 224, ``padding``
    ``"symmetric"`` (``"tf_same"`` for models created with ``pad_type='same'``), ``activation``
    ``"relu6"`` (``"relu"`` for ``act_layer='relu'``), ``bn_epsilon`` 1e-5, ``input_mean``/``input_std`` :data:`INPUT_MEAN`/:data:`INPUT_STD` (127.5, on 0..255
    pixels). ``use_ema`` picks a checkpoint's EMA weights when it has them. ``labels`` (one name
    per class) is attached to the result; ``source`` replaces the default provenance string.

    Raises :class:`FileNotFoundError` if ``path`` does not exist, :class:`ImportFormatError`
    naming the offending key if the file is not a timm MobileNetV1 state dict we can map (or is a
    pickle of arbitrary Python objects, which is refused, never executed),
    :class:`MissingDependencyError` for a pickle when PyTorch is not installed, and
    :class:`InputError` for bad arguments.
    """
    p, where = checked_path(path, "PyTorch weight file", "for a Hugging Face model folder, pass its "
                                                         "model.safetensors or pytorch_model.bin")
    if padding not in PADDING_CONVENTIONS:
        raise InputError(f"padding must be one of {PADDING_CONVENTIONS}, got {padding!r}")
    if activation not in ACTIVATIONS:
        raise InputError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if isinstance(bn_epsilon, bool) or not isinstance(bn_epsilon, (int, float)) or not (
            math.isfinite(bn_epsilon) and bn_epsilon >= 0):
        raise InputError(f"bn_epsilon must be a finite number >= 0, got {bn_epsilon!r}")
    if resolution is None:
        res = (DEFAULT_RESOLUTION, DEFAULT_RESOLUTION)
    elif isinstance(resolution, int) and not isinstance(resolution, bool):
        res = (resolution, resolution)
    else:
        try:
            res = (int(resolution[0]), int(resolution[1]))  # type: ignore[index]
        except (TypeError, ValueError, IndexError):
            raise InputError(f"resolution must be an int or a (height, width) pair, got {resolution!r}") from None
    if not all(32 <= v <= 16384 for v in res):
        raise InputError(f"resolution must be 32..16384 per side, got {res[0]}x{res[1]}")

    try:
        size = os.path.getsize(p)
        with open(p, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise ImportFormatError(f"{where}: could not be read ({e})") from None
    if size == 0:
        raise ImportFormatError(f"{where}: file is empty, not a PyTorch state dict")

    notes: List[str] = []
    if _looks_like_safetensors(head, size) or p.lower().endswith(".safetensors"):
        entries, meta = _read_safetensors(p, where, size)
        if meta.get("format") == FORMAT_NAME:
            raise ImportFormatError(f"{where}: this is a {FORMAT_NAME} weight file; read it with "
                                    "mobilenet_fast.load_weights (or load_weight_set), not the torch importer")
        kind = "safetensors"
    else:
        state, wrapper = _unwrap(_read_pickle(p, where, size), where, use_ema)
        if wrapper is not None:
            notes.append(f"checkpoint key {wrapper!r}")
        entries = _torch_entries(state, where)
        kind = "torch.save pickle"
    entries, removed = _strip_prefixes(entries)
    notes += [f"{prefix!r} prefix removed" for prefix in removed]

    has_classifier = _check_keys(entries, where)
    key_map = timm_key_map(has_classifier)
    for key in key_map:
        _check_dtype(key, entries[key], where)
    for key in _counter_keys():
        if key in entries and math.prod(entries[key].shape) != 1:
            raise ImportFormatError(f"{where}: {key!r} has shape {list(entries[key].shape)}, expected a scalar "
                                    "BatchNorm counter")
    alpha = _infer_alpha(entries, where)
    if has_classifier:
        cls_shape = entries["classifier.weight"].shape
        if len(cls_shape) != 2 or cls_shape[0] < 1:
            raise ImportFormatError(f"{where}: tensor 'classifier.weight' has shape {list(cls_shape)}, expected "
                                    "[num_classes, features] (a Linear layer with at least one class)")
        num_classes = int(cls_shape[0])
    else:
        num_classes = 0

    mean = _rgb(INPUT_MEAN if input_mean is None else input_mean, "input_mean")
    std = _rgb(INPUT_STD if input_std is None else input_std, "input_std")
    labels = checked_labels(labels, num_classes, where)
    if source is None:
        extra = "".join(f", {n}" for n in notes)
        source = (f"timm mobilenetv1 state dict {where} ({kind}{extra}, sha256 {file_sha256(p)}), "
                  "imported by mobilenet_fast.importers.torch_state")
    config = ModelConfig(alpha=alpha, resolution=res, num_classes=num_classes, padding=padding,
                         bn_epsilon=float(bn_epsilon), input_mean=mean, input_std=std, labels=labels, source=source,
                         activation=activation)

    shapes = expected_shapes(config)
    tensors: Dict[str, np.ndarray] = {}
    for key, (name, layout) in key_map.items():
        entry = entries[key]
        want = _timm_shape(layout, shapes[name])
        if entry.shape != want:
            raise ImportFormatError(f"{where}: tensor {key!r} has shape {list(entry.shape)}, expected "
                                    f"{list(want)} for a MobileNetV1 with alpha={alpha:g}"
                                    + (f", {num_classes} classes" if has_classifier else ""))
        arr = entry.load()
        if tuple(arr.shape) != want:  # the loader disagrees with the header / the entry
            raise ImportFormatError(f"{where}: tensor {key!r} has shape {list(arr.shape)}, expected {list(want)}")
        with np.errstate(over="ignore"):
            arr = np.asarray(arr, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise ImportFormatError(f"{where}: tensor {key!r} contains NaN or Inf"
                                    + (" (after conversion to float32)" if entry.dtype != "float32" else ""))
        if name.endswith(".bn.var") and (arr < 0).any():
            raise ImportFormatError(f"{where}: tensor {key!r} (BatchNorm running variance) has negative values")
        tensors[name] = _to_canonical(layout, arr)
    try:
        return WeightSet(config, tensors)
    except (WeightFileError, InputError) as e:
        raise ImportFormatError(f"{where}: the imported tensors do not form a valid MobileNetV1: {e}") from None

