"""An archive at the same moment as a change to the project's results: the
change locks the task, then the project as an archive locks it (or reads it
shared as a re-merge chunk ends), so the archive waits for it, or it sees the
archive and is refused or undone. Archived results are final."""
from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import select

from engine import lifecycle
from engine.errors import ConflictError
from engine.quality import moderation, remerging
from engine.store.models import (
    Project,
    Result,
    Task,
    TaskReport,
)
from tests.engine.test_lifecycle import answer_one


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


def archive_during_a_merge(services, owner, project_id: int, monkeypatch,
                           merge: Callable[[], object]) -> bool:
    """Run ``merge`` (a re-merge chunk or a re-check, both read the old results
    through recheck.results_of inside their transaction) while the charity
    archives the project from another thread; whether the archive waited for
    the merge (SQLite's writer lock) rather than committing meanwhile."""
    from engine.quality import recheck

    real, archiving, archived = recheck.results_of, [], []
    waits = services.db.is_sqlite

    def results_of(session, task_ids):
        if not archiving:  # the transaction is open: archive now
            archiving.append(threading.Thread(target=lambda: archived.append(
                lifecycle.move(services, owner, project_id, "archive"))))
            archiving[0].start()
            archiving[0].join(0.5 if waits else 10)
            assert archiving[0].is_alive() == waits
        return real(session, task_ids)

    monkeypatch.setattr(recheck, "results_of", results_of)
    merge()
    archiving[0].join(30)
    assert len(archived) == 1
    return waits


def test_an_archive_during_a_remerge_chunk_keeps_its_results(
        services, owner, admin, make_project, volunteer, monkeypatch):
    """A chunk reads the project shared as its transaction ends. On PostgreSQL an
    archive may commit while the chunk merges: the chunk sees it and is undone.
    On SQLite the archive waits for the chunk's writer lock: the re-merge came
    first and stands, and the archive after it."""
    project = make_project(tasks=1, min_answers=1, max_answers=1)
    who = answer_one(services, volunteer, project.id)
    with services.db.session() as session:
        task = session.scalars(select(Task).where(Task.project_id == project.id)).one()
        before = (task.state, session.get(Result, task.id).value)
    waits = archive_during_a_merge(services, owner, project.id, monkeypatch, lambda: (
        moderation.block(services, admin, project.id, who.id, "organisation", "a script")))
    with services.db.session() as session:
        assert session.get(Project, project.id).state == "archived"
        task = session.get(Task, task.id)
        after = (task.state, session.get(Result, task.id).value)
    if waits:  # the re-merge came first: the block reopened the task
        assert after != before
    else:
        assert after == before, f"archived project's result changed: {before} -> {after}"


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


def test_an_archive_during_a_recheck_keeps_its_results(services, owner, make_project,
                                                       volunteer, monkeypatch):
    """The periodic re-check (a volunteer's reliability fell) read the project
    in one session and merged its tasks again in another: an archive landing
    in between reopened a task of the archived project and changed its result.
    It now reads the project shared as its transaction ends, as a re-merge
    chunk does: on PostgreSQL the archive commits meanwhile and the re-check
    is undone; on SQLite the archive waits for it, and the re-check stands."""
    from engine.quality import recheck
    from tests.engine.test_recheck import CONTRARIAN, answer_all, set_stat, task_and_result

    project = make_project(tasks=1, min_answers=1, max_answers=3, confidence=0.8)
    spammer = volunteer()
    [task_id] = answer_all(services, project, spammer)
    before = task_and_result(services, task_id)
    set_stat(services, project.id, spammer.id, 0.1, CONTRARIAN)
    waits = archive_during_a_merge(services, owner, project.id, monkeypatch,
                                   lambda: recheck.recheck_project(services, project.id))
    after = task_and_result(services, task_id)
    if waits:  # the re-check came first and reopened the task
        assert after != before
    else:
        assert after == before, f"archived project's result changed: {before} -> {after}"


def test_a_recheck_leaves_a_project_archived_before_it_alone(services, owner, make_project,
                                                             volunteer, monkeypatch):
    from engine.quality import recheck
    from tests.engine.test_recheck import CONTRARIAN, answer_all, set_stat, task_and_result

    project = make_project(tasks=1, min_answers=1, max_answers=3, confidence=0.8)
    spammer = volunteer()
    [task_id] = answer_all(services, project, spammer)
    before = task_and_result(services, task_id)
    set_stat(services, project.id, spammer.id, 0.1, CONTRARIAN)
    real = recheck._recheck

    def archived_first(services_, project_id, fallen):
        lifecycle.move(services, owner, project_id, "archive")  # after the check, before this
        return real(services_, project_id, fallen)

    monkeypatch.setattr(recheck, "_recheck", archived_first)
    recheck.recheck_project(services, project.id)
    assert task_and_result(services, task_id) == before
