"""Where stored images' bytes live: a folder, or an S3-compatible bucket.

The media store (engine.intake.media) names every image by its content, so
what it needs from storage is small: the size of a name (to skip what is
stored already), write, read, and a way to serve it. A folder is the default
(the instance's media/, shared between machines as a network folder when
there are several); BITESIZE_MEDIA_URL=s3://bucket/prefix puts the bytes in
an object store that every web and worker node reaches (boto3, installed
with `pip install bitesize[s3]`; credentials and region from boto3's usual
environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION).
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs, urlsplit

from engine.errors import InvalidError, NotFoundError, UnavailableError

CHUNK = 256 * 1024


class FolderBlobs:
    """Files in one folder (names may hold subfolders), written atomically
    (temporary file, rename), readable by others (`mode`) or private."""

    def __init__(self, root: Path, mode: int = 0o644) -> None:
        self.root, self.mode = Path(root), mode

    def size(self, name: str) -> int | None:
        with contextlib.suppress(FileNotFoundError):
            return (self.root / name).stat().st_size
        return None

    def write(self, name: str, data: bytes) -> None:
        self.write_stream(name, io.BytesIO(data))

    def write_stream(self, name: str, data: IO[bytes]) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, data, self.mode)

    def delete(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)

    def names(self, prefix: str) -> list[tuple[str, float]]:
        """(name, seconds since the epoch it was written) of each file under the
        `prefix` folder."""
        folder = self.root / prefix
        found = []
        for path in folder.iterdir() if folder.is_dir() else ():
            with contextlib.suppress(OSError):
                found.append((f"{prefix}/{path.name}", path.stat().st_mtime))
        return found

    def read(self, name: str) -> bytes:
        try:
            return (self.root / name).read_bytes()
        except FileNotFoundError as exc:
            raise NotFoundError(f"no stored media named {name!r}") from exc

    def head(self, name: str, size: int) -> bytes:
        """The first `size` bytes (all of a shorter file)."""
        try:
            with open(self.root / name, "rb") as f:
                return f.read(size)
        except FileNotFoundError as exc:
            raise NotFoundError(f"no stored media named {name!r}") from exc

    def local_path(self, name: str) -> Path | None:
        """The file itself, for the web to send with the OS's own help (so a
        folder needs no `chunks`: MediaStore.opened asks only a bucket)."""
        return self.root / name


class S3Blobs:
    """Objects in an S3-compatible bucket under a prefix. Objects are written
    whole by one PUT, so readers only ever see complete ones."""

    def __init__(self, url: str) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError as exc:  # pragma: no cover - the [s3] extra is missing
            raise InvalidError("an s3:// store is set but boto3 is not installed: "
                               "pip install 'bitesize[s3]'", {"media_url": "no boto3"}) from exc
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise InvalidError(f"a store's URL must read s3://bucket[/prefix], not {url!r}",
                               {"media_url": "not s3://bucket"})
        options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        self.bucket, self.prefix = parts.netloc, parts.path.strip("/")
        self.client = boto3.client(
            "s3", endpoint_url=options.get("endpoint") or None,
            region_name=options.get("region") or None,
            config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3}))
        self._errors = self.client.exceptions

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    @contextlib.contextmanager
    def _answering(self) -> Iterator[None]:
        """The bucket's and boto's errors as UnavailableError (a 503 that says the
        store did not answer), never a 500."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable(exc) from exc

    def size(self, name: str) -> int | None:
        from botocore.exceptions import ClientError

        with self._answering():
            try:
                return self.client.head_object(Bucket=self.bucket, Key=self._key(name))[
                    "ContentLength"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise

    def write(self, name: str, data: bytes) -> None:
        with self._answering():
            self.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data,
                                   ContentType=_content_type(name),
                                   CacheControl="public, max-age=31536000, immutable")

    def write_stream(self, name: str, data: IO[bytes]) -> None:
        """A file of any size, sent in parts (boto3's managed upload)."""
        with self._answering():
            self.client.upload_fileobj(data, self.bucket, self._key(name))

    def delete(self, name: str) -> None:
        with self._answering():
            self.client.delete_object(Bucket=self.bucket, Key=self._key(name))

    def names(self, prefix: str) -> list[tuple[str, float]]:
        start = self._key(prefix) + "/"
        found = []
        with self._answering():
            for page in self.client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=start):
                found += [(f"{prefix}/{item['Key'][len(start):]}",
                           item["LastModified"].timestamp()) for item in page.get("Contents", [])]
        return found

    def read(self, name: str) -> bytes:
        return b"".join(self.chunks(name))

    def head(self, name: str, size: int) -> bytes:
        """The first `size` bytes, in one ranged GET (not the whole object)."""
        with contextlib.closing(self._body(name, Range=f"bytes=0-{size - 1}")) as body, \
                self._answering():
            return body.read()

    def local_path(self, name: str) -> Path | None:
        return None

    def chunks(self, name: str) -> Iterator[bytes]:
        with contextlib.closing(self._body(name)) as body:
            yield from body.iter_chunks(CHUNK)

    def _body(self, name: str, **extra: str):
        """The object's streaming body (GET with `extra`, e.g. a Range)."""
        with self._answering():
            try:
                return self.client.get_object(Bucket=self.bucket, Key=self._key(name),
                                              **extra)["Body"]
            except self._errors.NoSuchKey as exc:
                raise NotFoundError(f"no stored media named {name!r}") from exc


def blobs_for(url: str, folder: Path, mode: int = 0o644) -> FolderBlobs | S3Blobs:
    """The bucket an s3:// URL names (BITESIZE_MEDIA_URL, BITESIZE_UPLOADS_URL);
    without one, the instance's folder."""
    return S3Blobs(url) if url else FolderBlobs(folder, mode)


def _unavailable(exc: Exception) -> UnavailableError:
    return UnavailableError(f"the media store did not answer: {exc}", {"media": "unavailable"})


def _content_type(name: str) -> str:
    ext = name.rsplit(".", 1)[-1]
    return {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp",
            "gif": "image/gif"}.get(ext, "application/octet-stream")


def _write_atomic(path: Path, data: IO[bytes], mode: int = 0o644) -> None:
    """Write ``path`` so nobody ever sees it half-written: a temporary file in the
    same folder (same file system), then ``os.replace``, which is atomic.
    mkstemp makes 0600; a static file server must read stored images (0644)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            shutil.copyfileobj(data, f, 1024 * 1024)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
