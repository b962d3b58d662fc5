"""Learn by doing: after a practice (gold) task, the volunteer hears the charity's answer.

Training on real tasks with feedback raised volunteers' accuracy from 54% to
90% and their contributions from 121 to 228 each (Gravity Spy, peers.md). So
a volunteer's first `gold_feedback` gold answers in a project (a quality
setting, default 5; 0: never) come back with the charity's answer and
whether theirs was right (a score of trust.GOLD_BAR or more, the bar gold
answers are judged by). Only the first few: told every gold answer, someone
gaming the project would learn which tasks are checked.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select

from engine.quality.project_settings import quality_settings
from engine.quality.trust import GOLD_BAR
from engine.services import Services
from engine.store.db import Database
from engine.store.models import Answer, Task
from engine.store.prepared import Prepared, per_database, transaction

MAX_TEXT = 200  # a longer expected answer (a drawing's boxes) is told as a score only


def gold_feedback(services: Services, project_id: int, task_id: int, volunteer_id: int,
                  answer_id: int, answer: Any) -> dict[str, Any] | None:
    """What to tell a volunteer who just answered a gold task (their stored answer
    ``answer_id``): ``{"right", "score", "expected"}`` (expected None when too long
    to say), or None when they have had their share of feedback, or the task is
    not gold. Counted up to this answer, so a retry is told what the first
    attempt was told. On the answer path of a newcomer's gold tasks (up to 40%
    of their first tasks): the project's settings are kept per process, and
    the task's gold with the count is one prepared statement."""
    settings = quality_settings(services, project_id)
    allowed = settings.limits["gold_feedback"] if settings is not None else 0
    if not allowed:
        return None
    with transaction(services.db) as cursor:
        found = _statements(services.db).practice.execute(cursor, {
            "task_id": task_id, "project_id": project_id, "volunteer_id": volunteer_id,
            "answer_id": answer_id})
    if not found:
        return None
    is_gold, gold, seen = found[0]
    if not is_gold or gold is None or seen > allowed:
        return None
    task_type = services.registry.get(settings.task_type)
    score = float(task_type.score(answer, gold, settings.config))
    expected = task_type.value_to_text(gold)
    return {"right": score >= GOLD_BAR, "score": round(score, 2),
            "expected": expected if len(expected) <= MAX_TEXT else None}


@dataclass(frozen=True)
class _Statements:
    practice: Prepared  # the task's gold, and the volunteer's gold answers up to this one


@per_database
def _statements(database: Database) -> _Statements:
    practice = Task.__table__.alias("practice")
    seen = (select(func.count()).select_from(Answer.__table__.join(
        practice, practice.c.id == Answer.task_id))
        .where(Answer.project_id == bindparam("project_id"),
               Answer.volunteer_id == bindparam("volunteer_id"),
               practice.c.is_gold.is_(True), Answer.id <= bindparam("answer_id"))
        .scalar_subquery())
    return _Statements(Prepared(database, select(Task.is_gold, Task.gold, seen.label("seen"))
                                .where(Task.id == bindparam("task_id"))))
