"""MobileNetV1 layer list: totals against the paper, shapes, pads, cost ratios, argument checks, `info`."""

from __future__ import annotations

import json
import math
import re

import pytest

from mobilenet_fast import cli
from mobilenet_fast.architecture import MobileNetV1, activation_clamp, conv_output_and_pads
from mobilenet_fast.errors import InputError

# Howard et al. 2017, "MobileNets", Table 6 (width multiplier) and Table 7 (resolution):
# (alpha, resolution, million mult-adds, million parameters).
PAPER = [
    (1.0, 224, 569, 4.2),
    (0.75, 224, 325, 2.6),
    (0.5, 224, 149, 1.3),
    (0.25, 224, 41, 0.5),
    (1.0, 192, 418, 4.2),
    (1.0, 160, 290, 4.2),
    (1.0, 128, 186, 4.2),
]


@pytest.mark.parametrize("alpha,resolution,paper_macs_m,paper_params_m", PAPER,
                         ids=[f"{a}-{r}" for a, r, _, _ in PAPER])
def test_totals_match_paper(alpha, resolution, paper_macs_m, paper_params_m):
    arch = MobileNetV1(alpha, resolution, 1000)
    macs, params = arch.total_macs, arch.total_params

    # Mult-adds: the paper gives 3 significant figures, so 1% is a real check.
    assert abs(macs - paper_macs_m * 1e6) <= 0.01 * paper_macs_m * 1e6, f"{macs / 1e6:.2f}M MACs"

    # Parameters: the paper rounds to 0.1M, which only pins the count to +-0.05M. That interval
    # is +-1.2% of 4.2M and +-1.9% of 2.6M, but +-3.8% of 1.3M and +-10% of 0.5M. So the honest
    # check for every row is "rounds to the paper's figure"; a 1% check is only meaningful (and
    # only made) where the figure is >= 2M. At alpha 0.5 we have 1.326M (2% above 1.3M) and at
    # alpha 0.25 0.467M (6.6% below 0.5M): both are the paper's numbers after its rounding, and a
    # 1% check against them would test the paper's rounding rather than our count.
    assert round(params / 1e6, 1) == paper_params_m, f"{params / 1e6:.3f}M params"
    if paper_params_m >= 2.0:
        assert abs(params - paper_params_m * 1e6) <= 0.01 * paper_params_m * 1e6, f"{params / 1e6:.3f}M params"


def test_params_exact_against_keras_count():
    # Keras' MobileNet(alpha=1.0, 224, 1000) summary: 4,253,864 total params, 21,888 of them
    # non-trainable (BN mean/var). Keras keeps 4 BN values per channel (gamma, beta, mean, var,
    # 10,944 channels); our count keeps the one bias per channel that BN folds into.
    arch = MobileNetV1(1.0, 224, 1000)
    bn_channels = 21_888 // 2
    assert arch.total_params == 4_253_864 - 3 * bn_channels == 4_221_032
    # Parameters do not depend on the input size.
    assert MobileNetV1(1.0, 128, 1000).total_params == arch.total_params


def test_macs_scale_with_resolution_except_classifier():
    # Both sizes divisible by 32, so every feature map of 448 has exactly 4x the pixels.
    a224, a448 = MobileNetV1(1.0, 224, 1000), MobileNetV1(1.0, 448, 1000)
    fc = 1024 * 1000
    assert a448.total_macs - fc == 4 * (a224.total_macs - fc)


def test_layer_count_and_order():
    arch = MobileNetV1(1.0, 224, 1000)
    assert len(arch) == 1 + 26 + 1 + 1 == 29
    names = [layer.name for layer in arch]
    assert names[0] == "stem" and names[-2:] == ["pool", "classifier"]
    for i in range(13):
        assert names[1 + 2 * i] == f"blocks.{i}.dw"
        assert names[2 + 2 * i] == f"blocks.{i}.pw"
    kinds = [layer.kind for layer in arch]
    assert kinds == ["conv3x3"] + ["dwconv3x3", "pwconv"] * 13 + ["avgpool", "dense"]


