"""Held tasks: confident results waiting for an established volunteer's support.

engine.quality.trust keeps a result that only newcomers support from retiring
a task; at max_answers the task is held (open, out of the pool, need equal to
its counted answers). Time and gold establish volunteers, not new answers, so
nothing on the answer path would look at such a task again. They are merged
again here, and those whose volunteers are now established retire:

- soon after a volunteer passes the gold bar (``release_soon``, nudged by
  engine.quality.reliability when their gold record establishes them), and
- by the periodic quality job (workers.jobs.estimate_quality), which also
  catches volunteers established by their account's age.
"""
from __future__ import annotations

from sqlalchemy import select

from engine.projects import count_held, is_final, is_held
from engine.quality.consensus import update_result
from engine.services import Services
from engine.store.models import Project, Result, Task

__all__ = ["count_held", "held_tasks", "is_held", "release_held", "release_soon"]
PER_RUN = 5_000  # held tasks merged again per project per run; the rest wait a run
NUDGE_KEY = "bs:held:nudge:{project_id}"  # set while a release job waits for a worker
NUDGE_SECONDS = 600  # the periodic job releases anyway, should the job be lost


def held_tasks(session, project_id: int, limit: int = PER_RUN) -> list[int]:
    """A project's held tasks: open, merged, with no more answers wanted.

    An open task collecting answers always wants one more than its last merge
    counted, so ``answers >= need`` finds exactly the held ones."""
    return list(session.scalars(
        select(Task.id).join(Result, Result.task_id == Task.id)
        .where(Task.project_id == project_id, *is_held())
        .order_by(Task.id).limit(limit)))


def release_soon(services: Services, project_id: int) -> None:
    """Ask a worker to merge a project's held tasks again: a volunteer was just
    established. A burst of them enqueues one job; the key stays until it starts."""
    if services.queue_redis.set(NUDGE_KEY.format(project_id=project_id), "1", nx=True,
                                ex=NUDGE_SECONDS):
        services.queue("low").enqueue("workers.jobs.release_held_tasks", project_id)


def release_held(services: Services, project_ids: list[int] | None = None) -> dict[int, int]:
    """Merge every held task again; returns, per project, how many left the hold
    (retired, or contested when the merge is no longer confident)."""
    with services.db.session() as session:
        if project_ids is None:
            project_ids = list(session.scalars(
                select(Task.project_id).join(Result, Result.task_id == Task.id)
                .where(*is_held()).distinct()))
        else:
            for project_id in project_ids:  # merges from here on see every volunteer's standing
                services.queue_redis.delete(NUDGE_KEY.format(project_id=project_id))
        # an archived project's results are final: its held tasks stay as they are
        held = {pid: held_tasks(session, pid) for pid in project_ids
                if (project := session.get(Project, pid)) and not is_final(project)}
    released = {}
    for project_id, task_ids in held.items():
        states = [update_result(services, project_id, task_id) for task_id in task_ids]
        if task_ids:
            released[project_id] = sum(state != "open" for state in states)
    return released
