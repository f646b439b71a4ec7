"""Accuracy of the peers' reduced-precision paths: top-1 agreement with our float32 network.

The same measurement as bench/int8_accuracy.py, on exactly its crops (calibration: crops of
five photos, evaluation: crops of eight other photos, shipped by scikit-image / scikit-learn /
matplotlib; the same seeds), for every engine that bench/e2e.py times with ``--precision int8``,
each loaded by e2e.py's own loader (the same settings and checks as in the speed benchmark)
and every calibrated one calibrated on the same crops:

* ours int8: ``mobilenet_fast.quantize(model, calibration)`` at its defaults;
* onnxruntime int8: ``quantize_static`` of our ONNX export (QDQ, per-channel int8 weights,
  uint8 activations) with the MinMax calibration e2e.py uses, and the other documented
  options: ``calibrate_method`` Percentile / Entropy / Distribution, ``reduce_range`` (7-bit
  weights, documented for x86 CPUs without VNNI, where u8 x s8 products saturate in int16);
  and, as a diagnosis, the MinMax model run with graph optimisations off: its QDQ pairs then
  run as written (quantise, dequantise, float op) instead of in onnxruntime's int8 kernels, which
  separates the calibration's error from the kernels';
* OpenVINO int8: ``nncf.quantize`` (default preset) of the OpenVINO model read from our ONNX
  export, and its documented options ``overflow_fix="enable"`` (7-bit weights in every layer,
  for CPUs without VNNI; the default fixes only the first layer) and
  ``fast_bias_correction=False``;
* OpenVINO at its default inference precision (no hint; the runtime precisions are printed);
* LiteRT full int8: a .tflite from ``bench/make_tflite.py --int8`` (TFLiteConverter,
  representative_dataset = the calibration crops), run by ai_edge_litert with XNNPACK.

The reference is our float32 engine (``mobilenet_fast.load()`` of the shipped model, or
``--weights``). Agreement is printed overall and where float32 is confident (top probability
>= 0.5). A peer whose library is missing is skipped with a message; the models are cached in
bench/.cache/ (the same files e2e.py uses at batch 1 with ``--agreement``). The ONNX export has
batch 1, so every engine runs one image per call.

    pip install onnx onnxruntime openvino nncf ai-edge-litert scikit-image scikit-learn matplotlib
    python bench/int8_peers.py --tf-python /path/to/tf/bin/python      # first run: builds the .tflite
    python bench/int8_peers.py --rows ours-int8,ort-minmax,nncf          # some rows (see --help)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import e2e  # noqa: E402  (bench/e2e.py: the engines' loaders and model builders)
import mobilenet_fast as mf  # noqa: E402
from int8_accuracy import CALIBRATION, EVALUATION, crops  # noqa: E402
from mobilenet_fast.quantization import agreement  # noqa: E402


@dataclass
class Row:
    """One line of the table: an e2e engine, possibly with other build options."""

    key: str          # --rows name
    engine: str       # e2e.py engine key (its loader)
    settings: str     # what is printed in the settings column
    modules: tuple    # what must be importable
    build: Optional[Callable[["Context"], Optional[str]]] = None  # the model file (None: skip)
    spec: Optional[Dict[str, Any]] = None  # more settings for e2e.py's loader


@dataclass
class Context:
    weights_path: str
    onnx: Optional[str]
    calibration: np.ndarray
    calibration_path: str
    tf_python: Optional[str]
    stem: str


def _ort(method: str, reduce_range: bool = False) -> Callable[[Context], str]:
    return lambda c: e2e.ort_int8_model(str(c.onnx), c.calibration, 1, f"{c.stem}_b1", method, reduce_range)


def _nncf(overflow_fix: Optional[str] = None, fast_bias_correction: bool = True) -> Callable[[Context], str]:
    return lambda c: e2e.openvino_int8_model(str(c.onnx), c.calibration, 1, f"{c.stem}_b1", overflow_fix,
                                             fast_bias_correction)


ORT = ("onnx", "onnxruntime")
ROWS = [
    Row("ours-int8", "ours-int8", "mf.quantize defaults (MSE ranges, bias correction)", ("mobilenet_fast",),
        lambda c: e2e.ours_int8_model(c.weights_path, c.calibration, c.stem)),
    Row("ort-minmax", "onnxruntime-int8", "quantize_static QDQ per-channel, MinMax (as e2e.py)", ORT,
        _ort("MinMax")),
    Row("ort-minmax-float", "onnxruntime-int8", "  same model, graph optimisations off (QDQ in float)", ORT,
        _ort("MinMax"), {"ort_optimization": "off"}),
    Row("ort-minmax-rr", "onnxruntime-int8", "  + reduce_range (7-bit weights)", ORT, _ort("MinMax", True)),
    Row("ort-percentile", "onnxruntime-int8", "  calibrate_method=Percentile (99.999)", ORT, _ort("Percentile")),
    Row("ort-percentile-rr", "onnxruntime-int8", "  Percentile + reduce_range", ORT, _ort("Percentile", True)),
    Row("ort-entropy", "onnxruntime-int8", "  calibrate_method=Entropy", ORT, _ort("Entropy")),
    Row("ort-entropy-rr", "onnxruntime-int8", "  Entropy + reduce_range", ORT, _ort("Entropy", True)),
    Row("ort-distribution", "onnxruntime-int8", "  calibrate_method=Distribution", ORT, _ort("Distribution")),
    Row("nncf", "openvino-int8", "nncf.quantize, default preset (as e2e.py)", ("onnx", "openvino", "nncf"), _nncf()),
    Row("nncf-overflow", "openvino-int8", "  overflow_fix=enable (7-bit weights)", ("onnx", "openvino", "nncf"),
        _nncf("enable")),
    Row("nncf-bc", "openvino-int8", "  fast_bias_correction=False", ("onnx", "openvino", "nncf"),
        _nncf(None, False)),
    Row("nncf-overflow-bc", "openvino-int8", "  overflow_fix=enable, fast_bias_correction=False",
        ("onnx", "openvino", "nncf"), _nncf("enable", False)),
    Row("openvino-default", "openvino-default", "float ONNX export, no INFERENCE_PRECISION_HINT", ("onnx", "openvino")),
    Row("litert-int8", "litert-int8", "TFLiteConverter full int8, XNNPACK", ("ai_edge_litert",),
        lambda c: e2e.built_tflite(c.tf_python, c.weights_path, c.calibration_path)),
]
NAMES = {"ours-int8": "mobilenet-fast int8", "onnxruntime-int8": "onnxruntime int8",
         "openvino-int8": "openvino int8", "openvino-default": "openvino default",
         "litert-int8": "litert int8+xnnpack"}


def engine_logits(loaded: Any, images: np.ndarray) -> np.ndarray:
    """The engine's logits for every image, one call per image (the models have batch 1)."""
    return np.concatenate([np.asarray(loaded.infer(images[i:i + 1]), np.float64) for i in range(len(images))])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="our .safetensors (default: the shipped model)")
    ap.add_argument("--calibration", type=int, default=32, help="calibration crops (default 32)")
    ap.add_argument("--eval", type=int, default=256, help="evaluation crops (default 256)")
    ap.add_argument("--seed", type=int, default=1, help="calibration seed; the evaluation uses seed + 1 (default 1)")
    ap.add_argument("--rows", default=",".join(r.key for r in ROWS),
                    help="rows to measure (default all: " + ",".join(r.key for r in ROWS) + ")")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads per engine (default: all CPUs)")
    ap.add_argument("--tf-python", metavar="PATH",
                    help="Python with TensorFlow, to build the int8 .tflite (default: $MOBILENET_FAST_TF_PYTHON; "
                         "not needed once it is cached)")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = ap.parse_args()
    wanted = [k.strip() for k in args.rows.split(",") if k.strip()]
    unknown = sorted(set(wanted) - {r.key for r in ROWS})
    if unknown:
        ap.error(f"unknown rows {unknown}; choose from {', '.join(r.key for r in ROWS)}")
    rows = [r for r in ROWS if r.key in wanted]

    weights_path = os.path.abspath(args.weights) if args.weights else mf.default_model_path()
    if not weights_path.lower().endswith(".safetensors"):
        ap.error("--weights: our .safetensors file (convert other formats with 'mobilenet-fast convert')")
    ws = mf.load_weight_set(weights_path)
    cfg = ws.config
    h, w = cfg.resolution
    cal = crops(CALIBRATION, args.calibration, cfg.resolution, cfg.input_mean, cfg.input_std, args.seed)
    ev = crops(EVALUATION, args.eval, cfg.resolution, cfg.input_mean, cfg.input_std, args.seed + 1)
    model = mf.load(weights_path, threads=args.threads)
    t = time.time()
    ref = np.concatenate([model.logits(ev[i:i + 16]) for i in range(0, len(ev), 16)]).astype(np.float64)
    p_ref = np.exp(ref - ref.max(axis=1, keepdims=True))
    p_ref /= p_ref.sum(axis=1, keepdims=True)
    n_conf = int((p_ref.max(axis=1) >= 0.5).sum())
    print(f"{len(ev)} evaluation crops ({n_conf} where our float32 is confident), {len(cal)} calibration crops "
          f"(seed {args.seed}); reference: mobilenet-fast {mf.__version__} float32 ({model.isa}), "
          f"{time.time() - t:.1f} s; {os.cpu_count()} CPUs, {args.threads} thread(s) per engine", flush=True)

    results: List[Dict[str, Any]] = []
    notes: Dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cal_path = os.path.join(tmp, "calibration.npy")
        np.save(cal_path, cal)
        onnx_path = None
        if any(m == "onnx" for r in rows for m in r.modules):
            if importlib.util.find_spec("onnx") is None:
                print("no ONNX export: the onnx package is not installed (pip install onnx)", file=sys.stderr)
            else:
                from mobilenet_fast.export_onnx import export_onnx

                stem = os.path.splitext(os.path.basename(weights_path))[0]
                onnx_path = os.path.join(tmp, f"{stem}_b1.onnx")  # batch 1, as e2e.py's batch-1 export
                export_onnx(ws, onnx_path, resolution=cfg.resolution, fold_bn=True, batch=1)
        ctx = Context(weights_path, onnx_path, cal, cal_path, args.tf_python,
                      os.path.splitext(os.path.basename(weights_path))[0])
        header = f"{'engine':<21}{'settings':<52}{'top-1 agreement':>16}{'confident':>11}{'build s':>9}{'eval s':>8}"
        table: List[str] = [header, "-" * len(header)]
        for row in rows:
            name = NAMES[row.engine]
            missing = [m for m in row.modules if importlib.util.find_spec(m) is None]
            if missing:
                print(f"skipping {row.key}: {', '.join(missing)} not installed ({e2e.ENGINES[row.engine][2]})",
                      file=sys.stderr, flush=True)
                continue
            t0 = time.time()
            try:
                artifact = row.build(ctx) if row.build else None
                if row.build and artifact is None:
                    print(f"skipping {row.key}: no model", file=sys.stderr, flush=True)
                    continue
                spec = {"engine": row.engine, "threads": args.threads, "batch": 1, "height": h, "width": w,
                        "weights": weights_path, "onnx": onnx_path, "artifact": artifact, "tflite": None,
                        "num_classes": cfg.num_classes, "openvino_hint": "LATENCY", "calibration": cal_path,
                        **(row.spec or {})}
                loaded = e2e.LOADERS[row.engine](spec, ev[:1])
                t1 = time.time()
                logits = engine_logits(loaded, ev)
            except Exception as e:  # a library failing on our model skips that row only
                print(f"skipping {row.key}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
                continue
            t2 = time.time()
            overall, conf = agreement(logits, ref, p_ref)
            results.append({"row": row.key, "engine": name, "version": loaded.version, "settings": row.settings.strip(),
                            "top1_agreement": overall, "confident_agreement": conf,
                            "max_abs_logit_diff": float(np.abs(logits - ref).max()),
                            "note": loaded.note, "build_s": t1 - t0, "eval_s": t2 - t1})
            if loaded.note:
                notes.setdefault(f"{name} {loaded.version}", loaded.note)
            line = (f"{name if not row.settings.startswith(' ') else '':<21}{row.settings:<52}{100 * overall:>15.1f}%"
                    f"{100 * conf:>10.1f}%{t1 - t0:>9.0f}{t2 - t1:>8.0f}")
            print(line, file=sys.stderr, flush=True)  # progress; the table is printed at the end
            table.append(line)
    print("\n" + "\n".join(table))
    for name, note in notes.items():
        print(f"  {name}: {note}")
    print(f"(top-1 agreement with our float32 on {len(ev)} evaluation crops; 'confident': on the {n_conf} where "
          "float32's top probability is >= 0.5; build s: quantising + loading, from bench/.cache/ when cached)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"evaluation_crops": len(ev), "confident_crops": n_conf, "calibration_crops": len(cal),
                       "seed": args.seed, "reference": f"mobilenet-fast {mf.__version__} float32 ({model.isa})",
                       "rows": results}, f, indent=1)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
