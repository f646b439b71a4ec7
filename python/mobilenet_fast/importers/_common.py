"""Checks every importer makes the same way: the path, the labels, the width multiplier."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

from ..architecture import BLOCK_CONFIG, MAX_ALPHA, STEM_CHANNELS, MobileNetV1
from ..errors import ImportFormatError, InputError

PathLike = Union[str, "os.PathLike[str]"]

#: Resolution the width checks are made at (channel counts do not depend on it).
_ANY_RESOLUTION = 224


def checked_path(path: PathLike, what: str, directory_hint: str = "") -> Tuple[str, str]:
    """``(path, basename)`` of an existing regular file; FileNotFoundError / ImportFormatError
    (``"<path> is a directory, not <what>"`` plus ``directory_hint``) otherwise."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"{what} not found: {p}")
    if os.path.isdir(p):
        raise ImportFormatError(f"{p} is a directory, not a {what}{' (' + directory_hint + ')' if directory_hint else ''}")
    return p, os.path.basename(p) or p


def checked_labels(labels: Optional[Sequence[str]], num_classes: int, where: str) -> Optional[Tuple[str, ...]]:
    """``labels`` as a tuple with one string per class, or None; InputError otherwise."""
    if labels is None:
        return None
    if isinstance(labels, str) or not all(isinstance(s, str) for s in labels):
        raise InputError("labels must be a sequence of strings")
    out = tuple(labels)
    if len(out) != num_classes:
        raise InputError(f"{len(out)} labels given but {where} has {num_classes} classes")
    return out


@dataclass(frozen=True)
class WidthMismatch:
    """The first layer whose channel count no width multiplier explains.

    ``layer`` is 0 for the stem and i (1-based) for block i's pointwise conv; ``alpha`` is the
    multiplier read from ``basis`` (``"stem"``: C0 / 32, ``"last"``: the last block's C / 1024;
    ``"too_wide"``: the stem declares more channels than any multiplier up to ``MAX_ALPHA`` gives,
    e.g. a shape declared without data).
    """

    layer: int
    got: int
    want: int
    alpha: float
    basis: str


def infer_alpha(stem_channels: int, block_channels: Sequence[int]) -> Union[float, WidthMismatch]:
    """The width multiplier reproducing the observed channel counts (from the stem, C0 / 32, else
    from the last block, C / 1024), or the first mismatch when neither does."""
    pw_out: List[int] = [int(c) for c in block_channels]
    from_stem = stem_channels / STEM_CHANNELS
    from_last = pw_out[-1] / BLOCK_CONFIG[-1][0] if pw_out else 0.0
    if from_stem > MAX_ALPHA:
        return WidthMismatch(0, stem_channels, 0, from_stem, "too_wide")
    for alpha in (from_stem, from_last):
        if 0 < alpha <= MAX_ALPHA:
            arch = MobileNetV1(alpha, _ANY_RESOLUTION, 0)
            if arch.stem_channels == stem_channels and arch.block_channels == pw_out:
                return alpha
    if 0 < from_last <= MAX_ALPHA:
        arch = MobileNetV1(from_last, _ANY_RESOLUTION, 0)
        if arch.block_channels == pw_out:  # only the stem is off
            return WidthMismatch(0, stem_channels, arch.stem_channels, from_last, "last")
    if from_stem > 0:
        arch = MobileNetV1(from_stem, _ANY_RESOLUTION, 0)
        for i, (got, want) in enumerate(zip(pw_out, arch.block_channels), start=1):
            if got != want:
                return WidthMismatch(i, got, want, from_stem, "stem")
    return WidthMismatch(0, stem_channels, STEM_CHANNELS, 1.0, "stem")


