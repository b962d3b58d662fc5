"""A project's quality in numbers: what the quality desk's project page draws.

Five questions an admin asks of a running project, each answered from SQL:

- Where does the crowd go wrong? For label types (a task type whose
  ``labels(config)`` is not None), the confusion matrix of counted answers on
  gold tasks: rows the gold label, columns the label answered. Gold tasks are
  the uploaded gold items (``Task.is_gold``) and the tasks an admin settled
  (their answer is gold from then on, engine.quality.review). Other types get
  the distribution of those answers' gold scores (``task_type.score``).
- How reliable are the volunteers? The histogram of VolunteerStat.reliability.
- How sure are the results? The dashboard's confidence histogram
  (engine.delivery.insight), reused as it is.
- Does the crowd still agree, and does it still get gold right? Per day, the
  mean score of answers against their task's current result (the engine's own
  "agreement", VolunteerStat.agreement: tasks without gold), and against gold.

Only counted answers are scored: they are what results are made of; the
answers of quarantined or blocked volunteers are counted apart, in the summary.

Scores come from the task type in Python, so SQL groups the answers first: by
day, answer and reference (gold or result) as JSON text, with a count. For a
label type that is a few rows per day whatever the number of answers; for a
free-form type (transcriptions) the groups are nearly the answers themselves,
so they are streamed and folded into fixed-size sums as they come, never held.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Text, case, cast, distinct, func, literal_column, or_, select

from engine.delivery.insight import Bin, confidence_histogram, period_of
from engine.identity import Identity
from engine.projects import get_moderated_project
from engine.quality import crowd_model
from engine.services import Services
from engine.store.models import Answer, Project, Result, Task, VolunteerStat, utcnow

DAYS = 30  # the daily series: the last month
BINS = 10  # reliability and gold score histograms: 0-10%, ..., 90-100%
STREAM = 1000  # grouped rows fetched at a time
_DAY_FORMAT = "%Y-%m-%d"


# -- what the page draws -----------------------------------------------------------------


@dataclass(frozen=True)
class ConfusionRow:
    """Counted answers on gold tasks whose gold is one label, by the label given."""

    gold: str
    counts: tuple[int, ...]  # in Confusion.labels order
    correct: int  # answers that gave the gold label

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def accuracy(self) -> float | None:
        """The share of this class's answers that were right; None without any."""
        return self.correct / self.total if self.total else None


@dataclass(frozen=True)
class Confusion:
    """The crowd against gold. ``labels`` are the columns (the project's labels,
    then any other label answered, as after an edit of the labels); rows are
    the project's labels, then any other gold label."""

    labels: tuple[str, ...]
    rows: tuple[ConfusionRow, ...]

    @property
    def total(self) -> int:
        return sum(row.total for row in self.rows)

    @property
    def correct(self) -> int:
        return sum(row.correct for row in self.rows)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.total if self.total else None

    def mistakes(self) -> list[tuple[str, str, int]]:
        """(gold, answered, count) of every wrong pair given at least once, most first."""
        found = [(row.gold, label, count) for row in self.rows
                 for label, count in zip(self.labels, row.counts, strict=True)
                 if label != row.gold and count]
        return sorted(found, key=lambda m: (-m[2], m[0], m[1]))


@dataclass(frozen=True)
class DayScore:
    """One day (UTC) of a series: how many answers were scored, and their mean."""

    day: date
    answers: int
    mean: float | None  # None: no answers that day


@dataclass(frozen=True)
class Summary:
    answers_counted: int
    answers_not_counted: int
    volunteers: int  # who answered in the project
    quarantined: int  # waiting for an admin's block or clear
    blocked: int
    contested: int  # tasks waiting for an admin to settle them
    gold_tasks: int  # uploaded gold items and settled tasks


@dataclass(frozen=True)
class QualityReport:
    project: Project
    labelled: bool  # a label type: the confusion matrix applies
    confusion: Confusion | None
    gold_answers: int  # counted answers on gold tasks, ever
    gold_mean: float | None  # their mean score
    gold_scores: list[Bin]  # their scores' distribution
    reliability: list[Bin]  # volunteers by estimated reliability
    no_estimate: int  # volunteers who answered but have no reliability yet
    confidence: list[Bin]  # finished tasks by confidence (the dashboard's)
    agreement: list[DayScore]  # oldest first, the last `days` days
    gold_daily: list[DayScore]
    summary: Summary
    days: int
    now: datetime = field(default_factory=utcnow)
    model: dict[str, Any] | None = None  # the crowd model the estimates use (crowd_model)

    @property
    def estimated(self) -> int:
        return sum(b.count for b in self.reliability)


