"""What the llvm-mca model of our NEON kernels predicts for the ARM core this runs on.

``arm_model.json`` (written by ``bench/arm_model.py``) holds, per modelled core (Cortex-A53, A55,
A72, and Neoverse N1 standing in for the A76), the multiply-adds per cycle of each kernel's
steady-state loop. :func:`predict` sums a network's layers at those rates: a compute-bound lower
bound (no requantisation, packing, memory or threading costs), which ``mobilenet-fast bench``
prints beside what it measures on a board, so that a user with one can tell us how good the
model is.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from typing import Any, Dict, Optional

from .architecture import MobileNetV1

__all__ = ["ArmCore", "detect_core", "predict", "model_data"]

_JSON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "arm_model.json")


def model_data() -> Dict[str, Any]:
    """The model's numbers (``arm_model.json``)."""
    with open(_JSON, encoding="utf-8") as f:
        data: Dict[str, Any] = json.load(f)
    return data


@dataclass(frozen=True)
class ArmCore:
    """A modelled core found on this machine: its model's name and, when the kernel says, its
    maximum clock."""

    name: str
    ghz: Optional[float]


def detect_core(cpuinfo: Optional[str] = None, max_khz: Optional[str] = None,
                machine: Optional[str] = None) -> Optional[ArmCore]:
    """The modelled core this machine has (the first CPU's "CPU part" in ``/proc/cpuinfo``,
    implementer 0x41), or None (not ARM, or a core the model does not cover). The arguments
    replace the files read (for tests)."""
    m = (machine if machine is not None else platform.machine()).lower()
    if not (m.startswith("aarch64") or m.startswith("arm")):
        return None
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            return None
    implementer = part = None
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        try:
            if key == "cpu implementer" and implementer is None:
                implementer = int(value.strip(), 0)
            elif key == "cpu part" and part is None:
                part = int(value.strip(), 0)
        except ValueError:
            return None
    if implementer != 0x41 or part is None:
        return None
    name = next((n for n, c in model_data()["cores"].items() if part in c["cpu_parts"]), None)
    if name is None:
        return None
    if max_khz is None:
        try:
            with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", encoding="ascii") as f:
                max_khz = f.read()
        except OSError:
            max_khz = ""
    try:
        ghz: Optional[float] = int(max_khz.strip()) / 1e6
    except ValueError:
        ghz = None
    return ArmCore(name, ghz if ghz and ghz > 0 else None)


def predict(core: str, arch: MobileNetV1, precision: str, dotprod: bool) -> float:
    """Predicted cycles for one image on one core of the model ``core``: every layer's
    multiply-adds at the rate of the kernel that runs it. ``precision``: "float32" or "int8";
    ``dotprod``: whether the int8 GEMMs run on the dot-product kernels (an int8 model on a core
    and build that have them)."""
    data = model_data()
    rates = data["macs_per_cycle"][core]
    plan = data["plans"]["float32" if precision == "float32" else ("int8_dotprod" if dotprod else "int8_widening")]
    cycles = 0.0
    for s in arch:
        key = f"{s.kind}_s{s.stride}" if s.kind == "dwconv3x3" else s.kind
        if key in plan:
            cycles += s.macs / rates[plan[key]]
    return cycles
