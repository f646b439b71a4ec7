"""Exception types raised by mobilenet-fast.

Every error the package raises on purpose derives from :class:`MobileNetFastError`, so callers
can catch one type. Each also derives from the closest built-in (``ValueError``,
``FileNotFoundError``...), so code written against the built-ins keeps working.
"""

from __future__ import annotations

__all__ = [
    "MobileNetFastError",
    "WeightFileError",
    "InputError",
    "ImportFormatError",
    "ImageReadError",
    "MissingDependencyError",
]


class MobileNetFastError(Exception):
    """Base class of all errors raised deliberately by mobilenet-fast."""


class WeightFileError(MobileNetFastError, ValueError):
    """A weight file is unreadable, truncated, tampered with, or does not match its metadata."""


class InputError(MobileNetFastError, ValueError):
    """An array or argument passed to the engine has the wrong shape, dtype, layout or value."""


class ImportFormatError(MobileNetFastError, ValueError):
    """A foreign model file (TensorFlow, ONNX, ...) is not a MobileNetV1 we can map."""


class ImageReadError(MobileNetFastError, ValueError):
    """An image file could not be opened or decoded."""


class MissingDependencyError(MobileNetFastError, ImportError):
    """An optional dependency needed for the requested feature (an importer, ONNX export) is missing."""