def quality_report(services: Services, identity: Identity, project_id: int,
                   days: int = DAYS, now: datetime | None = None) -> QualityReport:
    """The quality page's numbers for one project, for its admins only
    (get_moderated_project: 404 for another organisation, 403 for a charity
    member). A handful of grouped queries, whatever the project's size."""
    project = get_moderated_project(services, identity, project_id)
    now = now or utcnow()
    task_type = services.registry.get(project.task_type)
    config = project.config or {}
    labels = task_type.labels(config)
    first = (now - timedelta(days=days - 1)).date()
    window = [first + timedelta(days=n) for n in range(days)]
    start = datetime.combine(first, datetime.min.time(), now.tzinfo)

    gold = _GoldTally(task_type, config, labels, set(window))
    agreement = _DayTally()
    with services.db.session() as session:
        day = period_of(session.get_bind().dialect.name, Answer.created_at, "day")
        for when, answer, reference, count in _stream(session, _gold_groups(project.id, day)):
            gold.add(when, answer, reference, count)
        for when, answer, reference, count in _stream(
                session, _agreement_groups(project.id, day, start, now)):
            agreement.add(when, _score(task_type, config, answer, reference), count)
        reliability, no_estimate = _reliability(session, project.id)
        summary = _summary(session, project.id)
    return QualityReport(
        project, labels is not None, gold.confusion(), gold.scores.count, gold.scores.mean,
        gold.scores.bins, reliability, no_estimate,
        confidence_histogram(services, project.id), agreement.series(window),
        gold.daily.series(window), summary, days, now, crowd_model.read(services, project.id))


# -- tallies, folded as the grouped rows stream in ----------------------------------------


class _DayTally:
    """Sums of scores and counts per day: memory grows with days, not answers."""

    def __init__(self) -> None:
        self.sums: dict[str, list[float]] = {}

    def add(self, day: str, score: float | None, count: int) -> None:
        if score is None:
            return
        found = self.sums.setdefault(day, [0.0, 0])
        found[0] += score * count
        found[1] += count

    def series(self, window: list[date]) -> list[DayScore]:
        out = []
        for day in window:
            total, count = self.sums.get(day.strftime(_DAY_FORMAT), (0.0, 0))
            out.append(DayScore(day, int(count), total / count if count else None))
        return out


@dataclass
class _ScoreTally:
    """The distribution of scores in BINS equal bins, and their mean."""

    counts: list[int] = field(default_factory=lambda: [0] * BINS)
    total: float = 0.0

    def add(self, score: float, count: int) -> None:
        self.counts[_bin_of(score)] += count
        self.total += score * count

    @property
    def count(self) -> int:
        return sum(self.counts)

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    @property
    def bins(self) -> list[Bin]:
        return [Bin(n / BINS, (n + 1) / BINS, c) for n, c in enumerate(self.counts)]


class _GoldTally:
    """Counted answers on gold tasks: the confusion matrix (label types), the
    score distribution, and the gold score per day of the window."""

    def __init__(self, task_type, config: dict, labels: list[str] | None,
                 window: set[date]) -> None:
        self.task_type, self.config, self.labels = task_type, config, labels
        self.window = {day.strftime(_DAY_FORMAT) for day in window}
        self.pairs: dict[tuple[str, str], int] = {}  # (gold, answered) -> answers
        self.scores = _ScoreTally()
        self.daily = _DayTally()

    def add(self, day: str, answer: Any, gold: Any, count: int) -> None:
        score = _score(self.task_type, self.config, answer, gold)
        if score is None:
            return
        self.scores.add(score, count)
        if day in self.window:
            self.daily.add(day, score, count)
        if self.labels is not None:
            pair = (_label(gold), self._answered(answer))
            if None not in pair:
                self.pairs[pair] = self.pairs.get(pair, 0) + count

    def _answered(self, answer: Any) -> str | None:
        try:
            return str(self.task_type.label_of(answer))
        except (KeyError, TypeError, ValueError):
            return None

    def confusion(self) -> Confusion | None:
        if self.labels is None:
            return None
        golds = _ordered(self.labels, (gold for gold, _ in self.pairs))
        columns = _ordered(self.labels, (answered for _, answered in self.pairs))
        rows = tuple(ConfusionRow(gold, tuple(self.pairs.get((gold, label), 0)
                                              for label in columns),
                                  self.pairs.get((gold, gold), 0)) for gold in golds)
        return Confusion(tuple(columns), rows)


def _ordered(labels: list[str], seen: Iterable[str]) -> list[str]:
    """The project's labels in their order, then any other seen, sorted."""
    known = set(labels)
    return [*labels, *sorted({label for label in seen if label not in known})]


