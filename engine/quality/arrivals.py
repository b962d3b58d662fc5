"""A volunteer's answers judged as they arrive, on the answer's own request.

The periodic quality job (engine.quality.reliability.estimate_project) judges
everyone on all their answers every few minutes; a script answering in no time
must not get minutes. So the answer path checks a volunteer's latest answers at
some of their answer counts (check_due) against the project's flag thresholds
(engine.quality.reliability.flags), and a flag quarantines at once
(engine.quality.moderation); where the project holds newcomers back, their gold
record is kept as it grows (engine.quality.trust).

The check runs on most of a micro-volunteer's answers (their 3rd to 10th), so it
reads little: what it needs of the project (thresholds, type, config) is kept
per process (engine.quality.project_settings); the volunteer's standing and
latest answers are two prepared statements on one bare connection
(engine.store.prepared). A project that judges nothing costs no SQL at all.
On PostgreSQL the check was six round trips through the ORM: 25 ms on a bench
project of 35,000 answers before migration 0020 gave the answer read an index
of its own, 4.4 ms after it, 1.4 ms as it is now.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select

from engine.quality import held, moderation, trust
from engine.quality.project_settings import quality_settings
from engine.quality.reliability import (
    QUARANTINING,
    Tally,
    answer_query,
    answer_row,
    flags,
    tally_rows,
)
from engine.services import Services
from engine.store.db import Database
from engine.store.models import VolunteerStat
from engine.store.prepared import Prepared, per_database, transaction

# The answer counts checked (the periodic job checks everyone anyway): each of
# answers 3 to 10 (a script is caught early), every 5th to the 50th, then every
# 50th.
CHECK_FIRST, CHECK_EARLY, CHECK_EVERY, CHECK_LATE = (3, 10), 50, 5, 50
# ... on their latest answers only: the whole record cost 25 us an answer on the
# answer's own request (a volunteer with 50,000 answers waited a second every
# 50th), and a volunteer who turns to clicking at random after thousands of good
# answers is caught by what they do now. The periodic job reads everything.
CHECK_WINDOW = 500
NEVER = datetime(1970, 1, 1, tzinfo=UTC)  # the `since` of a volunteer never cleared


def check_due(answered: int) -> bool:
    """Whether a volunteer's answer number `answered` (in the project) is one to
    check their answers at: cheap enough for the hot path."""
    if answered < CHECK_FIRST[0]:
        return False
    if answered <= CHECK_FIRST[1]:
        return True
    return answered % (CHECK_EVERY if answered <= CHECK_EARLY else CHECK_LATE) == 0


def check_volunteer(services: Services, project_id: int, volunteer_id: int) -> bool:
    """Judge one volunteer's answers in a project (since an admin last cleared
    them) against the project's thresholds as they arrive, without waiting for
    the periodic job; quarantine them if a flag fires. True if this did."""
    settings = quality_settings(services, project_id)
    if settings is None or not judges(settings.limits):
        return False
    standing, rows = _latest(services, project_id, volunteer_id)
    if standing is not None and (standing.blocked or standing.quarantined_at is not None):
        return False
    whole = len(rows) <= CHECK_WINDOW  # one more asked for: did the window hold them all?
    rows = rows[-CHECK_WINDOW:]
    gold_before = (standing.gold_answers, standing.gold_score) if standing else (None, None)
    task_type, limits = services.registry.get(settings.task_type), settings.limits
    tally = tally_rows(task_type, settings.config, rows).get(volunteer_id, Tally())
    if limits["trusted_after_minutes"] and whole:
        # a record from part of the answers would undercount; the periodic job has it
        _record_gold(services, project_id, volunteer_id, tally, limits, gold_before)
    found = flags(tally, task_type.min_seconds, limits)
    return limits["quarantine"] and any(flag in QUARANTINING for flag in found) and \
        moderation.quarantine(services, project_id, volunteer_id, found)


def judges(limits) -> bool:
    """Whether thresholds ask for any judging as answers arrive: a quarantine,
    or newcomers held back until their record is in."""
    return bool(limits["quarantine"] or limits["trusted_after_minutes"])


@dataclass(frozen=True)
class _Standing:
    blocked: bool
    quarantined_at: datetime | None
    cleared_at: datetime | None
    gold_answers: int | None
    gold_score: float | None


@dataclass(frozen=True)
class _Statements:
    standing: Prepared
    latest: Prepared


_STAT = VolunteerStat.__table__


@per_database
def _statements(database: Database) -> _Statements:
    key = (_STAT.c.project_id == bindparam("project_id")) & \
        (_STAT.c.volunteer_id == bindparam("volunteer_id"))
    return _Statements(
        standing=Prepared(database, select(
            _STAT.c.blocked, _STAT.c.quarantined_at, _STAT.c.cleared_at,
            _STAT.c.gold_answers, _STAT.c.gold_score).where(key)),
        latest=Prepared(database, answer_query(
            bindparam("project_id"), bindparam("volunteer_id"), bindparam("since"),
            bindparam("latest"))))


def _latest(services: Services, project_id: int, volunteer_id: int
            ) -> tuple[_Standing | None, list[tuple]]:
    """The volunteer's standing in the project, and their latest CHECK_WINDOW + 1
    answers since an admin last cleared them, oldest first (as answer_rows)."""
    sql, key = _statements(services.db), {"project_id": project_id,
                                           "volunteer_id": volunteer_id}
    with transaction(services.db) as cursor:
        found = sql.standing.execute(cursor, key)
        standing = _Standing(*found[0]) if found else None
        since = standing.cleared_at if standing and standing.cleared_at else NEVER
        rows = sql.latest.execute(cursor, {**key, "since": since, "latest": CHECK_WINDOW + 1})
    return standing, [answer_row(*row) for row in reversed(rows)]


def _record_gold(services: Services, project_id: int, volunteer_id: int, tally: Tally,
                 limits: Mapping[str, Any], before: tuple) -> None:
    """Store a volunteer's gold record as it grows, so that gold establishes them
    (engine.quality.trust) by their next answer rather than at the next periodic
    estimate. `before` is the stored (gold answers, gold score) that
    check_volunteer has already read: this runs on the answer path, and most
    checks find no new gold answer, so they take no write lock and no second
    read. When this record is the one that establishes them, their held tasks
    are merged again soon (engine.quality.held) rather than at the next
    periodic run."""
    answers, score = tally.gold_record()
    if (before[0] or 0) == answers:
        return
    with services.db.writing() as session:
        stat = session.get(VolunteerStat, (project_id, volunteer_id)) or VolunteerStat(
            project_id=project_id, volunteer_id=volunteer_id, blocked=False, answers=0,
            flags=[])
        stat.gold_answers, stat.gold_score = answers, score
        session.add(stat)
    if trust.by_gold(answers, score, limits) and not trust.by_gold(*before, limits):
        held.release_soon(services, project_id)
