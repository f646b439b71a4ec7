"""Write a quantised MobileNetV1 as a ``.tflite`` file with the flatbuffers builder (the ``tflite``
package's generated code), for the tests and for ``scripts/make_uint8_tflite.py``.

TensorFlow 2.21's converter has no path to the legacy uint8 layout any more (uint8 activations,
per-tensor asymmetric uint8 weights with a zero point, as Google's ``mobilenet_v1_*_quant.tflite``
files have), and converting a 1.0/224 Keras model takes TensorFlow, which the tests do not have.
So these files are assembled tensor by tensor from a :class:`~mobilenet_fast.quantization.QuantizedNet`
in the operator layout those files use: ``CONV_2D`` stem, 13 x (``DEPTHWISE_CONV_2D``,
``CONV_2D`` 1x1), all SAME padding with a fused RELU6, ``AVERAGE_POOL_2D`` over the whole map,
a 1x1 ``CONV_2D`` classifier, ``RESHAPE`` to ``[1, classes]``, optionally ``SOFTMAX``. LiteRT
runs the result; what it computes from it is the reference the tests hold our import to.

Two kinds of file:

* ``legacy_uint8(qnet)`` re-quantises a network's weights per tensor, asymmetric uint8 with a zero
  point (:func:`legacy_uint8`), and :func:`write_tflite` writes uint8 activations;
* with ``weight_zero_points=None`` the weights are written as they are (symmetric int8, per
  channel) with int8 activations (code - 128): the layout of TensorFlow's full-integer converter.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mobilenet_fast.quantization import QLayer, QParams, QuantizedNet, overflowing_channel


def _per_tensor_uint8(w_real: np.ndarray) -> Tuple[np.ndarray, float, int]:
    """Asymmetric uint8 quantisation of one tensor over [min(w, 0), max(w, 0)] (so that 0 is a code,
    as TOCO did): (w - zero point as int16 in -255..255, scale, zero point)."""
    lo, hi = min(float(w_real.min()), 0.0), max(float(w_real.max()), 0.0)
    scale = (hi - lo) / 255.0 if hi > lo else 1.0
    zp = int(np.clip(np.rint(-lo / scale), 0, 255))
    q = np.clip(np.rint(w_real / scale) + zp, 0, 255).astype(np.int16)
    return q - zp, float(np.float32(scale)), zp


def _rebias(layer: QLayer, qin: QParams) -> QLayer:
    """``layer`` with input quantisation ``qin``, its int32 bias re-expressed at the new scale."""
    b_real = layer.bias.astype(np.float64) * layer.input.scale * layer.weight_scale.astype(np.float64)
    bias = np.rint(b_real / (np.float64(qin.scale) * layer.weight_scale.astype(np.float64)))
    return dataclasses.replace(layer, bias=np.clip(bias, -(2**31) + 1, 2**31 - 1).astype(np.int32), input=qin)


def pool_keeps_quantisation(qnet: QuantizedNet) -> QuantizedNet:
    """The network with the pool's output quantised as its input (TFLite's quantised
    AVERAGE_POOL_2D requires it), the classifier's bias re-expressed for that input."""
    pool = qnet.layers[-1].output
    assert pool is not None and qnet.classifier is not None
    return dataclasses.replace(qnet, pool_output=pool, classifier=_rebias(qnet.classifier, pool))


