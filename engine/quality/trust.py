"""Trust is earned: a newcomer's answers weigh little and retire nothing alone.

A crowd of fresh sign-ups who agree with one another looks, to any model that
learns from agreement, like a crowd of experts: ten scripted volunteers
answering "seal" would otherwise out-vote, and out-rank, one honest "penguin".
So until a volunteer is *established* in a project, their answers count at no
more than a newcomer's reliability (their learnt confusion matrix is set aside),
and a task retires only when an established volunteer's answer supports its
result. A volunteer is established by

- gold: ``trusted_after_gold`` gold answers with a mean score of GOLD_BAR or more
  (the project's own check, stored as the volunteer's answers arrive), or
- age: an account older than ``trusted_after_minutes`` with no flag raised
  (a sign-up burst must wait before it can retire anything, and the flags and
  the quality desk get that long to look at it).

A confident task that only newcomers answered asks for more answers up to
max_answers; then it is *held*: open, out of the pool, with its result, and
merged again by the quality job (``engine.quality.held``) once its volunteers
have earned trust. A confident label that established volunteers answered but
none of them gave (the weights turned the result against them) asks for more
answers too, and is contested at max_answers: that is for a person to judge.
``trusted_after_minutes: 0`` makes everyone established at once: the behaviour
before trust was earned, for a charity's own test runs and for the demo, where
the visitor is the only volunteer.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from task_types import TaskType

TRUST_DEFAULTS: dict[str, Any] = {
    "trusted_after_minutes": 30,  # account age that establishes a volunteer (0: at once)
    "trusted_after_gold": 3,  # or this many gold answers at GOLD_BAR or better
}
GOLD_BAR = 0.7  # the mean gold score that counts as a track record
NEWCOMER_RELIABILITY = 0.7  # the most a newcomer is believed; also a volunteer without an estimate
VOUCHED, DISPUTED, UNPROVEN = "vouched", "disputed", "unproven"  # Weighed.standing


@dataclass(frozen=True)
class Standing:
    """What a merge needs to know of an answer's volunteer."""

    created_at: datetime | None
    gold_answers: int | None
    gold_score: float | None
    flags: Sequence[str] | None

    def established(self, limits: dict[str, Any], now: datetime) -> bool:
        minutes = limits["trusted_after_minutes"]
        if not minutes:
            return True
        if by_gold(self.gold_answers, self.gold_score, limits):
            return True
        if self.flags or self.created_at is None:
            return False
        return _aware(self.created_at) <= now - timedelta(minutes=minutes)


@dataclass(frozen=True)
class Weighed:
    """A task's counted answers as merge takes them (value, reliability,
    confusion), newcomers' capped, and which came from established volunteers."""

    rows: list[tuple[Any, Any, Any]]
    established: list[bool]

    def standing(self, task_type: TaskType, config: dict, value: Any) -> str:
        """How the merged value (a label, for label types) stands with
        established volunteers: VOUCHED (one of them answered it), DISPUTED
        (they answered, none of them this label: the model's weights turned the
        result against them) or UNPROVEN (only newcomers answered). A task type
        without labels merges answers into a value none may equal (a median, a
        word vote), so there any established volunteer's answer vouches for it."""
        if not any(self.established):
            return UNPROVEN
        if task_type.labels(config) is None:
            return VOUCHED
        supported = any(ok and value is not None and task_type.label_of(answer) == value
                        for (answer, _, _), ok in zip(self.rows, self.established, strict=True))
        return VOUCHED if supported else DISPUTED


def by_gold(gold_answers: int | None, gold_score: float | None, limits: dict[str, Any]) -> bool:
    """Whether a gold record alone establishes a volunteer under these limits."""
    wanted = limits["trusted_after_gold"]
    return bool(wanted) and (gold_answers or 0) >= wanted and (gold_score or 0.0) >= GOLD_BAR


def limits_of(quality: dict | None) -> dict[str, Any]:
    """A project's trust settings: its own (Project.quality) over the defaults."""
    return {key: (quality or {}).get(key, default) for key, default in TRUST_DEFAULTS.items()}


def weigh(rows: Sequence[tuple], quality: dict | None, now: datetime) -> Weighed:
    """Rows of (value, reliability, confusion, *Standing fields) -> Weighed."""
    limits = limits_of(quality)
    out, established = [], []
    for value, reliability, confusion, *standing in rows:
        ok = Standing(*standing).established(limits, now)
        if not ok:  # before any estimate (None) everyone is equal: a plain majority
            if reliability is not None:
                reliability = min(reliability, NEWCOMER_RELIABILITY)
            confusion = None
        out.append((value, reliability, confusion))
        established.append(ok)
    return Weighed(out, established)


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
