"""Where uploads wait for a worker: the instance's uploads folder, or a bucket.

An upload is kept from the request that brings it until a worker has split
it (a job's file and options) or a person has matched its columns (a staged
CSV, engine.intake.staging). With several machines, the web node that took
it and the worker that splits it are different machines, so the upload
must be where both reach: a shared instance folder, or an S3-compatible
bucket named by BITESIZE_UPLOADS_URL (engine.intake.blobs, as stored images
use). Unlike stored images, uploads are private: the folder's files are
made 0600, and nothing serves them; give the bucket (or its prefix) no
public access.

Readers get a local file (`opened`): archives need seeking and CSVs are
streamed row by row, so from a bucket the file is copied to a temporary one
of this process first, and removed when the reader is done.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from engine.errors import NotFoundError
from engine.intake.blobs import blobs_for

PRIVATE = 0o600


def options_name(job_id: int) -> str:
    """Where a job keeps what it needs beside its file (a CSV's columns, a
    manifest's URL, a folder)."""
    return f"job-{job_id}.options.json"


class Uploads:
    def __init__(self, url: str, folder: Path) -> None:
        self.blobs = blobs_for(url, folder, PRIVATE)

    def put(self, name: str, data: IO[bytes]) -> None:
        self.blobs.write_stream(name, data)

    def put_json(self, name: str, value: Any) -> None:
        self.blobs.write(name, json.dumps(value).encode())

    def get_json(self, name: str) -> Any | None:
        """The JSON kept under `name`; None when there is none (or it is unreadable)."""
        try:  # one request: a missing upload is the store's NotFoundError
            return json.loads(self.blobs.read(name))
        except (NotFoundError, ValueError):
            return None

    def head(self, name: str, size: int) -> bytes | None:
        """The first `size` bytes of an upload (one ranged read from a bucket);
        None when there is no such upload."""
        try:
            return self.blobs.head(name, size)
        except NotFoundError:
            return None

    def exists(self, name: str) -> bool:
        return self.blobs.size(name) is not None

    def delete(self, name: str) -> None:
        self.blobs.delete(name)

    def names(self, folder: str) -> list[tuple[str, float]]:
        """(name, when written, in seconds since the epoch) of each upload in `folder`."""
        return self.blobs.names(folder)

    @contextmanager
    def opened(self, name: str) -> Iterator[Path]:
        """A local file with the upload's bytes, for the block's duration; when
        there is no such upload (yet), a path where none exists."""
        local = self.blobs.local_path(name)
        if local is not None:
            yield local
            return
        folder = Path(tempfile.mkdtemp(prefix="bitesize-upload-"))
        path = folder / Path(name).name
        try:
            try:  # one request: a missing upload is the GET's NotFoundError
                with open(path, "wb") as out:
                    for chunk in self.blobs.chunks(name):
                        out.write(chunk)
            except NotFoundError:
                path.unlink()
            yield path
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def keep(self, name: str, path: Path) -> None:
        """A file written at `opened`'s path kept as the upload `name` (a IIIF
        job keeps the manifest it fetched on its first run, so that a resumed
        run numbers the same canvases); in a folder it is there already."""
        if self.blobs.local_path(name) != path:
            with open(path, "rb") as made:
                self.blobs.write_stream(name, made)
