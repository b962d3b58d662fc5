"""Live results: merge a task's counted answers, then retire it or ask for more.

Called when a task has as many counted answers as it needs. Answers are
weighted by what the engine has learnt of each volunteer (engine.quality.reliability,
re-estimated periodically): for label tasks, the task's posterior under each
volunteer's confusion matrix (Dawid-Skene); for other types, the task type's
own aggregate with reliabilities as weights. Before any estimate exists it
is a plain majority. If the merged result is confident enough the task
retires; if not, and it may still collect answers, its need rises by one;
otherwise it is contested and waits for an admin.

Whatever changes which answers count (a block or an unblock, a late answer
marked surplus) re-merges the tasks it touched with ``remerge``, in the same
transaction, whatever their state: a result is always the merge of the task's
counted answers, and a task with none has no value and confidence 0.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.delivery import outbox
from engine.dispatch.rebuild import load_tasks, rebuild_lock, rebuild_project
from engine.projects import final_since, project_missing, refuse_if_final
from engine.quality import merge_sql, posterior, trust
from engine.quality.retirement import HOLD, MORE, Policy, decide
from engine.quality.thresholds import thresholds
from engine.services import Services
from engine.store.models import (
    Answer,
    Project,
    Result,
    Task,
    TaskReport,
    Volunteer,
    VolunteerStat,
    utcnow,
)
from engine.store.prepared import transaction
from task_types import Aggregate, TaskType

UNKNOWN_RELIABILITY = posterior.UNKNOWN_RELIABILITY
ATTEMPTS = 10  # each failed attempt means another writer changed the task meanwhile
NO_ANSWERS = "none"  # the method of a result merged from no counted answer
CHUNK = 500  # task ids per IN (...) when re-merging many tasks


@dataclass(frozen=True)
class Merged:
    aggregate: Aggregate
    method: str
    # what retirement weighs, when it is not the result's confidence: the posterior
    # from the answers alone, labels equally likely (see posterior.label_posterior)
    deciding: float | None = None

    @property
    def deciding_confidence(self) -> float:
        return self.aggregate.confidence if self.deciding is None else self.deciding


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
    sql = merge_sql.statements(services.db)
    for _ in range(ATTEMPTS):
        with transaction(services.db) as cursor:
            found = sql.read.execute(cursor, {"task_id": task_id})
        if not found or found[0][0] != "open":
            return found[0][0] if found else "missing"
        task, rows = _task_and_answers(found)
        merged, decision = judge(services.registry.get(task.task_type), task.config,
                                 task.quality, task.policy, rows, task.calibration)
        write = _Write(task_id, project_id, task.need, len(rows), merged,
                       _Outcome.of(task, decision, len(rows)))
        written = write.fast(services, sql)
        if written == _HOOKED:
            written = write.with_outbox(services, sql)
        if written != _CHANGED:
            services.dispatcher.settle(project_id, task_id, write.outcome.settle_need)
            if written == _RECORDED:
                outbox.nudge(services)
            return write.outcome.state
    raise RuntimeError(f"task {task_id} kept changing while its result was merged")


def _task_and_answers(found: list[tuple]) -> tuple[_TaskRow, list[tuple]]:
    """merge_sql's read, one row per counted answer, split into the task and its
    answers (none when the single row has no answer id)."""
    width = len(merge_sql.TASK_COLUMNS)
    task = _TaskRow(*found[0][:width])
    return task, [row[width + 1:] for row in found if row[width] is not None]


class _TaskRow(NamedTuple):
    state: str
    need: int
    task_type: str
    config: dict
    min_answers: int
    max_answers: int
    confidence: float
    quality: dict | None
    calibration: dict | None

    @property
    def policy(self) -> Policy:
        return Policy(self.min_answers, self.max_answers, self.confidence)


@dataclass(frozen=True)
class _Outcome:
    """What a merge decides for a task: its state and need, and the need to ask
    Redis for (None retires the task from the pool)."""

    state: str
    need: int
    retired_at: Any
    settle_need: int | None

    @classmethod
    def of(cls, task: _TaskRow, decision: str, answers: int) -> _Outcome:
        if decision == MORE:
            need = max(answers + 1, task.min_answers)
            return cls("open", need, None, need)
        if decision == HOLD:  # open, out of the pool: engine.quality.held merges it again
            return cls("open", answers, None, answers)
        return cls(decision, task.need, utcnow(), None)


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

    def fast(self, services: Services, sql: merge_sql.MergeStatements) -> str:
        """On a bare connection; a finished task whose project has a webhook is _HOOKED."""
        finished = self.outcome.state in outbox.FINISHED
        if sql.write is not None:  # PostgreSQL: one statement
            hooked, applied, _ = sql.write.run(services.db, {
                **self._apply(), **self._result(), "finished": finished})[0]
            return _HOOKED if hooked else _WRITTEN if applied == 1 else _CHANGED
        with transaction(services.db, atomic=True) as cursor:
            sql.apply.execute(cursor, self._apply())
            if cursor.rowcount != 1:
                return _CHANGED
            if (finished
                    and sql.webhook.execute(cursor, {"project_id": self.project_id})):
                cursor.connection.rollback()
                return _HOOKED
            sql.upsert.execute(cursor, self._result())
        return _WRITTEN

    def with_outbox(self, services: Services, sql: merge_sql.MergeStatements) -> str:
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


_ANSWER, _STAT, _VOLUNTEER = Answer.__table__, VolunteerStat.__table__, Volunteer.__table__


def judge(task_type: TaskType, config: dict, quality: dict | None, policy: Policy,
          rows: list[tuple], calibration: dict | None = None) -> tuple[Merged, str]:
    """A task's counted answers (merge_sql.MERGED_COLUMNS rows) -> its result and what the
    policy decides: newcomers weighed as engine.quality.trust says, and a result
    no established volunteer gave retires nothing."""
    weighed = trust.weigh(rows, quality, utcnow())
    merged = merge(task_type, config, weighed.rows, calibration)
    aggregate = merged.aggregate
    standing = weighed.standing(task_type, config, aggregate.value)
    return merged, decide(policy, merged.deciding_confidence, len(rows), standing)


def merge(task_type: TaskType, config: dict, rows: list[tuple[Any, Any, Any]],
          calibration: dict | None = None) -> Merged:
    """Answers (value, reliability or None, confusion or None) -> the task's result;
    ``calibration`` holds the project's learnt τ (Project.calibration)."""
    values = [value for value, _, _ in rows]
    if not any(reliability is not None for _, reliability, _ in rows):
        return Merged(task_type.aggregate(values, None, config), "majority")
    labels = task_type.labels(config)
    if labels is None:
        weights = [r if r is not None else UNKNOWN_RELIABILITY for _, r, _ in rows]
        return Merged(task_type.aggregate(values, weights, config), "weighted")
    aggregate, deciding = posterior.label_posterior(task_type, labels, rows, calibration)
    return Merged(aggregate, "posterior", deciding)


def store_result(session, task: Task, value: Any, confidence: float, method: str,
                 support: dict | None = None, answers: int | None = None,
                 result: Result | None = None) -> None:
    """Create or update a task's result row on an ORM session (admins' settlements;
    live merges upsert it in update_result); `support` and `answers` left None keep
    what the row had. `result` is the row when the caller has it (``remerge``)."""
    if result is None:
        result = session.get(Result, task.id) or Result(task_id=task.id,
                                                        project_id=task.project_id)
    result.value, result.confidence, result.method = value, float(confidence), method
    if support is not None:
        result.support = support or None
    if answers is not None:
        result.answers = answers
    result.updated_at = utcnow()
    session.add(result)


# -- re-merging: when what counts changed ------------------------------------------


@dataclass(frozen=True)
class Change:
    """One re-merged task: its state before and after, and its need after."""

    task_id: int
    before: str
    after: str
    need: int
    counted: int = 0  # the counted answers it was merged from


@dataclass(frozen=True)
class Remerged:
    """What ``remerge`` did: each task it merged again, and whether it recorded
    webhook events (then ``outbox.nudge`` once the transaction committed)."""

    changes: list[Change]
    recorded: bool
    stopped: bool = False  # by an archive, before every task was merged again

    @property
    def reopened(self) -> int:
        """Tasks that were retired or contested and now ask for more answers."""
        return sum(c.before != "open" and c.after == "open" for c in self.changes)