def legacy_uint8(qnet: QuantizedNet) -> Tuple[QuantizedNet, List[int]]:
    """The same network with every weight tensor (stem, depthwise, pointwise, classifier)
    re-quantised per tensor to asymmetric uint8, as the legacy ``*_quant.tflite`` files hold them:
    returns the network (its ``QLayer.weight`` = uint8 code - zero point, int16) and the weight
    zero points, in layer order, classifier last. Biases are re-expressed at the new accumulator
    scale (rounded); activations are kept, except the pool's output, which takes its input's
    quantisation (TFLite's quantised AVERAGE_POOL_2D requires that)."""

    def convert(layer: QLayer, new_input: Optional[QParams] = None) -> Tuple[QLayer, int]:
        real = layer.weight.astype(np.float64) * layer.weight_scale.astype(np.float64)
        qin = new_input or layer.input
        wq, scale, zp = _per_tensor_uint8(real)
        ws = np.full(layer.weight_scale.shape, scale, np.float32)
        b_real = layer.bias.astype(np.float64) * layer.input.scale * layer.weight_scale.astype(np.float64)
        bias = np.rint(b_real / (np.float64(qin.scale) * np.float64(scale))).astype(np.int64)
        bias = np.clip(bias, -(2**31) + 1, 2**31 - 1).astype(np.int32)
        assert overflowing_channel(wq, bias) is None
        return dataclasses.replace(layer, weight=np.ascontiguousarray(wq), weight_scale=ws, bias=bias, input=qin), zp

    layers, zps = [], []
    for layer in qnet.layers:
        new, zp = convert(layer)
        layers.append(new)
        zps.append(zp)
    # TFLite's quantised AVERAGE_POOL_2D keeps its input's scale and zero point.
    pool = layers[-1].output
    assert pool is not None
    classifier = None
    if qnet.classifier is not None:
        classifier, zp = convert(qnet.classifier, pool)
        zps.append(zp)
    out = dataclasses.replace(qnet, layers=layers, pool_output=pool, classifier=classifier, method="legacy-uint8")
    return out, zps


