"""Lock orders between writers that lock a project's row and rows that point at
it (PostgreSQL's row locks; on SQLite the writer lock serialises the same
steps). Rows are locked task -> project and job -> event -> project; no
transaction that has added a row pointing at the project then asks for FOR
UPDATE on it (two retiring merges deadlocked so). Wide blocks and unblocks act
on a project only while they still stand. Draft deletion's orders are in
test_draft_deletion_races, archiving's in test_archive_races."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import event, select

from engine.delivery import outbox, webhooks
from engine.dispatch.dispatcher import keys
from engine.intake import jobs
from engine.projects import create_project
from engine.quality import moderation
from engine.store.models import (
    Job,
    OrganisationBlock,
    Task,
    VolunteerStat,
    utcnow,
)
from tests.engine.test_final_results import platform_admin
from tests.engine.test_lifecycle import CLASSIFY, answer_one


def run_recording(errors: dict, name: str, fn: Callable[[], object]) -> None:
    """Call ``fn``; an exception it raises is kept in ``errors`` under ``name``
    (a thread's failure, for the test's assertion)."""
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - reported by the assertion
        errors[name] = exc


def race_at_statement(services, prefix: str, first: tuple[str, Callable[[], object]],
                      second: tuple[str, Callable[[], object]]) -> tuple[dict, bool]:
    """Run ``first`` in a thread until it is about to run a statement starting
    with ``prefix`` (its earlier locks held), run ``second`` meanwhile, then let
    ``first`` go on. The errors of either by name, and whether ``second`` was
    still waiting (for a lock ``first`` held) when ``first`` went on."""
    paused, go, errors, runner = threading.Event(), threading.Event(), {}, {}

    def before(conn, cursor, statement, params, context, executemany):
        if (threading.get_ident() == runner.get("thread") and not paused.is_set()
                and statement.lstrip().upper().startswith(prefix)):
            paused.set()
            go.wait(10)

    def run_first() -> None:
        runner["thread"] = threading.get_ident()
        first[1]()

    event.listen(services.db.engine, "before_cursor_execute", before)
    try:
        one = threading.Thread(target=run_recording, args=(errors, first[0], run_first))
        one.start()
        assert paused.wait(10)
        two = threading.Thread(target=run_recording, args=(errors, *second))
        two.start()
        two.join(0.5)
        waited = two.is_alive()
        go.set()
        one.join(30)
        two.join(30)
    finally:
        event.remove(services.db.engine, "before_cursor_execute", before)
    return errors, waited


def test_an_organisation_block_during_a_platform_unblock_stands(
        services, admin, make_project, volunteer, monkeypatch):
    """A platform unblock ends the platform's block, lists the projects, then
    unblocks them one by one: an organisation block landing in between stands
    (a platform unblock leaves a charity's own blocks), and its project stays
    blocked."""
    live = make_project(tasks=1, min_answers=1, max_answers=1)
    who = answer_one(services, volunteer, live.id)
    ops = platform_admin(services)
    moderation.block(services, ops, live.id, who.id, "platform", "a script")
    real, raced = moderation._unblock_in, []

    def unblock_in(*args):
        if not raced:  # the charity's admin blocks them organisation-wide meanwhile
            raced.append(moderation.block(services, admin, live.id, who.id,
                                          "organisation", "still a script"))
        return real(*args)

    monkeypatch.setattr(moderation, "_unblock_in", unblock_in)
    moderation.unblock(services, ops, live.id, who.id, "platform", "cleared")
    with services.db.session() as session:
        assert session.get(OrganisationBlock, (live.organisation_id, who.id)) is not None
        assert session.get(VolunteerStat, (live.id, who.id)).blocked
    assert services.redis.sismember(keys(live.id)["blocked"], who.id)


def test_the_watchdog_failing_a_slow_split_midway_through_a_batch(services, owner, receiver):
    """A split's batch (jobs._insert): project FOR SHARE -> items, tasks -> UPDATE job.
    The watchdog failing the job at its third stop (watchdog._fail -> finish_job):
    UPDATE job -> project FOR UPDATE (outbox._record_if_completed: the job made
    tasks in an earlier batch, the webhook subscribes to project.completed). A
    worker only slow (its heartbeat stale) still storing a batch: a cycle."""
    from datetime import timedelta

    from sqlalchemy import update

    from engine.intake import watchdog

    live = create_project(services, owner, {**CLASSIFY, "min_answers": 1,
                                            "max_answers": 1}).project
    webhooks.set_webhook(services, owner, live.id, {"url": receiver.url,
                                                    "secret": "s3cret-for-the-penguins"})
    job = jobs.create_job(services, owner, live.id, items=[{"text": "t"}], enqueue=False)
    with services.db.session() as session:  # stopped twice; an earlier batch made a task
        session.execute(update(Job).where(Job.id == job.id).values(resumed=2, tasks_made=1))
    paused, go, splitter, errors = threading.Event(), threading.Event(), {}, {}

    def before(conn, cursor, statement, params, context, executemany):
        if (threading.get_ident() == splitter.get("thread") and not paused.is_set()
                and statement.lstrip().upper().startswith("INSERT INTO ITEM")):
            paused.set()  # the batch holds the project's row shared
            go.wait(10)

    def split() -> None:
        splitter["thread"] = threading.get_ident()
        jobs.run_job(services, job.id)

    event.listen(services.db.engine, "before_cursor_execute", before)
    try:
        splitting = threading.Thread(target=run_recording, args=(errors, "split", split))
        splitting.start()
        assert paused.wait(20)
        sweeping = threading.Thread(target=run_recording, args=(
            errors, "sweep",  # its heartbeat looks stale
            lambda: watchdog.sweep(services, now=utcnow() + timedelta(hours=1))))
        sweeping.start()
        sweeping.join(1.0)  # it updated the job's row, and waits for the project's
        go.set()
        splitting.join(30)
        sweeping.join(30)
    finally:
        event.remove(services.db.engine, "before_cursor_execute", before)
    deadlocks = {name: repr(exc)[:300] for name, exc in errors.items()
                 if "deadlock" in repr(exc).lower()}
    assert not deadlocks, deadlocks


def _withdrawn_task(services, make_project, volunteer):
    from engine.quality.reports import file_report
    from engine.volunteering import next_task

    project = make_project(tasks=1, quality={"quarantine": False, "trusted_after_minutes": 0,
                                             "reports_to_withdraw": 1})
    who = volunteer()
    handout = next_task(services, who, project.id)
    assert file_report(services, project.id, handout.task_id, who.id, "offensive").withdrawn
    return project, handout.task_id


def test_settling_a_reported_task_as_its_reports_are_dismissed(
        services, owner, make_project, volunteer, monkeypatch):
    """review.resolve: UPDATE task (flushed by resolve_reports' UPDATE) -> UPDATE its
    task_report rows. reports.dismiss_reports: UPDATE task_report rows -> task
    FOR UPDATE (consensus.remerge of the withdrawn task). A cycle."""
    from engine.quality import reports
    from engine.quality.review import resolve

    _, task_id = _withdrawn_task(services, make_project, volunteer)
    real, dismissing, resolved_reports, errors = reports.resolve_reports, {}, \
        threading.Event(), {}

    def resolve_reports(session, task):
        count = real(session, task)
        if threading.get_ident() == dismissing.get("thread"):
            resolved_reports.set()
            time.sleep(1.0)  # the settlement updates the task, then waits on its reports
        return count

    def dismiss() -> None:
        dismissing["thread"] = threading.get_ident()
        reports.dismiss_reports(services, owner, task_id)

    monkeypatch.setattr(reports, "resolve_reports", resolve_reports)
    first = threading.Thread(target=run_recording, args=(errors, "dismiss", dismiss))
    first.start()
    assert resolved_reports.wait(20)
    second = threading.Thread(target=run_recording, args=(
        errors, "settle", lambda: resolve(services, owner, task_id, {"label": "b"})))
    second.start()
    first.join(30)
    second.join(30)
    deadlocks = {name: repr(exc)[:300] for name, exc in errors.items()
                 if "deadlock" in repr(exc).lower()}
    assert not deadlocks, deadlocks


def test_two_last_tasks_retiring_at_once_both_merge_and_complete_the_project_once(
        services, owner, make_project, volunteer, receiver, monkeypatch):
    """Each retiring merge adds its task.retired event (a row pointing at the
    project), then locks the project to see whether it completed it. Two at
    once each held that key share and asked for FOR UPDATE: PostgreSQL killed
    one with a deadlock. The completion check serialises them, and only the
    second sees the project complete."""
    from sqlalchemy import func

    from engine.store.models import WebhookEvent
    from engine.volunteering import next_tasks, submit_answer

    project = make_project(tasks=2, min_answers=1, max_answers=1)
    webhooks.set_webhook(services, owner, project.id, {"url": receiver.url,
                                                       "secret": "s3cret-for-the-penguins"})
    first, second = volunteer(), volunteer()
    handouts = [(first, next_tasks(services, first, project.id)[0])]
    handouts.append((second, next(h for h in next_tasks(services, second, project.id, 2)
                                  if h.task_id != handouts[0][1].task_id)))
    both = threading.Barrier(2, timeout=2)  # SQLite: the writer lock lets one through
    real, errors = outbox._record_if_completed, {}

    def record_if_completed(session, project_id):
        try:
            both.wait()  # both hold their event's row: now both ask for the project
        except threading.BrokenBarrierError:
            pass
        return real(session, project_id)

    monkeypatch.setattr(outbox, "_record_if_completed", record_if_completed)
    threads = [threading.Thread(target=run_recording, args=(errors, str(n), lambda v=v, h=h:
                                submit_answer(services, v, h.task_id, h.lease,
                                              {"label": "a"})))
               for n, (v, h) in enumerate(handouts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, {name: repr(exc)[:300] for name, exc in errors.items()}
    with services.db.session() as session:
        states = session.scalars(select(Task.state).where(Task.project_id == project.id)).all()
        completed = session.scalar(select(func.count()).select_from(WebhookEvent).where(
            WebhookEvent.project_id == project.id, WebhookEvent.type == "project.completed"))
    assert sorted(states) == ["retired", "retired"] and completed == 1


def test_deleting_a_webhook_while_an_attempt_is_logged_leaves_nothing(
        services, owner, make_project, volunteer, receiver):
    """The sender locks the event, then adds its delivery. The deletion deleted
    the deliveries, then waited on that event; the delivery committed meanwhile
    made the event's delete fail on the foreign key (PostgreSQL). It now locks
    the events first, in the sender's order, and deletes after the attempt."""
    from engine.delivery import sender
    from engine.store.models import WebhookDelivery, WebhookEvent

    project = make_project(tasks=1, min_answers=1, max_answers=1)
    webhooks.set_webhook(services, owner, project.id, {"url": receiver.url,
                                                       "secret": "s3cret-for-the-penguins"})
    answer_one(services, volunteer, project.id)  # its task.retired event waits
    claimed = sender.claim(services, project.id, utcnow())
    assert claimed is not None
    # the sender holds the event's row, its delivery not yet added; the deletion
    # waits for the event's row (SQLite: the writer lock)
    errors, _ = race_at_statement(
        services, "INSERT INTO WEBHOOK_DELIVERY", ("store", lambda: sender._store(
            services, claimed, sender.Outcome(200, None, 1.0), utcnow())),
        ("delete", lambda: webhooks.delete_webhook(services, owner, project.id)))
    assert not errors, {name: repr(exc)[:300] for name, exc in errors.items()}
    with services.db.session() as session:
        left = [session.scalars(select(model).where(model.project_id == project.id)).all()
                for model in (WebhookEvent, WebhookDelivery)]
    assert left == [[], []]
