"""The hot path's rows in SQL: who was handed what, who gave it back, and the
answers. Redis decides who may get what; these rows are what a rebuild reads
it back from, and an answer that got a 2xx is one of them.

The hand-out and answer writes run as prepared statements on a bare
connection (engine.store.prepared): no ORM Session on the hot path. The
rest (a retry's lookup, a skip's release) is off it and uses a Session.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, delete, insert, select, update

from engine.dispatch.leases import LeaseClaim
from engine.errors import ConflictError, GoneError, NotFoundError
from engine.store.db import Database, insert_ignoring_duplicates
from engine.store.models import Answer, Handout, utcnow
from engine.store.prepared import Prepared, per_database, transaction


@dataclass(frozen=True)
class Stored:
    """An answer row as the volunteer's reply needs it."""

    id: int
    counted: bool
    created_at: datetime


@dataclass(frozen=True)
class _Statements:
    """The hot path's SQL, built once per database (which decides the upsert's spelling)."""

    handout: Prepared
    answer: Prepared
    surplus: Prepared
    withdraw: Prepared


_HANDOUT, _ANSWER = Handout.__table__, Answer.__table__


@per_database
def _statements(database: Database) -> _Statements:
    return _Statements(
        handout=Prepared(database, insert_ignoring_duplicates(database, _HANDOUT).inline(),
                         ("project_id", "task_id", "volunteer_id", "created_at")),
        answer=Prepared(database, insert(_ANSWER).returning(
            _ANSWER.c.id, _ANSWER.c.counted, _ANSWER.c.created_at),
            ("task_id", "project_id", "volunteer_id", "value", "lease", "counted",
             "created_at")),
        surplus=Prepared(database, update(_ANSWER)
                         .where(_ANSWER.c.id == bindparam("answer_id"))
                         .values(counted=False)),
        withdraw=Prepared(database, delete(_ANSWER)
                          .where(_ANSWER.c.id == bindparam("answer_id"))))


def record_handouts(db: Database, project_id: int, volunteer_id: int,
                    task_ids: list[int]) -> None:
    """The one SQL write of a checkout: who was shown what survives a Redis wipe."""
    handout, now = _statements(db).handout, utcnow()
    with transaction(db, atomic=len(task_ids) > 1) as cursor:
        for task_id in task_ids:
            handout.execute(cursor, {"project_id": project_id, "task_id": task_id,
                                     "volunteer_id": volunteer_id, "created_at": now})


def insert_answer(db: Database, claim: LeaseClaim, token: str, value: Any) -> Stored:
    """One INSERT, compiled once; a retry of the same lease finds its first row."""
    row = {"task_id": claim.task_id, "project_id": claim.project_id,
           "volunteer_id": claim.volunteer_id, "value": value, "lease": token,
           "counted": True, "created_at": utcnow()}
    answer = _statements(db).answer
    try:
        return Stored(*answer.run(db, row)[0])
    except answer.integrity_error:
        return _existing_answer(db, claim, token, value)


def _existing_answer(db: Database, claim: LeaseClaim, token: str, value: Any) -> Stored:
    existing = _answer_of(db, claim)
    if existing is None:  # the insert failed for another reason: a missing task
        raise NotFoundError(f"task {claim.task_id} does not exist", {"task": "not found"})
    if existing.lease != token:
        raise ConflictError("you have already answered this task",
                            {"task": "already answered by this volunteer"})
    return _retried(existing, value)  # a retry: same reply


def stored_answer(db: Database, claim: LeaseClaim, token: str, value: Any) -> Stored:
    """The answer stored with this lease (a retry of it, after its reply was
    lost), else GoneError: the lease ended too long ago to take a first one."""
    found = _answer_of(db, claim)
    if found is None or found.lease != token:
        raise GoneError("this lease ended too long ago to be answered",
                        {"lease": "ended too long ago"})
    return _retried(found, value)


def _answer_of(db: Database, claim: LeaseClaim) -> Row | None:
    """The claim's volunteer's answer to its task (at most one: uq_answer_task_volunteer),
    with the lease it was sent with; None if they have not answered it."""
    with db.session() as session:
        return session.execute(select(Answer.id, Answer.counted, Answer.created_at,
                                      Answer.lease, Answer.value).where(
            Answer.task_id == claim.task_id, Answer.volunteer_id == claim.volunteer_id)).first()


def _retried(stored: Row, value: Any) -> Stored:
    """The stored answer's reply for a retry that sent the same answer; a
    different one is not a retry, and is refused rather than dropped unseen
    (the first answer stands: one answer per lease). Compared as the JSON
    column stores them, so a tuple and its list are the same answer."""
    if _as_stored(stored.value) != _as_stored(value):
        raise ConflictError("another answer was already sent with this lease",
                            {"answer": "differs from the one already sent with this lease"})
    return Stored(stored.id, stored.counted, stored.created_at)


def _as_stored(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def mark_surplus(db: Database, answer_id: int) -> None:
    _statements(db).surplus.run(db, {"answer_id": answer_id})


def delete_answer(db: Database, answer_id: int) -> None:
    _statements(db).withdraw.run(db, {"answer_id": answer_id})


def record_release(db: Database, claim: LeaseClaim) -> None:
    """The volunteer gave the lease back (a skip, a report): a rebuild marks it
    skipped again (engine.dispatch.rebuild)."""
    with db.writing() as session:
        session.execute(update(Handout).where(
            Handout.task_id == claim.task_id, Handout.volunteer_id == claim.volunteer_id,
            Handout.released_at.is_(None)).values(released_at=utcnow()))


def released_at(db: Database, claim: LeaseClaim) -> datetime | None:
    """When the lease was given back, if it was."""
    with db.session() as session:
        return session.scalar(select(Handout.released_at).where(
            Handout.task_id == claim.task_id, Handout.volunteer_id == claim.volunteer_id))
