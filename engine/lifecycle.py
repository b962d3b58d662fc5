"""A project's life: its states, the moves between them, edits, and deleting a draft.

States: draft (only its organisation sees it) -> active (volunteers get its
tasks) <-> paused -> completed -> archived (final). Each move is checked
here, in one table, so the API and the console refuse the same things with
the same reason; after each one the project is mirrored into Redis
(engine.dispatch.rebuild.republish), since only active projects hand out tasks.

Edits are refused when they would change what volunteers' existing answers
mean. The rule is generic, read off the task type's config schema, so a
third-party type gets it without code of its own: once a project has
answers, list fields (labels, tags) may gain entries but not lose or rename
any, free-text fields (question, instructions, unit) are wording and may
change, and any other field (a shape, a bound, a choice, synonyms) is fixed.
"""
from __future__ import annotations

import contextlib
from typing import Any

from marshmallow import Schema, ValidationError, fields
from marshmallow.validate import OneOf
from sqlalchemy import delete, exists, select

from engine.dispatch.rebuild import republish
from engine.errors import BitesizeError, ConflictError, InvalidError
from engine.identity import Identity
from engine.intake.uploads import options_name
from engine.projects import (
    ProjectView,
    get_owned_project,
    locked_project,
    project_missing,
    project_view,
    refuse_if_final,
)
from engine.services import Services
from engine.store.models import (
    Answer,
    AuditEntry,
    Handout,
    Item,
    Job,
    NewsSubscription,
    Project,
    ProjectNews,
    Result,
    Task,
    TaskReport,
    VolunteerStat,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
)

STATES = ("draft", "active", "paused", "completed", "archived")
# action -> (the states it may start from, the state it leads to)
MOVES: dict[str, tuple[tuple[str, ...], str]] = {
    "publish": (("draft", "paused", "completed"), "active"),
    "pause": (("active",), "paused"),
    "complete": (("active", "paused"), "completed"),
    "archive": (("active", "paused", "completed"), "archived"),
}
# What each state means, for refusals that say why.
MEANING = {
    "draft": "it is a draft",
    "active": "it is active",
    "paused": "it is paused",
    "completed": "it is completed",
    "archived": "it is archived, and archiving is final",
}
# The project's own settings an edit may change (the task type never changes).
EDITABLE = ("name", "description", "min_answers", "max_answers", "confidence",
            "lease_seconds", "strategy", "gold_start", "gold_floor", "gold_ramp",
            "tutorial", "field_guide", "translations")


def actions(state: str) -> list[str]:
    """The moves open to a project in ``state``, in MOVES' order, "delete" last."""
    found = [name for name, (starts, _) in MOVES.items() if state in starts]
    return found + (["delete"] if state == "draft" else [])


def move(services: Services, identity: Identity, project_id: int, action: str) -> ProjectView:
    """Publish, pause, complete or archive a project; ConflictError naming the
    current state when the move is not open from it."""
    if action not in MOVES:
        raise InvalidError(f"unknown action {action!r}; one of {', '.join(MOVES)}",
                           {"action": "unknown"})
    starts, target = MOVES[action]
    get_owned_project(services, identity, project_id)  # 404 for anyone else's
    with services.db.writing() as session:
        project = locked_project(session, project_id)
        if project.state not in starts:
            raise ConflictError(_refusal(action, project.state), {"state": project.state})
        project.state = target
    republish(services, project_id)  # archived: its tasks leave Redis
    return project_view(services, project)


def publish_project(services: Services, identity: Identity, project_id: int) -> ProjectView:
    return move(services, identity, project_id, "publish")


def pause_project(services: Services, identity: Identity, project_id: int) -> ProjectView:
    return move(services, identity, project_id, "pause")


def complete_project(services: Services, identity: Identity, project_id: int) -> ProjectView:
    return move(services, identity, project_id, "complete")


def archive_project(services: Services, identity: Identity, project_id: int) -> ProjectView:
    return move(services, identity, project_id, "archive")


def _refusal(action: str, state: str) -> str:
    starts = MOVES[action][0]
    return (f"cannot {action} this project: {MEANING.get(state, f'it is {state}')} "
            f"(only a project that is {' or '.join(starts)} can be {_past(action)})")


def _past(action: str) -> str:
    return {"publish": "published", "pause": "paused", "complete": "marked completed",
            "archive": "archived", "delete": "deleted"}[action]


