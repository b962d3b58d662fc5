"""Results out: one row per task or per item, streamed as CSV, JSON or JSON Lines.

Rows are read in chunks and written as they come, so memory stays flat
whatever the project's size. An item's row is its task type's ``combine`` of
its tasks' results (page text from lines, boxes in photo coordinates); tasks
come ordered by item, so one item at a time is held. CSV cells that a
spreadsheet would run as a formula are escaped.
"""
from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from engine.services import Services
from engine.store.models import Answer, Item, Project, Result, Task, iso
from task_types import Aggregate, TaskResult, TaskType

FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json",
           "jsonl": "application/x-ndjson"}
# method: how the result was merged (engine.quality.consensus: "posterior", "majority"
# before any volunteer estimate, "weighted", "settled", "none" with no counted answer)
COLUMNS = ("task", "item", "item_ref", "state", "value", "confidence", "answers", "method")
ITEM_COLUMNS = ("item", "item_ref", "state", "value", "confidence", "tasks", "tasks_done")
# task,worker,answer first: the file `bitesize consensus` reads
ANSWER_COLUMNS = ("task", "worker", "answer", "counted", "gold", "item", "item_ref",
                  "answered_at")
LEVELS = ("task", "item")
_DONE = ("retired", "settled")
# A spreadsheet runs a cell as a formula when it starts with one of these, also
# after leading blanks (" =1") and in their full-width forms ("＝1"); "|" starts a
# DDE call in some programs. Tabs and CRs are escaped even alone, as before.
_FORMULA_MARKS = frozenset("=+-@|＝＋－＠｜")
# Characters that show nothing and that str.lstrip keeps (zero-width space and
# joiners, word joiner, byte-order mark, soft hyphen): a spreadsheet may pass
# over them to a formula mark behind.
_LEADING_BLANKS = re.compile("^[\\s\u200b\u200c\u200d\u2060\ufeff\u00ad]+")
_BLANK_START = ("\t", "\r")


def result_rows(services: Services, project_id: int, chunk: int = 1000) -> Iterator[dict[str, Any]]:
    """Every task of a project with its result: no value and confidence 0 until
    it has one, and while no answer of it counts (engine.quality.consensus.remerge).
    Gold tasks are left out, as progress leaves them out: their answer is the
    charity's own, and they never retire (listed, they were open work for ever)."""
    query = (select(Task.id, Task.item_id, Item.ref, Task.state, Result.value,
                    Result.confidence, Result.answers, Result.method)
             .join(Item, Item.id == Task.item_id)
             .outerjoin(Result, Result.task_id == Task.id)
             .where(Task.project_id == project_id, Task.is_gold.is_(False))
             .order_by(Task.id))
    with services.reader.session() as session:
        result = session.execute(query.execution_options(yield_per=chunk))
        try:
            for row in result:
                yield dict(zip(COLUMNS, (row[0], row[1], row[2], row[3], row[4],
                                         row[5] if row[5] is not None else 0.0, row[6] or 0,
                                         row[7]), strict=True))
        finally:
            # A download cut short leaves a server-side cursor open on PostgreSQL.
            result.close()


@dataclass(frozen=True)
class ItemGroup:
    """One item with its tasks' results, in task order: what combine() takes."""

    item_id: int
    ref: str | None
    data: dict
    parts: list[TaskResult]


def item_groups(services: Services, project_id: int, chunk: int = 1000
                ) -> Iterator[ItemGroup]:
    """Every item of a project with its tasks' results, in upload order; tasks
    come sorted by item, so one item at a time is held. Items whose tasks are
    all gold are left out, as from result_rows; a gold task of an item with
    others (a page with one line known) is its part with the charity's answer
    (part_of)."""
    query = (select(Task.item_id, Item.ref, Item.data, Task.payload, Task.state,
                    Result.value, Result.confidence, Task.is_gold, Task.gold)
             .join(Item, Item.id == Task.item_id)
             .outerjoin(Result, Result.task_id == Task.id)
             .where(Task.project_id == project_id).order_by(Task.item_id, Task.id))
    with services.reader.session() as session:
        result = session.execute(query.execution_options(yield_per=chunk))
        try:
            current, parts, all_gold = None, [], True
            for item_id, ref, data, *task in result:
                if current is not None and item_id != current[0]:
                    if not all_gold:
                        yield ItemGroup(*current, parts)
                    parts, all_gold = [], True
                current = (item_id, ref, data or {})
                parts.append(part_of(*task))
                all_gold = all_gold and task[-2]
            if current is not None and not all_gold:
                yield ItemGroup(*current, parts)
        finally:
            result.close()


