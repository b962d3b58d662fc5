"""Results out: one row per task, streamed as CSV, JSON or JSON Lines.

Rows are read in chunks and written as they come, so memory stays flat
whatever the project's size. CSV cells that a spreadsheet would run as a
formula are escaped.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from engine.models import Item, Result, Task
from engine.services import Services

FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json",
           "jsonl": "application/x-ndjson"}
COLUMNS = ("task", "item", "item_ref", "state", "value", "confidence", "answers")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def result_rows(services: Services, project_id: int, chunk: int = 1000) -> Iterator[dict[str, Any]]:
    """Every task of a project with its result (empty until the task has one)."""
    query = (select(Task.id, Task.item_id, Item.ref, Task.state, Result.value,
                    Result.confidence, Result.answers)
             .join(Item, Item.id == Task.item_id)
             .outerjoin(Result, Result.task_id == Task.id)
             .where(Task.project_id == project_id).order_by(Task.id))
    with services.db.session() as session:
        result = session.execute(query.execution_options(yield_per=chunk))
        try:
            for row in result:
                yield dict(zip(COLUMNS, (row[0], row[1], row[2], row[3], row[4],
                                         row[5] if row[5] is not None else 0.0, row[6] or 0),
                               strict=True))
        finally:
            # A download cut short leaves a server-side cursor open on PostgreSQL.
            result.close()


def render(rows: Iterator[dict[str, Any]], fmt: str) -> Iterator[str]:
    return {"csv": _csv, "json": _json, "jsonl": _jsonl}[fmt](rows)


def escape_cell(value: Any) -> str:
    """Text for a CSV cell; formula-looking text gets a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA_START) else value
    if not isinstance(value, (dict, list)):
        return str(value)  # a number such as -3 is data, not a formula
    text = json.dumps(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for n, row in enumerate(rows, 1):
        writer.writerow([escape_cell(row[c]) for c in COLUMNS])
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
