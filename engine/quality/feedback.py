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

from typing import Any

from sqlalchemy import func, select

from engine.quality.reliability import thresholds
from engine.quality.trust import GOLD_BAR
from engine.services import Services
from engine.store.models import Answer, Project, Task

MAX_TEXT = 200  # a longer expected answer (a drawing's boxes) is told as a score only


def gold_feedback(services: Services, project_id: int, task_id: int, volunteer_id: int,
                  answer_id: int, answer: Any) -> dict[str, Any] | None:
    """What to tell a volunteer who just answered a gold task (their stored answer
    ``answer_id``): ``{"right", "score", "expected"}`` (expected None when too long
    to say), or None when they have had their share of feedback, or the task is
    not gold. Counted up to this answer, so a retry is told what the first
    attempt was told."""
    with services.db.session() as session:
        task = session.get(Task, task_id)
        if task is None or not task.is_gold or task.gold is None:
            return None
        project = session.get(Project, project_id)
        allowed = thresholds(project)["gold_feedback"]
        if not allowed:
            return None
        seen = session.scalar(
            select(func.count()).select_from(Answer).join(Task, Task.id == Answer.task_id)
            .where(Answer.project_id == project_id, Answer.volunteer_id == volunteer_id,
                   Task.is_gold.is_(True), Answer.id <= answer_id))
        if seen > allowed:
            return None
        gold, config = task.gold, project.config
        task_type = services.registry.get(project.task_type)
    score = float(task_type.score(answer, gold, config))
    expected = task_type.value_to_text(gold)
    return {"right": score >= GOLD_BAR, "score": round(score, 2),
            "expected": expected if len(expected) <= MAX_TEXT else None}
