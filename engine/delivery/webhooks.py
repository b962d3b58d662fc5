"""A project's webhook: where its events go (set, show, delete), what became of
them (the outbox and the delivery log), and sending one again.

Events are recorded by engine.delivery.outbox and sent by engine.delivery.sender. Only the
project's organisation (its charity members and admins) and platform admins may
see or change any of it; to anyone else the project looks missing.

The URL is checked when it is set (http(s), no credentials, not an address of
our own network unless ``fetch_allow`` allows it) and again, by the outbound
guard, at every delivery: a name may resolve elsewhere by then.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select

from engine.delivery.outbound import FetchError, allowed, check_target
from engine.delivery.outbox import EVENTS, GIVE_UP_AFTER, nudge
from engine.errors import ConflictError, InvalidError, NotFoundError
from engine.identity import Identity
from engine.projects import get_owned_project
from engine.services import Services
from engine.store.models import Webhook, WebhookDelivery, WebhookEvent, aware, utcnow

REDELIVERABLE = ("failed", "dead", "delivered")


def check_url(url: str, allow: str = "") -> str:
    """The URL if events can be POSTed to it: http(s), a host, no credentials, and
    no address of our own network (a name that does not resolve yet passes: the
    guard checks it again at delivery)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise InvalidError("the webhook URL is not valid", {"url": str(exc)}) from exc
    if parts.scheme not in ("http", "https"):
        raise InvalidError("the webhook URL must start with http:// or https://",
                           {"url": "not an http(s) URL"})
    if not parts.hostname:
        raise InvalidError("the webhook URL names no host", {"url": "no host"})
    if parts.username is not None or parts.password is not None:
        raise InvalidError("put no credentials in the webhook URL: the signature "
                           "proves the call comes from bitesize", {"url": "has credentials"})
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise InvalidError("the webhook URL holds spaces or control characters",
                           {"url": "not a URL"})
    try:
        check_target(url, allowed(allow), resolve=False)
    except FetchError as exc:
        raise InvalidError(f"the webhook URL is refused: {exc.reason}",
                           {"url": exc.reason}) from None
    return url


def set_webhook(services: Services, identity: Identity, project_id: int,
                data: dict[str, Any]) -> tuple[Webhook, bool]:
    """Create or replace the project's webhook; True if it was created. Events
    already waiting go to the new URL, signed with the new secret."""
    project = get_owned_project(services, identity, project_id)
    url = check_url(data["url"], services.settings.fetch_allow)
    events = list(dict.fromkeys(data.get("events") or EVENTS))
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise InvalidError(f"unknown event(s): {', '.join(unknown)}",
                           {"events": f"one of {', '.join(EVENTS)}"})
    with services.db.writing() as session:
        hook = session.get(Webhook, project.id)
        created = hook is None
        if created:
            hook = Webhook(project_id=project.id, created_at=utcnow())
            session.add(hook)
        hook.url, hook.secret, hook.events = url, data["secret"], events
        hook.active, hook.updated_at = data.get("active", True), utcnow()
    if hook.active:
        nudge(services)  # a webhook made active again sends what it held
    return hook, created


def get_webhook(services: Services, identity: Identity, project_id: int) -> Webhook:
    project = get_owned_project(services, identity, project_id)
    with services.db.session() as session:
        hook = session.get(Webhook, project.id)
    if hook is None:
        raise NotFoundError(f"project {project_id} has no webhook", {"webhook": "not set"})
    return hook


def delete_webhook(services: Services, identity: Identity, project_id: int) -> int:
    """Remove the webhook with its outbox and delivery log: nothing more is
    recorded or sent. Returns how many undelivered events were dropped."""
    hook = get_webhook(services, identity, project_id)
    with services.db.writing() as session:
        # the events locked first, in id order, as the sender locks them: an
        # attempt being logged (event locked, then its delivery added) finishes
        # before its delivery would be missed, and no physical-order delete
        # deadlocks with a claim folding the events behind its head
        session.execute(select(WebhookEvent.id).where(
            WebhookEvent.project_id == hook.project_id)
            .order_by(WebhookEvent.id).with_for_update())
        dropped = session.scalar(select(func.count()).select_from(WebhookEvent).where(
            WebhookEvent.project_id == hook.project_id,
            WebhookEvent.state.in_(("pending", "failed", "dead"))))
        session.execute(delete(WebhookDelivery).where(
            WebhookDelivery.project_id == hook.project_id))
        session.execute(delete(WebhookEvent).where(WebhookEvent.project_id == hook.project_id))
        session.execute(delete(Webhook).where(Webhook.project_id == hook.project_id))
    return dropped


def list_events(services: Services, identity: Identity, project_id: int,
                state: str | None = None, limit: int = 50,
                offset: int = 0) -> tuple[int, list[WebhookEvent]]:
    """The project's outbox, newest first, optionally of one state."""
    project = get_owned_project(services, identity, project_id)
    query = select(WebhookEvent).where(WebhookEvent.project_id == project.id)
    if state:
        query = query.where(WebhookEvent.state == state)
    return _page(services, query, WebhookEvent.id, limit, offset)


def list_deliveries(services: Services, identity: Identity, project_id: int,
                    event_id: int | None = None, limit: int = 50,
                    offset: int = 0) -> tuple[int, list[WebhookDelivery]]:
    """The project's delivery log (every attempt), newest first, optionally of one event."""
    project = get_owned_project(services, identity, project_id)
    query = select(WebhookDelivery).where(WebhookDelivery.project_id == project.id)
    if event_id is not None:
        query = query.where(WebhookDelivery.event_id == event_id)
    return _page(services, query, WebhookDelivery.id, limit, offset)


def _page(services: Services, query, order, limit: int, offset: int) -> tuple[int, list]:
    with services.db.session() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery()))
        rows = list(session.scalars(query.order_by(order.desc()).limit(limit).offset(offset)))
    return total, rows


def redeliver(services: Services, identity: Identity, project_id: int, event_id: int,
              now: datetime | None = None) -> WebhookEvent:
    """Send an event again, under its own idempotency key, with a fresh day of
    retries. It takes its place in the project's line again (by age)."""
    project = get_owned_project(services, identity, project_id)
    now = now or utcnow()
    with services.db.writing() as session:
        # locked, as the sender's claim locks it: a claim cannot land in between
        event = session.get(WebhookEvent, event_id, with_for_update=True)
        if event is None or event.project_id != project.id:
            raise NotFoundError(f"event {event_id} does not exist", {"event": "not found"})
        if event.state not in REDELIVERABLE or _in_flight(session, event, now):
            raise ConflictError(f"event {event_id} is {event.state}: it is being delivered "
                                "already", {"event": event.state})
        event.state, event.next_attempt_at = "pending", now
        event.give_up_at = now + GIVE_UP_AFTER
    nudge(services)
    return event


def _in_flight(session, event: WebhookEvent, now: datetime) -> bool:
    """Whether an attempt is being sent right now: claimed (its hold not over)
    and not yet logged. A failed event waiting out its back-off keeps its state
    through its next attempt's claim, and redelivering it then started a second
    POST of the same event beside the first."""
    if event.attempts == 0 or aware(event.next_attempt_at) <= now:
        return False
    logged = session.scalar(select(WebhookDelivery.attempt).where(
        WebhookDelivery.event_id == event.id, WebhookDelivery.attempt == event.attempts))
    return logged is None
