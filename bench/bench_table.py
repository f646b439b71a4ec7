"""Turn the JSON output of mbf_kernels_bench into the markdown table of bench/README.md.

    mbf_kernels_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \\
        --benchmark_out=bench.json --benchmark_out_format=json
    python bench/bench_table.py bench.json

One row per layer, one column per ISA: "GFLOP/s (%peak)" from the median aggregate when there
are repetitions, else from the single run. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Dict, List, Tuple


def main(argv: List[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("json_file")
    args = p.parse_args(argv)
    with open(args.json_file) as f:
        data = json.load(f)

    have_median = any(b.get("aggregate_name") == "median" for b in data["benchmarks"])
    cells: Dict[Tuple[str, str], str] = {}
    rows: List[Tuple[str, str]] = []  # (layer, kernel)
    labels: Dict[str, str] = {}
    isas: List[str] = []
    for b in data["benchmarks"]:
        if have_median and b.get("aggregate_name") != "median":
            continue
        name = b.get("run_name", b["name"]).removesuffix("/real_time")
        layer, kernel, isa = name.split("/")
        if isa not in isas:
            isas.append(isa)
        if (layer, kernel) not in rows:
            rows.append((layer, kernel))
        labels.setdefault(layer, b.get("label", ""))
        gflops = b.get("GFLOP/s")
        peak = b.get("%peak")
        cell = "" if gflops is None else f"{gflops:.1f}"
        if peak is not None:
            cell += f" ({peak:.0f}%)" if peak >= 10 else f" ({peak:.1f}%)"
        if layer == "plan":
            ms = b["real_time"] if b.get("time_unit") == "ms" else b["real_time"] / 1e3
            cell += f", {ms:.1f} ms"
        cells[(layer, isa)] = cell

    ctx = data.get("context", {})
    peaks = ", ".join(f"{i} {float(ctx['peak_gflops_' + i]):.1f}" for i in isas if f"peak_gflops_{i}" in ctx)
    print(f"FMA peak of one core (GFLOP/s): {peaks}")
    print()
    print("| layer | kernel | shape | " + " | ".join(isas) + " |")
    print("|---|---|---|" + "---|" * len(isas))
    for layer, kernel in rows:
        print(f"| {layer} | {kernel} | {labels[layer]} | " + " | ".join(cells.get((layer, i), "") for i in isas) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
