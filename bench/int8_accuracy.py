"""Accuracy of int8 quantisation on real photos: top-1 agreement with our float32 network.

The evaluation set is random crops (40-100% of the shorter side, random position, half of them
mirrored) of real camera photos shipped by scikit-image, scikit-learn and matplotlib; the
calibration crops come from other photos (the two sets share no image):

* calibration: chelsea, motorcycle_right, camera, china, gravel
* evaluation: astronaut, coffee, rocket, motorcycle_left, flower, grace_hopper, brick, grass

For each quantisation setting (``--configs``: range method, bias correction on/off and options
of the weights, see ``--help``) it quantises the shipped model (or ``--weights``) with :func:`mobilenet_fast.quantization.quantize_network`
and runs the numpy integer reference (the int8 kernels' arithmetic, checked bit for bit against
them in tests/test_int8_network.py), then prints the top-1 agreement with float32 overall and
on the crops where float32 is confident (top probability >= 0.5).

    pip install scikit-image scikit-learn matplotlib
    python bench/int8_accuracy.py --calibration 32 --eval 256
    python bench/int8_accuracy.py --calibration 32 --eval 256 --eval-seed 3   # a second evaluation draw

``--seed`` draws the calibration crops (and, unless ``--eval-seed`` is given, the evaluation
crops with ``seed + 1``); ``--engine cpp`` runs the C++ int8 network (``QuantizedNet.plan``, equal
to the numpy reference bit for bit, tests/test_int8_network.py) instead of the numpy reference:
much faster, same numbers.
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
#: Options of a --configs item: nolimit (pair_limit=False), 7bit (weight_bits=7), gptq
#: (rounding="gptq").
OPTIONS = ("nolimit", "7bit", "gptq")
DEFAULT_CONFIGS = "minmax:0,mse:0,mse:1:nolimit,mse:1:7bit,mse:1,percentile:1"
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
    ap.add_argument("--configs", default=DEFAULT_CONFIGS,
                    help="METHOD:BIAS_CORRECTION[:OPTION+OPTION...],... with OPTION one of "
                         f"{', '.join(OPTIONS)} (nolimit: pair_limit=False; 7bit: weight_bits=7; gptq: rounding='gptq'; "
                         f"default {DEFAULT_CONFIGS})")
    ap.add_argument("--seed", type=int, default=1, help="seed of the calibration crops (default 1)")
    ap.add_argument("--eval-seed", type=int, help="seed of the evaluation crops (default: --seed + 1)")
    ap.add_argument("--engine", choices=("numpy", "cpp"), default="numpy",
                    help="the int8 network: the numpy integer reference (default) or the C++ one (same logits)")
    args = ap.parse_args()
    ws = mf.load_weight_set(args.weights)
    cfg = ws.config
    cal = crops(CALIBRATION, args.calibration, cfg.resolution, cfg.input_mean, cfg.input_std, args.seed)
    eval_seed = args.seed + 1 if args.eval_seed is None else args.eval_seed
    ev = crops(EVALUATION, args.eval, cfg.resolution, cfg.input_mean, cfg.input_std, eval_seed)
    t = time.time()
    lf = np.concatenate([reference.forward(ws, ev[i:i + 16]) for i in range(0, len(ev), 16)])
    pf = reference.softmax(lf)
    confident = int((pf.max(axis=1) >= 0.5).sum())
    print(f"{len(ev)} evaluation crops (seed {eval_seed}; {confident} where float32 is confident), {len(cal)} "
          f"calibration crops (seed {args.seed}); float32 reference {time.time() - t:.0f} s", flush=True)
    print(f"{'method':<12}{'bias corr.':<12}{'options':<18}{'top-1 agreement':>20}{'confident':>16}"
          f"{'quantise s':>12}{'eval s':>8}")
    same_conf = pf.max(axis=1) >= 0.5
    for item in args.configs.split(","):
        method, bc, *rest = item.split(":")
        opts = [o for o in (rest[0].split("+") if rest else []) if o]
        bad = [o for o in opts if o not in OPTIONS]
        if bad:
            ap.error(f"unknown option {bad[0]!r} in {item!r} (options: {', '.join(OPTIONS)})")
        kwargs = {"pair_limit": "nolimit" not in opts, "weight_bits": 7 if "7bit" in opts else 8}
        if "gptq" in opts:
            kwargs["rounding"] = "gptq"
        t0 = time.time()
        qn = Q.quantize_network(ws, cal, method=method, bias_correction=bc == "1", **kwargs)
        t1 = time.time()
        if args.engine == "cpp":
            plan = qn.plan(*cfg.resolution, threads=1)
            li = np.concatenate([plan.run(ev[i:i + 16]) for i in range(0, len(ev), 16)]).astype(np.float64)
        else:
            li = np.concatenate([Q.int8_forward(qn, ev[i:i + 16]) for i in range(0, len(ev), 16)])
        t2 = time.time()
        overall, conf = Q.agreement(lf, li, pf)
        agree = np.argmax(li, axis=1) == np.argmax(lf, axis=1)
        n_all, n_conf = int(agree.sum()), int(agree[same_conf].sum())
        print(f"{method:<12}{'yes' if bc == '1' else 'no':<12}{'+'.join(opts) or '-':<18}"
              f"{100 * overall:>11.1f}% {n_all:>3}/{len(ev):<3}{100 * conf:>8.1f}% {n_conf:>3}/{confident:<3}"
              f"{t1 - t0:>12.0f}{t2 - t1:>8.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
