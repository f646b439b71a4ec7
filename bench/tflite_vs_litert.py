"""Time one quantised (or float) ``.tflite`` file through our engine and through LiteRT in the same
run: ``mobilenet_fast.load(FILE)`` (an int8 file runs on our int8 network with the file's own
quantisation) against ``ai_edge_litert``'s interpreter (its default XNNPACK delegate) on the same
file, batch 1, interleaved rounds, medians.

    python bench/tflite_vs_litert.py tests/data/tflite/mnv1_025_128_int8.tflite --threads 1 --rounds 5

Both are timed through their Python API on one image (ours: ``model.logits(x)`` on the float
image, which it quantises itself; LiteRT: ``set_tensor`` of the file's input type, ``invoke``,
``get_tensor``), after a warm-up, so both include their per-call Python overhead. It also checks
that the two agree: our logits rounded onto the file's output grid equal LiteRT's output when the
file ends at int8 logits; for other outputs it reports the top-1 agreement only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

import mobilenet_fast as mf


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", help="a .tflite MobileNetV1")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=200, help="timed calls per engine per round")
    args = ap.parse_args()
    from ai_edge_litert.interpreter import Interpreter

    model = mf.load(args.file, threads=args.threads)
    h, w = model.config.resolution
    x = np.random.default_rng(0).uniform(-1, 1, (1, h, w, 3)).astype(np.float32)
    it = Interpreter(model_path=args.file, num_threads=args.threads)
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    if np.dtype(i["dtype"]) == np.int8:
        x_lit = (model.qnet.input.quantize(x) - 128).astype(np.int8)
    elif np.dtype(i["dtype"]) == np.uint8:
        x_lit = model.qnet.input.quantize(x).astype(np.uint8)
    else:
        x_lit = x

    def ours() -> np.ndarray:
        return model.logits(x)

    def litert() -> np.ndarray:
        it.set_tensor(i["index"], x_lit)
        it.invoke()
        return np.array(it.get_tensor(o["index"]))

    a, b = ours(), litert()
    if np.dtype(o["dtype"]) == np.int8 and o["quantization"][0] > 0:
        s, zp = o["quantization"]
        grid = np.clip(np.rint(a.astype(np.float32) / np.float32(s)) + zp, -128, 127)
        same = f"logits on the file's grid identical: {int((grid == b).sum())}/{b.size}"
    else:
        same = f"top-1 equal: {bool(a.argmax() == b.argmax())}"
    print(f"{args.file}: {model!r}\nLiteRT {o['dtype'].__name__} output; {same}")
    times = {"ours": [], "litert": []}
    for r in range(args.rounds):
        order = [("ours", ours), ("litert", litert)] if r % 2 == 0 else [("litert", litert), ("ours", ours)]
        for name, fn in order:
            for _ in range(20):
                fn()
            t = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                fn()
                t.append(time.perf_counter() - t0)
            times[name].append(statistics.median(t) * 1e3)
        print(f"round {r + 1}: ours {times['ours'][-1]:.3f} ms, LiteRT {times['litert'][-1]:.3f} ms, "
              f"ratio {times['ours'][-1] / times['litert'][-1]:.2f}", flush=True)
    mo, ml = statistics.median(times["ours"]), statistics.median(times["litert"])
    print(f"median of {args.rounds} rounds ({args.runs} calls each), {args.threads} thread(s), batch 1: "
          f"ours {mo:.3f} ms, LiteRT {ml:.3f} ms, ours/LiteRT {mo / ml:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