def test_channels_at_alpha_075():
    arch = MobileNetV1(0.75, 224, 1000)
    assert arch.stem_channels == 24
    assert arch.block_channels == [48, 96, 96, 192, 192, 384, 384, 384, 384, 384, 384, 768, 768]
    assert arch.feature_channels == 768
    # The chain of channels is consistent: each layer's input is the previous layer's output.
    prev = 3
    for layer in arch:
        assert layer.in_channels == prev, layer.name
        prev = layer.out_channels
    assert arch.layer("classifier").in_channels == 768 and arch.layer("classifier").out_channels == 1000
    assert arch.layer("stem").weight_shape == (3, 3, 3, 24)
    assert arch.layer("blocks.0.dw").weight_shape == (3, 3, 24)
    assert arch.layer("blocks.0.pw").weight_shape == (24, 48)


def test_final_spatial_size_224():
    arch = MobileNetV1(1.0, 224, 1000)
    assert arch.output_hw == (7, 7)
    assert (arch.layer("blocks.12.pw").out_h, arch.layer("blocks.12.pw").out_w) == (7, 7)
    assert arch.layer("stem").out_h == 112
    assert MobileNetV1(1.0, 224, 0).output_hw == (7, 7)


def _check_tf_same_pads(arch):
    checked = 0
    for layer in arch:
        if layer.kind not in ("conv3x3", "dwconv3x3"):
            assert layer.pads == (0, 0, 0, 0), layer.name
            continue
        top, left, bottom, right = layer.pads
        if layer.stride == 1:
            assert layer.pads == (1, 1, 1, 1), layer.name
            assert (layer.out_h, layer.out_w) == (layer.in_h, layer.in_w)
            continue
        checked += 1
        # per axis: odd input -> 1 before, 1 after; even input -> 0 before, 1 after
        for n, before, after in ((layer.in_h, top, bottom), (layer.in_w, left, right)):
            assert (before, after) == ((1, 1) if n % 2 else (0, 1)), (layer.name, n, layer.pads)
        assert (layer.out_h, layer.out_w) == (math.ceil(layer.in_h / 2), math.ceil(layer.in_w / 2))
    assert checked == 5


def test_tf_same_pads_odd_input():
    arch = MobileNetV1(1.0, (97, 131), 10, "tf_same")
    _check_tf_same_pads(arch)
    assert arch.layer("stem").pads == (1, 1, 1, 1)  # 97x131, both odd
    assert (arch.layer("blocks.1.dw").in_h, arch.layer("blocks.1.dw").in_w) == (49, 66)
    assert arch.layer("blocks.1.dw").pads == (1, 0, 1, 1)  # odd height, even width
    assert arch.output_hw == (4, 5)


@pytest.mark.parametrize("resolution", [224, 128, (64, 96), 33])
def test_tf_same_pads_other_sizes(resolution):
    arch = MobileNetV1(0.5, resolution, 10, "tf_same")
    _check_tf_same_pads(arch)


def test_tf_same_pads_even_input():
    arch = MobileNetV1(1.0, 224, 1000, "tf_same")
    assert arch.layer("stem").pads == (0, 0, 1, 1)
    for name in ("blocks.1.dw", "blocks.3.dw", "blocks.5.dw"):
        assert arch.layer(name).pads == (0, 0, 1, 1), name
    assert arch.layer("blocks.11.dw").in_h == 14 and arch.layer("blocks.11.dw").pads == (0, 0, 1, 1)


@pytest.mark.parametrize("resolution", [224, (97, 131), 33])
def test_symmetric_pads_always_one(resolution):
    arch = MobileNetV1(1.0, resolution, 10, "symmetric")
    tf = MobileNetV1(1.0, resolution, 10, "tf_same")
    for layer, tl in zip(arch, tf):
        if layer.kind in ("conv3x3", "dwconv3x3"):
            assert layer.pads == (1, 1, 1, 1), layer.name
        # same output sizes under both conventions
        assert (layer.out_h, layer.out_w) == (tl.out_h, tl.out_w)


