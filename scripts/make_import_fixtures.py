"""Write the small ``.tflite`` test files of tests/data/tflite/ with TensorFlow's own converter.

Run it with a Python that has TensorFlow (kept out of our package's environment on purpose; the
tests only read the files it writes, nothing runs TensorFlow at test time):

    /tmp/hv-tf/bin/python scripts/make_import_fixtures.py \\
        --photos /tmp/tv/lib/python3.11/site-packages/skimage/data

(``--photos``: a directory of PNG/JPEG photos, here scikit-image's bundled sample images, decoded
with ``tf.io``; without it the calibration images are seeded smooth random noise.) Made with
TensorFlow 2.21.0 / Keras 3.15.1.

The model is ``keras.applications.MobileNet(alpha=0.25, input_shape=(128, 128, 3),
weights=None, classes=CLASSES)`` (Keras' layer graph: ``ZeroPadding2D`` + "valid" in front of
the stride-2 depthwise convs, ReLU6, ``GlobalAveragePooling2D(keepdims)`` + 1x1 ``conv_preds``
+ ``Reshape`` + softmax) with seeded random weights (Keras' initialisers, then random BatchNorm
gamma/beta and classifier bias) and *real* BatchNorm statistics: layer by layer, each
BatchNorm's moving mean and variance are set to the batch statistics of its input over the
calibration images, with every earlier BatchNorm already set, as training would leave them (so
the activations after every BatchNorm are ~ gamma * N(0, 1) + beta, not garbage).

Files (``tests/data/tflite/``):

========================================  =================================================
``mnv1_025_128.safetensors``              the float32 weights in our format (padding
                                          ``keras``, epsilon 1e-3, BatchNorm unfolded)
``mnv1_025_128_float32.tflite``           plain conversion, float32 everywhere, softmax output
``mnv1_025_128_float16.tflite``           ``supported_types = [float16]``: float16 weights with
                                          DEQUANTIZE ops in front of the convs, float compute
``mnv1_025_128_int8.tflite``              full integer (``TFLITE_BUILTINS_INT8``), per-channel
                                          int8 weights, int8 activations, int8 input and
                                          output (``inference_input/output_type = int8``);
                                          ends at the logits (no softmax)
``mnv1_025_128_int8_floatio.tflite``      the same quantisation with float32 input/output
                                          (QUANTIZE / DEQUANTIZE ops at the ends), softmax output
``mnv1_025_128_images.npy``               4 uint8 [128, 128, 3] photo crops (not calibration
                                          images) for the tests
========================================  =================================================

The legacy uint8 path (``inference_type=tf.uint8`` / ``quantized_input_stats``, per-tensor
asymmetric uint8 weights, TOCO) is only in the TF1 ``tf.compat.v1.lite.TFLiteConverter``; the
MLIR converter of TF 2.21 refuses uint8 inference types for post-training quantisation, so no
uint8 file is made here (see the importer's docstring).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from typing import Dict, Iterator, List

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, os.pardir, "tests", "data", "tflite")
ALPHA = 0.25
RES = 128
CLASSES = 100
EPS = 1e-3
PREFIX = "mnv1_025_128"


def smooth_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """uint8 [n, RES, RES, 3] images of low-frequency noise (upsampled 8x8 and 32x32 grids)."""
    import tensorflow as tf

    coarse = rng.uniform(0, 255, (n, 8, 8, 3)).astype(np.float32)
    fine = rng.uniform(-40, 40, (n, 32, 32, 3)).astype(np.float32)
    img = tf.image.resize(coarse, (RES, RES)).numpy() + tf.image.resize(fine, (RES, RES)).numpy()
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def photo_crops(photos: List[np.ndarray], rng: np.random.Generator, n: int) -> np.ndarray:
    """uint8 [n, RES, RES, 3]: random square crops (40-100% of the shorter side) resized to RES."""
    import tensorflow as tf

    out = []
    for i in range(n):
        p = photos[int(rng.integers(len(photos)))]
        h, w = p.shape[:2]
        side = int(min(h, w) * rng.uniform(0.4, 1.0))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = tf.image.resize(p[y:y + side, x:x + side].astype(np.float32), (RES, RES), antialias=True)
        out.append(np.clip(np.rint(crop.numpy()), 0, 255).astype(np.uint8))
    return np.stack(out)


def read_photos(directory: str) -> List[np.ndarray]:
    """Every RGB (or grey, made RGB) PNG/JPEG of ``directory`` of at least RES x RES pixels."""
    import tensorflow as tf

    photos = []
    for path in sorted(glob.glob(os.path.join(directory, "*.png")) + glob.glob(os.path.join(directory, "*.jpg"))):
        try:
            img = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False).numpy()
        except Exception:  # noqa: BLE001 - skip what tf.io cannot decode
            continue
        if img.dtype == np.uint8 and min(img.shape[:2]) >= RES:
            photos.append(img)
    if len(photos) < 4:
        raise SystemExit(f"{directory}: found only {len(photos)} usable photos")
    return photos


def normalise(u8: np.ndarray) -> np.ndarray:
    return ((u8.astype(np.float32) - 127.5) / 127.5).astype(np.float32)


def build_model(seed: int, cal: np.ndarray):  # type: ignore[no-untyped-def]
    """The Keras MobileNet with seeded weights and BatchNorm statistics from ``cal``."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.applications.MobileNet(input_shape=(RES, RES, 3), alpha=ALPHA, weights=None,
                                         classes=CLASSES, classifier_activation=None)
    rng = np.random.default_rng(seed + 1)
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for bn in bns:
        probe = keras.Model(model.input, bn.input)
        x = np.concatenate([probe(cal[i:i + 8], training=False).numpy() for i in range(0, len(cal), 8)])
        x = x.astype(np.float64).reshape(-1, x.shape[-1])
        c = x.shape[-1]
        bn.gamma.assign(rng.uniform(0.6, 1.4, c).astype(np.float32))
        bn.beta.assign(rng.normal(0.3, 0.5, c).astype(np.float32))
        bn.moving_mean.assign(x.mean(axis=0).astype(np.float32))
        bn.moving_variance.assign(x.var(axis=0).astype(np.float32))
    preds = model.get_layer("conv_preds")
    preds.bias.assign(rng.normal(0.0, 0.1, CLASSES).astype(np.float32))
    return model


