"""Blocking a volunteer in a project: their answers stop counting at once, the
tasks they touched are merged again without them (reopening for more answers
where the policy asks), and they get no more tasks there; unblocking counts
their answers again and merges those tasks again.

Quarantine is the same without the admin: a volunteer flagged in a project
(engine.quality.reliability) is quarantined there at once: their answers stop
counting and the tasks are merged again, but they still get tasks (a script
cannot tell), until an admin blocks them (in the project, in every project of
its organisation, or platform-wide) or clears them (their answers count again).

Only an admin of the project's organisation, or a platform admin, may block,
quarantine or clear (engine.projects.get_moderated_project); only a platform
admin may block platform-wide. The answers stay in SQL (nothing a volunteer
typed is deleted); they are just no longer counted.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update

from engine.dispatch.rebuild import rebuild_lock
from engine.errors import ConflictError, InvalidError, NotFoundError, PermissionDeniedError
from engine.identity import (
    BLOCKED,
    Identity,
    revoking,
    trust_token_again,
    volunteer_token_hashes,
)
from engine.projects import (
    FINAL_STATE,
    get_moderated_project,
    is_final,
    lock_organisation,
    project_missing,
    refuse_if_final,
)
from engine.quality import audit, remerging
from engine.services import Services
from engine.store.models import (
    Answer,
    AuditEntry,
    Handout,
    OrganisationBlock,
    Project,
    Volunteer,
    VolunteerStat,
    utcnow,
)

SCOPES = ("project", "organisation", "platform")


def block(services: Services, identity: Identity, project_id: int,
          volunteer_id: int, scope: str = "project", reason: str = "") -> int:
    """Block a volunteer in a project, in every project of its organisation
    (those it makes later too: OrganisationBlock), or (platform admins only)
    everywhere: their token stops working and they are blocked in every
    project they answered in. Returns how many tasks reopened.
    Each project it blocks them in gets an entry in the audit log."""
    project = _scoped(services, identity, project_id, scope)
    why = _Why(identity.id, scope, reason, project.id)
    with revoking(services) as forget, services.db.writing() as session:
        volunteer = _known_volunteer(session, identity, project, volunteer_id)
        if scope == "project":
            projects = [project.id]
        elif scope == "organisation":
            lock_organisation(session, project.organisation_id)  # no project made meanwhile
            projects = list(session.scalars(select(Project.id).where(
                Project.organisation_id == project.organisation_id)))
            if session.get(OrganisationBlock, (project.organisation_id, volunteer_id)) is None:
                session.add(OrganisationBlock(organisation_id=project.organisation_id,
                                              volunteer_id=volunteer_id,
                                              blocked_by=identity.id))
        else:
            volunteer.blocked = True
            projects = sorted({project.id, *session.scalars(select(Answer.project_id).where(
                Answer.volunteer_id == volunteer_id).distinct())})
            # every process refuses their tokens from now on, saying why
            forget(volunteer_token_hashes(session, volunteer_id), BLOCKED)
        projects = _not_final(session, projects)
        _audit_if_final(session, project, "block", volunteer_id, why, projects)
    return sum(_block_in(services, pid, volunteer_id, why) for pid in projects)


@dataclass(frozen=True)
class _Why:
    """Who acted, at which scope, why, and from which project's page: what each
    affected project's audit entry says."""

    user_id: int
    scope: str
    reason: str
    acted_from: int


def _block_in(services: Services, project_id: int, volunteer_id: int, why: _Why) -> int:
    """One project's block (the caller checked who may): no more tasks, answers
    not counted, the touched tasks merged again; a quarantine ends in it. Its
    audit entry is written in the same transaction as the recount."""
    with rebuild_lock(services, project_id):
        with services.db.writing() as session:
            if not _still_to_take(session, project_id, volunteer_id, why, blocking=True):
                return 0
            services.dispatcher.block(project_id, [volunteer_id])  # first: no answer slips by
            stat = stat_row(session, project_id, volunteer_id)
            if not stat.blocked or why.scope == "project":  # who made the block that stands
                stat.blocked_by, stat.blocked_at = why.user_id, utcnow()
            stat.blocked = True
            stat.blocked_here = stat.blocked_here or why.scope == "project"
            stat.quarantined_at = None
            touched = _recount(session, project_id, volunteer_id, counted=False)
            mark = remerging.begin(session, stat, touched, -1, _audit(
                session, project_id, "block", volunteer_id, why,
                {"tasks_remerged": len(touched)}))
        remerging.recount(services, project_id, volunteer_id, mark)
    return remerging.merge_again(services, project_id, volunteer_id, mark).reopened


