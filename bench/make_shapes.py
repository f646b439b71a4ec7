"""Write the MobileNetV1 layer shapes the C++ microbenchmarks read (bench/shapes/*.txt).

One layer per line: ``name kind H W Cin Cout stride t,l,b,r`` with H, W the layer's input size and
t,l,b,r its explicit pads, taken from ``mobilenet_fast.architecture`` (the same table
``mobilenet-fast info`` prints). Only the pure-Python architecture module is loaded, from this
checkout, so no build of the C++ extension is needed::

    python bench/make_shapes.py                                  # 1.0/224 -> bench/shapes/mobilenet_v1_1.0_224.txt
    python bench/make_shapes.py --alpha 0.5 --resolution 160     # -> bench/shapes/mobilenet_v1_0.5_160.txt
    python bench/make_shapes.py --check                          # exit 1 if the committed file is stale
"""

from __future__ import annotations

import argparse
import importlib
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _architecture() -> types.ModuleType:
    # A bare package object pointing at python/mobilenet_fast lets us import its architecture
    # submodule without running the package __init__ (which needs the compiled _core).
    pkg = types.ModuleType("mobilenet_fast")
    pkg.__path__ = [str(ROOT / "python" / "mobilenet_fast")]  # type: ignore[attr-defined]
    saved = sys.modules.get("mobilenet_fast")
    sys.modules["mobilenet_fast"] = pkg
    try:
        return importlib.import_module("mobilenet_fast.architecture")
    finally:
        if saved is not None:
            sys.modules["mobilenet_fast"] = saved


def shapes_text(alpha: float, resolution: int, classes: int, padding: str) -> str:
    arch = _architecture()
    net = arch.MobileNetV1(alpha=alpha, resolution=resolution, num_classes=classes, padding=padding)
    lines = [
        f"# MobileNetV1 alpha={alpha:g} resolution={resolution} classes={classes} padding={padding}",
        f"# {net.total_macs:,} multiply-adds; written by bench/make_shapes.py",
        "# name kind H W Cin Cout stride pads(t,l,b,r)   (H, W: input size of the layer)",
    ]
    for layer in net.layers:
        pads = ",".join(str(p) for p in layer.pads)
        lines.append(f"{layer.name} {layer.kind} {layer.in_h} {layer.in_w} {layer.in_channels} "
                     f"{layer.out_channels} {layer.stride} {pads}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--padding", default="tf_same", choices=("tf_same", "symmetric"))
    p.add_argument("-o", "--output", type=Path, help="default: bench/shapes/mobilenet_v1_<alpha>_<resolution>.txt")
    p.add_argument("--check", action="store_true", help="compare with the output file instead of writing it")
    args = p.parse_args(argv)
    text = shapes_text(args.alpha, args.resolution, args.classes, args.padding)
    alpha = f"{args.alpha:g}" if "." in f"{args.alpha:g}" else f"{args.alpha:g}.0"  # 1.0, 0.75, 0.5
    out = args.output or ROOT / "bench" / "shapes" / f"mobilenet_v1_{alpha}_{args.resolution}.txt"
    if args.check:
        if not out.exists() or out.read_text() != text:
            print(f"{out} is missing or stale; rerun bench/make_shapes.py", file=sys.stderr)
            return 1
        print(f"{out} is up to date")
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out} ({text.count(chr(10)) - 3} layers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
