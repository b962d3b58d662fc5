"""Re-checking retired work when a volunteer turns out to be unreliable.

A task retires on the weights the engine had for its volunteers at the time
(before any estimate, a plain majority). When the periodic ``quality`` job
(workers.jobs.estimate_quality) has stored new estimates, ``recheck_projects``
looks for volunteers whose reliability is now below the project's threshold
and was not at the last check, and merges again the retired tasks they gave a
counted answer to, with the new weights (engine.quality.consensus.remerge):

- a task whose confidence fell below the project's target goes back for more
  answers (or is contested if it has ``max_answers`` already), as the policy
  decides;
- a task whose result changed reopens too, even if the new result looks
  confident: a weight that flipped the result is reason enough for another
  look (one more answer than it has; contested at ``max_answers``);
- a task whose result holds stays retired.

Each task that left ``retired`` is reported to the project's webhook as
``task.reopened`` with its old and new result, and the project's dispatch
state is rebuilt so that the reopened tasks are handed out again. Blocking or
quarantining a volunteer (engine.quality.moderation) reports the retired
tasks it reopens the same way, through ``reopened_events``.

The threshold: a volunteer right with probability 1/K on a K-label task is no
better than chance, and their answers carry next to no evidence; anyone
below 1/K + ``MARGIN`` (0.6 for two labels, about 0.43 for three) is treated
as having been trusted wrongly. Types with no label set store a gold score or
agreement as reliability, for which ``NO_LABELS_BELOW`` (0.5) plays the part.

Which volunteers were already re-checked is kept in Redis per project (a set
of volunteer ids below the threshold); one that climbs back above it leaves the
set, so a later fall is re-checked again. Losing the set (a wipe) only means
re-checking those volunteers' tasks once more, which changes nothing that
still holds.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from engine.delivery import outbox
from engine.projects import final_since, is_final
from engine.quality import audit, consensus
from engine.services import Services
from engine.store.models import Answer, Item, Project, Result, Task, VolunteerStat, utcnow
from task_types import TaskType

MARGIN = 0.1  # above chance (1/K) that a volunteer must be for their retired work to stand
NO_LABELS_BELOW = 0.5  # the threshold for task types without a label set
BELOW_KEY = "bs:quality:below:{}"  # volunteers already re-checked, per project
EVENT_TASKS = 100  # tasks per task.reopened event
CHUNK = consensus.CHUNK


def threshold(task_type: TaskType, config: dict) -> float:
    """The reliability below which a volunteer's retired work is re-checked."""
    labels = task_type.labels(config)
    if labels:
        return 1.0 / len(labels) + MARGIN
    return NO_LABELS_BELOW


@dataclass(frozen=True)
class Rechecked:
    """One project's re-check: the volunteers newly below the threshold, the
    retired tasks merged again, and those that left ``retired``."""

    fallen: list[int]
    remerged: int
    reopened: list[int]


def recheck_projects(services: Services, project_ids: Iterable[int]) -> dict[int, Rechecked]:
    """Re-check the retired work of each project's newly unreliable volunteers
    (called after the projects' estimates were stored)."""
    return {project_id: recheck_project(services, project_id) for project_id in project_ids}


def recheck_project(services: Services, project_id: int) -> Rechecked:
    key = BELOW_KEY.format(project_id)
    with services.db.session() as session:
        project = session.get(Project, project_id)
        if project is None or is_final(project):  # results are final
            return Rechecked([], 0, [])
        below_at = threshold(services.registry.get(project.task_type), project.config)
        below = set(session.scalars(select(VolunteerStat.volunteer_id).where(
            VolunteerStat.project_id == project_id, VolunteerStat.reliability.is_not(None),
            VolunteerStat.reliability < below_at)))
    known = {int(v) for v in services.redis.smembers(key)}
    fallen = sorted(below - known)
    result = Rechecked(fallen, 0, [])
    if fallen:
        result = _recheck(services, project_id, fallen)
    pipe = services.redis.pipeline()
    if fallen:
        pipe.sadd(key, *fallen)
    if known - below:
        pipe.srem(key, *(known - below))
    pipe.execute()
    return result


def _recheck(services: Services, project_id: int, fallen: list[int]) -> Rechecked:
    try:
        return _recheck_tasks(services, project_id, fallen)
    except _ArchivedMeanwhile:  # its results are final: nothing re-checked
        return Rechecked(fallen, 0, [])


class _ArchivedMeanwhile(Exception):
    """The project was archived while its tasks were re-checked: undone."""


