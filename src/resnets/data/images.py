"""Reading one image file into correct 8-bit RGB, or a :class:`DataError` naming the file.

Handles what real folders contain: grayscale, palette and palette-with-transparency, RGBA and LA
(composited over white, not just dropped), CMYK, 16-bit and 32-bit integer and float images, EXIF
orientation, and rejects truncated, empty, non-image files and decompression bombs.
"""

from __future__ import annotations

import io
import os
import struct
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DataError
from ..io import read_bounded

#: Images with more pixels than this are refused as possible decompression bombs.
MAX_PIXELS = 64_000_000
#: An image file larger than this is refused before it is read (a 64-megapixel PNG can be
#: ~200 MB; anything larger is not an image this tool should decode).
MAX_IMAGE_BYTES = 256 * 2**20


def _to_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16"):
            arr = arr / 257.0  # 0..65535 -> 0..255
        elif mode == "I":
            hi = arr.max() if arr.size else 0
            arr = arr / 257.0 if hi > 255 else arr
        else:  # float images: 0..1 or 0..255
            if not np.isfinite(arr).all():  # nan or inf pixels: no colour to map them to
                bad = int((~np.isfinite(arr)).sum())
                raise DataError(f"{bad} pixel(s) are not finite numbers (nan or inf)")
            hi = arr.max() if arr.size else 0
            arr = arr * 255.0 if hi <= 1.0 else arr
        g = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2)
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    if mode != "RGB":
        img = img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
    return np.asarray(img)


def decode_image(data: bytes | str | os.PathLike, name: str | None = None) -> np.ndarray:
    """Decode an image (a path or its bytes) to an ``(H, W, 3)`` uint8 RGB array.

    Raises:
        DataError: for an empty, truncated, corrupt or non-image input, or a decompression bomb.
    """
    label = name or (str(data) if not isinstance(data, bytes) else "<bytes>")
    if not isinstance(data, bytes):
        data = read_bounded(data, MAX_IMAGE_BYTES, "image file")
    if len(data) == 0:
        raise DataError(f"{label}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                w, h = img.size
                if w * h > MAX_PIXELS:
                    raise DataError(
                        f"{label}: {w}x{h} pixels exceeds the limit of {MAX_PIXELS:,} "
                        "(possible decompression bomb)"
                    )
                if w == 0 or h == 0:
                    raise DataError(f"{label}: image has zero size")
                img.load()
                img = ImageOps.exif_transpose(img)
                arr = _to_rgb(img)
    except DataError as e:
        raise DataError(str(e) if str(e).startswith(label) else f"{label}: {e}") from None
    except UnidentifiedImageError:
        raise DataError(f"{label}: not an image file Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{label}: refused as a possible decompression bomb ({e})") from None
    except (
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        IndexError,
        TypeError,
        KeyError,
        struct.error,
        MemoryError,
        ZeroDivisionError,
        RuntimeError,
    ) as e:
        msg = str(e) or type(e).__name__
        raise DataError(f"{label}: corrupt or truncated image ({msg})") from None
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise DataError(f"{label}: could not convert to 8-bit RGB (got {arr.dtype} {arr.shape})")
    return np.ascontiguousarray(arr)


def resize_short_center_crop(arr: np.ndarray, size: int) -> np.ndarray:
    """The central square of the image resized to ``size`` x ``size`` (bilinear, antialiased):
    the same view as resizing the shorter side to ``size`` and cropping the centre, without
    ever building the resized whole image (a 10000x1 image would make a 2.5-gigapixel one)."""
    h, w = arr.shape[:2]
    if (h, w) == (size, size):
        return arr
    if size * size > MAX_PIXELS:
        raise DataError(
            f"image size {size}: {size}x{size} exceeds the limit of {MAX_PIXELS:,} pixels"
        )
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    img = Image.fromarray(arr).resize(
        (size, size), Image.BILINEAR, box=(left, top, left + side, top + side), reducing_gap=None
    )
    return np.asarray(img)
