"""read_image_archive: real zip files built with zipfile in pytest's tmp_path."""
from __future__ import annotations

import io
import os
import struct
import zipfile

import pytest
from PIL import Image

from engine.errors import InvalidError, TooLargeError
from engine.intake.archives import ArchiveLimits, ArchiveMember, ArchiveProblem, read_image_archive

PHOTO = os.urandom(3000)  # photos barely compress; the reader never decodes them


def make_zip(path, members, compression=zipfile.ZIP_DEFLATED):
    """A zip of (name, bytes) pairs; names are written exactly as given."""
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return path


def read(path, **limits):
    return list(read_image_archive(path, ArchiveLimits(**limits)))


def problems(results):
    return [(r.path, r.reason) for r in results if isinstance(r, ArchiveProblem)]


def members(results):
    return [(r.path, r.data) for r in results if isinstance(r, ArchiveMember)]


def patch_headers(path, name, local_offset, central_offset, patch):
    """Apply ``patch(bytearray, offset)`` to ``name``'s local and central headers."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    patch(data, info.header_offset + local_offset)
    entry = data.find(b"PK\x01\x02")
    while entry != -1:
        name_length = struct.unpack_from("<H", data, entry + 28)[0]
        if data[entry + 46:entry + 46 + name_length] == name.encode():
            patch(data, entry + central_offset)
        entry = data.find(b"PK\x01\x02", entry + 1)
    path.write_bytes(bytes(data))


def test_nested_folders_are_read_in_archive_order(tmp_path):
    jpeg = io.BytesIO()
    Image.new("RGB", (20, 10), "red").save(jpeg, "JPEG")
    path = make_zip(tmp_path / "job.zip", [
        ("site1/", b""),
        ("site1/cam3/", b""),
        ("site1/cam3/IMG_001.jpg", jpeg.getvalue()),
        ("site1/cam3/IMG_002.png", PHOTO),
        ("top.gif", b"GIF89a"),
    ])

    results = read(path)

    assert results == [
        ArchiveMember("site1/cam3/IMG_001.jpg", jpeg.getvalue()),
        ArchiveMember("site1/cam3/IMG_002.png", PHOTO),
        ArchiveMember("top.gif", b"GIF89a"),
    ]


def test_reads_from_an_open_file_too(tmp_path):
    path = make_zip(tmp_path / "job.zip", [("a.jpg", PHOTO)])

    with path.open("rb") as upload:
        assert members(read_image_archive(upload)) == [("a.jpg", PHOTO)]


@pytest.mark.parametrize("name", ["A.JPG", "b.JpEg", "c.PNG", "d.WebP", "e.GIF", "f.jpeg"])
def test_image_extensions_are_case_insensitive(tmp_path, name):
    path = make_zip(tmp_path / "job.zip", [(name, PHOTO)])

    assert members(read(path)) == [(name, PHOTO)]


@pytest.mark.parametrize(("name", "path"), [
    ("site1\\cam3\\IMG_001.jpg", "site1/cam3/IMG_001.jpg"),
    ("./site1/IMG_001.jpg", "site1/IMG_001.jpg"),
    ("site1//IMG_001.jpg", "site1/IMG_001.jpg"),
])
def test_member_paths_are_normalised(tmp_path, name, path):
    archive = make_zip(tmp_path / "job.zip", [(name, PHOTO)])

    assert members(read(archive)) == [(path, PHOTO)]


@pytest.mark.parametrize(("name", "reported"), [
    ("../evil.jpg", "../evil.jpg"),
    ("/abs.jpg", "/abs.jpg"),
    ("site1/../../evil.jpg", "site1/../../evil.jpg"),
    ("..\\evil.jpg", "../evil.jpg"),
    ("C:/Windows/evil.jpg", "C:/Windows/evil.jpg"),
    ("C:\\Windows\\evil.jpg", "C:/Windows/evil.jpg"),
    ("c:evil.jpg", "c:evil.jpg"),
    ("\\\\server\\share\\evil.jpg", "//server/share/evil.jpg"),
    ("site1/\x1b[2Jevil.jpg", "site1/\x1b[2Jevil.jpg"),
])
def test_unsafe_paths_are_reported_and_the_rest_still_read(tmp_path, name, reported):
    path = make_zip(tmp_path / "job.zip", [(name, PHOTO), ("good.jpg", PHOTO)])

    results = read(path)

    assert results == [ArchiveProblem(reported, "unsafe path"),
                       ArchiveMember("good.jpg", PHOTO)]


@pytest.mark.parametrize("name", [
    "__MACOSX/._IMG_001.jpg",
    "__MACOSX/site1/._IMG_001.jpg",
    ".hidden.jpg",
    "site1/.thumbnails/IMG_001.jpg",
    ".DS_Store",
    "site1/.DS_Store",
    "Thumbs.db",
    "site1/thumbs.db",
    "desktop.ini",
    "empty-folder/",
])
def test_system_files_and_folders_are_skipped_silently(tmp_path, name):
    path = make_zip(tmp_path / "job.zip", [(name, PHOTO), ("site1/IMG_001.jpg", PHOTO)])

    assert read(path) == [ArchiveMember("site1/IMG_001.jpg", PHOTO)]


@pytest.mark.parametrize("name", [
    "notes.txt", "site1/data.csv", "README", "IMG_001.jpg.exe", "scan.tiff", "jpg",
])
def test_other_files_are_reported_as_not_images(tmp_path, name):
    path = make_zip(tmp_path / "job.zip", [(name, b"text"), ("a.png", PHOTO)])

    assert read(path) == [ArchiveProblem(name, "not an image file"),
                          ArchiveMember("a.png", PHOTO)]


def test_a_highly_compressed_member_is_refused_as_a_zip_bomb(tmp_path):
    path = make_zip(tmp_path / "bomb.zip", [("x.jpg", bytes(30 * 1024 * 1024)),
                                            ("y.jpg", PHOTO)])
    assert path.stat().st_size < 100_000

    results = read(path)

    assert problems(results) == [("x.jpg", "compresses more than 200:1, a likely zip bomb")]
    assert members(results) == [("y.jpg", PHOTO)]


def test_a_member_over_the_size_limit_is_refused(tmp_path):
    path = make_zip(tmp_path / "job.zip", [("big.jpg", os.urandom(4000)), ("ok.jpg", PHOTO)],
                    compression=zipfile.ZIP_STORED)

    results = read(path, max_member_bytes=3000)

    assert results == [ArchiveProblem("big.jpg", "too large: 4000 bytes, over the limit of 3000"),
                       ArchiveMember("ok.jpg", PHOTO)]


def test_too_many_members_raise_before_anything_is_read(tmp_path):
    path = make_zip(tmp_path / "job.zip", [(f"{i}.jpg", PHOTO) for i in range(4)])

    assert len(read(path, max_members=4)) == 4
    with pytest.raises(TooLargeError, match="4 members"):
        read_image_archive(path, ArchiveLimits(max_members=3))


def test_too_many_bytes_in_all_raise_before_anything_is_read(tmp_path):
    path = make_zip(tmp_path / "job.zip", [(f"{i}.jpg", PHOTO) for i in range(3)]
                    + [("notes.txt", PHOTO)])  # refused members do not count

    assert len(read(path, max_total_bytes=3 * len(PHOTO))) == 4
    with pytest.raises(TooLargeError, match="add up to"):
        read_image_archive(path, ArchiveLimits(max_total_bytes=3 * len(PHOTO) - 1))


@pytest.mark.parametrize("content", [
    b"",
    b"hello, this is not a zip",
    b"PK\x03\x04" + bytes(100),
    b"\x89PNG\r\n\x1a\n" + bytes(100),
], ids=["empty", "text", "zip-magic-only", "png"])
def test_a_file_that_is_not_a_zip_is_invalid(tmp_path, content):
    path = tmp_path / "upload.zip"
    path.write_bytes(content)

    with pytest.raises(InvalidError, match="not a readable zip archive"):
        read_image_archive(path)


def test_a_truncated_zip_is_invalid(tmp_path):
    path = make_zip(tmp_path / "job.zip", [(f"{i}.jpg", PHOTO) for i in range(3)])
    path.write_bytes(path.read_bytes()[:5000])

    with pytest.raises(InvalidError, match="not a readable zip archive"):
        read_image_archive(path)


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_a_corrupt_member_is_reported_and_the_others_still_read(tmp_path, compression):
    # Hex text compresses about 2:1, so deflate really has to decode it.
    text = os.urandom(3000).hex().encode()
    path = make_zip(tmp_path / "job.zip", [("a.jpg", text), ("b.jpg", text[::-1]),
                                           ("c.jpg", text)], compression)

    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("b.jpg")
    name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_length + extra_length  # the compressed data
    data[start + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    results = read(path)

    assert [p for p, _ in problems(results)] == ["b.jpg"]
    assert problems(results)[0][1].startswith("corrupt: ")
    assert members(results) == [("a.jpg", text), ("c.jpg", text)]


def test_an_encrypted_member_is_reported(tmp_path):
    path = make_zip(tmp_path / "job.zip", [("secret.jpg", PHOTO), ("open.jpg", PHOTO)])

    def set_encrypted_flag(data, offset):
        data[offset] |= 0x01

    patch_headers(path, "secret.jpg", 6, 8, set_encrypted_flag)

    assert read(path) == [ArchiveProblem("secret.jpg", "encrypted"),
                          ArchiveMember("open.jpg", PHOTO)]


def test_a_member_that_understates_its_size_is_not_passed_on(tmp_path):
    small = PHOTO[:500]
    path = make_zip(tmp_path / "job.zip", [("liar.jpg", PHOTO), ("ok.jpg", small)],
                    compression=zipfile.ZIP_STORED)

    def claim_100_bytes(data, offset):
        struct.pack_into("<I", data, offset, 100)

    patch_headers(path, "liar.jpg", 22, 24, claim_100_bytes)  # uncompressed size fields

    results = read(path, max_member_bytes=1000)

    assert [p for p, _ in problems(results)] == ["liar.jpg"]
    assert members(results) == [("ok.jpg", small)]


def test_an_archive_with_no_files_is_refused_at_upload(tmp_path):
    """A robustness audit: an empty zip (or one of folders) made a job that ended
    "done" with no item and no word of why."""
    from engine.intake.archives import check_image_archive

    for members in ([], [("photos/", b"")]):
        path = make_zip(tmp_path / "empty.zip", members)
        with path.open("rb") as upload, pytest.raises(InvalidError, match="holds no files"):
            check_image_archive(upload)
    path = make_zip(tmp_path / "one.zip", [("a.jpg", PHOTO)])
    with path.open("rb") as upload:
        check_image_archive(upload)  # one file: fine