class _Flat:
    """A single-subgraph TFLite model being assembled: tensors, constant buffers, operators; then
    :meth:`write` serialises it with the flatbuffers builder (the ``tflite`` package's generated code)."""

    def __init__(self) -> None:
        self.buffers: List[bytes] = [b""]  # buffer 0: empty, by convention
        self.tensors: List[Tuple[str, List[int], int, int, Optional[Tuple[np.ndarray, np.ndarray, int]]]] = []
        self.opcodes: List[Tuple[int, int]] = []  # (builtin code, version)
        self.ops: List[Tuple[int, List[int], List[int], int, str, Dict[str, Any]]] = []

    def tensor(self, name: str, shape: Sequence[int], ttype: int, data: Optional[bytes] = None,
               quant: Optional[Tuple[Sequence[float], Sequence[int], int]] = None) -> int:
        buf = 0
        if data is not None:
            self.buffers.append(data)
            buf = len(self.buffers) - 1
        q = None if quant is None else (np.asarray(quant[0], np.float32), np.asarray(quant[1], np.int64), quant[2])
        self.tensors.append((name, list(shape), ttype, buf, q))
        return len(self.tensors) - 1

    def op(self, code: int, version: int, inputs: List[int], outputs: List[int], opt_type: int, opt: str,
           **kw: Any) -> None:
        if (code, version) not in self.opcodes:
            self.opcodes.append((code, version))
        self.ops.append((self.opcodes.index((code, version)), inputs, outputs, opt_type, opt, kw))

    def write(self, path: str, inp: int, out: int) -> None:
        import importlib

        import flatbuffers

        # The generated modules (the package's attributes of these names are the reader classes).
        (Buffer, Conv2DOptions, DepthwiseConv2DOptions, Model, Operator, OperatorCode, Pool2DOptions,
         QuantizationParameters, ReshapeOptions, SoftmaxOptions, SubGraph, Tensor) = (
            importlib.import_module("tflite." + n) for n in (
                "Buffer", "Conv2DOptions", "DepthwiseConv2DOptions", "Model", "Operator", "OperatorCode",
                "Pool2DOptions", "QuantizationParameters", "ReshapeOptions", "SoftmaxOptions", "SubGraph", "Tensor"))
        b = flatbuffers.Builder(1 << 20)

        def ivec(start: Any, vals: Sequence[int]) -> int:
            start(b, len(vals))
            for v in reversed(vals):
                b.PrependInt32(int(v))
            return int(b.EndVector())

        def table_vec(start: Any, offs: Sequence[int]) -> int:
            start(b, len(offs))
            for o in reversed(offs):
                b.PrependUOffsetTRelative(o)
            return int(b.EndVector())

        buf_offs = []
        for data in self.buffers:
            d = b.CreateNumpyVector(np.frombuffer(data, np.uint8)) if data else None
            Buffer.BufferStart(b)
            if d is not None:
                Buffer.BufferAddData(b, d)
            buf_offs.append(Buffer.BufferEnd(b))
        tensors = []
        for name, shape, ttype, buf, q in self.tensors:
            nm = b.CreateString(name)
            sh = ivec(Tensor.TensorStartShapeVector, shape)
            qo = None
            if q is not None:
                sc = b.CreateNumpyVector(q[0].astype(np.float32))
                zp = b.CreateNumpyVector(q[1].astype(np.int64))
                QuantizationParameters.QuantizationParametersStart(b)
                QuantizationParameters.QuantizationParametersAddScale(b, sc)
                QuantizationParameters.QuantizationParametersAddZeroPoint(b, zp)
                QuantizationParameters.QuantizationParametersAddQuantizedDimension(b, q[2])
                qo = QuantizationParameters.QuantizationParametersEnd(b)
            Tensor.TensorStart(b)
            Tensor.TensorAddShape(b, sh)
            Tensor.TensorAddType(b, ttype)
            Tensor.TensorAddBuffer(b, buf)
            Tensor.TensorAddName(b, nm)
            if qo is not None:
                Tensor.TensorAddQuantization(b, qo)
            tensors.append(Tensor.TensorEnd(b))
        op_offs = []
        for idx, ins, outs, opt_type, opt, kw in self.ops:
            if opt == "conv":
                Conv2DOptions.Conv2DOptionsStart(b)
                Conv2DOptions.Conv2DOptionsAddPadding(b, 0)  # SAME
                Conv2DOptions.Conv2DOptionsAddStrideW(b, kw["stride"])
                Conv2DOptions.Conv2DOptionsAddStrideH(b, kw["stride"])
                Conv2DOptions.Conv2DOptionsAddFusedActivationFunction(b, 3 if kw.get("relu6", True) else 0)
                Conv2DOptions.Conv2DOptionsAddDilationWFactor(b, 1)
                Conv2DOptions.Conv2DOptionsAddDilationHFactor(b, 1)
                o = Conv2DOptions.Conv2DOptionsEnd(b)
            elif opt == "dw":
                DepthwiseConv2DOptions.DepthwiseConv2DOptionsStart(b)
                DepthwiseConv2DOptions.DepthwiseConv2DOptionsAddPadding(b, 0)
                DepthwiseConv2DOptions.DepthwiseConv2DOptionsAddStrideW(b, kw["stride"])
                DepthwiseConv2DOptions.DepthwiseConv2DOptionsAddStrideH(b, kw["stride"])
                DepthwiseConv2DOptions.DepthwiseConv2DOptionsAddDepthMultiplier(b, 1)
                DepthwiseConv2DOptions.DepthwiseConv2DOptionsAddFusedActivationFunction(b, 3)
                DepthwiseConv2DOptions.DepthwiseConv2DOptionsAddDilationWFactor(b, 1)
                DepthwiseConv2DOptions.DepthwiseConv2DOptionsAddDilationHFactor(b, 1)
                o = DepthwiseConv2DOptions.DepthwiseConv2DOptionsEnd(b)
            elif opt == "pool":
                Pool2DOptions.Pool2DOptionsStart(b)
                Pool2DOptions.Pool2DOptionsAddPadding(b, 1)  # VALID
                Pool2DOptions.Pool2DOptionsAddStrideW(b, 1)
                Pool2DOptions.Pool2DOptionsAddStrideH(b, 1)
                Pool2DOptions.Pool2DOptionsAddFilterWidth(b, kw["fw"])
                Pool2DOptions.Pool2DOptionsAddFilterHeight(b, kw["fh"])
                o = Pool2DOptions.Pool2DOptionsEnd(b)
            elif opt == "reshape":
                ns = ivec(ReshapeOptions.ReshapeOptionsStartNewShapeVector, kw["shape"])
                ReshapeOptions.ReshapeOptionsStart(b)
                ReshapeOptions.ReshapeOptionsAddNewShape(b, ns)
                o = ReshapeOptions.ReshapeOptionsEnd(b)
            else:
                SoftmaxOptions.SoftmaxOptionsStart(b)
                SoftmaxOptions.SoftmaxOptionsAddBeta(b, 1.0)
                o = SoftmaxOptions.SoftmaxOptionsEnd(b)
            iv = ivec(Operator.OperatorStartInputsVector, ins)
            ov = ivec(Operator.OperatorStartOutputsVector, outs)
            Operator.OperatorStart(b)
            Operator.OperatorAddOpcodeIndex(b, idx)
            Operator.OperatorAddInputs(b, iv)
            Operator.OperatorAddOutputs(b, ov)
            Operator.OperatorAddBuiltinOptionsType(b, opt_type)
            Operator.OperatorAddBuiltinOptions(b, o)
            op_offs.append(Operator.OperatorEnd(b))
        tv = table_vec(SubGraph.SubGraphStartTensorsVector, tensors)
        ov = table_vec(SubGraph.SubGraphStartOperatorsVector, op_offs)
        gin = ivec(SubGraph.SubGraphStartInputsVector, [inp])
        gout = ivec(SubGraph.SubGraphStartOutputsVector, [out])
        gname = b.CreateString("main")
        SubGraph.SubGraphStart(b)
        SubGraph.SubGraphAddTensors(b, tv)
        SubGraph.SubGraphAddInputs(b, gin)
        SubGraph.SubGraphAddOutputs(b, gout)
        SubGraph.SubGraphAddOperators(b, ov)
        SubGraph.SubGraphAddName(b, gname)
        sg = SubGraph.SubGraphEnd(b)
        code_offs = []
        for code, version in self.opcodes:
            OperatorCode.OperatorCodeStart(b)
            OperatorCode.OperatorCodeAddDeprecatedBuiltinCode(b, code)
            OperatorCode.OperatorCodeAddBuiltinCode(b, code)
            OperatorCode.OperatorCodeAddVersion(b, version)
            code_offs.append(OperatorCode.OperatorCodeEnd(b))
        cv = table_vec(Model.ModelStartOperatorCodesVector, code_offs)
        sv = table_vec(Model.ModelStartSubgraphsVector, [sg])
        bv = table_vec(Model.ModelStartBuffersVector, buf_offs)
        desc = b.CreateString("mobilenet-fast tests/tflite_writer.py")
        Model.ModelStart(b)
        Model.ModelAddVersion(b, 3)
        Model.ModelAddOperatorCodes(b, cv)
        Model.ModelAddSubgraphs(b, sv)
        Model.ModelAddDescription(b, desc)
        Model.ModelAddBuffers(b, bv)
        b.Finish(Model.ModelEnd(b), file_identifier=b"TFL3")
        with open(path, "wb") as f:
            f.write(b.Output())


