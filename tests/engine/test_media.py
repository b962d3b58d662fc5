"""MediaStore: real images made with Pillow, stored in pytest's tmp_path."""
from __future__ import annotations

import hashlib
import io
import os
import struct
import time
import zlib

import pytest
from PIL import Image, ImageFile

from engine.errors import InvalidError, NotFoundError, TooLargeError
from engine.intake.media import MediaStore


@pytest.fixture
def store(tmp_path):
    return MediaStore(tmp_path / "media")


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def noise(width: int, height: int) -> Image.Image:
    """Random pixels, so that every byte of the compressed file matters."""
    return Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))


def png_bomb(width: int, height: int) -> bytes:
    """A valid black 1-bit PNG: a few hundred KB that would decode to width*height px."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte, then 8 pixels a byte
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row * min(1000, height - top))
                    for top in range(0, height, 1000)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def stored_files(store: MediaStore) -> list[str]:
    return sorted(os.listdir(store.blobs.root))


@pytest.mark.parametrize(("fmt", "ext", "mode"), [
    ("JPEG", "jpg", "RGB"),
    ("JPEG", "jpg", "CMYK"),
    ("PNG", "png", "RGB"),
    ("PNG", "png", "I;16"),
    ("WEBP", "webp", "RGB"),
    ("GIF", "gif", "P"),
])
def test_put_stores_original_bytes_and_a_thumbnail(store, fmt, ext, mode):
    data = encode(Image.new(mode, (640, 480)), fmt)
    sha = hashlib.sha256(data).hexdigest()

    stored = store.put(data, "photo")

    assert stored.name == f"{sha}.{ext}"
    assert stored.thumb == f"{sha}.thumb.jpg"
    assert (stored.sha256, stored.format) == (sha, fmt)
    assert (stored.width, stored.height) == (640, 480)
    assert not stored.duplicate
    assert store.blobs.local_path(stored.name).read_bytes() == data
    with Image.open(store.blobs.local_path(stored.thumb)) as thumb:
        assert (thumb.format, thumb.mode, thumb.size) == ("JPEG", "RGB", (320, 240))
    assert stored_files(store) == sorted([stored.name, stored.thumb])


def test_same_bytes_twice_are_stored_once(store):
    data = encode(noise(50, 40), "PNG")

    first = store.put(data, "a.png")
    second = store.put(data, "copy of a.png")

    assert not first.duplicate
    assert second.duplicate
    assert second.name == first.name
    assert stored_files(store) == sorted([first.name, first.thumb])


def test_a_damaged_copy_is_rewritten_not_reported_as_duplicate(store):
    data = encode(noise(50, 40), "PNG")
    stored = store.put(data)
    # as a power cut without fsync could leave it
    store.blobs.local_path(stored.name).write_bytes(b"")

    again = store.put(data)

    assert not again.duplicate
    assert store.blobs.local_path(stored.name).read_bytes() == data


@pytest.mark.parametrize(("size", "thumb_size"), [
    ((1000, 500), (320, 160)),
    ((500, 1000), (160, 320)),
    ((100, 50), (100, 50)),  # never enlarged
])
def test_thumbnail_fits_in_the_box(store, size, thumb_size):
    stored = store.put(encode(Image.new("RGB", size, "green"), "JPEG"))

    with Image.open(store.blobs.local_path(stored.thumb)) as thumb:
        assert thumb.size == thumb_size


def test_thumbnail_size_is_configurable(tmp_path):
    store = MediaStore(tmp_path, thumb_size=64)

    stored = store.put(encode(Image.new("RGB", (640, 320)), "PNG"))

    with Image.open(store.blobs.local_path(stored.thumb)) as thumb:
        assert thumb.size == (64, 32)


def test_thumbnail_applies_exif_orientation(store):
    # Left half red, right half blue, stored sideways: orientation 6 means "turn
    # 90 degrees clockwise to view", so upright the red half is on top.
    image = Image.new("RGB", (400, 200), "blue")
    image.paste("red", (0, 0, 200, 200))
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(image, "JPEG", exif=exif.tobytes())

    stored = store.put(data)

    assert (stored.width, stored.height) == (400, 200)  # the file's own pixel size
    with Image.open(store.blobs.local_path(stored.thumb)) as thumb:
        assert thumb.size == (160, 320)
        red, green, blue = thumb.getpixel((80, 40))
        assert red > 200 and blue < 60
        red, green, blue = thumb.getpixel((80, 280))
        assert blue > 200 and red < 60
        assert 0x0112 not in thumb.getexif()


def test_thumbnail_paints_transparency_white(store):
    stored = store.put(encode(Image.new("RGBA", (40, 40), (255, 0, 0, 0)), "PNG"))

    with Image.open(store.blobs.local_path(stored.thumb)) as thumb:
        assert min(thumb.getpixel((20, 20))) > 245


@pytest.mark.parametrize("data", [
    b"",
    b"hello, world",
    b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n",
    encode(Image.new("RGB", (10, 10)), "BMP"),
    encode(Image.new("RGB", (10, 10)), "TIFF"),
], ids=["empty", "text", "pdf", "bmp", "tiff"])
def test_put_refuses_what_is_not_an_allowed_image(store, data):
    with pytest.raises(InvalidError, match="not an image.*letter.txt"):
        store.put(data, "letter.txt")
    assert not store.blobs.root.exists() or stored_files(store) == []


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_put_refuses_a_truncated_image(store, fmt):
    data = encode(noise(200, 200), fmt)

    with pytest.raises(InvalidError, match="cut.jpg"):
        store.put(data[: len(data) // 2], "cut.jpg")
    assert not store.blobs.root.exists() or stored_files(store) == []


def test_put_refuses_a_png_with_a_bad_checksum(store):
    data = bytearray(encode(noise(100, 100), "PNG"))
    data[len(data) // 2] ^= 0xFF

    with pytest.raises(InvalidError, match="corrupt"):
        store.put(bytes(data), "flipped.png")


def test_put_refuses_too_many_bytes(tmp_path):
    store = MediaStore(tmp_path, max_bytes=1000)

    with pytest.raises(TooLargeError, match="big.png"):
        store.put(encode(noise(100, 100), "PNG"), "big.png")


def test_put_refuses_too_many_pixels(tmp_path):
    store = MediaStore(tmp_path / "media", max_pixels=1_000_000)
    data = encode(Image.new("RGB", (3000, 3000), "white"), "PNG")

    with pytest.raises(InvalidError, match="3000x3000"):
        store.put(data, "huge.png")
    assert not (tmp_path / "media").exists()


@pytest.mark.parametrize(("width", "height", "max_pixels"), [
    (8000, 8000, 50_000_000),  # our limit; under Pillow's own
    (10000, 10000, 10**9),  # over Pillow's warning level (89M px): must not escape
    (20000, 20000, 10**9),  # over Pillow's error level (179M px)
])
def test_put_refuses_a_decompression_bomb_without_decoding_it(
        tmp_path, monkeypatch, width, height, max_pixels):
    data = png_bomb(width, height)
    assert len(data) < 1_000_000
    store = MediaStore(tmp_path, max_pixels=max_pixels)

    def no_decoding(self):
        raise AssertionError("the bomb was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    started = time.perf_counter()
    with pytest.raises(InvalidError, match="bomb.png"):
        store.put(data, "bomb.png")
    assert time.perf_counter() - started < 1.0
    assert os.listdir(tmp_path) == []


def test_opened_and_exists_of_stored_files(store):
    stored = store.put(encode(Image.new("RGB", (8, 8)), "JPEG"))

    for name in (stored.name, stored.thumb):
        assert store.exists(name)
        path, chunks, size = store.opened(name)
        assert path == store.blobs.root / name and chunks is None
        assert path.is_file() and size == path.stat().st_size


UNKNOWN = hashlib.sha256(b"never stored").hexdigest()


@pytest.mark.parametrize("name", [
    "../etc/passwd",
    "/etc/passwd",
    "..",
    "",
    "photo.jpg",
    f"{UNKNOWN}.jpg",  # well formed, but not here
    f"{UNKNOWN.upper()}.jpg",
    f"{UNKNOWN}.exe",
    f"{UNKNOWN}.jpg\n",
    f"{UNKNOWN}.jpg/../../etc/passwd",
    f"../{UNKNOWN}.jpg",
])
def test_opened_refuses_names_that_are_not_stored(store, name):
    store.put(encode(Image.new("RGB", (8, 8)), "JPEG"))
    (store.blobs.root / "photo.jpg").write_bytes(b"not put here by the store")

    assert not store.exists(name)
    with pytest.raises(NotFoundError):
        store.opened(name)
    with pytest.raises(NotFoundError):
        store.read(f"/media/{name}")