def quarantine(services: Services, project_id: int, volunteer_id: int,
               reasons: list[str], user_id: int | None = None, note: str = "") -> bool:
    """Stop counting a flagged volunteer's answers in a project at once, merge the
    tasks they touched again, and list them for review; they still get tasks.
    No admin needed (the flags decide: ``user_id`` None in the audit log);
    False if already quarantined or blocked."""
    with rebuild_lock(services, project_id):
        with services.db.writing() as session:
            if is_final(session.get(Project, project_id)):
                return False
            services.dispatcher.mute(project_id, [volunteer_id])  # first: no answer slips by
            stat = stat_row(session, project_id, volunteer_id)
            if stat.blocked or stat.quarantined_at is not None:
                return False
            stat.quarantined_at, stat.quarantine_reasons = utcnow(), sorted(set(reasons))
            stat.flags = sorted(set(stat.flags or []) | set(reasons) - {"manual"})
            touched = _recount(session, project_id, volunteer_id, counted=False)
            entry = audit.record(session, session.get(Project, project_id), "quarantine",
                                 user_id, volunteer_id, scope="project",
                                 reason=note or ", ".join(sorted(set(reasons))),
                                 detail={"flags": sorted(set(reasons)),
                                         "tasks_remerged": len(touched)})
            mark = remerging.begin(session, stat, touched, -1, entry)
        remerging.recount(services, project_id, volunteer_id, mark)
    remerging.merge_again(services, project_id, volunteer_id, mark)
    return True


def quarantine_volunteer(services: Services, identity: Identity, project_id: int,
                         volunteer_id: int, reason: str = "") -> bool:
    """An admin quarantines a volunteer by hand (flag "manual"); 409 if they
    are quarantined or blocked here already."""
    project = _admin_project(services, identity, project_id)
    refuse_if_final(project)
    with services.db.session() as session:
        _known_volunteer(session, identity, project, volunteer_id)
    if not quarantine(services, project.id, volunteer_id, ["manual"], identity.id,
                      reason or "quarantined by hand"):
        raise ConflictError(f"volunteer {volunteer_id} is already quarantined or blocked here",
                            {"volunteer": "already quarantined or blocked"})
    return True


def clear(services: Services, identity: Identity, project_id: int,
          volunteer_id: int, reason: str = "") -> int:
    """An admin finds a quarantined volunteer honest: their answers count again,
    the tasks are merged again, and their flags start again from their next
    answers (so the old ones do not quarantine them at once). Returns how many
    tasks were merged again; 409 if they are not quarantined."""
    project = _admin_project(services, identity, project_id)
    refuse_if_final(project)
    with rebuild_lock(services, project.id):
        with services.db.writing() as session:
            _known_volunteer(session, identity, project, volunteer_id)
            stat = stat_row(session, project.id, volunteer_id)
            if stat.quarantined_at is None:
                raise ConflictError(f"volunteer {volunteer_id} is not quarantined here",
                                    {"volunteer": "not quarantined"})
            was = stat.quarantine_reasons or []
            stat.quarantined_at, stat.quarantine_reasons = None, None
            stat.cleared_at, stat.flags = utcnow(), []
            touched = _recount(session, project.id, volunteer_id, counted=True)
            audit.record(session, project, "clear", identity.id, volunteer_id, scope="project",
                         reason=reason, detail={"flags": was, "tasks_remerged": len(touched)})
            mark = remerging.begin(session, stat, touched, 1)
        services.dispatcher.unmute(project.id, [volunteer_id])
        remerging.recount(services, project.id, volunteer_id, mark)
    return len(remerging.merge_again(services, project.id, volunteer_id, mark).changes)