def our_tensors(model) -> Dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """The model's weights under our canonical names (Keras layouts are ours already)."""
    t: Dict[str, np.ndarray] = {}

    def bn(prefix: str, layer_name: str) -> None:
        g, b, m, v = (np.asarray(a, np.float32) for a in model.get_layer(layer_name).get_weights())
        t[f"{prefix}.bn.gamma"], t[f"{prefix}.bn.beta"], t[f"{prefix}.bn.mean"], t[f"{prefix}.bn.var"] = g, b, m, v

    t["stem.conv.weight"] = np.asarray(model.get_layer("conv1").get_weights()[0], np.float32)
    bn("stem", "conv1_bn")
    for i in range(13):
        t[f"blocks.{i}.dw.weight"] = np.asarray(model.get_layer(f"conv_dw_{i + 1}").get_weights()[0][:, :, :, 0],
                                                np.float32)
        bn(f"blocks.{i}.dw", f"conv_dw_{i + 1}_bn")
        t[f"blocks.{i}.pw.weight"] = np.asarray(model.get_layer(f"conv_pw_{i + 1}").get_weights()[0][0, 0],
                                                np.float32)
        bn(f"blocks.{i}.pw", f"conv_pw_{i + 1}_bn")
    w, b = model.get_layer("conv_preds").get_weights()
    t["classifier.weight"] = np.ascontiguousarray(w[0, 0], np.float32)
    t["classifier.bias"] = np.asarray(b, np.float32)
    return {k: np.ascontiguousarray(v) for k, v in t.items()}


def save_ours(path: str, tensors: Dict[str, np.ndarray], source: str) -> None:
    from safetensors.numpy import save_file

    meta = {
        "format": "mobilenet-fast", "format_version": json.dumps(1), "alpha": json.dumps(ALPHA),
        "resolution": json.dumps([RES, RES]), "num_classes": json.dumps(CLASSES),
        "padding": json.dumps("keras"), "bn_epsilon": json.dumps(EPS),
        "input_mean": json.dumps([127.5] * 3), "input_std": json.dumps([127.5] * 3),
        "labels": json.dumps(None), "source": source,
    }
    save_file(tensors, path, metadata=meta)


