"""Reading the images out of a user-uploaded zip, safely and without extracting it.

A zip is a list of claims (names, sizes, flags) made by whoever built it. Names
are never used as paths on disk: members are read into memory, and names that
would escape a folder are reported instead. Sizes are checked before anything
is decompressed (per member, per archive, and as a compression ratio against
zip bombs), and every read is bounded anyway, since the declared sizes may lie.

All the limits on the archive as a whole are checked when
``read_image_archive`` is called, from the central directory alone, so a job
fails before it has imported half an archive. After that, one bad member is one
``ArchiveProblem`` in the job's report and the rest of the archive still comes.
"""
from __future__ import annotations

import lzma
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from os import PathLike
from pathlib import PurePosixPath
from typing import IO

from engine.errors import InvalidError, TooLargeError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif"})
# Folders and files that archivers and desktops add on their own: never the
# charity's photos, so they are skipped without a word (as are dot-files).
_SYSTEM_NAMES = frozenset({"__macosx", "thumbs.db", "desktop.ini"})
_DRIVE = re.compile(r"[A-Za-z]:")
# What zipfile and its decompressors raise on a damaged or unsupported member.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError,
                ValueError, NotImplementedError, RuntimeError)

MiB = 1024 * 1024


@dataclass(frozen=True)
class ArchiveMember:
    """An image file read from the archive (not yet checked to be an image)."""

    path: str  # the member's name inside the zip, with forward slashes
    data: bytes


@dataclass(frozen=True)
class ArchiveProblem:
    """A member that was refused, for the job's report."""

    path: str
    reason: str


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on what an archive may make us read."""

    max_members: int = 20_000
    max_member_bytes: int = 50 * MiB
    max_total_bytes: int = 2048 * MiB
    max_ratio: int = 200  # uncompressed / compressed size; photos barely compress


DEFAULT_LIMITS = ArchiveLimits()

# (the member, its path, why it is refused or None to read it)
_Entry = tuple[zipfile.ZipInfo, str, str | None]


def read_image_archive(path_or_file: str | PathLike[str] | IO[bytes],
                       limits: ArchiveLimits = DEFAULT_LIMITS,
                       ) -> Iterator[ArchiveMember | ArchiveProblem]:
    """The image members of a zip, and the problems with the others, in archive order.

    Raises at once (not on first iteration) InvalidError if the file is not a
    readable zip, TooLargeError if it has too many members or its images add
    up to too many bytes. Directories and system files are skipped silently.
    """
    archive = _open_zip(path_or_file)
    try:
        entries = _plan(archive.infolist(), limits)
    except BaseException:
        archive.close()
        raise
    return _read_all(archive, entries, limits)


def check_image_archive(file: IO[bytes], limits: ArchiveLimits = DEFAULT_LIMITS) -> None:
    """Raise now what ``read_image_archive`` would raise when the job runs, reading
    the central directory only, and leave ``file`` at its start: a wrong or huge
    upload is then refused while the charity is still there to read why."""
    with _open_zip(file) as archive:
        if not _plan(archive.infolist(), limits):
            raise InvalidError("the archive holds no files (folders only, or nothing): "
                               "nothing would become an item")
    file.seek(0)


def count_archive_entries(path: str | PathLike[str],
                          limits: ArchiveLimits = DEFAULT_LIMITS) -> int:
    """How many members and problems ``read_image_archive`` will yield, from the
    central directory alone: a job's progress knows its length up front."""
    with _open_zip(path) as archive:
        return len(_plan(archive.infolist(), limits))


def _open_zip(path_or_file: str | PathLike[str] | IO[bytes]) -> zipfile.ZipFile:
    """Open the central directory, or say plainly that this is no zip."""
    try:
        return zipfile.ZipFile(path_or_file)
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as exc:
        raise InvalidError("not a readable zip archive") from exc


def _plan(infos: list[zipfile.ZipInfo], limits: ArchiveLimits) -> list[_Entry]:
    """Decide from the central directory alone what to read and what to report."""
    if len(infos) > limits.max_members:
        raise TooLargeError(f"the archive has {len(infos)} members, over the limit of "
                            f"{limits.max_members}")
    entries: list[_Entry] = []
    for info in infos:
        if info.filename.endswith("/"):  # a directory (is_dir() fails on an empty name)
            continue
        path = _safe_path(info.filename)
        if path is None:
            entries.append((info, info.filename.replace("\\", "/"), "unsafe path"))
        elif not _is_system(path):
            entries.append((info, path, _refusal(info, path, limits)))
    total = sum(info.file_size for info, _, reason in entries if reason is None)
    if total > limits.max_total_bytes:
        raise TooLargeError(f"the archive's images add up to {total} bytes, over the "
                            f"limit of {limits.max_total_bytes}")
    return entries


def _safe_path(name: str) -> str | None:
    """``name`` with forward slashes and no empty or ``.`` parts, or None when it could
    point outside a folder if anyone ever extracted it: absolute, UNC, drive-letter,
    ``..`` parts, control characters. Backslashes count as separators because
    Windows tools write them and Windows honours them."""
    path = name.replace("\\", "/")
    if path.startswith("/") or _DRIVE.match(path) or any(ord(c) < 32 for c in path):
        return None
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def _is_system(path: str) -> bool:
    """Hidden files and folders, and the litter of macOS and Windows."""
    return any(part.startswith(".") or part.lower() in _SYSTEM_NAMES
               for part in path.split("/"))


def _refusal(info: zipfile.ZipInfo, path: str, limits: ArchiveLimits) -> str | None:
    """Why this member must not be read, judging by its declared metadata."""
    if PurePosixPath(path).suffix.lower() not in IMAGE_EXTENSIONS:
        return "not an image file"
    if info.flag_bits & 0x1:
        return "encrypted"
    if info.file_size > limits.max_member_bytes:
        return _too_large(info.file_size, limits)
    if info.file_size > limits.max_ratio * info.compress_size:
        return f"compresses more than {limits.max_ratio}:1, a likely zip bomb"
    return None


def _too_large(size: int, limits: ArchiveLimits) -> str:
    return f"too large: {size} bytes, over the limit of {limits.max_member_bytes}"


def _read_all(archive: zipfile.ZipFile, entries: list[_Entry], limits: ArchiveLimits,
              ) -> Iterator[ArchiveMember | ArchiveProblem]:
    """Yield the planned entries; the archive is closed when this ends or is closed."""
    with archive:
        for info, path, reason in entries:
            if reason is None:
                yield _read_member(archive, info, path, limits)
            else:
                yield ArchiveProblem(path, reason)


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str,
                 limits: ArchiveLimits) -> ArchiveMember | ArchiveProblem:
    """Read one member, at most one byte past the limit whatever its header claims.

    Reading to the end is what makes zipfile check the CRC, so a damaged member
    is reported here rather than passed on as a broken image.
    """
    try:
        with archive.open(info) as member:
            data = member.read(limits.max_member_bytes + 1)
    except _READ_ERRORS as exc:
        return ArchiveProblem(path, f"corrupt: {exc}")
    if len(data) > limits.max_member_bytes:
        return ArchiveProblem(path, _too_large(len(data), limits))
    return ArchiveMember(path, data)
