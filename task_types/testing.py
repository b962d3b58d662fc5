"""Helpers for testing a task type on plain data, for built-in and third-party
types alike."""
from __future__ import annotations

import hashlib

import jinja2

from task_types.errors import ItemError


def template_environment() -> jinja2.Environment:
    """A Jinja environment as a host renders a type's template in: autoescaping
    on, and gettext's `_()` and `ngettext()` (the host's translations; here the
    English text as written). A type's template words everything it shows to
    volunteers through `_()`, so the host can translate it."""
    environment = jinja2.Environment(autoescape=True, extensions=["jinja2.ext.i18n"])
    environment.install_null_translations(newstyle=True)
    return environment


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
