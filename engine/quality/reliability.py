"""Volunteer quality per project: reliability, gold accuracy, speed, and flags.

Run periodically (workers.jobs.estimate_quality) rather than per answer: the
estimates use every answer of a project at once (Dawid-Skene EM for label
tasks, vectorised), and the live path reads the stored estimates when it
merges a task's answers.
"""
from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import func, select, update

from engine.projects import config_version, get_owned_project
from engine.quality import crowd_model, held, moderation, trust, truth_live
from engine.services import Services
from engine.store.models import (
    Answer,
    Handout,
    Project,
    Result,
    Task,
    VolunteerStat,
    iso,
    utcnow,
)
from engine.store.redis_server import REDIS_DOWN

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
QUARANTINING = ("too_fast", "same_answer", "failing_gold", "low_agreement")
# The volunteer's own answers are checked as they arrive, at these counts (the
# periodic job checks everyone anyway): each of answers 3 to 10 (a script is
# caught early), every 5th to the 50th, then every 50th. One small read each
# where the thresholds judge anything (judges_arrivals), none elsewhere.
CHECK_FIRST, CHECK_EARLY, CHECK_EVERY, CHECK_LATE = (3, 10), 50, 5, 50
# ... on their latest answers only: the whole record cost 25 us an answer on the
# answer's own request (a volunteer with 50,000 answers waited a second every
# 50th), and a volunteer who turns to clicking at random after thousands of good
# answers is caught by what they do now. The periodic job reads everything.
CHECK_WINDOW = 500


@dataclass
class Tally:
    """What one volunteer did in a project, gathered in one pass over answers."""

    answers: int = 0
    gold_scores: list[float] = field(default_factory=list)
    agreements: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    values: Counter = field(default_factory=Counter)


def estimate_changed(services: Services) -> dict[int, int]:
    """Re-estimate the projects that got answers since their last estimate.

    The newest answer id per project is remembered in Redis; losing it (a wipe)
    only means one extra estimate."""
    with services.db.session() as session:
        newest = dict(session.execute(select(Answer.project_id, func.max(Answer.id))
                                      .group_by(Answer.project_id)).all())
    done = {}
    for project_id, answer_id in newest.items():
        key = f"bs:quality:newest:{project_id}"
        if int(services.redis.get(key) or 0) >= answer_id:
            continue
        done[project_id] = estimate_project(services, project_id)
        services.redis.set(key, answer_id)
    return done


def estimate_project(services: Services, project_id: int) -> int:
    """Recompute every volunteer's stats in a project; returns how many."""
    with services.db.session() as session:
        project = session.get(Project, project_id)
        task_type = services.registry.get(project.task_type)
        rows = answer_rows(session, project_id)
    tallies = tally_rows(task_type, project.config, rows)
    fitted = _reliability(task_type, project.config, rows)
    reliability, confusion = fitted.reliability, fitted.confusion
    crowd_model.record(services, project_id, fitted.choice)
    limits = thresholds(project)
    to_quarantine = {}
    with services.db.writing() as session:
        if fitted.calibration is not None:  # a label project with counted answers
            session.execute(update(Project).where(Project.id == project_id)
                            .values(calibration=fitted.calibration))
        for volunteer_id, tally in tallies.items():
            stat = session.get(VolunteerStat, (project_id, volunteer_id)) or VolunteerStat(
                project_id=project_id, volunteer_id=volunteer_id, blocked=False)
            recent = tally if stat.cleared_at is None else tally_rows(
                task_type, project.config,
                answer_rows(session, project_id, volunteer_id, stat.cleared_at)).get(
                    volunteer_id, Tally())
            _fill(stat, tally, reliability.get(volunteer_id), confusion.get(volunteer_id))
            stat.flags = flags(recent, task_type.min_seconds, limits)
            if _quarantines(stat, limits):
                to_quarantine[volunteer_id] = stat.flags
            session.add(stat)
    for volunteer_id, reasons in to_quarantine.items():
        moderation.quarantine(services, project_id, volunteer_id, reasons)
    return len(tallies)


