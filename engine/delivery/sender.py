"""Webhook delivery: the outbox's events POSTed, signed, in order per project,
and retried with exponential back-off for a day.

Each attempt is claimed in SQL before the POST (attempts + 1, the event held
for CLAIM_HOLD, longer than a POST can take), so two workers never send the
same event at once, and a worker that dies mid-POST leaves an event that is
simply retried once the hold ends. An attempt's outcome settles the event only
if no later attempt was claimed meanwhile, and never undoes a delivery. Events of a
project go out one after another in the order recorded: while the oldest one
fails, the later ones wait behind it, and one probe per back-off interval is
all a receiver that is down sees. An event that still fails a day after it was
recorded is `dead`: it stops holding the line and can be redelivered.

Consecutive ``task.retired`` events are packed, on their first attempt, into
one batch of up to BATCH_TASKS tasks under the first one's idempotency key;
retries send the same batch under the same key.

The signature: ``X-Bitesize-Signature: sha256=<hex>``, the HMAC-SHA256 with the
webhook's secret of ``<X-Bitesize-Timestamp>.<raw body>`` (README: Webhooks).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from engine.delivery.outbound import DEADLINE_TIMEOUTS, FetchError, request
from engine.delivery.outbox import NUDGE_KEY, nudge
from engine.services import Services
from engine.store.models import Webhook, WebhookDelivery, WebhookEvent, aware, utcnow

BATCH_TASKS = 100
TIMEOUT_SECONDS = 5.0
FIRST_RETRY_SECONDS = 10
MAX_RETRY_SECONDS = 900
JITTER = 0.2  # each back-off is stretched or shrunk by up to 20%
RUN_SECONDS = 240.0  # one run's budget; a fresh job is nudged for what is left
WAITING = ("pending", "failed")
USER_AGENT = "bitesize-webhooks/1"
MAX_ERROR = 500
# How long a claimed attempt holds its event: the POST's whole deadline (every
# connect and read, DEADLINE_TIMEOUTS x TIMEOUT_SECONDS) plus a wide margin for
# the address lookup and the outcome's write. The first back-off (10 s) was
# shorter than a slow POST, so a second run sent the event again meanwhile.
CLAIM_HOLD = timedelta(seconds=DEADLINE_TIMEOUTS * TIMEOUT_SECONDS + 50)


@dataclass(frozen=True)
class Claimed:
    """One attempt at one event, as claimed in SQL: everything the POST needs."""

    event_id: int
    attempt: int
    url: str
    secret: str
    event: str
    key: str
    body: bytes


@dataclass(frozen=True)
class Outcome:
    status: int | None
    error: str | None
    duration_ms: float

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def deliver_due(services: Services, now: datetime | None = None,
                budget: float = RUN_SECONDS) -> dict[int, int]:
    """Deliver every due event, project by project; returns events delivered per
    project. `now` fixes the clock (tests); by default it is read per attempt."""
    services.queue_redis.delete(NUDGE_KEY)  # events recorded from here on nudge a new run
    clock: Callable[[], datetime] = (lambda: now) if now is not None else utcnow
    deadline = time.monotonic() + budget
    delivered: dict[int, int] = {}
    for project_id in _due_projects(services, clock()):
        delivered[project_id] = _deliver_project(services, project_id, clock, deadline)
        if time.monotonic() >= deadline:
            nudge(services)
            break
    return delivered


def _due_projects(services: Services, now: datetime) -> list[int]:
    with services.db.session() as session:
        return list(session.scalars(
            select(WebhookEvent.project_id).distinct()
            .join(Webhook, Webhook.project_id == WebhookEvent.project_id)
            .where(Webhook.active.is_(True), WebhookEvent.state.in_(WAITING),
                   WebhookEvent.next_attempt_at <= now)
            .order_by(WebhookEvent.project_id)))


def _deliver_project(services: Services, project_id: int, clock: Callable[[], datetime],
                     deadline: float) -> int:
    """Send a project's events in order until one fails, none is due, or time is up;
    a dead event does not stop the line."""
    delivered = 0
    while time.monotonic() < deadline:
        claimed = claim(services, project_id, clock())
        if claimed is None:
            break
        outcome = post(claimed, clock(), services.settings.fetch_allow)
        state = _store(services, claimed, outcome, clock())
        delivered += state == "delivered"
        if state in ("failed", "overtaken"):
            break
    return delivered


def claim(services: Services, project_id: int, now: datetime) -> Claimed | None:
    """The project's oldest waiting event if it is due, claimed for one attempt."""
    with services.db.writing() as session:
        hook = session.get(Webhook, project_id)
        event = session.scalars(
            select(WebhookEvent).where(WebhookEvent.project_id == project_id,
                                       WebhookEvent.state.in_(WAITING))
            .order_by(WebhookEvent.id).limit(1).with_for_update()).first()
        if hook is None or not hook.active or event is None or aware(
                event.next_attempt_at) > now:
            return None
        if event.type == "task.retired" and event.attempts == 0:
            _pack(session, event)
        event.attempts += 1
        event.next_attempt_at = now + CLAIM_HOLD
        return Claimed(event.id, event.attempts, hook.url, hook.secret, event.type,
                       event.idempotency_key, body(event))


