"""Jobs: a bulk upload becomes items, and items become tasks, in the background.

The request only checks the upload, stores it under the instance folder and
enqueues a job (RQ; engine.intake.queueing gives each organisation its turn)
that receives the job's id. The job splits items in batches with SQLAlchemy
Core bulk inserts, records its progress in SQL (so it survives Redis), and
can be re-run: items already stored are skipped.
An image already in the project (same content, or same IIIF image URL) is
reported as a duplicate instead of becoming tasks again. A transient failure
(database, Redis, a manifest's server) is retried by RQ with back-off; a
failure that is the upload's fault fails the job at once, with its error,
and an owner can run a failed job again once the cause is fixed.

While a split runs it keeps ``heartbeat_at`` fresh (a small thread beats
every few seconds, even inside a slow batch) and records how far reading got
(``items_read``). A worker that dies (kill -9, a lost machine) can record
nothing, so its job would look ``running`` forever: engine.intake.watchdog
finds such jobs by their stale heartbeat and resumes or fails them, and an
owner may run one again at once.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import redis
from sqlalchemy import ColumnElement, and_, func, insert, or_, select, update
from sqlalchemy import exc as sql_errors

from engine.delivery import outbox
from engine.dispatch.dispatcher import OpenTask
from engine.errors import BitesizeError, ConflictError, NotFoundError, UnavailableError
from engine.identity import Identity
from engine.intake.heartbeat import Heartbeat
from engine.intake.importers import Entry, open_source, plan_upload, write_options
from engine.intake.media import SplitMedia
from engine.intake.queueing import enqueue_split, forget_rq_job
from engine.projects import FINAL_STATE, get_owned_project, is_final, refuse_if_final
from engine.services import Services
from engine.store.models import Item, Job, Project, Task, utcnow
from task_types import ItemError

BATCH = 500
MAX_REPORTED_PROBLEMS = 1000
HEARTBEAT_SECONDS = 5.0  # how often a running split says it is alive
PROGRESS_SECONDS = 0.5  # how often at most it records items_read between batches
# A running job whose heartbeat is older than this lost its worker: eight missed beats.
STALE_AFTER = timedelta(seconds=40)
log = logging.getLogger(__name__)
# Failures that say nothing about the upload: trying again later may work.
TRANSIENT = (sql_errors.OperationalError, sql_errors.InterfaceError,
             redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
             ConnectionError, TimeoutError, UnavailableError)

# A job's end when its project was archived before or while it ran: archiving
# is final, so the batches not yet stored are not.
ARCHIVED_DURING_JOB = ("the project was archived while this job waited or ran, and archiving "
                       "is final: items not yet stored were not added")


def create_job(services: Services, identity: Identity, project_id: int, *,
               items: list[dict] | None = None, upload: IO[bytes] | None = None,
               filename: str = "", priority: int = 0, mapping: str | dict | None = None,
               iiif: str | None = None, folder: str | os.PathLike | None = None,
               enqueue: bool = True) -> Job:
    """Check and store an upload (see engine.intake.importers for the kinds), then enqueue
    the job that splits it; ``enqueue=False`` leaves the running to the caller
    (the command line splits in its own process)."""
    project = get_owned_project(services, identity, project_id)
    refuse_if_final(project)
    planned = plan_upload(services, project, items=items, upload=upload, filename=filename,
                          mapping=mapping, iiif=iiif, folder=folder)
    with services.db.session() as session:
        job = Job(project_id=project.id, kind=planned.kind, state="queued", problems=[],
                  priority=priority, filename=_shown_name(filename, iiif, folder))
        session.add(job)
        session.flush()
        job.source = f"job-{job.id}.{planned.ext}" if planned.ext else ""
        if planned.data is not None:
            services.uploads.put(job.source, planned.data)
        if planned.options is not None:
            write_options(services, job, planned.options)
    if enqueue:
        enqueue_split(services, job.id)
    return job


def _shown_name(filename: str, iiif: str | None, folder: str | os.PathLike | None) -> str:
    """What the job is called on pages: the file's name, the manifest's URL or the
    folder's name ("" for items sent in a request body)."""
    name = filename or iiif or (Path(folder).name if folder is not None else "")
    return name[:300]


