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

from engine.projects import get_owned_project
from engine.quality import crowd_model, moderation, truth_live
from engine.quality.thresholds import thresholds
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

QUARANTINING = ("too_fast", "same_answer", "failing_gold", "low_agreement")


@dataclass
class Tally:
    """What one volunteer did in a project, gathered in one pass over answers."""

    answers: int = 0
    gold_scores: list[float] = field(default_factory=list)
    agreements: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    values: Counter = field(default_factory=Counter)

    def gold_record(self) -> tuple[int, float]:
        """(gold answers, mean gold score, 0 with none): what VolunteerStat
        stores, from the periodic job and from the answer path's check alike."""
        return len(self.gold_scores), _mean(self.gold_scores) or 0.0


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


def _quarantines(stat: VolunteerStat, limits: dict[str, Any]) -> bool:
    return (limits["quarantine"] and not stat.blocked and stat.quarantined_at is None
            and any(flag in QUARANTINING for flag in stat.flags))


def answer_rows(session, project_id: int, volunteer_id: int | None = None,
                 since=None, latest: int | None = None) -> list[tuple]:
    """(volunteer, task, answer value, gold or settled value, result value, seconds,
    counted), oldest first: of one volunteer only, only answers after `since`, and
    only the `latest` of them, when given."""
    rows = [answer_row(*row) for row in session.execute(
        answer_query(project_id, volunteer_id, since, latest))]
    return rows[::-1] if latest is not None else rows


def answer_row(volunteer, task, value, gold, result, answered, handed, counted) -> tuple:
    """answer_rows' tuple from a row of answer_query: the seconds from hand-out
    to answer in place of the two times."""
    return volunteer, task, value, gold, result, _seconds(answered, handed), counted


def answer_query(project_id: int, volunteer_id: int | None = None, since=None,
                 latest: int | None = None):
    """answer_rows' SELECT (the arguments may be bind parameters). One
    volunteer's latest answers are read on the answer path
    (engine.quality.arrivals): the answer table's index (volunteer_id,
    project_id, id) serves them in id order under any plan (migration 0020)."""
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
    stat.gold_answers, stat.gold_score = tally.gold_record()
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
    project's thresholds (see engine.quality.thresholds)."""
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
        scopes = moderation.block_scopes(session, project, {
            s.volunteer_id: s.blocked for s in stats})
    rows = [{"volunteer": s.volunteer_id, "answers": s.answers, "gold_answers": s.gold_answers,
             "gold_score": s.gold_score, "reliability": s.reliability,
             "agreement": s.agreement, "median_seconds": s.median_seconds,
             "flags": s.flags or [], "blocked": s.blocked,
             "blocked_scope": scopes[s.volunteer_id],
             "quarantined": s.quarantined_at is not None,
             "quarantined_at": iso(s.quarantined_at),
             "quarantine_reasons": s.quarantine_reasons or [],
             "cleared_at": iso(s.cleared_at),
             "updated_at": iso(s.updated_at)} for s in stats]
    return sorted(rows, key=lambda r: (not r["quarantined"], not r["flags"],
                                       r["reliability"] or 0.0, r["volunteer"]))
