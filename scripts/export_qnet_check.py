"""Write an int8 MobileNetV1 (the parameters QuantizedNet.plan() gives the C++ QPlan), a batch of
images and this machine's raw QPlan outputs into a binary file, for cpp/tests/qnet_check.cpp to
rerun on another CPU (cross-built for ARM, under qemu) and compare bit for bit: the int8 network's
sums are exact and its requantisation the same float32 operations everywhere, so every ISA on
every machine must give the same bits.

    python scripts/export_qnet_check.py OUT.bin [--weights INT8_MODEL] [--images N]

``--weights``: any int8 model mobilenet_fast.load reads (default: the shipped
mobilenet_v1_1.0_224_int8.safetensors); tests/data/tflite/mnv1_025_128_uint8.tflite exercises the
legacy uint8 path (weight offsets, the pool rounding half up). Images: examples/coffee.png
preprocessed, then seeded noise.

Layout (little-endian): magic "MBFQNT01"; int32 in_h, in_w; float32 input scale; int32 input zero
point, input divide; int32 stem stride, pads[4], channels; layer; int32 blocks; per block int32
stride, pads[4], out channels, then the dw and pw layers; float64 pool in/out scale; int32 pool
in/out zero point, half up; int32 classes; the classifier layer (if classes > 0); int32 images;
float32 images [N][H][W][3]; float32 outputs [N][classes]. A layer: int32 n, int8 weights[n];
int32 c, int32 bias[c], float32 multiplier[c]; int32 zero point, clamp min, max, weight offset.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

import mobilenet_fast as mf
from mobilenet_fast.quantization import split_weight_offset

HERE = os.path.dirname(os.path.abspath(__file__))
SHIPPED = os.path.join(os.path.dirname(mf.__file__), "models", "mobilenet_v1_1.0_224_int8.safetensors")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--weights", default=SHIPPED)
    ap.add_argument("--images", type=int, default=3)
    args = ap.parse_args(argv)

    model = mf.load(args.weights, threads=1)
    assert isinstance(model, mf.QuantizedModel), f"{args.weights} is not an int8 model"
    qn = model.qnet
    h, w = model.config.resolution
    x = model.preprocess(os.path.join(HERE, "..", "examples", "coffee.png"))
    noise = np.random.default_rng(9).uniform(-1, 1, (max(args.images - 1, 0), h, w, 3)).astype(np.float32)
    x = np.ascontiguousarray(np.concatenate([x, noise])[:args.images], np.float32)
    out = qn.plan(h, w, threads=1).run(x)

    parts = []

    def i32(*v: int) -> None:
        parts.append(np.asarray(v, "<i4").tobytes())

    def layer(l, multiplier, clamp=(0, 255), zp=0) -> None:
        w8, d = split_weight_offset(l.weight)
        i32(w8.size)
        parts.append(np.ascontiguousarray(w8, np.int8).tobytes())
        i32(l.bias.size)
        parts.append(np.ascontiguousarray(l.bias, "<i4").tobytes())
        parts.append(np.ascontiguousarray(multiplier, "<f4").tobytes())
        i32(zp, clamp[0], clamp[1], d)

    parts.append(b"MBFQNT01")
    i32(h, w)
    parts.append(np.asarray([qn.input.scale], "<f4").tobytes())
    i32(qn.input.zero_point, int(qn.input_divide))
    stem, blocks = qn.layers[0], qn.layers[1:]
    i32(stem.spec.stride, *stem.spec.pads, stem.spec.out_channels)
    layer(stem, stem.multiplier, stem.clamp, stem.output.zero_point)
    i32(len(blocks) // 2)
    for dw, pw in zip(blocks[0::2], blocks[1::2]):
        i32(dw.spec.stride, *dw.spec.pads, pw.spec.out_channels)
        layer(dw, dw.multiplier, dw.clamp, dw.output.zero_point)
        layer(pw, pw.multiplier, pw.clamp, pw.output.zero_point)
    last = qn.layers[-1].output
    parts.append(np.asarray([last.scale, qn.pool_output.scale], "<f8").tobytes())
    i32(last.zero_point, qn.pool_output.zero_point, int(qn.pool_half_up))
    classes = qn.classifier.spec.out_channels if qn.classifier is not None else 0
    i32(classes)
    if qn.classifier is not None:
        layer(qn.classifier, qn.fc_scale())
    i32(len(x))
    parts.append(x.astype("<f4").tobytes())
    parts.append(np.ascontiguousarray(out, "<f4").tobytes())
    with open(args.out, "wb") as fh:
        fh.write(b"".join(parts))
    top5 = np.argsort(-out[0], kind="stable")[:5]
    print(f"{args.out}: {os.path.getsize(args.out)} bytes, {len(x)} images, isa {model.isa}, top-5 {top5.tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
