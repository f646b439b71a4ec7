"""A performance *model* of our NEON kernels on ARM cores we cannot hold: llvm-mca on the
steady-state inner loop of each kernel, and from it a predicted whole-network time.

What it does:

1. cross-compiles the NEON kernel sources to assembly exactly as the aarch64 build does
   (``aarch64-linux-gnu-g++ -O3``, the same per-file ``-march`` for the dot-product and i8mm
   GEMMs);
2. in each kernel's full-size tile function, takes the innermost loop with the most
   multiply-add work (the loop over k of a GEMM tile, the channel loop of a depthwise block) and
   runs ``llvm-mca`` on it for each core model: Cortex-A53 (Pi 3 / Zero 2), Cortex-A55,
   Cortex-A72 (Pi 4; LLVM models it with its Cortex-A57 model) and Neoverse N1 standing in for the
   Cortex-A76 of the Pi 5 (the same microarchitecture; LLVM's ``cortex-a76`` entry reuses the
   A57 model, which gives it half the A76's 128-bit FP/SIMD width);
3. reports cycles per iteration, multiply-adds per cycle and the fraction of that core's
   arithmetic peak, where the peak is what the same llvm-mca model gives for a stream of
   independent multiply-add instructions of the kind the path can use (fp32: ``fmla .4s``; int8
   with dot product: ``sdot``; int8 widening: ``smlal .4s``, 4 multiply-adds per instruction);
4. predicts the network time per layer as multiply-adds / (kernel multiply-adds per cycle x clock)
   and sums it: a compute-bound model that leaves out requantisation, packing, memory stalls and
   threading overheads, so the real time is longer; ``mobilenet-fast bench`` on a board prints it
   beside what it measures.

    python bench/arm_model.py                       # the table (markdown) on stdout
    python bench/arm_model.py --json model.json     # also the numbers, for `mobilenet-fast bench`

Needs ``aarch64-linux-gnu-g++`` (Debian's g++-aarch64-linux-gnu) and ``llvm-mca`` (Debian's llvm;
``llvm-mca-19`` or newer has the Neoverse N1 model; the newest one found is used).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: core label -> (llvm-mca -mcpu, extra -mattr, has dot product)
CORES: Dict[str, Tuple[str, str, bool]] = {
    "Cortex-A53": ("cortex-a53", "", False),
    "Cortex-A55": ("cortex-a55", "+dotprod", True),
    "Cortex-A72": ("cortex-a72", "", False),
    "Cortex-A76 (N1 model)": ("neoverse-n1", "+dotprod", True),
}
#: MIDR part numbers (implementer 0x41, Arm) of each modelled core, as /proc/cpuinfo's "CPU part"
#: shows them: what `mobilenet-fast bench` matches on a board.
CPU_PARTS = {"Cortex-A53": [0xd03], "Cortex-A55": [0xd05], "Cortex-A72": [0xd08], "Cortex-A76 (N1 model)": [0xd0b, 0xd0c]}

#: kernel label -> (source, -march extra, symbol regexp of its steady-state function, datatype).
#: GEMMs: the kernels' own full-size tile (its loop over k); depthwise and stem: the interior
#: blocks of bench/arm_model_kernels.cpp (the same templates, no masks or padding).
HARNESS = "bench/arm_model_kernels.cpp"
KERNELS: Dict[str, Tuple[str, str, str, str]] = {
    "fp32 GEMM 8x8 (pointwise, classifier)": ("cpp/src/kernels/neon/gemm_neon.cpp", "", r"gemm_tile.*VecNeon.*Li8E", "fp32"),
    "fp32 depthwise s1": (HARNESS, "", r"^mca_dw_f32_s1$", "fp32"),
    "fp32 depthwise s2": (HARNESS, "", r"^mca_dw_f32_s2$", "fp32"),
    "fp32 stem": (HARNESS, "", r"^mca_stem_f32$", "fp32"),
    "int8 GEMM widening 8x8 k-major (pointwise, stem, classifier)": (
        "cpp/src/kernels/neon/qgemm_neon_k16.cpp", "", r"tileILi8ELb0E", "int8w"),
    "int8 depthwise s1 (vmlal)": (HARNESS, "", r"^mca_qdw_s1$", "int8w"),
    "int8 depthwise s2 (vmlal)": (HARNESS, "", r"^mca_qdw_s2$", "int8w"),
    "int8 GEMM sdot 4x16 pipelined (pointwise, stem, classifier)": (
        "cpp/src/kernels/neon/qgemm_neon_dotprod.cpp", "-march=armv8.2-a+dotprod", r"dot_chunks_4x16", "int8dot"),
    "int8 GEMM 5x16 broadcast sdot (k > 4096; the i8mm level's loop)": (
        "cpp/src/kernels/neon/qgemm_neon_dotprod.cpp", "-march=armv8.2-a+dotprod",
        r"qgemm_tile.*QVecNeonDotELi5ENS0_9QgemmToU8", "int8dot"),
}

#: multiply-adds per instruction (128-bit forms), by mnemonic and arrangement.
def macs_of(line: str) -> int:
    m = re.match(r"\s*(\w+)\s+v\d+\.(\w+)", line)
    if not m:
        return 0
    op, arr = m.group(1), m.group(2)
    if op in ("sdot", "udot", "usdot"):
        return 16 if arr == "4s" else 8
    if op in ("fmla", "fmls"):
        return {"4s": 4, "2s": 2, "2d": 2}.get(arr, 0)
    if op in ("smlal", "smlal2", "umlal", "umlal2", "smull", "smull2"):
        return 4 if arr == "4s" else 8 if arr == "8h" else 0
    if op == "mul" and arr in ("8h", "4s"):  # products summed by a following sadalp
        return 8 if arr == "8h" else 4
    return 0


@dataclass
class Loop:
    name: str
    body: List[str]
    macs: int


def find_tool(names: List[str]) -> Optional[str]:
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    return None


def newest_mca() -> Optional[str]:
    found = sorted(glob.glob("/usr/bin/llvm-mca-*"), key=lambda p: int(re.sub(r"\D", "", os.path.basename(p)) or 0))
    return found[-1] if found else find_tool(["llvm-mca"])


def compile_asm(cxx: str, source: str, extra: str, out_dir: str) -> str:
    out = os.path.join(out_dir, os.path.basename(source) + (extra.replace("-", "_").replace("+", "_") or "") + ".s")
    cmd = [cxx, "-std=c++17", "-O3", "-DNDEBUG", "-DMBF_HAVE_NEON_KERNELS=1", f"-I{ROOT}/cpp/include",
           f"-I{ROOT}/cpp/src", "-S", os.path.join(ROOT, source), "-o", out]
    if extra:
        cmd.insert(1, extra)
    subprocess.run(cmd, check=True)
    return out


def functions(asm: str) -> Dict[str, List[str]]:
    out: Dict[str, List[str]] = {}
    cur: Optional[str] = None
    for line in open(asm).read().splitlines():
        m = re.match(r"^([_A-Za-z][\w.$]*):", line)
        if m:
            cur = m.group(1)
            out[cur] = []
            continue
        if cur is not None:
            out[cur].append(line)
    return out


def loops(lines: List[str]) -> List[Loop]:
    """Innermost backward-branch loops of a function's body (local labels .Lxx)."""
    labels = {}
    for i, l in enumerate(lines):
        m = re.match(r"^(\.L\w+):", l)
        if m:
            labels[m.group(1)] = i
    spans = []
    for i, l in enumerate(lines):
        m = re.match(r"\s+(b\.?(?:eq|ne|gt|ge|lt|le|hi|hs|lo|ls|mi|pl|cs|cc|vs|vc)|cbnz|cbz|b|tbnz|tbz)\s+"
                     r"(?:\w+,\s*)*(?:#\d+,\s*)?(\.L\w+)", l)
        if m and m.group(2) in labels and labels[m.group(2)] < i:
            spans.append((labels[m.group(2)], i, m.group(2)))
    found = []
    for a, b, name in spans:
        if any(a < a2 and b2 <= b for a2, b2, _ in spans if (a2, b2) != (a, b)):
            continue  # an outer loop: keep the innermost ones
        body = [x for x in lines[a + 1:b + 1]
                if x.strip() and not x.strip().startswith((".", "//")) and not re.match(r"^\.L\w+:", x)]
        found.append(Loop(name, [x.strip() for x in body], sum(macs_of(x) for x in body)))
    return found


