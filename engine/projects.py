"""Projects: create them, show them with progress, and mirror them into Redis.

A charity's projects are private to its organisation; volunteers (and the
public list) see only active ones.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import func, select

from engine.dispatch.dispatcher import GoldMix, ProjectMeta, ProjectMissingError
from engine.errors import ConflictError, InvalidError, NotFoundError, PermissionDeniedError
from engine.identity import Identity
from engine.services import Services
from engine.store.models import (
    Job,
    Organisation,
    OrganisationBlock,
    Project,
    Result,
    Task,
    VolunteerStat,
    utcnow,
)

PUBLIC_STATES = ("active",)
# What a project may start as: the API makes active ones (as it always has),
# the console drafts that only the organisation sees until published.
START_STATES = ("draft", "active")


@dataclass(frozen=True)
class ProjectView:
    project: Project
    progress: dict[str, int]


def create_project(services: Services, identity: Identity, data: dict[str, Any]) -> ProjectView:
    """Validate the type's config and store the project: active at once unless
    ``data["state"]`` is "draft" (see engine.lifecycle for what follows)."""
    identity.require_user()
    data = dict(data)
    state = data.pop("state", None) or "active"
    if state not in START_STATES:
        raise InvalidError(f"a project starts as {' or '.join(START_STATES)}, not {state!r}",
                           {"state": "not a starting state"})
    task_type = services.registry.get(data["task_type"])
    try:
        config = task_type.load_config(data.get("config") or {})
    except ValidationError as exc:
        raise InvalidError("the project config is not valid",
                           {"config": exc.messages}) from exc
    if data["max_answers"] < data["min_answers"]:
        raise InvalidError("max_answers must be at least min_answers",
                           {"max_answers": "smaller than min_answers"})
    project = Project(organisation_id=identity.organisation_id, config=config, state=state,
                      **{k: v for k, v in data.items() if k != "config"})
    given = None
    try:
        with services.db.writing() as session:
            lock_organisation(session, identity.organisation_id)
            session.add(project)
            session.flush()
            given = project.id
            # In Redis before the commit (and before the meta, which says
            # "complete"): an unblock that lists this project waits for the
            # organisation's row until the commit, so its removal comes after.
            services.dispatcher.block(given, _blocked_from_start(session, project))
    except BaseException:
        if given is not None:  # not stored, and SQLite may give the id again
            services.dispatcher.drop_project(given)
        raise
    publish(services, project)
    return ProjectView(project, _empty_progress())


# PostgreSQL's FOR NO KEY UPDATE (SQLAlchemy's with_for_update(key_share=True)):
# one holder at a time, and readers of the row shared wait for it; inserts of rows
# that point at it (their foreign key's KEY SHARE) do not.
NO_KEY_UPDATE = {"key_share": True}


def lock_organisation(session, organisation_id: int) -> None:
    """Hold the organisation's row until the transaction ends. A block at
    organisation scope and a new project take it, so that one of them sees the
    other: the block lists the project, or the project finds the block."""
    session.execute(select(Organisation.id).where(Organisation.id == organisation_id)
                    .with_for_update(**NO_KEY_UPDATE))  # rows referring to it may still be added


def _blocked_from_start(session, project: Project) -> list[int]:
    """The volunteers blocked in every project of the organisation
    (OrganisationBlock), blocked in this new one too; returns their ids."""
    rows = session.execute(select(OrganisationBlock.volunteer_id, OrganisationBlock.blocked_by)
                           .where(OrganisationBlock.organisation_id == project.organisation_id)
                           ).all()
    for volunteer_id, blocked_by in rows:
        session.add(VolunteerStat(project_id=project.id, volunteer_id=volunteer_id, answers=0,
                                  flags=[], blocked=True, blocked_by=blocked_by,
                                  blocked_at=utcnow()))
    return [volunteer_id for volunteer_id, _ in rows]


@dataclass(frozen=True)
class ProjectTexts:
    """A project as volunteers read it in one language: the charity's own words
    in that language where it gave them (Project.translations), else as written.
    `config` is the project's, with its question and instructions replaced;
    `label_names` shows a label in that language (answers keep the label)."""

    id: int
    name: str
    description: str
    task_type: str
    config: dict
    tutorial: list[str]
    field_guide: str
    label_names: dict[str, str]


def in_language(project: Project, lang: str) -> ProjectTexts:
    given = (project.translations or {}).get(lang) or {}
    config = dict(project.config)
    for key in ("question", "instructions"):
        if given.get(key) and key in config:
            config[key] = given[key]
    return ProjectTexts(project.id, given.get("name") or project.name,
                        given.get("description") or project.description or "",
                        project.task_type, config,
                        given.get("tutorial") or project.tutorial or [],
                        given.get("field_guide") or project.field_guide or "",
                        dict(given.get("labels") or {}))


def names_in_language(services: Services, project_ids: list[int], lang: str) -> dict[int, str]:
    """The names the charities gave these projects in `lang`, where they gave one."""
    if not project_ids:
        return {}
    with services.db.session() as session:
        rows = session.execute(select(Project.id, Project.translations).where(
            Project.id.in_(project_ids)))
        return {pid: given[lang]["name"] for pid, given in rows
                if given and (given.get(lang) or {}).get("name")}


def get_project(services: Services, identity: Identity | None, project_id: int) -> Project:
    """The project if this caller may see it; a hidden one looks like a missing one."""
    with services.db.session() as session:
        project = session.get(Project, project_id)
    if project is None or not can_see(identity, project):
        raise project_missing(project_id)
    return project


def project_missing(project_id: int) -> NotFoundError:
    """What a caller hears of a project that does not exist, or is not theirs."""
    return ProjectMissingError(project_id)


FINAL_STATE = "archived"  # engine.lifecycle: no move leaves it


def is_final(project: Project) -> bool:
    """Archiving is final (engine.lifecycle): an archived project's results,
    tasks and settings no longer change, nor does its state in Redis."""
    return project.state == FINAL_STATE


def final_since(session, project_id: int) -> bool:
    """At the end of a transaction that merged some of a project's tasks again:
    whether the project is archived (or gone), read shared after the tasks (the
    order merges lock them in), so that an archive committed while they were
    merged is seen, and the caller rolls back (archived results are final),
    and one not yet committed waits for the transaction."""
    state = session.scalar(select(Project.state).where(Project.id == project_id)
                           .with_for_update(read=True))
    return state is None or state == FINAL_STATE


def refuse_if_final(project: Project) -> None:
    """Nothing that would change a final project's results, tasks or settings
    (an edit, an upload, a settle, a block or a clear there) is taken."""
    if is_final(project):
        raise ConflictError(f"project {project.id} is archived, and archiving is final: its "
                            "results, tasks and settings no longer change",
                            {"state": "archived"})


def locked_project(session, project_id: int) -> Project:
    """The project's row, locked FOR NO KEY UPDATE (NO_KEY_UPDATE) as moves and
    edits lock it: one of them at a time (two moves at once each saw the old
    state, and a pause undid an archive), and a block's step or a split's
    batch, which read it shared, waits for them or they for it. NotFoundError
    for a draft deleted since."""
    project = session.get(Project, project_id, with_for_update=NO_KEY_UPDATE)
    if project is None:
        raise project_missing(project_id)
    return project


def task_project_unless_final(session, project_id: int) -> Project:
    """A task's project in a transaction that has locked the task first (the
    order merges lock them in), locked as an archive locks it: an archive at
    the same moment is waited for and seen (409), so a settlement, a report or
    a dismissal never changes a task of an archived project."""
    project = locked_project(session, project_id)
    refuse_if_final(project)
    return project


def get_owned_project(services: Services, identity: Identity, project_id: int) -> Project:
    """The project if this caller manages it: its organisation owns it, or the
    caller is a platform admin. Any other project, public or not, is reported
    missing, not forbidden: a 403 would confirm that it exists."""
    identity.require_user()
    project = get_project(services, identity, project_id)
    if not owns(identity, project):
        raise project_missing(project_id)
    return project


def owned_project_of_task(services: Services, identity: Identity, task: Task | None,
                          task_id: int) -> Project:
    """The project of a task the caller's organisation owns. Another charity's task
    looks missing, and the error names the task only, not the project it is in."""
    identity.require_user()
    try:
        if task is not None:
            return get_owned_project(services, identity, task.project_id)
    except NotFoundError:
        pass
    raise NotFoundError(f"task {task_id} does not exist", {"task": "not found"})


def get_moderated_project(services: Services, identity: Identity, project_id: int) -> Project:
    """The project if this caller may make its admin-only quality calls (block):
    404 as get_owned_project for a project it does not manage, 403 for a charity
    member of the owning organisation (it may see that the project exists)."""
    project = get_owned_project(services, identity, project_id)
    if not identity.moderates(project.organisation_id):
        raise PermissionDeniedError("only an admin may do this")
    return project


def can_see(identity: Identity | None, project: Project) -> bool:
    return project.state in PUBLIC_STATES or (identity is not None and owns(identity, project))


def owns(identity: Identity, project: Project) -> bool:
    """Whether the caller may make every owner call on the project (engine.identity
    decides: its organisation's staff, and platform admins)."""
    return identity.manages(project.organisation_id)


def list_projects(services: Services, identity: Identity | None,
                  with_work: bool = False) -> list[ProjectView]:
    """The projects this caller may see; with ``with_work``, only those with an
    open task left (the volunteer home page: nothing there should be a dead end)."""
    with services.db.session() as session:
        query = select(Project).order_by(Project.id)
        views = _views(session, [p for p in session.scalars(query) if can_see(identity, p)])
    return [v for v in views if v.progress["open"] > 0] if with_work else views


def managed_projects(services: Services, identity: Identity) -> list[ProjectView]:
    """Every project in any state this caller manages (the console's list): its
    organisation's, or every organisation's for a platform admin."""
    identity.require_user()
    return every_project(services, None if identity.is_platform_admin
                         else identity.organisation_id)


def every_project(services: Services, organisation_id: int | None = None) -> list[ProjectView]:
    """Every project in any state, for the server's operator (the command line);
    one organisation's if given."""
    query = select(Project).order_by(Project.id)
    if organisation_id is not None:
        query = query.where(Project.organisation_id == organisation_id)
    with services.db.session() as session:
        return _views(session, list(session.scalars(query)))


def _views(session, projects: list[Project]) -> list[ProjectView]:
    progress = _progress(session, [p.id for p in projects])
    return [ProjectView(p, progress.get(p.id, _empty_progress())) for p in projects]


def project_view(services: Services, project: Project) -> ProjectView:
    with services.db.session() as session:
        progress = _progress(session, [project.id])
    return ProjectView(project, progress.get(project.id, _empty_progress()))


def _progress(session, project_ids: list[int]) -> dict[int, dict[str, int]]:
    """Task counts by state, and jobs still running, per project. ``held`` counts
    the open tasks no volunteer can help (engine.quality.held): only time and
    the volunteers' gold record finish them."""
    if not project_ids:
        return {}
    out = {pid: _empty_progress() for pid in project_ids}
    rows = session.execute(
        select(Task.project_id, Task.state, func.count())
        .where(Task.project_id.in_(project_ids), Task.is_gold.is_(False))
        .group_by(Task.project_id, Task.state))
    for pid, state, count in rows:
        out[pid][state] = count
        out[pid]["tasks"] += count
    jobs = session.execute(
        select(Job.project_id, func.count())
        .where(Job.project_id.in_(project_ids), Job.state.in_(("queued", "running")))
        .group_by(Job.project_id))
    for pid, count in jobs:
        out[pid]["jobs_running"] = count
    for pid, count in count_held(session, project_ids).items():
        out[pid]["held"] = count
    for progress in out.values():
        # A contested task still waits for a person: not done until it is settled.
        finished = progress["retired"] + progress["settled"]
        progress["done_percent"] = round(100 * finished / max(progress["tasks"], 1))
    return out


def is_held() -> tuple:
    """The SQL conditions of a held task (on Task joined to its Result): open,
    merged, with no more answers wanted (engine.quality.held). An open task
    collecting answers always wants one more than its last merge counted, so
    ``answers >= need`` finds exactly the held ones."""
    return (Task.state == "open", Task.is_gold.is_(False), Result.answers >= Task.need)


def count_held(session, project_ids: list[int]) -> dict[int, int]:
    """How many of each project's tasks are held: open, but no volunteer can
    help them (only time and the volunteers' gold record finish them)."""
    return dict(session.execute(
        select(Task.project_id, func.count()).join(Result, Result.task_id == Task.id)
        .where(Task.project_id.in_(project_ids), *is_held())
        .group_by(Task.project_id)).all())


def _empty_progress() -> dict[str, int]:
    return {"tasks": 0, "open": 0, "retired": 0, "contested": 0, "settled": 0,
            "held": 0, "jobs_running": 0, "done_percent": 0}


def sample_payload(services: Services, project_id: int) -> dict[str, Any] | None:
    """The payload of the project's first task (from its first upload), gold last;
    None before anything is uploaded. The console's preview shows it."""
    with services.db.session() as session:
        return session.scalar(select(Task.payload).where(Task.project_id == project_id)
                              .order_by(Task.is_gold, Task.id).limit(1))


def lease_seconds(services: Services, project: Project) -> int:
    if project.lease_seconds:
        return project.lease_seconds
    return services.registry.get(project.task_type).lease_seconds


def config_version(project) -> str:
    """What publish mirrors as the project's version: a hash of its task type,
    config and quality thresholds, so that whatever a process keeps from them
    (the answer schema, engine.quality.project_settings) is keyed by it and
    goes stale when any of them changes."""
    return _digest({"type": project.task_type, "config": project.config,
                    "quality": project.quality or {}})


def _digest(value) -> str:
    return hashlib.sha1(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


def publish(services: Services, project: Project, present_only: bool = False) -> None:
    """Mirror what the hot path needs about a project into Redis (with
    `present_only`, only where Redis still holds the project's state). A change
    to a project that exists publishes through engine.dispatch.rebuild.republish,
    which orders it with rebuilds."""
    services.dispatcher.set_meta(ProjectMeta(
        project.id, project.state == "active", project.task_type,
        lease_seconds(services, project), project.config, config_version(project),
        project.strategy,
        GoldMix(project.gold_start, project.gold_floor, project.gold_ramp),
        project.state == "draft"), present_only)


def _config_only_version(config: dict) -> str:
    """The version publish wrote before config_version hashed the task type and
    thresholds too (up to schema 0019)."""
    return _digest(config)


def refresh_versions(services: Services) -> int:
    """Give the projects whose version in Redis is in the form written before
    config_version hashed type and thresholds the version their row hashes to;
    returns how many. Run by the periodic quality job: such a version never
    matches, and engine.quality.project_settings then reads SQL on every answer
    it serves (safe, only slow).

    Redis is read first, then SQL: only a version that is the older hash of the
    row read after it (so Redis's config is SQL's) is replaced, by the version
    alone, and only while Redis still has it (Dispatcher.replace_version).
    The meta's other fields are never written here, so a pause or an edit
    published meanwhile (by a process of either code) stands; a version that
    is neither form of the row's (a change on its way to Redis) is left to the
    publish that follows it."""
    with services.db.session() as session:
        project_ids = list(session.scalars(select(Project.id)))
    held = services.dispatcher.versions(project_ids)
    refreshed = 0
    for row in _settings_rows(services):  # after Redis: every project, no IN list
        current = config_version(row)
        if row.id not in held or held[row.id] == current or \
                held[row.id] != _config_only_version(row.config):
            continue
        if services.dispatcher.replace_version(row.id, held[row.id], current):
            refreshed += _kept_or_undone(services, row.id, held[row.id], current)
    return refreshed


def _settings_rows(services: Services) -> list:
    with services.db.session() as session:
        return session.execute(select(Project.id, Project.task_type, Project.config,
                                      Project.quality)).all()


def _kept_or_undone(services: Services, project_id: int, older: str, current: str) -> bool:
    """After refresh_versions replaced a version: a process of the old code may
    have changed the thresholds since the row was read, which its publish (of
    the same older version) does not show. Read the row again: changed, the
    older version goes back (the caches then read SQL, as before). A change
    committed after this read is published after it, over the version."""
    with services.db.session() as session:
        project = session.get(Project, project_id)
        if project is not None and config_version(project) == current:
            return True
    services.dispatcher.replace_version(project_id, current, older)
    return False