def _label(gold: Any) -> str | None:
    return gold if isinstance(gold, str) else None


def _score(task_type, config: dict, answer: Any, reference: Any) -> float | None:
    """The task type's score of one answer against a reference (gold or result);
    None when there is nothing to score against, or the answer no longer reads
    (given under a config since edited)."""
    if answer is None or reference is None:
        return None
    try:
        return float(task_type.score(answer, reference, config))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _bin_of(value: float) -> int:
    """The bin of a share: 0 for 0 to 0.1, ..., BINS - 1 for 0.9 to 1 (1 included)."""
    return min(max(int(value * BINS), 0), BINS - 1)


# -- the queries ---------------------------------------------------------------------------


def _gold_groups(project_id: int, day):
    """Counted answers on gold tasks, grouped by day, answer and gold (all time:
    the matrix counts every gold answer; the window's days feed the series)."""
    answer, gold = cast(Answer.value, Text), cast(Task.gold, Text)
    return (select(day.label("day"), answer.label("answer"), gold.label("reference"),
                   func.count())
            .join(Task, Task.id == Answer.task_id)
            .where(Answer.project_id == project_id, Answer.counted.is_(True),
                   or_(Task.is_gold.is_(True), Task.state == "settled"))
            .group_by(day, answer, gold))


def _agreement_groups(project_id: int, day, start: datetime, now: datetime):
    """Counted answers of the window on tasks without gold that have a result,
    grouped by day, answer and the task's current result."""
    answer, result = cast(Answer.value, Text), cast(Result.value, Text)
    return (select(day.label("day"), answer.label("answer"), result.label("reference"),
                   func.count())
            .join(Task, Task.id == Answer.task_id)
            .join(Result, Result.task_id == Answer.task_id)
            .where(Answer.project_id == project_id, Answer.counted.is_(True),
                   Task.is_gold.is_(False), Task.state != "settled",
                   Answer.created_at >= start, Answer.created_at <= now)
            .group_by(day, answer, result))


def _stream(session, query) -> Iterator[tuple[str, Any, Any, int]]:
    """The grouped rows a batch at a time, their JSON read back ('null': None)."""
    for day, answer, reference, count in session.execute(
            query.execution_options(yield_per=STREAM)):
        yield day, _json(answer), _json(reference), int(count)


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _reliability(session, project_id: int) -> tuple[list[Bin], int]:
    """Volunteers by estimated reliability in BINS bins, and how many who answered
    have no estimate yet (the periodic estimate has not reached them)."""
    which = case(*[(VolunteerStat.reliability >= literal_column(repr(n / BINS)),
                    literal_column(str(n))) for n in range(BINS - 1, 0, -1)],
                 else_=literal_column("0"))
    counts = dict(session.execute(
        select(which, func.count())
        .where(VolunteerStat.project_id == project_id, VolunteerStat.reliability.is_not(None))
        .group_by(which)).all())
    answered = (select(Answer.volunteer_id).where(Answer.project_id == project_id)
                .distinct().subquery())
    missing = session.scalar(
        select(func.count()).select_from(answered)
        .outerjoin(VolunteerStat, (VolunteerStat.volunteer_id == answered.c.volunteer_id)
                   & (VolunteerStat.project_id == project_id))
        .where(VolunteerStat.reliability.is_(None)))
    return [Bin(n / BINS, (n + 1) / BINS, int(counts.get(n, 0))) for n in range(BINS)], \
        int(missing or 0)


def _summary(session, project_id: int) -> Summary:
    answers = dict(session.execute(
        select(Answer.counted, func.count()).where(Answer.project_id == project_id)
        .group_by(Answer.counted)).all())
    volunteers = session.scalar(select(func.count(distinct(Answer.volunteer_id)))
                                .where(Answer.project_id == project_id))
    quarantined, blocked = session.execute(
        select(func.coalesce(func.sum(case((VolunteerStat.quarantined_at.is_not(None)
                                            & VolunteerStat.blocked.is_(False), 1), else_=0)), 0),
               func.coalesce(func.sum(case((VolunteerStat.blocked.is_(True), 1), else_=0)), 0))
        .where(VolunteerStat.project_id == project_id)).one()
    contested, gold = session.execute(
        select(func.coalesce(func.sum(case((Task.state == "contested", 1), else_=0)), 0),
               func.coalesce(func.sum(case((or_(Task.is_gold.is_(True),
                                                Task.state == "settled"), 1), else_=0)), 0))
        .where(Task.project_id == project_id)).one()
    return Summary(int(answers.get(True, 0)), int(answers.get(False, 0)), int(volunteers or 0),
                   int(quarantined), int(blocked), int(contested), int(gold))
