"""Image decoding and preprocessing: file -> float32 NHWC batch, normalised as the weights expect."""

from __future__ import annotations

import os
from typing import Any, Sequence, Tuple, Union

import numpy as np

from .errors import ImageReadError, InputError

__all__ = ["ImageLike", "load_image", "preprocess", "DEFAULT_CROP_FRACTION"]

#: Share of the shorter side kept by the centre crop (the usual "resize 256, crop 224").
DEFAULT_CROP_FRACTION = 0.875
#: Images larger than this many pixels are refused (decompression bombs).
MAX_PIXELS = 100_000_000

ImageLike = Union[str, "os.PathLike[str]", "np.ndarray", Any]  # Any: a PIL.Image.Image


def load_image(image: ImageLike) -> "np.ndarray":
    """Decode ``image`` (a path, a PIL image, or a uint8 HxWx3 / HxW array) to uint8 RGB HxWx3."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise InputError(f"image arrays must be uint8 pixels (0..255), got dtype {image.dtype}; "
                             "use Model.predict for already-normalised float arrays")
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] not in (3, 4):
            raise InputError(f"image array must be HxWx3 (RGB), HxWx4 (RGBA) or HxW (gray), got shape {image.shape}")
        if image.shape[0] < 1 or image.shape[1] < 1:
            raise InputError(f"image array is empty: shape {image.shape}")
        return np.ascontiguousarray(image[:, :, :3])
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        if not os.path.exists(path):
            raise FileNotFoundError(f"image file not found: {path}")
        if os.path.isdir(path):
            raise ImageReadError(f"{path} is a directory, not an image")
        try:
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise ImageReadError(f"{path}: {im.width}x{im.height} is larger than {MAX_PIXELS:,} pixels")
                im.load()
                return _pil_to_rgb(im)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            if isinstance(e, (ImageReadError, FileNotFoundError)):
                raise
            raise ImageReadError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None
    if isinstance(image, Image.Image):
        return _pil_to_rgb(image)
    raise InputError(f"expected an image path, a PIL image or a uint8 array, got {type(image).__name__}")


def _pil_to_rgb(im: Any) -> "np.ndarray":
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grayscale: scale to 8 bits instead of letting Pillow clip.
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if a.max(initial=0) > 255 else 255.0
        g = np.clip(np.round(a * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(g[:, :, None], 3, axis=2))
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        # Composite transparency onto white, as image viewers show it.
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))


def preprocess(
    image: ImageLike,
    resolution: Union[int, Tuple[int, int]] = 224,
    mean: Sequence[float] = (127.5, 127.5, 127.5),
    std: Sequence[float] = (127.5, 127.5, 127.5),
    crop_fraction: float = DEFAULT_CROP_FRACTION,
) -> "np.ndarray":
    """Decode, resize the shorter side to ``resolution / crop_fraction``, centre-crop, normalise.

    Returns a float32 C-contiguous array of shape [1, H, W, 3] holding ``(pixel - mean) / std``.
    ``crop_fraction=1.0`` resizes the shorter side straight to the target and crops the rest.
    """
    from PIL import Image

    h, w = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    if h < 1 or w < 1:
        raise InputError(f"resolution must be positive, got {resolution!r}")
    if not 0.0 < crop_fraction <= 1.0:
        raise InputError(f"crop_fraction must be in (0, 1], got {crop_fraction}")
    rgb = load_image(image)
    ih, iw = rgb.shape[:2]
    # Scale so that the crop window (target / crop_fraction on the shorter side) fits.
    scale = max(h / crop_fraction / ih, w / crop_fraction / iw)
    rh, rw = max(h, int(round(ih * scale))), max(w, int(round(iw * scale)))
    resized = np.asarray(Image.fromarray(rgb).resize((rw, rh), Image.BILINEAR), dtype=np.float32)
    top, left = (rh - h) // 2, (rw - w) // 2
    crop = resized[top:top + h, left:left + w]
    m = np.asarray(mean, dtype=np.float32).reshape(1, 1, 3)
    s = np.asarray(std, dtype=np.float32).reshape(1, 1, 3)
    return np.ascontiguousarray(((crop - m) / s)[None], dtype=np.float32)
