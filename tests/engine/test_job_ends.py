"""How a split ends: once, however often RQ runs it (a retry after the job ended
changes nothing), a lost webhook nudge after the end failing nothing, and a
true count of the problems found however many the stored report lists.
"""
from __future__ import annotations

import io
import logging
from dataclasses import replace

import pytest
from alembic import command
from sqlalchemy import select

from engine.delivery import webhooks
from engine.intake import jobs as intake
from engine.intake.jobs import create_job, finish_job, run_job
from engine.projects import create_project
from engine.services import Services
from engine.store import migrate
from engine.store.models import Job, Task, WebhookEvent

ITEMS = [{"text": "an owl"}, {"text": "a tree"}]


def hooked_project(services, owner, receiver):
    """A classify project whose webhook takes every event (job.split among them)."""
    project = create_project(services, owner, {
        "name": "owls", "task_type": "classify", "min_answers": 1, "max_answers": 1,
        "config": {"question": "Owl?", "labels": ["a", "b"]}}).project
    webhooks.set_webhook(services, owner, project.id, {"url": receiver.url, "secret": "s" * 16})
    return project


def split_events(services, project_id: int) -> list[dict]:
    with services.db.session() as session:
        return list(session.scalars(select(WebhookEvent.payload).where(
            WebhookEvent.project_id == project_id, WebhookEvent.type == "job.split")))


def tasks_of(services, project_id: int) -> int:
    with services.db.session() as session:
        return len(session.scalars(select(Task.id).where(Task.project_id == project_id)).all())


def test_running_a_done_job_again_changes_nothing(services, owner, receiver):
    """RQ retries a split whose job already ended (its nudge failed after the
    commit): the job is left as it ended, its job.split recorded once."""
    project = hooked_project(services, owner, receiver)
    job = create_job(services, owner, project.id, items=ITEMS, enqueue=False)
    done = run_job(services, job.id)
    again = run_job(services, job.id)
    assert again.state == "done"
    assert (again.started_at, again.finished_at) == (done.started_at, done.finished_at)
    assert tasks_of(services, project.id) == 2
    assert len(split_events(services, project.id)) == 1


def test_running_a_failed_job_again_splits_nothing(services, owner, receiver):
    """Only a rerun (rerun_job: queued again) runs a failed job."""
    project = hooked_project(services, owner, receiver)
    job = create_job(services, owner, project.id, items=ITEMS, enqueue=False)
    finish_job(services, job.id, "failed", "stopped by hand")
    again = run_job(services, job.id)
    assert (again.state, again.error, again.items_split) == ("failed", "stopped by hand", 0)
    assert tasks_of(services, project.id) == 0
    assert len(split_events(services, project.id)) == 1


def test_a_lost_nudge_after_the_end_fails_nothing(settings, registry, services, owner,
                                                  receiver, own_redis, caplog):
    """The queue's Redis is down when the job ends: its event is recorded and
    waits for the periodic delivery; the split itself succeeded."""
    apart = Services(replace(settings, queue_redis_url=own_redis.url), registry)
    try:
        project = hooked_project(apart, owner, receiver)
        job = create_job(apart, owner, project.id, items=ITEMS, enqueue=False)
        own_redis.stop()
        with caplog.at_level(logging.WARNING, logger="engine.intake.jobs"):
            done = run_job(apart, job.id)
    finally:
        apart.close()
    assert done.state == "done" and done.tasks_made == 2
    assert len(split_events(services, project.id)) == 1
    assert any("nudge" in record.getMessage() for record in caplog.records)


def run_capped(services, owner, project, monkeypatch) -> Job:
    """A CSV job with 5 bad rows of 10, its report capped at 2 listed."""
    monkeypatch.setattr(intake, "MAX_REPORTED_PROBLEMS", 2)
    rows = "text,gold\n" + "".join(f"row {n},{'walrus' if n % 2 else ''}\n" for n in range(10))
    job = create_job(services, owner, project.id, upload=io.BytesIO(rows.encode()),
                     filename="rows.csv", enqueue=False)
    return run_job(services, job.id)


def test_the_problem_count_is_every_problem_found(services, owner, receiver, monkeypatch):
    """The stored report lists MAX_REPORTED_PROBLEMS and says how many more; the
    job.split event counts them all, not the report's entries."""
    project = hooked_project(services, owner, receiver)
    done = run_capped(services, owner, project, monkeypatch)
    assert done.tasks_made == 5 and len(done.problems) == 3  # 2 listed, "3 more ..."
    assert done.problems_count == 5
    [event] = split_events(services, project.id)
    assert event["job"]["problems"] == 5


@pytest.mark.parametrize("listed", [0, 1])
def test_a_short_report_counts_what_it_lists(services, owner, receiver, listed):
    project = hooked_project(services, owner, receiver)
    rows = "text,gold\nrow,\n" + "bad,walrus\n" * listed
    job = create_job(services, owner, project.id, upload=io.BytesIO(rows.encode()),
                     filename="rows.csv", enqueue=False)
    assert run_job(services, job.id).problems_count == listed


def test_the_migration_counts_the_problems_of_jobs_reported_before_it(services, owner,
                                                                     receiver, monkeypatch):
    """0025 reads the count off an older job's report: its last line's N counts."""
    project = hooked_project(services, owner, receiver)
    job = run_capped(services, owner, project, monkeypatch)
    config = migrate.alembic_config(services.db)
    try:
        with services.db.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0024")
    finally:
        migrate.upgrade(services.db, services.settings.instance_path)
    with services.db.session() as session:
        assert session.get(Job, job.id).problems_count == 5
