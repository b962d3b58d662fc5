"""Held tasks: confident results waiting for an established volunteer's support.

engine.quality.trust keeps a result that only newcomers support from retiring
a task; at max_answers the task is held (open, out of the pool, need equal to
its counted answers). Time and gold establish volunteers, not new answers, so
nothing on the answer path would look at such a task again: the periodic
quality job (workers.jobs.estimate_quality) merges every held task again here,
and those whose volunteers are now established retire.
"""
from __future__ import annotations

from sqlalchemy import func, select

from engine.quality.consensus import update_result
from engine.services import Services
from engine.store.models import Result, Task

PER_RUN = 5_000  # held tasks merged again per project per run; the rest wait a run


def held_tasks(session, project_id: int, limit: int = PER_RUN) -> list[int]:
    """A project's held tasks: open, merged, with no more answers wanted.

    An open task collecting answers always wants one more than its last merge
    counted, so ``answers >= need`` finds exactly the held ones."""
    return list(session.scalars(
        select(Task.id).join(Result, Result.task_id == Task.id)
        .where(Task.project_id == project_id, Task.state == "open",
               Task.is_gold.is_(False), Result.answers >= Task.need)
        .order_by(Task.id).limit(limit)))


def count_held(services: Services, project_id: int) -> int:
    """How many of a project's tasks are held: for the project page's quality panel."""
    with services.db.session() as session:
        return session.scalar(
            select(func.count()).select_from(Task).join(Result, Result.task_id == Task.id)
            .where(Task.project_id == project_id, Task.state == "open",
                   Task.is_gold.is_(False), Result.answers >= Task.need))


def release_held(services: Services, project_ids: list[int] | None = None) -> dict[int, int]:
    """Merge every held task again; returns, per project, how many left the hold
    (retired, or contested when the merge is no longer confident)."""
    with services.db.session() as session:
        if project_ids is None:
            project_ids = list(session.scalars(
                select(Task.project_id).join(Result, Result.task_id == Task.id)
                .where(Task.state == "open", Result.answers >= Task.need).distinct()))
        held = {pid: held_tasks(session, pid) for pid in project_ids}
    released = {}
    for project_id, task_ids in held.items():
        states = [update_result(services, project_id, task_id) for task_id in task_ids]
        if task_ids:
            released[project_id] = sum(state != "open" for state in states)
    return released
