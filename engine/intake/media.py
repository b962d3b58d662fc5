"""Content-addressed image storage: the instance's ``media/`` folder, or an
S3-compatible bucket (engine.intake.blobs; BITESIZE_MEDIA_URL).

An image is stored under the sha256 of its bytes, so storing the same photo
twice (a re-uploaded zip, two jobs sharing pictures) costs nothing, names never
clash, and a URL ``/media/<name>`` can be cached forever. Every write is whole
(a folder renames a finished temporary file into place; a bucket takes one
PUT), so readers and concurrent writers of the same name (two workers storing
one image) only ever see complete files.

Uploads are hostile until proven otherwise: the size in bytes, the format and
the pixel count (read from the header, before any pixel is decoded) are checked
first, and the image is fully decoded once, to make the thumbnail, before
anything is written.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import re
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from engine.errors import (
    BitesizeError,
    InvalidError,
    NotFoundError,
    TooLargeError,
    UnavailableError,
)
from engine.intake.blobs import FolderBlobs, S3Blobs, blobs_for
from task_types import ItemError
from task_types.imaging import flatten

# Pillow format -> the extension of the stored file. Only these decoders are
# ever tried: exotic formats are where image-library vulnerabilities live.
FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
_NAME = re.compile(r"[0-9a-f]{64}\.(?:jpg|png|webp|gif|thumb\.jpg)")
# What Pillow raises on truncated or corrupt data, depending on the decoder.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)


@dataclass(frozen=True)
class StoredImage:
    """One stored image; ``width`` and ``height`` are the file's pixel size, before
    any EXIF orientation (the thumbnail is shown upright)."""

    name: str  # "<sha256 of the bytes>.<jpg|png|webp|gif>"
    sha256: str
    width: int
    height: int
    format: str  # "JPEG", "PNG", "WEBP" or "GIF"
    thumb: str  # "<sha256>.thumb.jpg"
    duplicate: bool  # the same bytes were already stored


class MediaStore:
    """Images and their thumbnails, in a flat folder, named by content."""

    def __init__(self, root: Path | FolderBlobs | S3Blobs, max_pixels: int = 50_000_000,
                 max_bytes: int = 50 * 1024 * 1024, thumb_size: int = 320) -> None:
        self.blobs = root if isinstance(root, FolderBlobs | S3Blobs) else FolderBlobs(root)
        self.max_pixels = max_pixels
        self.max_bytes = max_bytes
        self.thumb_size = thumb_size

    @classmethod
    def at(cls, media_url: str, folder: Path, **options) -> MediaStore:
        """The store BITESIZE_MEDIA_URL names (a bucket), else the media folder."""
        return cls(blobs_for(media_url, folder), **options)

    def put(self, data: bytes, filename: str = "") -> StoredImage:
        """Check ``data`` is a sound image and store it (unchanged) with a thumbnail.

        ``filename`` only names the upload in error messages. Raises TooLargeError
        over ``max_bytes``, InvalidError for anything that is not a whole JPEG, PNG,
        WebP or GIF of at most ``max_pixels``.
        """
        label = filename or "upload"
        if len(data) > self.max_bytes:
            raise TooLargeError(
                f"{label} is {len(data)} bytes, over the limit of {self.max_bytes}")
        with _open_image(data, label) as image:
            self._check_pixels(image, label)
            fmt, (width, height) = image.format, image.size
        sha = hashlib.sha256(data).hexdigest()
        stored = StoredImage(name=f"{sha}.{FORMATS[fmt]}", sha256=sha, width=width,
                             height=height, format=fmt, thumb=f"{sha}.thumb.jpg",
                             duplicate=self._is_stored(sha, FORMATS[fmt], len(data)))
        if not stored.duplicate:
            self._store(stored, data, label)
        return stored

    def store(self, data: bytes, ext: str) -> str:
        """Keep an image the engine made itself (a tile, a line cut from a page)
        and return its ``/media/`` ref.

        The pixels came from an image ``put`` already checked, so this skips the
        checks and the thumbnail: splitting a photo into tiles must cost little
        more than Pillow's own encoding (the task types' benchmark measures it).
        """
        if ext not in FORMATS.values() or len(data) > self.max_bytes:
            raise InvalidError(f"cannot store a {len(data)}-byte .{ext} piece")
        name = f"{hashlib.sha256(data).hexdigest()}.{ext}"
        if self.blobs.size(name) != len(data):
            self.blobs.write(name, data)
        return f"/media/{name}"

    def read(self, ref: str) -> bytes:
        """The bytes of a stored image given its ``/media/<name>`` ref, as task
        types' ``split`` reads an item's picture; NotFoundError otherwise."""
        if not ref.startswith("/media/"):
            raise NotFoundError(f"{ref!r} is not a stored image")
        return self.blobs.read(self._checked(ref[len("/media/"):]))

    def opened(self, name: str) -> tuple[Path | None, Iterator[bytes] | None, int]:
        """What the web serves for ``/media/<name>``: the file's path (a folder),
        else its bytes in chunks (a bucket), and its size; NotFoundError for a
        name not stored, or not of the stored shape (so a name taken from a URL
        never walks out of the store: ``../``, absolute paths, NULs)."""
        size = self.blobs.size(self._checked(name))
        if size is None:
            raise NotFoundError(f"no stored media named {name!r}")
        path = self.blobs.local_path(name)
        return path, None if path else self.blobs.chunks(name), size

    def exists(self, name: str) -> bool:
        """Whether ``name`` is a stored image or thumbnail (False for any odd name)."""
        return _NAME.fullmatch(name) is not None and self.blobs.size(name) is not None

    @staticmethod
    def _checked(name: str) -> str:
        if _NAME.fullmatch(name) is None:
            raise NotFoundError(f"no stored media named {name!r}")
        return name

    def _check_pixels(self, image: Image.Image, label: str) -> None:
        """Refuse huge images from the header alone: decoding is what a bomb attacks."""
        width, height = image.size
        if width * height > self.max_pixels:
            raise InvalidError(f"{label} is {width}x{height} pixels, over the limit of "
                               f"{self.max_pixels} pixels")

    def _is_stored(self, sha: str, ext: str, size: int) -> bool:
        """Whether a complete copy is already here. Files are written thumbnail first,
        and a size check catches a file emptied by a power cut (we skip fsync)."""
        if self.blobs.size(f"{sha}.{ext}") != size:
            return False
        return bool(self.blobs.size(f"{sha}.thumb.jpg"))

    def _store(self, stored: StoredImage, data: bytes, label: str) -> None:
        """Decode in full (catching truncated files), then write thumbnail, then image."""
        with _open_image(data, label) as image:
            image.verify()
        with _open_image(data, label) as image:
            thumb = _thumbnail(image, self.thumb_size)
        self.blobs.write(stored.thumb, thumb)
        self.blobs.write(stored.name, data)


class SplitMedia:
    """The ``Media`` task types cut pictures through: an item's image from the
    store or its http(s) URL, the pieces into the store. Engine errors become
    the task types' ItemError, so a bad picture is one item's problem, reported
    in the job, not a failed job. URLs go through the outbound guard; ``allow``
    is the deployment's ``fetch_allow``.

    A failure that says nothing about the picture (its server busy or timing
    out, the media bucket not answering) is an UnavailableError instead: the
    split is retried and resumes there, where an item's problem would lose the
    item for good (the job ends done, and a done job is never run again). On
    the ``last_attempt`` a server that still does not answer is the item's
    problem after all: failing again would keep every item after it from ever
    being split."""

    def __init__(self, store: MediaStore, timeout: float = 30.0, allow: str = "",
                 last_attempt: bool = False) -> None:
        self.store_ = store
        self.timeout = timeout
        self.allow = allow
        self.last_attempt = last_attempt

    @property
    def max_pixels(self) -> int:
        """The deployment's limit (BITESIZE_MAX_IMAGE_PIXELS), for the types'
        decoding of what ``read`` gives: a URL's picture was never checked."""
        return self.store_.max_pixels

    def read(self, ref: str) -> bytes:
        from engine.delivery.outbound import FetchError
        from engine.intake.fetch import fetch

        try:
            if ref.startswith("/media/"):
                return self.store_.read(ref)
            return fetch(ref, self.store_.max_bytes, self.timeout, self.allow)
        except UnavailableError:
            raise
        except FetchError as exc:
            if exc.transient and not self.last_attempt:
                raise UnavailableError(exc.message, {"image": exc.reason}) from exc
            raise _item_error(exc) from exc
        except BitesizeError as exc:
            raise _item_error(exc) from exc

    def store(self, data: bytes, ext: str) -> str:
        return self.store_.store(data, ext)


