"""What the console shows of a project: how fast it moves, when it may be done
and why it may be slow, how sure its results are (its items' merged results,
a page at a time, are engine.delivery.item_results).

A charity's first questions about a running project are "is anyone working
on it?" and "when will it be finished?"; its next are "how good are the
results?" and "what did the crowd say about this photo?". Everything here is
counted in SQL with aggregates, so a project of 100,000 tasks costs a few
indexed scans and never a Python loop over its answers: answers per hour are
grouped by hour in SQL (each database spells "the hour of" its own way), the
confidence histogram by bin, the work left by project. Only a page of items
(50 or so) and one item's answers are ever read row by row.

The estimate is deliberately simple and says what it rests on: answers still
needed (each open task's ``need`` minus the counted answers it has) divided
by the recent rate of counted answers. ``need`` only rises when a merged
result is not confident enough (engine.quality.retirement), so the estimate
is a floor: disagreement adds work it cannot foresee. When it cannot be made
(no recent answers) it says so instead of guessing.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, distinct, exists, func, literal_column, select

from engine.projects import project_view
from engine.services import Services
from engine.store.models import Answer, Item, Job, Project, Result, Task, aware, utcnow

HOURLY_DAYS = 7  # the dashboard's chart: answers per hour over the last week
RATE_WINDOW = timedelta(days=3)  # the "recent" of the recent rate
MIN_RATE_SPAN = timedelta(hours=1)  # a first burst is not extrapolated from minutes
DAY, WEEK = timedelta(days=1), timedelta(days=7)
CONTESTED_SHARE = 0.1  # of finished tasks: above it, admins are the bottleneck
CONFIDENCE_BINS = 10
FINISHED = ("retired", "contested", "settled")  # tasks with a merged result
_HOUR_FORMAT = "%Y-%m-%d %H"


# -- the numbers -------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    """Why a project may be slow: a stable code and a sentence for the charity."""

    code: str
    text: str


@dataclass(frozen=True)
class Estimate:
    """When the work may be done. ``status`` is ``estimated`` (then ``finish_at``
    is set), ``no_estimate`` (no recent answers), ``no_tasks``, ``review`` (all
    answered, contested tasks wait for an admin), ``finished`` or ``closed``."""

    status: str
    answers_needed: int
    rate_per_hour: float  # counted answers to real (non-gold) tasks, recently
    finish_at: datetime | None
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True)
class Activity:
    """One project's recent work, as counted in SQL."""

    answers_needed: int = 0
    max_need: int = 0  # the most different volunteers one open task needs
    recent_answers: int = 0  # counted, non-gold, within RATE_WINDOW
    first_recent: datetime | None = None
    volunteers_day: int = 0
    volunteers_week: int = 0


@dataclass(frozen=True)
class Bin:
    low: float
    high: float
    count: int

    @property
    def label(self) -> str:
        return f"{round(self.low * 100)}–{round(self.high * 100)}%"


@dataclass(frozen=True)
class HourCount:
    start: datetime
    count: int


@dataclass(frozen=True)
class Insight:
    """Everything the project dashboard draws."""

    progress: dict[str, int]  # tasks by state (engine.projects) + items, items_done
    hourly: list[HourCount]
    volunteers_day: int
    volunteers_week: int
    estimate: Estimate
    confidence: list[Bin]
    now: datetime

    @property
    def answers_in_chart(self) -> int:
        return sum(hour.count for hour in self.hourly)


def project_insight(services: Services, project: Project, days: int = HOURLY_DAYS,
                    now: datetime | None = None) -> Insight:
    """The dashboard's numbers for one project (the caller checked ownership)."""
    now = now or utcnow()
    progress = {**project_view(services, project).progress, **item_progress(services, project.id)}
    activity = activities(services, [project.id], now).get(project.id, Activity())
    return Insight(progress, answers_per_hour(services, project.id, days, now),
                   activity.volunteers_day, activity.volunteers_week,
                   estimate(project.state, progress, activity, now),
                   confidence_histogram(services, project.id), now)


def estimates(services: Services, views, now: datetime | None = None) -> dict[int, Estimate]:
    """The estimate of each of several projects (ProjectViews), in a few
    grouped queries whatever their number: the projects list."""
    now = now or utcnow()
    found = activities(services, [v.project.id for v in views], now)
    return {v.project.id: estimate(v.project.state, v.progress,
                                   found.get(v.project.id, Activity()), now) for v in views}


