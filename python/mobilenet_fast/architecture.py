"""MobileNetV1 architecture: the ordered layer list with per-layer cost.

This module knows nothing about weights or kernels. Given a width multiplier ``alpha``, an input
resolution and a class count, :class:`MobileNetV1` lists every layer with its shapes, its explicit
four-sided padding (for a chosen padding convention), its parameter count and its multiply-adds,
as in Table 1/2 of Howard et al., 2017 ("MobileNets: Efficient Convolutional Neural Networks for
Mobile Vision Applications").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator, List, Tuple, Union

from .errors import InputError

__all__ = [
    "BLOCK_CONFIG",
    "STEM_CHANNELS",
    "PADDING_CONVENTIONS",
    "ACTIVATIONS",
    "MAX_ALPHA",
    "activation_clamp",
    "LayerSpec",
    "MobileNetV1",
    "conv_output_and_pads",
]

#: Stem output channels at alpha = 1.
STEM_CHANNELS = 32
#: Largest width multiplier: every channel count (at most 1024 * alpha) must fit in 31 bits.
MAX_ALPHA = float(1 << 20)
#: (pointwise output channels at alpha = 1, depthwise stride) for the 13 separable blocks.
BLOCK_CONFIG: Tuple[Tuple[int, int], ...] = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)

#: ``tf_same``: TensorFlow "SAME" (extra padding goes bottom/right, so stride-2 layers on even
#: inputs pad 0 top/left, 1 bottom/right). ``symmetric``: PyTorch-style padding=1 on all sides.
#: ``keras``: ``keras.applications.MobileNet``: the stem and stride-1 layers are "SAME", but the
#: stride-2 depthwise layers are ``ZeroPadding2D(((0, 1), (0, 1)))`` + "VALID", i.e. pads 0/0/1/1
#: whatever the input size. Identical to ``tf_same`` on even sizes; on odd sizes those layers give
#: one row/column less.
PADDING_CONVENTIONS = ("tf_same", "symmetric", "keras")

#: Activation after every conv + BN: ``relu6`` = clamp(0, 6) (the paper, TF, Keras, timm) or
#: ``relu`` = max(0, x) (some re-implementations).
ACTIVATIONS = ("relu6", "relu")

Pads = Tuple[int, int, int, int]


def activation_clamp(activation: str) -> Tuple[float, float]:
    """(lo, hi) of the clamp an activation applies: relu6 -> (0, 6), relu -> (0, inf)."""
    if activation == "relu6":
        return (0.0, 6.0)
    if activation == "relu":
        return (0.0, math.inf)
    raise InputError(f"unknown activation {activation!r}; expected one of {ACTIVATIONS}")


def conv_output_and_pads(size_h: int, size_w: int, stride: int, padding: str, kernel: int = 3, *,
                         stem: bool = False) -> Tuple[int, int, Pads]:
    """Output height/width and (top, left, bottom, right) pads of a ``kernel``x``kernel`` conv.

    ``stem`` says the layer is the network's first conv (it matters for the ``keras`` convention).
    """
    if padding == "keras" and stride == 2 and not stem:
        oh = (size_h + 1 - kernel) // stride + 1
        ow = (size_w + 1 - kernel) // stride + 1
        return oh, ow, (0, 0, 1, 1)
    if padding in ("tf_same", "keras"):
        def one(n: int) -> Tuple[int, int, int]:
            out = -(-n // stride)
            total = max((out - 1) * stride + kernel - n, 0)
            return out, total // 2, total - total // 2

        oh, pt, pb = one(size_h)
        ow, pl, pr = one(size_w)
        return oh, ow, (pt, pl, pb, pr)
    if padding == "symmetric":
        p = kernel // 2
        oh = (size_h + 2 * p - kernel) // stride + 1
        ow = (size_w + 2 * p - kernel) // stride + 1
        return oh, ow, (p, p, p, p)
    raise InputError(f"unknown padding convention {padding!r}; expected one of {PADDING_CONVENTIONS}")


@dataclass(frozen=True)
class LayerSpec:
    """One layer of the network.

    ``kind`` is one of ``conv3x3`` (the stem), ``dwconv3x3``, ``pwconv`` (1x1), ``avgpool``
    (global mean) or ``dense`` (the classifier). Spatial sizes are the input (``in_h``, ``in_w``)
    and output (``out_h``, ``out_w``) of the layer; ``pads`` is (top, left, bottom, right).
    ``params`` counts weights plus the per-channel bias that BatchNorm folds into;
    ``macs`` counts multiply-adds for one image.
    """

    name: str
    kind: str
    in_channels: int
    out_channels: int
    stride: int
    in_h: int
    in_w: int
    out_h: int
    out_w: int
    pads: Pads
    params: int
    macs: int
    relu6: bool

    @property
    def weight_shape(self) -> Tuple[int, ...]:
        """Shape of the canonical weight tensor of this layer (empty for pooling)."""
        if self.kind == "conv3x3":
            return (3, 3, self.in_channels, self.out_channels)
        if self.kind == "dwconv3x3":
            return (3, 3, self.in_channels)
        if self.kind in ("pwconv", "dense"):
            return (self.in_channels, self.out_channels)
        return ()


@dataclass(frozen=True)
class BlockCost:
    """Cost of one depthwise-separable block against a standard 3x3 conv of the same shape."""

    index: int
    separable_macs: int
    standard_macs: int

    @property
    def ratio(self) -> float:
        """separable / standard, equal to 1/N + 1/9 (N = output channels)."""
        return self.separable_macs / self.standard_macs


def _scaled(channels: int, alpha: float) -> int:
    # Keras' convention: int(filters * alpha); never below one channel.
    return max(1, int(channels * alpha))


@dataclass(frozen=True)
class MobileNetV1:
    """MobileNetV1(alpha, resolution, num_classes) as an ordered list of :class:`LayerSpec`.

    ``resolution`` is an int (square input) or a (height, width) pair, at least 32 on each side.
    ``num_classes`` = 0 describes a feature extractor (no classifier). ``padding`` selects the
    padding convention of the weights (see :data:`PADDING_CONVENTIONS`).
    """

    alpha: float = 1.0
    resolution: Union[int, Tuple[int, int]] = 224
    num_classes: int = 1000
    padding: str = "tf_same"
    layers: List[LayerSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)):
            raise InputError(f"alpha must be a number, got {type(self.alpha).__name__}")
        if not math.isfinite(self.alpha) or self.alpha <= 0:
            raise InputError(f"alpha must be a finite number > 0, got {self.alpha}")
        if self.alpha > MAX_ALPHA:
            raise InputError(f"alpha must be at most {MAX_ALPHA:g} (channel counts must fit in 31 bits), "
                             f"got {self.alpha:g}")
        h, w = self.input_hw
        if h < 32 or w < 32:
            raise InputError(f"input resolution must be at least 32x32, got {h}x{w}")
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 0:
            raise InputError(f"num_classes must be an int >= 0, got {self.num_classes!r}")
        if self.padding not in PADDING_CONVENTIONS:
            raise InputError(f"unknown padding convention {self.padding!r}; expected one of {PADDING_CONVENTIONS}")
        object.__setattr__(self, "layers", self._build())

    @property
    def input_hw(self) -> Tuple[int, int]:
        """Input (height, width)."""
        r = self.resolution
        if isinstance(r, int) and not isinstance(r, bool):
            return (r, r)
        try:
            h, w = r  # type: ignore[misc]
        except (TypeError, ValueError):
            raise InputError(f"resolution must be an int or a (height, width) pair, got {r!r}") from None
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (h, w)):
            raise InputError(f"resolution must hold ints, got {r!r}")
        return (h, w)

    @property
    def stem_channels(self) -> int:
        """Output channels of the stem conv (32 * alpha)."""
        return _scaled(STEM_CHANNELS, self.alpha)

    @property
    def block_channels(self) -> List[int]:
        """Output channels of the 13 blocks."""
        return [_scaled(c, self.alpha) for c, _ in BLOCK_CONFIG]

    @property
    def feature_channels(self) -> int:
        """Channels of the pooled feature vector (1024 * alpha)."""
        return self.block_channels[-1]

    def _build(self) -> List[LayerSpec]:
        layers: List[LayerSpec] = []
        h, w = self.input_hw
        c_in = 3
        c_out = self.stem_channels
        oh, ow, pads = conv_output_and_pads(h, w, 2, self.padding, stem=True)
        layers.append(LayerSpec("stem", "conv3x3", c_in, c_out, 2, h, w, oh, ow, pads,
                                9 * c_in * c_out + c_out, oh * ow * 9 * c_in * c_out, True))
        h, w, c_in = oh, ow, c_out
        for i, ((_, stride), c_out) in enumerate(zip(BLOCK_CONFIG, self.block_channels)):
            oh, ow, pads = conv_output_and_pads(h, w, stride, self.padding)
            layers.append(LayerSpec(f"blocks.{i}.dw", "dwconv3x3", c_in, c_in, stride, h, w, oh, ow, pads,
                                    9 * c_in + c_in, oh * ow * 9 * c_in, True))
            layers.append(LayerSpec(f"blocks.{i}.pw", "pwconv", c_in, c_out, 1, oh, ow, oh, ow, (0, 0, 0, 0),
                                    c_in * c_out + c_out, oh * ow * c_in * c_out, True))
            h, w, c_in = oh, ow, c_out
        layers.append(LayerSpec("pool", "avgpool", c_in, c_in, 1, h, w, 1, 1, (0, 0, 0, 0), 0, 0, False))
        if self.num_classes:
            n = self.num_classes
            layers.append(LayerSpec("classifier", "dense", c_in, n, 1, 1, 1, 1, 1, (0, 0, 0, 0),
                                    c_in * n + n, c_in * n, False))
        return layers

    def __iter__(self) -> Iterator[LayerSpec]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def layer(self, name: str) -> LayerSpec:
        """The layer called ``name`` (e.g. ``"blocks.3.dw"``)."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    @property
    def total_params(self) -> int:
        """Parameters of the whole network (weights plus the per-channel biases BatchNorm folds into)."""
        return sum(layer.params for layer in self.layers)

    @property
    def total_macs(self) -> int:
        """Multiply-adds for one image."""
        return sum(layer.macs for layer in self.layers)

    @property
    def output_hw(self) -> Tuple[int, int]:
        """Spatial size of the last feature map (before pooling)."""
        last = self.layers[-(3 if self.num_classes else 2)]
        return (last.out_h, last.out_w)

    def block_costs(self) -> List[BlockCost]:
        """For each separable block, its MACs against a standard 3x3 conv of the same shape."""
        out = []
        for i in range(len(BLOCK_CONFIG)):
            dw = self.layer(f"blocks.{i}.dw")
            pw = self.layer(f"blocks.{i}.pw")
            std = dw.out_h * dw.out_w * 9 * dw.in_channels * pw.out_channels
            out.append(BlockCost(i, dw.macs + pw.macs, std))
        return out

    def format_table(self) -> str:
        """The per-layer table printed by ``mobilenet-fast info``."""
        h, w = self.input_hw
        lines = [
            f"MobileNetV1 alpha={self.alpha:g} input={h}x{w}x3 classes={self.num_classes} padding={self.padding}",
            f"{'layer':<14}{'type':<11}{'stride':>6}  {'input':>14}  {'output':>14}  {'pads t,l,b,r':>13}"
            f"{'params':>11}{'MACs':>14}",
        ]
        for s in self.layers:
            inp = f"{s.in_h}x{s.in_w}x{s.in_channels}"
            outp = f"{s.out_h}x{s.out_w}x{s.out_channels}"
            pads = ",".join(str(p) for p in s.pads)
            lines.append(f"{s.name:<14}{s.kind:<11}{s.stride:>6}  {inp:>14}  {outp:>14}  {pads:>13}"
                         f"{s.params:>11,}{s.macs:>14,}")
        lines.append(f"{'total':<78}{self.total_params:>11,}{self.total_macs:>14,}")
        lines.append(f"= {self.total_params / 1e6:.2f}M parameters, {self.total_macs / 1e6:.1f}M multiply-adds")
        lines.append("")
        lines.append("Depthwise-separable blocks against a standard 3x3 conv of the same shape:")
        lines.append(f"{'block':<7}{'separable MACs':>16}{'standard MACs':>16}{'ratio':>9}{'1/N+1/9':>9}")
        for b in self.block_costs():
            n = self.layer(f"blocks.{b.index}.pw").out_channels
            lines.append(f"{b.index:<7}{b.separable_macs:>16,}{b.standard_macs:>16,}{b.ratio:>9.4f}"
                         f"{1 / n + 1 / 9:>9.4f}")
        return "\n".join(lines)
