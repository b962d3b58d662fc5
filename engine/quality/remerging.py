"""A moderation's re-merge: the tasks a volunteer answered merged again once
their answers stopped counting (block, quarantine) or count again (clear,
unblock), without holding every other writer or volunteer for it.

The moderation's own transaction flips the answers' ``counted`` flag and marks
the volunteer (``VolunteerStat.remerging_since``); then Redis moves each
touched task's count by as much (lua/recount.lua: the project's dispatch is
not rebuilt, which would hold every volunteer's calls while it reads SQL);
then the tasks are merged again a chunk per transaction (one transaction for
ten thousand answers held SQLite's write lock for seconds), each chunk's
dispatch told once it committed (consensus.sync_dispatch); last, the mark
comes off. A re-merge whose process was lost leaves its mark: the periodic
quality job finishes it (``finish_remerges``) and rebuilds that project.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from engine.delivery import outbox
from engine.dispatch.rebuild import rebuild_project
from engine.projects import final_since, is_final
from engine.quality import consensus, recheck
from engine.services import Services
from engine.store.db import custom_plans
from engine.store.models import (
    Answer,
    AuditEntry,
    PendingSubmit,
    Project,
    VolunteerStat,
    utcnow,
)

log = logging.getLogger(__name__)

# A mark older than this was left by a lost process (ten thousand answers take
# seconds): the periodic quality job finishes its re-merge.
STALE_SECONDS = 600


@dataclass(frozen=True)
class Mark:
    """A re-merge under way: when the volunteer was marked, the tasks to merge
    again, how each task's count moves in Redis, and the audit entry (block,
    quarantine) that is to learn how many tasks reopened."""

    since: datetime
    task_ids: list[int]
    deltas: dict[int, int]
    audit_id: int | None = None
    took_over: bool = False  # another re-merge's mark was found: it may not have moved Redis


def begin(session, stat: VolunteerStat, touched: list[int], step: int,
          entry: AuditEntry | None = None) -> Mark:
    """Mark the volunteer in the moderation's transaction, whose recount changed
    the answers of ``touched`` tasks (``step`` -1: they stopped counting, +1:
    they count again). Another re-merge of theirs still marked (under way, or
    lost) is taken over: every task they answered is merged again, and the
    project's dispatch rebuilt, since that one's mark is replaced and its
    process may never finish, nor have moved the counts in Redis. Waiting
    submits (answers stored while Redis was out of reach) are left out of the
    counts' moves either way: Redis never counted them, and their replay will."""
    took_over = stat.remerging_since is not None
    task_ids = answered_tasks(session, stat.project_id, stat.volunteer_id) if took_over \
        else touched
    pending = set(session.scalars(select(PendingSubmit.task_id).where(
        PendingSubmit.project_id == stat.project_id,
        PendingSubmit.volunteer_id == stat.volunteer_id)))
    deltas = {task_id: count * step for task_id, count in Counter(touched).items()
              if task_id not in pending}
    stat.remerging_since = since = utcnow()
    if entry is not None:
        session.flush()  # its id, while the transaction holds it
    return Mark(since, sorted(set(task_ids)), deltas, entry.id if entry is not None else None,
                took_over)


def answered_tasks(session, project_id: int, volunteer_id: int) -> list[int]:
    return list(session.scalars(select(Answer.task_id).where(
        Answer.project_id == project_id, Answer.volunteer_id == volunteer_id)))


def recount(services: Services, project_id: int, volunteer_id: int, mark: Mark) -> None:
    """Move the touched tasks' counts in Redis, once the recount committed; the
    caller holds the project's rebuild lock (a rebuild reading SQL between the
    commit and this would have them moved twice)."""
    services.dispatcher.recount(project_id, volunteer_id, mark.deltas)


