"""Image decoding and preprocessing: file -> float32 NHWC batch, normalised as the weights expect.

How pixels become 8-bit RGB (:func:`load_image`):

* **Files** are decoded by Pillow. Images of more than ``max_pixels`` (default :data:`MAX_PIXELS`)
  pixels are refused with :class:`ImageReadError` before they are decoded (decompression bombs),
  and so are PIL images not yet loaded; Pillow's own limit
  (``PIL.Image.MAX_IMAGE_PIXELS``) applies too, and its ``DecompressionBombError`` - or its
  ``DecompressionBombWarning`` when warnings are turned into errors - also becomes
  :class:`ImageReadError`. Any other decoding failure of a file is an :class:`ImageReadError`
  naming the file. A file's EXIF Orientation tag is applied (a phone photo stored sideways is
  turned upright first, as image viewers do); PIL images and arrays are taken as given.
* **Modes**: RGB as is; grayscale (``L``, ``1``) repeated on three channels; palette (``P``),
  ``CMYK``, ``YCbCr``, ``HSV``, ``RGBX`` through Pillow's conversions; ``LAB`` through a LittleCMS
  Lab -> sRGB transform; transparency (``RGBA``, ``LA``, ``PA``, premultiplied ``RGBa``/``La``, a
  palette or grayscale image with a transparent colour) composited onto white, as viewers show it.
  16-bit grayscale (``I;16``, ``I;16B``, ...) is scaled to 8 bits (``round(v / 257)``: 65535 ->
  255), never clipped; Pillow already reduces 16-bit RGB(A) PNGs to 8 bits per channel. ``I``
  (32-bit integers) is taken as 8-bit when every value is in 0..255 and as 16-bit when in 0..65535,
  and refused otherwise; ``F`` (32-bit float) has no standard range and is refused with
  :class:`InputError` (:class:`ImageReadError` for a file) saying how to convert it.
* **Arrays**: uint8 ``HxW``, ``HxWx1``, ``HxWx3`` or ``HxWx4`` (alpha composited onto white, as for
  files), or uint16 of the same shapes (scaled like 16-bit images). Float arrays are refused: they
  are ambiguous (0..1 or 0..255?), and already-normalised input goes to ``Model.predict``.
"""

from __future__ import annotations

import io
import os
import re
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import ImageReadError, InputError

__all__ = ["ImageLike", "load_image", "preprocess", "DEFAULT_CROP_FRACTION", "MAX_PIXELS", "MAX_RESOLUTION"]

#: Share of the shorter side kept by the centre crop (the usual "resize 256, crop 224").
DEFAULT_CROP_FRACTION = 0.875
#: Default ``max_pixels``: images with more pixels are refused before decoding (decompression
#: bombs). The same as Pillow's default ``MAX_IMAGE_PIXELS``; to allow larger images pass
#: ``max_pixels`` and raise ``PIL.Image.MAX_IMAGE_PIXELS`` too.
MAX_PIXELS = 89_478_485
#: Largest target height/width of :func:`preprocess` (the largest input a plan accepts).
MAX_RESOLUTION = 16384
# Above this many pixels, the resized image is not materialised: only the crop window is
# resampled (Pillow's resize box), so extreme aspect ratios cannot blow up memory. Below it the
# whole image is resized and cropped, exactly as before (the box path may differ by one level).
_FULL_RESIZE_PIXELS = 1 << 24

ImageLike = Union[str, "os.PathLike[str]", bytes, "np.ndarray", Any]  # Any: a PIL.Image.Image


def _check_max_pixels(max_pixels: Any) -> int:
    if max_pixels is None:
        return MAX_PIXELS
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 1:
        raise InputError(f"max_pixels must be a positive int or None, got {max_pixels!r}")
    return int(max_pixels)