def _recheck_tasks(services: Services, project_id: int, fallen: list[int]) -> Rechecked:
    with services.db.writing() as session:
        project = session.get(Project, project_id)
        if project is None or is_final(project):
            raise _ArchivedMeanwhile(project_id)
        task_type = services.registry.get(project.task_type)
        task_ids = _retired_tasks(session, project_id, fallen)
        old = results_of(session, task_ids)
        remerged = consensus.remerge(session, task_type, project, task_ids)
        changes, reopened = [], []
        for change in remerged.changes:
            task = session.get(Task, change.task_id)
            result = session.get(Result, change.task_id)
            before = old.get(change.task_id, (None, 0.0))
            if task.state == "retired" and result is not None and result.value != before[0]:
                _reopen(task, result.answers or 0, project)
            changes.append(consensus.Change(task.id, change.before, task.state, task.need,
                                            change.counted))
            if change.before == "retired" and task.state != "retired":
                reopened.append(reopened_entry(task, before, result))
        recorded = record_reopened(session, project_id, reopened) or remerged.recorded
        if reopened:
            audit.record(session, project, "reopen", None, reason=(
                f"{len(reopened)} retired task(s) changed or fell below the confidence "
                "target once these volunteers' reliability fell"),
                detail={"volunteers": fallen, "tasks": [t["id"] for t in reopened][:1000]})
        if final_since(session, project_id):
            raise _ArchivedMeanwhile(project_id)
    consensus.sync_dispatch(services, project_id, consensus.Remerged(changes, recorded))
    if recorded:
        outbox.nudge(services)
    return Rechecked(fallen, len(remerged.changes), [t["id"] for t in reopened])


def _retired_tasks(session, project_id: int, volunteers: list[int]) -> list[int]:
    """Retired tasks with a counted answer of one of these volunteers."""
    ids: set[int] = set()
    for start in range(0, len(volunteers), CHUNK):
        ids.update(session.scalars(
            select(Answer.task_id).distinct().join(Task, Task.id == Answer.task_id)
            .where(Answer.project_id == project_id, Answer.counted.is_(True),
                   Answer.volunteer_id.in_(volunteers[start:start + CHUNK]),
                   Task.state == "retired", Task.is_gold.is_(False))))
    return sorted(ids)


def results_of(session, task_ids: list[int]) -> dict[int, tuple[Any, float]]:
    out: dict[int, tuple[Any, float]] = {}
    for start in range(0, len(task_ids), CHUNK):
        out.update((task_id, (value, confidence)) for task_id, value, confidence in
                   session.execute(select(Result.task_id, Result.value, Result.confidence)
                                   .where(Result.task_id.in_(task_ids[start:start + CHUNK]))))
    return out


def _reopen(task: Task, answers: int, project: Project) -> None:
    """A retired task whose result changed: one more answer, or an admin's look."""
    if answers < project.max_answers:
        task.state, task.retired_at = "open", None
        task.need = max(answers + 1, project.min_answers)
    else:
        task.state, task.retired_at = "contested", utcnow()


def reopened_entry(task: Task, before: tuple[Any, float], result: Result | None) -> dict[str, Any]:
    value = result.value if result is not None else None
    confidence = float(result.confidence) if result is not None else 0.0
    return {"id": task.id, "item": task.item_id, "state": task.state, "need": task.need,
            "reason": "result_changed" if value != before[0] else "low_confidence",
            "old": {"value": before[0], "confidence": float(before[1] or 0.0)},
            "new": {"value": value, "confidence": confidence}}


def record_reopened(session, project_id: int, reopened: list[dict[str, Any]]) -> bool:
    """task.reopened events, up to EVENT_TASKS tasks each, with the items' refs."""
    if not reopened or not outbox.subscribed(session, project_id, "task.reopened"):
        return False
    items = sorted({t["item"] for t in reopened})
    refs: dict[int, Any] = {}
    for start in range(0, len(items), CHUNK):
        refs.update(session.execute(select(Item.id, Item.ref).where(
            Item.id.in_(items[start:start + CHUNK]))).all())
    for task in reopened:
        task["ref"] = refs.get(task["item"])
    for start in range(0, len(reopened), EVENT_TASKS):
        outbox.record(session, project_id, "task.reopened",
                      {"tasks": reopened[start:start + EVENT_TASKS]})
    return True


def reopened_events(session, project_id: int, old: dict[int, tuple[Any, float]],
                    changes: list[consensus.Change]) -> bool:
    """task.reopened for the tasks of a remerge that left ``retired``, given
    their results before it (``results_of``); True if events were recorded."""
    ids = [change.task_id for change in changes
           if change.before == "retired" and change.after != "retired"]
    reopened = []
    for start in range(0, len(ids), CHUNK):  # a query per chunk, not two per task
        part = ids[start:start + CHUNK]
        tasks = {task.id: task for task in session.scalars(select(Task).where(
            Task.id.in_(part)))}
        results = consensus.loaded_results(session, part)
        reopened += [reopened_entry(tasks[task_id], old.get(task_id, (None, 0.0)),
                                    results.get(task_id)) for task_id in part]
    return record_reopened(session, project_id, reopened)
