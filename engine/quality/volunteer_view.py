"""What the quality desk shows of volunteers: one volunteer in a project (the
volunteer page), and the newcomers an admin has not looked at yet (the
newcomers' spot-check).

An admin deciding whether to block or clear someone needs what that person
did, not last night's estimate of it: the numbers here (answers, gold score,
agreement with results, speed) are counted from the volunteer's own answers
when the page is read, the same way the periodic estimate counts them
(engine.quality.reliability). Only the reliability, which needs the whole
crowd's answers at once (Dawid-Skene), is the stored estimate.

A newcomer is a volunteer with answers in the project whom no admin has
spot-checked yet (``VolunteerStat.checked_at`` unset) and who is not blocked;
one with answers but no stat row yet (the periodic estimate has not run) is a
newcomer too. FromThePage's habit: look at each new volunteer's first few
answers once, early, while a misunderstanding is cheap to fix.

Every page costs a fixed handful of queries, whatever the number of answers:
one read of the volunteer's answers for the numbers, grouped counts per day,
and small bounded reads for the lists; the newcomers' samples are one windowed
query for the whole page.
"""
from __future__ import annotations

import statistics
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select

from engine.delivery.insight import period_of
from engine.errors import NotFoundError
from engine.identity import Identity
from engine.projects import get_moderated_project
from engine.quality import audit, moderation, reliability
from engine.services import Services
from engine.store.models import (
    Answer,
    Item,
    Organisation,
    OrganisationBlock,
    Project,
    Result,
    Task,
    Volunteer,
    VolunteerStat,
    aware,
    utcnow,
)

CHART_DAYS = 90  # the per-day chart: at most the last 90 days the volunteer answered in,
MIN_DAYS = 7  # and at least a week, so one busy day is not a wall of one bar
RECENT = 20  # the volunteer page's last answers
CONTESTED = 50  # answers on contested tasks listed, newest first
SAMPLE = 5  # the newcomers' first answers shown
PAGE = 20  # newcomers a page
AGREES_AT = 0.5  # a score (0..1, the task type's) from which an answer "agrees"


# -- one volunteer ---------------------------------------------------------------------------


def volunteer_profile(services: Services, identity: Identity, project_id: int,
                      volunteer_id: int) -> dict[str, Any]:
    """One volunteer in a project as an admin judges them: their numbers, flags
    and state, answers per day, answers on contested tasks and their last
    answers with each task's current result. 404 for a volunteer with no
    answers and no stat in the project (admins only: get_moderated_project)."""
    project = get_moderated_project(services, identity, project_id)
    task_type = services.registry.get(project.task_type)
    with services.db.session() as session:
        stat = session.get(VolunteerStat, (project.id, volunteer_id))
        rows = reliability.answer_rows(session, project.id, volunteer_id)
        if stat is None and not rows:
            raise NotFoundError(f"volunteer {volunteer_id} has no answers in this project",
                                {"volunteer": "not found"})
        volunteer = session.get(Volunteer, volunteer_id)
        per_day = _per_day(session, project.id, volunteer_id)
        contested_total = session.scalar(select(func.count()).select_from(
            _answers(project.id, volunteer_id).where(Task.state == "contested").subquery()))
        contested = list(session.execute(_answers(project.id, volunteer_id)
                                         .where(Task.state == "contested").limit(CONTESTED)))
        recent = list(session.execute(_answers(project.id, volunteer_id).limit(RECENT)))
        organisation = session.get(Organisation, project.organisation_id).name
        scope = moderation.block_scopes(session, project, {
            volunteer_id: bool(stat and stat.blocked)})[volunteer_id]
        organisation_block = session.get(
            OrganisationBlock, (project.organisation_id, volunteer_id)) is not None
    return {
        "project": project, "organisation": organisation, "volunteer": volunteer_id,
        "name": volunteer.name if volunteer else None,
        "blocked_everywhere": bool(volunteer and volunteer.blocked),
        "blocked_scope": scope,
        # each block that holds here: a platform unblock leaves the charity's own
        "blocked_here": bool(stat and stat.blocked_here),
        "blocked_organisation": organisation_block,
        **_numbers(task_type, project.config, rows),
        **_state(stat),
        "days": _days(per_day),
        "contested_total": int(contested_total or 0),
        "contested": [_answer_row(task_type, project.config, row) for row in contested],
        "recent": [_answer_row(task_type, project.config, row) for row in recent],
    }


def _numbers(task_type, config: dict, rows: list[tuple]) -> dict[str, Any]:
    """Answers, gold score, agreement and speed, counted as the estimate counts
    them (reliability's tally), from every answer the volunteer gave here."""
    tally = reliability.tally_rows(task_type, config, rows).get(
        rows[0][0] if rows else None, reliability.Tally())
    return {
        "answers": tally.answers,
        "counted": sum(1 for row in rows if row[6]),
        "gold_answers": len(tally.gold_scores),
        "gold_score": _mean(tally.gold_scores),
        "agreement_answers": len(tally.agreements),
        "agreement": _mean(tally.agreements),
        "median_seconds": statistics.median(tally.seconds) if tally.seconds else None,
    }


