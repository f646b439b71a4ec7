"""Accuracy of int8 quantisation on real photos: top-1 agreement with our float32 network.

The evaluation set is random crops (40-100% of the shorter side, random position, half of them
mirrored) of real camera photos shipped by scikit-image, scikit-learn and matplotlib; the
calibration crops come from other photos (the two sets share no image):

* calibration: chelsea, motorcycle_right, camera, china, gravel
* evaluation: astronaut, coffee, rocket, motorcycle_left, flower, grace_hopper, brick, grass

For each quantisation setting (``--configs``: range method and bias correction on/off) it
quantises the shipped model (or ``--weights``) with :func:`mobilenet_fast.quantization.quantize_network`
and runs the numpy integer reference (the int8 kernels' arithmetic, checked bit for bit against
them in tests/test_int8_network.py), then prints the top-1 agreement with float32 overall and
on the crops where float32 is confident (top probability >= 0.5).

    pip install scikit-image scikit-learn matplotlib
    python bench/int8_accuracy.py --calibration 32 --eval 256
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import List, Tuple

import numpy as np

import mobilenet_fast as mf
from mobilenet_fast import quantization as Q
from mobilenet_fast import reference

CALIBRATION = ["skimage:chelsea.png", "skimage:motorcycle_right.png", "skimage:camera.png", "sklearn:china.jpg",
               "skimage:gravel.png"]
EVALUATION = ["skimage:astronaut.png", "skimage:coffee.png", "skimage:rocket.jpg", "skimage:motorcycle_left.png",
              "sklearn:flower.jpg", "matplotlib:grace_hopper.jpg", "skimage:brick.png", "skimage:grass.png"]


def photo(name: str) -> np.ndarray:
    """A photo shipped by one of the packages, as uint8 RGB."""
    pkg, fname = name.split(":")
    if pkg == "skimage":
        import skimage
        path = os.path.join(os.path.dirname(skimage.__file__), "data", fname)
    elif pkg == "sklearn":
        import sklearn.datasets
        path = os.path.join(os.path.dirname(sklearn.datasets.__file__), "images", fname)
    else:
        import matplotlib
        path = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "sample_data", fname)
    return mf.load_image(path)


def crops(names: List[str], n: int, size: Tuple[int, int], mean, std, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    images = [photo(p) for p in names]
    out = []
    for i in range(n):
        img = images[i % len(images)]
        h, w = img.shape[:2]
        s = int(min(h, w) * rng.uniform(0.4, 1.0))
        y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        c = img[y:y + s, x:x + s]
        if rng.random() < 0.5:
            c = c[:, ::-1]
        out.append(mf.preprocess(np.ascontiguousarray(c), size, mean, std, crop_fraction=1.0))
    return np.concatenate(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", help="our .safetensors (default: the shipped model)")
    ap.add_argument("--calibration", type=int, default=32, help="calibration crops (default 32)")
    ap.add_argument("--eval", type=int, default=256, help="evaluation crops (default 256)")
    ap.add_argument("--configs", default="minmax:0,mse:0,mse:1,percentile:1",
                    help="METHOD:BIAS_CORRECTION,... (default minmax:0,mse:0,mse:1,percentile:1)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    ws = mf.load_weight_set(args.weights)
    cfg = ws.config
    cal = crops(CALIBRATION, args.calibration, cfg.resolution, cfg.input_mean, cfg.input_std, args.seed)
    ev = crops(EVALUATION, args.eval, cfg.resolution, cfg.input_mean, cfg.input_std, args.seed + 1)
    t = time.time()
    lf = np.concatenate([reference.forward(ws, ev[i:i + 16]) for i in range(0, len(ev), 16)])
    pf = reference.softmax(lf)
    confident = int((pf.max(axis=1) >= 0.5).sum())
    print(f"{len(ev)} evaluation crops ({confident} where float32 is confident), {len(cal)} calibration crops; "
          f"float32 reference {time.time() - t:.0f} s", flush=True)
    print(f"{'method':<12}{'bias corr.':<12}{'top-1 agreement':>16}{'confident':>11}{'quantise s':>12}{'eval s':>8}")
    for item in args.configs.split(","):
        method, bc = item.split(":")
        t0 = time.time()
        qn = Q.quantize_network(ws, cal, method=method, bias_correction=bc == "1")
        t1 = time.time()
        li = np.concatenate([Q.int8_forward(qn, ev[i:i + 16]) for i in range(0, len(ev), 16)])
        t2 = time.time()
        overall, conf = Q.agreement(lf, li, pf)
        print(f"{method:<12}{'yes' if bc == '1' else 'no':<12}{100 * overall:>15.1f}%{100 * conf:>10.1f}%"
              f"{t1 - t0:>12.0f}{t2 - t1:>8.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
