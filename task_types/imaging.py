"""Pillow helpers for the types that cut pictures (locate's tiles, transcribe's lines).

An uploaded image is hostile until proven otherwise: only the common decoders
are tried, and the pixel count is read from the header and checked before a
single pixel is decoded, so a decompression bomb is refused, not expanded.
"""
from __future__ import annotations

import io
import struct
import warnings
from typing import TYPE_CHECKING

from PIL import Image, ImageOps, UnidentifiedImageError

from task_types.errors import ItemError

if TYPE_CHECKING:
    from task_types.base import Media

FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
MAX_PIXELS = 50_000_000
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)


def open_image(data: bytes, label: str = "image", max_pixels: int = MAX_PIXELS,
               field: str = "image") -> Image.Image:
    """Decode ``data`` into an upright RGB or L image; ItemError (naming
    ``field``) for anything that is not a sound JPEG/PNG/WebP/GIF within
    ``max_pixels``."""
    def fail(message: str) -> ItemError:
        return ItemError(message, {field: [message]})

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(FORMATS))
            width, height = image.size
            if width * height > max_pixels:
                raise fail(f"{label} is {width}x{height} pixels, over the limit of "
                           f"{max_pixels} pixels")
            image.load()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise fail(f"{label} is refused as a likely decompression bomb") from exc
    except UnidentifiedImageError as exc:
        raise fail(f"{label} is not an image (JPEG, PNG, WebP or GIF)") from exc
    except _DECODE_ERRORS as exc:
        raise fail(f"{label} is a truncated or corrupt image: {exc}") from exc
    # In place: a copy of a decoded A4 scan costs as much as cutting its lines.
    ImageOps.exif_transpose(image, in_place=True)
    return image if image.mode in ("RGB", "L") else flatten(image)


def read_image(media: Media, ref: str, label: str = "image") -> Image.Image:
    """An item's picture read through ``media`` and decoded as ``open_image`` does,
    within the media's ``max_pixels`` (the deployment's limit; MAX_PIXELS for a
    Media without one). A picture fetched by URL meets a limit here first, so a
    deployment's lower limit must reach this far, not stop at its uploads."""
    return open_image(media.read(ref), label, getattr(media, "max_pixels", MAX_PIXELS))


def encode_jpeg(image: Image.Image, quality: int = 85) -> bytes:
    """A crop as JPEG bytes: small, and every browser shows it."""
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def flatten(image: Image.Image) -> Image.Image:
    """RGB with transparent parts painted white (JPEG has no alpha; a plain
    convert paints them black, and shrinks palette images with nearest-neighbour)."""
    if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    flat = Image.new("RGB", rgba.size, "white")
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat
