"""The live merge's SQL (engine.quality.consensus.update_result), compiled once per database.

A merge runs on the volunteer's request for about one answer in three, so
its round trips to the database are a good share of a volunteer cycle's
cost on PostgreSQL, where each one is a network exchange and a backend's
work. The task and its counted answers come in one read. The outcome is
written, on PostgreSQL, in one statement: the guarded UPDATE of the task and
the UPSERT of its result as data-modifying CTEs, which commit together
(one statement is one transaction), where a transaction of its own would
take five exchanges (BEGIN, UPDATE, the webhook check, UPSERT, COMMIT).
SQLite has no data-modifying CTEs; there the same steps run as separate
statements in one short write transaction, each a call into the library,
not a network exchange.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Boolean, and_, bindparam, exists, func, select, update

from engine.store.db import Database, dialect_insert
from engine.store.models import Answer, Project, Result, Task, Volunteer, VolunteerStat, Webhook
from engine.store.prepared import Prepared, per_database

_TASK, _ANSWER, _STAT, _VOLUNTEER = (Task.__table__, Answer.__table__, VolunteerStat.__table__,
                                     Volunteer.__table__)
_PROJECT, _RESULT, _WEBHOOK = Project.__table__, Result.__table__, Webhook.__table__
COUNTED = (select(func.count()).select_from(_ANSWER)
           .where(_ANSWER.c.task_id == bindparam("task_id"), _ANSWER.c.counted.is_(True))
           .scalar_subquery())
# what a merge reads of each counted answer: the value, its volunteer's estimates,
# and their standing (engine.quality.trust.Standing)
MERGED_COLUMNS = (_ANSWER.c.value, _STAT.c.reliability, _STAT.c.confusion,
                  _VOLUNTEER.c.created_at, _STAT.c.gold_answers, _STAT.c.gold_score,
                  _STAT.c.flags)
# what a merge reads of the task and its project (consensus._TaskRow)
TASK_COLUMNS = (_TASK.c.state, _TASK.c.need, _PROJECT.c.task_type, _PROJECT.c.config,
                _PROJECT.c.min_answers, _PROJECT.c.max_answers, _PROJECT.c.confidence,
                _PROJECT.c.quality, _PROJECT.c.calibration)
RESULT_COLUMNS = ("task_id", "project_id", "value", "confidence", "method", "support",
                  "answers", "updated_at")


@dataclass(frozen=True)
class MergeStatements:
    """update_result's SQL for one database. `read` gives one row per counted
    answer (TASK_COLUMNS, the answer's id, MERGED_COLUMNS), or a single row
    whose answer id is None when none counts; `write` is PostgreSQL's one
    statement (None on SQLite, which runs apply, webhook and upsert)."""

    read: Prepared
    apply: Prepared
    upsert: Prepared
    webhook: Prepared
    stale: Prepared
    write: Prepared | None


@per_database
def statements(database: Database) -> MergeStatements:
    insert = dialect_insert(database, _RESULT)
    return MergeStatements(
        read=Prepared(database, _read()),
        apply=Prepared(database, _apply()),
        upsert=Prepared(database, insert.on_conflict_do_update(
            index_elements=[_RESULT.c.task_id],
            set_={name: insert.excluded[name] for name in RESULT_COLUMNS[2:]}),
            RESULT_COLUMNS),
        webhook=Prepared(database, select(_WEBHOOK.c.project_id)
                         .where(_WEBHOOK.c.project_id == bindparam("project_id"))),
        # a merged result's count of answers, and the counted answers now
        stale=Prepared(database, select(_RESULT.c.answers, COUNTED)
                       .join_from(_RESULT, _TASK, _TASK.c.id == _RESULT.c.task_id)
                       .where(_RESULT.c.task_id == bindparam("task_id"),
                              _TASK.c.is_gold.is_(False), _TASK.c.state != "settled")),
        write=None if database.is_sqlite else Prepared(database, _one_statement_write(database)))


def _read():
    """The task, its project's settings and its counted answers, oldest first."""
    counted = (_ANSWER.c.task_id == _TASK.c.id) & _ANSWER.c.counted.is_(True)
    return (select(*TASK_COLUMNS, _ANSWER.c.id, *MERGED_COLUMNS)
            .select_from(_TASK.join(_PROJECT, _PROJECT.c.id == _TASK.c.project_id)
                         .outerjoin(_ANSWER, counted)
                         .outerjoin(_VOLUNTEER, _VOLUNTEER.c.id == _ANSWER.c.volunteer_id)
                         .outerjoin(_STAT, (_STAT.c.volunteer_id == _ANSWER.c.volunteer_id)
                                    & (_STAT.c.project_id == _ANSWER.c.project_id)))
            .where(_TASK.c.id == bindparam("task_id"))
            .order_by(_ANSWER.c.id))


def _apply(*also):
    """The task's new state and need, only if it is still as the merge read it:
    open, the same need, the same number of counted answers."""
    return (update(_TASK)
            .where(_TASK.c.id == bindparam("task_id"), _TASK.c.state == "open",
                   _TASK.c.need == bindparam("read_need"), COUNTED == bindparam("answers"),
                   *also)
            .values(state=bindparam("new_state"), need=bindparam("new_need"),
                    retired_at=bindparam("retired")))


def _one_statement_write(database: Database):
    """PostgreSQL: apply and upsert in one statement, which says whether the
    task was hooked (a finished task of a project with a webhook: nothing is
    written, the outbox's path takes it) and how many task rows it changed
    (0: another writer changed the task since it was read)."""
    hooked = and_(bindparam("finished", type_=Boolean),
                  exists().where(_WEBHOOK.c.project_id == bindparam("project_id")))
    applied = _apply(~hooked).returning(_TASK.c.id).cte("applied")
    values = select(applied.c.id, *(bindparam(name, type_=_RESULT.c[name].type)
                                    for name in RESULT_COLUMNS[1:]))
    insert = dialect_insert(database, _RESULT).from_select(RESULT_COLUMNS, values)
    written = insert.on_conflict_do_update(
        index_elements=[_RESULT.c.task_id],
        set_={name: insert.excluded[name] for name in RESULT_COLUMNS[2:]},
    ).returning(_RESULT.c.task_id).cte("written")
    return select(hooked.label("hooked"),
                  select(func.count()).select_from(applied).scalar_subquery().label("applied"),
                  select(func.count()).select_from(written).scalar_subquery().label("written"))