def activities(services: Services, project_ids: list[int], now: datetime) -> dict[int, Activity]:
    """Work left, the recent rate and active volunteers of each project."""
    if not project_ids:
        return {}
    since = now - RATE_WINDOW
    with services.reader.session() as session:
        # Counted answers of each open task, then need minus them, summed per project.
        counted = (select(Answer.task_id, func.count().label("n"))
                   .join(Task, Task.id == Answer.task_id)
                   .where(Answer.project_id.in_(project_ids), Task.state == "open",
                          Answer.counted.is_(True))
                   .group_by(Answer.task_id).subquery())
        missing = Task.need - func.coalesce(counted.c.n, 0)
        left = {pid: (int(needed or 0), int(most or 0)) for pid, needed, most in session.execute(
            select(Task.project_id, func.sum(case((missing > 0, missing), else_=0)),
                   func.max(Task.need))
            .outerjoin(counted, counted.c.task_id == Task.id)
            .where(Task.project_id.in_(project_ids), Task.state == "open",
                   Task.is_gold.is_(False))
            .group_by(Task.project_id))}
        recent = {pid: (n, first) for pid, n, first in session.execute(
            select(Answer.project_id, func.count(), func.min(Answer.created_at))
            .join(Task, Task.id == Answer.task_id)
            .where(Answer.project_id.in_(project_ids), Answer.created_at >= since,
                   Answer.created_at <= now, Answer.counted.is_(True),
                   Task.is_gold.is_(False))
            .group_by(Answer.project_id))}
        day_ago = now - DAY
        people = {pid: (int(day or 0), int(week or 0)) for pid, day, week in session.execute(
            select(Answer.project_id,
                   func.count(distinct(case((Answer.created_at >= day_ago,
                                             Answer.volunteer_id)))),
                   func.count(distinct(Answer.volunteer_id)))
            .where(Answer.project_id.in_(project_ids), Answer.created_at >= now - WEEK,
                   Answer.created_at <= now)
            .group_by(Answer.project_id))}
    out = {}
    for pid in project_ids:
        needed, most = left.get(pid, (0, 0))
        count, first = recent.get(pid, (0, None))
        day, week = people.get(pid, (0, 0))
        out[pid] = Activity(needed, most, count, aware(first) if first else None, day, week)
    return out


def estimate(state: str, progress: dict[str, int], activity: Activity,
             now: datetime) -> Estimate:
    """The finish date from the recent rate, and the reasons it may be slow."""
    needed = activity.answers_needed
    rate = recent_rate(activity, now)
    if state in ("completed", "archived"):
        return Estimate("closed", needed, rate, None)
    if not progress.get("tasks"):
        return Estimate("no_tasks", 0, rate, None, slow_reasons(state, progress, activity))
    if progress.get("open", 0) == 0:
        status = "review" if progress.get("contested") else "finished"
        return Estimate(status, 0, rate, None, slow_reasons(state, progress, activity))
    reasons = slow_reasons(state, progress, activity)
    if rate <= 0:
        return Estimate("no_estimate", needed, 0.0, None, reasons)
    return Estimate("estimated", needed, rate, now + timedelta(hours=needed / rate), reasons)


def recent_rate(activity: Activity, now: datetime) -> float:
    """Counted answers per hour over the recent window, or since the first answer
    in it when that came later (a project that started yesterday is not diluted
    by the days before it existed)."""
    if not activity.recent_answers or activity.first_recent is None:
        return 0.0
    start = max(now - RATE_WINDOW, activity.first_recent)
    span = max(now - start, MIN_RATE_SPAN)
    return activity.recent_answers / (span.total_seconds() / 3600)


def slow_reasons(state: str, progress: dict[str, int], activity: Activity) -> tuple[Reason, ...]:
    reasons = []
    if state in ("draft", "paused"):
        reasons.append(Reason("not_active", f"The project is {state}: volunteers cannot get "
                              "its tasks until it is published." if state == "draft" else
                              f"The project is {state}: volunteers cannot get its tasks "
                              "until it is resumed."))
    elif progress.get("open") and activity.volunteers_day == 0:
        reasons.append(Reason("no_volunteers", "No volunteers lately: nobody answered in the "
                              "last 24 hours. Share the project to bring people in."))
    finished = sum(progress.get(s, 0) for s in FINISHED)
    contested = progress.get("contested", 0)
    if contested and contested >= CONTESTED_SHARE * finished:
        reasons.append(Reason("many_contested", f"Many contested tasks: {contested} of "
                              f"{finished} finished tasks wait for an admin to settle them."))
    if progress.get("open") and 0 < activity.volunteers_week < activity.max_need:
        reasons.append(Reason("too_few_answers", "Too few answers per task: a task needs "
                              f"answers from {activity.max_need} different volunteers, and only "
                              f"{activity.volunteers_week} answered in the last 7 days."))
    return tuple(reasons)