def _check_pixels(width: int, height: int, where: str, limit: int) -> None:
    if width * height > limit:
        raise ImageReadError(
            f"{where}: {width}x{height} = {width * height:,} pixels is more than the limit of {limit:,} "
            "(a decompression bomb?); pass max_pixels= to load_image/preprocess (and raise "
            "PIL.Image.MAX_IMAGE_PIXELS) to allow larger images")


def load_image(image: ImageLike, *, max_pixels: Optional[int] = None) -> "np.ndarray":
    """Decode ``image`` (a path, an encoded file's bytes, a PIL image, or a uint8/uint16 array) to
    uint8 RGB ``HxWx3``.

    See the module docstring for the modes and array shapes accepted and how they are converted.
    Bytes are decoded exactly as the same file read from a path. Files, bytes and PIL images of
    more than ``max_pixels`` pixels (default :data:`MAX_PIXELS`) are refused with
    :class:`ImageReadError` before they are decoded.
    """
    from PIL import Image

    limit = _check_max_pixels(max_pixels)
    if isinstance(image, np.ndarray):
        return _array_to_rgb(image)
    if isinstance(image, (str, os.PathLike)):
        return _read_file(os.fspath(image), limit)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return _decode_file(io.BytesIO(image), "image bytes", limit)
    if isinstance(image, Image.Image):
        _check_pixels(image.width, image.height, "image", limit)
        try:
            return _pil_to_rgb(image, "image", InputError)
        except (InputError, ImageReadError, MemoryError):
            raise
        except Exception as e:  # a lazily opened image that fails to decode
            raise ImageReadError(f"image could not be decoded ({type(e).__name__}: {e})") from None
    raise InputError(f"expected an image path, image file bytes, a PIL image or a uint8 array, "
                     f"got {type(image).__name__}")


def _read_file(path: str, limit: int) -> "np.ndarray":
    if not os.path.exists(path):
        raise FileNotFoundError(f"image file not found: {path}")
    if os.path.isdir(path):
        raise ImageReadError(f"{path} is a directory, not an image")
    return _decode_file(path, path, limit)


