"""End-to-end benchmark: mobilenet-fast against onnxruntime, LiteRT+XNNPACK, OpenVINO and PyTorch.

A matrix of configurations, threads x batch (default {1, 2} x {1, 8}). Every engine gets the same
BatchNorm-folded float32 weights and the same input, and is limited to the same thread count:
  - mobilenet-fast reads the .safetensors file (``mobilenet_fast.load(threads=t)`` when the
    installed version has threads; otherwise it runs on one thread and a warning says so);
  - onnxruntime runs our ONNX export (fixed batch, all graph optimisations on,
    intra_op_num_threads = t, inter_op_num_threads = 1);
  - LiteRT (``ai-edge-litert``, XNNPACK delegate, num_threads = t) runs a .tflite built from the
    same .safetensors by bench/make_tflite.py under TensorFlow, which lives in its own environment;
    the script checks that XNNPACK runs the whole graph;
  - OpenVINO compiles the same ONNX export for the CPU with INFERENCE_NUM_THREADS = t,
    PERFORMANCE_HINT = LATENCY and INFERENCE_PRECISION_HINT = f32 (its default on CPUs with
    AVX-512 BF16 / AMX is bf16, which would not be a float32 comparison; the runtime graph's
    precisions are checked);
  - PyTorch (CPU) runs the network written with torch.nn.functional (conv2d, groups = C for the
    depthwise layers, F.pad for asymmetric TF-SAME pads, clamp 0..6, mean, linear) from our folded
    weights in channels-last layout, under torch.inference_mode(), set_num_threads(t),
    set_num_interop_threads(1); ``--torch-mode jit`` traces, freezes and optimises it instead.
Engines that are not installed are skipped with a message. The max |logit difference| of each
peer against us is printed per configuration as proof that the weights agree.

``--precision int8`` adds the reduced-precision engines, the int8 ones all calibrated on the same
crops (16 of the example photos; with ``--agreement N`` the 32 calibration crops of
bench/int8_accuracy.py):
  - ours-int8: ``mobilenet_fast.quantize`` at its defaults (MSE ranges, bias correction);
  - onnxruntime-int8: onnxruntime's ``quantize_static`` of our ONNX export (QDQ, per-channel int8
    weights, uint8 activations, MinMax calibration);
  - openvino-int8: ``nncf.quantize`` (default preset) of the OpenVINO model read from our ONNX
    export, saved as IR; OpenVINO compiles it without a precision hint (the runtime graph's
    precisions are reported, and some ops must run in u8/i8);
  - openvino-default: our float ONNX export compiled without INFERENCE_PRECISION_HINT, i.e.
    whatever OpenVINO picks on this CPU (bf16 with AVX-512 BF16 / AMX, f32 on AVX2), reported;
  - litert-int8: a full-int8 .tflite (int8 weights and activations, float32 input and output)
    made by ``bench/make_tflite.py --int8`` under TensorFlow, run by LiteRT with XNNPACK (the
    whole graph checked to be delegated, as for float32).
Their models are built once and cached in bench/.cache/ (keyed by everything they depend on).
``--agreement N`` also measures every engine's top-1 agreement with our float32 on the first N
evaluation crops of bench/int8_accuracy.py (real photos) and prints it in the summary.

Isolation: every engine runs in its own worker process (its own thread pools, its own library
settings), and only one worker computes at a time: the others wait, blocked on a pipe, so an
idle engine's spinning pool threads cannot steal a core from the engine being timed, and
process-global settings (torch/OpenMP thread counts, TBB arenas) cannot leak between engines.
Within a configuration the engines take turns over several rounds (each round: warm-up, then the
timed runs; the order rotates every round), so a noisy neighbour on a shared machine hurts all
alike. ``--isolation process`` starts a fresh worker for every (engine, configuration, round)
instead of one per (engine, configuration). We report median and minimum per engine, CPU time /
wall time of the timed runs (how many cores the engine really kept busy), and the per-round
ratio ours / peer (time; < 1 means we are faster). For our engine at batch 1 it also measures the
Python overhead: ``model.logits(x)`` against the C++ ``Plan.run(x)`` it wraps, interleaved.

    python bench/e2e.py                                   # shipped 1.0/224, threads 1,2 x batch 1,8
    python bench/e2e.py --threads 1 --batch 1             # one configuration
    python bench/e2e.py --engines ours,onnxruntime        # a subset of the engines
    python bench/e2e.py --tf-python /path/to/tf/bin/python   # build (and cache) the .tflite
    python bench/e2e.py --tflite model.tflite --json results.json
    python bench/e2e.py --baseline /tmp/mbf-prev            # also another build, interleaved (see --help)
    python bench/e2e.py --precision int8 --agreement 256    # + the int8 engines, speed and accuracy

The .tflite built for a weight file is cached in bench/.cache/ (keyed by the weights' and
make_tflite.py's sha256), so later runs need no TensorFlow.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import gc
import hashlib
import importlib.metadata
import importlib.util
import inspect
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, IO, Iterator, List, Optional, Tuple

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE_DIR = os.path.join(HERE, ".cache")
MAKE_TFLITE = os.path.join(HERE, "make_tflite.py")
OURS = "mobilenet-fast"
XNNPACK_LOG_LINE = "XNNPACK delegate"  # LiteRT prints "Created TensorFlow Lite XNNPACK delegate for CPU."
INPUT_SEED = 0
SETTLE_S = 0.1  # pause between two engines' turns, so the previous one's pool threads stop spinning

# Engine keys (for --engines) -> display name, module that must be importable, install hint.
ENGINES: Dict[str, Tuple[str, Optional[str], str]] = {
    "ours": (OURS, "mobilenet_fast", "pip install ."),
    "onnxruntime": ("onnxruntime", "onnxruntime", "pip install onnxruntime"),
    "litert": ("litert+xnnpack", "ai_edge_litert", "pip install ai-edge-litert"),
    "litert-builtin": ("litert builtin", "ai_edge_litert", "pip install ai-edge-litert"),
    "openvino": ("openvino", "openvino", "pip install openvino"),
    "pytorch": ("pytorch", "torch", "pip install torch (the CPU build)"),
    "baseline": ("baseline", None, "--baseline DIR"),
    "ours-int8": ("mobilenet-fast int8", "mobilenet_fast", "pip install ."),
    "onnxruntime-int8": ("onnxruntime int8", "onnxruntime", "pip install onnxruntime"),
    "openvino-int8": ("openvino int8", "nncf", "pip install openvino nncf"),
    "openvino-default": ("openvino default", "openvino", "pip install openvino"),
    "litert-int8": ("litert int8+xnnpack", "ai_edge_litert", "pip install ai-edge-litert"),
}
# With --precision int8 the reduced-precision engines join the float32 ones: the int8 ones all
# calibrated on the same crops, and OpenVINO at its default inference precision (bf16 where the
# CPU has AVX-512 BF16 / AMX, f32 on an AVX2-only CPU).
INT8_ENGINES = ("ours-int8", "onnxruntime-int8", "openvino-int8", "openvino-default", "litert-int8")
CALIBRATED_ENGINES = ("ours-int8", "onnxruntime-int8", "openvino-int8", "litert-int8")
CALIBRATION_CROPS = 16
# --agreement: calibration and evaluation crops of bench/int8_accuracy.py (as bench/int8_peers.py).
PHOTO_CALIBRATION_CROPS = 32
PHOTO_SEED = 1
DEFAULT_ENGINES = ("ours", "onnxruntime", "litert", "openvino", "pytorch")


def _load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def config_name(threads: int, batch: int) -> str:
    return f"{_plural(threads, 'thread')}, batch {batch}"


# ==================================================================================================
# Worker side: one engine, one configuration, in its own process. Commands arrive as JSON lines
# on stdin, answers leave as JSON lines on a private copy of stdout (fd 1 itself is pointed at
# stderr, so nothing a library prints can corrupt the protocol).
# ==================================================================================================

@contextlib.contextmanager
def captured_stderr_fd(sink: List[str]) -> Iterator[None]:
    """Capture what C/C++ code writes to file descriptor 2 (LiteRT logs there)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            sink.append(tmp.read().decode("utf-8", "replace"))


