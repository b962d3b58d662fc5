"""Blocking a volunteer in a project: their answers stop counting at once, the
tasks they touched reopen for more answers, and they get no more tasks there.

Only an admin of the project's organisation may block. The answers stay in
SQL (nothing a volunteer typed is deleted); they are just no longer counted.
"""
from __future__ import annotations

from sqlalchemy import func, select, update

from engine.dispatch.rebuild import rebuild_project
from engine.errors import NotFoundError, PermissionDeniedError
from engine.identity import Identity
from engine.projects import get_owned_project
from engine.services import Services
from engine.store.models import Answer, Project, Result, Task, Volunteer, VolunteerStat, utcnow


def block(services: Services, identity: Identity, project_id: int,
          volunteer_id: int) -> int:
    """Block a volunteer in a project; returns how many tasks were reopened."""
    project = _admin_project(services, identity, project_id)
    with services.db.writing() as session:
        stat = _stat(session, project.id, volunteer_id)
        stat.blocked, stat.blocked_by, stat.blocked_at = True, identity.id, utcnow()
        touched = list(session.scalars(select(Answer.task_id).where(
            Answer.project_id == project.id, Answer.volunteer_id == volunteer_id,
            Answer.counted.is_(True))))
        session.execute(update(Answer).where(
            Answer.project_id == project.id, Answer.volunteer_id == volunteer_id)
            .values(counted=False))
        reopened = _reopen(session, project, touched)
    rebuild_project(services, project.id)
    return reopened


def unblock(services: Services, identity: Identity, project_id: int,
            volunteer_id: int) -> None:
    """Let a volunteer answer again; their earlier answers stay uncounted."""
    project = _admin_project(services, identity, project_id)
    with services.db.writing() as session:
        _stat(session, project.id, volunteer_id).blocked = False
    rebuild_project(services, project.id)


def _admin_project(services: Services, identity: Identity, project_id: int) -> Project:
    project = get_owned_project(services, identity, project_id)
    if identity.role != "admin":
        raise PermissionDeniedError("only an admin may block volunteers")
    return project


def _stat(session, project_id: int, volunteer_id: int) -> VolunteerStat:
    """A volunteer's row in a project, made if new; NotFoundError for an unknown
    volunteer (block and unblock alike: the new row's foreign key would fail)."""
    if session.get(Volunteer, volunteer_id) is None:
        raise NotFoundError(f"volunteer {volunteer_id} does not exist",
                            {"volunteer": "not found"})
    stat = session.get(VolunteerStat, (project_id, volunteer_id))
    if stat is None:
        stat = VolunteerStat(project_id=project_id, volunteer_id=volunteer_id, answers=0,
                             gold_answers=0, gold_score=0.0, flags=[], blocked=False)
        session.add(stat)
    return stat


def _reopen(session, project: Project, task_ids: list[int]) -> int:
    """Tasks that lost a counted answer ask for one more (settled and gold stay)."""
    reopened = 0
    for task in session.scalars(select(Task).where(Task.id.in_(task_ids))):
        if task.is_gold or task.state == "settled":
            continue
        counted = session.scalar(select(func.count()).select_from(Answer).where(
            Answer.task_id == task.id, Answer.counted.is_(True)))
        task.state, task.retired_at = "open", None
        task.need = max(project.min_answers, counted + 1)
        session.execute(update(Result).where(Result.task_id == task.id)
                        .values(answers=counted))
        reopened += 1
    return reopened