def _refuse_unless_draft(project: Project) -> None:
    if project.state != "draft":
        raise ConflictError(
            f"cannot delete this project: {MEANING.get(project.state, project.state)} "
            "(only a draft can be deleted; archive it instead)", {"state": project.state})


def _hold_off_new_rows(session, project_id: int) -> None:
    """Lock the project fully, so that no row pointing at it is added while its
    rows are deleted (one added between the deletes made the project's own
    delete fail on the foreign key), and so that a move, an edit, a block's
    step or a split's batch waits for the deletion or it for them. Writers that
    lock a row of their own and then the project (a job finishing: its row,
    its event, the project for project.completed; a webhook attempt: its
    event, then its delivery; a batch: its job, then the project shared; a
    settlement: its task, then the project) have those rows locked first, in
    that order and each table by id: locking the project first deadlocked with
    them on PostgreSQL."""
    session.execute(select(Job.id).where(Job.project_id == project_id)
                    .order_by(Job.id).with_for_update())
    session.execute(select(WebhookEvent.id).where(WebhookEvent.project_id == project_id)
                    .order_by(WebhookEvent.id).with_for_update())
    session.execute(select(Task.id).where(Task.project_id == project_id)
                    .order_by(Task.id).with_for_update())
    session.execute(select(Project.id).where(Project.id == project_id).with_for_update())


def _keep_audit(session, project: Project, user_id: int) -> None:
    """The audit log is kept for good, a deleted draft's entries too (an
    organisation-wide block writes one in each draft): they lose their project
    and task, which go, and say which project they were about; an entry says
    who deleted it."""
    deleted = {"id": project.id, "name": project.name}
    for entry in session.scalars(select(AuditEntry).where(AuditEntry.project_id == project.id)):
        entry.project_id, entry.task_id = None, None
        entry.detail = {**(entry.detail or {}), "deleted_project": deleted}
    session.add(AuditEntry(organisation_id=project.organisation_id, project_id=None,
                           user_id=user_id, action="delete_draft", reason="",
                           detail={"deleted_project": deleted}))
    session.flush()  # before the project's rows go


def delete_draft(services: Services, identity: Identity, project_id: int) -> None:
    """Remove a draft and everything it holds (rows, uploaded files, Redis
    state). Only drafts: a project volunteers have seen keeps its answers;
    archive it instead."""
    _refuse_unless_draft(get_owned_project(services, identity, project_id))
    with services.db.writing() as session:
        _hold_off_new_rows(session, project_id)
        project = session.get(Project, project_id)
        if project is None:  # deleted by someone else since
            raise project_missing(project_id)
        _refuse_unless_draft(project)  # published since, perhaps
        jobs = session.execute(select(Job.id, Job.source).where(
            Job.project_id == project_id)).all()
        _keep_audit(session, project, identity.id)
        task_ids = select(Task.id).where(Task.project_id == project_id).scalar_subquery()
        event_ids = (select(WebhookEvent.id).where(WebhookEvent.project_id == project_id)
                     .scalar_subquery())
        # Children before parents, so foreign keys hold at every step.
        for statement in (
            delete(WebhookDelivery).where(WebhookDelivery.event_id.in_(event_ids)),
            delete(WebhookDelivery).where(WebhookDelivery.project_id == project_id),
            delete(WebhookEvent).where(WebhookEvent.project_id == project_id),
            delete(Webhook).where(Webhook.project_id == project_id),
            delete(Handout).where(Handout.task_id.in_(task_ids)),
            delete(Handout).where(Handout.project_id == project_id),
            delete(Answer).where(Answer.project_id == project_id),
            delete(TaskReport).where(TaskReport.project_id == project_id),
            delete(NewsSubscription).where(NewsSubscription.project_id == project_id),
            delete(ProjectNews).where(ProjectNews.project_id == project_id),
            delete(Result).where(Result.project_id == project_id),
            delete(VolunteerStat).where(VolunteerStat.project_id == project_id),
            delete(Task).where(Task.project_id == project_id),
            delete(Item).where(Item.project_id == project_id),
            delete(Job).where(Job.project_id == project_id),
            delete(Project).where(Project.id == project_id),
        ):
            session.execute(statement.execution_options(synchronize_session=False))
    services.dispatcher.drop_project(project_id)
    for job_id, source in jobs:  # the uploads behind its jobs; a missing one is fine
        for name in (source, options_name(job_id)):
            if name and "/" not in name and ".." not in name:  # always ours: job-ID.ext
                with contextlib.suppress(OSError, BitesizeError):
                    services.uploads.delete(name)


