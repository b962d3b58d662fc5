"""Webhooks: events recorded with the change they report, delivered signed, in
order, retried for a day, and never lost while a real receiver is down.

The receiver is a real HTTP server (tests/conftest.py); time is advanced by
passing `now` to the delivery instead of sleeping.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select

from engine.delivery import outbox, webhooks
from engine.delivery.sender import BATCH_TASKS, CLAIM_HOLD, deliver_due
from engine.errors import ConflictError, InvalidError, NotFoundError
from engine.identity import Identity, create_user
from engine.projects import create_project
from engine.quality.review import resolve
from engine.store.models import Job, Task, User, WebhookDelivery, WebhookEvent, utcnow
from engine.volunteering import next_task, submit_answer
from workers.schedule import ensure_scheduled

SECRET = "s3cret-for-the-penguins"


@pytest.fixture
def hooked(services, owner, receiver):
    """``hooked(**project_options, events=...)``: a project with no tasks yet whose
    webhook points at the receiver."""

    def make(events=None, **options):
        settings = {"min_answers": 1, "max_answers": 1, **options}
        project = create_project(services, owner, {
            "name": "owls", "task_type": "classify",
            "config": {"question": "Owl?", "labels": ["a", "b"]}, "confidence": 0.5,
            "quality": {"trusted_after_minutes": 0},  # its volunteers are minutes old
            **settings}).project
        webhooks.set_webhook(services, owner, project.id, {
            "url": receiver.url, "secret": SECRET, **({"events": events} if events else {})})
        return project

    return make


def answer_everything(services, project, volunteers, label="a"):
    for v in volunteers:
        while (handout := next_task(services, v, project.id)) is not None:
            submit_answer(services, v, handout.task_id, handout.lease, {"label": label})


def events(services, **where):
    with services.db.session() as session:
        return list(session.scalars(select(WebhookEvent).filter_by(**where)
                                    .order_by(WebhookEvent.id)))


def log(services):
    with services.db.session() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def bodies(receiver, ok_only=True):
    return [json.loads(c["body"]) for c in receiver.calls
            if not ok_only or 200 <= c["status"] < 300]


def test_signature_verifies_with_the_secret(services, hooked, make_project, receiver):
    project = hooked()
    make_project.add_items(project, [{"text": "t0"}])
    assert deliver_due(services) == {project.id: 1}
    [call] = receiver.calls
    headers, raw = call["headers"], call["body"]
    signed = headers["x-bitesize-timestamp"].encode() + b"." + raw
    expected = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert headers["x-bitesize-signature"] == f"sha256={expected}"
    forged = hmac.new(b"another secret!!", signed, hashlib.sha256).hexdigest()
    assert headers["x-bitesize-signature"] != f"sha256={forged}"
    body = json.loads(raw)
    assert headers["x-bitesize-event"] == body["event"] == "job.split"
    assert headers["x-bitesize-delivery"] == body["id"]
    assert headers["content-type"] == "application/json"
    assert body["project"] == project.id
    assert body["data"]["job"]["state"] == "done" and body["data"]["job"]["tasks_made"] == 1


def test_receiver_down_for_an_hour_loses_nothing(services, hooked, make_project, volunteer,
                                                 receiver):
    project = hooked()
    receiver.status = 503  # up, but failing
    make_project.add_items(project, [{"text": f"t{n}", "id": f"ref-{n}"} for n in range(4)])
    t0 = utcnow()
    assert deliver_due(services, now=t0) == {project.id: 0}
    [split] = events(services)
    assert (split.type, split.state, split.attempts) == ("job.split", "failed", 1)

    answer_everything(services, project, [volunteer()])  # 4 retirements, then completion
    receiver.stop()  # now down: connection refused
    for minutes in (1, 30, 59):
        assert deliver_due(services, now=t0 + timedelta(minutes=minutes)) == {project.id: 0}

    waiting = events(services)
    assert [e.type for e in waiting] == ["job.split"] + ["task.retired"] * 4 + [
        "project.completed"]
    head, behind = waiting[0], waiting[1:]
    assert (head.state, head.attempts) == ("failed", 4)
    assert head.last_error.endswith("could not be fetched: no answer")  # not the OS words
    assert head.next_attempt_at is not None
    assert all((e.state, e.attempts) == ("pending", 0) for e in behind)  # waiting in line
    attempts = log(services)
    assert [a.attempt for a in attempts] == [1, 2, 3, 4]
    assert attempts[0].status_code == 503 and attempts[0].error.startswith("HTTP 503")
    assert all(a.status_code is None and a.error for a in attempts[1:])
    assert {c["headers"]["x-bitesize-delivery"] for c in receiver.calls} == {
        head.idempotency_key}

    receiver.status = 200
    receiver.start()  # back after an hour
    later = t0 + timedelta(minutes=61)
    assert deliver_due(services, now=later) == {project.id: 3}
    assert deliver_due(services, now=later + timedelta(hours=1)) == {}  # nothing twice

    delivered = bodies(receiver)
    assert [b["event"] for b in delivered] == ["job.split", "task.retired", "project.completed"]
    assert len({b["id"] for b in delivered}) == 3  # each key delivered exactly once
    assert delivered[0]["id"] == head.idempotency_key  # the key the failures carried
    tasks = delivered[1]["data"]["tasks"]
    with services.db.session() as session:
        task_ids = list(session.scalars(select(Task.id).where(Task.project_id == project.id)
                                        .order_by(Task.id)))
    assert [t["id"] for t in tasks] == task_ids  # all four in one batch, in order
    assert [t["ref"] for t in tasks] == [f"ref-{n}" for n in range(4)]
    assert all(t["state"] == "retired" and t["value"] == "a" for t in tasks)
    assert delivered[2]["data"]["project"] == {"id": project.id, "name": "owls", "tasks": 4,
                                               "retired": 4, "settled": 0}
    assert [e.state for e in events(services)] == ["delivered"] * 3


def test_backoff_doubles_from_ten_seconds(services, hooked, make_project, receiver):
    project = hooked()
    receiver.stop()
    make_project.add_items(project, [{"text": "t0"}])
    now, gaps = utcnow(), []
    for _ in range(4):
        deliver_due(services, now=now)
        [event] = events(services)
        gap = (event.next_attempt_at.replace(tzinfo=now.tzinfo) - now).total_seconds()
        gaps.append(gap)
        now += timedelta(seconds=gap + 1)
    for n, gap in enumerate(gaps):
        assert 10 * 2**n * 0.8 <= gap <= 10 * 2**n * 1.2


def test_retired_tasks_go_in_batches_with_keys_stable_across_retries(services, hooked,
                                                                    receiver):
    project = hooked(events=["task.retired"])
    with services.db.session() as session:
        for n in range(2 * BATCH_TASKS + 50):
            outbox.record(session, project.id, "task.retired", {"tasks": [{"id": n}]})
    receiver.status = 503
    now = utcnow()
    deliver_due(services, now=now)
    [failed] = receiver.calls
    receiver.status = 200
    deliver_due(services, now=now + timedelta(hours=1))

    retried, *rest = receiver.calls[1:]
    assert retried["body"] == failed["body"]  # the same batch, byte for byte
    assert retried["headers"]["x-bitesize-delivery"] == failed["headers"]["x-bitesize-delivery"]
    sent = [json.loads(c["body"])["data"]["tasks"] for c in [retried, *rest]]
    assert [len(batch) for batch in sent] == [BATCH_TASKS, BATCH_TASKS, 50]
    assert [t["id"] for batch in sent for t in batch] == list(range(2 * BATCH_TASKS + 50))
    assert [e.state for e in events(services)] == ["delivered"] * 3  # packed rows folded


def test_dead_after_a_day_then_redeliver(services, hooked, make_project, owner, receiver):
    project = hooked()
    receiver.stop()
    make_project.add_items(project, [{"text": "t0"}])
    make_project.add_items(project, [{"text": "t1"}])
    a_day_later = utcnow() + timedelta(hours=25)
    deliver_due(services, now=a_day_later)
    first, second = events(services)
    assert (first.state, second.state) == ("dead", "dead")  # a dead one does not hold the line
    assert first.attempts == second.attempts == 1

    webhooks.redeliver(services, owner, project.id, first.id, now=a_day_later)
    receiver.start()
    assert deliver_due(services, now=a_day_later) == {project.id: 1}
    [call] = receiver.calls
    assert call["headers"]["x-bitesize-delivery"] == first.idempotency_key
    first, second = events(services)
    assert (first.state, first.attempts, second.state) == ("delivered", 2, "dead")
    assert webhooks.redeliver(services, owner, project.id, first.id).state == "pending"
    with pytest.raises(ConflictError):  # already waiting
        webhooks.redeliver(services, owner, project.id, first.id)
    with pytest.raises(NotFoundError):
        webhooks.redeliver(services, owner, project.id, 10**6)


def test_a_paused_webhook_holds_its_events(services, hooked, make_project, owner, receiver):
    project = hooked()
    webhooks.set_webhook(services, owner, project.id,
                         {"url": receiver.url, "secret": SECRET, "active": False})
    make_project.add_items(project, [{"text": "t0"}])
    assert deliver_due(services) == {}
    assert [e.state for e in events(services)] == ["pending"]
    webhooks.set_webhook(services, owner, project.id, {"url": receiver.url, "secret": SECRET})
    assert deliver_due(services) == {project.id: 1}


def test_only_subscribed_events_are_recorded(services, hooked, make_project, volunteer,
                                             owner):
    bare = make_project(tasks=2, min_answers=1, max_answers=1)
    answer_everything(services, bare, [volunteer()])
    project = hooked(events=["task.retired"])
    make_project.add_items(project, [{"text": "t0"}])
    answer_everything(services, project, [volunteer()])
    assert [(e.project_id, e.type) for e in events(services)] == [(project.id, "task.retired")]


def test_settling_the_last_contested_task_completes_the_project(services, hooked,
                                                               make_project, volunteer):
    project = hooked(min_answers=2, max_answers=2, confidence=0.9)
    make_project.add_items(project, [{"text": "t0"}])
    answer_everything(services, project, [volunteer()], "a")
    answer_everything(services, project, [volunteer()], "b")
    assert [e.type for e in events(services)] == ["job.split"]  # contested: nothing yet
    admin_id, _ = create_user(services, "Owls Trust", "admin")
    with services.db.session() as session:
        admin = Identity("user", admin_id, session.get(User, admin_id).organisation_id, "admin")
        task_id = session.scalar(select(Task.id).where(Task.project_id == project.id))
    resolve(services, admin, task_id, {"label": "b"})
    retired, completed = events(services)[1:]
    [task] = retired.payload["tasks"]
    assert (task["id"], task["state"], task["value"], task["confidence"]) == (
        task_id, "settled", "b", 1.0)
    assert completed.type == "project.completed"
    assert completed.payload["project"]["settled"] == 1


def test_a_job_nudges_the_worker_which_delivers(services, hooked, owner, receiver, work):
    from engine.intake.jobs import create_job

    project = hooked()
    create_job(services, owner, project.id, items=[{"text": "t0"}])
    work()  # splits, records job.split, and the nudged low-queue job delivers it
    assert [b["event"] for b in bodies(receiver)] == ["job.split"]
    assert ensure_scheduled(services, "webhooks", delay=0)
    services.queue("low").enqueue("workers.jobs.deliver_webhooks_periodic")
    work()  # the periodic run: nothing new, and it renews its chain
    assert services.redis.exists("bs:periodic:webhooks")
    assert len(receiver.calls) == 1


@pytest.mark.parametrize(("url", "message"), [
    ("ftp://example.org/hook", "http"), ("file:///etc/passwd", "http"),
    ("javascript:alert(1)", "http"), ("example.org/hook", "http"), ("https://", "host"),
    ("http://user:pw@example.org/", "credentials"), ("http://example.org:99999/", "valid"),
    ("http://exa mple.org/", "spaces"), ("http://[::1/", "valid"),
])
def test_webhook_urls_must_be_http(services, hooked, owner, url, message):
    project = hooked()
    with pytest.raises(InvalidError, match=message) as caught:
        webhooks.set_webhook(services, owner, project.id, {"url": url, "secret": SECRET})
    assert "url" in caught.value.fields


def test_deleting_the_webhook_stops_recording(services, hooked, make_project, owner,
                                              receiver):
    project = hooked()
    receiver.stop()
    make_project.add_items(project, [{"text": "t0"}])
    deliver_due(services)
    assert webhooks.delete_webhook(services, owner, project.id) == 1
    make_project.add_items(project, [{"text": "t1"}])
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 0
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0


def test_re_merging_the_last_unfinished_task_completes_the_project(services, hooked,
                                                                   make_project, volunteer):
    """A re-merge (here the operator's `bitesize projects remerge`) that retires the
    last open task records project.completed: the outbox's check for unfinished
    tasks must see the chunk's changes (a review found it read the old states)."""
    from sqlalchemy import update

    from engine.quality.consensus import remerge_project

    project = hooked()
    make_project.add_items(project, [{"text": "t0"}, {"text": "t1"}])
    answer_everything(services, project, [volunteer()], "a")
    assert [e.type for e in events(services)][-1] == "project.completed"
    with services.db.writing() as session:  # the last task reopened by hand, its answer kept
        last = session.scalar(select(func.max(Task.id)).where(Task.project_id == project.id))
        session.execute(update(Task).where(Task.id == last).values(state="open",
                                                                   retired_at=None))
    before = len(events(services))
    remerge_project(services, project.id)
    assert [e.type for e in events(services)[before:]] == ["task.retired", "project.completed"]


def test_a_job_ended_by_the_archive_does_not_complete_the_project(services, hooked, owner,
                                                                  volunteer):
    """A job that had made tasks, all finished since, is stopped by an archive
    before its last items: the charity stopped the project, it did not complete."""
    from engine import lifecycle
    from engine.intake.jobs import ARCHIVED_DURING_JOB, create_job, run_job

    project = hooked()
    job = create_job(services, owner, project.id, items=[{"text": f"t{n}"} for n in range(4)],
                     enqueue=False)
    run_job(services, job.id)
    with services.db.writing() as session:  # as if its run had stopped before the end
        session.get(Job, job.id).state = "running"
    answer_everything(services, project, [volunteer()], "a")
    assert "project.completed" not in [e.type for e in events(services)]  # still splitting
    lifecycle.archive_project(services, owner, project.id)
    with services.db.writing() as session:  # handed to another run to finish
        session.get(Job, job.id).state = "queued"
    assert run_job(services, job.id).error == ARCHIVED_DURING_JOB
    assert [e.type for e in events(services)][-1] == "job.split"
    assert "project.completed" not in [e.type for e in events(services)]


class Stalling:
    """A receiver whose first POST waits until `release` is set, then fails with
    500; every later POST gets 200 at once. `calls` lists each POST's status."""

    def __init__(self) -> None:
        self.arrived, self.release = threading.Event(), threading.Event()
        self.calls: list[int] = []
        stalling = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                first = not stalling.calls
                stalling.calls.append(500 if first else 200)
                if first:
                    stalling.arrived.set()
                    stalling.release.wait(4)  # inside the sender's 5 s read timeout
                self.send_response(500 if first else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def stalled(services, hooked, make_project, owner):
    """`stalled(second_run_after)`: a project's job.split event whose first
    attempt (at t0) stalls at the receiver while a second run starts
    `second_run_after` later; the first attempt then fails. Returns
    (project, receiver, t0, what the second run delivered)."""
    receivers = []

    def run(second_run_after: timedelta):
        project = hooked()
        receiver = Stalling()
        receivers.append(receiver)
        webhooks.set_webhook(services, owner, project.id, {"url": receiver.url,
                                                           "secret": SECRET})
        make_project.add_items(project, [{"text": "t0"}])
        t0 = utcnow()
        first = threading.Thread(target=deliver_due, args=(services,), kwargs={"now": t0})
        first.start()
        assert receiver.arrived.wait(5)
        second = deliver_due(services, now=t0 + second_run_after)
        receiver.release.set()
        first.join(10)
        return project, receiver, t0, second

    yield run
    for receiver in receivers:
        receiver.close()


def test_a_second_run_leaves_an_event_whose_post_is_slow(services, stalled):
    """An audit: a claim pushed the next attempt back only the first back-off
    (8-12 s), but a POST may take 10 s, so a second run sent the same event
    again while the first attempt was still waiting for its reply. A claim now
    holds the event for longer than a POST can take; the back-off counts from
    the failure."""
    project, receiver, t0, second = stalled(timedelta(seconds=13))
    assert second == {}  # not due: held by the first attempt
    assert receiver.calls == [500]
    [event] = events(services)
    assert (event.state, event.attempts) == ("failed", 1)
    gap = (event.next_attempt_at.replace(tzinfo=t0.tzinfo) - t0).total_seconds()
    assert 8 <= gap <= 12
    assert deliver_due(services, now=t0 + timedelta(seconds=13)) == {project.id: 1}
    assert receiver.calls == [500, 200]


def test_a_slow_failure_never_undoes_a_later_delivery(services, stalled):
    """An attempt that outlived its hold (its worker seemed dead) is overtaken by
    a later one that delivers: the slow attempt's failure is logged but leaves
    the event delivered. Before, it set the event back to failed, and it was
    sent again after the events behind it."""
    project, receiver, t0, second = stalled(CLAIM_HOLD + timedelta(seconds=1))
    assert second == {project.id: 1}
    [event] = events(services)
    assert (event.state, event.attempts) == ("delivered", 2)
    assert sorted((d.attempt, d.status_code) for d in log(services)) == [(1, 500), (2, 200)]
    assert deliver_due(services, now=t0 + timedelta(hours=2)) == {}
    assert receiver.calls == [500, 200]


def test_an_event_is_not_redelivered_while_an_attempt_of_it_is_sent(services, hooked,
                                                                    make_project, owner):
    """A review: a failed event keeps its state through its next attempt's claim,
    and redelivering it then let a second worker POST the same event beside
    the first. While an attempt is claimed and not logged it is 409."""
    from engine.delivery import sender

    project = hooked()
    make_project.add_items(project, [{"text": "t0"}])
    now = utcnow()
    with services.db.writing() as session:  # as after a first attempt failed
        [event] = session.query(WebhookEvent).all()
        event.state, event.attempts, event.next_attempt_at = "failed", 1, now
        session.add(WebhookDelivery(project_id=project.id, event_id=event.id, attempt=1,
                                    at=now, status_code=503, error="HTTP 503",
                                    duration_ms=1.0))
    claimed = sender.claim(services, project.id, now)  # attempt 2: its POST under way
    assert claimed is not None
    with pytest.raises(ConflictError):
        webhooks.redeliver(services, owner, project.id, claimed.event_id, now=now)
    assert sender.claim(services, project.id, now + timedelta(seconds=5)) is None
    # a worker that died: once the hold is over it may be redelivered
    later = now + CLAIM_HOLD + timedelta(seconds=1)
    assert webhooks.redeliver(services, owner, project.id, claimed.event_id,
                              now=later).state == "pending"