def part_of(payload: dict, state: str, value: Any, confidence: float | None,
            is_gold: bool, gold: Any) -> TaskResult:
    """One task's part of its item's result: a gold task's is the charity's own
    answer, certain, and done as a retired part is (a gold task never retires:
    without this a page with one known line lost that line, or stayed open for
    ever); it leaves the item's state to its other tasks."""
    if is_gold:
        return TaskResult(payload, gold, 1.0, "retired")
    return TaskResult(payload, value, confidence or 0.0, state)


def project_type(services: Services, project_id: int) -> TaskType:
    # from the primary: a project newer than the replica's lag is not there yet
    with services.db.session() as session:
        return services.registry.get(session.get(Project, project_id).task_type)


def item_rows(services: Services, project_id: int, chunk: int = 1000
              ) -> Iterator[dict[str, Any]]:
    """Every item of a project with its combined result, in upload order."""
    task_type = project_type(services, project_id)
    for group in item_groups(services, project_id, chunk):
        yield _item_row(task_type, group)


def _item_row(task_type: TaskType, group: ItemGroup) -> dict[str, Any]:
    """One item's row; its state is open while any task is, then contested while
    any waits for an admin, then done."""
    parts = group.parts
    states = {part.state for part in parts}
    state = "open" if "open" in states else "contested" if "contested" in states else "done"
    combined = combine(task_type, group)
    return dict(zip(ITEM_COLUMNS, (
        group.item_id, group.ref, state, combined.value if combined else None,
        combined.confidence if combined else 0.0, len(parts),
        sum(part.state in _DONE for part in parts)), strict=True))


def combine(task_type: TaskType, group: ItemGroup) -> Aggregate | None:
    """The item's result, or None while none of its tasks has a result."""
    if not any(part.value is not None for part in group.parts):
        return None
    return task_type.combine(group.parts, group.data)


def answer_rows(services: Services, project_id: int, as_text: bool = False,
                chunk: int = 1000) -> Iterator[dict[str, Any]]:
    """Every answer of a project, oldest first. ``as_text`` writes each answer as
    its type's text form (a label, the text, ``a;b`` tags, a JSON list of boxes),
    as an answers CSV has it; otherwise the answer stays a JSON object."""
    query = (select(Answer.task_id, Answer.volunteer_id, Answer.value, Answer.counted,
                    Task.is_gold, Task.item_id, Item.ref, Answer.created_at)
             .join(Task, Task.id == Answer.task_id).join(Item, Item.id == Task.item_id)
             .where(Answer.project_id == project_id).order_by(Answer.id))
    task_type = project_type(services, project_id)
    with services.reader.session() as session:
        result = session.execute(query.execution_options(yield_per=chunk))
        try:
            for task, worker, value, counted, gold, item, ref, at in result:
                answer = task_type.answer_to_text(value) if as_text else value
                yield dict(zip(ANSWER_COLUMNS, (task, worker, answer, counted, gold, item, ref,
                                                iso(at)), strict=True))
        finally:
            result.close()


def render(rows: Iterator[dict[str, Any]], fmt: str,
           columns: tuple[str, ...] = COLUMNS, bom: bool = False) -> Iterator[str]:
    """Rows as text chunks; ``bom`` starts a CSV with a UTF-8 byte order mark,
    which spreadsheet programs need to read it as UTF-8."""
    if fmt == "csv":
        return _csv(rows, columns, bom)
    return {"json": _json, "jsonl": _jsonl}[fmt](rows)


def escape_cell(value: Any) -> str:
    """Text for a CSV cell; formula-looking text gets a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if looks_like_formula(value) else value
    if not isinstance(value, (dict, list)):
        return str(value)  # a number such as -3 is data, not a formula
    text = json.dumps(value)
    return "'" + text if looks_like_formula(text) else text


def looks_like_formula(text: str) -> bool:
    """Whether a spreadsheet could read ``text`` as a formula: its first
    non-blank character is a formula mark (or it starts with a tab or CR)."""
    if text.startswith(_BLANK_START):
        return True
    stripped = _LEADING_BLANKS.sub("", text)
    return bool(stripped) and stripped[0] in _FORMULA_MARKS


def unescape_cell(cell: str) -> str:
    """The text escape_cell was given, back from its cell ("'=x" -> "=x"), for
    readers of exported files (``bitesize consensus``); other cells as they are."""
    if cell.startswith("'") and looks_like_formula(cell[1:]):
        return cell[1:]
    return cell


def _csv(rows: Iterator[dict[str, Any]], columns: tuple[str, ...],
         bom: bool = False) -> Iterator[str]:
    buffer = io.StringIO()
    if bom:
        buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for n, row in enumerate(rows, 1):
        writer.writerow([escape_cell(row[c]) for c in columns])
        if n % 500 == 0:
            yield _drain(buffer)
    yield _drain(buffer)


def _json(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    yield "["
    for n, row in enumerate(rows):
        yield ("," if n else "") + json.dumps(row)
    yield "]\n"


def _jsonl(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row) + "\n"


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
