"""The retirement policy: when a task has enough answers, and what happens if not.

One pure function, used by the live path (engine.quality.consensus) and by the
replay benchmark alike, so what is measured is what runs.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.quality.trust import UNPROVEN, VOUCHED

RETIRE, CONTEST, MORE, HOLD = "retired", "contested", "more", "held"


@dataclass(frozen=True)
class Policy:
    """A project's redundancy settings."""

    min_answers: int
    max_answers: int
    confidence: float


def decide(policy: Policy, confidence: float, answers: int, standing: str = VOUCHED) -> str:
    """After a result was merged from `answers` counted answers: retire the task
    when confident enough, contest it when it may not collect more, else ask
    for one more answer. Below min_answers a task always waits for more.

    A confident result retires only when an established volunteer answered it
    (``standing``, engine.quality.trust): one that only newcomers answered asks
    for more and, at max_answers, is held until they have earned trust; one
    that established volunteers answered otherwise asks for more and is
    contested at max_answers."""
    if answers < policy.min_answers:
        return MORE
    if confidence >= policy.confidence and standing == VOUCHED:
        return RETIRE
    if answers < policy.max_answers:
        return MORE
    return HOLD if confidence >= policy.confidence and standing == UNPROVEN else CONTEST