def rerun_job(services: Services, identity: Identity, job_id: int) -> Job:
    """Run a failed job again, or one whose worker stopped (still ``running`` with a
    stale heartbeat): it resumes where it stopped (stored items are skipped), so
    nothing is made twice. 409 for any other job."""
    job = get_job(services, identity, job_id)
    with services.db.session() as session:
        refuse_if_final(session.get(Project, job.project_id))
        claimed = session.execute(
            update(Job).where(Job.id == job.id, or_(Job.state == "failed",
                                                    stalled(utcnow() - STALE_AFTER)))
            .values(state="queued", finished_at=None, resumed=0,
                    heartbeat_at=None)).rowcount
    if not claimed:
        raise ConflictError(f"job {job_id} is {job.state}: only a failed job, or one whose "
                            "worker stopped, can be run again",
                            {"job": f"{job.state}, not failed"})
    forget_rq_job(services, job.id)  # its failed or dead run, so the id can be reused
    enqueue_split(services, job.id)
    with services.db.session() as session:
        rerun = session.get(Job, job.id)
    if rerun is None:  # its draft was deleted meanwhile, and the job with it
        raise NotFoundError(f"job {job_id} does not exist", {"job": "not found"})
    return rerun


def stalled(cutoff: datetime) -> ColumnElement[bool]:
    """SQL: the job is running but its worker stopped beating before ``cutoff``
    (a job started before heartbeats existed is judged by its start)."""
    return and_(Job.state == "running",
                or_(Job.heartbeat_at < cutoff,
                    and_(Job.heartbeat_at.is_(None), Job.started_at < cutoff)))


def list_jobs(services: Services, identity: Identity, project_id: int, *,
              state: str | None = None, limit: int = 50, offset: int = 0) -> list[Job]:
    """A project's jobs, newest first, for its owners (failed ones with ?state=failed)."""
    project = get_owned_project(services, identity, project_id)
    query = select(Job).where(Job.project_id == project.id)
    if state is not None:
        query = query.where(Job.state == state)
    with services.db.session() as session:
        return list(session.scalars(query.order_by(Job.id.desc()).limit(limit).offset(offset)))


def gold_counts(services: Services, identity: Identity, project_id: int) -> dict[int, int]:
    """How many gold tasks each of a project's jobs made, by job id (jobs without
    gold are left out): items uploaded with a ``gold`` answer."""
    project = get_owned_project(services, identity, project_id)
    query = (select(Item.job_id, func.count(Task.id)).join(Task, Task.item_id == Item.id)
             .where(Item.project_id == project.id, Task.is_gold.is_(True))
             .group_by(Item.job_id))
    with services.db.session() as session:
        return {job_id: count for job_id, count in session.execute(query)}


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


Progress = Callable[[int, int], None]  # (entries read so far, entries in the upload)


def run_job(services: Services, job_id: int, *, progress: Progress | None = None,
            retry_in: Callable[[BaseException], int | None] | None = None,
            last_attempt: bool = True) -> Job | None:
    """Split a stored upload into items and tasks (the body of the RQ job); None
    when the job is gone (its draft was deleted before or while it ran).

    On failure the exception propagates and the job is marked failed with its
    error, unless ``retry_in`` gives the seconds until this job is run again
    (the worker's retries): then it waits, queued, with this attempt's error.
    A run that finds the job taken over (the watchdog judged it dead and
    resumed it elsewhere) stops at its next batch and records nothing, and one
    that finds it ended (done, or failed: only a rerun queues it again) returns
    it as it is. An image server that does not answer fails the run, to be
    retried, unless this is its ``last_attempt`` (no retry left, or none at all
    as from the command line): then the picture is its item's problem, so that
    one dead server never keeps a whole import from finishing.
    """
    claimed = _claim(services, job_id)
    if not isinstance(claimed, tuple):
        return claimed
    job, project, owner = claimed
    if is_final(project):  # queued before the archive: no task added
        return _finish(services, job, "failed", error=ARCHIVED_DURING_JOB)
    heartbeat = Heartbeat(services, job.id, owner, HEARTBEAT_SECONDS)
    try:
        with heartbeat:
            if _split_all(services, job, project, progress, heartbeat, last_attempt):
                from engine.dispatch.rebuild import rebuild_project
                rebuild_project(services, project.id)  # a crashed run may have left Redis short
    except TakenOver:
        log.warning("job %s was taken over by another run: this one stops", job.id)
        with services.db.session() as session:
            return session.get(Job, job.id)
    except DraftDeleted:  # the job went with it: nothing to record
        log.info("job %s stops: its draft was deleted", job.id)
        return None
    except Exception as exc:
        if not heartbeat.lost:  # else the job is another run's to record
            record_failure(services, job.id, exc, retry_in(exc) if retry_in else None)
        raise
    return _finish(services, job, "done")