def thresholds(project: Project) -> dict[str, Any]:
    """The project's flag thresholds: its own over the defaults."""
    return {**QUALITY_DEFAULTS, **(project.quality or {})}


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
    if not judges_arrivals(services, project_id):
        return False
    with services.db.session() as session:
        project = session.get(Project, project_id)
        if project is None:
            return False
        limits = thresholds(project)
        if not limits["quarantine"] and not limits["trusted_after_minutes"]:
            return False  # nothing to judge: one read, then nothing
        stat = session.get(VolunteerStat, (project_id, volunteer_id))
        if stat is not None and (stat.blocked or stat.quarantined_at is not None):
            return False
        rows = answer_rows(session, project_id, volunteer_id,
                            stat.cleared_at if stat is not None else None, CHECK_WINDOW + 1)
        whole = len(rows) <= CHECK_WINDOW  # one more asked for: did the window hold them all?
        rows = rows[-CHECK_WINDOW:]
        gold_before = (stat.gold_answers, stat.gold_score) if stat is not None else (None, None)
    task_type = services.registry.get(project.task_type)
    tally = tally_rows(task_type, project.config, rows).get(volunteer_id, Tally())
    if limits["trusted_after_minutes"] and whole:
        # a record from part of the answers would undercount; the periodic job has it
        _record_gold(services, project_id, volunteer_id, tally, limits, gold_before)
    found = flags(tally, task_type.min_seconds, limits)
    return limits["quarantine"] and any(flag in QUARANTINING for flag in found) and \
        moderation.quarantine(services, project_id, volunteer_id, found)


# Whether a project judges answers as they arrive, by (project, version): the
# version (engine.projects.config_version) hashes the quality thresholds, so an
# entry never outlives the thresholds it was read from.
_judging: dict[tuple[int, str], bool] = {}


def judges_arrivals(services: Services, project_id: int) -> bool:
    """Whether check_volunteer has anything to judge in this project: its
    thresholds quarantine, or hold newcomers back until their record is in.

    Asked on a volunteer's answers 3 to 10 and every few after (check_due):
    answered from this process's cache, keyed by the project's version as the
    answer's own validation read it (Dispatcher.meta_version: no call of its
    own, and another process's change of thresholds is seen within its
    VERSION_SECONDS), a project that judges nothing costs those answers no SQL
    at all; on PostgreSQL the read was four round trips. True when unsure
    (Redis out of reach): check_volunteer then reads SQL as before."""
    try:
        version = services.dispatcher.meta_version(project_id)
    except REDIS_DOWN:
        return True
    if version is None:
        return True
    judged = _judging.get((project_id, version))
    if judged is None:
        with services.db.session() as session:
            project = session.get(Project, project_id)
            if project is None:
                return False
            limits, read = thresholds(project), config_version(project)
        judged = bool(limits["quarantine"] or limits["trusted_after_minutes"])
        if read != version:  # changed since Redis had it: not cached under the old one
            return judged
        if len(_judging) > 10_000:
            _judging.clear()
        _judging[(project_id, version)] = judged
    return judged


def _record_gold(services: Services, project_id: int, volunteer_id: int, tally: Tally,
                 limits: dict[str, Any], before: tuple) -> None:
    """Store a volunteer's gold record as it grows, so that gold establishes them
    (engine.quality.trust) by their next answer rather than at the next periodic
    estimate. `before` is the stored (gold answers, gold score) that
    check_volunteer has already read: this runs on the answer path, and most
    checks find no new gold answer, so they take no write lock and no second
    read. When this record is the one
    that establishes them, their held tasks are merged again soon
    (engine.quality.held) rather than at the next periodic run."""
    answers, score = len(tally.gold_scores), _mean(tally.gold_scores) or 0.0
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


def _quarantines(stat: VolunteerStat, limits: dict[str, Any]) -> bool:
    return (limits["quarantine"] and not stat.blocked and stat.quarantined_at is None
            and any(flag in QUARANTINING for flag in stat.flags))


def answer_rows(session, project_id: int, volunteer_id: int | None = None,
                 since=None, latest: int | None = None) -> list[tuple]:
    """(volunteer, task, answer value, gold or settled value, result value, seconds,
    counted), oldest first: of one volunteer only, only answers after `since`, and
    only the `latest` of them, when given."""
    query = answer_query(project_id, volunteer_id, since, latest)
    rows = [(v, t, value, gold, result, _seconds(answered, handed), counted)
            for v, t, value, gold, result, answered, handed, counted in session.execute(query)]
    return rows[::-1] if latest is not None else rows


def answer_query(project_id: int, volunteer_id: int | None = None, since=None,
                 latest: int | None = None):
    """answer_rows' SELECT. One volunteer's latest answers are read on the answer
    path: the answer table's index (volunteer_id, project_id, id) serves them in
    id order under any plan (migration 0020)."""
    query = (select(Answer.volunteer_id, Answer.task_id, Answer.value, Task.gold,
                    Result.value, Answer.created_at, Handout.created_at, Answer.counted)
             .join(Task, Task.id == Answer.task_id)
             .outerjoin(Result, Result.task_id == Answer.task_id)
             .outerjoin(Handout, (Handout.task_id == Answer.task_id)
                        & (Handout.volunteer_id == Answer.volunteer_id))
             .where(Answer.project_id == project_id).order_by(Answer.id))
    if volunteer_id is not None:
        query = query.where(Answer.volunteer_id == volunteer_id)
    if since is not None:
        query = query.where(Answer.created_at > since)
    if latest is not None:
        query = query.order_by(None).order_by(Answer.id.desc()).limit(latest)
    return query