def update_project(services: Services, identity: Identity, project_id: int,
                   data: dict[str, Any]) -> ProjectView:
    """Change a project's settings and config (only the keys given; ``config``
    keys are merged into the current config, then validated by the task type;
    ``quality`` keys, the flag thresholds, into the project's).

    InvalidError, by field, for an invalid config, max_answers below
    min_answers, or a config change that would change what existing answers
    mean (see the module's docstring).
    """
    unknown = sorted(set(data) - set(EDITABLE) - {"config", "quality"})
    if unknown:
        raise InvalidError(f"these cannot be edited: {', '.join(unknown)}",
                           {name: ["cannot be edited"] for name in unknown})
    get_owned_project(services, identity, project_id)
    with services.db.writing() as session:
        project = locked_project(session, project_id)  # two edits merge in turn
        refuse_if_final(project)
        task_type = services.registry.get(project.task_type)
        changes = {key: data[key] for key in EDITABLE if key in data}
        low = changes.get("min_answers", project.min_answers)
        high = changes.get("max_answers", project.max_answers)
        if high < low:
            raise InvalidError("max_answers must be at least min_answers",
                               {"max_answers": ["smaller than min_answers"]})
        if "config" in data:
            raw = {**project.config, **(data["config"] or {})}
            try:
                config = task_type.load_config(raw, stored=project.config)
            except ValidationError as exc:
                raise InvalidError("the project config is not valid",
                                   {"config": exc.messages}) from exc
            answered = session.scalar(select(exists().where(Answer.project_id == project_id)))
            if answered:
                refused = answer_breaking_changes(task_type.config_schema(),
                                                  _reloaded(task_type, project.config), config)
                if refused:
                    first = next(iter(refused.values()))[0]
                    raise InvalidError(first, {"config": refused})
            changes["config"] = config
        if data.get("quality"):  # flag thresholds: the keys given, over the project's
            changes["quality"] = {**(project.quality or {}), **data["quality"]}
        for key, value in changes.items():
            setattr(project, key, value)
    republish(services, project_id)
    return project_view(services, project)


def _reloaded(task_type, config: dict) -> dict:
    """The stored config as today's schema reads it (defaults added since
    filled in), so a field nobody touched never looks changed."""
    try:
        return task_type.load_config(config)
    except ValidationError:
        return config


def answer_breaking_changes(schema: Schema, old: dict, new: dict) -> dict[str, list[str]]:
    """{field: [why]} for each change from ``old`` to ``new`` config that would
    change how answers already given are read; empty when the edit is safe."""
    refused: dict[str, list[str]] = {}
    for name, field in schema.fields.items():
        key = field.data_key or name
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        label = readable(name)
        if isinstance(field, fields.Nested) and isinstance(field.schema, Schema):
            nested = answer_breaking_changes(field.schema, before or {}, after or {})
            if nested:
                refused[key] = [f"{label}: " + " ".join(m for msgs in nested.values()
                                                       for m in msgs)]
            continue
        if isinstance(field, fields.List) and isinstance(before, list):
            gone = [entry for entry in before if entry not in (after or [])]
            if gone:
                names = ", ".join(repr(entry) for entry in gone)
                refused[key] = [f"{label} cannot lose {names} once volunteers have answered: "
                                "answers are stored by these entries, and results and "
                                "exports read them so. You may add new entries, not "
                                "remove or rename any."]
            continue
        if _is_wording(field):
            continue
        refused[key] = [f"{label} cannot change once volunteers have answered: it changes "
                        "how their answers are read."]
    return refused


def _is_wording(field: fields.Field) -> bool:
    """Free text shown to volunteers (a question, instructions, a unit): not a
    string that picks one of a few choices (a shape, a method)."""
    if not isinstance(field, fields.String):
        return False
    validators = getattr(field, "validators", ())
    return not any(isinstance(v, OneOf) for v in validators)


def readable(name: str) -> str:
    """A field name as people write it: "max_tags" -> "Max tags"."""
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]
