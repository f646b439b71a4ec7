"""Export a :class:`~mobilenet_fast.weights.WeightSet` as an ONNX model.

The graph computes exactly what :func:`mobilenet_fast.reference.forward` computes:

``input`` (NHWC float32 ``[N, H, W, 3]``, already normalised) -> Transpose to NCHW -> stem Conv
-> BatchNormalization -> Clip(0, 6) -> 13 x (depthwise Conv (group = C) -> BN -> Clip, pointwise
1x1 Conv -> BN -> Clip) -> GlobalAveragePool -> Flatten -> Gemm, with two outputs: ``logits``
``[N, num_classes]`` and ``probabilities`` (Softmax of the logits). A feature extractor
(``num_classes == 0``) has one output, ``features`` ``[N, C]``.

Every Conv carries its explicit ``pads`` attribute from the layer list (ONNX order
``[top, left, bottom, right]``, the same order as :attr:`LayerSpec.pads`), so the padding
convention of the weights (``tf_same`` or ``symmetric``) is reproduced exactly; the input size is
therefore fixed at export time. With ``fold_bn=True`` BatchNorm is folded into the Conv weights and
biases instead.

The model config is stored in ``metadata_props`` with the same keys and JSON values as the
``.safetensors`` metadata (so ``ModelConfig.from_metadata(dict(...))`` reads it back), plus
``num_labels``, ``input_layout``, ``input_normalized``, ``input_hw`` and ``bn_folded``.

``onnx`` is an optional dependency (``pip install "mobilenet-fast[onnx]"``), imported lazily.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from .errors import InputError, MissingDependencyError
from .reference import fold_batchnorm
from .weights import WeightSet

__all__ = ["export_onnx", "to_onnx_model", "MIN_OPSET"]

#: Oldest opset we emit (Clip takes min/max as inputs from opset 11 on).
MIN_OPSET = 11

PathLike = Union[str, "os.PathLike[str]"]


def _import_onnx() -> Any:
    try:
        import onnx
        import onnx.checker
        import onnx.helper
        import onnx.numpy_helper
    except ImportError as e:
        raise MissingDependencyError(
            f"exporting to ONNX needs the 'onnx' package ({e}); install it with: "
            'pip install "mobilenet-fast[onnx]"') from None
    return onnx


def _package_version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover - Python < 3.8
        return "unknown"
    try:
        return version("mobilenet-fast")
    except PackageNotFoundError:
        return "unknown"


def _resolution(weights: WeightSet, resolution: Optional[Union[int, Tuple[int, int]]]) -> Tuple[int, int]:
    if resolution is None:
        return tuple(weights.config.resolution)  # type: ignore[return-value]
    if isinstance(resolution, (int, np.integer)) and not isinstance(resolution, bool):
        return (int(resolution), int(resolution))
    try:
        h, w = resolution  # type: ignore[misc]
    except (TypeError, ValueError):
        raise InputError(f"resolution must be an int or a (height, width) pair, got {resolution!r}") from None
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (h, w)):
        raise InputError(f"resolution must hold ints, got {resolution!r}")
    return (int(h), int(w))


def to_onnx_model(weights: WeightSet, *, resolution: Optional[Union[int, Tuple[int, int]]] = None,
                  batch: Optional[int] = None, opset: int = 17, fold_bn: bool = False) -> Any:
    """Build the ONNX graph of ``weights`` and return it as an ``onnx.ModelProto``.

    ``resolution`` (int or ``(height, width)``) defaults to the config's; ``batch`` fixes the
    batch dimension (``None``: dynamic, named ``N``); ``opset`` must be at least
    :data:`MIN_OPSET` and at most what the installed ``onnx`` knows; ``fold_bn`` folds BatchNorm
    into the convolutions. The model passes ``onnx.checker.check_model``.
    """
    onnx = _import_onnx()
    from onnx import TensorProto, helper, numpy_helper

    if not isinstance(weights, WeightSet):
        raise InputError(f"weights must be a WeightSet, got {type(weights).__name__}")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1):
        raise InputError(f"batch must be None (dynamic) or an int >= 1, got {batch!r}")
    max_opset = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= max_opset:
        raise InputError(f"opset must be an int in {MIN_OPSET}..{max_opset} (the installed onnx "
                         f"{onnx.__version__} knows up to {max_opset}), got {opset!r}")
    opset = int(opset)
    cfg = weights.config
    h, w = _resolution(weights, resolution)
    arch = cfg.architecture((h, w))
    t = weights.tensors

    nodes: List[Any] = []
    inits: List[Any] = []

    def init(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    relu6_min = init("relu6.min", np.array(0.0, dtype=np.float32))
    relu6_max = init("relu6.max", np.array(6.0, dtype=np.float32))

    x = "input.nchw"
    nodes.append(helper.make_node("Transpose", ["input"], [x], name="to_nchw", perm=[0, 3, 1, 2]))

    for layer in arch:
        if layer.kind in ("conv3x3", "dwconv3x3", "pwconv"):
            prefix = "stem" if layer.kind == "conv3x3" else layer.name
            weight = t["stem.conv.weight"] if layer.kind == "conv3x3" else t[f"{layer.name}.weight"]
            bn = [t[f"{prefix}.bn.{f}"] for f in ("gamma", "beta", "mean", "var")]
            bias: Optional[np.ndarray] = None
            if fold_bn:
                gamma, beta, mean, var = bn
                weight, bias = fold_batchnorm(weight, gamma, beta, mean, var, eps=cfg.bn_epsilon)
            # canonical layout -> OIHW
            if layer.kind == "conv3x3":
                oihw = weight.transpose(3, 2, 0, 1)  # HWIO -> OIHW
                group, kernel = 1, 3
            elif layer.kind == "dwconv3x3":
                oihw = weight.transpose(2, 0, 1)[:, None, :, :]  # HWC -> C,1,H,W
                group, kernel = layer.in_channels, 3
            else:
                oihw = weight.T[:, :, None, None]  # [Cin,Cout] -> [Cout,Cin,1,1]
                group, kernel = 1, 1
            conv_name = f"{prefix}.conv" if layer.kind == "conv3x3" else layer.name
            conv_inputs = [x, init(f"{conv_name}.weight", oihw)]
            if bias is not None:
                conv_inputs.append(init(f"{conv_name}.bias", bias))
            y = f"{conv_name}.out"
            nodes.append(helper.make_node(
                "Conv", conv_inputs, [y], name=conv_name, kernel_shape=[kernel, kernel],
                strides=[layer.stride, layer.stride], pads=list(layer.pads), dilations=[1, 1], group=group))
            x = y
            if not fold_bn:
                y = f"{prefix}.bn.out"
                nodes.append(helper.make_node(
                    "BatchNormalization", [x] + [init(f"{prefix}.bn.{f}", a) for f, a in
                                                 zip(("gamma", "beta", "mean", "var"), bn)],
                    [y], name=f"{prefix}.bn", epsilon=float(cfg.bn_epsilon)))
                x = y
            if layer.relu6 and cfg.activation == "relu":
                y = f"{prefix}.relu.out"
                nodes.append(helper.make_node("Relu", [x], [y], name=f"{prefix}.relu"))
                x = y
            elif layer.relu6:
                y = f"{prefix}.relu6.out"
                nodes.append(helper.make_node("Clip", [x, relu6_min, relu6_max], [y], name=f"{prefix}.relu6"))
                x = y
        elif layer.kind == "avgpool":
            nodes.append(helper.make_node("GlobalAveragePool", [x], ["pool.out"], name="pool"))
            out = "features" if not cfg.num_classes else "pool.flat"
            nodes.append(helper.make_node("Flatten", ["pool.out"], [out], name="flatten", axis=1))
            x = out
        elif layer.kind == "dense":
            # [N, K] @ [K, classes] + bias: the canonical [K, classes] layout needs no transpose
            gemm_inputs = [x, init("classifier.weight", t["classifier.weight"]),
                           init("classifier.bias", t["classifier.bias"])]
            nodes.append(helper.make_node("Gemm", gemm_inputs, ["logits"], name="classifier",
                                          transA=0, transB=0, alpha=1.0, beta=1.0))
            nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1))
        else:  # pragma: no cover - the architecture only has the kinds above
            raise AssertionError(f"unknown layer kind {layer.kind!r}")

    n_dim: Union[int, str] = int(batch) if batch is not None else "N"
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [n_dim, h, w, 3])]
    if cfg.num_classes:
        outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [n_dim, cfg.num_classes]),
                   helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [n_dim, cfg.num_classes])]
    else:
        outputs = [helper.make_tensor_value_info("features", TensorProto.FLOAT, [n_dim, arch.feature_channels])]

    graph = helper.make_graph(
        nodes, f"mobilenet_v1_{cfg.alpha:g}_{h}x{w}", inputs, outputs, initializer=inits,
        doc_string=f"MobileNetV1 alpha={cfg.alpha:g}, input {h}x{w} NHWC (normalised), padding={cfg.padding}, "
                   f"BatchNorm {'folded' if fold_bn else 'unfolded'}")
    opset_ids = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opset_ids, producer_name="mobilenet-fast",
                              producer_version=_package_version(),
                              doc_string="Exported by mobilenet_fast.export_onnx")
    # The oldest IR version that carries this opset, so older runtimes can load the model.
    try:
        model.ir_version = helper.find_min_ir_version_for(opset_ids)
    except Exception:  # pragma: no cover - very old or very new onnx; keep make_model's choice
        pass

    meta: Dict[str, str] = dict(cfg.to_metadata())
    meta.update({
        "num_labels": json.dumps(len(cfg.labels) if cfg.labels is not None else 0),
        "input_layout": "NHWC",
        "input_normalized": json.dumps(True),
        "input_hw": json.dumps([h, w]),
        "bn_folded": json.dumps(bool(fold_bn)),
    })
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model, full_check=True)
    return model


def export_onnx(weights: WeightSet, path: PathLike, *, resolution: Optional[Union[int, Tuple[int, int]]] = None,
                batch: Optional[int] = None, opset: int = 17, fold_bn: bool = False) -> None:
    """Write ``weights`` as an ONNX model file at ``path`` (see :func:`to_onnx_model` for the options)."""
    onnx = _import_onnx()
    model = to_onnx_model(weights, resolution=resolution, batch=batch, opset=opset, fold_bn=fold_bn)
    onnx.save_model(model, os.fspath(path))