def _state(stat: VolunteerStat | None) -> dict[str, Any]:
    """What the engine and the admins decided: flags, quarantine, block, checks."""
    if stat is None:
        return {"reliability": None, "estimated_at": None, "flags": [], "quarantined": False,
                "quarantined_at": None, "quarantine_reasons": [], "blocked": False,
                "blocked_at": None, "cleared_at": None, "checked_at": None}
    return {
        "reliability": stat.reliability,
        "estimated_at": _at(stat.updated_at) if stat.answers else None,
        "flags": list(stat.flags or []),
        "quarantined": stat.quarantined_at is not None,
        "quarantined_at": _at(stat.quarantined_at),
        "quarantine_reasons": list(stat.quarantine_reasons or []),
        "blocked": bool(stat.blocked),
        "blocked_at": _at(stat.blocked_at),
        "cleared_at": _at(stat.cleared_at),
        "checked_at": _at(stat.checked_at),
    }


def _per_day(session, project_id: int, volunteer_id: int) -> dict[date, int]:
    """The volunteer's answers in the project per day (UTC), counted in SQL."""
    key = period_of(session.get_bind().dialect.name, Answer.created_at, "day")
    return {date.fromisoformat(day): int(n) for day, n in session.execute(
        select(key, func.count()).where(Answer.project_id == project_id,
                                        Answer.volunteer_id == volunteer_id)
        .group_by(key))}


def _days(per_day: dict[date, int]) -> list[dict[str, Any]]:
    """Every day from the first answer to the last (the last CHART_DAYS of them
    at most, a week at least), days without answers counting 0: the chart's bars."""
    if not per_day:
        return []
    last = max(per_day)
    first = min(max(min(per_day), last - timedelta(days=CHART_DAYS - 1)),
                last - timedelta(days=MIN_DAYS - 1))
    return [{"day": first + timedelta(days=n), "count": per_day.get(first + timedelta(days=n), 0)}
            for n in range((last - first).days + 1)]


def _answers(project_id: int, volunteer_id: int):
    """The volunteer's answers in the project with their task and its result,
    newest first."""
    return (select(Answer.id, Answer.task_id, Answer.value, Answer.counted, Answer.created_at,
                   Task.payload, Task.state, Task.is_gold, Task.gold, Result.value,
                   Result.confidence, Item.ref)
            .join(Task, Task.id == Answer.task_id)
            .outerjoin(Item, Item.id == Task.item_id)
            .outerjoin(Result, Result.task_id == Answer.task_id)
            .where(Answer.project_id == project_id, Answer.volunteer_id == volunteer_id)
            .order_by(Answer.id.desc()))


def _answer_row(task_type, config: dict, row) -> dict[str, Any]:
    """One answer as the pages list it: the task as shown, the answer in words,
    and how it compares with the task's gold (if any) or current result."""
    (_id, task_id, value, counted, at, payload, state, is_gold, gold, result, confidence,
     ref) = row
    # A settled task's gold is the admin's settlement (engine.quality.review).
    against, reference = (("gold" if is_gold else "settled", gold) if gold is not None
                          else ("result", result))
    agrees = None
    if reference is not None:
        try:
            agrees = task_type.score(value, reference, config) >= AGREES_AT
        except (KeyError, TypeError, ValueError):  # an answer of a config since edited
            agrees = None
    return {
        "task": task_id, "state": state, "is_gold": bool(is_gold),
        "shown": _shown(payload or {}, ref),
        "answer": _answer_text(task_type, value), "counted": bool(counted),
        "at": aware(at),
        "result": _value_text(task_type, result),
        "confidence": confidence if result is not None else None,
        "gold": _value_text(task_type, gold),
        "against": against if reference is not None else None,
        "agrees": agrees,
    }


def _shown(payload: dict, ref: str | None) -> dict[str, Any]:
    """What the volunteer saw, for a glance: the text, or the picture (a
    thumbnail when the item has one), and the item's own reference (from its
    row: volunteers are never sent it)."""
    image = payload.get("thumb") or payload.get("image")
    return {"text": payload.get("text") if isinstance(payload.get("text"), str) else None,
            "image": image if isinstance(image, str) else None,
            "ref": ref, "line": payload.get("line"), "tile": payload.get("tile")}


def _answer_text(task_type, value: Any) -> str:
    try:
        return task_type.answer_to_text(value)
    except (KeyError, TypeError, ValueError):  # an answer of a config since edited
        return str(value)


def _value_text(task_type, value: Any) -> str | None:
    if value is None:
        return None
    try:
        return task_type.value_to_text(value)
    except (KeyError, TypeError, ValueError):
        return str(value)


# -- the newcomers ----------------------------------------------------------------------------


