"""Quality: the review queue, settling a task, quarantining, clearing and blocking
a volunteer."""
from __future__ import annotations

from flask import request
from marshmallow import Schema, fields, validate

from engine.quality import moderation
from engine.quality.reliability import volunteer_stats
from engine.quality.review import resolve, review_queue
from web.api import bp
from web.api.schemas import load_body, load_query
from web.auth import identity
from web.services import services


class ReviewQuery(Schema):
    limit = fields.Integer(validate=validate.Range(min=1, max=500), load_default=50)
    offset = fields.Integer(validate=validate.Range(min=0), load_default=0)


class BlockBody(Schema):
    scope = fields.String(validate=validate.OneOf(moderation.SCOPES), load_default="project")


class Resolution(Schema):
    answer = fields.Raw(required=True)
    note = fields.String(validate=validate.Length(max=2000), load_default="")


@bp.get("/projects/<int:project_id>/review")
def review_queue_(project_id: int):
    caller = identity().require_user()  # 401/403 before the query is judged
    return review_queue(services(), caller, project_id, **load_query(ReviewQuery()))


@bp.post("/tasks/<int:task_id>/resolution")
def resolve_task_(task_id: int):
    caller = identity().require_user()  # 401/403 before the body is judged
    body = load_body(Resolution())
    task = resolve(services(), caller, task_id, body["answer"])
    return {"task": task.id, "state": task.state, "value": task.gold,
            "settled_by": task.settled_by}


@bp.get("/projects/<int:project_id>/volunteers")
def volunteer_stats_(project_id: int):
    """Each volunteer's answers, gold score, reliability, speed and flags."""
    caller = identity().require_user()
    return {"volunteers": volunteer_stats(services(), caller, project_id)}


@bp.post("/projects/<int:project_id>/volunteers/<int:volunteer_id>/block")
def block_volunteer_(project_id: int, volunteer_id: int):
    caller = identity().require_user()
    scope = load_body(BlockBody())["scope"] if request.get_data() else "project"
    reopened = moderation.block(services(), caller, project_id, volunteer_id, scope)
    return {"volunteer": volunteer_id, "blocked": True, "scope": scope,
            "tasks_reopened": reopened}


@bp.post("/projects/<int:project_id>/volunteers/<int:volunteer_id>/quarantine")
def quarantine_volunteer_(project_id: int, volunteer_id: int):
    moderation.quarantine_volunteer(services(), identity().require_user(), project_id,
                                    volunteer_id)
    return {"volunteer": volunteer_id, "quarantined": True}


@bp.post("/projects/<int:project_id>/volunteers/<int:volunteer_id>/clear")
def clear_volunteer_(project_id: int, volunteer_id: int):
    remerged = moderation.clear(services(), identity().require_user(), project_id,
                                volunteer_id)
    return {"volunteer": volunteer_id, "quarantined": False, "tasks_remerged": remerged}


@bp.delete("/projects/<int:project_id>/volunteers/<int:volunteer_id>/block")
def unblock_volunteer_(project_id: int, volunteer_id: int):
    moderation.unblock(services(), identity().require_user(), project_id, volunteer_id)
    return {"volunteer": volunteer_id, "blocked": False}
