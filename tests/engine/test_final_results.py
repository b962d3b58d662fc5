"""Archiving is final, and a platform-wide block stands above a project's or an
organisation's admin: what a security review found changing after both."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from engine import lifecycle
from engine.errors import ConflictError, NotFoundError
from engine.identity import Identity, create_user
from engine.intake.jobs import create_job
from engine.quality import moderation
from engine.quality.review import resolve
from engine.store.models import Answer, Result, User
from engine.volunteering import next_task, submit_answer


def platform_admin(services) -> Identity:
    user_id, _ = create_user(services, "Bitesize Ops", "platform-admin")
    with services.db.session() as session:
        return Identity("user", user_id, session.get(User, user_id).organisation_id,
                        "platform-admin")


def answered(services, project, volunteer, label: str = "a") -> int:
    handout = next_task(services, volunteer, project.id)
    submit_answer(services, volunteer, handout.task_id, handout.lease, {"label": label})
    return handout.task_id


def result_of(services, task_id: int):
    with services.db.session() as session:
        row = session.scalar(select(Result).where(Result.task_id == task_id))
        return None if row is None else (row.value, round(row.confidence, 3))


def counted(services, volunteer_id: int) -> list[bool]:
    with services.db.session() as session:
        return list(session.scalars(select(Answer.counted).where(
            Answer.volunteer_id == volunteer_id)))


def test_nothing_changes_an_archived_projects_results(services, make_project, volunteer,
                                                      owner, admin):
    project = make_project(tasks=2, min_answers=2, max_answers=2)
    first, second = volunteer(), volunteer()
    task_id = answered(services, project, first, "a")
    answered(services, project, second, "b")
    lifecycle.archive_project(services, owner, project.id)
    before = result_of(services, task_id)
    refused = [
        lambda: lifecycle.update_project(services, owner, project.id, {"min_answers": 1}),
        lambda: create_job(services, owner, project.id, items=[{"text": "late"}]),
        lambda: resolve(services, owner, task_id, {"label": "b"}),
        lambda: moderation.block(services, admin, project.id, first.id, "project"),
        lambda: moderation.quarantine_volunteer(services, admin, project.id, first.id),
        lambda: moderation.clear(services, admin, project.id, first.id),
    ]
    for call in refused:
        with pytest.raises(ConflictError) as caught:
            call()
        assert caught.value.fields == {"state": "archived"}
    # a block at a wider scope blocks them elsewhere and leaves the archive alone
    other = make_project(tasks=2, min_answers=2, max_answers=2)
    answered(services, other, first)
    moderation.block(services, admin, other.id, first.id, "organisation")
    assert result_of(services, task_id) == before
    with services.db.session() as session:
        answers = session.scalars(select(Answer).where(Answer.volunteer_id == first.id))
        by_project = {a.project_id: a.counted for a in answers}
    assert by_project == {project.id: True, other.id: False}


def test_a_platform_block_is_not_undone_by_a_project_admin(services, make_project, volunteer,
                                                           admin):
    project = make_project(tasks=2, min_answers=2, max_answers=2)
    v = volunteer()
    answered(services, project, v)
    moderation.block(services, platform_admin(services), project.id, v.id, "platform")
    assert counted(services, v.id) == [False]
    for scope in ("project", "organisation"):
        with pytest.raises(ConflictError) as caught:
            moderation.unblock(services, admin, project.id, v.id, scope)
        assert caught.value.fields == {"scope": "blocked platform-wide"}
    assert counted(services, v.id) == [False]
    moderation.unblock(services, platform_admin(services), project.id, v.id, "platform")
    assert counted(services, v.id) == [True]


def test_quarantining_by_hand_says_when_nothing_changed(services, make_project, volunteer,
                                                       admin):
    project = make_project(tasks=2)
    v = volunteer()
    answered(services, project, v)
    moderation.block(services, admin, project.id, v.id, "project")
    with pytest.raises(ConflictError):
        moderation.quarantine_volunteer(services, admin, project.id, v.id)


def test_clearing_a_stranger_is_as_unknown_as_blocking_them(services, make_project, volunteer,
                                                            admin):
    project = make_project(tasks=2)
    stranger = volunteer()  # never handed a task by this organisation
    for call in (moderation.block, moderation.clear):
        with pytest.raises(NotFoundError):
            call(services, admin, project.id, stranger.id)


def test_an_organisation_block_covers_the_projects_it_makes_later(services, make_project,
                                                                  volunteer, admin):
    """It blocked them in the projects of that moment only: a project made after
    handed them tasks and counted their answers."""
    first = make_project(tasks=2)
    v = volunteer()
    answered(services, first, v)
    moderation.block(services, admin, first.id, v.id, "organisation")
    later = make_project(tasks=2)
    assert next_task(services, v, later.id) is None
    services.redis.flushdb()  # a rebuild reads the block back from SQL
    assert next_task(services, v, later.id) is None
    moderation.unblock(services, admin, first.id, v.id, "organisation")
    assert next_task(services, v, later.id) is not None
    assert next_task(services, v, make_project(tasks=2).id) is not None


def test_reports_and_jobs_leave_an_archived_project_alone(services, make_project, volunteer,
                                                          owner):
    """A security review's second look: dismissing reports re-merged a task
    there, and a job queued before the archive (or run again) added tasks."""
    from engine.intake.jobs import rerun_job, run_job
    from engine.quality.reports import dismiss_reports, file_report
    from engine.store.models import Job, Task

    project = make_project(tasks=2)
    v = volunteer()
    handout = next_task(services, v, project.id)
    file_report(services, project.id, handout.task_id, v.id, "offensive")
    job = create_job(services, owner, project.id, items=[{"text": "late"}], enqueue=False)
    lifecycle.archive_project(services, owner, project.id)
    with pytest.raises(ConflictError):
        dismiss_reports(services, owner, handout.task_id)
    run_job(services, job.id)
    with services.db.session() as session:
        assert session.get(Job, job.id).state == "failed"
        assert "archived" in session.get(Job, job.id).error
        assert len(session.scalars(select(Task.id).where(
            Task.project_id == project.id)).all()) == 2
    with pytest.raises(ConflictError):
        rerun_job(services, owner, job.id)


def test_a_platform_block_from_an_archived_projects_page_is_in_the_audit_log(
        services, make_project, volunteer):
    """It changes nothing there, but ends the volunteer's tokens: with every
    project they answered in archived, it once left no audit entry at all."""
    from engine.store.models import AuditEntry

    project = make_project(tasks=2)
    v = volunteer()
    answered(services, project, v)
    platform = platform_admin(services)
    lifecycle.archive_project(services, platform, project.id)
    moderation.block(services, platform, project.id, v.id, "platform")
    moderation.unblock(services, platform, project.id, v.id, "platform")
    with services.db.session() as session:
        logged = session.execute(select(AuditEntry.action, AuditEntry.project_id).where(
            AuditEntry.volunteer_id == v.id).order_by(AuditEntry.id)).all()
    assert [tuple(row) for row in logged] == [("block", project.id), ("unblock", project.id)]


def test_a_job_running_when_its_project_is_archived_adds_no_more(services, make_project,
                                                                 owner, monkeypatch):
    """The archive was checked once, when the job began: a long upload went on
    adding every batch after it."""
    from engine.intake import jobs
    from engine.store.models import Job, Task

    project = make_project(tasks=2)
    job = create_job(services, owner, project.id, items=[{"text": f"x{n}"} for n in range(3)],
                     enqueue=False)
    insert = jobs._insert

    def archived_first(*args):
        lifecycle.archive_project(services, owner, project.id)
        return insert(*args)

    monkeypatch.setattr(jobs, "_insert", archived_first)
    with pytest.raises(ConflictError):
        jobs.run_job(services, job.id)
    with services.db.session() as session:
        assert session.get(Job, job.id).state == "failed"
        assert session.get(Job, job.id).error == jobs.ARCHIVED_DURING_JOB
        assert len(session.scalars(select(Task.id).where(
            Task.project_id == project.id)).all()) == 2
