"""The outbox: webhook events recorded in the same SQL transaction as the change
they report, so a committed change always has its event and a rolled-back one
never does. engine.delivery.sender sends them; Redis only nudges a worker to do it
sooner (a lost nudge costs a delay, never an event).

Events are recorded while a project has a webhook subscribed to them, active
or paused (a paused webhook holds its events until it is active again).

``task.retired`` is recorded as one row per task: one small insert in the
retirement's own transaction, and no shared row that concurrent retirements
would queue on. Delivery packs consecutive ones into batches (engine.delivery.sender).
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from engine.projects import is_final
from engine.services import Services
from engine.store.models import Item, Job, Project, Task, Webhook, WebhookEvent, utcnow

EVENTS = ("job.split", "task.retired", "task.reopened", "project.completed")
GIVE_UP_AFTER = timedelta(days=1)
FINISHED = ("retired", "settled")  # a task with a final result
UNFINISHED = ("open", "contested")
RUNNING_JOBS = ("queued", "running")
NUDGE_KEY = "bs:webhooks:nudge"
NUDGE_SECONDS = 600
DELIVERY_JOB_SECONDS = 600


def subscribed(session, project_id: int, event: str) -> bool:
    """Whether the project's webhook wants this event (one primary-key read,
    then served from the session's identity map)."""
    hook = session.get(Webhook, project_id)
    return hook is not None and event in hook.events


def record(session, project_id: int, event: str, payload: dict[str, Any],
           now: datetime | None = None) -> bool:
    """Add an event to the outbox if the project's webhook subscribes to it;
    True if one was added (then call `nudge` once the transaction committed)."""
    if not subscribed(session, project_id, event):
        return False
    now = now or utcnow()
    session.add(WebhookEvent(
        project_id=project_id, type=event, payload=payload, idempotency_key=new_key(),
        state="pending", attempts=0, created_at=now, next_attempt_at=now,
        give_up_at=now + GIVE_UP_AFTER))
    return True


def new_key() -> str:
    """An idempotency key: sent as X-Bitesize-Delivery on every attempt of an event."""
    return f"evt_{uuid.uuid4().hex}"


def task_finished(session, task: Task, value: Any, confidence: float, before: str) -> bool:
    """A task changed state from `before`: record task.retired if it now has a final
    result, and project.completed if it was the project's last unfinished task."""
    if task.state not in FINISHED or session.get(Webhook, task.project_id) is None:
        return False  # the common case costs one primary-key read
    recorded = False
    if subscribed(session, task.project_id, "task.retired"):
        ref = session.scalar(select(Item.ref).where(Item.id == task.item_id))
        recorded = record(session, task.project_id, "task.retired", {"tasks": [{
            "id": task.id, "item": task.item_id, "ref": ref, "state": task.state,
            "value": value, "confidence": float(confidence),
            "retired_at": task.retired_at.isoformat() if task.retired_at else None}]})
    if before in UNFINISHED:
        recorded = _record_if_completed(session, task.project_id) or recorded
    return recorded


def job_finished(session, job: Job) -> bool:
    """A job stopped splitting (done or failed): record job.split, and
    project.completed if its tasks all finished while it was still splitting."""
    recorded = record(session, job.project_id, "job.split", {"job": {
        "id": job.id, "state": job.state, "items_total": job.items_total,
        "items_split": job.items_split, "tasks_made": job.tasks_made,
        "duplicates": job.duplicates, "problems": job.problems_count,
        "error": job.error,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None}})
    if job.tasks_made:
        recorded = _record_if_completed(session, job.project_id) or recorded
    return recorded


def _record_if_completed(session, project_id: int) -> bool:
    """project.completed when no task is left unfinished and no job is splitting.

    The project row is locked first (PostgreSQL; SQLite's writer lock already
    serialises): two last tasks retiring at once would otherwise each still see
    the other open, and neither would report the completion. FOR NO KEY UPDATE,
    not FOR UPDATE: the transaction has usually added a row pointing at the
    project already (its task.retired event, a first result), and two that
    each held such a row's key share and asked for FOR UPDATE deadlocked on
    PostgreSQL (one retirement's merge failed). An archived
    project is never completed afterwards: a job ended by the archive (its tasks
    all finished, its items not all split) did not complete it, the charity
    stopped it."""
    if not subscribed(session, project_id, "project.completed"):
        return False
    project = session.scalars(select(Project).where(Project.id == project_id)
                              .with_for_update(key_share=True)).one()
    if is_final(project):
        return False
    unfinished = session.scalar(select(Task.id).where(
        Task.project_id == project_id, Task.state.in_(UNFINISHED),
        Task.is_gold.is_(False)).limit(1))
    splitting = session.scalar(select(Job.id).where(
        Job.project_id == project_id, Job.state.in_(RUNNING_JOBS)).limit(1))
    if unfinished is not None or splitting is not None:
        return False
    tasks = dict(session.execute(
        select(Task.state, func.count()).where(Task.project_id == project_id,
                                               Task.is_gold.is_(False))
        .group_by(Task.state)).all())
    if not tasks:  # only gold so far: nothing was done to complete
        return False
    return record(session, project_id, "project.completed", {"project": {
        "id": project.id, "name": project.name, "tasks": sum(tasks.values()),
        "retired": tasks.get("retired", 0), "settled": tasks.get("settled", 0)}})


def nudge(services: Services) -> None:
    """Ask a worker to deliver soon. A burst of events enqueues one job: the key
    stays until that job starts. The periodic run delivers anyway, should Redis
    lose both the key and the job."""
    if services.queue_redis.set(NUDGE_KEY, "1", nx=True, ex=NUDGE_SECONDS):
        services.queue("low").enqueue("workers.jobs.deliver_webhooks",
                                      job_timeout=DELIVERY_JOB_SECONDS)