def _seconds(answered, handed) -> float | None:
    if answered is None or handed is None:
        return None
    return max((answered - handed).total_seconds(), 0.0)


def tally_rows(task_type, config: dict, rows) -> dict[int, Tally]:
    tallies: dict[int, Tally] = defaultdict(Tally)
    for volunteer, _task, value, gold, result, seconds, _counted in rows:
        tally = tallies[volunteer]
        tally.answers += 1
        if gold is not None:
            tally.gold_scores.append(task_type.score(value, gold, config))
        elif result is not None:
            tally.agreements.append(task_type.score(value, result, config))
        if seconds is not None:
            tally.seconds.append(seconds)
        tally.values[_hashable(value)] += 1
    return tallies


def _reliability(task_type, config: dict, rows) -> truth_live.WorkerFit:
    """Dawid-Skene over a project's counted answers, for label tasks; gold clamps.
    Uncounted answers (a quarantined or blocked volunteer's) are left out: a
    script's hundred identical answers would otherwise teach the model what the
    crowd's answers mean. Their givers keep the fallback (gold, agreement).
    Volunteers are keyed by their ids."""
    labels = task_type.labels(config)
    rows = [row for row in rows if row[6]]
    if labels is None or not rows:
        return truth_live.WorkerFit({}, {}, None, None)
    triples = [(str(task), str(volunteer), task_type.label_of(value))
               for volunteer, task, value, _gold, _result, _seconds, _counted in rows]
    gold = {str(task): g for _v, task, _value, g, _r, _s, _c in rows if g is not None}
    fitted = truth_live.fit_workers(triples, labels, gold)
    return replace(fitted, reliability={int(v): r for v, r in fitted.reliability.items()},
                   confusion={int(v): c for v, c in fitted.confusion.items()})


def _fill(stat: VolunteerStat, tally: Tally, reliability: float | None,
          confusion: Any) -> None:
    stat.answers = tally.answers
    stat.gold_answers = len(tally.gold_scores)
    stat.gold_score = _mean(tally.gold_scores) or 0.0
    stat.agreement = _mean(tally.agreements)
    stat.median_seconds = statistics.median(tally.seconds) if tally.seconds else None
    stat.reliability = reliability if reliability is not None else _fallback(stat)
    stat.confusion = confusion
    stat.updated_at = utcnow()


def _fallback(stat: VolunteerStat) -> float | None:
    """Without a label model, gold accuracy (or agreement) is the best guess."""
    return stat.gold_score if stat.gold_answers else stat.agreement


def flags(tally: Tally, min_seconds: float, limits: dict[str, Any]) -> list[str]:
    """Why this volunteer's answers look wrong (empty: nothing odd), under a
    project's thresholds (see QUALITY_DEFAULTS)."""
    out = []
    gold = tally.gold_scores
    if len(gold) >= limits["failing_gold_after"] and \
            _mean(gold) < limits["failing_gold_below"]:
        out.append("failing_gold")
    fastest = limits["too_fast_seconds"]
    if len(tally.seconds) >= limits["too_fast_after"] and statistics.median(tally.seconds) < (
            min_seconds if fastest is None else fastest):
        out.append("too_fast")
    if tally.answers >= limits["same_answer_after"] and \
            tally.values.most_common(1)[0][1] / tally.answers >= limits["same_answer_share"]:
        out.append("same_answer")
    if len(tally.agreements) >= limits["low_agreement_after"] and \
            _mean(tally.agreements) < limits["low_agreement_below"]:
        out.append("low_agreement")
    return out


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _hashable(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def volunteer_stats(services: Services, identity, project_id: int) -> list[dict[str, Any]]:
    """The admin's view of a project's volunteers, flagged ones first."""
    project = get_owned_project(services, identity, project_id)
    with services.db.session() as session:
        stats = list(session.scalars(select(VolunteerStat).where(
            VolunteerStat.project_id == project.id)))
    rows = [{"volunteer": s.volunteer_id, "answers": s.answers, "gold_answers": s.gold_answers,
             "gold_score": s.gold_score, "reliability": s.reliability,
             "agreement": s.agreement, "median_seconds": s.median_seconds,
             "flags": s.flags or [], "blocked": s.blocked,
             "quarantined": s.quarantined_at is not None,
             "quarantined_at": iso(s.quarantined_at),
             "quarantine_reasons": s.quarantine_reasons or [],
             "cleared_at": iso(s.cleared_at),
             "updated_at": iso(s.updated_at)} for s in stats]
    return sorted(rows, key=lambda r: (not r["quarantined"], not r["flags"],
                                       r["reliability"] or 0.0, r["volunteer"]))
