"""Deleting a draft while its rows are being written (PostgreSQL's row locks;
SQLite's writer lock serialises the same steps): deletion locks the draft's
jobs' rows, its webhook events' rows, its tasks' rows, then the project, the
order their writers lock them in, so nothing pointing at the draft is added between its
deletes and no writer deadlocks with it."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from engine import lifecycle
from engine.delivery import outbox, sender, webhooks
from engine.intake import jobs
from engine.projects import create_project
from engine.store.models import (
    Job,
    Project,
    utcnow,
)
from tests.engine.test_lifecycle import CLASSIFY
from tests.engine.test_lock_orders import race_at_statement, run_recording


def _draft_with_a_webhook(services, owner, receiver) -> tuple[Project, Job]:
    draft = create_project(services, owner, {**CLASSIFY, "state": "draft",
                                             "min_answers": 1, "max_answers": 1}).project
    webhooks.set_webhook(services, owner, draft.id, {"url": receiver.url,
                                                     "secret": "s3cret-for-the-penguins"})
    job = jobs.create_job(services, owner, draft.id, items=[{"text": "t"}], enqueue=False)
    return draft, job


def _while_deleting(services, owner, draft_id: int, monkeypatch,
                    other: Callable[[], object]) -> dict[str, BaseException]:
    """Run ``other`` while delete_draft holds the draft's row (paused just after
    locking it); the errors of either, by name."""
    locked, go = threading.Event(), threading.Event()
    real_keep = lifecycle._keep_audit

    def keep_audit(session, project, user_id):
        locked.set()
        go.wait(10)
        return real_keep(session, project, user_id)

    monkeypatch.setattr(lifecycle, "_keep_audit", keep_audit)
    errors: dict[str, BaseException] = {}
    deleting = threading.Thread(target=run_recording, args=(
        errors, "delete", lambda: lifecycle.delete_draft(services, owner, draft_id)))
    deleting.start()
    assert locked.wait(10)
    second = threading.Thread(target=run_recording, args=(errors, "other", other))
    second.start()
    second.join(0.5)  # it locks its own row, then adds one pointing at the project
    go.set()
    deleting.join(30)
    second.join(30)
    return errors


def test_deleting_a_draft_while_its_split_finishes(services, owner, receiver, monkeypatch):
    """finish_job updates the job's row, then adds its job.split event; the
    deletion, holding the draft's row, then deletes that job's rows."""
    draft, job = _draft_with_a_webhook(services, owner, receiver)
    errors = _while_deleting(services, owner, draft.id, monkeypatch,
                             lambda: jobs.finish_job(services, job.id, "done"))
    assert not errors, {name: repr(exc)[:300] for name, exc in errors.items()}
    with services.db.session() as session:
        assert session.get(Project, draft.id) is None


def test_deleting_a_draft_while_a_webhook_attempt_is_logged(services, owner, receiver,
                                                            monkeypatch):
    """The sender updates the event's row, then adds the delivery's."""
    draft, job = _draft_with_a_webhook(services, owner, receiver)
    jobs.finish_job(services, job.id, "done")  # a job.split event waits for delivery
    claimed = sender.claim(services, draft.id, utcnow())
    assert claimed is not None
    errors = _while_deleting(services, owner, draft.id, monkeypatch, lambda: sender._store(
        services, claimed, sender.Outcome(200, None, 1.0), utcnow()))
    assert not errors, {name: repr(exc)[:300] for name, exc in errors.items()}


def test_a_split_starting_as_its_draft_is_deleted_finds_nothing(services, owner, receiver,
                                                                 monkeypatch):
    """The split's first step marks its job running: waiting on the deletion's
    lock of the job's row, it then found the row gone (PostgreSQL: the ORM's
    update matched no row, and the job crashed)."""
    draft, job = _draft_with_a_webhook(services, owner, receiver)
    ran: list = []
    errors = _while_deleting(services, owner, draft.id, monkeypatch,
                             lambda: ran.append(jobs.run_job(services, job.id)))
    assert not errors, {name: repr(exc)[:300] for name, exc in errors.items()}
    assert ran == [None]


def test_a_split_finishing_midway_through_a_deletion_waits(services, owner, receiver):
    """A job's event added between the deletion's deletes made the project's own
    delete fail on the foreign key (PostgreSQL): the deletion holds the job's
    row, so the finishing split waits, and then finds its job gone."""
    draft, job = _draft_with_a_webhook(services, owner, receiver)
    # events and webhooks deleted, jobs not yet; the split waits for its job's row
    errors, waited = race_at_statement(
        services, "DELETE FROM HANDOUT",
        ("delete", lambda: lifecycle.delete_draft(services, owner, draft.id)),
        ("finish", lambda: jobs.finish_job(services, job.id, "done")))
    assert waited
    assert not errors, {name: repr(exc)[:300] for name, exc in errors.items()}
    with services.db.session() as session:
        assert session.get(Project, draft.id) is None
        assert session.get(Job, job.id) is None


def test_a_split_with_tasks_finishing_as_its_draft_is_deleted(services, owner, receiver,
                                                              monkeypatch):
    """finish_job: job row (UPDATE) -> project FOR UPDATE (outbox._record_if_completed,
    the webhook subscribes to project.completed and the job made tasks).
    delete_draft: project FOR NO KEY UPDATE -> the job's row FOR UPDATE. A cycle."""
    draft = create_project(services, owner, {**CLASSIFY, "state": "draft",
                                             "min_answers": 1, "max_answers": 1}).project
    webhooks.set_webhook(services, owner, draft.id, {"url": receiver.url,
                                                     "secret": "s3cret-for-the-penguins"})
    job = jobs.create_job(services, owner, draft.id, items=[{"text": "t"}], enqueue=False)
    real, job_locked, errors = outbox._record_if_completed, threading.Event(), {}

    def record_if_completed(session, project_id):
        job_locked.set()  # finish_job has updated its job's row
        time.sleep(1.0)  # the deletion locks the draft, then waits for the job's row
        return real(session, project_id)

    monkeypatch.setattr(outbox, "_record_if_completed", record_if_completed)
    splitting = threading.Thread(target=run_recording, args=(
        errors, "split", lambda: jobs.run_job(services, job.id)))
    splitting.start()
    assert job_locked.wait(20)
    deleting = threading.Thread(target=run_recording, args=(
        errors, "delete", lambda: lifecycle.delete_draft(services, owner, draft.id)))
    deleting.start()
    splitting.join(30)
    deleting.join(30)
    assert not errors, {name: repr(exc)[:300] for name, exc in errors.items()}
    with services.db.session() as session:
        assert session.get(Project, draft.id) is None
        assert session.get(Job, job.id) is None