def unblock(services: Services, identity: Identity, project_id: int,
            volunteer_id: int, scope: str = "project", reason: str = "") -> int:
    """Let a volunteer answer again, in this project, in every project of its
    organisation they are blocked in, or (platform admins) everywhere, their
    token working again: their answers count again and the tasks they answered
    are re-merged (some may retire, or reopen). An organisation's unblock ends
    its projects' own blocks too (its admins decide for all of them); a
    platform unblock ends the platform's block alone: a charity's own blocks,
    of a project or organisation-wide, stand. Returns how many tasks were
    re-merged."""
    project = _scoped(services, identity, project_id, scope)
    why = _Why(identity.id, scope, reason, project.id)
    with services.db.writing() as session:
        volunteer = _known_volunteer(session, identity, project, volunteer_id)
        if volunteer.blocked and scope != "platform":
            raise _blocked_platform_wide(volunteer_id)
        if scope == "platform" and not volunteer.blocked:  # it would end nothing
            raise ConflictError(f"volunteer {volunteer_id} is not blocked platform-wide",
                                {"scope": "not blocked platform-wide"})
        blocked_in = select(VolunteerStat.project_id).where(
            VolunteerStat.volunteer_id == volunteer_id, VolunteerStat.blocked.is_(True))
        if scope == "project":
            projects = [project.id]
        elif scope == "organisation":
            lock_organisation(session, project.organisation_id)  # no project made meanwhile
            projects = list(session.scalars(blocked_in.join(
                Project, Project.id == VolunteerStat.project_id).where(
                Project.organisation_id == project.organisation_id)))
            session.execute(delete(OrganisationBlock).where(
                OrganisationBlock.organisation_id == project.organisation_id,
                OrganisationBlock.volunteer_id == volunteer_id))
        else:
            volunteer.blocked = False
            digests = volunteer_token_hashes(session, volunteer_id)
            projects = sorted({project.id, *session.scalars(blocked_in)})
        projects = _not_final(session, projects)
        _audit_if_final(session, project, "unblock", volunteer_id, why, projects)
    if scope == "platform":
        for digest in digests:  # blocking platform-wide tombstoned them
            trust_token_again(services, digest)
    return sum(_unblock_in(services, pid, volunteer_id, why) for pid in projects)


def _unblock_in(services: Services, project_id: int, volunteer_id: int, why: _Why) -> int:
    with rebuild_lock(services, project_id):
        with services.db.writing() as session:
            if not _still_to_take(session, project_id, volunteer_id, why, blocking=False):
                return 0
            stat = stat_row(session, project_id, volunteer_id)
            standing = _block_left_standing(session, stat, why.scope)
            if standing:
                if why.scope == "organisation":  # it ends the project's own block
                    stat.blocked_here = False
                _audit(session, project_id, "unblock", volunteer_id, why,
                       {"tasks_remerged": 0, "still_blocked": standing})
                return 0
            was_blocked = stat.blocked
            touched = _recount(session, project_id, volunteer_id, counted=True) \
                if was_blocked else []
            stat.blocked = stat.blocked_here = False
            _audit(session, project_id, "unblock", volunteer_id, why,
                   {"tasks_remerged": len(touched)})
            mark = remerging.begin(session, stat, touched, 1)
        if was_blocked:  # a block ended any quarantine: their answers count again
            services.dispatcher.unmute(project_id, [volunteer_id])
            remerging.recount(services, project_id, volunteer_id, mark)
    return len(remerging.merge_again(services, project_id, volunteer_id, mark).changes)


def still_blocked(services: Services, project_id: int, volunteer_id: int) -> bool:
    """Whether the volunteer is blocked in this project at any scope: after a
    platform unblock the project's own block or its organisation's may stand,
    and the admin who unblocked is told so."""
    with services.db.session() as session:
        return bool(session.scalar(select(VolunteerStat.blocked).where(
            VolunteerStat.project_id == project_id,
            VolunteerStat.volunteer_id == volunteer_id)))


