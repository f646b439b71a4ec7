"""Write tests/data/onnx/mnv1_025_128_qdq.onnx and ..._qop.onnx: the MobileNetV1 0.25/128 test
weights (tests/data/tflite/mnv1_025_128.safetensors) exported by our ONNX exporter with BatchNorm
folded, then quantised by onnxruntime's own ``quantize_static`` (QDQ form and QOperator form,
per-channel int8 weights, uint8 activations, MinMax calibration on the 4 fixture crops). The
tests compare our int8 engine on these files with onnxruntime running them.

    python scripts/make_qdq_fixture.py        # needs onnx and onnxruntime (the test extra)
"""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, os.pardir, "tests", "data")


def main() -> int:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from mobilenet_fast.export_onnx import export_onnx
    from mobilenet_fast.weights import load_weights

    ws = load_weights(os.path.join(DATA, "tflite", "mnv1_025_128.safetensors"))
    images = np.load(os.path.join(DATA, "tflite", "mnv1_025_128_images.npy"))
    x = ((images.astype(np.float32) - 127.5) / 127.5).astype(np.float32)

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.feeds = iter([{"input": x[i:i + 1]} for i in range(len(x))])

        def get_next(self):  # type: ignore[no-untyped-def]
            return next(self.feeds, None)

    os.makedirs(os.path.join(DATA, "onnx"), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        float_path = os.path.join(tmp, "float.onnx")
        export_onnx(ws, float_path, fold_bn=True, batch=1)
        for form, fmt in (("qdq", QuantFormat.QDQ), ("qop", QuantFormat.QOperator)):
            out = os.path.join(DATA, "onnx", f"mnv1_025_128_{form}.onnx")
            quantize_static(float_path, out, Reader(), quant_format=fmt, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
            print(f"wrote {out} ({os.path.getsize(out):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