def test_conv_output_and_pads_function():
    assert conv_output_and_pads(224, 224, 2, "tf_same") == (112, 112, (0, 0, 1, 1))
    assert conv_output_and_pads(97, 131, 2, "tf_same") == (49, 66, (1, 1, 1, 1))
    assert conv_output_and_pads(50, 51, 2, "symmetric") == (25, 26, (1, 1, 1, 1))
    with pytest.raises(InputError, match="padding"):
        conv_output_and_pads(10, 10, 1, "valid")


@pytest.mark.parametrize("alpha", [1.0, 0.75, 0.5, 0.25])
def test_block_cost_ratio(alpha):
    arch = MobileNetV1(alpha, 224, 1000)
    costs = arch.block_costs()
    assert len(costs) == 13
    for b in costs:
        n = arch.layer(f"blocks.{b.index}.pw").out_channels
        assert n == arch.block_channels[b.index]
        assert math.isclose(b.ratio, 1 / n + 1 / 9, rel_tol=0, abs_tol=1e-12), (b.index, b.ratio)
        dw, pw = arch.layer(f"blocks.{b.index}.dw"), arch.layer(f"blocks.{b.index}.pw")
        assert b.separable_macs == dw.macs + pw.macs


@pytest.mark.parametrize("alpha", [0, -1, -0.5, float("nan"), float("inf"), "1", None, True])
def test_invalid_alpha(alpha):
    with pytest.raises(InputError, match="alpha"):
        MobileNetV1(alpha, 224, 1000)


@pytest.mark.parametrize("resolution", [31, 0, -224, (32, 31), (31, 64)])
def test_resolution_too_small(resolution):
    with pytest.raises(InputError, match="at least 32"):
        MobileNetV1(1.0, resolution, 1000)


@pytest.mark.parametrize("resolution", ["224", (224,), (224, 224, 3), (224.0, 224.0)])
def test_resolution_bad_type(resolution):
    with pytest.raises(InputError, match="resolution"):
        MobileNetV1(1.0, resolution, 1000)


def test_minimum_resolution_accepted():
    arch = MobileNetV1(1.0, 32, 10)
    assert arch.output_hw == (1, 1)


@pytest.mark.parametrize("padding", ["same", "SAME", "valid", "", None])
def test_bad_padding(padding):
    with pytest.raises(InputError, match="padding"):
        MobileNetV1(1.0, 224, 1000, padding)


@pytest.mark.parametrize("num_classes", [-1, -1000, 1.5, "10", True])
def test_bad_num_classes(num_classes):
    with pytest.raises(InputError, match="num_classes"):
        MobileNetV1(1.0, 224, num_classes)


def test_zero_classes_has_no_classifier():
    arch = MobileNetV1(1.0, 224, 0)
    assert len(arch) == 28
    assert arch.layers[-1].kind == "avgpool"
    assert all(layer.kind != "dense" for layer in arch)
    with pytest.raises(KeyError):
        arch.layer("classifier")
    with_fc = MobileNetV1(1.0, 224, 1000)
    assert with_fc.total_macs - arch.total_macs == 1024 * 1000
    assert with_fc.total_params - arch.total_params == 1024 * 1000 + 1000


# ------------------------------------------------------------------------------------ CLI info