@dataclass
class Loaded:
    """An engine ready to run on the worker's input."""

    run: Callable[[], Any]
    version: str
    note: str = ""
    info: Dict[str, Any] = field(default_factory=dict)  # engine-specific facts for the report / JSON
    model: Any = None  # ours: the Model (for the overhead measurement)
    infer: Optional[Callable[[np.ndarray], Any]] = None  # the same call on another batch of that shape


def calibration_crops(cfg: Any) -> np.ndarray:
    """Random crops (40-100% of the shorter side, half mirrored) of the example photos, normalised
    as the model expects: the calibration set every int8 engine gets."""
    import mobilenet_fast as mf

    rng = np.random.default_rng(INPUT_SEED)
    out = []
    photos = [mf.load_image(os.path.join(HERE, "..", "examples", f)) for f in ("coffee.png", "chelsea.png")]
    for i in range(CALIBRATION_CROPS):
        img = photos[i % len(photos)]
        h, w = img.shape[:2]
        s = int(min(h, w) * rng.uniform(0.4, 1.0))
        y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        c = img[y:y + s, x:x + s][:, ::-1] if i % 2 else img[y:y + s, x:x + s]
        out.append(mf.preprocess(np.ascontiguousarray(c), cfg.resolution, cfg.input_mean, cfg.input_std,
                                 crop_fraction=1.0))
    return np.concatenate(out)


def worker_input(spec: Dict[str, Any]) -> np.ndarray:
    shape = (spec["batch"], spec["height"], spec["width"], 3)
    return np.random.default_rng(INPUT_SEED).uniform(-1, 1, shape).astype(np.float32)


def load_ours(spec: Dict[str, Any], x: np.ndarray) -> Loaded:
    import mobilenet_fast as mf

    if spec["engine"] == "baseline":  # the build in --baseline DIR, first on this worker's PYTHONPATH
        where = os.path.realpath(mf.__file__)
        if not where.startswith(os.path.realpath(spec["baseline"]) + os.sep):
            raise RuntimeError(f"--baseline: imported mobilenet_fast from {where}, not from {spec['baseline']} "
                               "(an editable install of the other build shadows it; install it normally)")

    t = spec["threads"]
    has_threads = "threads" in inspect.signature(mf.load).parameters
    model = mf.load(spec["weights"], threads=t) if has_threads else mf.load(spec["weights"])
    used = int(getattr(model, "threads", 1) or 1) if has_threads else 1
    fn = model.logits if model.config.num_classes else model.features  # no classifier: pooled features
    note = f"isa={model.isa}" + ("" if used == t else f", {_plural(used, 'thread')}")
    return Loaded(lambda: fn(x), mf.__version__, note,
                  {"isa": model.isa, "threads_option": has_threads, "threads_used": used}, model, fn)


def load_ours_int8(spec: Dict[str, Any], x: np.ndarray) -> Loaded:
    """Our int8 network, quantised by ``mf.quantize`` at its defaults (MSE ranges, bias
    correction) on the calibration crops: the int8 file the driver saved (``ours_int8_model``,
    read back bit for bit), else quantised here."""
    import mobilenet_fast as mf

    if spec.get("artifact"):
        qm = mf.load(spec["artifact"], threads=spec["threads"], precision="int8")
    else:
        qm = mf.quantize(mf.load(spec["weights"], threads=spec["threads"]), np.load(spec["calibration"]))
    return Loaded(lambda: qm.logits(x), mf.__version__, f"isa={qm.isa}, int8",
                  {"isa": qm.isa, "threads_used": qm.threads}, qm, qm.logits)


def load_onnxruntime(spec: Dict[str, Any], x: np.ndarray) -> Loaded:
    import onnxruntime as ort

    if spec["engine"] == "onnxruntime-int8":
        spec = dict(spec, onnx=spec["artifact"])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = spec["threads"]
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # ort_optimization "off" (bench/int8_peers.py only): a QDQ model's DequantizeLinear -> float op ->
    # QuantizeLinear chains then run as they stand, in float, instead of fused into int8 kernels.
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_DISABLE_ALL if spec.get("ort_optimization") == "off"
                                     else ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    sess = ort.InferenceSession(spec["onnx"], opts, providers=["CPUExecutionProvider"])
    output = "logits" if spec["num_classes"] else "features"

    def infer(a: np.ndarray) -> np.ndarray:
        return sess.run([output], {"input": a})[0]

    note = "CPUExecutionProvider" + (", QDQ int8 (quantize_static)" if spec["engine"] == "onnxruntime-int8" else "")
    return Loaded(lambda: infer(x), ort.__version__, note, {"providers": sess.get_providers()}, infer=infer)


def load_litert(spec: Dict[str, Any], x: np.ndarray, xnnpack: bool) -> Loaded:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    path = spec["artifact"] if spec["engine"] == "litert-int8" else spec["tflite"]
    log: List[str] = []
    with captured_stderr_fd(log):
        interp = Interpreter(model_path=path, num_threads=spec["threads"],
                             experimental_op_resolver_type=resolver)
        inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
        if tuple(inp["shape"][1:]) != x.shape[1:]:
            raise RuntimeError(f"{path}: input shape {[int(v) for v in inp['shape']]} "
                               f"does not fit images of {list(x.shape[1:])}")
        if tuple(inp["shape"]) != x.shape:  # batch > 1
            interp.resize_tensor_input(inp["index"], list(x.shape))
        interp.allocate_tensors()
    out_index = interp.get_output_details()[0]["index"]

    def infer(a: np.ndarray) -> np.ndarray:
        interp.set_tensor(inp["index"], a)
        interp.invoke()
        return interp.get_tensor(out_index)

    def run() -> np.ndarray:
        return infer(x)

    with captured_stderr_fd(log):
        run()
    # The delegate's proof: the log line, and one DELEGATE node taking the model's input and
    # producing its output (so the whole network runs inside XNNPACK, nothing falls back).
    nodes = interp._get_ops_details()
    delegates = [n for n in nodes if n["op_name"] == "DELEGATE"]
    logged = XNNPACK_LOG_LINE in "".join(log)
    whole = (len(delegates) == 1 and inp["index"] in delegates[0]["inputs"]
             and out["index"] in delegates[0]["outputs"])
    n_ops = len(nodes) - len(delegates)
    if xnnpack:
        if not (logged and whole):
            raise RuntimeError(f"LiteRT did not put the whole model into XNNPACK (log line seen: {logged}, "
                               f"DELEGATE nodes: {len(delegates)}, covers input->output: {whole})")
        check = f"XNNPACK verified: log line seen, 1 DELEGATE node replaces all {n_ops} ops (input->output)"
    else:
        if delegates or logged:
            raise RuntimeError("LiteRT applied a delegate despite BUILTIN_WITHOUT_DEFAULT_DELEGATES")
        check = f"no delegate: {n_ops} ops on LiteRT's builtin kernels"
    if spec["engine"] == "litert-int8":
        types: Dict[str, int] = {}
        for t in interp.get_tensor_details():
            types[np.dtype(t["dtype"]).name] = types.get(np.dtype(t["dtype"]).name, 0) + 1
        check = f"full int8 .tflite (tensors: {', '.join(f'{k} {v}' for k, v in sorted(types.items()))}); {check}"
    return Loaded(run, importlib.metadata.version("ai-edge-litert"), check, {"check": check}, infer=infer)


def openvino_runtime_precisions(compiled: Any) -> Dict[str, int]:
    """What the CPU plugin really executes: ops of the runtime graph counted by runtimePrecision."""
    precisions: Dict[str, int] = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        rt = op.get_rt_info()
        p = rt["runtimePrecision"].astype(str) if "runtimePrecision" in rt else "?"
        precisions[p] = precisions.get(p, 0) + 1
    return precisions