def _decode_file(source: Union[str, "io.BytesIO"], where: str, limit: int) -> "np.ndarray":
    """An encoded image file (a path or its bytes) -> uint8 RGB; ``where`` names it in errors."""
    from PIL import Image

    try:
        with Image.open(source) as im:
            _check_pixels(im.width, im.height, where, limit)
            im.load()
            return _pil_to_rgb(_exif_upright(im), where, ImageReadError)
    except (ImageReadError, MemoryError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # The warning arrives here as an exception when warnings are turned into errors.
        raise ImageReadError(f"{where}: refused by Pillow's decompression-bomb check ({e})") from None
    except Exception as e:  # Pillow's decoders raise many types (OSError, SyntaxError, ValueError, EOFError...)
        raise ImageReadError(f"{where}: not a readable image ({type(e).__name__}: {e})") from None


def _exif_upright(im: Any) -> Any:
    """The image turned as its EXIF Orientation tag says (phone photos are often stored sideways).

    Only for files: a PIL image passed in is taken as the caller left it. A malformed EXIF block
    is ignored (the pixels are still fine).
    """
    from PIL import ImageOps

    try:
        orientation = im.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - broken EXIF data; the pixels are what matter
        return im
    if orientation in (2, 3, 4, 5, 6, 7, 8):
        try:
            return ImageOps.exif_transpose(im)
        except Exception:  # noqa: BLE001
            return im
    return im


def _array_to_rgb(a: "np.ndarray") -> "np.ndarray":
    from PIL import Image

    if isinstance(a, np.ma.MaskedArray):
        raise InputError("image array is a masked array: its mask would be ignored (use .filled(value))")
    if a.dtype == np.uint16:
        a = _scale_16_to_8(a)
    elif a.dtype != np.uint8:
        raise InputError(f"image arrays must be uint8 pixels (0..255) or uint16 (0..65535), got dtype {a.dtype}; "
                         "use Model.predict for already-normalised float arrays")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise InputError(f"image array must be HxWx3 (RGB), HxWx4 (RGBA), HxWx1 or HxW (gray), got shape {a.shape}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise InputError(f"image array is empty: shape {a.shape}")
    if a.shape[2] == 4:
        return _pil_to_rgb(Image.fromarray(np.ascontiguousarray(a), "RGBA"), "image array", InputError)
    return np.ascontiguousarray(a)


def _scale_16_to_8(a: "np.ndarray") -> "np.ndarray":
    """round(v * 255 / 65535) for 16-bit values, in integers (65535 -> 255, 32896 -> 128)."""
    return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _gray_to_rgb(g: "np.ndarray") -> "np.ndarray":
    return np.ascontiguousarray(np.repeat(g[:, :, None], 3, axis=2))


def _pil_to_rgb(im: Any, where: str, error: type) -> "np.ndarray":
    """A decoded PIL image -> uint8 RGB; ``error`` (InputError or ImageReadError) for refused modes."""
    from PIL import Image

    mode = im.mode
    if mode.startswith("I;16"):
        return _gray_to_rgb(_scale_16_to_8(np.asarray(im)))
    if mode == "I":
        a = np.asarray(im)
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        if lo < 0 or hi > 65535:
            raise error(f"{where}: a 32-bit integer image (mode I) with values {lo}..{hi} has no standard pixel "
                        "range; convert it to 8-bit RGB first")
        return _gray_to_rgb(a.astype(np.uint8) if hi <= 255 else _scale_16_to_8(a))
    if mode == "F":
        raise error(f"{where}: a 32-bit float image (mode F) has no standard pixel range; convert it to 8-bit "
                    "first, e.g. Image.fromarray(numpy.clip(a * 255, 0, 255).astype(numpy.uint8)) for values in 0..1")
    if mode == "LAB":
        return _lab_to_rgb(im, where, error)
    if mode in ("La", "RGBa"):  # premultiplied alpha
        im = im.convert("LA" if mode == "La" else "RGBA")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode in ("P", "L", "RGB") and "transparency" in im.info):
        # Composite transparency onto white, as image viewers show it.
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    try:
        rgb = im.convert("RGB")
    except ValueError as e:
        raise error(f"{where}: image mode {mode!r} cannot be converted to RGB ({e})") from None
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def _lab_to_rgb(im: Any, where: str, error: type) -> "np.ndarray":
    try:
        from PIL import ImageCms

        transform = ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"),
                                            "LAB", "RGB")
        return np.ascontiguousarray(np.asarray(ImageCms.applyTransform(im, transform), dtype=np.uint8))
    except Exception as e:  # Pillow built without LittleCMS, or a transform error
        raise error(f"{where}: a Lab image needs Pillow's ImageCms (LittleCMS) to become RGB, which failed "
                    f"({type(e).__name__}: {e}); convert it to RGB first") from None


def _real_triple(name: str, values: Any) -> "np.ndarray":
    try:
        v = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be three numbers (R, G, B), got {values!r}") from None
    if v.shape != (3,) or not np.isfinite(v).all():
        raise InputError(f"{name} must be three finite numbers (R, G, B), got {values!r}")
    return v


def _check_resolution(resolution: Any) -> Tuple[int, int]:
    pair = (resolution, resolution) if not isinstance(resolution, (tuple, list)) else tuple(resolution)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in pair):
        raise InputError(f"resolution must be an int or a (height, width) pair of ints, got {resolution!r}")
    h, w = int(pair[0]), int(pair[1])
    if not (1 <= h <= MAX_RESOLUTION and 1 <= w <= MAX_RESOLUTION):
        raise InputError(f"resolution must be in 1..{MAX_RESOLUTION} on each side, got {resolution!r}")
    return h, w