def merge_again(services: Services, project_id: int, volunteer_id: int,
                mark: Mark) -> consensus.Remerged:
    """The marked tasks merged again, then the mark taken off (unless a later
    moderation of theirs set it again) and its audit entry told how many
    tasks reopened."""
    remerged = _chunks(services, project_id, mark.task_ids)
    if mark.took_over:  # as finish_remerges: the lost process may not have moved counts
        rebuild_project(services, project_id)
    _unmark(services, project_id, volunteer_id, mark, remerged)
    return remerged


def _chunks(services: Services, project_id: int, task_ids: list[int]) -> consensus.Remerged:
    """Tasks merged again from what counts now, a chunk per transaction, each
    chunk's dispatch told once it committed; a retired task that reopens is
    reported to the webhook as task.reopened."""
    changes: list[consensus.Change] = []
    recorded = False
    for start in range(0, len(task_ids), consensus.CHUNK):
        chunk = task_ids[start:start + consensus.CHUNK]
        try:
            with services.db.writing() as session:
                custom_plans(session)
                project = session.get(Project, project_id)
                if project is None or is_final(project):  # archived (or deleted) since
                    break
                old = recheck.results_of(session, chunk)
                part = consensus.remerge(session, services.registry.get(project.task_type),
                                         project, chunk)
                reported = recheck.reopened_events(session, project_id, old, part.changes)
                _refuse_if_archived_meanwhile(session, project_id)
        except _ArchivedMeanwhile:
            break
        consensus.sync_dispatch(services, project_id, part)
        changes += part.changes
        recorded = recorded or part.recorded or reported
    if recorded:
        outbox.nudge(services)
    return consensus.Remerged(changes, recorded)


class _ArchivedMeanwhile(Exception):
    """A chunk's project was archived while the chunk was merged: it is undone."""


def _refuse_if_archived_meanwhile(session, project_id: int) -> None:
    """The end of a chunk's transaction: an archive committed while the chunk
    was merged rolls the chunk back (engine.projects.final_since)."""
    if final_since(session, project_id):
        raise _ArchivedMeanwhile(project_id)


def _unmark(services: Services, project_id: int, volunteer_id: int, mark: Mark,
            remerged: consensus.Remerged) -> None:
    with services.db.writing() as session:
        session.execute(update(VolunteerStat).where(
            VolunteerStat.project_id == project_id, VolunteerStat.volunteer_id == volunteer_id,
            VolunteerStat.remerging_since == mark.since).values(remerging_since=None))
        if mark.audit_id is not None:
            entry = session.get(AuditEntry, mark.audit_id)
            entry.detail = {**entry.detail, "tasks_reopened": remerged.reopened}


def finish_remerges(services: Services, stale_seconds: float = STALE_SECONDS) -> int:
    """Finish the re-merges that lost processes left (marked longer ago than
    ``stale_seconds``; the periodic quality job calls this): every task the
    volunteer answered in the project merged again, then the project's
    dispatch rebuilt from SQL (the lost process may have moved counts in Redis
    that it never merged, or not moved them), and only then the mark taken
    off. One that fails keeps its mark for the next run and does not hold up
    the others. Returns how many were finished."""
    cutoff = utcnow() - timedelta(seconds=stale_seconds)
    with services.db.session() as session:
        left = session.execute(select(
            VolunteerStat.project_id, VolunteerStat.volunteer_id, VolunteerStat.remerging_since)
            .where(VolunteerStat.remerging_since < cutoff)).all()
    finished = 0
    for project_id, volunteer_id, since in left:
        try:
            with services.db.session() as session:
                task_ids = sorted(set(answered_tasks(session, project_id, volunteer_id)))
            remerged = _chunks(services, project_id, task_ids)
            rebuild_project(services, project_id)
            _unmark(services, project_id, volunteer_id, Mark(since, task_ids, {}), remerged)
            finished += 1
        except Exception:  # noqa: BLE001 - kept marked: the next run tries again
            log.exception("could not finish the re-merge of volunteer %d in project %d",
                          volunteer_id, project_id)
    return finished
