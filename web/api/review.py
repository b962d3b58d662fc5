"""Quality: the inbox, the review queue, settling a task, quarantining, clearing
and blocking a volunteer, and the audit log of all of it."""
from __future__ import annotations

from flask import Response, request
from marshmallow import Schema, fields, validate

from engine.delivery.exports import render
from engine.quality import audit, inbox, moderation
from engine.quality.reliability import volunteer_stats
from engine.quality.reports import dismiss_reports
from engine.quality.review import resolve, review_queue
from web.api import bp
from web.api.schemas import load_body, load_query
from web.auth import identity
from web.services import services


class ReviewQuery(Schema):
    limit = fields.Integer(validate=validate.Range(min=1, max=500), load_default=50)
    offset = fields.Integer(validate=validate.Range(min=0, max=10**9), load_default=0)


class Why(Schema):
    """Why an admin acts: kept in the audit log."""

    reason = fields.String(validate=validate.Length(max=2000), load_default="")


class BlockBody(Why):
    scope = fields.String(validate=validate.OneOf(moderation.SCOPES), load_default="project")


class InboxQuery(ReviewQuery):
    offset = fields.Integer(validate=validate.Range(min=0, max=inbox.MAX_OFFSET), load_default=0)
    kind = fields.String(validate=validate.OneOf(inbox.KINDS), load_default=None)
    project = fields.Integer(validate=validate.Range(min=1, max=2**31 - 1), load_default=None)


class AuditQuery(ReviewQuery):
    project = fields.Integer(validate=validate.Range(min=1, max=2**31 - 1), load_default=None)
    format = fields.String(validate=validate.OneOf(("json", "csv")), load_default="json")


class Resolution(Schema):
    answer = fields.Raw(required=True)
    note = fields.String(validate=validate.Length(max=2000), load_default="")


@bp.get("/inbox")
def inbox_():
    """What waits for a human across the caller's projects, newest first."""
    caller = identity().require_user()
    query = load_query(InboxQuery())
    return inbox.inbox(services(), caller, query["limit"], query["offset"], query["kind"],
                       query["project"])


@bp.get("/audit")
def audit_log_():
    """Every admin action on quality (and the engine's own quarantines), newest
    first; ``format=csv`` downloads all of it, escaped for spreadsheets."""
    caller = identity().require_user()
    query = load_query(AuditQuery())
    if query["format"] == "csv":
        rows = audit.audit_rows(services(), caller, query["project"])
        chunks = render(rows, "csv", audit.COLUMNS, bom=True)
        return Response(chunks, mimetype="text/csv", headers={
            "Content-Disposition": 'attachment; filename="audit-log.csv"'})
    return audit.audit_log(services(), caller, query["project"], query["limit"],
                           query["offset"])


def _why() -> str:
    return load_body(Why())["reason"] if request.get_data() else ""


@bp.get("/projects/<int:project_id>/review")
def review_queue_(project_id: int):
    caller = identity().require_user()  # 401/403 before the query is judged
    return review_queue(services(), caller, project_id, **load_query(ReviewQuery()))


@bp.post("/tasks/<int:task_id>/resolution")
def resolve_task_(task_id: int):
    caller = identity().require_user()  # 401/403 before the body is judged
    body = load_body(Resolution())
    task = resolve(services(), caller, task_id, body["answer"], body["note"])
    return {"task": task.id, "state": task.state, "value": task.gold,
            "settled_by": task.settled_by}


@bp.post("/tasks/<int:task_id>/reports/dismiss")
def dismiss_reports_(task_id: int):
    """Volunteers' reports of this task were unfounded: resolved, and a task they
    took out of circulation goes back where its answers put it."""
    caller = identity().require_user()
    return dismiss_reports(services(), caller, task_id, _why())  # the body is optional


@bp.get("/projects/<int:project_id>/volunteers")
def volunteer_stats_(project_id: int):
    """Each volunteer's answers, gold score, reliability, speed and flags."""
    caller = identity().require_user()
    return {"volunteers": volunteer_stats(services(), caller, project_id)}


@bp.post("/projects/<int:project_id>/volunteers/<int:volunteer_id>/block")
def block_volunteer_(project_id: int, volunteer_id: int):
    caller = identity().require_user()
    body = load_body(BlockBody()) if request.get_data() else BlockBody().load({})
    reopened = moderation.block(services(), caller, project_id, volunteer_id, body["scope"],
                                body["reason"])
    return {"volunteer": volunteer_id, "blocked": True, "scope": body["scope"],
            "tasks_reopened": reopened}


@bp.post("/projects/<int:project_id>/volunteers/<int:volunteer_id>/quarantine")
def quarantine_volunteer_(project_id: int, volunteer_id: int):
    caller = identity().require_user()
    moderation.quarantine_volunteer(services(), caller, project_id, volunteer_id, _why())
    return {"volunteer": volunteer_id, "quarantined": True}


@bp.post("/projects/<int:project_id>/volunteers/<int:volunteer_id>/clear")
def clear_volunteer_(project_id: int, volunteer_id: int):
    caller = identity().require_user()
    remerged = moderation.clear(services(), caller, project_id, volunteer_id, _why())
    return {"volunteer": volunteer_id, "quarantined": False, "tasks_remerged": remerged}


@bp.delete("/projects/<int:project_id>/volunteers/<int:volunteer_id>/block")
def unblock_volunteer_(project_id: int, volunteer_id: int):
    caller = identity().require_user()
    body = load_body(BlockBody()) if request.get_data() else BlockBody().load({})
    remerged = moderation.unblock(services(), caller, project_id, volunteer_id, body["scope"],
                                  body["reason"])
    # a platform unblock leaves the charity's own blocks: still blocked here, then
    return {"volunteer": volunteer_id, "scope": body["scope"], "tasks_remerged": remerged,
            "blocked": moderation.still_blocked(services(), project_id, volunteer_id)}