def preprocess(
    image: ImageLike,
    resolution: Union[int, Tuple[int, int]] = 224,
    mean: Sequence[float] = (127.5, 127.5, 127.5),
    std: Sequence[float] = (127.5, 127.5, 127.5),
    crop_fraction: float = DEFAULT_CROP_FRACTION,
    *,
    max_pixels: Optional[int] = None,
) -> "np.ndarray":
    """Decode, resize the shorter side to ``resolution / crop_fraction``, centre-crop, normalise.

    Returns a float32 C-contiguous array of shape [1, H, W, 3] holding ``(pixel - mean) / std``.
    ``crop_fraction=1.0`` resizes the shorter side straight to the target and crops the rest.
    ``resolution`` is an int or (height, width) in 1..16384; ``mean``/``std`` are three finite
    numbers each, ``std`` > 0. See :func:`load_image` for the images accepted and ``max_pixels``.
    """
    from PIL import Image

    h, w = _check_resolution(resolution)
    if isinstance(crop_fraction, bool) or not isinstance(crop_fraction, (int, float, np.integer, np.floating)) \
            or not 0.0 < float(crop_fraction) <= 1.0:
        raise InputError(f"crop_fraction must be a number in (0, 1], got {crop_fraction!r}")
    crop_fraction = float(crop_fraction)
    m = _real_triple("mean", mean)
    s = _real_triple("std", std)
    if (s <= 0).any():
        raise InputError(f"std must be > 0 for every channel, got {std!r}")
    rgb = load_image(image, max_pixels=max_pixels)
    ih, iw = rgb.shape[:2]
    # Scale so that the crop window (target / crop_fraction on the shorter side) fits.
    scale = max(h / crop_fraction / ih, w / crop_fraction / iw)
    rh, rw = max(h, int(round(ih * scale))), max(w, int(round(iw * scale)))
    top, left = (rh - h) // 2, (rw - w) // 2
    pil = Image.fromarray(rgb)
    if rh * rw <= _FULL_RESIZE_PIXELS:
        crop = np.asarray(pil.resize((rw, rh), Image.Resampling.BILINEAR))[top:top + h, left:left + w]
    else:
        sx, sy = iw / rw, ih / rh
        box = (left * sx, top * sy, min(iw, (left + w) * sx), min(ih, (top + h) * sy))
        crop = np.asarray(pil.resize((w, h), Image.Resampling.BILINEAR, box=box))
    m32 = m.astype(np.float32).reshape(1, 1, 3)
    s32 = s.astype(np.float32).reshape(1, 1, 3)
    return np.ascontiguousarray(((crop.astype(np.float32) - m32) / s32)[None], dtype=np.float32)


def failure_reason(name: str, e: BaseException) -> str:
    """Why image ``name`` (a path, or a label for bytes) could not be read, without repeating
    ``name`` (the caller prints it first)."""
    if isinstance(e, FileNotFoundError):
        return "no such file or directory"
    if isinstance(e, IsADirectoryError):
        return "is a directory"
    try:
        if os.path.isfile(name) and os.path.getsize(name) == 0:
            return "empty file, not an image"
    except (OSError, ValueError):
        pass
    msg = str(e)
    for prefix in (f"{name}: ", "image bytes: "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    # Pillow names its source: "cannot identify image file 'p'" / "... <_io.BytesIO object at 0x...>"
    msg = re.sub(r" <_io\.BytesIO object at 0x[0-9a-fA-F]+>", "", msg.replace(f" {name!r}", ""))
    return msg or type(e).__name__


def try_preprocess(prepare: Callable[[Any], "np.ndarray"], source: Any, name: str
                   ) -> Tuple[Optional["np.ndarray"], Optional[str]]:
    """``(prepare(source), None)``, or ``(None, reason)`` when the image cannot be read: how
    ``classify`` (one machine or Ray) decodes each image without one bad file ending the run."""
    from .errors import MobileNetFastError

    try:
        return prepare(source), None
    except (MobileNetFastError, OSError) as e:
        return None, failure_reason(name, e)
    except Exception as e:  # noqa: BLE001 - one odd file must not end a run over thousands
        return None, f"unexpected error while reading it ({type(e).__name__}: {e})"