def _claim(services: Services, job_id: int) -> tuple[Job, Project, int] | Job | None:
    """Mark the job running if it is queued or running (a run resuming it), and
    return it with its project and the run's ``resumed`` mark; else the job as
    it is (None when gone). A job that ended is never split again: RQ retries a
    split whose end was recorded but whose post-commit work failed, and a
    second run would record its job.split twice."""
    # one UPDATE, the conditional claim, before any read: SQLite's write lock
    # taken first (a deferred transaction that another process wrote under
    # fails at once with "database is locked"), and a draft's deletion holding
    # the row is waited for, and then seen
    with services.db.writing() as session:
        now = utcnow()
        mine = session.execute(update(Job).where(
            Job.id == job_id, Job.state.in_(("queued", "running"))).values(
            state="running", started_at=now, error=None, heartbeat_at=now,
            items_read=0)).rowcount
        job = session.get(Job, job_id)
        if job is None or not mine:  # gone with its draft, or ended
            if job is not None:
                log.warning("job %s is %s: not split again", job_id, job.state)
            return job
        # the watchdog bumps ``resumed`` when it hands the job to another run
        return job, session.get(Project, job.project_id), job.resumed


class TakenOver(Exception):
    """This run's job was handed to another run: it must stop without recording."""


class DraftDeleted(Exception):
    """The job's project, a draft, was deleted while the job ran (engine.lifecycle
    .delete_draft deletes its jobs too): the run stops, adding nothing."""


def is_transient(exc: BaseException) -> bool:
    """Whether a failure is the infrastructure's (worth a retry), not the upload's."""
    return isinstance(exc, TRANSIENT) or (
        isinstance(exc, sql_errors.DBAPIError) and exc.connection_invalidated)


def record_failure(services: Services, job_id: int, exc: BaseException,
                   retry_in: int | None = None) -> None:
    """The job failed with this error; or, when it runs again in ``retry_in``
    seconds, it is queued again, its error saying what this attempt met."""
    with services.db.session() as session:
        job = session.get(Job, job_id)
    if job is None:  # its draft was deleted: nothing left to record on
        return
    if retry_in is None:
        _finish(services, job, "failed", error=_describe(exc))
    else:
        _progress(services, job, state="queued", error=f"{_describe(exc)} (this job will be "
                  f"tried again in {retry_in} s)")


@dataclass
class _Run:
    """What one run of a job reports beside new items. Every run reads the whole
    upload and counts afresh, so a resumed job reports each thing once."""

    problems: list[dict] = field(default_factory=list)
    unlisted: int = 0
    duplicates: int = 0
    last_attempt: bool = True  # engine.intake.media.SplitMedia's

    def problem(self, entry: Entry, reason: str, **extra: Any) -> None:
        if len(self.problems) < MAX_REPORTED_PROBLEMS:
            self.problems.append({"item": entry.seq, **entry.where, **extra, "reason": reason})
        else:
            self.unlisted += 1

    def report(self) -> list[dict]:
        more = [{"reason": f"{self.unlisted} more problems not listed"}] if self.unlisted else []
        return self.problems + more

    def count(self) -> int:
        """Every problem found, listed or not (the report's length is capped)."""
        return len(self.problems) + self.unlisted


def _split_all(services: Services, job: Job, project: Project, progress: Progress | None,
               heartbeat: Heartbeat, last_attempt: bool) -> bool:
    done, known = _stored(services, job, project)
    run = _Run(last_attempt=last_attempt)
    with services.uploads.opened(job.source) if job.source else nullcontext() as path:
        return _split_entries(services, job, project, progress, heartbeat, run, done, known,
                              *open_source(services, job, project, path))


def _split_entries(services: Services, job: Job, project: Project, progress: Progress | None,
                   heartbeat: Heartbeat, run: _Run, done: set[int], known, total: int,
                   entries: Iterator[Entry]) -> bool:
    _progress(services, job, items_total=total)
    batch: list[Entry] = []
    noted, handled = time.monotonic(), 0
    for handled, entry in enumerate(entries, 1):
        if entry.seq not in done:
            _take(job, entry, known, run, batch)
        if len(batch) >= BATCH:
            _check_owner(heartbeat)
            _store_batch(services, job, project, batch, run, handled)
            batch, noted = [], time.monotonic()
        elif time.monotonic() - noted >= PROGRESS_SECONDS:
            _progress(services, job, items_read=handled, heartbeat_at=utcnow())
            noted = time.monotonic()
        if progress is not None:
            progress(handled, total)
    _check_owner(heartbeat)
    _store_batch(services, job, project, batch, run, handled)
    return bool(done)


def _check_owner(heartbeat: Heartbeat) -> None:
    if heartbeat.lost:
        raise TakenOver


def _stored(services: Services, job: Job, project: Project) -> tuple[set[int], set[str]]:
    """The seqs this job already stored, and the images of the project's items:
    one query each per run, so spotting a duplicate costs a set lookup."""
    with services.db.session() as session:
        done = set(session.scalars(select(Item.seq).where(Item.job_id == job.id)))
        images = session.scalars(select(Item.data["image"].as_string())
                                 .where(Item.project_id == project.id))
        return done, {image for image in images if image}


