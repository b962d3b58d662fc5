"""Uploads that wait for a person before they become a job: a CSV whose columns
are still to be matched to item fields.

A spreadsheet's columns rarely carry the item fields' names, and guessing
wrong makes a job full of empty items. So the console keeps an uploaded CSV
aside (with the other uploads, engine.intake.uploads: the instance's uploads
folder or a bucket; by a random token, per project),
shows its first rows with a choice of column per item field, and only then
creates the job with that mapping: through ``create_job``, the same checks
as the API's ``mapping`` form field. A staged CSV belongs to its project's
organisation; one left alone for ``KEEP_DAYS`` is removed.
"""
from __future__ import annotations

import io
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from engine.errors import NotFoundError
from engine.identity import Identity
from engine.intake.importers import CsvPreview, preview_csv
from engine.intake.jobs import create_job
from engine.projects import get_owned_project
from engine.services import Services
from engine.store.models import Job, Project

KEEP_DAYS = 2
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22}")
# What a staged CSV's preview reads of it: its first rows are in the first MB (a
# bucket would otherwise send the whole file, up to BITESIZE_MAX_UPLOAD_MB, per view)
PREVIEW_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Staged:
    """A CSV waiting for its mapping."""

    token: str
    project_id: int
    filename: str
    priority: int
    staged_at: float  # seconds since the epoch


def stage_csv(services: Services, identity: Identity, project_id: int, upload: IO[bytes],
              filename: str, priority: int = 0) -> tuple[Staged, CsvPreview]:
    """Check the CSV's encoding and header (InvalidError says what is wrong), keep it,
    and return it with its preview."""
    project = get_owned_project(services, identity, project_id)
    checked = preview_csv(services, project, upload, filename)
    _forget_old(services, project.id)
    staged = Staged(secrets.token_urlsafe(16), project.id, filename[:300], priority, time.time())
    upload.seek(0)
    services.uploads.put(_name(staged.project_id, staged.token, ".csv"), upload)
    services.uploads.put_json(_name(staged.project_id, staged.token, ".json"), {
        "filename": staged.filename, "priority": priority, "staged_at": staged.staged_at})
    return staged, checked


def staged_uploads(services: Services, identity: Identity, project_id: int) -> list[Staged]:
    """The project's CSVs waiting for a mapping, oldest first."""
    project = get_owned_project(services, identity, project_id)
    found = [_read(services, project.id, Path(name).stem)
             for name, _ in services.uploads.names(_folder(project.id)) if name.endswith(".json")]
    return sorted((s for s in found if s is not None), key=lambda s: s.staged_at)


def get_staged(services: Services, identity: Identity, project_id: int,
               token: str) -> tuple[Staged, CsvPreview]:
    """One staged CSV and its preview; NotFoundError if it is not there (or not yours)."""
    project = get_owned_project(services, identity, project_id)
    staged = _waiting(services, project, token)
    name = _name(project.id, token, ".csv")
    head = services.uploads.head(name, PREVIEW_BYTES)
    if head is None:
        raise _gone()
    if len(head) == PREVIEW_BYTES:  # more follows: its whole lines only
        head = head[:head.rfind(b"\n") + 1]
    if head:  # its encoding was checked when it was staged
        return staged, preview_csv(services, project, io.BytesIO(head), staged.filename,
                                   checked=True)
    with services.uploads.opened(name) as path, open(path, "rb") as data:  # a huge first line
        return staged, preview_csv(services, project, data, staged.filename)


def _waiting(services: Services, project: Project, token: str) -> Staged:
    """One staged CSV's record, without reading the CSV (in a bucket, a download of
    up to BITESIZE_MAX_UPLOAD_MB that importing or discarding it need not make)."""
    staged = _read(services, project.id, token) if _TOKEN.fullmatch(token) else None
    if staged is None:
        raise _gone()
    return staged


def _gone() -> NotFoundError:
    return NotFoundError("this upload is no longer waiting: it was imported or discarded",
                         {"upload": "not found"})


def import_staged(services: Services, identity: Identity, project_id: int, token: str,
                  mapping: str | dict | None) -> Job:
    """Create the job from a staged CSV with this mapping (checked as the API checks
    its ``mapping``); the staged copy is removed once the job has its own."""
    staged = _waiting(services, get_owned_project(services, identity, project_id), token)
    with services.uploads.opened(_name(staged.project_id, token, ".csv")) as path, \
            open(path, "rb") as data:
        job = create_job(services, identity, project_id, upload=data, filename=staged.filename,
                         mapping=mapping, priority=staged.priority)
    _remove(services, staged)
    return job


def discard_staged(services: Services, identity: Identity, project_id: int, token: str) -> None:
    staged = _waiting(services, get_owned_project(services, identity, project_id), token)
    _remove(services, staged)


def _folder(project_id: int) -> str:
    return f"staged/{project_id}"


def _name(project_id: int, token: str, suffix: str) -> str:
    return f"{_folder(project_id)}/{token}{suffix}"


def _read(services: Services, project_id: int, token: str) -> Staged | None:
    meta = services.uploads.get_json(_name(project_id, token, ".json"))
    if not isinstance(meta, dict) or not services.uploads.exists(
            _name(project_id, token, ".csv")):
        return None
    return Staged(token, project_id, str(meta.get("filename", "")), int(meta.get("priority", 0)),
                  float(meta.get("staged_at", 0)))


def _remove(services: Services, staged: Staged) -> None:
    for suffix in (".json", ".csv"):
        services.uploads.delete(_name(staged.project_id, staged.token, suffix))


def _forget_old(services: Services, project_id: int) -> None:
    """Remove what waited longer than KEEP_DAYS: nobody is coming back for it."""
    cutoff = time.time() - KEEP_DAYS * 86400
    for name, written in services.uploads.names(_folder(project_id)):
        if written < cutoff:
            services.uploads.delete(name)
