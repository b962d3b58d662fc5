"""Live results: merge a task's counted answers, then retire it or ask for more.

Called when a task has as many counted answers as it needs. Answers are
weighted by what the engine has learnt of each volunteer (engine.quality,
re-estimated periodically): for label tasks, the task's posterior under each
volunteer's confusion matrix (Dawid-Skene); for other types, the task type's
own aggregate with reliabilities as weights. Before any estimate exists it
is a plain majority. If the merged result is confident enough the task
retires; if not, and it may still collect answers, its need rises by one;
otherwise it is contested and waits for an admin.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from engine import outbox, truth
from engine.models import Answer, Project, Result, Task, VolunteerStat, utcnow
from engine.retirement import MORE, Policy, decide
from engine.services import Services
from task_types import Aggregate, TaskType

UNKNOWN_RELIABILITY = 0.7  # a new volunteer: better than chance, not yet trusted


@dataclass(frozen=True)
class Merged:
    aggregate: Aggregate
    method: str


def update_result(services: Services, project_id: int, task_id: int) -> str:
    """Recompute one task's result; returns the task's new state."""
    with services.db.writing() as session:
        project = session.get(Project, project_id)
        task = session.get(Task, task_id)
        if task is None or task.state != "open":
            return task.state if task else "missing"
        rows = session.execute(
            select(Answer.value, VolunteerStat.reliability, VolunteerStat.confusion)
            .outerjoin(VolunteerStat, (VolunteerStat.volunteer_id == Answer.volunteer_id)
                       & (VolunteerStat.project_id == Answer.project_id))
            .where(Answer.task_id == task_id, Answer.counted.is_(True))
            .order_by(Answer.id)).all()
        task_type = services.registry.get(project.task_type)
        merged = merge(task_type, project.config, rows)
        store_result(session, task, merged.aggregate.value, merged.aggregate.confidence,
                     merged.method, merged.aggregate.support, len(rows))
        new_need = _decide(task, project, merged.aggregate.confidence, len(rows))
        recorded = outbox.task_finished(session, task, merged.aggregate.value,
                                        merged.aggregate.confidence, before="open")
    services.dispatcher.settle(project_id, task_id, new_need)
    if recorded:
        outbox.nudge(services)
    return task.state


def merge(task_type: TaskType, config: dict, rows: list[tuple[Any, Any, Any]]) -> Merged:
    """Answers (value, reliability or None, confusion or None) -> the task's result."""
    values = [value for value, _, _ in rows]
    if not any(reliability is not None for _, reliability, _ in rows):
        return Merged(task_type.aggregate(values, None, config), "majority")
    labels = task_type.labels(config)
    if labels is None:
        weights = [r if r is not None else UNKNOWN_RELIABILITY for _, r, _ in rows]
        return Merged(task_type.aggregate(values, weights, config), "weighted")
    return Merged(_posterior(task_type, labels, rows), "posterior")


def _posterior(task_type: TaskType, labels: list[str], rows) -> Aggregate:
    """The task's posterior over labels under each volunteer's confusion matrix."""
    index = {label: n for n, label in enumerate(labels)}
    codes, matrices = [], []
    for value, reliability, confusion in rows:
        label = task_type.label_of(value)
        if label not in index:
            continue
        codes.append(index[label])
        matrices.append(_matrix(confusion, reliability, len(labels)))
    if not codes:
        return Aggregate(None, 0.0, {})
    posterior = truth.posterior_from(codes, matrices)
    best = int(posterior.argmax())
    support = {label: float(p) for label, p in zip(labels, posterior, strict=True) if p > 1e-6}
    return Aggregate(labels[best], float(posterior[best]), support)


def _matrix(confusion, reliability: float | None, n_labels: int):
    if confusion is not None and len(confusion) == n_labels:
        return confusion
    r = reliability if reliability is not None else UNKNOWN_RELIABILITY
    return truth.one_coin_confusions([r], n_labels)[0]


def _decide(task: Task, project: Project, confidence: float, answers: int) -> int | None:
    """Set the task's state; the need to ask Redis for, or None to retire it."""
    policy = Policy(project.min_answers, project.max_answers, project.confidence)
    outcome = decide(policy, confidence, answers)
    if outcome == MORE:
        task.need = max(answers + 1, project.min_answers)
        return task.need
    task.state = outcome
    task.retired_at = utcnow()
    return None


def store_result(session, task: Task, value: Any, confidence: float, method: str,
                 support: dict | None = None, answers: int | None = None) -> None:
    """Create or update a task's result row (live merges and admins' settlements alike);
    `support` and `answers` left None keep what the row had."""
    result = session.get(Result, task.id) or Result(task_id=task.id, project_id=task.project_id)
    result.value, result.confidence, result.method = value, float(confidence), method
    if support is not None:
        result.support = support or None
    if answers is not None:
        result.answers = answers
    result.updated_at = utcnow()
    session.add(result)
