"""Live results: merge a task's counted answers, then retire it or ask for more.

Called when a task has as many counted answers as it needs. Answers are
weighted by what the engine has learnt of each volunteer (engine.quality.reliability,
re-estimated periodically): for label tasks, the task's posterior under each
volunteer's confusion matrix (Dawid-Skene); for other types, the task type's
own aggregate with reliabilities as weights. Before any estimate exists it
is a plain majority. If the merged result is confident enough the task
retires; if not, and it may still collect answers, its need rises by one;
otherwise it is contested and waits for an admin.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from engine.delivery import outbox
from engine.quality import truth
from engine.quality.retirement import MORE, Policy, decide
from engine.services import Services
from engine.store.db import Database, dialect_insert
from engine.store.models import Answer, Project, Result, Task, VolunteerStat, Webhook, utcnow
from engine.store.prepared import Prepared, per_database, transaction
from task_types import Aggregate, TaskType

UNKNOWN_RELIABILITY = 0.7  # a new volunteer: better than chance, not yet trusted
ATTEMPTS = 10  # each failed attempt means another writer changed the task meanwhile


@dataclass(frozen=True)
class Merged:
    aggregate: Aggregate
    method: str


def update_result(services: Services, project_id: int, task_id: int) -> str:
    """Recompute one task's result; returns the task's new state.

    It runs on the volunteer's request, so it keeps SQL's write lock short
    (SQLite has one for the whole database): the task and its answers are read
    and merged outside any write transaction, then one short transaction
    writes the outcome only if the task is still as it was read (open, same
    need, same number of counted answers). When another writer got there
    first (an admin's settlement, a block that uncounted an answer) the task
    is read again and merged afresh.
    """
    sql = _statements(services.db)
    for _ in range(ATTEMPTS):
        with transaction(services.db) as cursor:
            found = sql.read_task.execute(cursor, {"task_id": task_id})
            if not found or found[0][0] != "open":
                return found[0][0] if found else "missing"
            rows = sql.read_answers.execute(cursor, {"task_id": task_id})
        task = _TaskRow(*found[0])
        merged = merge(services.registry.get(task.task_type), task.config, rows)
        write = _Write(task_id, project_id, task.need, len(rows), merged,
                       _Outcome.of(task, merged.aggregate.confidence, len(rows)))
        written = write.fast(services, sql)
        if written == _HOOKED:
            written = write.with_outbox(services, sql)
        if written != _CHANGED:
            services.dispatcher.settle(project_id, task_id, write.outcome.settle_need)
            if written == _RECORDED:
                outbox.nudge(services)
            return write.outcome.state
    raise RuntimeError(f"task {task_id} kept changing while its result was merged")


class _TaskRow(NamedTuple):
    state: str
    need: int
    task_type: str
    config: dict
    min_answers: int
    max_answers: int
    confidence: float


@dataclass(frozen=True)
class _Outcome:
    """What a merge decides for a task: its state and need, and the need to ask
    Redis for (None retires the task from the pool)."""

    state: str
    need: int
    retired_at: Any
    settle_need: int | None

    @classmethod
    def of(cls, task: _TaskRow, confidence: float, answers: int) -> _Outcome:
        policy = Policy(task.min_answers, task.max_answers, task.confidence)
        outcome = decide(policy, confidence, answers)
        if outcome == MORE:
            need = max(answers + 1, task.min_answers)
            return cls("open", need, None, need)
        return cls(outcome, task.need, utcnow(), None)


# What a write did: wrote the outcome (and recorded a webhook event), found the task
# changed since it was read (nothing written), or left it to the outbox's ORM path.
_WRITTEN, _RECORDED, _CHANGED, _HOOKED = "written", "recorded", "changed", "hooked"


@dataclass(frozen=True)
class _Write:
    """The outcome of one merge, written in one short transaction if the task is
    still as it was read."""

    task_id: int
    project_id: int
    read_need: int
    answers: int
    merged: Merged
    outcome: _Outcome

    def fast(self, services: Services, sql: _Statements) -> str:
        """On a bare connection; a finished task whose project has a webhook is _HOOKED."""
        with transaction(services.db, atomic=True) as cursor:
            sql.apply.execute(cursor, self._apply())
            if cursor.rowcount != 1:
                return _CHANGED
            if (self.outcome.state in outbox.FINISHED
                    and sql.webhook.execute(cursor, {"project_id": self.project_id})):
                cursor.connection.rollback()
                return _HOOKED
            sql.upsert.execute(cursor, self._result())
        return _WRITTEN

    def with_outbox(self, services: Services, sql: _Statements) -> str:
        """Through SQLAlchemy, so that the outbox (which works on an ORM session)
        records the webhook events in the same transaction."""
        aggregate = self.merged.aggregate
        with services.db.connection() as connection:
            if connection.execute(sql.apply.statement, self._apply()).rowcount != 1:
                return _CHANGED
            connection.execute(sql.upsert.statement, self._result())
            with Session(bind=connection, expire_on_commit=False) as session:
                recorded = outbox.task_finished(
                    session, session.get(Task, self.task_id), aggregate.value,
                    aggregate.confidence, before="open")
                session.flush()
        return _RECORDED if recorded else _WRITTEN

    def _apply(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "read_need": self.read_need, "answers": self.answers,
                "new_state": self.outcome.state, "new_need": self.outcome.need,
                "retired": self.outcome.retired_at}

    def _result(self) -> dict[str, Any]:
        aggregate = self.merged.aggregate
        return {"task_id": self.task_id, "project_id": self.project_id,
                "value": aggregate.value, "confidence": float(aggregate.confidence),
                "method": self.merged.method, "support": aggregate.support or None,
                "answers": self.answers, "updated_at": utcnow()}


_TASK, _ANSWER, _STAT = Task.__table__, Answer.__table__, VolunteerStat.__table__
_PROJECT, _RESULT, _WEBHOOK = Project.__table__, Result.__table__, Webhook.__table__
_COUNTED = (select(func.count()).select_from(_ANSWER)
            .where(_ANSWER.c.task_id == bindparam("task_id"), _ANSWER.c.counted.is_(True))
            .scalar_subquery())
_RESULT_COLUMNS = ("task_id", "project_id", "value", "confidence", "method", "support",
                   "answers", "updated_at")


@dataclass(frozen=True)
class _Statements:
    """update_result's SQL, compiled once per database (which spells the upsert)."""

    read_task: Prepared
    read_answers: Prepared
    apply: Prepared
    upsert: Prepared
    webhook: Prepared


@per_database
def _statements(database: Database) -> _Statements:
    insert = dialect_insert(database, _RESULT)
    return _Statements(
        read_task=Prepared(database, select(
            _TASK.c.state, _TASK.c.need, _PROJECT.c.task_type, _PROJECT.c.config,
            _PROJECT.c.min_answers, _PROJECT.c.max_answers, _PROJECT.c.confidence)
            .join_from(_TASK, _PROJECT, _PROJECT.c.id == _TASK.c.project_id)
            .where(_TASK.c.id == bindparam("task_id"))),
        read_answers=Prepared(database, select(
            _ANSWER.c.value, _STAT.c.reliability, _STAT.c.confusion)
            .outerjoin(_STAT, (_STAT.c.volunteer_id == _ANSWER.c.volunteer_id)
                       & (_STAT.c.project_id == _ANSWER.c.project_id))
            .where(_ANSWER.c.task_id == bindparam("task_id"), _ANSWER.c.counted.is_(True))
            .order_by(_ANSWER.c.id)),
        apply=Prepared(database, update(_TASK)
                       .where(_TASK.c.id == bindparam("task_id"), _TASK.c.state == "open",
                              _TASK.c.need == bindparam("read_need"),
                              _COUNTED == bindparam("answers"))
                       .values(state=bindparam("new_state"), need=bindparam("new_need"),
                               retired_at=bindparam("retired"))),
        upsert=Prepared(database, insert.on_conflict_do_update(
            index_elements=[_RESULT.c.task_id],
            set_={name: insert.excluded[name] for name in _RESULT_COLUMNS[2:]}),
            _RESULT_COLUMNS),
        webhook=Prepared(database, select(_WEBHOOK.c.project_id)
                         .where(_WEBHOOK.c.project_id == bindparam("project_id"))))


def merge(task_type: TaskType, config: dict, rows: list[tuple[Any, Any, Any]]) -> Merged:
    """Answers (value, reliability or None, confusion or None) -> the task's result."""
    values = [value for value, _, _ in rows]
    if not any(reliability is not None for _, reliability, _ in rows):
        return Merged(task_type.aggregate(values, None, config), "majority")
    labels = task_type.labels(config)
    if labels is None:
        weights = [r if r is not None else UNKNOWN_RELIABILITY for _, r, _ in rows]
        return Merged(task_type.aggregate(values, weights, config), "weighted")
    return Merged(_posterior(task_type, labels, rows), "posterior")


def _posterior(task_type: TaskType, labels: list[str], rows) -> Aggregate:
    """The task's posterior over labels under each volunteer's confusion matrix."""
    index = {label: n for n, label in enumerate(labels)}
    codes, matrices = [], []
    for value, reliability, confusion in rows:
        label = task_type.label_of(value)
        if label not in index:
            continue
        codes.append(index[label])
        matrices.append(_matrix(confusion, reliability, len(labels)))
    if not codes:
        return Aggregate(None, 0.0, {})
    posterior = truth.posterior_from(codes, matrices)
    best = int(posterior.argmax())
    support = {label: float(p) for label, p in zip(labels, posterior, strict=True) if p > 1e-6}
    return Aggregate(labels[best], float(posterior[best]), support)


def _matrix(confusion, reliability: float | None, n_labels: int):
    if confusion is not None and len(confusion) == n_labels:
        return confusion
    r = reliability if reliability is not None else UNKNOWN_RELIABILITY
    return truth.one_coin_confusions([r], n_labels)[0]


def store_result(session, task: Task, value: Any, confidence: float, method: str,
                 support: dict | None = None, answers: int | None = None) -> None:
    """Create or update a task's result row on an ORM session (admins' settlements;
    live merges upsert it in update_result); `support` and `answers` left None keep
    what the row had."""
    result = session.get(Result, task.id) or Result(task_id=task.id, project_id=task.project_id)
    result.value, result.confidence, result.method = value, float(confidence), method
    if support is not None:
        result.support = support or None
    if answers is not None:
        result.answers = answers
    result.updated_at = utcnow()
    session.add(result)
