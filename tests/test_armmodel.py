"""The llvm-mca model of the NEON kernels (python/mobilenet_fast/arm_model.json, written by
bench/arm_model.py) and what `mobilenet-fast bench` prints with it on an ARM board. The boards
are simulated: /proc/cpuinfo text and the clock are passed in, or the detection is replaced."""

from __future__ import annotations

import json

import pytest

from mobilenet_fast import armmodel, cli
from mobilenet_fast.architecture import MobileNetV1

PI4_CPUINFO = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3
"""


def test_detect_core_from_cpuinfo():
    core = armmodel.detect_core(PI4_CPUINFO, "1800000\n", machine="aarch64")
    assert core == armmodel.ArmCore("Cortex-A72", 1.8)
    pi5 = PI4_CPUINFO.replace("0xd08", "0xd0b")
    assert armmodel.detect_core(pi5, "2400000", machine="aarch64").name == "Cortex-A76 (N1 model)"
    assert armmodel.detect_core(PI4_CPUINFO, "", machine="armv7l") == armmodel.ArmCore("Cortex-A72", None)
    # not ARM, another implementer, an unmodelled part, garbage: no prediction
    assert armmodel.detect_core(PI4_CPUINFO, "1800000", machine="x86_64") is None
    assert armmodel.detect_core(PI4_CPUINFO.replace("0x41", "0x51"), "1", machine="aarch64") is None
    assert armmodel.detect_core(PI4_CPUINFO.replace("0xd08", "0xd44"), "1", machine="aarch64") is None
    assert armmodel.detect_core("CPU part\t: banana\n", "1", machine="aarch64") is None


def test_model_data_covers_every_plan():
    data = armmodel.model_data()
    assert set(data["cores"]) == set(data["macs_per_cycle"])
    for core, rates in data["macs_per_cycle"].items():
        for name, plan in data["plans"].items():
            if name == "int8_dotprod" and not data["cores"][core]["dotprod"]:
                continue
            for kernel in plan.values():
                assert rates[kernel] > 0, (core, kernel)


def test_predict_sums_layers_at_their_kernels_rates():
    data = armmodel.model_data()
    arch = MobileNetV1(1.0, (224, 224), 1001, "tf_same")
    rates = data["macs_per_cycle"]["Cortex-A72"]
    plan = data["plans"]["float32"]
    want = sum(s.macs / rates[plan[f"{s.kind}_s{s.stride}" if s.kind == "dwconv3x3" else s.kind]]
               for s in arch if s.kind in ("conv3x3", "dwconv3x3", "pwconv", "dense"))
    assert armmodel.predict("Cortex-A72", arch, "float32", False) == pytest.approx(want)
    # int8 with dot product needs fewer cycles than without on the same core model (A55)
    assert armmodel.predict("Cortex-A55", arch, "int8", True) < armmodel.predict("Cortex-A55", arch, "int8", False)
    # a smaller network, fewer cycles
    small = MobileNetV1(0.25, (128, 128), 1001, "tf_same")
    assert armmodel.predict("Cortex-A72", small, "float32", False) < armmodel.predict("Cortex-A72", arch, "float32", False)


def _bench(capsys, argv):
    assert cli.main(["bench", "--runs", "2", "--warmup", "0", "--threads", "1", "--resolution", "128"] + argv) == 0
    return capsys.readouterr().out


def test_bench_prints_the_prediction_on_a_modelled_board(monkeypatch, capsys):
    monkeypatch.setattr(armmodel, "detect_core", lambda: armmodel.ArmCore("Cortex-A72", 1.8))
    out = _bench(capsys, [])
    assert "llvm-mca model for this core (Cortex-A72" in out and "1.8 GHz" in out
    data = json.loads(_bench(capsys, ["--json"]))
    m = data["arm_model"]
    arch = MobileNetV1(1.0, (128, 128), 1001, "tf_same")
    assert m["core"] == "Cortex-A72" and m["ghz"] == 1.8
    assert m["predicted_ms_per_image_1_thread"] == pytest.approx(
        armmodel.predict("Cortex-A72", arch, "float32", False) / 1.8e6)
    assert m["measured_ms_per_image_1_thread_equivalent"] > 0


def test_bench_prints_no_prediction_elsewhere(monkeypatch, capsys):
    monkeypatch.setattr(armmodel, "detect_core", lambda: None)
    assert "llvm-mca" not in _bench(capsys, [])
    assert json.loads(_bench(capsys, ["--json"]))["arm_model"] is None
