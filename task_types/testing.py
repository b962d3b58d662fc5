"""Helpers for testing a task type on plain data, for built-in and third-party
types alike."""
from __future__ import annotations

import hashlib

from task_types.errors import ItemError


class MemoryMedia:
    """The ``Media`` a split may use, kept in a dict: a type's cutting can be
    tested without the engine's store. Refs look like the engine's."""

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.files = dict(files or {})

    def read(self, ref: str) -> bytes:
        try:
            return self.files[ref]
        except KeyError:
            message = f"cannot read {ref!r}"
            raise ItemError(message, {"image": [message]}) from None

    def store(self, data: bytes, ext: str) -> str:
        ref = f"/media/{hashlib.sha256(data).hexdigest()}.{ext}"
        self.files[ref] = data
        return ref
