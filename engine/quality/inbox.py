"""The inbox: everything that waits for a human, across the projects a caller runs.

Five kinds, newest first: a quarantined volunteer (the flags stopped counting
their answers; an admin blocks or clears them), a contested task (the crowd
could not settle it; someone settles it), a task volunteers reported as wrong
(engine.quality.reports: blank, upsetting, unreadable; settle it or dismiss
the reports), a failed upload job, and a webhook event that was given up on
(dead; redeliver it once the receiver is fixed). A reported task is listed
as reported only, even when its reports took it out of circulation.
Each row names where to act: project, volunteer, task, job or event.

Admins (and platform admins) see all five in the projects they moderate;
charity members see tasks, reports, jobs and webhooks of their organisation's projects
(volunteers are an admin's business).

Paging merges the five sources in Python: for page (offset, limit) it reads
at most offset + limit rows of each, newest first (ties by id), which is exact
and cheap for the pages a person reads; the offset is capped (MAX_OFFSET).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import exists, func, select

from engine.identity import Identity
from engine.projects import get_owned_project
from engine.quality.consensus import withdrawn_by_reports
from engine.services import Services
from engine.store.models import (
    Job,
    Project,
    Result,
    Task,
    TaskReport,
    VolunteerStat,
    WebhookEvent,
    aware,
)

KINDS = ("volunteer", "task", "report", "job", "webhook")
MAX_OFFSET = 10_000  # deeper than anyone pages; filter by kind or project instead


def inbox(services: Services, identity: Identity, limit: int = 50, offset: int = 0,
          kind: str | None = None, project_id: int | None = None) -> dict[str, Any]:
    """A page of the inbox, newest first: `total` items match the filter, and
    `counts` says how many of each kind wait, whichever kind is asked for (the
    desk's tabs show them all at once)."""
    identity.require_user()
    if project_id is not None:  # another organisation's is missing, as everywhere
        get_owned_project(services, identity, project_id)
    allowed = _kinds(identity)
    kinds = [k for k in allowed if kind in (None, k)]
    with services.db.session() as session:
        projects = _projects(session, identity, project_id)
        counts = {k: (session.scalar(select(func.count()).select_from(
            _QUERIES[k](projects).subquery())) if k in allowed else 0) for k in KINDS}
        rows = []
        for k in kinds:
            query = _QUERIES[k](projects)
            columns = list(query.selected_columns)  # (project, id, ..., since)
            rows += [_ROWS[k](row) for row in session.execute(
                query.order_by(columns[-1].desc(), columns[1].desc()).limit(offset + limit))]
        rows.sort(key=lambda row: (row["since"], KINDS.index(row["kind"]) * -1,
                                   row["task"] or row["volunteer"] or row["job"] or 0),
                  reverse=True)
        page = rows[offset:offset + limit]
        projects_shown = {p.id: p for p in session.scalars(select(Project).where(
            Project.id.in_({row["project"] for row in page})))} if page else {}
        _mark_withdrawn(session, projects_shown, page)
    for row in page:
        row["project_name"] = projects_shown[row["project"]].name
        row["since"] = row["since"].isoformat()
    return {"total": sum(counts[k] for k in kinds), "counts": counts, "limit": limit,
            "offset": offset, "items": page}


def _kinds(identity: Identity) -> tuple[str, ...]:
    if identity.is_platform_admin or identity.moderates(identity.organisation_id):
        return KINDS
    return ("task", "report", "job", "webhook")


def _projects(session, identity: Identity, project_id: int | None):
    """The ids of the projects in view, as a subquery (one, if asked and managed)."""
    query = select(Project.id)
    if not identity.is_platform_admin:
        query = query.where(Project.organisation_id == identity.organisation_id)
    if project_id is not None:
        query = query.where(Project.id == project_id)
    return query.scalar_subquery()


def _volunteers(projects):
    return (select(VolunteerStat.project_id, VolunteerStat.volunteer_id,
                   VolunteerStat.quarantine_reasons, VolunteerStat.quarantined_at)
            .where(VolunteerStat.project_id.in_(projects),
                   VolunteerStat.quarantined_at.is_not(None),
                   VolunteerStat.blocked.is_(False)))


def _tasks(projects):
    since = func.coalesce(Result.updated_at, Task.created_at)
    return (select(Task.project_id, Task.id, Result.confidence, since)
            .outerjoin(Result, Result.task_id == Task.id)
            .where(Task.project_id.in_(projects), Task.state == "contested",
                   ~exists().where(_open_report_of(Task.id))))


def _reports(projects):
    return (select(TaskReport.project_id, TaskReport.task_id, func.count(), Task.state,
                   func.max(TaskReport.created_at))
            .join(Task, Task.id == TaskReport.task_id)
            .where(TaskReport.project_id.in_(projects), TaskReport.resolved_at.is_(None))
            .group_by(TaskReport.project_id, TaskReport.task_id, Task.state))


def _open_report_of(task_id):
    return (TaskReport.task_id == task_id) & TaskReport.resolved_at.is_(None)


def _jobs(projects):
    since = func.coalesce(Job.finished_at, Job.created_at)
    return (select(Job.project_id, Job.id, Job.error, Job.filename, since)
            .where(Job.project_id.in_(projects), Job.state == "failed"))


def _webhooks(projects):
    return (select(WebhookEvent.project_id, WebhookEvent.id, WebhookEvent.type,
                   WebhookEvent.last_error, WebhookEvent.give_up_at)
            .where(WebhookEvent.project_id.in_(projects), WebhookEvent.state == "dead"))


def _item(kind: str, project: int, state: str, since, reasons: list[str], message: str = "",
          volunteer: int | None = None, task: int | None = None, job: int | None = None,
          event: int | None = None) -> dict[str, Any]:
    return {"kind": kind, "project": project, "volunteer": volunteer, "task": task,
            "job": job, "event": event, "state": state, "reasons": reasons,
            "message": message, "since": aware(since)}


def _mark_withdrawn(session, projects: dict[int, Project], page: list[dict[str, Any]]) -> None:
    """A reported task that its reports took out of circulation reads "withdrawn",
    by the merge's own rule (consensus.withdrawn_by_reports): a task contested by
    the crowd that one volunteer then reported is still only contested."""
    contested: dict[int, list[dict[str, Any]]] = {}
    for row in page:
        if row["kind"] == "report" and row["state"] == "contested":
            contested.setdefault(row["project"], []).append(row)
    for project_id, rows in contested.items():
        out = withdrawn_by_reports(session, projects[project_id], [row["task"] for row in rows])
        for row in rows:
            if row["task"] in out:
                row["state"] = "withdrawn"
                row["message"] += ": out of circulation"


_QUERIES = {"volunteer": _volunteers, "task": _tasks, "report": _reports, "job": _jobs,
            "webhook": _webhooks}
_ROWS = {
    "volunteer": lambda r: _item("volunteer", r[0], "quarantined", r[3], list(r[2] or []),
                                 volunteer=r[1]),
    "task": lambda r: _item("task", r[0], "contested", r[3], ["low_confidence"],
                            f"best answer at {round((r[2] or 0) * 100)}% confidence",
                            task=r[1]),
    "report": lambda r: _item("report", r[0], r[3], r[4], ["reported"],
                              f"reported by {r[2]} volunteer{'' if r[2] == 1 else 's'}",
                              task=r[1]),
    "job": lambda r: _item("job", r[0], "failed", r[4], ["job_failed"],
                           (r[3] + ": " if r[3] else "") + (r[2] or ""), job=r[1]),
    "webhook": lambda r: _item("webhook", r[0], "dead", r[4], ["delivery_failed"],
                               f"{r[2]}: {r[3] or 'gave up'}", event=r[1]),
}
