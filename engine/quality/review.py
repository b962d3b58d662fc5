"""The review queue: what the crowd could not settle, and an admin settling it.

A contested task reached max_answers below the confidence target. The queue
shows every answer with who gave it and how reliable they are, and the vote
distribution; a resolution settles the task, and a settled task then serves
as gold for measuring volunteers.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from engine.answers import load_answer
from engine.delivery import outbox
from engine.dispatch.rebuild import take_out
from engine.errors import ConflictError
from engine.identity import Identity
from engine.projects import (
    get_owned_project,
    owned_project_of_task,
    task_project_unless_final,
)
from engine.quality import audit, reports
from engine.quality.consensus import store_result, withdrawn_by_reports
from engine.services import Services
from engine.store.models import (
    Answer,
    Item,
    Project,
    Result,
    Task,
    VolunteerStat,
    iso,
    utcnow,
)

REVIEWABLE = ("contested", "open", "retired")


def review_queue(services: Services, identity: Identity, project_id: int,
                 limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """Contested tasks of a project, oldest first, with everything needed to judge them."""
    project = get_owned_project(services, identity, project_id)
    with services.db.session() as session:
        contested = (select(Task).where(Task.project_id == project.id,
                                        Task.state == "contested"))
        total = session.scalar(select(func.count()).select_from(contested.subquery()))
        tasks = list(session.scalars(contested.order_by(Task.id).limit(limit).offset(offset)))
        entries = [_entry(session, task) for task in tasks]
    return {"total": total, "limit": limit, "offset": offset, "tasks": entries}


def _entry(session, task: Task) -> dict[str, Any]:
    result = session.get(Result, task.id)
    rows = session.execute(
        select(Answer, VolunteerStat.reliability)
        .outerjoin(VolunteerStat, (VolunteerStat.volunteer_id == Answer.volunteer_id)
                   & (VolunteerStat.project_id == Answer.project_id))
        .where(Answer.task_id == task.id).order_by(Answer.id)).all()
    ref = session.scalar(select(Item.ref).where(Item.id == task.item_id))
    return {
        "id": task.id, "item": task.item_id, "ref": ref, "payload": task.payload,
        "state": task.state,
        "result": None if result is None else {
            "value": result.value, "confidence": result.confidence, "method": result.method},
        "distribution": (result.support if result else None) or {},
        "answers": [{"id": a.id, "volunteer": a.volunteer_id, "value": a.value,
                     "counted": a.counted, "reliability": reliability,
                     "created_at": iso(a.created_at)} for a, reliability in rows],
    }


def resolve(services: Services, identity: Identity, task_id: int,
            raw_answer: Any, note: str = "") -> Task:
    """Settle a task with an admin's answer: final result, and gold from now on."""
    with services.db.writing() as session:
        task = session.get(Task, task_id, with_for_update=True)
        project = owned_project_of_task(services, identity, task, task_id)
        project = task_project_unless_final(session, project.id)
        if task.is_gold or task.state not in REVIEWABLE:
            raise ConflictError(f"task {task_id} is {'gold' if task.is_gold else task.state}"
                                " and cannot be settled", {"task": "not reviewable"})
        value = _settled_value(services, project, raw_answer)
        before = task.state
        _settle(session, task, identity, value)
        audit.record(session, project, "settle", identity.id, task_id=task.id, reason=note,
                     detail={"value": value, "was": before})
        recorded = outbox.task_finished(session, task, value, 1.0, before)
    take_out(services, task.project_id, task.id)
    if recorded:
        outbox.nudge(services)
    return task


def _settled_value(services: Services, project: Project, raw_answer: Any) -> Any:
    task_type = services.registry.get(project.task_type)
    answer = load_answer(task_type.answer_schema(project.config), raw_answer)
    return task_type.aggregate([answer], None, project.config).value


def _settle(session, task: Task, identity: Identity, value: Any) -> None:
    """The admin's answer is the result; its count of answers is what counts now."""
    counted = session.scalar(select(func.count()).select_from(Answer).where(
        Answer.task_id == task.id, Answer.counted.is_(True)))
    store_result(session, task, value, 1.0, "settled", answers=counted)
    task.state, task.gold = "settled", value
    task.settled_by, task.retired_at = identity.id, utcnow()
    reports.resolve_reports(session, task.id)  # the task is dealt with


# -- one task on the quality desk (web.console.contested) ---------------------


def task_under_review(services: Services, identity: Identity, task_id: int) -> dict[str, Any]:
    """One task as staff judge it on the quality desk: the review queue's
    entry (every answer, who gave it, their reliability), its project and item,
    and the contested tasks before and after it in the project's queue, so the
    desk can step through the queue (J/K) without going back to the inbox.

    Whoever may settle it may look (its organisation's staff, platform admins,
    as ``resolve``); another organisation's task looks missing, the error naming
    the task only, not the project it is in."""
    with services.db.session() as session:
        task = session.get(Task, task_id)
        project = owned_project_of_task(services, identity, task, task_id)
        entry = _entry(session, task)
        entry.update(item=task.item_id, is_gold=task.is_gold, settled_by=task.settled_by,
                     reports=reports.open_reports(session, task.id),
                     # contested by volunteers' reports rather than by the crowd's answers
                     withdrawn=task.state == "contested" and bool(
                         withdrawn_by_reports(session, project, [task.id])),
                     previous=_neighbour(session, task, later=False),
                     next=_neighbour(session, task, later=True))
    return {"project": project, "task": entry}


def next_contested(services: Services, identity: Identity, project_id: int,
                   after: int) -> int | None:
    """The contested task to judge once ``after`` is done: the next one in the
    queue, else the first one left (skipped earlier); None when none is left."""
    project = get_owned_project(services, identity, project_id)
    query = (select(Task.id).where(Task.project_id == project.id, Task.state == "contested")
             .order_by(Task.id).limit(1))
    with services.db.session() as session:
        return (session.scalar(query.where(Task.id > after))
                or session.scalar(query.where(Task.id != after)))


def _neighbour(session, task: Task, later: bool) -> int | None:
    """The contested task of the same project just after (or before) this one
    in the queue's order (oldest first, by id)."""
    query = select(Task.id).where(Task.project_id == task.project_id,
                                  Task.state == "contested")
    if later:
        return session.scalar(query.where(Task.id > task.id).order_by(Task.id).limit(1))
    return session.scalar(query.where(Task.id < task.id).order_by(Task.id.desc()).limit(1))