def remerge(session, task_type: TaskType, project: Project,
            task_ids: Iterable[int]) -> Remerged:
    """Merge these tasks of a project again from their counted answers, on the
    caller's ORM session and in its transaction, whatever their state, so that
    each result is the merge of what counts now. The policy then decides again,
    as if the counted answers had just come in: retire, contest, or ask for more
    (need one past the counted answers, at least min_answers); a task with no
    counted answer keeps a result with no value, confidence 0 and method "none".

    Gold tasks have no result and are left alone; a settled task keeps the
    admin's result, only its count of answers is brought up to date; an open
    task with no result yet and fewer counted answers than it needs is left to
    collect them. Dispatch is the caller's to update (``sync_dispatch``, or a
    rebuild of the project)."""
    ids = sorted(set(task_ids))
    policy = Policy(project.min_answers, project.max_answers, project.confidence)
    changes: list[Change] = []
    recorded = False
    for start in range(0, len(ids), CHUNK):
        # three queries a chunk, not a get and an autoflush per task (seconds of
        # the write lock when a volunteer with thousands of answers is quarantined)
        with session.no_autoflush:
            tasks = list(session.scalars(
                select(Task).where(Task.id.in_(ids[start:start + CHUNK]),
                                   Task.is_gold.is_(False))
                .order_by(Task.id).with_for_update()))
            rows = _counted_rows(session, [task.id for task in tasks])
            results = loaded_results(session, [task.id for task in tasks])
            withdrawn = withdrawn_by_reports(session, project, [
                t.id for t in tasks if t.state == "contested"])
            for task in tasks:
                before = task.state
                aggregate = _remerge_task(session, task_type, project, policy, task,
                                          rows[task.id], results.get(task.id),
                                          task.id in withdrawn)
                if aggregate is None:
                    continue
                changes.append(Change(task.id, before, task.state, task.need,
                                      len(rows[task.id])))
                if task.state != before:
                    if task.state in outbox.FINISHED:
                        # the outbox asks SQL whether any task is left unfinished
                        # (project.completed): it must see this chunk's changes so far
                        session.flush()
                    recorded = outbox.task_finished(session, task, aggregate.value,
                                                    aggregate.confidence, before) or recorded
        session.flush()
    return Remerged(changes, recorded)


def loaded_results(session, task_ids: list[int]) -> dict[int, Result]:
    """These tasks' result rows in one query (held by the caller, so later gets
    find them in the session's identity map)."""
    return {} if not task_ids else {result.task_id: result for result in session.scalars(
        select(Result).where(Result.task_id.in_(task_ids)))}


def withdrawn_by_reports(session, project: Project, task_ids: list[int]) -> set[int]:
    """Of these contested tasks, those volunteers' open reports took out of
    circulation (engine.quality.reports): as many as withdraw a task, or more."""
    needed = thresholds(project)["reports_to_withdraw"]
    if not needed or not task_ids:
        return set()
    counts = session.execute(
        select(TaskReport.task_id, func.count()).where(
            TaskReport.task_id.in_(task_ids), TaskReport.resolved_at.is_(None))
        .group_by(TaskReport.task_id))
    return {task_id for task_id, count in counts if count >= needed}


def _remerge_task(session, task_type: TaskType, project: Project, policy: Policy, task: Task,
                  rows: list[tuple], result: Result | None,
                  withdrawn: bool = False) -> Aggregate | None:
    """One task of ``remerge`` (``result``: its row, None if it has none yet);
    its new result, or None when nothing was merged. A task ``withdrawn`` by
    volunteers' reports (a picture that should never have been shown) gets its
    result merged again but stays contested, out of circulation, until staff
    settle it or dismiss the reports: a block or quarantine elsewhere must not
    hand it out again, nor retire it."""
    if task.state == "settled":
        if result is not None:
            result.answers = len(rows)
        return None
    if task.state == "open" and result is None and len(rows) < task.need:
        return None
    merged, outcome = judge(task_type, project.config, project.quality, policy, rows,
                            project.calibration) \
        if rows else (Merged(Aggregate(None, 0.0, {}), NO_ANSWERS), MORE)
    aggregate = merged.aggregate
    if withdrawn:
        pass
    elif outcome in (MORE, HOLD):
        task.state, task.retired_at = "open", None
        task.need = len(rows) if outcome == HOLD else max(len(rows) + 1, policy.min_answers)
    elif outcome != task.state:
        task.state, task.retired_at = outcome, utcnow()
    store_result(session, task, aggregate.value, aggregate.confidence, merged.method,
                 support=aggregate.support or {}, answers=len(rows),
                 result=result or Result(task_id=task.id, project_id=task.project_id))
    return aggregate


