"""Blocking a volunteer in a project: their answers stop counting at once, the
tasks they touched are merged again without them (reopening for more answers
where the policy asks), and they get no more tasks there; unblocking counts
their answers again and merges those tasks again.

Only an admin of the project's organisation, or a platform admin, may block
(engine.projects.get_moderated_project). The answers stay in SQL (nothing a
volunteer typed is deleted); they are just no longer counted.
"""
from __future__ import annotations

from sqlalchemy import select, update

from engine.delivery import outbox
from engine.dispatch.rebuild import rebuild_project
from engine.errors import NotFoundError, PermissionDeniedError
from engine.identity import Identity
from engine.projects import get_moderated_project
from engine.quality import consensus
from engine.services import Services
from engine.store.models import Answer, Project, Volunteer, VolunteerStat, utcnow


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
        remerged = _remerge(services, session, project.id, touched)
    _after(services, project.id, remerged)
    return remerged.reopened


def unblock(services: Services, identity: Identity, project_id: int,
            volunteer_id: int) -> int:
    """Let a volunteer answer again: if they were blocked, all their answers in
    the project count again and the tasks they answered are re-merged (some may
    retire, or reopen). Returns how many tasks were re-merged."""
    project = _admin_project(services, identity, project_id)
    with services.db.writing() as session:
        stat = _stat(session, project.id, volunteer_id)
        touched: list[int] = []
        if stat.blocked:
            touched = list(session.scalars(select(Answer.task_id).where(
                Answer.project_id == project.id, Answer.volunteer_id == volunteer_id,
                Answer.counted.is_(False))))
            session.execute(update(Answer).where(
                Answer.project_id == project.id, Answer.volunteer_id == volunteer_id)
                .values(counted=True))
        stat.blocked = False
        remerged = _remerge(services, session, project.id, touched)
    _after(services, project.id, remerged)
    return len(remerged.changes)


def _remerge(services: Services, session, project_id: int,
             task_ids: list[int]) -> consensus.Remerged:
    """The touched tasks merged again from what counts now, in the same transaction."""
    project = session.get(Project, project_id)
    return consensus.remerge(session, services.registry.get(project.task_type), project,
                             task_ids)


def _after(services: Services, project_id: int, remerged: consensus.Remerged) -> None:
    """Once committed: dispatch rebuilt from SQL, webhook events on their way."""
    rebuild_project(services, project_id)
    if remerged.recorded:
        outbox.nudge(services)


def _admin_project(services: Services, identity: Identity, project_id: int) -> Project:
    try:
        return get_moderated_project(services, identity, project_id)
    except PermissionDeniedError as exc:
        raise PermissionDeniedError("only an admin may block volunteers") from exc


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
