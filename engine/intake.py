"""Jobs: a bulk upload becomes items, and items become tasks, in the background.

The request only checks the upload, stores it under the instance folder and
enqueues a job (RQ) that receives the job's id. The job splits items in
batches with SQLAlchemy Core bulk inserts, records its progress in SQL (so
it survives Redis), and can be re-run: items already stored are skipped.
"""
from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

from marshmallow import ValidationError
from sqlalchemy import insert, select, update

from engine.archives import ArchiveMember, check_image_archive, read_image_archive
from engine.dispatch import OpenTask
from engine.errors import BitesizeError, InvalidError, NotFoundError
from engine.media import SplitMedia
from engine.identity import Identity
from engine.models import Item, Job, Project, Task, utcnow
from engine.projects import get_owned_project
from engine.services import Services
from task_types import ItemError

BATCH = 500
MAX_REPORTED_ERRORS = 20
MAX_REPORTED_PROBLEMS = 1000


def create_job(services: Services, identity: Identity, project_id: int, *,
               items: list[dict] | None = None, upload: IO[bytes] | None = None,
               filename: str = "", priority: int = 0) -> Job:
    """Check and store an upload, then enqueue the job that splits it."""
    project = get_owned_project(services, identity, project_id)
    if items is not None:
        loaded = validate_items(services, project, items)
        kind, data = "items", io.BytesIO(json.dumps(loaded).encode())
    else:
        kind, data = "zip", _checked_zip(upload, filename)
    with services.db.session() as session:
        job = Job(project_id=project.id, kind=kind, state="queued", problems=[],
                  priority=priority)
        session.add(job)
        session.flush()
        job.source = f"job-{job.id}.{'json' if kind == 'items' else 'zip'}"
        _write_upload(services.settings.uploads_path / job.source, data)
    enqueue_split(services, job.id)
    return job


def enqueue_split(services: Services, job_id: int) -> None:
    services.queue("default").enqueue("workers.jobs.split_job", job_id,
                                      job_id=f"split-{job_id}", job_timeout=6 * 3600)


def _checked_zip(upload: IO[bytes] | None, filename: str) -> IO[bytes]:
    """The uploaded zip, its central directory checked now: a file that is no zip,
    or too big a one, is refused at upload time instead of failing the job later."""
    suffix = PurePosixPath(filename.lower()).suffix
    if upload is None or suffix != ".zip":
        reason = ("CSV uploads are not supported yet" if suffix == ".csv"
                  else f"{filename!r} is not a .zip file")
        raise InvalidError(f"{reason}: send JSON {{\"items\": [...]}} or a .zip of images "
                           "as 'file'", {"file": "expected a .zip archive"})
    try:
        check_image_archive(upload)
    except BitesizeError as exc:
        raise type(exc)(f"{filename}: {exc.message}", {"file": exc.message}) from exc
    return upload


def validate_items(services: Services, project: Project, items: list[dict]) -> list[dict]:
    """The items as the task type's schema loads them (stripped, typed); the whole
    request is refused if any item is malformed, naming each bad one by index."""
    schema = services.registry.get(project.task_type).item_schema(project.config)
    loaded, errors = [], {}
    for index, item in enumerate(items):
        try:
            loaded.append(schema.load(item))
        except ValidationError as exc:
            errors[str(index)] = exc.messages
            if len(errors) >= MAX_REPORTED_ERRORS:
                break
    if errors:
        raise InvalidError(f"{len(errors)} item(s) are not valid", {"items": errors})
    return loaded


def get_job(services: Services, identity: Identity, job_id: int) -> Job:
    """The job if the caller owns its project; another charity's job looks missing,
    and its error names the job only (not the project it belongs to)."""
    identity.require_user()
    with services.db.session() as session:
        job = session.get(Job, job_id)
    try:
        if job is not None:
            get_owned_project(services, identity, job.project_id)
    except NotFoundError:
        job = None
    if job is None:
        raise NotFoundError(f"job {job_id} does not exist", {"job": "not found"})
    return job


def run_job(services: Services, job_id: int) -> Job:
    """Split a stored upload into items and tasks (the body of the RQ job)."""
    with services.db.session() as session:
        job = session.get(Job, job_id)
        project = session.get(Project, job.project_id)
        job.state, job.started_at, job.error = "running", utcnow(), None
    try:
        resumed = _split_all(services, job, project)
    except Exception as exc:
        _finish(services, job, "failed", error=_describe(exc))
        raise
    if resumed:
        from engine.rebuild import rebuild_project
        rebuild_project(services, project.id)  # a crashed run may have left Redis short
    return _finish(services, job, "done")


