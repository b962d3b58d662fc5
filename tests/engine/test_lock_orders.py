"""Row-lock orders around a project's row (PostgreSQL's row locks; on SQLite the
writer lock serialises the same steps). Moves, edits and deletion lock the row
FOR NO KEY UPDATE, so rows that point at the project (a job's event, a
webhook's delivery) can still be added by writers that lock their own rows
first: a full lock deadlocked with them. A report reads the project shared
after locking its task (merges' order), so it waits for an archive and sees it.
Wide blocks and unblocks act on a project only while they still stand, and a
re-merge stops at an archive."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import event, select

from engine import lifecycle
from engine.delivery import outbox, sender, webhooks
from engine.dispatch.dispatcher import keys
from engine.errors import ConflictError
from engine.intake import jobs
from engine.projects import create_project
from engine.quality import moderation, remerging
from engine.store.models import (
    Job,
    OrganisationBlock,
    Project,
    Result,
    Task,
    TaskReport,
    VolunteerStat,
    utcnow,
)
from tests.engine.test_final_results import platform_admin
from tests.engine.test_lifecycle import CLASSIFY, answer_one


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

    def run(name: str, fn: Callable[[], object]) -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion
            errors[name] = exc

    deleting = threading.Thread(target=run, args=(
        "delete", lambda: lifecycle.delete_draft(services, owner, draft_id)))
    deleting.start()
    assert locked.wait(10)
    second = threading.Thread(target=run, args=("other", other))
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


def test_a_report_filed_as_the_project_is_archived_waits_and_is_refused(
        services, make_project, volunteer):
    from engine.quality.reports import file_report
    from engine.volunteering import next_task

    project = make_project(tasks=1, quality={"quarantine": False, "trusted_after_minutes": 0,
                                             "reports_to_withdraw": 1})
    who = volunteer()
    handout = next_task(services, who, project.id)
    outcome: list = []

    def report() -> None:
        try:
            outcome.append(file_report(services, project.id, handout.task_id, who.id,
                                       "offensive"))
        except ConflictError as exc:
            outcome.append(exc)

    with services.db.writing() as session:  # the archive, locked as a move locks it
        session.get(Project, project.id, with_for_update={"key_share": True}).state = \
            "archived"
        session.flush()
        reporting = threading.Thread(target=report)
        reporting.start()
        reporting.join(0.5)
        assert reporting.is_alive()  # the report waits for the archive
    reporting.join(30)
    assert [type(o) for o in outcome] == [ConflictError]
    with services.db.session() as session:
        assert session.scalars(select(TaskReport)).all() == []
        assert session.get(Task, handout.task_id).state == "open"


def test_a_project_archived_before_a_blocks_remerge_keeps_its_results(
        services, owner, admin, make_project, volunteer, monkeypatch):
    """The step's transaction sees an archive, but the re-merge it starts runs
    after its commit: each chunk looks again."""
    project = make_project(tasks=1, min_answers=1, max_answers=1)
    who = answer_one(services, volunteer, project.id)
    with services.db.session() as session:
        task = session.scalars(select(Task).where(Task.project_id == project.id)).one()
        before = (task.state, session.get(Result, task.id).value)
    real = remerging.merge_again

    def merge_again(services_, project_id, volunteer_id, mark):
        lifecycle.move(services, owner, project_id, "archive")  # the charity archives now
        return real(services_, project_id, volunteer_id, mark)

    monkeypatch.setattr(remerging, "merge_again", merge_again)
    moderation.block(services, admin, project.id, who.id, "organisation", "a script")
    with services.db.session() as session:
        assert session.get(Project, project.id).state == "archived"
        task = session.get(Task, task.id)
        assert (task.state, session.get(Result, task.id).value) == before


def test_an_organisation_block_during_a_platform_unblock_stands(
        services, admin, make_project, volunteer, monkeypatch):
    """A platform unblock ends every organisation's block, lists the projects,
    then unblocks them one by one: an organisation block landing in between
    came last, and its project stays blocked."""
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
    paused, go, deleter, errors = threading.Event(), threading.Event(), {}, {}

    def before(conn, cursor, statement, params, context, executemany):
        if (threading.get_ident() == deleter.get("thread") and not paused.is_set()
                and statement.lstrip().upper().startswith("DELETE FROM HANDOUT")):
            paused.set()  # events and webhooks deleted, jobs not yet
            go.wait(10)

    def run(name: str, fn: Callable[[], object]) -> None:
        deleter.setdefault("thread" if name == "delete" else name, threading.get_ident())
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion
            errors[name] = exc

    event.listen(services.db.engine, "before_cursor_execute", before)
    try:
        deleting = threading.Thread(target=run, args=(
            "delete", lambda: lifecycle.delete_draft(services, owner, draft.id)))
        deleting.start()
        assert paused.wait(10)
        finishing = threading.Thread(target=run, args=(
            "finish", lambda: jobs.finish_job(services, job.id, "done")))
        finishing.start()
        finishing.join(0.5)
        assert finishing.is_alive()  # it waits for the job's row
        go.set()
        deleting.join(30)
        finishing.join(30)
    finally:
        event.remove(services.db.engine, "before_cursor_execute", before)
    assert not errors, {name: repr(exc)[:300] for name, exc in errors.items()}
    with services.db.session() as session:
        assert session.get(Project, draft.id) is None
        assert session.get(Job, job.id) is None


def test_an_archive_during_a_remerge_chunk_keeps_its_results(
        services, owner, admin, make_project, volunteer, monkeypatch):
    """A chunk reads the project shared as its transaction ends. On PostgreSQL an
    archive may commit while the chunk merges: the chunk sees it and is undone.
    On SQLite the archive waits for the chunk's writer lock: the re-merge came
    first and stands, and the archive after it."""
    from engine.quality import recheck

    project = make_project(tasks=1, min_answers=1, max_answers=1)
    who = answer_one(services, volunteer, project.id)
    with services.db.session() as session:
        task = session.scalars(select(Task).where(Task.project_id == project.id)).one()
        before = (task.state, session.get(Result, task.id).value)
    real, archiving, archived = recheck.results_of, [], []
    waits = services.db.is_sqlite  # for the writer lock the chunk holds

    def results_of(session, chunk):
        if not archiving:  # the charity archives while this chunk's transaction is open
            archiving.append(threading.Thread(target=lambda: archived.append(
                lifecycle.move(services, owner, project.id, "archive"))))
            archiving[0].start()
            archiving[0].join(0.5 if waits else 10)
            assert archiving[0].is_alive() == waits
        return real(session, chunk)

    monkeypatch.setattr(recheck, "results_of", results_of)
    moderation.block(services, admin, project.id, who.id, "organisation", "a script")
    archiving[0].join(30)
    assert len(archived) == 1
    with services.db.session() as session:
        assert session.get(Project, project.id).state == "archived"
        task = session.get(Task, task.id)
        after = (task.state, session.get(Result, task.id).value)
    if waits:  # the re-merge came first: the block reopened the task
        assert after != before
    else:
        assert after == before, f"archived project's result changed: {before} -> {after}"


def _run(errors: dict, name: str, fn: Callable[[], object]) -> None:
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - reported by the assertion
        errors[name] = exc


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
    splitting = threading.Thread(target=_run, args=(
        errors, "split", lambda: jobs.run_job(services, job.id)))
    splitting.start()
    assert job_locked.wait(20)
    deleting = threading.Thread(target=_run, args=(
        errors, "delete", lambda: lifecycle.delete_draft(services, owner, draft.id)))
    deleting.start()
    splitting.join(30)
    deleting.join(30)
    assert not errors, {name: repr(exc)[:300] for name, exc in errors.items()}
    with services.db.session() as session:
        assert session.get(Project, draft.id) is None
        assert session.get(Job, job.id) is None


def test_the_watchdog_failing_a_slow_split_midway_through_a_batch(services, owner, receiver):
    """A split's batch (jobs._insert): project FOR SHARE -> items, tasks -> UPDATE job.
    The watchdog failing the job at its third stop (watchdog._fail -> finish_job):
    UPDATE job -> project FOR UPDATE (outbox._record_if_completed: the job made
    tasks in an earlier batch, the webhook subscribes to project.completed). A
    worker only slow (its heartbeat stale) still storing a batch: a cycle."""
    from datetime import timedelta

    from sqlalchemy import event, update

    from engine.intake import watchdog
    from engine.store.models import utcnow

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
        splitting = threading.Thread(target=_run, args=(errors, "split", split))
        splitting.start()
        assert paused.wait(20)
        sweeping = threading.Thread(target=_run, args=(errors, "sweep", lambda: watchdog.sweep(
            services, now=utcnow() + timedelta(hours=1))))  # its heartbeat looks stale
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
    first = threading.Thread(target=_run, args=(errors, "dismiss", dismiss))
    first.start()
    assert resolved_reports.wait(20)
    second = threading.Thread(target=_run, args=(
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
    threads = [threading.Thread(target=_run, args=(errors, str(n), lambda v=v, h=h:
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


@pytest.mark.parametrize("action", ["settle", "dismiss"])
def test_an_archive_waits_for_a_settlement_or_dismissal_under_way(
        services, owner, make_project, volunteer, monkeypatch, action):
    """A settlement (or a dismissal of reports) checked the project unlocked, in
    its own session: an archive committing after that check was neither
    waited for nor seen (PostgreSQL), and an archived project's task was
    settled. Now the project is locked after the task, as an archive locks it:
    the archive waits for the change under way, and comes after it."""
    from engine.quality import reports, review
    from engine.quality.reports import file_report
    from engine.volunteering import next_task

    project = make_project(tasks=1, quality={"quarantine": False, "trusted_after_minutes": 0,
                                             "reports_to_withdraw": 1})
    who = volunteer()
    handout = next_task(services, who, project.id)
    assert file_report(services, project.id, handout.task_id, who.id, "offensive").withdrawn
    archiving, archived = [], []

    def archive_now() -> None:  # the charity archives while the change is under way
        archiving.append(threading.Thread(target=lambda: archived.append(
            lifecycle.move(services, owner, project.id, "archive"))))
        archiving[0].start()
        archiving[0].join(0.5)
        assert archiving[0].is_alive()  # it waits for the change

    # past the change's check of the project, before its commit
    module, name = (review, "_settled_value") if action == "settle" else \
        (reports, "resolve_reports")
    real = getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a: (archive_now(), real(*a))[1])
    if action == "settle":
        review.resolve(services, owner, handout.task_id, {"label": "b"})
    else:
        reports.dismiss_reports(services, owner, handout.task_id)
    archiving[0].join(30)
    assert len(archived) == 1
    with services.db.session() as session:
        assert session.get(Project, project.id).state == "archived"
        assert session.get(Task, handout.task_id).state == \
            ("settled" if action == "settle" else "open")