def _item_error(exc: BitesizeError) -> ItemError:
    return ItemError(exc.message, {"image": [exc.message]})


def _thumbnail(image: Image.Image, size: int) -> bytes:
    """A JPEG at most ``size`` px on each side, upright as the camera meant it.

    ``draft`` lets the JPEG decoder skip most of the work for big photos; EXIF
    is not copied, so a thumbnail never leaks the GPS position of a photo.
    """
    image.draft(None, (2 * size, 2 * size))
    upright = flatten(ImageOps.exif_transpose(image))
    upright.thumbnail((size, size))
    out = io.BytesIO()
    upright.save(out, "JPEG", quality=80)
    return out.getvalue()


@contextlib.contextmanager
def _open_image(data: bytes, label: str) -> Iterator[Image.Image]:
    """Open ``data`` with the allowed decoders only, and turn every way an image can
    be bad (including Pillow's own decompression-bomb warning) into InvalidError.

    The warning filter is process-wide while the image is open (so in threads it
    may briefly affect others); it only ever turns that one warning into an error.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(FORMATS)) as image:
                yield image
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise InvalidError(f"{label} is refused as a likely decompression bomb: {exc}"
                           ) from exc
    except UnidentifiedImageError as exc:
        raise InvalidError(f"not an image (JPEG, PNG, WebP or GIF): {label}") from exc
    except _DECODE_ERRORS as exc:
        raise InvalidError(f"{label} is a truncated or corrupt image: {exc}") from exc