def _pack(session, head: WebhookEvent) -> None:
    """Fold the task.retired events queued right behind `head` into it (up to
    BATCH_TASKS tasks); once attempted, a batch never changes."""
    tasks = list(head.payload["tasks"])
    behind = session.scalars(
        select(WebhookEvent).where(WebhookEvent.project_id == head.project_id,
                                   WebhookEvent.state.in_(WAITING),
                                   WebhookEvent.id > head.id)
        .order_by(WebhookEvent.id).limit(BATCH_TASKS))
    for event in behind:
        more = event.payload["tasks"] if event.type == "task.retired" else []
        if event.state != "pending" or event.attempts or not more or (
                len(tasks) + len(more) > BATCH_TASKS):
            break
        tasks += more
        session.delete(event)
    head.payload = {"tasks": tasks}


def body(event: WebhookEvent) -> bytes:
    """The JSON body: the same bytes on every attempt of an event."""
    envelope = {"id": event.idempotency_key, "event": event.type,
                "project": event.project_id,
                "created_at": aware(event.created_at).isoformat(), "data": event.payload}
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode()


def backoff(attempts: int) -> timedelta:
    """10 s after the first failure, doubling, capped at 15 minutes, jittered
    so that many events failing together do not retry together."""
    seconds = min(FIRST_RETRY_SECONDS * 2 ** min(attempts - 1, 20), MAX_RETRY_SECONDS)
    return timedelta(seconds=seconds * random.uniform(1 - JITTER, 1 + JITTER))


def signature(secret: str, timestamp: str, raw_body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>" keyed with the secret>``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + raw_body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def post(claimed: Claimed, now: datetime, allow: str = "") -> Outcome:
    """One POST through the outbound guard (the URL's address is checked again
    now: DNS may have changed since the webhook was set), with short timeouts;
    any 2xx is a delivery, anything else a failure. A redirect is a failure too:
    following it would send the signed body somewhere the charity never named.
    The error logged is ours ("HTTP 500", "could not be fetched: no answer"),
    never the receiver's words."""
    timestamp = str(int(now.timestamp()))
    headers = {
        "Content-Type": "application/json", "User-Agent": USER_AGENT,
        "X-Bitesize-Event": claimed.event, "X-Bitesize-Delivery": claimed.key,
        "X-Bitesize-Timestamp": timestamp,
        "X-Bitesize-Signature": signature(claimed.secret, timestamp, claimed.body)}
    started = time.monotonic()
    try:
        reply = request(claimed.url, allow, method="POST", body=claimed.body, headers=headers,
                        timeout=TIMEOUT_SECONDS, max_bytes=1024, cut=True, redirects=0)
        status = reply.status
        error = None if 200 <= status < 300 else f"HTTP {status}"
    except FetchError as exc:
        status, error = None, exc.message
    return Outcome(status, error and error[:MAX_ERROR],
                   round((time.monotonic() - started) * 1000, 1))


def _store(services: Services, claimed: Claimed, outcome: Outcome, now: datetime) -> str:
    """Log the attempt and settle the event: delivered, failed (retried after its
    back-off), or dead once a day has passed. Returns the event's state, or
    "overtaken" when a later attempt was claimed meanwhile (this one outlived
    its hold) or the event is delivered already: the attempt is logged and the
    event left to the attempt that holds it, so a slow failure never sets a
    delivered event back to be sent again after the events behind it."""
    with services.db.writing() as session:
        # locked: a draft being deleted holds its events, and this then finds it gone
        event = session.get(WebhookEvent, claimed.event_id, with_for_update=True)
        if event is None:  # its webhook (or its draft) was deleted meanwhile
            return "dead"
        session.add(WebhookDelivery(
            project_id=event.project_id, event_id=event.id, attempt=claimed.attempt, at=now,
            status_code=outcome.status, error=outcome.error, duration_ms=outcome.duration_ms))
        if event.state == "delivered" or event.attempts != claimed.attempt:
            return "overtaken"
        if outcome.ok:
            event.state, event.delivered_at, event.last_error = "delivered", now, None
        else:
            event.state = "dead" if now >= aware(event.give_up_at) else "failed"
            event.next_attempt_at = now + backoff(claimed.attempt)
            event.last_error = outcome.error or f"HTTP {outcome.status}"
        return event.state