def _split_all(services: Services, job: Job, project: Project) -> bool:
    with services.db.session() as session:
        done = set(session.scalars(select(Item.seq).where(Item.job_id == job.id)))
    source = services.settings.uploads_path / job.source
    batch: list[tuple[int, dict]] = []
    problems: list[dict] = []
    for seq, item in _items(services, job, source):
        if seq not in done:
            batch.append((seq, item))
        if len(batch) >= BATCH:
            problems += _store_batch(services, job, project, batch)
            batch = []
    problems += _store_batch(services, job, project, batch)
    _report(services, job, problems)
    return bool(done)


def _items(services: Services, job: Job, source: Path) -> Iterator[tuple[int, dict]]:
    if job.kind == "items":
        items = json.loads(source.read_text())
        _progress(services, job, items_total=len(items))
        yield from enumerate(items)
    else:
        yield from _zip_items(services, job, source)


def _zip_items(services: Services, job: Job, source: Path) -> Iterator[tuple[int, dict]]:
    """Each image in the zip becomes an item; bad members go into the job's report."""
    problems, duplicates, seq = [], 0, 0
    for member in read_image_archive(source):
        if not isinstance(member, ArchiveMember):
            problems.append({"path": member.path, "reason": member.reason})
            continue
        try:
            stored = services.media.put(member.data, member.path)
        except BitesizeError as exc:
            problems.append({"path": member.path, "reason": exc.message})
            continue
        duplicates += stored.duplicate
        yield seq, {"image": f"/media/{stored.name}", "thumb": f"/media/{stored.thumb}",
                    "id": member.path}
        seq += 1
    _progress(services, job, items_total=seq, problems=problems, duplicates=duplicates)


def _store_batch(services: Services, job: Job, project: Project,
                 batch: list[tuple[int, dict]]) -> list[dict]:
    """Split one batch of items, then insert the items and their tasks in one
    transaction and pool them; returns the items that could not be split.

    Splitting (which may decode and cut pictures) happens before the
    transaction opens, so a slow page never holds the database's write lock.
    """
    task_type = services.registry.get(project.task_type)
    media = SplitMedia(services.media)
    split, problems = [], []
    for seq, item in batch:
        try:
            split.append((seq, item, task_type.split(item, project.config, media)))
        except ItemError as exc:
            problems.append({"item": seq, "ref": _ref(item), "reason": exc.message})
    if split:
        _insert(services, job, project, split)
    return problems


def _insert(services: Services, job: Job, project: Project,
            split: list[tuple[int, dict, list]]) -> None:
    with services.db.session() as session:
        item_ids = session.scalars(insert(Item).returning(Item.id, sort_by_parameter_order=True), [
            {"project_id": project.id, "job_id": job.id, "seq": seq, "ref": _ref(item),
             "data": item} for seq, item, _ in split]).all()
        rows = [{"project_id": project.id, "item_id": item_id, "payload": mt.payload,
                 "gold": mt.gold, "is_gold": mt.gold is not None, "state": "open",
                 "need": project.min_answers, "priority": job.priority}
                for item_id, (_, _, microtasks) in zip(item_ids, split, strict=True)
                for mt in microtasks]
        task_ids = []
        if rows:
            task_ids = session.scalars(
                insert(Task).returning(Task.id, sort_by_parameter_order=True), rows).all()
        session.execute(update(Job).where(Job.id == job.id).values(
            items_split=Job.items_split + len(split), tasks_made=Job.tasks_made + len(rows)))
    services.dispatcher.add_tasks(project.id, _open(task_ids, rows))


def _ref(item: dict) -> str | None:
    return str(item.get("id"))[:200] if item.get("id") is not None else None


def _report(services: Services, job: Job, problems: list[dict]) -> None:
    """Add the items that could not be split to the job's problem report (after
    any the upload itself had, such as a zip's bad members)."""
    if not problems:
        return
    with services.db.session() as session:
        stored = session.get(Job, job.id)
        again = {problem["item"] for problem in problems}  # a re-run reports an item once
        kept = [p for p in stored.problems or [] if p.get("item") not in again]
        stored.problems = (kept + problems)[:MAX_REPORTED_PROBLEMS]


def _open(task_ids: Iterable[int], rows: list[dict]) -> Iterator[OpenTask]:
    for task_id, row in zip(task_ids, rows, strict=True):
        yield OpenTask(task_id, row["need"], 0, row["payload"], row["priority"], row["is_gold"])


def _progress(services: Services, job: Job, **values: Any) -> None:
    with services.db.session() as session:
        session.execute(update(Job).where(Job.id == job.id).values(**values))


def _finish(services: Services, job: Job, state: str, error: str | None = None) -> Job:
    with services.db.session() as session:
        session.execute(update(Job).where(Job.id == job.id).values(
            state=state, error=error, finished_at=utcnow()))
        return session.get(Job, job.id)


def _describe(exc: Exception) -> str:
    return exc.message if isinstance(exc, BitesizeError) else f"{type(exc).__name__}: {exc}"


def _write_upload(path: Path, data: IO[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        shutil.copyfileobj(data, out, 1024 * 1024)