def _ov_str(value: Any) -> str:
    """An OpenVINO property as text: an element type as its short name (f32, bf16), not its repr."""
    return value.get_type_name() if hasattr(value, "get_type_name") else str(value)


def load_openvino(spec: Dict[str, Any], x: np.ndarray) -> Loaded:
    """openvino: our ONNX export forced to f32; openvino-default: the same without a precision
    hint (whatever the CPU plugin picks); openvino-int8: the NNCF-quantised model (IR)."""
    import openvino as ov

    engine = spec["engine"]
    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": spec["threads"], "PERFORMANCE_HINT": spec["openvino_hint"]}
    if engine == "openvino":
        config["INFERENCE_PRECISION_HINT"] = "f32"
    path = spec["artifact"] if engine == "openvino-int8" else spec["onnx"]
    compiled = core.compile_model(core.read_model(path), "CPU", config)
    got = {k: _ov_str(compiled.get_property(k)) for k in
           ("INFERENCE_NUM_THREADS", "NUM_STREAMS", "PERFORMANCE_HINT", "INFERENCE_PRECISION_HINT",
            "ENABLE_CPU_PINNING")}
    precisions = openvino_runtime_precisions(compiled)
    low = sorted(p for p in precisions if p in ("bf16", "f16", "u8", "i8"))
    if engine == "openvino" and low:
        raise RuntimeError(f"OpenVINO compiled some ops to {low} despite INFERENCE_PRECISION_HINT=f32: {precisions}")
    if engine == "openvino-int8" and not {"u8", "i8"} & set(low):
        raise RuntimeError(f"OpenVINO runs no op of the NNCF model in int8: {precisions}")
    request = compiled.create_infer_request()
    output = compiled.output("logits" if spec["num_classes"] else "features")

    def infer(a: np.ndarray) -> np.ndarray:
        return request.infer({0: a}, share_inputs=True)[output]

    ops = ", ".join(f"{k} {v}" for k, v in sorted(precisions.items()))
    if engine == "openvino":
        what = f"f32 verified ({ops} ops)"
    elif engine == "openvino-default":
        what = f"no precision hint: runs as {got['INFERENCE_PRECISION_HINT']} ({ops} ops)"
    else:
        what = f"NNCF int8 model, inference precision {got['INFERENCE_PRECISION_HINT']} ({ops} ops)"
    note = (f"{got['PERFORMANCE_HINT']}, {got['NUM_STREAMS']} stream(s), {got['INFERENCE_NUM_THREADS']} thread(s), "
            + what)
    return Loaded(lambda: infer(x), ov.__version__.split("-")[0], note,
                  {"properties": got, "runtime_precisions": precisions}, infer=infer)


def build_torch_net(weights_path: str, torch_mode: str, example: Any) -> Callable[[Any], Any]:
    """MobileNetV1 in torch.nn.functional from our BatchNorm-folded weights (channels-last)."""
    import torch
    import torch.nn.functional as F

    import mobilenet_fast as mf
    from mobilenet_fast.runner import folded_tensors

    ws = mf.load_weight_set(weights_path)
    folded = folded_tensors(ws)
    cl = torch.channels_last
    layers = []
    for spec in ws.config.architecture():
        if spec.kind not in ("conv3x3", "dwconv3x3", "pwconv"):
            continue
        w, b = folded[spec.name]
        if spec.kind == "conv3x3":        # HWIO -> OIHW
            weight, groups = w.transpose(3, 2, 0, 1), 1
        elif spec.kind == "dwconv3x3":    # [3, 3, C] -> [C, 1, 3, 3], one group per channel
            weight, groups = w.transpose(2, 0, 1)[:, None], w.shape[2]
        else:                             # [Cin, Cout] -> [Cout, Cin, 1, 1]
            weight, groups = w.T[:, :, None, None], 1
        wt = torch.from_numpy(np.ascontiguousarray(weight)).contiguous(memory_format=cl)
        top, left, bottom, right = spec.pads
        # Symmetric pads go to conv2d itself; TF-SAME's asymmetric 0/0/1/1 needs an explicit F.pad.
        pad = None if (top, left) == (bottom, right) else (left, right, top, bottom)
        conv_pad = (top, left) if pad is None else (0, 0)
        layers.append((wt, torch.from_numpy(b), spec.stride, pad, conv_pad, groups))
    classifier = None
    if ws.config.num_classes:
        classifier = (torch.from_numpy(np.ascontiguousarray(ws.tensors["classifier.weight"].T)),
                      torch.from_numpy(ws.tensors["classifier.bias"]))

    def forward(x: Any) -> Any:
        for wt, b, stride, pad, conv_pad, groups in layers:
            if pad is not None:
                x = F.pad(x, pad)
            x = F.conv2d(x, wt, b, stride, conv_pad, 1, groups).clamp(0.0, 6.0)
        x = x.mean((2, 3))
        return F.linear(x, *classifier) if classifier is not None else x

    if torch_mode == "eager":
        return forward

    class Net(torch.nn.Module):
        def forward(self, x: Any) -> Any:  # noqa: D102
            return forward(x)

    traced = torch.jit.trace(Net().eval(), (example,))
    return torch.jit.optimize_for_inference(torch.jit.freeze(traced))


def load_pytorch(spec: Dict[str, Any], x: np.ndarray) -> Loaded:
    import torch

    # Threads: set_num_interop_threads must come before any parallel work in the process.
    torch.set_num_interop_threads(1)
    torch.set_num_threads(spec["threads"])
    mode = spec["torch_mode"]
    with torch.inference_mode():
        # NHWC numpy -> NCHW view with channels-last strides: no copy, the layout oneDNN likes best.
        xt = torch.from_numpy(x).permute(0, 3, 1, 2)
        net = build_torch_net(spec["weights"], mode, xt)

    def infer(a: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return net(torch.from_numpy(a).permute(0, 3, 1, 2)).numpy()

    info = {"mode": mode, "num_threads": torch.get_num_threads(),
            "num_interop_threads": torch.get_num_interop_threads(),
            "matmul_precision": torch.get_float32_matmul_precision(),
            "mkldnn": bool(torch.backends.mkldnn.is_available())}
    what = "eager, torch.nn.functional" if mode == "eager" else "jit trace+freeze+optimize_for_inference"
    return Loaded(lambda: infer(x), torch.__version__, f"{what}, channels-last, {torch.get_num_threads()} thread(s)",
                  info, infer=infer)


LOADERS: Dict[str, Callable[[Dict[str, Any], np.ndarray], Loaded]] = {
    "ours": load_ours,
    "baseline": load_ours,
    "ours-int8": load_ours_int8,
    "onnxruntime-int8": load_onnxruntime,
    "onnxruntime": load_onnxruntime,
    "litert": lambda spec, x: load_litert(spec, x, xnnpack=True),
    "litert-builtin": lambda spec, x: load_litert(spec, x, xnnpack=False),
    "openvino": load_openvino,
    "openvino-default": load_openvino,
    "openvino-int8": load_openvino,
    "litert-int8": lambda spec, x: load_litert(spec, x, xnnpack=True),
    "pytorch": load_pytorch,
}


def timed(fn: Callable[[], Any], warmup: int, runs: int) -> Dict[str, Any]:
    """Warm-up, then ``runs`` timed calls (ms each), with the process's CPU time over the timed part."""
    for _ in range(warmup):
        fn()
    gc.collect()
    gc_was = gc.isenabled()
    gc.disable()
    try:
        times = []
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(runs):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1e3)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        if gc_was:
            gc.enable()
    return {"times_ms": times, "cpu_s": cpu, "wall_s": wall}


