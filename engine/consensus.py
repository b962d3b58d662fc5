"""Live results: merge a task's counted answers, then retire it or ask for more.

Called when a task has as many counted answers as it needs. If the merged
result is confident enough the task retires; if not, and it may still collect
answers (below max_answers), its need rises by one; otherwise it is contested
and waits for an admin.
"""
from __future__ import annotations

from sqlalchemy import select

from engine.models import Answer, Project, Result, Task, utcnow
from engine.retirement import MORE, Policy, decide
from engine.services import Services


def update_result(services: Services, project_id: int, task_id: int) -> str:
    """Recompute one task's result; returns the task's new state."""
    with services.db.writing() as session:
        project = session.get(Project, project_id)
        task = session.get(Task, task_id)
        if task is None or task.state != "open":
            return task.state if task else "missing"
        values = list(session.scalars(select(Answer.value).where(
            Answer.task_id == task_id, Answer.counted.is_(True)).order_by(Answer.id)))
        task_type = services.registry.get(project.task_type)
        merged = task_type.aggregate(values, None, project.config)
        _store_result(session, task, merged, len(values))
        new_need = _decide(task, project, merged.confidence, len(values))
    services.dispatcher.settle(project_id, task_id, new_need)
    return task.state


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


def _store_result(session, task: Task, merged, answers: int) -> None:
    result = session.get(Result, task.id) or Result(task_id=task.id, project_id=task.project_id)
    result.value = merged.value
    result.confidence = float(merged.confidence)
    result.support = merged.support or None
    result.answers = answers
    result.method = "majority"
    result.updated_at = utcnow()
    session.add(result)
