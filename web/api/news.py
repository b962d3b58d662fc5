"""Project news by email (engine.accounts.news): volunteers opt in per project,
charities send a note to those who did."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from engine.accounts import news
from web.api import bp, serialize
from web.api.schemas import load_body
from web.auth import identity
from web.services import services


class NewsCreate(Schema):
    """A charity's note to its project's subscribed volunteers."""

    subject = fields.String(required=True, validate=validate.Length(min=1, max=news.MAX_SUBJECT))
    message = fields.String(required=True, validate=validate.Length(min=1, max=news.MAX_MESSAGE))


@bp.put("/projects/<int:project_id>/news-subscription")
def subscribe_to_news(project_id: int):
    """The calling volunteer gets this project's news by email."""
    news.subscribe(services(), identity().require_volunteer(), project_id)
    return {"project": project_id, "subscribed": True}


@bp.delete("/projects/<int:project_id>/news-subscription")
def unsubscribe_from_news(project_id: int):
    caller = identity().require_volunteer()
    news.unsubscribe(services(), caller.id, project_id)
    return {"project": project_id, "subscribed": False}


@bp.post("/projects/<int:project_id>/news")
def send_news(project_id: int):
    """Send a note to the project's subscribed volunteers (by a worker): 202."""
    caller = identity()  # a 401 before the body is read: nothing is told to a stranger
    data = load_body(NewsCreate())
    sent = news.announce(services(), caller, project_id, data["subject"], data["message"])
    return {"id": sent.id, "project": project_id, "recipients": sent.recipients,
            "created_at": serialize.iso(sent.created_at)}, 202