def python_overhead(model: Any, x: np.ndarray, pairs: int, warmup: int) -> Dict[str, Any]:
    """``model.logits(x)`` against the C++ ``Plan.run(x)`` it wraps, interleaved call by call
    (``model.features`` / ``Plan.features`` for a model without classifier).

    A second, identical ``Plan.run`` series in the same rotation is the control (an A/A test): its
    difference from the first shows how much of a measured overhead is noise or ordering.
    """
    plan = model.plan(x.shape[1], x.shape[2])
    what = "logits" if model.num_classes else "features"
    wrapped, direct = getattr(model, what), (plan.run if model.num_classes else plan.features)
    calls: List[Tuple[str, Callable[[], Any]]] = [
        ("model_ms", lambda: wrapped(x)), ("plan_ms", lambda: direct(x)), ("control_ms", lambda: direct(x))]
    if not np.array_equal(calls[0][1](), calls[1][1]()):
        raise RuntimeError(f"model.{what}(x) and the Plan disagree")
    for _ in range(warmup):
        for _, fn in calls:
            fn()
    out: Dict[str, List[float]] = {name: [] for name, _ in calls}
    gc.collect()
    gc.disable()
    try:
        for i in range(pairs):
            for name, fn in calls[i % 3:] + calls[:i % 3]:  # rotate: nobody always runs first
                t = time.perf_counter()
                fn()
                out[name].append((time.perf_counter() - t) * 1e3)
    finally:
        gc.enable()
    return {"call": what, **out}


def evaluate(eng: Loaded, path: str, batch: int) -> Dict[str, List[Any]]:
    """Top-1 class and top softmax probability of each image of the ``.npy`` at ``path``, through
    the engine's own call at the worker's batch size (the last batch padded with copies of its
    first image, whose results are dropped)."""
    if eng.infer is None:
        raise RuntimeError("this engine cannot run other inputs")
    images = np.load(path)
    logits = []
    for i in range(0, len(images), batch):
        chunk = images[i:i + batch]
        n = len(chunk)
        if n < batch:
            chunk = np.concatenate([chunk, np.repeat(chunk[:1], batch - n, axis=0)])
        logits.append(np.asarray(eng.infer(np.ascontiguousarray(chunk)), np.float64)[:n])
    z = np.concatenate(logits)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return {"top1": [int(v) for v in z.argmax(axis=1)], "top_prob": [float(v) for v in p.max(axis=1)]}


def worker_main() -> int:
    proto: IO[str] = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything printed by a library goes to stderr, never into the protocol
    sys.stdout = sys.stderr

    def reply(obj: Dict[str, Any]) -> None:
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    spec = json.loads(sys.stdin.readline())
    x = worker_input(spec)
    try:
        eng = LOADERS[spec["engine"]](spec, x)
        out = np.ascontiguousarray(np.asarray(eng.run()), dtype=np.float32)
        evaluated = evaluate(eng, spec["eval"], spec["batch"]) if spec.get("eval") else None
    except Exception as e:  # report any setup failure to the driver, which skips this engine
        reply({"ok": False, "error": f"{type(e).__name__}: {e}"})
        return 1
    reply({"ok": True, "version": eng.version, "note": eng.note, "info": eng.info, "shape": list(out.shape),
           "output": base64.b64encode(out.tobytes()).decode("ascii"), "eval": evaluated})
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "exit":
            break
        try:
            if cmd["cmd"] == "time":
                reply(timed(eng.run, cmd["warmup"], cmd["runs"]))
            elif cmd["cmd"] == "overhead":
                reply(python_overhead(eng.model, x, cmd["pairs"], cmd["warmup"]))
            else:
                reply({"error": f"unknown command {cmd['cmd']!r}"})
        except Exception as e:
            reply({"error": f"{type(e).__name__}: {e}"})
    return 0


# ==================================================================================================
# Driver side.
# ==================================================================================================

class WorkerError(RuntimeError):
    pass


class Worker:
    """A subprocess running one engine for one configuration."""

    def __init__(self, spec: Dict[str, Any]) -> None:
        env = dict(os.environ, OMP_NUM_THREADS=str(spec["threads"]), TF_CPP_MIN_LOG_LEVEL="2")
        if spec["engine"] == "baseline":
            env["PYTHONPATH"] = os.pathsep.join(p for p in (spec["baseline"], env.get("PYTHONPATH")) if p)
        self.key = spec["engine"]
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        self.hello = self._ask(spec)
        if not self.hello.get("ok"):
            self.close()
            raise WorkerError(self.hello.get("error", "setup failed"))
        shape = tuple(self.hello["shape"])
        self.output = np.frombuffer(base64.b64decode(self.hello["output"]), np.float32).reshape(shape)

    def _ask(self, obj: Dict[str, Any]) -> Dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(obj) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise WorkerError(f"worker exited with code {code} (its messages are above)")
        answer = json.loads(line)
        if "error" in answer and "ok" not in answer:
            raise WorkerError(answer["error"])
        return answer

    def time(self, warmup: int, runs: int) -> Dict[str, Any]:
        return self._ask({"cmd": "time", "warmup": warmup, "runs": runs})

    def overhead(self, pairs: int, warmup: int) -> Dict[str, Any]:
        return self._ask({"cmd": "overhead", "pairs": pairs, "warmup": warmup})

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"cmd": "exit"}) + "\n")
                self.proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@dataclass
class Result:
    """One engine in one configuration."""

    key: str
    name: str
    version: str = ""
    note: str = ""
    info: Dict[str, Any] = field(default_factory=dict)
    rounds: List[Dict[str, Any]] = field(default_factory=list)  # {"times_ms", "cpu_s", "wall_s"}
    diff: Optional[float] = None
    error: Optional[str] = None

    @property
    def times(self) -> List[float]:
        return [v for r in self.rounds for v in r["times_ms"]]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def round_median(self, i: int) -> float:
        return statistics.median(self.rounds[i]["times_ms"])

    @property
    def busy(self) -> float:
        """CPU seconds per wall second over the timed runs: the cores the engine really used."""
        return sum(r["cpu_s"] for r in self.rounds) / max(sum(r["wall_s"] for r in self.rounds), 1e-12)


def tflite_path(args: argparse.Namespace, weights_path: str) -> Optional[str]:
    """The .tflite to run: --tflite, else a cached or freshly built one; None to skip LiteRT."""
    if args.tflite:
        if not os.path.isfile(args.tflite):
            raise SystemExit(f"--tflite {args.tflite}: no such file")
        return os.path.abspath(args.tflite)
    return built_tflite(args.tf_python, weights_path)


# ==================================================================================================
# Reduced-precision models, built once in the driver (bench/int8_peers.py uses the same functions)
# and cached in bench/.cache/ under a key of everything they depend on (the model file, the
# calibration images, the library versions, this builder), so a change of any gives a new file.
# ==================================================================================================

INT8_BUILD = "1"  # part of the keys below: bump it when a builder changes what it writes
ORT_CALIBRATE_METHODS = ("MinMax", "Percentile", "Entropy", "Distribution")


def _cache_file(name: str, parts: List[str], ext: str) -> str:
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    return os.path.join(CACHE_DIR, f"{name}-{key}{ext}")


def _array_sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes() + str((a.dtype, a.shape)).encode()).hexdigest()