def test_a_job_run_again_as_its_draft_is_deleted_is_not_found(services, owner, receiver,
                                                              monkeypatch):
    """rerun_job queues the job, then reads it back: a deletion landing between
    them left None, which the API turned into a 500. It is a 404 now."""
    from sqlalchemy import update

    from engine.errors import NotFoundError

    draft, job = _draft_with_a_webhook(services, owner, receiver)
    with services.db.session() as session:
        session.execute(update(Job).where(Job.id == job.id).values(state="failed"))
    real = jobs.enqueue_split

    def enqueue_split(services_, job_id):
        real(services_, job_id)
        lifecycle.delete_draft(services, owner, draft.id)  # another admin, meanwhile

    monkeypatch.setattr(jobs, "enqueue_split", enqueue_split)
    with pytest.raises(NotFoundError):
        jobs.rerun_job(services, owner, job.id)


def test_settling_a_drafts_task_as_the_draft_is_deleted(services, owner, receiver,
                                                         monkeypatch):
    """A settlement locks the task, then the project. The deletion locked the
    project, then deleted the tasks: a cycle (PostgreSQL killed one of the
    two). It now locks the draft's tasks before the project, so the
    settlement finishes first and the deletion then takes the task with it."""
    from sqlalchemy import select

    from engine.quality import review
    from engine.store.models import Task

    draft, job = _draft_with_a_webhook(services, owner, receiver)
    jobs.run_job(services, job.id)
    with services.db.session() as session:
        task_id = session.scalar(select(Task.id).where(Task.project_id == draft.id))
    locked, go, errors = threading.Event(), threading.Event(), {}
    real = review.task_project_unless_final

    def task_project_unless_final(session, project_id):
        locked.set()  # the settlement holds the task's row
        go.wait(10)
        return real(session, project_id)

    monkeypatch.setattr(review, "task_project_unless_final", task_project_unless_final)
    settling = threading.Thread(target=run_recording, args=(
        errors, "settle", lambda: review.resolve(services, owner, task_id, {"label": "a"})))
    settling.start()
    assert locked.wait(10)
    deleting = threading.Thread(target=run_recording, args=(
        errors, "delete", lambda: lifecycle.delete_draft(services, owner, draft.id)))
    deleting.start()
    deleting.join(0.5)  # it locks the jobs, the events, then waits for the task
    go.set()
    settling.join(30)
    deleting.join(30)
    assert not errors, {name: repr(exc)[:300] for name, exc in errors.items()}
    with services.db.session() as session:
        assert session.get(Project, draft.id) is None