def newcomers(services: Services, identity: Identity, project_id: int, sample: int = SAMPLE,
              limit: int = PAGE, offset: int = 0) -> dict[str, Any]:
    """A page of the project's volunteers not spot-checked yet, newest first (by
    their first answer), each with their first `sample` answers."""
    project = get_moderated_project(services, identity, project_id)
    task_type = services.registry.get(project.task_type)
    with services.db.session() as session:
        query = _newcomers(project.id)
        total = session.scalar(select(func.count()).select_from(query.subquery()))
        found = list(session.execute(query.order_by(query.selected_columns[1].desc())
                                     .limit(limit + 1).offset(offset)))
        shown = found[:limit]
        samples = _samples(session, project.id, [row[0] for row in shown], sample)
    people = [{"volunteer": volunteer_id, "first_at": aware(first_at), "answers": int(n),
               "quarantined": quarantined_at is not None,
               "quarantine_reasons": list(reasons or []), "flags": list(flags or []),
               "sample": [_answer_row(task_type, project.config, row)
                          for row in samples.get(volunteer_id, [])]}
              for volunteer_id, _first, first_at, n, quarantined_at, reasons, flags in shown]
    return {"project": project, "total": int(total or 0), "limit": limit, "offset": offset,
            "has_older": len(found) > limit, "has_newer": offset > 0, "volunteers": people}


def _newcomers(project_id: int):
    """Volunteers with answers here, no admin's look yet and not blocked: one
    row each (volunteer, first answer id, its time, answers, quarantine state).
    Answers are grouped first, then joined to the stat (JSON columns cannot be
    grouped on PostgreSQL)."""
    firsts = (select(Answer.volunteer_id.label("volunteer_id"),
                     func.min(Answer.id).label("first_answer"),
                     func.min(Answer.created_at).label("first_at"),
                     func.count(Answer.id).label("answers"))
              .where(Answer.project_id == project_id)
              .group_by(Answer.volunteer_id).subquery())
    return (select(firsts.c.volunteer_id, firsts.c.first_answer, firsts.c.first_at,
                   firsts.c.answers, VolunteerStat.quarantined_at,
                   VolunteerStat.quarantine_reasons, VolunteerStat.flags)
            .outerjoin(VolunteerStat, and_(VolunteerStat.project_id == project_id,
                                           VolunteerStat.volunteer_id == firsts.c.volunteer_id))
            .where(or_(VolunteerStat.volunteer_id.is_(None),
                       and_(VolunteerStat.checked_at.is_(None),
                            VolunteerStat.blocked.is_(False)))))


def _samples(session, project_id: int, volunteer_ids: list[int],
             sample: int) -> dict[int, list[tuple]]:
    """The first `sample` answers of each volunteer, in one windowed query."""
    if not volunteer_ids:
        return {}
    numbered = (select(Answer.id.label("answer_id"), Answer.volunteer_id.label("volunteer_id"),
                       func.row_number().over(partition_by=Answer.volunteer_id,
                                              order_by=Answer.id).label("n"))
                .where(Answer.project_id == project_id,
                       Answer.volunteer_id.in_(volunteer_ids))
                .subquery())
    query = (select(numbered.c.volunteer_id, Answer.id, Answer.task_id, Answer.value,
                    Answer.counted, Answer.created_at, Task.payload, Task.state, Task.is_gold,
                    Task.gold, Result.value, Result.confidence, Item.ref)
             .join(Answer, Answer.id == numbered.c.answer_id)
             .join(Task, Task.id == Answer.task_id)
             .outerjoin(Item, Item.id == Task.item_id)
             .outerjoin(Result, Result.task_id == Answer.task_id)
             .where(numbered.c.n <= sample)
             .order_by(numbered.c.volunteer_id, Answer.id))
    out: dict[int, list[tuple]] = {}
    for volunteer_id, *row in session.execute(query):
        out.setdefault(volunteer_id, []).append(tuple(row))
    return out


def mark_checked(services: Services, identity: Identity, project_id: int, volunteer_id: int,
                 note: str = "") -> None:
    """An admin looked at a newcomer's first answers and found them right: they
    leave the spot-check list, and the audit log says who looked, when, and
    what they noted. 404 for a volunteer with no answers in the project."""
    project = get_moderated_project(services, identity, project_id)
    with services.db.writing() as session:
        answers = session.scalar(select(func.count()).where(
            Answer.project_id == project.id, Answer.volunteer_id == volunteer_id))
        if not answers:
            raise NotFoundError(f"volunteer {volunteer_id} has no answers in this project",
                                {"volunteer": "not found"})
        stat = moderation.stat_row(session, project.id, volunteer_id)
        stat.checked_at = utcnow()
        audit.record(session, session.get(Project, project.id), "spot_check", identity.id,
                     volunteer_id, scope="project", reason=note.strip(),
                     detail={"answers": int(answers)})


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _at(moment: datetime | None) -> datetime | None:
    return aware(moment) if moment else None