def _chunks(calibration: np.ndarray, chunk: int) -> List[np.ndarray]:
    """The calibration images in batches of ``chunk`` (a fixed-batch model's batch size; a
    remainder smaller than a batch is left out)."""
    if len(calibration) < chunk:
        raise ValueError(f"{len(calibration)} calibration images do not fill one batch of {chunk}")
    return [np.ascontiguousarray(calibration[i:i + chunk]) for i in range(0, len(calibration) - chunk + 1, chunk)]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def built_tflite(tf_python: Optional[str], weights_path: str, calibration: Optional[str] = None) -> Optional[str]:
    """A cached or freshly built .tflite of the weights (bench/make_tflite.py under TensorFlow):
    float32, or full int8 calibrated on the images of the ``calibration`` .npy; None (with a
    message) when it must be built and there is no TensorFlow python."""
    from mobilenet_fast.weights import file_sha256

    parts = file_sha256(weights_path) + file_sha256(MAKE_TFLITE)
    if calibration:
        parts += "int8" + file_sha256(calibration)
    key = hashlib.sha256(parts.encode()).hexdigest()[:16]
    stem = os.path.splitext(os.path.basename(weights_path))[0] + ("-int8" if calibration else "")
    cached = os.path.join(CACHE_DIR, f"{stem}-{key}.tflite")
    what = "int8 tflite" if calibration else "tflite"
    if os.path.isfile(cached):
        _log(f"{what}: using cached {os.path.relpath(cached)}")
        return cached
    tf_python = tf_python or os.environ.get("MOBILENET_FAST_TF_PYTHON")
    if not tf_python:
        _log(f"skipping LiteRT{' int8' if calibration else ''}: no {what} for these weights"
             f"{' and calibration images' if calibration else ''}; pass "
             f"{'' if calibration else '--tflite PATH, or '}a Python with TensorFlow as --tf-python PATH or "
             "MOBILENET_FAST_TF_PYTHON=PATH to build one with bench/make_tflite.py")
        return None
    os.makedirs(CACHE_DIR, exist_ok=True)
    cmd = [tf_python, MAKE_TFLITE, cached, "--weights", weights_path]
    if calibration:
        cmd += ["--int8", "--calibration", calibration]
    _log(f"{what}: building {os.path.relpath(cached)} with {tf_python} ...")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    except OSError as e:
        raise SystemExit(f"cannot run the TF python {tf_python!r}: {e}") from None
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"bench/make_tflite.py failed (exit {proc.returncode}): {' '.join(cmd)}")
    _log(f"{what}: {proc.stdout.strip()}")
    return cached


def ours_int8_model(weights_path: str, calibration: np.ndarray, name: str) -> str:
    """Our weights quantised by ``mobilenet_fast.quantize`` at its defaults on the calibration
    images, saved as our int8 ``.safetensors``; cached (the quantiser takes a minute or two)."""
    import mobilenet_fast as mf
    from mobilenet_fast import qweights, quantization
    from mobilenet_fast.weights import file_sha256

    out = _cache_file(f"{name}-ours-int8", [INT8_BUILD, "ours", file_sha256(weights_path), _array_sha256(calibration),
                      mf.__version__, file_sha256(quantization.__file__), file_sha256(qweights.__file__)],
                      ".safetensors")
    if os.path.isfile(out):
        _log(f"mobilenet-fast int8: using cached {os.path.relpath(out)}")
        return out
    os.makedirs(CACHE_DIR, exist_ok=True)
    t = time.time()
    part = out[:-len(".safetensors")] + ".part.safetensors"
    mf.quantize(mf.load(weights_path, threads=1), calibration).save(part)
    os.replace(part, out)
    _log(f"mobilenet-fast int8: quantised into {os.path.relpath(out)} in {time.time() - t:.0f} s")
    return out


def ort_int8_model(onnx_path: str, calibration: np.ndarray, chunk: int, name: str,
                   method: str = "MinMax", reduce_range: bool = False) -> str:
    """The ONNX model quantised by onnxruntime's ``quantize_static``: QDQ, per-channel int8
    weights, uint8 activations, calibration method ``method`` (MinMax is its default) on the
    calibration images fed ``chunk`` at a time; ``reduce_range``: 7-bit weights (its documented
    remedy for the int16 saturation of u8s8 products on x86 CPUs without VNNI); cached."""
    import onnxruntime
    from mobilenet_fast.weights import file_sha256
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    if method not in ORT_CALIBRATE_METHODS:
        raise ValueError(f"calibrate_method {method!r}: choose from {', '.join(ORT_CALIBRATE_METHODS)}")
    tag = method + (", reduce_range" if reduce_range else "")
    out = _cache_file(f"{name}-ort-{method.lower()}{'-rr' if reduce_range else ''}",
                      [INT8_BUILD, "ort", file_sha256(onnx_path), _array_sha256(calibration), str(chunk), method,
                       str(reduce_range), onnxruntime.__version__], ".onnx")
    if os.path.isfile(out):
        _log(f"onnxruntime int8 ({tag}): using cached {os.path.relpath(out)}")
        return out
    items = iter([{"input": c} for c in _chunks(calibration, chunk)])

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def get_next(self) -> Optional[Dict[str, np.ndarray]]:
            return next(items, None)

    os.makedirs(CACHE_DIR, exist_ok=True)
    t = time.time()
    part = out[:-len(".onnx")] + ".part.onnx"
    quantize_static(onnx_path, part, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    reduce_range=reduce_range, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod[method])
    os.replace(part, out)
    _log(f"onnxruntime int8 ({tag}): built {os.path.relpath(out)} in {time.time() - t:.0f} s")
    return out


def openvino_int8_model(onnx_path: str, calibration: np.ndarray, chunk: int, name: str,
                        overflow_fix: Optional[str] = None, fast_bias_correction: bool = True) -> str:
    """The ONNX model read by OpenVINO and quantised by ``nncf.quantize`` at its defaults (preset
    PERFORMANCE: symmetric int8 weights per channel and activations, fast bias correction) on all
    calibration images, fed ``chunk`` at a time; saved as OpenVINO IR (.xml + .bin), cached.
    ``overflow_fix`` ("enable", "first_layer_only", "disable"; None: NNCF's default) and
    ``fast_bias_correction=False`` (the full BiasCorrection) are NNCF's documented options."""
    import nncf
    import openvino as ov
    from mobilenet_fast.weights import file_sha256
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    suffix = (f"-of_{overflow_fix}" if overflow_fix else "") + ("" if fast_bias_correction else "-bc")
    out = _cache_file(f"{name}-nncf{suffix}", [INT8_BUILD, "nncf", file_sha256(onnx_path), _array_sha256(calibration),
                      str(chunk), str(overflow_fix), str(fast_bias_correction), ov.__version__, nncf.__version__],
                      ".xml")
    if os.path.isfile(out) and os.path.isfile(out[:-len(".xml")] + ".bin"):
        _log(f"openvino int8{suffix}: using cached {os.path.relpath(out)}")
        return out
    items = _chunks(calibration, chunk)
    os.makedirs(CACHE_DIR, exist_ok=True)
    t = time.time()
    options: Dict[str, Any] = {"subset_size": len(items), "fast_bias_correction": fast_bias_correction}
    if overflow_fix:
        options["advanced_parameters"] = AdvancedQuantizationParameters(overflow_fix=OverflowFix(overflow_fix))
    quantized = nncf.quantize(ov.Core().read_model(onnx_path), nncf.Dataset(items), **options)
    part = out[:-len(".xml")] + ".part"
    ov.save_model(quantized, part + ".xml", compress_to_fp16=False)
    os.replace(part + ".bin", out[:-len(".xml")] + ".bin")
    os.replace(part + ".xml", out)
    _log(f"openvino int8{suffix}: built {os.path.relpath(out)} with NNCF {nncf.__version__} in {time.time() - t:.0f} s")
    return out