def _take(job: Job, entry: Entry, known: set[str], run: _Run, batch: list[Entry]) -> None:
    """Batch an entry to be split, or report it: unreadable, or an image the
    project already has (then it is no new item: its tasks exist already)."""
    if entry.item is None:
        run.problem(entry, entry.problem or "not readable")
        return
    image = _image_key(job, entry.item)
    if image is not None and image in known:
        run.duplicates += 1
        run.problem(entry, "already in this project", duplicate=True)
        return
    if image is not None:
        known.add(image)
    batch.append(entry)


def _image_key(job: Job, item: dict) -> str | None:
    """What identifies an item's picture: a stored image's name is its content
    hash; a IIIF image URL names one canvas image. Other URLs may serve anything
    and rows may share a picture on purpose, so they are never duplicates."""
    image = item.get("image")
    if isinstance(image, str) and (image.startswith("/media/") or job.kind == "iiif"):
        return image
    return None


def _store_batch(services: Services, job: Job, project: Project, batch: list[Entry],
                 run: _Run, read: int) -> None:
    """Split one batch of items, then insert the items and their tasks in one
    transaction and pool them; items that could not be split are reported, and
    the report and counts so far are saved with the batch.

    Splitting (which may decode and cut pictures) happens before the
    transaction opens, so a slow page never holds the database's write lock.
    """
    task_type = services.registry.get(project.task_type)
    media = SplitMedia(services.media, allow=services.settings.fetch_allow,
                       last_attempt=run.last_attempt)
    split = []
    for entry in batch:
        try:
            split.append((entry.seq, entry.item, task_type.split(entry.item, project.config,
                                                                 media)))
        except ItemError as exc:
            run.problem(entry, exc.message, ref=_ref(entry.item))
    if split:
        _insert(services, job, project, split)
    _progress(services, job, duplicates=run.duplicates, problems=run.report(),
              problems_count=run.count(), items_read=read, heartbeat_at=utcnow())


def _insert(services: Services, job: Job, project: Project,
            split: list[tuple[int, dict, list]]) -> None:
    """Store a batch's items and tasks, and put the tasks in the pool; a project
    archived since the job began takes none (ConflictError: the job fails saying
    so), nor one deleted (DraftDeleted). The project's row is read shared, so an
    archive waits for a batch being stored, and the batch after it sees the
    archive."""
    with services.db.writing() as session:
        # the job's row, then the project's (the order a deletion locks them in,
        # and a finishing job or the watchdog's failing it: the project last)
        mine = session.scalar(select(Job.id).where(Job.id == job.id).with_for_update())
        state = session.scalar(select(Project.state).where(Project.id == project.id)
                               .with_for_update(read=True))
        if mine is None or state is None:
            raise DraftDeleted(project.id)
        if state == FINAL_STATE:
            raise ConflictError(ARCHIVED_DURING_JOB, {"state": "archived"})
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


def _open(task_ids: Iterable[int], rows: list[dict]) -> Iterator[OpenTask]:
    for task_id, row in zip(task_ids, rows, strict=True):
        yield OpenTask(task_id, row["need"], 0, row["payload"], row["priority"], row["is_gold"])


def _progress(services: Services, job: Job, **values: Any) -> None:
    with services.db.session() as session:
        session.execute(update(Job).where(Job.id == job.id).values(**values))


def _finish(services: Services, job: Job, state: str, error: str | None = None) -> Job:
    return finish_job(services, job.id, state, error)


def finish_job(services: Services, job_id: int, state: str, error: str | None = None,
               *conditions: ColumnElement[bool], **values: Any) -> Job | None:
    """Record how the job ended (and any other ``values``), and its job.split webhook
    event in the same transaction; with ``conditions``, only if the job still
    meets them (else None)."""
    with services.db.session() as session:
        changed = session.execute(update(Job).where(Job.id == job_id, *conditions).values(
            state=state, error=error, finished_at=utcnow(), **values)).rowcount
        if not changed:
            return None
        finished = session.get(Job, job_id)
        recorded = outbox.job_finished(session, finished)
    if recorded:
        _nudge(services, job_id)
    return finished


def _nudge(services: Services, job_id: int) -> None:
    """Ask for the job's event to be delivered soon. The end is committed by now:
    a failure here (the queue's Redis out of reach) must not fail the split,
    whose retry would find the job ended; the periodic delivery sends it."""
    try:
        outbox.nudge(services)
    except Exception:
        log.warning("job %s: webhook delivery not nudged; the periodic run delivers it",
                    job_id, exc_info=True)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BitesizeError):
        return exc.message
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