def _counted_rows(session, task_ids: list[int]) -> dict[int, list[tuple]]:
    """Each task's counted answers as ``judge`` takes them, oldest first (as
    update_result reads them)."""
    out: dict[int, list[tuple]] = {task_id: [] for task_id in task_ids}
    if not task_ids:
        return out
    query = (select(_ANSWER.c.task_id, *merge_sql.MERGED_COLUMNS)
             .join_from(_ANSWER, _VOLUNTEER, _VOLUNTEER.c.id == _ANSWER.c.volunteer_id)
             .outerjoin(_STAT, (_STAT.c.volunteer_id == _ANSWER.c.volunteer_id)
                        & (_STAT.c.project_id == _ANSWER.c.project_id))
             .where(_ANSWER.c.task_id.in_(task_ids), _ANSWER.c.counted.is_(True))
             .order_by(_ANSWER.c.id))
    for task_id, *row in session.execute(query):
        out[task_id].append(tuple(row))
    return out


def sync_dispatch(services: Services, project_id: int, remerged: Remerged) -> None:
    """Tell Redis what a re-merge decided, without rebuilding the project: a task
    that closed leaves the pool, an open one gets its new need (lower too: every
    answer was counted again), and an open one Redis has no state for (it
    reopened: Redis keeps nothing of a closed task) is loaded back from SQL. A
    task that asks for more answers than it was merged from, but whose lowered
    need Redis's count already meets (an answer counted against the old need
    started no merge), is merged now: no submit will start that. Under the
    project's rebuild lock, so that a rebuild reading SQL before the re-merge
    committed cannot write over it."""
    if not remerged.changes:
        return
    due, missing = [], []
    with rebuild_lock(services, project_id):
        for change in remerged.changes:
            opened = change.after == "open"
            if change.before != "open":  # it was closed: Redis has nothing of it
                got = 0
            else:
                got = services.dispatcher.settle(project_id, change.task_id,
                                                 change.need if opened else None, exact=True)
            if got == 2 and change.need > change.counted:  # not a held task: its need is met
                due.append(change.task_id)
            elif got == 0 and opened:
                missing.append(change.task_id)
        if missing:
            load_tasks(services, project_id, missing)
    for task_id in due:
        update_result(services, project_id, task_id)


def answer_uncounted(services: Services, project_id: int, task_id: int) -> bool:
    """An answer stopped counting outside a re-merge (a late answer the dispatcher
    found surplus is stored counted, then marked): if a merge read it meanwhile,
    the task's result counts one answer too many, so merge it again. True if it
    was re-merged. One read when the result is right, as it nearly always is."""
    sql = merge_sql.statements(services.db)
    with transaction(services.db) as cursor:
        found = sql.stale.execute(cursor, {"task_id": task_id})
    if not found or found[0][0] == found[0][1]:
        return False
    with services.db.writing() as session:
        project = session.get(Project, project_id)
        remerged = remerge(session, services.registry.get(project.task_type), project,
                           [task_id])
    sync_dispatch(services, project_id, remerged)
    if remerged.recorded:
        outbox.nudge(services)
    return bool(remerged.changes)


class _ArchivedMeanwhile(Exception):
    """A chunk's project was archived while the chunk was merged: it is undone."""


def remerge_project(services: Services, project_id: int) -> Remerged:
    """Every task of a project merged again from its counted answers, a chunk
    per transaction, then dispatch rebuilt from SQL: what an operator runs after
    an upgrade changed how results follow what counts (before issue 13, a task
    whose answers all stopped counting kept its old value), or after editing
    answers' ``counted`` by hand. Returns what changed, for the caller to report.
    An archived project's results are final: 409, and a chunk under way when
    an archive commits is undone and the rest left (engine.projects.final_since)."""
    with services.db.session() as session:
        project = session.get(Project, project_id)
        if project is None:
            raise project_missing(project_id)
        refuse_if_final(project)
        task_ids = list(session.scalars(select(Task.id).where(Task.project_id == project_id)
                                        .order_by(Task.id)))
    task_type = services.registry.get(project.task_type)
    changes: list[Change] = []
    recorded = stopped = False
    for start in range(0, len(task_ids), CHUNK):
        try:
            with services.db.writing() as session:
                fresh = session.get(Project, project_id)
                part = remerge(session, task_type, fresh, task_ids[start:start + CHUNK])
                if final_since(session, project_id):
                    raise _ArchivedMeanwhile(project_id)
        except _ArchivedMeanwhile:
            stopped = True
            break
        changes += part.changes
        recorded = recorded or part.recorded
    rebuild_project(services, project_id)
    if recorded:
        outbox.nudge(services)
    return Remerged(changes, recorded, stopped)