def _int_list(text: str) -> List[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
    return list(dict.fromkeys(values))


def _engine_list(text: str) -> List[str]:
    keys = [v.strip() for v in text.split(",") if v.strip()]
    bad = [k for k in keys if k not in ENGINES]
    if bad or not keys:
        raise argparse.ArgumentTypeError(f"unknown engine(s) {bad}; choose from {', '.join(ENGINES)}")
    return list(dict.fromkeys(keys))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="our .safetensors file (default: the shipped model)")
    ap.add_argument("--threads", type=_int_list, default=[1, 2], metavar="T[,T...]",
                    help="thread counts, each engine limited to exactly T (default 1,2)")
    ap.add_argument("--batch", type=_int_list, default=[1, 8], metavar="N[,N...]",
                    help="images per call (default 1,8)")
    ap.add_argument("--engines", type=_engine_list, default=list(DEFAULT_ENGINES), metavar="E[,E...]",
                    help=f"engines to run (default {','.join(DEFAULT_ENGINES)}; also: litert-builtin)")
    ap.add_argument("--runs", type=int, default=50, help="timed runs per engine per round (default 50)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed runs per engine before each round (default 5)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds, engines taking turns (default 3)")
    ap.add_argument("--isolation", choices=["worker", "process"], default="worker",
                    help="worker: one process per engine and configuration, kept over the rounds (default); "
                         "process: a fresh process for every engine, configuration and round")
    ap.add_argument("--overhead-pairs", type=int, default=200,
                    help="calls of each of model.logits / Plan.run / Plan.run again (control), interleaved, for "
                         "the Python-overhead line at batch 1 (0: skip; default 200)")
    ap.add_argument("--torch-mode", choices=["eager", "jit"], default="eager",
                    help="PyTorch: eager torch.nn.functional (default) or jit trace+freeze+optimize_for_inference")
    ap.add_argument("--openvino-hint", choices=["LATENCY", "THROUGHPUT"], default="LATENCY",
                    help="OpenVINO PERFORMANCE_HINT (default LATENCY: one stream with all T threads; THROUGHPUT "
                         "makes several streams, of which one synchronous call uses only one)")
    ap.add_argument("--tflite", metavar="PATH", help="prebuilt .tflite of the same weights (default: build/cache one)")
    ap.add_argument("--tf-python", metavar="PATH",
                    help="Python with TensorFlow, to build the .tflite (default: $MOBILENET_FAST_TF_PYTHON)")
    ap.add_argument("--no-tflite", action="store_true", help="skip LiteRT")
    ap.add_argument("--tflite-builtin", action="store_true",
                    help="also time LiteRT without XNNPACK (its builtin kernels), for reference")
    ap.add_argument("--precision", choices=["float32", "int8"], default="float32",
                    help="int8: also run the reduced-precision engines " + ", ".join(INT8_ENGINES) + ": our int8 "
                         "network, onnxruntime's quantize_static model (QDQ), the NNCF-quantised OpenVINO model and a "
                         "full-int8 .tflite (needs --tf-python once; cached), all calibrated on the same "
                         f"{CALIBRATION_CROPS} crops of the example photos, and OpenVINO at its default inference "
                         "precision (ratios stay against our float32; the max|diff| column then shows the "
                         "quantisation error); drop some with --skip")
    ap.add_argument("--skip", type=_engine_list, default=[], metavar="E[,E...]",
                    help="engines not to run, e.g. --skip litert-int8 (applied after --engines and --precision)")
    ap.add_argument("--agreement", type=int, default=0, metavar="N",
                    help="also measure each engine's top-1 agreement with our float32 on the first N evaluation "
                         "crops of bench/int8_accuracy.py (real photos; needs scikit-image, scikit-learn, "
                         f"matplotlib); the calibrated engines then use its {PHOTO_CALIBRATION_CROPS} calibration "
                         "crops (other photos) instead of the example photos, as bench/int8_peers.py does "
                         "(0: off, the default; 256: that script's set)")
    ap.add_argument("--baseline", metavar="DIR",
                    help="also run the mobilenet_fast package installed in DIR (e.g. `pip install --no-deps "
                         "--target DIR <checkout of another commit>`) as engine 'baseline', interleaved with "
                         "ours in every round: a regression check of two builds in one run")
    ap.add_argument("--json", metavar="PATH", help="also write the raw results (every timing) as JSON")
    return ap


def select_engines(args: argparse.Namespace) -> List[str]:
    keys = ["ours"] + [k for k in args.engines if k != "ours"]  # ours is the reference: always first
    if args.tflite_builtin and "litert-builtin" not in keys:
        keys.append("litert-builtin")
    if args.precision == "int8":
        keys += [k for k in INT8_ENGINES if k not in keys]
    if args.no_tflite:
        keys = [k for k in keys if not k.startswith("litert")]
    keys = [k for k in keys if k == "ours" or k not in args.skip]
    if args.baseline and "baseline" not in keys:
        keys.insert(1, "baseline")
    if not args.baseline and "baseline" in keys:
        print("skipping the baseline engine: no --baseline DIR", file=sys.stderr)
        keys.remove("baseline")
    chosen = []
    for k in keys:
        name, module, hint = ENGINES[k]
        if module and importlib.util.find_spec(module) is None:
            print(f"skipping {name}: not installed ({hint})", file=sys.stderr)
            continue
        chosen.append(k)
    return chosen


def run_config(args: argparse.Namespace, keys: List[str], base_spec: Dict[str, Any], threads: int,
               batch: int, evals: Dict[str, Dict[str, List[Any]]]) -> Dict[str, Any]:
    """All rounds of one (threads, batch) configuration; prints its table and returns its record.
    With --agreement, an engine not yet in ``evals`` runs the evaluation crops and is added."""
    title = config_name(threads, batch)
    print(f"\n=== {title} === (load average {_load_average()})", flush=True)
    results = {k: Result(k, ENGINES[k][0]) for k in keys}
    live: Dict[str, Worker] = {}

    def spec_for(key: str) -> Dict[str, Any]:
        return dict(base_spec, engine=key, threads=threads, batch=batch, onnx=base_spec["onnx"][batch],
                    artifact=base_spec["artifacts"].get(key, {}).get(batch),
                    eval=base_spec["eval"] if key not in evals else None)

    def start(key: str) -> Optional[Worker]:
        r = results[key]
        try:
            w = Worker(spec_for(key))
        except WorkerError as e:
            r.error = str(e)
            print(f"skipping {r.name} for {title}: {e}", file=sys.stderr, flush=True)
            return None
        if not r.version:
            r.version, r.note, r.info = w.hello["version"], w.hello["note"], w.hello["info"]
            r.info["output"] = w.output
        if w.hello.get("eval") and key not in evals:
            evals[key] = w.hello["eval"]
        return w

    try:
        if args.isolation == "worker":
            for k in keys:  # one at a time: a setup never overlaps another engine's timing
                w = start(k)
                if w is not None:
                    live[k] = w
            active = [k for k in keys if k in live]
        else:
            active = keys
        ref = results["ours"]
        for r_i in range(args.rounds):
            order = active[r_i % len(active):] + active[:r_i % len(active)] if active else []
            for k in order:
                r = results[k]
                if r.error:
                    continue
                if args.isolation == "worker":
                    w = live[k]
                else:
                    w = start(k)
                    if w is None:
                        continue
                time.sleep(SETTLE_S)
                try:
                    r.rounds.append(w.time(args.warmup, args.runs))
                except WorkerError as e:
                    r.error = str(e)
                    print(f"{r.name} failed in {title}: {e}", file=sys.stderr, flush=True)
                if args.isolation == "process":
                    w.close()
            done = [k for k in active if not results[k].error and len(results[k].rounds) == r_i + 1]
            print(f"round {r_i + 1}: " + ", ".join(f"{results[k].name} {results[k].round_median(r_i):.2f} ms"
                                                   for k in done), flush=True)

        overhead = None
        if batch == 1 and args.overhead_pairs > 0 and not ref.error and ref.rounds:
            w = live.get("ours") if args.isolation == "worker" else start("ours")
            if w is not None:
                time.sleep(SETTLE_S)
                try:
                    overhead = summarize_overhead(w.overhead(args.overhead_pairs, args.warmup))
                except WorkerError as e:
                    print(f"Python overhead not measured: {e}", file=sys.stderr, flush=True)
                if args.isolation == "process":
                    w.close()
    finally:
        for w in live.values():
            w.close()

    # Identical-weights proof: each peer's output against ours.
    ok = [results[k] for k in keys if not results[k].error and results[k].rounds]
    if ref in ok:
        what = "logits" if base_spec["num_classes"] else "features"
        for r in ok:
            if r is ref:
                continue
            a, b = ref.info["output"], r.info["output"]
            if a.shape != b.shape:
                r.error = f"output shape {b.shape}, ours {a.shape}"
                print(f"{r.name}: {r.error}", file=sys.stderr)
                continue
            r.diff = float(np.abs(a - b).max())
            print(f"max |ours - {r.name}| {what}: {r.diff:.2e}")
    ok = [r for r in ok if not r.error]
    print_config_table(args, title, batch, ok, ref)
    if overhead:
        plan_call = "run" if overhead["call"] == "logits" else "features"
        print(f"Python overhead ({title}): model.{overhead['call']} {overhead['model_median_ms']:.3f} ms vs "
              f"Plan.{plan_call} {overhead['plan_median_ms']:.3f} ms, medians of {overhead['pairs']} interleaved calls each: "
              f"{overhead['overhead_pct']:+.2f}% (paired: {overhead['paired_diff_ms'] * 1e3:+.0f} us = "
              f"{overhead['paired_pct']:+.2f}%; goal <= 2%); control, Plan.{plan_call} vs itself: {overhead['control_pct']:+.2f}%")
    print(f"(load average {_load_average()})", flush=True)
    if ref.info.get("threads_option") is False and threads != 1:
        print(f"warning: this mobilenet-fast has no threads option: ours ran on 1 thread, the peers on {threads}",
              flush=True)

    return {
        "threads": threads, "batch": batch,
        "engines": [engine_record(r, ref, batch) for r in results.values()],
        "overhead": overhead,
    }


