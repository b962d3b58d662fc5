"""A project's items with their merged results, for the console: a page of
them at a time, finished ones first, and one item with its tasks, their
answers and where the result lies on its picture. Only the page's tasks and
the one item's answers are read row by row; the page is found, and items
counted by state, with grouped queries.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select

from engine.delivery.exports import part_of
from engine.errors import NotFoundError
from engine.services import Services
from engine.store.models import Answer, Item, Project, Result, Task, aware
from task_types import TaskResult

ITEM_STATES = ("open", "contested", "settled", "retired")
PAGE_SIZE = 50

@dataclass(frozen=True)
class ItemResult:
    """One item's row of the results table: its merged (combined) result."""

    item_id: int
    ref: str | None
    state: str
    value: Any
    text: str  # the value as its type writes it in a CSV cell
    confidence: float
    tasks: int
    tasks_done: int
    data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ResultPage:
    rows: list[ItemResult]
    page: int
    has_next: bool
    counts: dict[str, int]  # items by state, for the filter


_RANK = {"retired": 0, "settled": 1, "contested": 2, "open": 3}
ITEM_STATES_BY_RANK = {rank: state for state, rank in _RANK.items()}


def _rank():
    """An item's state as a rank over its grouped tasks (results first: retired
    0, settled 1, contested 2, open 3): open while any task is open, then
    contested while any waits for an admin, settled if an admin settled any."""
    def count(state: str):
        return func.sum(case((Task.state == state, 1), else_=0))

    return case((count("open") > 0, 3), (count("contested") > 0, 2),
                (count("settled") > 0, 1), else_=0)


def result_page(services: Services, project: Project, state: str | None = None,
                page: int = 1, size: int = PAGE_SIZE) -> ResultPage:
    """A page of the project's items with their merged results, finished ones
    first (then in upload order); ``state`` keeps items of one state
    (ITEM_STATES). Grouped queries find the page and count items by state;
    only the page's tasks are read."""
    rank = _rank()
    items = (select(Task.item_id, rank.label("rank"))
             .where(Task.project_id == project.id, Task.is_gold.is_(False))
             .group_by(Task.item_id))
    chosen = items if state is None else items.having(rank == _RANK[state])
    page = max(page, 1)
    with services.reader.session() as session:
        listed = chosen.subquery()
        found = list(session.scalars(
            select(listed.c.item_id).order_by(listed.c.rank, listed.c.item_id)
            .limit(size + 1).offset((page - 1) * size)))
        every = items.subquery()
        counts = {ITEM_STATES_BY_RANK[r]: int(n) for r, n in session.execute(
            select(every.c.rank, func.count()).group_by(every.c.rank))}
    shown = found[:size]
    rows = _combined(services, project, shown)
    return ResultPage([rows[item_id] for item_id in shown], page, len(found) > size,
                      {s: counts.get(s, 0) for s in ITEM_STATES})


def _combined(services: Services, project: Project, item_ids: list[int]
              ) -> dict[int, ItemResult]:
    """The listed items' combined results, through their task type's combine
    (an item's gold tasks with the charity's answers: exports.part_of)."""
    if not item_ids:
        return {}
    task_type = services.registry.get(project.task_type)
    with services.reader.session() as session:
        items = {item.id: item for item in session.scalars(
            select(Item).where(Item.id.in_(item_ids)))}
        parts: dict[int, list[TaskResult]] = {item_id: [] for item_id in item_ids}
        for item_id, *task in session.execute(
                select(Task.item_id, Task.payload, Task.state, Result.value, Result.confidence,
                       Task.is_gold, Task.gold)
                .outerjoin(Result, Result.task_id == Task.id)
                .where(Task.item_id.in_(item_ids))
                .order_by(Task.item_id, Task.id)):
            parts[item_id].append(part_of(*task))
    return {item_id: _item_result(task_type, items[item_id], parts[item_id])
            for item_id in item_ids}


def _item_result(task_type, item: Item, parts: list[TaskResult]) -> ItemResult:
    states = {part.state for part in parts}
    state = next((s for s in ("open", "contested", "settled") if s in states), "retired")
    combined = (task_type.combine(parts, item.data or {})
                if any(part.value is not None for part in parts) else None)
    value = combined.value if combined else None
    return ItemResult(item.id, item.ref, state, value,
                      task_type.value_to_text(value) if value is not None else "",
                      combined.confidence if combined else 0.0, len(parts),
                      sum(part.state in ("retired", "settled") for part in parts),
                      item.data or {})


# -- one item ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerRow:
    volunteer_id: int
    text: str
    counted: bool
    created_at: datetime


@dataclass(frozen=True)
class TaskDetail:
    id: int
    state: str
    need: int
    is_gold: bool
    payload: dict
    value: Any
    text: str
    confidence: float
    answers: list[AnswerRow]


@dataclass(frozen=True)
class Picture:
    """The item's picture and its size in the pixels its results are in."""

    url: str
    width: int | None
    height: int | None


@dataclass(frozen=True)
class ItemDetail:
    result: ItemResult
    tasks: list[TaskDetail]
    picture: Picture | None
    regions: list  # task_types.Region: where the result lies on the picture


def item_detail(services: Services, project: Project, item_id: int) -> ItemDetail:
    """One item of the project: its tasks, each with its answers and result, the
    combined result, and where that result lies on the item's picture."""
    task_type = services.registry.get(project.task_type)
    with services.reader.session() as session:
        item = session.get(Item, item_id)
        if item is None or item.project_id != project.id:
            raise NotFoundError(f"item {item_id} does not exist", {"item": "not found"})
        tasks = session.execute(
            select(Task, Result.value, Result.confidence)
            .outerjoin(Result, Result.task_id == Task.id)
            .where(Task.item_id == item.id).order_by(Task.id)).all()
        answers: dict[int, list[AnswerRow]] = {task.id: [] for task, _, _ in tasks}
        for task_id, volunteer, value, counted, at in session.execute(
                select(Answer.task_id, Answer.volunteer_id, Answer.value, Answer.counted,
                       Answer.created_at)
                .join(Task, Task.id == Answer.task_id)
                .where(Task.item_id == item.id).order_by(Answer.id)):
            answers[task_id].append(AnswerRow(volunteer, _answer_text(task_type, value),
                                              counted, aware(at)))
    details = [TaskDetail(task.id, task.state, task.need, task.is_gold, task.payload or {},
                          value, task_type.value_to_text(value) if value is not None else "",
                          confidence or 0.0, answers[task.id])
               for task, value, confidence in tasks]
    # a gold task's part is the charity's answer, as in the list and the exports
    parts = [part_of(t.payload, t.state, t.value, t.confidence, t.is_gold, task.gold)
             for t, (task, _, _) in zip(details, tasks, strict=True)]
    result = _item_result(task_type, item, parts)
    regions = task_type.regions(parts, item.data or {}) if result.value is not None else []
    return ItemDetail(result, details, _picture(item.data or {}, parts), regions)


def _answer_text(task_type, value: Any) -> str:
    try:
        return task_type.answer_to_text(value)
    except (KeyError, TypeError, ValueError):  # an answer of a config since edited
        return str(value)


def _picture(data: dict, parts: list[TaskResult]) -> Picture | None:
    """The item's image, if it has one; its size from the payloads that recorded
    it (the types that cut pictures do), else unknown."""
    url = data.get("image")
    if not isinstance(url, str) or not url:
        return None
    size = next((p.payload.get("size") for p in parts
                 if isinstance(p.payload, dict) and p.payload.get("size")), None)
    if isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size):
        return Picture(url, size[0], size[1])
    return Picture(url, None, None)
