"""Build a float32 or full-int8 TFLite model from a mobilenet-fast ``.safetensors`` file (for
bench/e2e.py and bench/int8_peers.py).

Run it with a Python that has TensorFlow (kept out of our package's environment on purpose):

    /path/to/tf/python bench/make_tflite.py OUT.tflite [--weights W.safetensors]
    /path/to/tf/python bench/make_tflite.py OUT.tflite --int8 --calibration CAL.npy [--weights W]

The network is rebuilt here from the tensors alone, without importing mobilenet_fast, so the
benchmark's peer does not depend on our code: BatchNorm is folded exactly as our runner does it
(float64, rounded once to float32), the padding convention of the file is reproduced (TF "SAME"
for ``tf_same``; explicit 1-pixel pads and "VALID" for ``symmetric``), every conv is followed by
ReLU6, then a mean over H and W and the dense classifier (absent when num_classes = 0). The input
is NHWC float32 with the fixed shape [1, H, W, 3]; the conversion uses no quantisation and no
optimisations, so the .tflite holds the same float32 weights our engine runs.

``--int8`` makes a full-integer model instead: TFLiteConverter's post-training quantisation
(``optimizations = [Optimize.DEFAULT]``, ``supported_ops = [TFLITE_BUILTINS_INT8]``, so the
conversion fails rather than leave an op in float) with ``representative_dataset`` = the images
of ``--calibration`` (a ``.npy`` of normalised float32 NHWC images ``[N, H, W, 3]``, fed one at a
time): int8 weights (per output channel for the convolutions) and int8 activations. The input
and output stay float32 (a QUANTIZE op after the input, a DEQUANTIZE op before the output), so
the model takes the same images and gives the same logits as every other engine. The check
then reports the top-1 agreement of the int8 model with the float32 tf.function on the
calibration images and the tensor types of the converted model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

DEFAULT_WEIGHTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "python",
                               "mobilenet_fast", "models", "mobilenet_v1_1.0_224.safetensors")
# Strides of MobileNetV1's 13 depthwise-separable blocks (the paper's Table 1).
BLOCK_STRIDES = (1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1)


def read_weights(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, object]]:
    """Tensors and JSON-decoded metadata of one of our weight files."""
    from safetensors import safe_open
    from safetensors.numpy import load_file

    with safe_open(path, framework="np") as f:
        raw = f.metadata() or {}
    if raw.get("format") != "mobilenet-fast":
        raise SystemExit(f"{path}: not a mobilenet-fast weight file (metadata 'format' is {raw.get('format')!r})")
    meta: Dict[str, object] = {}
    for key, value in raw.items():
        try:
            meta[key] = json.loads(value)
        except ValueError:
            meta[key] = value  # plain strings: 'format', 'source'
    return load_file(path), meta


def fold(t: Dict[str, np.ndarray], weight: str, bn: str, eps: float) -> Tuple[np.ndarray, np.ndarray]:
    """Fold ``bn``'s BatchNorm into ``weight`` (output channels on the last axis)."""
    gamma, beta, mean, var = (t[f"{bn}.bn.{k}"].astype(np.float64) for k in ("gamma", "beta", "mean", "var"))
    scale = gamma / np.sqrt(var + eps)
    w = (t[weight].astype(np.float64) * scale).astype(np.float32)
    b = (beta - mean * scale).astype(np.float32)
    return w, b


def build_layers(t: Dict[str, np.ndarray], eps: float) -> List[Tuple[str, int, np.ndarray, np.ndarray]]:
    """(kind, stride, folded weight, bias) for the stem and every block, in order."""
    n_blocks = sum(1 for k in t if k.startswith("blocks.") and k.endswith(".dw.weight"))
    if n_blocks != len(BLOCK_STRIDES):
        raise SystemExit(f"expected {len(BLOCK_STRIDES)} blocks, the file has {n_blocks}")
    layers = [("conv", 2, *fold(t, "stem.conv.weight", "stem", eps))]
    for i, stride in enumerate(BLOCK_STRIDES):
        w, b = fold(t, f"blocks.{i}.dw.weight", f"blocks.{i}.dw", eps)
        layers.append(("dw", stride, w[:, :, :, None], b))           # [3,3,C] -> [3,3,C,1]
        w, b = fold(t, f"blocks.{i}.pw.weight", f"blocks.{i}.pw", eps)
        layers.append(("conv", 1, w[None, None], b))                 # [Cin,Cout] -> [1,1,Cin,Cout]
    return layers


def load_calibration(path: str, h: int, w: int) -> np.ndarray:
    """The ``--calibration`` images: float32 ``[N, h, w, 3]``, N >= 1, all finite."""
    cal = np.load(path)
    if cal.dtype != np.float32 or cal.ndim != 4 or tuple(cal.shape[1:]) != (h, w, 3) or not len(cal):
        raise SystemExit(f"{path}: expected float32 images [N, {h}, {w}, 3], got {cal.dtype} {list(cal.shape)}")
    if not np.all(np.isfinite(cal)):
        raise SystemExit(f"{path}: the calibration images contain NaN or Inf")
    return cal