def block_scopes(session, project: Project, blocked_here: dict[int, bool]) -> dict[int, str | None]:
    """The widest scope each volunteer is blocked at, seen from this project
    ("platform", "organisation", "project" or None), from whether each is blocked
    in it. An admin must see an organisation-wide block: it also blocks the
    volunteer in projects made later, and only an organisation-scope unblock
    lifts it. Wider blocks are read by the project's stat rows (a block at any
    scope makes one), not by an IN list as long as the project's crowd."""
    here = select(VolunteerStat.volunteer_id).where(VolunteerStat.project_id == project.id,
                                                    VolunteerStat.blocked.is_(True))
    platform = set(session.scalars(select(Volunteer.id).where(
        Volunteer.id.in_(here), Volunteer.blocked.is_(True))))
    organisation = set(session.scalars(select(OrganisationBlock.volunteer_id).where(
        OrganisationBlock.organisation_id == project.organisation_id,
        OrganisationBlock.volunteer_id.in_(here))))
    return {vid: "platform" if vid in platform else "organisation" if vid in organisation
            else "project" if blocked else None for vid, blocked in blocked_here.items()}


def _still_to_take(session, project_id: int, volunteer_id: int, why: _Why,
                   blocking: bool) -> bool:
    """Whether one project's step of a block (``blocking``) or unblock is still to
    be taken, judged in the step's own transaction under the project's rebuild
    lock. A block or unblock at a wider scope lists its projects first and acts
    on each after; meanwhile a draft may be deleted, a project archived, or
    another admin may undo the wider action. The project's row is read shared
    and the wider block's row locked, so that an archive, a deletion or the
    other admin's action waits for this step or this step sees it: the action
    that came last decides. At project scope the admin asked for this project
    alone, so they are told (404, 409) rather than the step passed by."""
    project = session.get(Project, project_id, with_for_update={"read": True})
    if why.scope == "project":
        if project is None:
            raise project_missing(project_id)
        refuse_if_final(project)
        if not blocking:
            _refuse_if_blocked_wider(session, project, volunteer_id)
        return True
    if project is None or is_final(project):
        return False
    return _wider_block_stands(session, project, volunteer_id, why.scope) == blocking


def _block_left_standing(session, stat: VolunteerStat, scope: str) -> str | None:
    """The block that keeps the volunteer blocked in this project after an
    unblock's step at this wider scope, if any: a platform unblock leaves the
    project's own block and its organisation's; an organisation's unblock
    leaves a platform block (made since it listed its projects: only a
    platform unblock lifts it). The unblock's step then changes nothing but
    says so in the project's audit log."""
    project = session.get(Project, stat.project_id)
    if scope == "platform":
        if stat.blocked_here:
            return "project"
        if _wider_block_stands(session, project, stat.volunteer_id, "organisation"):
            return "organisation"
    elif scope == "organisation" and _platform_blocked(session, stat.volunteer_id):
        return "platform"
    return None


def _wider_block_stands(session, project: Project, volunteer_id: int, scope: str) -> bool:
    """Whether the volunteer's block at this wider scope is in force now: the
    organisation's block row (its organisation row locked, as block and unblock
    lock it), or the volunteer's platform flag (their row read shared)."""
    if scope == "organisation":
        lock_organisation(session, project.organisation_id)
        return session.get(OrganisationBlock, (project.organisation_id, volunteer_id)) \
            is not None
    return _platform_blocked(session, volunteer_id)


def _platform_blocked(session, volunteer_id: int) -> bool:
    return bool(session.scalar(select(Volunteer.blocked).where(Volunteer.id == volunteer_id)
                               .with_for_update(read=True)))


def _refuse_if_blocked_wider(session, project: Project, volunteer_id: int) -> None:
    """Unblocking in one project a volunteer blocked organisation-wide would leave
    the block quietly in force in every other project, and in those made later;
    one blocked platform-wide only a platform admin unblocks, everywhere at once."""
    if _platform_blocked(session, volunteer_id):
        raise _blocked_platform_wide(volunteer_id)
    if _wider_block_stands(session, project, volunteer_id, "organisation"):
        raise ConflictError(
            f"volunteer {volunteer_id} is blocked in every project of this organisation: "
            "unblock them at organisation scope", {"scope": "blocked organisation-wide"})


def _blocked_platform_wide(volunteer_id: int) -> ConflictError:
    return ConflictError(
        f"volunteer {volunteer_id} is blocked platform-wide: only a platform admin "
        "can unblock them, everywhere at once", {"scope": "blocked platform-wide"})


