"""The retirement policy: when a task has enough answers, and what happens if not.

One pure function, used by the live path (engine.quality.consensus) and by the
replay benchmark alike, so what is measured is what runs.
"""
from __future__ import annotations

from dataclasses import dataclass

RETIRE, CONTEST, MORE = "retired", "contested", "more"


@dataclass(frozen=True)
class Policy:
    """A project's redundancy settings."""

    min_answers: int
    max_answers: int
    confidence: float


def decide(policy: Policy, confidence: float, answers: int) -> str:
    """After a result was merged from `answers` counted answers: retire the task
    when confident enough, contest it when it may not collect more, else ask
    for one more answer. Below min_answers a task always waits for more."""
    if answers < policy.min_answers:
        return MORE
    if confidence >= policy.confidence:
        return RETIRE
    if answers >= policy.max_answers:
        return CONTEST
    return MORE