def mca_cycles(mca: str, cpu: str, attr: str, body: List[str], iterations: int = 200) -> float:
    text = "\n".join(body) + "\n"
    args = [mca, "-mtriple=aarch64", f"-mcpu={cpu}", f"-iterations={iterations}",
            "-skip-unsupported-instructions=parse-failure"]
    if attr:
        args.append(f"-mattr={attr}")
    r = subprocess.run(args, input=text, capture_output=True, text=True)
    m = re.search(r"Total Cycles:\s+(\d+)", r.stdout)
    if not m:
        raise RuntimeError(f"llvm-mca failed for {cpu}: {r.stderr[:300]}")
    return int(m.group(1)) / iterations


def peak(mca: str, cpu: str, attr: str, kind: str) -> float:
    """Multiply-adds per cycle of a stream of independent instructions of the kind."""
    ins = {"fp32": "fmla v{0}.4s, v20.4s, v21.4s", "int8dot": "sdot v{0}.4s, v20.16b, v21.16b",
           "int8w": "smlal v{0}.4s, v20.4h, v21.4h"}[kind]
    body = [ins.format(i) for i in range(16)]
    return sum(macs_of(b) for b in body) / mca_cycles(mca, cpu, attr, body)


def analyse(cxx: str, mca: str) -> Dict[str, Dict[str, Dict[str, float]]]:
    results: Dict[str, Dict[str, Dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        asm_cache: Dict[Tuple[str, str], Dict[str, List[str]]] = {}
        for label, (src, extra, pattern, kind) in KERNELS.items():
            if (src, extra) not in asm_cache:
                asm_cache[(src, extra)] = functions(compile_asm(cxx, src, extra, tmp))
            funcs = asm_cache[(src, extra)]
            cands = [(n, b) for n, b in funcs.items() if re.search(pattern, n)]
            if not cands:
                raise RuntimeError(f"{label}: no function matches {pattern}")
            best = max((lp for _, body in cands for lp in loops(body)), key=lambda lp: lp.macs)
            results[label] = {}
            for core, (cpu, attr, dot) in CORES.items():
                if kind == "int8dot" and not dot:
                    continue
                cyc = mca_cycles(mca, cpu, attr, best.body)
                pk = peak(mca, cpu, attr, kind)
                results[label][core] = {"cycles": cyc, "macs": best.macs, "instructions": len(best.body),
                                        "macs_per_cycle": best.macs / cyc, "peak_macs_per_cycle": pk,
                                        "fraction_of_peak": best.macs / cyc / pk}
    return results


def network_times(results: Dict[str, Dict[str, Dict[str, float]]]) -> Dict[str, Dict[str, float]]:
    """Predicted 1-thread time (ms per GHz-normalised: cycles / 1e6) of MobileNetV1 1.0/224 per core
    and precision: each layer's multiply-adds at the rate of the kernel that runs it."""
    from mobilenet_fast.architecture import MobileNetV1

    arch = MobileNetV1(1.0, (224, 224), 1001, "tf_same")
    out: Dict[str, Dict[str, float]] = {}
    for core, (_, _, dot) in CORES.items():
        rate = {k: v[core]["macs_per_cycle"] for k, v in results.items() if core in v}
        gemm8 = [k for k in results if k.startswith("int8 GEMM sdot" if dot else "int8 GEMM widening")][0]
        gemm32 = [k for k in results if k.startswith("fp32 GEMM")][0]
        plans = {
            "fp32": {"conv3x3": "fp32 stem", "dwconv3x3": "fp32 depthwise s{}", "pwconv": gemm32, "dense": gemm32},
            "int8": {"conv3x3": gemm8, "dwconv3x3": "int8 depthwise s{} (vmlal)", "pwconv": gemm8, "dense": gemm8},
        }
        for prec, plan in plans.items():
            cycles = sum(s.macs / rate[plan[s.kind].format(s.stride)] for s in arch if s.kind in plan)
            out.setdefault(core, {})[prec] = cycles  # cycles for one image
    return out


#: Boards: core, clock in GHz, and ncnn's published benchncnn rows (Tencent/ncnn benchmark/README.md,
#: commit 08c2dacb; 4 threads, loop count 8), mobilenet / mobilenet_int8 avg ms.
BOARDS = [
    ("Raspberry Pi 3 B+", "Cortex-A53", 1.4, {"fp32": 152.31}),
    ("Raspberry Pi 4 B", "Cortex-A72", 1.5, {"fp32": 86.01, "int8": 168.48}),
    ("Raspberry Pi 4 B (1.8 GHz firmware)", "Cortex-A72", 1.8, {}),
    ("Raspberry Pi 5", "Cortex-A76 (N1 model)", 2.4, {}),
]


def markdown(results, times, mca: str) -> str:
    cores = list(CORES)
    lines = [f"llvm-mca: `{os.path.basename(mca)}`; inner loops of `aarch64-linux-gnu-g++ -O3` output. "
             "Cells: multiply-adds per cycle in the loop / % of the core model's peak for that path "
             "(fp32: fmla; int8 dot: sdot; int8 widening: smlal).", "",
             "| kernel (loop) | " + " | ".join(cores) + " |", "|---|" + "---|" * len(cores)]
    for label, per in results.items():
        cells = []
        for c in cores:
            r = per.get(c)
            cells.append("-" if r is None else f"{r['macs_per_cycle']:.2f} / {100 * r['fraction_of_peak']:.0f}%")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Predicted MobileNetV1 1.0/224, batch 1 (compute-bound model: no requantisation, packing, memory "
              "or threading costs; 4 threads = 1 thread / 4):", "",
              "| board | core, clock | ours fp32 1 thr | ours fp32 4 thr | ours int8 1 thr | ours int8 4 thr | "
              "ncnn fp32 (4 thr, published) | ncnn int8 (4 thr, published) |",
              "|---|---|---|---|---|---|---|---|"]
    for board, core, ghz, ncnn in BOARDS:
        t = times[core]
        f1, i1 = t["fp32"] / (ghz * 1e6), t["int8"] / (ghz * 1e6)
        lines.append(f"| {board} | {core}, {ghz} GHz | {f1:.1f} ms | {f1 / 4:.1f} ms | {i1:.1f} ms | {i1 / 4:.1f} ms | "
                     f"{ncnn.get('fp32', '-')}{' ms' if 'fp32' in ncnn else ''} | "
                     f"{ncnn.get('int8', '-')}{' ms' if 'int8' in ncnn else ''} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="also write the numbers here")
    ap.add_argument("--cxx", default="aarch64-linux-gnu-g++")
    ap.add_argument("--mca", default=None, help="llvm-mca binary (default: the newest llvm-mca-N installed)")
    args = ap.parse_args(argv)
    mca = args.mca or newest_mca()
    if not mca or not shutil.which(args.cxx):
        print("needs aarch64-linux-gnu-g++ and llvm-mca (apt-get install g++-aarch64-linux-gnu llvm-19)",
              file=sys.stderr)
        return 2
    results = analyse(args.cxx, mca)
    times = network_times(results)
    print(markdown(results, times, mca))
    if args.json:
        rates = {core: {k: round(v[core]["macs_per_cycle"], 4) for k, v in results.items() if core in v}
                 for core in CORES}
        fp = [k for k in results if k.startswith("fp32 GEMM")][0]
        dot = [k for k in results if k.startswith("int8 GEMM sdot")][0]
        wide = [k for k in results if k.startswith("int8 GEMM widening")][0]
        plans = {  # layer kind (depthwise: by stride) -> the kernel that runs it
            "float32": {"conv3x3": "fp32 stem", "dwconv3x3_s1": "fp32 depthwise s1",
                        "dwconv3x3_s2": "fp32 depthwise s2", "pwconv": fp, "dense": fp},
            "int8_dotprod": {"conv3x3": dot, "dwconv3x3_s1": "int8 depthwise s1 (vmlal)",
                             "dwconv3x3_s2": "int8 depthwise s2 (vmlal)", "pwconv": dot, "dense": dot},
            "int8_widening": {"conv3x3": wide, "dwconv3x3_s1": "int8 depthwise s1 (vmlal)",
                              "dwconv3x3_s2": "int8 depthwise s2 (vmlal)", "pwconv": wide, "dense": wide},
        }
        with open(args.json, "w") as f:
            json.dump({"about": "llvm-mca model of the NEON kernels' steady-state loops (bench/arm_model.py): "
                                "multiply-adds per cycle of each kernel on each core model; a compute-bound "
                                "prediction, not a measurement",
                       "llvm_mca": os.path.basename(mca), "cores": {c: {"llvm_mcpu": CORES[c][0], "dotprod": CORES[c][2],
                                                                         "cpu_parts": CPU_PARTS[c]} for c in CORES},
                       "macs_per_cycle": rates, "plans": plans}, f, indent=1, sort_keys=True)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
