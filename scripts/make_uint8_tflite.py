"""Write ``tests/data/tflite/mnv1_025_128_uint8.tflite``: a MobileNetV1 in the legacy uint8 layout
(uint8 activations, per-tensor asymmetric uint8 weights with zero points, per-tensor int32 biases,
``AVERAGE_POOL_2D`` + 1x1 ``CONV_2D`` logits + ``RESHAPE`` + ``SOFTMAX``, all ops version 1), the
layout of Google's ``mobilenet_v1_*_quant.tflite`` files.

TensorFlow 2.21's converter no longer writes such files (its MLIR converter refuses uint8
inference types), so the file is assembled with the flatbuffers builder (``tests/tflite_writer.py``)
from the int8 fixture ``mnv1_025_128_int8.tflite`` (written by TensorFlow's converter,
``scripts/make_import_fixtures.py``): its activations' quantisation is kept and every weight tensor
is re-quantised per tensor to asymmetric uint8. LiteRT runs the result (the tests compare against
it). Deterministic: the same bytes every run.

    python scripts/make_uint8_tflite.py [--out PATH]
    # the same layout from the shipped 1.0/224 int8 model (for bench/tflite_vs_litert.py):
    python scripts/make_uint8_tflite.py --source python/mobilenet_fast/models/mobilenet_v1_1.0_224_int8.safetensors \
        --out /tmp/mnv1_1.0_224_uint8.tflite
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, os.pardir, "tests", "data", "tflite")
sys.path.insert(0, os.path.join(HERE, os.pardir, "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(DATA, "mnv1_025_128_uint8.tflite"))
    ap.add_argument("--source", default=os.path.join(DATA, "mnv1_025_128_int8.tflite"),
                    help="an int8 model mobilenet_fast.load reads (default: the 0.25/128 int8 fixture)")
    args = ap.parse_args()

    import mobilenet_fast as mf
    from tflite_writer import legacy_uint8, write_tflite

    model = mf.load(args.source)
    qnet, zero_points = legacy_uint8(model.qnet)
    h, w = model.config.resolution
    write_tflite(qnet, args.out, height=h, width=w, weight_zero_points=zero_points, softmax=True)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes); weight zero points {zero_points}")


if __name__ == "__main__":
    main()