def summarize_overhead(raw: Dict[str, Any]) -> Dict[str, Any]:
    a, b, c = raw["model_ms"], raw["plan_ms"], raw["control_ms"]
    ma, mb, mc = statistics.median(a), statistics.median(b), statistics.median(c)
    paired = statistics.median([x - y for x, y in zip(a, b)])
    return {"pairs": len(a), "model_median_ms": ma, "plan_median_ms": mb, "control_median_ms": mc,
            "overhead_pct": 100 * (ma - mb) / mb, "paired_diff_ms": paired, "paired_pct": 100 * paired / mb,
            "control_pct": 100 * (mc - mb) / mb, **raw}


def ratios(r: Result, ref: Result) -> List[float]:
    n = min(len(r.rounds), len(ref.rounds))
    return [ref.round_median(i) / r.round_median(i) for i in range(n)]


def print_config_table(args: argparse.Namespace, title: str, batch: int, ok: List[Result], ref: Result) -> None:
    print(f"\n{title}: {args.rounds} rounds x {args.runs} timed runs (+{args.warmup} warm-up) per engine; "
          f"{platform.machine()}, {os.cpu_count()} CPUs")
    nw = max(16, *(len(r.name) + 2 for r in ok))
    header = (f"{'engine':<{nw}}{'version':<18}{'median ms':>10}{'min ms':>9}{'img/s':>8}{'CPU/wall':>9}"
              f"   {'ours/peer per round':<21}{'max|diff|':>9}")
    print(header)
    print("-" * len(header))
    for r in ok:
        version = f"{r.version} ({r.info.get('isa', '')})" if r is ref else r.version
        rr = " ".join(f"{v:.2f}" for v in ratios(r, ref)) if r is not ref else ""
        diff = f"{r.diff:.1e}" if r.diff is not None else ""
        print(f"{r.name:<{nw}}{version:<18}{r.median:>10.2f}{min(r.times):>9.2f}{batch * 1e3 / r.median:>8.1f}"
              f"{r.busy:>9.2f}   {rr:<21}{diff:>9}")
    for r in ok:
        if r.note and r is not ref:
            print(f"  {r.name}: {r.note}")


def engine_record(r: Result, ref: Result, batch: int) -> Dict[str, Any]:
    info = {k: v for k, v in r.info.items() if k != "output"}
    rec: Dict[str, Any] = {"engine": r.name, "key": r.key, "version": r.version, "note": r.note, "info": info,
                           "error": r.error}
    if r.rounds and not r.error:
        rec.update({"median_ms": r.median, "min_ms": min(r.times), "images_per_s": batch * 1e3 / r.median,
                    "cpu_per_wall": r.busy, "round_medians_ms": [r.round_median(i) for i in range(len(r.rounds))],
                    "ours_over_peer_per_round": ratios(r, ref) if r is not ref else None,
                    "max_abs_diff_vs_ours": r.diff, "rounds": r.rounds})
    return rec


def agreement_table(evals: Dict[str, Dict[str, List[Any]]]) -> Dict[str, Dict[str, Any]]:
    """Top-1 agreement of every evaluated engine with our float32 ("ours"), overall and on the
    crops where our float32 is confident (top probability >= 0.5)."""
    ref = evals.get("ours")
    if not ref:
        return {}
    ref_top1 = np.array(ref["top1"])
    confident = np.array(ref["top_prob"]) >= 0.5
    out = {}
    for key, ev in evals.items():
        same = np.array(ev["top1"]) == ref_top1
        out[key] = {"images": int(len(same)), "confident_images": int(confident.sum()),
                    "top1_agreement": float(same.mean()),
                    "confident_agreement": float(same[confident].mean()) if confident.any() else float("nan")}
    return out


def _best(c: Dict[str, Any], ours_key: str, peer_keys: List[str], field: str) -> Tuple[str, str]:
    """(best peer's name, ours / best peer time) of one configuration, '-' where missing."""
    ours = next((e for e in c["engines"] if e["key"] == ours_key and "median_ms" in e), None)
    peers = [e for e in c["engines"] if e["key"] in peer_keys and "median_ms" in e]
    if not ours or not peers:
        return "-", "-"
    best = min(peers, key=lambda e: e["median_ms"])
    c[f"best_{field}"] = best["engine"]
    c[f"{ours_key.replace('-', '_')}_over_best_{field}"] = ours["median_ms"] / best["median_ms"]
    return best["engine"], f"{ours['median_ms'] / best['median_ms']:.2f}"


def print_summary(configs: List[Dict[str, Any]], keys: List[str],
                  agreements: Optional[Dict[str, Dict[str, Any]]] = None) -> None:
    print("\nSummary: batch 1 -> median latency in ms, batch > 1 -> throughput in img/s (batch / median)")
    cols = [(c, f"{c['threads']}thr b{c['batch']} " + ("ms" if c["batch"] == 1 else "img/s")) for c in configs]
    width = max(13, *(len(h) + 2 for _, h in cols), *(len(ENGINES[k][0]) + 2 for k in keys if k in INT8_ENGINES))
    agreements = agreements or {}
    agr_head = f"{'top-1 agreement (conf.)':>26}" if agreements else ""
    print(f"{'engine':<22}" + "".join(f"{h:>{width}}" for _, h in cols) + agr_head)
    print("-" * (22 + width * len(cols) + len(agr_head)))
    for key in keys:
        name = ENGINES[key][0]
        cells = []
        for c, _ in cols:
            e = next((e for e in c["engines"] if e["engine"] == name), None)
            if not e or "median_ms" not in e:
                cells.append("-")
            else:
                cells.append(f"{e['median_ms']:.2f}" if c["batch"] == 1 else f"{e['images_per_s']:.1f}")
        agr = ""
        if agreements:
            a = agreements.get(key)
            agr = ("reference" if key == "ours" else
                   f"{100 * a['top1_agreement']:.1f}% ({100 * a['confident_agreement']:.1f}%)" if a else "-")
            agr = f"{agr:>26}"
        print(f"{name:<22}" + "".join(f"{v:>{width}}" for v in cells) + agr)
    float_peers = [k for k in keys if k not in ("ours", "baseline") and k not in INT8_ENGINES]
    int8_peers = [k for k in keys if k in INT8_ENGINES and k != "ours-int8"]
    rows = {"best peer": [], "ours/best peer (time)": [], "best int8 peer": [], "ours int8/best (time)": []}
    base_row = []
    for c, _ in cols:
        ours = next((e for e in c["engines"] if e["engine"] == OURS and "median_ms" in e), None)
        base = next((e for e in c["engines"] if e["key"] == "baseline" and "median_ms" in e), None)
        if ours and base:
            c["ours_over_baseline"] = ours["median_ms"] / base["median_ms"]
            c["ours_over_baseline_min"] = ours["min_ms"] / base["min_ms"]
            base_row.append(f"{c['ours_over_baseline']:.3f} ({c['ours_over_baseline_min']:.3f})")
        else:
            base_row.append("-")
        best, ratio = _best(c, "ours", float_peers, "peer")
        rows["best peer"].append(best)
        rows["ours/best peer (time)"].append(ratio)
        best, ratio = _best(c, "ours-int8", int8_peers, "int8_peer")
        rows["best int8 peer"].append(best)
        rows["ours int8/best (time)"].append(ratio)
    for label in ("best peer", "ours/best peer (time)"):
        print(f"{label:<22}" + "".join(f"{v:>{width}}" for v in rows[label]))
    print("(ours/best peer < 1: mobilenet-fast is faster; ratio of median times per call; float32 peers only)")
    if "ours-int8" in keys and int8_peers:
        for label in ("best int8 peer", "ours int8/best (time)"):
            print(f"{label:<22}" + "".join(f"{v:>{width}}" for v in rows[label]))
        print("(ours int8 against the fastest reduced-precision peer: " + ", ".join(ENGINES[k][0] for k in int8_peers)
              + ")")
    if agreements:
        a = next(iter(agreements.values()))
        print(f"(top-1 agreement with our float32 on {a['images']} evaluation crops of real photos, in brackets "
              f"on the {a['confident_images']} where our float32 is confident (top probability >= 0.5); "
              "measured once per engine, in its first configuration)")
    if any(v != "-" for v in base_row):
        print(f"{'ours/baseline':<22}" + "".join(f"{v:>{width}}" for v in base_row))
        print("(ours/baseline: median time ratio, in brackets the ratio of the minimum times; the baseline is "
              "the build in --baseline, not a peer)")