def make_tflite(weights: str, out: str, calibration: Optional[str] = None) -> None:
    """Write the .tflite; float32, or full int8 calibrated on ``calibration`` (a .npy path)."""
    import tensorflow as tf

    t, meta = read_weights(weights)
    h, w = meta["resolution"]  # type: ignore[misc]
    padding = meta["padding"]
    if padding not in ("tf_same", "symmetric"):
        raise SystemExit(f"{weights}: unknown padding convention {padding!r}")
    layers = build_layers(t, float(meta["bn_epsilon"]))  # type: ignore[arg-type]
    num_classes = int(meta["num_classes"])  # type: ignore[call-overload]
    cal = load_calibration(calibration, h, w) if calibration else None
    consts = [(tf.constant(wt), tf.constant(b)) for _, _, wt, b in layers]
    if num_classes:
        fc_w, fc_b = tf.constant(t["classifier.weight"]), tf.constant(t["classifier.bias"])

    @tf.function(input_signature=[tf.TensorSpec([1, h, w, 3], tf.float32, name="input")])
    def forward(x: "tf.Tensor") -> "tf.Tensor":
        for (kind, stride, _, _), (wt, b) in zip(layers, consts):
            strides = [1, stride, stride, 1]
            pad = "SAME"
            if padding == "symmetric" and wt.shape[0] == 3:
                x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
                pad = "VALID"
            if kind == "dw":
                x = tf.nn.depthwise_conv2d(x, wt, strides, pad)
            else:
                x = tf.nn.conv2d(x, wt, strides, pad)
            x = tf.nn.relu6(tf.nn.bias_add(x, b))
        x = tf.reduce_mean(x, axis=[1, 2])
        if num_classes:
            x = tf.nn.bias_add(tf.matmul(x, fc_w), fc_b)
        return tf.identity(x, name="logits")

    fn = forward.get_concrete_function()
    module = tf.Module()
    module.forward = forward
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn], module)
    if cal is None:
        converter.optimizations = []                      # float32 as is: no quantisation
        converter.target_spec.supported_types = [tf.float32]
    else:
        def representative() -> Iterator[List[np.ndarray]]:
            for i in range(len(cal)):
                yield [cal[i:i + 1]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        # inference_input_type / inference_output_type stay float32: QUANTIZE / DEQUANTIZE ops at
        # the two ends, as our int8 engine quantises its float input and returns float logits.
    blob = converter.convert()

    # Sanity check with TF's own interpreter (deprecated there, hence optional): float32 against
    # the tf.function on a random input; int8 by top-1 agreement on the calibration images.
    check = "not checked (tf.lite.Interpreter unavailable)"
    if hasattr(tf.lite, "Interpreter"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its deprecation notice
            interp = tf.lite.Interpreter(model_content=blob)
        interp.allocate_tensors()
        inp, outp = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]

        def run(x: np.ndarray) -> np.ndarray:
            interp.set_tensor(inp, x)
            interp.invoke()
            return np.array(interp.get_tensor(outp))

        if cal is None:
            x = np.random.default_rng(0).uniform(-1, 1, (1, h, w, 3)).astype(np.float32)
            diff = float(np.abs(run(x) - fn(tf.constant(x)).numpy()).max())
            if not diff < 1e-3:
                raise SystemExit(f"converted model disagrees with the tf.function: max |diff| = {diff:.2e}")
            check = f"max |tflite - tf.function| = {diff:.1e}"
        else:
            got = np.concatenate([run(cal[i:i + 1]) for i in range(len(cal))])
            ref = np.concatenate([fn(tf.constant(cal[i:i + 1])).numpy() for i in range(len(cal))])
            same = float((got.argmax(axis=1) == ref.argmax(axis=1)).mean()) if num_classes else float("nan")
            types: Dict[str, int] = {}
            for t_ in interp.get_tensor_details():
                name = np.dtype(t_["dtype"]).name
                types[name] = types.get(name, 0) + 1
            check = (f"int8 vs tf.function on the {len(cal)} calibration images: top-1 agreement "
                     f"{100 * same:.1f}%, max |logit diff| {float(np.abs(got - ref).max()):.2f}; tensors "
                     + ", ".join(f"{k} {v}" for k, v in sorted(types.items())))
    tmp = out + ".part"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, out)
    what = "float32" if cal is None else f"full int8 (calibrated on {len(cal)} images)"
    print(f"wrote {out} ({len(blob) / 1e6:.1f} MB): {what} MobileNetV1 alpha={meta['alpha']} {h}x{w}, "
          f"{num_classes} classes, padding={padding}, TF {tf.__version__}, {check}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="the .tflite file to write")
    ap.add_argument("--weights", default=DEFAULT_WEIGHTS,
                    help="our .safetensors file (default: the shipped MobileNetV1 1.0/224)")
    ap.add_argument("--int8", action="store_true",
                    help="full-integer quantisation (int8 weights and activations), needs --calibration")
    ap.add_argument("--calibration", metavar="FILE.npy",
                    help="--int8: the representative dataset, normalised float32 images [N, H, W, 3]")
    args = ap.parse_args()
    if args.int8 != bool(args.calibration):
        ap.error("--int8 and --calibration go together")
    make_tflite(os.path.normpath(args.weights), args.out, args.calibration)
    return 0


if __name__ == "__main__":
    sys.exit(main())
