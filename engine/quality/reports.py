"""Volunteers' reports of a task that is wrong: a blank picture, upsetting content, unreadable.

Volunteers see every picture a charity uploads, and some should never have
been there. A report reaches the charity's inbox at once (engine.quality.inbox,
kind "report"); when `reports_to_withdraw` different volunteers have reported
a task (a project quality setting, default 2, so that one person cannot hide
tasks; 0: never by itself), it is taken out of circulation: contested, out of
the pool, waiting for staff. Only reports from volunteers established in the
project (engine.quality.trust) and neither blocked nor quarantined count toward
that: otherwise two fresh sign-ups could hide any task they liked. Every report
still reaches the inbox, except a blocked volunteer's (not kept: file_report).
Staff then either settle it (engine.quality.review, which resolves its reports)
or dismiss the reports, which puts it back exactly where its answers would have
it (a re-merge). Both are in the audit log.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update

from engine.dispatch.rebuild import load_tasks, rebuild_lock, take_out
from engine.errors import ConflictError, NotFoundError
from engine.identity import Identity
from engine.projects import owned_project_of_task, task_project_unless_final
from engine.quality import audit, trust
from engine.quality.consensus import remerge, sync_dispatch
from engine.quality.thresholds import thresholds
from engine.services import Services
from engine.store.models import Project, Task, TaskReport, Volunteer, VolunteerStat, iso, utcnow

# What a volunteer may say, as the page words it
REASONS = {
    "blank": "It is blank or broken",
    "offensive": "It is offensive or upsetting",
    "unreadable": "I cannot read or see it",
    "other": "Something else",
}


@dataclass(frozen=True)
class Filed:
    withdrawn: bool  # this report took the task out of circulation
    reports: int  # open reports of the task, this one included


def file_report(services: Services, project_id: int, task_id: int, volunteer_id: int,
                reason: str, note: str | None = None) -> Filed:
    """Store one volunteer's report (again: kept as first filed) and withdraw the
    task if that makes enough. The caller has checked the volunteer's lease.
    A volunteer blocked in the project is answered as anyone else, but their
    report is not kept: they are told nothing of the block (as a hand-out tells
    them "nothing left"), and staff's inbox is not theirs to fill."""
    with services.db.writing() as session:
        # the task, then the project read shared (the order merges lock them in):
        # an archive committing meanwhile is waited for and seen
        task = session.get(Task, task_id, with_for_update=True)
        if task is None or task.project_id != project_id:
            raise NotFoundError(f"task {task_id} does not exist", {"task": "not found"})
        # nobody could dismiss it in an archived project: the task would stay out
        project = task_project_unless_final(session, project_id)
        stat = session.get(VolunteerStat, (project_id, volunteer_id))
        if stat is not None and stat.blocked:
            return Filed(False, 0)
        mine = session.scalar(select(TaskReport).where(TaskReport.task_id == task_id,
                                                       TaskReport.volunteer_id == volunteer_id))
        if mine is None:
            session.add(TaskReport(task_id=task_id, project_id=project_id,
                                   volunteer_id=volunteer_id, reason=reason,
                                   note=(note or "").strip() or None))
            session.flush()
        count = _open_count(session, task_id)
        needed = thresholds(project)["reports_to_withdraw"]
        withdrawn = bool(needed) and task.state == "open" and not task.is_gold \
            and count >= needed and _weighty_count(session, project, task_id) >= needed
        if withdrawn:
            task.state = "contested"
    if withdrawn:
        take_out(services, project_id, task_id)
    return Filed(withdrawn, count)


def dismiss_reports(services: Services, identity: Identity, task_id: int,
                    note: str = "") -> dict[str, Any]:
    """Staff judged the reports unfounded: they are resolved and a task they took
    out of circulation goes back where its answers put it (merged again)."""
    with services.db.writing() as session:
        # the task first, as a settlement locks it before its reports (the
        # reports first deadlocked with one on PostgreSQL)
        task = session.get(Task, task_id, with_for_update=True)
        project = owned_project_of_task(services, identity, task, task_id)
        project = task_project_unless_final(session, project.id)
        dismissed = resolve_reports(session, task_id)
        if not dismissed:
            raise ConflictError(f"task {task_id} has no open report", {"task": "no report"})
        before = task.state
        if before == "contested":
            task.state = "open"
            remerged = remerge(session, services.registry.get(project.task_type), project,
                               [task_id])
        else:
            remerged = None
        audit.record(session, project, "dismiss_reports", identity.id, task_id=task_id,
                     reason=note, detail={"reports": dismissed, "was": before})
        state = task.state
    if remerged is not None:
        sync_dispatch(services, project.id, remerged)
    if state == "open":  # withdrawn, Redis kept nothing of it (a merge may change nothing)
        with rebuild_lock(services, project.id):
            load_tasks(services, project.id, [task_id])
    return {"task": task_id, "dismissed": dismissed, "state": state}


def resolve_reports(session, task_id: int) -> int:
    """Mark a task's open reports resolved (dismissed, or the task settled); how many."""
    return session.execute(update(TaskReport).where(
        TaskReport.task_id == task_id, TaskReport.resolved_at.is_(None))
        .values(resolved_at=utcnow())).rowcount


def open_reports(session, task_id: int) -> list[dict[str, Any]]:
    """A task's open reports, oldest first, for the quality desk."""
    rows = session.scalars(select(TaskReport).where(
        TaskReport.task_id == task_id, TaskReport.resolved_at.is_(None))
        .order_by(TaskReport.id))
    return [{"volunteer": r.volunteer_id, "reason": r.reason, "note": r.note or "",
             "created_at": iso(r.created_at)} for r in rows]


def _weighty_count(session, project: Project, task_id: int) -> int:
    """A task's open reports that count toward withdrawal: from volunteers
    established in the project, not blocked, not quarantined."""
    rows = session.execute(
        select(Volunteer.created_at, VolunteerStat.gold_answers, VolunteerStat.gold_score,
               VolunteerStat.flags, Volunteer.blocked, VolunteerStat.blocked,
               VolunteerStat.quarantined_at)
        .select_from(TaskReport)
        .join(Volunteer, Volunteer.id == TaskReport.volunteer_id)
        .outerjoin(VolunteerStat, (VolunteerStat.volunteer_id == TaskReport.volunteer_id)
                   & (VolunteerStat.project_id == project.id))
        .where(TaskReport.task_id == task_id, TaskReport.resolved_at.is_(None)))
    limits, now = trust.limits_of(project.quality), utcnow()
    return sum(1 for *standing, banned, blocked, quarantined in rows
               if not (banned or blocked or quarantined)
               and trust.Standing(*standing).established(limits, now))


def _open_count(session, task_id: int) -> int:
    return session.scalar(select(func.count()).select_from(TaskReport).where(
        TaskReport.task_id == task_id, TaskReport.resolved_at.is_(None)))
