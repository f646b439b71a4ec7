"""Make the shipped int8 model (``mobilenet_fast.load(precision="int8")``) from the shipped float32
one with our own quantiser, :func:`mobilenet_fast.quantize`, at its defaults.

Calibration: the calibration crops of ``bench/int8_accuracy.py`` (random crops of five photos that
scikit-image and scikit-learn ship: chelsea, motorcycle_right, camera, china, gravel). The top-1
agreement with float32 on that script's evaluation crops (other photos) is measured with the C++
engine and written into the file's ``source`` and on stdout. The output is deterministic: the
same inputs give the same bytes, and ``models/SHA256SUMS`` is updated.

    pip install scikit-image scikit-learn matplotlib
    python scripts/make_int8_model.py            # writes python/mobilenet_fast/models/..._int8.safetensors
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))
sys.path.insert(0, os.path.join(REPO, "scripts"))

import mobilenet_fast as mf  # noqa: E402
from mobilenet_fast.quantization import agreement  # noqa: E402
from mobilenet_fast.weights import file_sha256  # noqa: E402

from convert_default_model import MODELS, update_sums  # noqa: E402
from int8_accuracy import CALIBRATION, EVALUATION, crops  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calibration", type=int, default=32, help="calibration crops (default 32)")
    ap.add_argument("--eval", type=int, default=256, help="evaluation crops for the reported agreement (default 256)")
    ap.add_argument("--out", default=os.path.join(MODELS, "mobilenet_v1_1.0_224_int8.safetensors"))
    args = ap.parse_args()
    model = mf.load(threads=1)
    cfg = model.config
    cal = crops(CALIBRATION, args.calibration, cfg.resolution, cfg.input_mean, cfg.input_std, 1)
    ev = crops(EVALUATION, args.eval, cfg.resolution, cfg.input_mean, cfg.input_std, 2)
    t0 = time.time()
    q = mf.quantize(model, cal)
    seconds = time.time() - t0
    ref = model.predict(ev)
    overall, conf = agreement(q.logits(ev), ref, ref)
    n_conf = int((ref.max(axis=1) >= 0.5).sum())
    how = f"{q.qnet.method} ranges, {'with' if q.qnet.bias_correction else 'no'} bias correction"
    note = (f"int8: quantised by mobilenet_fast.quantize ({how}) on {len(cal)} crops of "
            f"{', '.join(p.split(':')[1].split('.')[0] for p in CALIBRATION)} (scripts/make_int8_model.py); "
            f"top-1 agreement with float32 on {len(ev)} crops of other photos: {100 * overall:.1f}%, "
            f"{100 * conf:.1f}% on the {n_conf} where float32 is confident")
    q = mf.QuantizedModel(replace(cfg, source=f"{cfg.source} | {note}"), q.qnet)
    q.save(args.out)
    print(f"quantised in {seconds:.0f} s; {note}")
    print(f"wrote {args.out} ({os.path.getsize(args.out):,} bytes)")
    if os.path.dirname(os.path.abspath(args.out)) == os.path.abspath(MODELS):
        update_sums(os.path.basename(args.out), file_sha256(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
