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
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from engine.projects import get_owned_project
from engine.quality import truth
from engine.services import Services
from engine.store.models import Answer, Handout, Project, Result, Task, VolunteerStat, utcnow

MIN_ANSWERS_TO_FLAG = 10
MIN_GOLD_TO_FLAG = 5
GOLD_FAIL_BELOW = 0.5
SAME_ANSWER_SHARE = 0.95
LOW_AGREEMENT_BELOW = 0.2


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
        rows = _answer_rows(session, project_id)
    tallies = _tally(task_type, project.config, rows)
    reliability, confusion = _reliability(task_type, project.config, rows)
    with services.db.writing() as session:
        for volunteer_id, tally in tallies.items():
            stat = session.get(VolunteerStat, (project_id, volunteer_id)) or VolunteerStat(
                project_id=project_id, volunteer_id=volunteer_id, blocked=False)
            _fill(stat, tally, task_type.min_seconds, reliability.get(volunteer_id),
                  confusion.get(volunteer_id))
            session.add(stat)
    return len(tallies)


def _answer_rows(session, project_id: int) -> list[tuple]:
    """(volunteer, task, answer value, gold or settled value, result value, seconds)."""
    query = (select(Answer.volunteer_id, Answer.task_id, Answer.value, Task.gold,
                    Result.value, Answer.created_at, Handout.created_at)
             .join(Task, Task.id == Answer.task_id)
             .outerjoin(Result, Result.task_id == Answer.task_id)
             .outerjoin(Handout, (Handout.task_id == Answer.task_id)
                        & (Handout.volunteer_id == Answer.volunteer_id))
             .where(Answer.project_id == project_id).order_by(Answer.id))
    return [(v, t, value, gold, result, _seconds(answered, handed))
            for v, t, value, gold, result, answered, handed in session.execute(query)]


def _seconds(answered, handed) -> float | None:
    if answered is None or handed is None:
        return None
    return max((answered - handed).total_seconds(), 0.0)


def _tally(task_type, config: dict, rows) -> dict[int, Tally]:
    tallies: dict[int, Tally] = defaultdict(Tally)
    for volunteer, _task, value, gold, result, seconds in rows:
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


def _reliability(task_type, config: dict, rows) -> tuple[dict[int, float], dict[int, Any]]:
    """Dawid-Skene over all of a project's answers, for label tasks; gold clamps."""
    labels = task_type.labels(config)
    if labels is None or not rows:
        return {}, {}
    triples = [(str(task), str(volunteer), task_type.label_of(value))
               for volunteer, task, value, _gold, _result, _seconds in rows]
    gold = {str(task): g for _v, task, _value, g, _r, _s in rows if g is not None}
    reliability, confusion = truth.worker_estimates(triples, labels, gold)
    return ({int(v): r for v, r in reliability.items()},
            {int(v): c for v, c in confusion.items()})


def _fill(stat: VolunteerStat, tally: Tally, min_seconds: float,
          reliability: float | None, confusion: Any) -> None:
    stat.answers = tally.answers
    stat.gold_answers = len(tally.gold_scores)
    stat.gold_score = _mean(tally.gold_scores) or 0.0
    stat.agreement = _mean(tally.agreements)
    stat.median_seconds = statistics.median(tally.seconds) if tally.seconds else None
    stat.reliability = reliability if reliability is not None else _fallback(stat)
    stat.confusion = confusion
    stat.flags = flags(stat, tally, min_seconds)
    stat.updated_at = utcnow()


def _fallback(stat: VolunteerStat) -> float | None:
    """Without a label model, gold accuracy (or agreement) is the best guess."""
    return stat.gold_score if stat.gold_answers else stat.agreement


def flags(stat: VolunteerStat, tally: Tally, min_seconds: float) -> list[str]:
    """Why an admin might want to look at this volunteer (empty: nothing odd)."""
    out = []
    if stat.gold_answers >= MIN_GOLD_TO_FLAG and stat.gold_score < GOLD_FAIL_BELOW:
        out.append("failing_gold")
    if stat.median_seconds is not None and stat.median_seconds < min_seconds \
            and len(tally.seconds) >= MIN_ANSWERS_TO_FLAG:
        out.append("too_fast")
    if tally.answers >= MIN_ANSWERS_TO_FLAG and \
            tally.values.most_common(1)[0][1] / tally.answers >= SAME_ANSWER_SHARE:
        out.append("same_answer")
    if len(tally.agreements) >= MIN_ANSWERS_TO_FLAG and stat.agreement < LOW_AGREEMENT_BELOW:
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
             "updated_at": s.updated_at.isoformat() if s.updated_at else None} for s in stats]
    return sorted(rows, key=lambda r: (not r["flags"], r["reliability"] or 0.0, r["volunteer"]))