def photo_crops(cfg: Any, n_eval: int) -> Tuple[np.ndarray, np.ndarray]:
    """bench/int8_accuracy.py's calibration crops and its first ``n_eval`` evaluation crops, with
    the seeds of bench/int8_peers.py's defaults."""
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    from int8_accuracy import CALIBRATION, EVALUATION, crops

    args = (cfg.resolution, cfg.input_mean, cfg.input_std)
    return (crops(CALIBRATION, PHOTO_CALIBRATION_CROPS, *args, PHOTO_SEED),
            crops(EVALUATION, n_eval, *args, PHOTO_SEED + 1))


def build_artifacts(args: argparse.Namespace, keys: List[str], weights_path: str,
                    onnx_paths: Dict[int, Optional[str]], calibration: Optional[str]
                    ) -> Tuple[List[str], Dict[str, Dict[int, str]]]:
    """The models of the calibrated peers, per batch size (built or from the cache); an engine
    whose model cannot be made is skipped with a message."""
    artifacts: Dict[str, Dict[int, str]] = {}
    stem = os.path.splitext(os.path.basename(weights_path))[0]
    for key in [k for k in keys if k in CALIBRATED_ENGINES]:
        assert calibration is not None
        try:
            if key == "ours-int8":
                path = ours_int8_model(weights_path, np.load(calibration), stem)
                artifacts[key] = {b: path for b in args.batch}
                continue
            if key == "litert-int8":
                path = built_tflite(args.tf_python, weights_path, calibration)
                if path is not None:
                    artifacts[key] = {b: path for b in args.batch}
                continue
            cal = np.load(calibration)
            build = ort_int8_model if key == "onnxruntime-int8" else openvino_int8_model
            artifacts[key] = {b: build(str(onnx_paths[b]), cal, b, f"{stem}_b{b}") for b in args.batch}
        except Exception as e:  # a peer's library failing on our model skips that peer only
            _log(f"skipping {ENGINES[key][0]}: building its model failed: {type(e).__name__}: {e}")
    return [k for k in keys if k not in CALIBRATED_ENGINES or k in artifacts], artifacts


def main() -> int:
    ap = build_parser()
    args = ap.parse_args()
    for opt in ("runs", "rounds"):
        if getattr(args, opt) < 1:
            ap.error(f"--{opt} must be >= 1")
    if args.warmup < 0 or args.overhead_pairs < 0 or args.agreement < 0:
        ap.error("--warmup, --overhead-pairs and --agreement must be >= 0")

    import mobilenet_fast as mf

    weight_set = mf.load_weight_set(args.weights)
    cfg = weight_set.config
    h, w = cfg.resolution
    keys = select_engines(args)
    if "threads" not in inspect.signature(mf.load).parameters and max(args.threads) > 1:
        print("warning: this mobilenet-fast (mobilenet_fast.load) has no threads option: ours runs on 1 thread "
              "in every configuration, the peers on the requested count", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        if args.weights is None:
            weights_path = mf.default_model_path()
        elif args.weights.lower().endswith(".safetensors"):
            weights_path = os.path.abspath(args.weights)
        else:  # e.g. a TF frozen graph: hand the workers our format of the same tensors
            weights_path = os.path.join(tmp, os.path.splitext(os.path.basename(args.weights))[0] + ".safetensors")
            mf.save_weights(weights_path, weight_set)
        tfl = None
        if any(k in ("litert", "litert-builtin") for k in keys):
            tfl = tflite_path(args, weights_path)
            if tfl is None:
                keys = [k for k in keys if k not in ("litert", "litert-builtin")]
        onnx_paths: Dict[int, Optional[str]] = {b: None for b in args.batch}
        calibration = eval_path = None
        if args.agreement:
            cal_images, eval_images = photo_crops(cfg, args.agreement)
            eval_path = os.path.join(tmp, "evaluation.npy")
            np.save(eval_path, eval_images)
        if any(k in CALIBRATED_ENGINES for k in keys):
            calibration = os.path.join(tmp, "calibration.npy")
            np.save(calibration, cal_images if args.agreement else calibration_crops(cfg))
        stem = os.path.splitext(os.path.basename(weights_path))[0]
        if any(k in ("onnxruntime", "openvino", "onnxruntime-int8", "openvino-int8", "openvino-default")
               for k in keys):
            from mobilenet_fast.export_onnx import export_onnx

            for b in args.batch:  # a fixed batch size, like every other engine gets
                onnx_paths[b] = os.path.join(tmp, f"{stem}_b{b}.onnx")
                export_onnx(weight_set, onnx_paths[b], fold_bn=True, batch=b)
        keys, artifacts = build_artifacts(args, keys, weights_path, onnx_paths, calibration)
        base_spec = {"weights": weights_path, "tflite": tfl, "onnx": onnx_paths, "height": h, "width": w,
                     "num_classes": cfg.num_classes, "torch_mode": args.torch_mode,
                     "openvino_hint": args.openvino_hint,
                     "baseline": os.path.abspath(args.baseline) if args.baseline else None,
                     "calibration": calibration, "artifacts": artifacts, "eval": eval_path}
        print(f"MobileNetV1 alpha {cfg.alpha:g}, {h}x{w}, {cfg.num_classes} classes, padding {cfg.padding}; "
              f"engines: {', '.join(ENGINES[k][0] for k in keys)}; isolation: {args.isolation}; "
              f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}", flush=True)
        if calibration:
            print(f"int8 calibration: {len(np.load(calibration))} crops of "
                  + ("bench/int8_accuracy.py's calibration photos" if args.agreement else "examples/*.png"), flush=True)
        evals: Dict[str, Dict[str, List[Any]]] = {}
        configs = [run_config(args, keys, base_spec, t, b, evals) for t in args.threads for b in args.batch]

    agreements = agreement_table(evals)
    print_summary(configs, keys, agreements)
    if args.json:
        doc = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "model": {"alpha": cfg.alpha, "resolution": [h, w], "num_classes": cfg.num_classes,
                      "padding": cfg.padding, "weights": args.weights or "shipped"},
            "settings": {k: getattr(args, k) for k in ("runs", "warmup", "rounds", "threads", "batch", "engines",
                                                       "isolation", "overhead_pairs", "torch_mode", "openvino_hint",
                                                       "precision", "skip", "agreement")},
            "machine": {"platform": platform.platform(), "machine": platform.machine(), "cpus": os.cpu_count(),
                        "python": platform.python_version(), "numpy": np.__version__,
                        "load_average_end": _load_average()},
            "configs": configs,
            "agreement": agreements or None,
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        sys.exit(worker_main())
    sys.exit(main())