def _scoped(services: Services, identity: Identity, project_id: int, scope: str) -> Project:
    """The project an admin acts from, once the scope is one they may act at."""
    if scope not in SCOPES:
        raise InvalidError(f"scope must be one of {', '.join(SCOPES)}",
                           {"scope": "unknown scope"})
    project = _admin_project(services, identity, project_id)
    if scope == "platform" and not identity.is_platform_admin:
        raise PermissionDeniedError("only a platform admin may act platform-wide")
    if scope == "project":
        refuse_if_final(project)
    return project


def _audit_if_final(session, project: Project, action: str, volunteer_id: int, why: _Why,
                    projects: list[int]) -> None:
    """The audit entry of an action taken from an archived project's page, which
    changes nothing there (its results are final) but may change much
    elsewhere (a platform block ends the volunteer's tokens): each project it
    changes has its own entry, and the one it was taken from has this one."""
    if is_final(project) and project.id not in projects:
        _audit(session, project.id, action, volunteer_id, why, {"tasks_remerged": 0})


def _not_final(session, project_ids: list[int]) -> list[int]:
    """Those of these projects whose results may still change: a block or an
    unblock at a wider scope leaves an archived project's final results alone."""
    if not project_ids:
        return []
    return sorted(session.scalars(select(Project.id).where(
        Project.id.in_(project_ids), Project.state != FINAL_STATE)))


def _audit(session, project_id: int, action: str, volunteer_id: int, why: _Why,
           detail: dict) -> AuditEntry:
    return audit.record(session, session.get(Project, project_id), action, why.user_id,
                 volunteer_id, scope=why.scope, reason=why.reason,
                 detail={**detail, "acted_from": why.acted_from})


def _known_volunteer(session, identity: Identity, project: Project,
                     volunteer_id: int) -> Volunteer:
    """The volunteer, if they were handed a task (every answer was) in a project of
    the project's organisation
    (any project, for a platform admin): an admin may not act on, nor learn of,
    a volunteer who never worked for their organisation (404, as if unknown)."""
    volunteer = _volunteer(session, volunteer_id)
    if identity.is_platform_admin:
        return volunteer
    worked_here = session.scalar(
        select(Handout.task_id).join(Project, Project.id == Handout.project_id)
        .where(Handout.volunteer_id == volunteer_id,
               Project.organisation_id == project.organisation_id).limit(1))
    if worked_here is None:
        raise NotFoundError(f"volunteer {volunteer_id} does not exist",
                            {"volunteer": "not found"})
    return volunteer


def _volunteer(session, volunteer_id: int) -> Volunteer:
    volunteer = session.get(Volunteer, volunteer_id)
    if volunteer is None:
        raise NotFoundError(f"volunteer {volunteer_id} does not exist",
                            {"volunteer": "not found"})
    return volunteer


def _recount(session, project_id: int, volunteer_id: int, counted: bool) -> list[int]:
    """Make all of a volunteer's answers in a project count (or not); returns the
    tasks whose answer changed, to merge again."""
    touched = list(session.scalars(select(Answer.task_id).where(
        Answer.project_id == project_id, Answer.volunteer_id == volunteer_id,
        Answer.counted.is_(not counted))))
    session.execute(update(Answer).where(
        Answer.project_id == project_id, Answer.volunteer_id == volunteer_id)
        .values(counted=counted))
    return touched


def _admin_project(services: Services, identity: Identity, project_id: int) -> Project:
    try:
        return get_moderated_project(services, identity, project_id)
    except PermissionDeniedError as exc:
        raise PermissionDeniedError(
            "only an admin may block, quarantine or clear volunteers") from exc


def stat_row(session, project_id: int, volunteer_id: int) -> VolunteerStat:
    """A volunteer's row in a project, made if new; NotFoundError for an unknown
    volunteer (block, unblock, quarantine, clear: the new row's foreign key would fail)."""
    _volunteer(session, volunteer_id)
    stat = session.get(VolunteerStat, (project_id, volunteer_id))
    if stat is None:
        stat = VolunteerStat(project_id=project_id, volunteer_id=volunteer_id, answers=0,
                             gold_answers=0, gold_score=0.0, flags=[], blocked=False)
        session.add(stat)
    return stat
