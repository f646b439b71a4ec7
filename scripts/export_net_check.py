"""Write the shipped MobileNetV1 (BatchNorm folded), one preprocessed photo and this machine's
logits for it into a raw binary file, for cpp/tests/net_check.cpp to rerun on another CPU
(e.g. cross-built for ARM under qemu) and compare.

    python scripts/export_net_check.py OUT.bin [--image examples/coffee.png]

Layout (little-endian): magic "MBFNET01"; int32 in_h, in_w, stem_stride, stem pads[4],
stem_channels, num_blocks; per block int32 stride, pads[4], out_channels; int32 num_classes;
then float32 arrays: stem weights (HWIO) and bias; per block dw weights [3][3][C], dw bias,
pw weights [C][out], pw bias; classifier weights [F][classes] and bias; the input [1][H][W][3];
the reference logits [classes].
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

import mobilenet_fast as mf
from mobilenet_fast.runner import folded_tensors

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--image", default=os.path.join(HERE, "..", "examples", "coffee.png"))
    args = ap.parse_args(argv)

    model = mf.load(threads=1)
    arch = model.architecture()
    f = folded_tensors(model.weights)
    x = np.ascontiguousarray(model.preprocess(args.image), dtype=np.float32)
    logits = model.logits(x)[0].astype(np.float32)
    h, w = x.shape[1], x.shape[2]

    ints = [h, w]
    stem = arch.layer("stem")
    ints += [stem.stride, *stem.pads, f["stem"][0].shape[-1], len(arch.block_channels)]
    arrays = [f["stem"][0], f["stem"][1]]
    for i in range(len(arch.block_channels)):
        dw, pw = arch.layer(f"blocks.{i}.dw"), arch.layer(f"blocks.{i}.pw")
        ints += [dw.stride, *dw.pads, f[pw.name][0].shape[1]]
        arrays += [f[dw.name][0], f[dw.name][1], f[pw.name][0], f[pw.name][1]]
    t = model.weights.tensors
    ints.append(model.num_classes)
    arrays += [t["classifier.weight"], t["classifier.bias"], x, logits]

    with open(args.out, "wb") as fh:
        fh.write(b"MBFNET01")
        fh.write(np.asarray(ints, dtype="<i4").tobytes())
        for a in arrays:
            fh.write(np.ascontiguousarray(a, dtype="<f4").tobytes())
    top5 = np.argsort(-logits, kind="stable")[:5]
    print(f"{args.out}: {os.path.getsize(args.out)} bytes, isa {model.isa}, top-5 {top5.tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