# Builtin operator codes and option types of the schema.
_AVERAGE_POOL_2D, _CONV_2D, _DEPTHWISE_CONV_2D, _RESHAPE, _SOFTMAX = 1, 3, 4, 22, 25
_CONV_OPTIONS, _DW_OPTIONS, _POOL_OPTIONS, _SOFTMAX_OPTIONS, _RESHAPE_OPTIONS = 1, 2, 5, 9, 17


def write_tflite(qnet: QuantizedNet, path: str, *, height: int, width: int,
                 weight_zero_points: Optional[Sequence[int]] = None, softmax: bool = False,
                 logits: Optional[QParams] = None, layers: Optional[int] = None) -> None:
    """Write ``qnet`` (with a classifier) as a full-integer ``.tflite`` for ``height x width`` inputs.

    ``weight_zero_points`` (one per weight tensor, from :func:`legacy_uint8`): uint8 weights
    ``weight + zero point`` and uint8 activations; None: int8 weights as they are (per-channel
    scales) and int8 activations. ``logits``: the quantisation of the classifier's output (default:
    ``qnet.logits_output``, else a grid covering +-32). ``softmax``: end with SOFTMAX (output
    scale 1/256, as TFLite requires) instead of the logits. ``layers``: only the first so many
    conv layers, their last output the file's output (to compare layer by layer).
    """
    assert qnet.classifier is not None, "write_tflite needs a classifier"
    assert qnet.pool_output == qnet.layers[-1].output, \
        "TFLite's quantised AVERAGE_POOL_2D keeps its input's quantisation: use pool_keeps_quantisation(qnet)"
    legacy = weight_zero_points is not None
    act_type, act_shift = (3, 0) if legacy else (9, -128)  # UINT8 codes as they are / INT8 = code - 128
    g = _Flat()

    def act(name: str, shape: Sequence[int], p: QParams) -> int:
        return g.tensor(name, shape, act_type, quant=([p.scale], [p.zero_point + act_shift], 0))

    def weights(layer: QLayer, i: int, name: str, file_shape: Sequence[int], arr: np.ndarray, qdim: int) -> int:
        if legacy:
            assert weight_zero_points is not None
            zp = int(weight_zero_points[i])
            data = (arr.astype(np.int16) + zp).astype(np.uint8)
            assert np.array_equal(data.astype(np.int16) - zp, arr)
            return g.tensor(name, file_shape, 3, data.tobytes(), ([float(layer.weight_scale[0])], [zp], 0))
        assert layer.weight.dtype == np.int8, "int16 (widened) weights need weight_zero_points"
        ws = layer.weight_scale.astype(np.float32)
        return g.tensor(name, file_shape, 9, arr.astype(np.int8).tobytes(), (ws, np.zeros(ws.size, np.int64), qdim))

    def bias(layer: QLayer, name: str) -> int:
        s = np.float32(layer.input.scale) * layer.weight_scale.astype(np.float32)
        if legacy:  # per-tensor weights: a per-tensor bias (XNNPACK refuses a per-channel one)
            s = s[:1]
        return g.tensor(name, [layer.bias.size], 2, layer.bias.astype("<i4").tobytes(),
                        (s.astype(np.float32), np.zeros(s.size, np.int64), 0))

    h, w = height, width
    x = inp = act("input", [1, h, w, 3], qnet.input)
    version = 1 if legacy else 3
    for i, layer in enumerate(qnet.layers[:layers]):
        s = layer.spec
        assert layer.output is not None
        oh, ow = -(-h // s.stride), -(-w // s.stride)
        if s.kind == "conv3x3":
            wt = weights(layer, i, f"conv{i}/weights", [s.out_channels, 3, 3, s.in_channels],
                         layer.weight.transpose(3, 0, 1, 2), 0)
            code, opt_type, opt = _CONV_2D, _CONV_OPTIONS, "conv"
        elif s.kind == "dwconv3x3":
            wt = weights(layer, i, f"conv{i}/depthwise_weights", [1, 3, 3, s.out_channels], layer.weight[None], 3)
            code, opt_type, opt = _DEPTHWISE_CONV_2D, _DW_OPTIONS, "dw"
        else:
            wt = weights(layer, i, f"conv{i}/pointwise_weights", [s.out_channels, 1, 1, s.in_channels],
                         layer.weight.T[:, None, None, :], 0)
            code, opt_type, opt = _CONV_2D, _CONV_OPTIONS, "conv"
        bt = bias(layer, f"conv{i}/bias")
        y = act(f"conv{i}/Relu6", [1, oh, ow, s.out_channels], layer.output)
        g.op(code, version, [x, wt, bt], [y], opt_type, opt, stride=s.stride)
        x, h, w = y, oh, ow
    out = x
    if layers is None:
        c = qnet.classifier
        pooled = act("pool", [1, 1, 1, c.spec.in_channels], qnet.pool_output)
        g.op(_AVERAGE_POOL_2D, 1 if legacy else 2, [x], [pooled], _POOL_OPTIONS, "pool", fh=h, fw=w)
        n = c.spec.out_channels
        lq = logits or qnet.logits_output or QParams(64.0 / 255.0, 128)
        wt = weights(c, len(qnet.layers), "logits/weights", [n, 1, 1, c.spec.in_channels], c.weight.T[:, None, None, :],
                     0)
        bt = bias(c, "logits/bias")
        conv_out = act("logits/conv", [1, 1, 1, n], lq)
        g.op(_CONV_2D, version, [pooled, wt, bt], [conv_out], _CONV_OPTIONS, "conv", stride=1, relu6=False)
        shape_t = g.tensor("logits/shape", [2], 2, np.array([1, n], "<i4").tobytes())
        out = act("logits", [1, n], lq)
        g.op(_RESHAPE, 1, [conv_out, shape_t], [out], _RESHAPE_OPTIONS, "reshape", shape=[1, n])
        if softmax:
            probs = act("probabilities", [1, n], QParams(1.0 / 256.0, 0))
            g.op(_SOFTMAX, 1 if legacy else 2, [out], [probs], _SOFTMAX_OPTIONS, "softmax")
            out = probs
    g.write(path, inp, out)


def write_float_tflite(weights: Any, path: str, *, softmax: bool = False) -> None:
    """Write a float32 :class:`~mobilenet_fast.weights.WeightSet` (``tf_same`` padding, ReLU6) as a
    float ``.tflite`` at its resolution, BatchNorm folded into the convs (as TensorFlow's converter
    does), in the same operator layout."""
    from mobilenet_fast.reference import fold_batchnorm

    cfg = weights.config
    assert cfg.padding == "tf_same" and cfg.activation == "relu6"
    t = weights.tensors
    g = _Flat()

    def f32(name: str, arr: np.ndarray) -> int:
        a = np.ascontiguousarray(arr, np.float32)
        return g.tensor(name, list(a.shape), 0, a.astype("<f4").tobytes())

    h, w = cfg.resolution
    x = inp = g.tensor("input", [1, h, w, 3], 0)
    n = None
    for s in cfg.architecture():
        if s.kind in ("conv3x3", "dwconv3x3", "pwconv"):
            prefix = "stem" if s.kind == "conv3x3" else s.name
            wkey = "stem.conv.weight" if s.kind == "conv3x3" else f"{s.name}.weight"
            wf, bf = fold_batchnorm(t[wkey], *(t[f"{prefix}.bn.{k}"] for k in ("gamma", "beta", "mean", "var")),
                                    eps=cfg.bn_epsilon)
            if s.kind == "conv3x3":
                wt, code, opt_type, opt = f32(f"{prefix}/weights", wf.transpose(3, 0, 1, 2)), _CONV_2D, _CONV_OPTIONS, "conv"
            elif s.kind == "dwconv3x3":
                wt, code, opt_type, opt = f32(f"{prefix}/weights", wf[None]), _DEPTHWISE_CONV_2D, _DW_OPTIONS, "dw"
            else:
                wt, code, opt_type, opt = f32(f"{prefix}/weights", wf.T[:, None, None, :]), _CONV_2D, _CONV_OPTIONS, "conv"
            y = g.tensor(f"{prefix}/Relu6", [1, s.out_h, s.out_w, s.out_channels], 0)
            g.op(code, 1, [x, wt, f32(f"{prefix}/bias", bf)], [y], opt_type, opt, stride=s.stride)
            x = y
        elif s.kind == "avgpool":
            y = g.tensor("pool", [1, 1, 1, s.in_channels], 0)
            g.op(_AVERAGE_POOL_2D, 1, [x], [y], _POOL_OPTIONS, "pool", fh=s.in_h, fw=s.in_w)
            x = y
        elif s.kind == "dense":
            n = s.out_channels
            conv_out = g.tensor("logits/conv", [1, 1, 1, n], 0)
            g.op(_CONV_2D, 1, [x, f32("logits/weights", t["classifier.weight"].T[:, None, None, :]),
                               f32("logits/bias", t["classifier.bias"])], [conv_out], _CONV_OPTIONS, "conv",
                 stride=1, relu6=False)
            shape_t = g.tensor("logits/shape", [2], 2, np.array([1, n], "<i4").tobytes())
            x = g.tensor("logits", [1, n], 0)
            g.op(_RESHAPE, 1, [conv_out, shape_t], [x], _RESHAPE_OPTIONS, "reshape", shape=[1, n])
    if softmax and n is not None:
        y = g.tensor("probabilities", [1, n], 0)
        g.op(_SOFTMAX, 1, [x], [y], _SOFTMAX_OPTIONS, "softmax")
        x = y
    g.write(path, inp, x)