def item_progress(services: Services, project_id: int) -> dict[str, int]:
    """Items in all, and items done (none of their tasks open or contested)."""
    unfinished = func.sum(case((Task.state.in_(("open", "contested")), 1), else_=0))
    per_item = (select(Task.item_id, unfinished.label("unfinished"))
                .where(Task.project_id == project_id, Task.is_gold.is_(False))
                .group_by(Task.item_id).subquery())
    with services.reader.session() as session:
        total, done = session.execute(select(
            func.count(), func.coalesce(func.sum(case((per_item.c.unfinished == 0, 1),
                                                      else_=0)), 0))).one()
    return {"items": int(total), "items_done": int(done)}


def answers_per_hour(services: Services, project_id: int, days: int = HOURLY_DAYS,
                     now: datetime | None = None) -> list[HourCount]:
    """Answers received in each hour of the last ``days`` days (UTC), oldest
    first, the current hour last; hours without answers count 0."""
    now = now or utcnow()
    first = (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0) \
        + timedelta(hours=1)
    with services.reader.session() as session:
        key = _hour_of(session.get_bind().dialect.name, Answer.created_at)
        counts = dict(session.execute(
            select(key, func.count())
            .where(Answer.project_id == project_id, Answer.created_at >= first,
                   Answer.created_at <= now)
            .group_by(key)).all())
    hours = [first + timedelta(hours=n) for n in range(days * 24)]
    return [HourCount(hour, int(counts.get(hour.strftime(_HOUR_FORMAT), 0))) for hour in hours]


def _hour_of(dialect: str, column):
    """SQL for "YYYY-MM-DD HH" (UTC) of a datetime column (see ``period_of``)."""
    return period_of(dialect, column, "hour")


# Each period's text form on PostgreSQL, and its length as SQLite's ISO text.
_PERIODS = {"hour": ("'YYYY-MM-DD HH24'", 13), "day": ("'YYYY-MM-DD'", 10)}


def period_of(dialect: str, column, period: str):
    """SQL for the hour ("YYYY-MM-DD HH") or day ("YYYY-MM-DD"), in UTC, of a
    datetime column, to group answers by. SQLite keeps datetimes as ISO text in
    UTC (SQLAlchemy's format), PostgreSQL as timestamptz. Literals, not bound
    values: PostgreSQL must see the grouped expression as one."""
    pattern, length = _PERIODS[period]
    if dialect == "postgresql":
        return func.to_char(func.timezone(literal_column("'UTC'"), column),
                            literal_column(pattern))
    if dialect == "sqlite":
        return func.substr(column, literal_column("1"), literal_column(str(length)))
    raise NotImplementedError(f"answers per {period} on {dialect}")


def confidence_histogram(services: Services, project_id: int,
                         bins: int = CONFIDENCE_BINS) -> list[Bin]:
    """How many finished tasks' results fall in each confidence bin (0-10%, ...,
    90-100%; a confidence of 1 is in the last)."""
    which = case(*[(Result.confidence >= literal_column(repr(n / bins)), literal_column(str(n)))
                   for n in range(bins - 1, 0, -1)], else_=literal_column("0"))
    with services.reader.session() as session:
        counts = dict(session.execute(
            select(which, func.count()).join(Task, Task.id == Result.task_id)
            .where(Result.project_id == project_id, Task.state.in_(FINISHED),
                   Task.is_gold.is_(False))
            .group_by(which)).all())
    return [Bin(n / bins, (n + 1) / bins, int(counts.get(n, 0))) for n in range(bins)]


def has_iiif_items(services: Services, project_id: int) -> bool:
    """Whether any item came from a IIIF manifest (annotations can point at it)."""
    with services.reader.session() as session:
        return bool(session.scalar(select(exists().where(
            Item.project_id == project_id, Item.job_id == Job.id, Job.kind == "iiif"))))