def convert(fn, module, kind: str, cal: np.ndarray) -> bytes:  # type: ignore[no-untyped-def]
    import tensorflow as tf

    # Keras 3 weights are resource variables the converter would keep as READ_VARIABLE ops:
    # freeze them into constants first.
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    converter = tf.lite.TFLiteConverter.from_concrete_functions([convert_variables_to_constants_v2(fn)], module)
    if kind == "float32":
        converter.optimizations = []
    elif kind == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    else:
        def representative() -> Iterator[List[np.ndarray]]:
            for i in range(len(cal)):
                yield [cal[i:i + 1]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if kind == "int8":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    return converter.convert()  # type: ignore[no-any-return]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT, help="output directory (default: tests/data/tflite)")
    ap.add_argument("--photos", help="directory of PNG/JPEG photos for calibration and test crops")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--calibration", type=int, default=48, help="number of calibration images")
    args = ap.parse_args()

    import tensorflow as tf
    import keras

    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    if args.photos:
        photos = read_photos(args.photos)
        # disjoint sets: the last 4 photos give the test crops, the others calibrate
        cal_u8 = photo_crops(photos[:-4], rng, args.calibration)
        test_u8 = photo_crops(photos[-4:], rng, 4)
        where = f"{len(photos) - 4} photos of {os.path.basename(os.path.normpath(args.photos))}"
    else:
        cal_u8, test_u8 = smooth_noise(rng, args.calibration), smooth_noise(rng, 4)
        where = "seeded smooth noise"
    cal = normalise(cal_u8)
    model = build_model(args.seed, cal)

    @tf.function(input_signature=[tf.TensorSpec([1, RES, RES, 3], tf.float32, name="input")])
    def logits(x: "tf.Tensor") -> "tf.Tensor":
        return model(x, training=False)

    @tf.function(input_signature=[tf.TensorSpec([1, RES, RES, 3], tf.float32, name="input")])
    def probs(x: "tf.Tensor") -> "tf.Tensor":
        return tf.nn.softmax(model(x, training=False))

    module = tf.Module()
    module.model = model
    source = (f"scripts/make_import_fixtures.py: keras.applications.MobileNet alpha={ALPHA} {RES}x{RES} "
              f"classes={CLASSES}, seed {args.seed}, BatchNorm statistics from {len(cal)} crops of {where}; "
              f"TF {tf.__version__}, Keras {keras.__version__}")
    save_ours(os.path.join(args.out, f"{PREFIX}.safetensors"), our_tensors(model), source)
    np.save(os.path.join(args.out, f"{PREFIX}_images.npy"), test_u8)
    jobs = [("float32", probs), ("float16", probs), ("int8", logits), ("int8_floatio", probs)]
    test = normalise(test_u8)
    ref_logits = model(test, training=False).numpy()
    for kind, fn in jobs:
        blob = convert(fn.get_concrete_function(), module, kind, cal)
        path = os.path.join(args.out, f"{PREFIX}_{kind}.tflite")
        with open(path, "wb") as f:
            f.write(blob)
        line = f"wrote {path} ({len(blob) / 1e3:.0f} kB)"
        if hasattr(tf.lite, "Interpreter"):  # a sanity check on the test crops (deprecated API, optional)
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                it = tf.lite.Interpreter(model_content=blob)
            it.allocate_tensors()
            i, o = it.get_input_details()[0], it.get_output_details()[0]
            outs = []
            for k in range(len(test)):
                x = test[k:k + 1]
                if i["dtype"] == np.int8:
                    s, z = i["quantization"]
                    x = np.clip(np.rint(x / s) + z, -128, 127).astype(np.int8)
                it.set_tensor(i["index"], x)
                it.invoke()
                y = it.get_tensor(o["index"]).astype(np.float32)
                if o["dtype"] == np.int8:
                    s, z = o["quantization"]
                    y = (y - z) * s
                outs.append(y)
            y = np.concatenate(outs)
            ref = ref_logits if kind == "int8" else tf.nn.softmax(ref_logits).numpy()
            line += (f"; vs Keras on the test crops: max |diff| {float(np.abs(y - ref).max()):.2e}, top-1 "
                     f"{int((y.argmax(1) == ref.argmax(1)).sum())}/{len(y)}")
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
