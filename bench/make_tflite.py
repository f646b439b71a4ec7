"""Build a float32 TFLite model from a mobilenet-fast ``.safetensors`` file (for bench/e2e.py).

Run it with a Python that has TensorFlow (kept out of our package's environment on purpose):

    /path/to/tf/python bench/make_tflite.py OUT.tflite [--weights W.safetensors]

The network is rebuilt here from the tensors alone, without importing mobilenet_fast, so the
benchmark's peer does not depend on our code: BatchNorm is folded exactly as our runner does it
(float64, rounded once to float32), the padding convention of the file is reproduced (TF "SAME"
for ``tf_same``; explicit 1-pixel pads and "VALID" for ``symmetric``), every conv is followed by
ReLU6, then a mean over H and W and the dense classifier (absent when num_classes = 0). The input
is NHWC float32 with the fixed shape [1, H, W, 3]; the conversion uses no quantisation and no
optimisations, so the .tflite holds the same float32 weights our engine runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Dict, List, Tuple

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


def make_tflite(weights: str, out: str) -> None:
    import tensorflow as tf

    t, meta = read_weights(weights)
    h, w = meta["resolution"]  # type: ignore[misc]
    padding = meta["padding"]
    if padding not in ("tf_same", "symmetric"):
        raise SystemExit(f"{weights}: unknown padding convention {padding!r}")
    layers = build_layers(t, float(meta["bn_epsilon"]))  # type: ignore[arg-type]
    num_classes = int(meta["num_classes"])  # type: ignore[call-overload]
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
    converter.optimizations = []                      # float32 as is: no quantisation
    converter.target_spec.supported_types = [tf.float32]
    blob = converter.convert()

    # Sanity check with TF's own interpreter (deprecated there, hence optional) on a random input.
    x = np.random.default_rng(0).uniform(-1, 1, (1, h, w, 3)).astype(np.float32)
    ref = fn(tf.constant(x)).numpy()
    check = "not checked (tf.lite.Interpreter unavailable)"
    if hasattr(tf.lite, "Interpreter"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its deprecation notice
            interp = tf.lite.Interpreter(model_content=blob)
        interp.allocate_tensors()
        interp.set_tensor(interp.get_input_details()[0]["index"], x)
        interp.invoke()
        got = interp.get_tensor(interp.get_output_details()[0]["index"])
        diff = float(np.abs(got - ref).max())
        if not diff < 1e-3:
            raise SystemExit(f"converted model disagrees with the tf.function: max |diff| = {diff:.2e}")
        check = f"{diff:.1e}"

    tmp = out + ".part"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, out)
    print(f"wrote {out} ({len(blob) / 1e6:.1f} MB): MobileNetV1 alpha={meta['alpha']} {h}x{w}, "
          f"{num_classes} classes, padding={padding}, TF {tf.__version__}, "
          f"max |tflite - tf.function| = {check}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="the .tflite file to write")
    ap.add_argument("--weights", default=DEFAULT_WEIGHTS,
                    help="our .safetensors file (default: the shipped MobileNetV1 1.0/224)")
    args = ap.parse_args()
    make_tflite(os.path.normpath(args.weights), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