def test_cli_info_table(capsys):
    assert cli.main(["info", "--alpha", "0.5", "--resolution", "160"]) == 0
    out = capsys.readouterr().out
    arch = MobileNetV1(0.5, 160, 1000)
    lines = out.splitlines()
    assert "alpha=0.5" in lines[0] and "160x160" in lines[0]

    totals = [ln for ln in lines if ln.startswith("total")]
    assert len(totals) == 1
    assert totals[0].split()[1:] == [f"{arch.total_params:,}", f"{arch.total_macs:,}"]
    assert f"{arch.total_macs / 1e6:.1f}M multiply-adds" in out

    start = next(i for i, ln in enumerate(lines) if ln.startswith("Depthwise-separable blocks"))
    rows = []
    for ln in lines[start + 2:]:
        if not re.match(r"^\d+\s", ln):
            break
        rows.append(ln.split())
    assert len(rows) == 13
    for i, row in enumerate(rows):
        assert int(row[0]) == i
        n = arch.block_channels[i]
        assert float(row[3]) == pytest.approx(1 / n + 1 / 9, abs=1e-4)  # ratio column
        assert row[3] == row[4]  # ratio == 1/N+1/9 at 4 decimals

    assert any(ln.startswith("CPU: ") for ln in lines)
    assert "selected:" in out


def test_cli_info_json(capsys):
    assert cli.main(["info", "--alpha", "0.5", "--resolution", "160", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    arch = MobileNetV1(0.5, 160, 1000)
    assert data["total_macs"] == arch.total_macs
    assert data["total_params"] == arch.total_params
    assert data["alpha"] == 0.5 and data["resolution"] == [160, 160]
    assert len(data["layers"]) == len(arch)
    assert [layer["name"] for layer in data["layers"]] == [layer.name for layer in arch]
    assert "selected_isa" in data["cpu"]


def test_cli_info_invalid_alpha(capsys):
    assert cli.main(["info", "--alpha", "0"]) == 1
    assert "alpha" in capsys.readouterr().err


def test_info_total_line_aligned_with_columns():
    arch = MobileNetV1(0.5, 160, 1000)
    lines = arch.format_table().splitlines()
    row = next(ln for ln in lines if ln.startswith("classifier"))
    total = next(ln for ln in lines if ln.startswith("total"))
    # rows end with params (11 wide) then MACs (14 wide); the total line must use the same columns
    assert len(total) == len(row)
    assert total[-25:-14] == f"{arch.total_params:>11,}"
    assert total[-14:] == f"{arch.total_macs:>14,}"


@pytest.mark.parametrize("resolution", [224, 160, (97, 131), 33])
def test_keras_pads(resolution):
    # keras.applications.MobileNet: "same" stem and stride-1 layers; stride-2 depthwise layers are
    # ZeroPadding2D(((0, 1), (0, 1))) + "valid": pads 0/0/1/1 and floor((n - 2) / 2) + 1 outputs.
    arch = MobileNetV1(0.5, resolution, 10, "keras")
    tf = MobileNetV1(0.5, resolution, 10, "tf_same")
    assert arch.layer("stem").pads == tf.layer("stem").pads
    for layer in arch:
        if layer.kind == "dwconv3x3" and layer.stride == 2:
            assert layer.pads == (0, 0, 1, 1), layer.name
            assert (layer.out_h, layer.out_w) == ((layer.in_h - 2) // 2 + 1, (layer.in_w - 2) // 2 + 1)
        elif layer.kind == "dwconv3x3":
            assert layer.pads == (1, 1, 1, 1) and (layer.out_h, layer.out_w) == (layer.in_h, layer.in_w)
    h, w = arch.input_hw
    if h % 2 == 0 and w % 2 == 0 and h % 32 == 0:  # even all the way down: same as tf_same
        assert [lay.pads for lay in arch] == [lay.pads for lay in tf]
    if resolution == (97, 131):
        assert arch.layer("blocks.1.dw").in_h == 49 and arch.layer("blocks.1.dw").out_h == 24  # tf_same: 25
        assert arch.output_hw == (3, 4)  # tf_same: (4, 5)


def test_activation_clamp():
    assert activation_clamp("relu6") == (0.0, 6.0)
    assert activation_clamp("relu") == (0.0, math.inf)
    with pytest.raises(InputError, match="unknown activation"):
        activation_clamp("gelu")
