"""Webhooks: a project's webhook (set, show, delete), its outbox, its delivery
log, and redelivering an event. The project's organisation only."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from engine.delivery import webhooks
from engine.delivery.outbox import EVENTS
from engine.store.models import Webhook, WebhookDelivery, WebhookEvent
from web.api import bp
from web.api.schemas import load_body, load_query
from web.api.serialize import iso
from web.auth import identity
from web.services import services

STATES = ("pending", "failed", "delivered", "dead")


class WebhookSet(Schema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    secret = fields.String(required=True, validate=validate.Length(min=16, max=200))
    events = fields.List(fields.String(validate=validate.OneOf(EVENTS)),
                         validate=validate.Length(min=1, max=len(EVENTS)),
                         load_default=lambda: list(EVENTS))
    active = fields.Boolean(load_default=True)


class Page(Schema):
    limit = fields.Integer(validate=validate.Range(min=1, max=500), load_default=50)
    offset = fields.Integer(validate=validate.Range(min=0, max=10**9), load_default=0)


class EventsQuery(Page):
    state = fields.String(validate=validate.OneOf(STATES), load_default=None)


class DeliveriesQuery(Page):
    event = fields.Integer(validate=validate.Range(min=1, max=2**31 - 1), load_default=None)


@bp.put("/projects/<int:project_id>/webhook")
def set_webhook_(project_id: int):
    caller = identity().require_user()  # 401/403 before the body is judged
    hook, created = webhooks.set_webhook(services(), caller, project_id,
                                         load_body(WebhookSet()))
    return webhook(hook), 201 if created else 200


@bp.get("/projects/<int:project_id>/webhook")
def show_webhook_(project_id: int):
    return webhook(webhooks.get_webhook(services(), identity().require_user(), project_id))


@bp.delete("/projects/<int:project_id>/webhook")
def delete_webhook_(project_id: int):
    dropped = webhooks.delete_webhook(services(), identity().require_user(), project_id)
    return {"project": project_id, "deleted": True, "undelivered_dropped": dropped}


@bp.get("/projects/<int:project_id>/webhook/events")
def webhook_events_(project_id: int):
    caller = identity().require_user()
    query = load_query(EventsQuery())
    total, rows = webhooks.list_events(services(), caller, project_id, **query)
    return {"total": total, "limit": query["limit"], "offset": query["offset"],
            "events": [event(e) for e in rows]}


@bp.get("/projects/<int:project_id>/webhook/deliveries")
def webhook_deliveries_(project_id: int):
    caller = identity().require_user()
    query = load_query(DeliveriesQuery())
    total, rows = webhooks.list_deliveries(services(), caller, project_id,
                                           event_id=query.pop("event"), **query)
    return {"total": total, "limit": query["limit"], "offset": query["offset"],
            "deliveries": [delivery(d) for d in rows]}


@bp.post("/projects/<int:project_id>/webhook/events/<int:event_id>/redeliver")
def redeliver_(project_id: int, event_id: int):
    caller = identity().require_user()
    return event(webhooks.redeliver(services(), caller, project_id, event_id)), 202


def webhook(hook: Webhook) -> dict[str, Any]:
    """The webhook as shown: the secret is never echoed, only its last 4 characters."""
    return {"project": hook.project_id, "url": hook.url, "events": hook.events,
            "active": hook.active, "secret_hint": f"...{hook.secret[-4:]}",
            "created_at": iso(hook.created_at), "updated_at": iso(hook.updated_at)}


def event(e: WebhookEvent) -> dict[str, Any]:
    return {"id": e.id, "event": e.type, "idempotency_key": e.idempotency_key,
            "state": e.state, "attempts": e.attempts, "created_at": iso(e.created_at),
            "next_attempt_at": iso(e.next_attempt_at) if e.state in ("pending", "failed")
            else None, "give_up_at": iso(e.give_up_at), "delivered_at": iso(e.delivered_at),
            "last_error": e.last_error, "data": e.payload}


def delivery(d: WebhookDelivery) -> dict[str, Any]:
    return {"id": d.id, "event": d.event_id, "attempt": d.attempt, "at": iso(d.at),
            "status_code": d.status_code, "error": d.error, "duration_ms": d.duration_ms}
