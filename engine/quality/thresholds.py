"""A project's quality settings: the flag thresholds, when a newcomer's answers
count, and how many reports withdraw a task. Project.quality holds only what
differs from QUALITY_DEFAULTS.

A leaf module (of engine.quality, it imports only trust), so that the merge
(engine.quality.consensus, for reports_to_withdraw) can read them: the quality
job (engine.quality.reliability) imports the moderation that re-merges through
the merge, and the merge importing it was a cycle.
"""
from __future__ import annotations

from typing import Any

from engine.quality import trust
from engine.store.models import Project

# The flags' thresholds, per project (Project.quality holds what differs from
# these). The defaults catch a script answering one label in well under a second
# by its 5th answer (too_fast); a volunteer who gives one answer to 10 tasks in a
# row is flagged too (raise same_answer_after where one label is most answers).
QUALITY_DEFAULTS: dict[str, Any] = {
    # A flag quarantines at once: the volunteer's answers stop counting, and the
    # quality desk's inbox lists them for an admin to block or clear. A project
    # fed by the charity's own scripts (a test run, answers imported by a
    # program) turns it off with quality: {"quarantine": false}.
    "quarantine": True,
    "too_fast_after": 5,  # answers timed before too_fast can fire
    "too_fast_seconds": None,  # median seconds below this; None: the task type's min_seconds
    "same_answer_after": 10,
    "same_answer_share": 0.95,
    "failing_gold_after": 10,  # gold answers (5 would catch 1 honest volunteer in 40)
    "failing_gold_below": 0.5,
    "low_agreement_after": 10,  # answers on tasks with a result
    "low_agreement_below": 0.2,
    **trust.TRUST_DEFAULTS,  # when a newcomer's answers may retire a task
    # volunteers' reports of a wrong task (engine.quality.reports) that take it out
    # of circulation: different volunteers, so that one cannot hide tasks; 0: never
    "reports_to_withdraw": 2,
    # a volunteer's first gold answers told the charity's answer (engine.quality.feedback)
    "gold_feedback": 5,
}


def thresholds(project: Project) -> dict[str, Any]:
    """The project's flag thresholds: its own over the defaults."""
    return {**QUALITY_DEFAULTS, **(project.quality or {})}
