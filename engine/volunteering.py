"""The volunteer's hot path: get the next task, answer it, skip it.

`next_task` is one Redis script call and one SQL insert (the handout), no SQL
read. `submit_answer` commits the answer row in SQL first (unique per task
and volunteer) and only then closes the lease in Redis, so an answer that got
a 2xx is always stored, and a retry of the same submit is recognised instead
of doubled; an answer to a skipped lease is withdrawn again in the same call
(the skip may land between the insert and Redis), so it never gets a 2xx.
Fair hand-out: a volunteer holds at most Settings.max_leases live leases in a
project and extends each at most Settings.max_extends times.
Every few answers of a volunteer (engine.quality.arrivals.check_due)
their answers are checked against the project's flags, and a flag quarantines.
Both run their SQL as prepared statements (engine.dispatch.answer_rows). A
skip is written to SQL too (handout.released_at), so that it outlives Redis.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from marshmallow import Schema
from sqlalchemy import delete, select

from engine.answers import load_answer
from engine.dispatch import answer_rows as rows
from engine.dispatch import leases
from engine.dispatch.answer_rows import Stored
from engine.dispatch.dispatcher import (
    GRACE_MS,
    Checkout,
    Handing,
    LeaseSkippedError,
    StateMissingError,
    Submission,
    Tally,
)
from engine.dispatch.failover import check_master
from engine.dispatch.rebuild import ensure_state
from engine.errors import (
    BitesizeError,
    GoneError,
    InvalidError,
    UnavailableError,
)
from engine.identity import Identity
from engine.projects import project_missing
from engine.quality.arrivals import check_due, check_volunteer
from engine.quality.consensus import answer_uncounted, update_result
from engine.quality.feedback import gold_feedback
from engine.quality.reports import REASONS, Filed, file_report
from engine.services import Services
from engine.store.db import insert_ignoring_duplicates
from engine.store.models import Answer, PendingSubmit, Project, aware, utcnow
from engine.store.redis_server import REDIS_DOWN

T = TypeVar("T")
log = logging.getLogger(__name__)

# A report may come a while after its lease ended (a tab left open overnight),
# not with any lease ever issued: a volunteer's old tokens are not a store of
# reports to file later.
REPORT_WITHIN_SECONDS = 24 * 3600


@dataclass(frozen=True)
class LeasedTask:
    """A task handed to a volunteer, with the signed lease token to answer it."""

    task_id: int
    task_type: str
    payload: dict
    lease: str
    expires_at: datetime


@dataclass(frozen=True)
class Receipt:
    answer_id: int
    task_id: int
    counted: bool
    created_at: datetime
    project_id: int
    feedback: dict | None = None  # a practice (gold) task's answer (engine.quality.feedback)
    # With next_count: the tasks handed out after the answer (None: none asked for),
    # or why none could be (a paused project, too many leases held).
    handed: list[LeasedTask] | None = None
    handout_error: BitesizeError | None = None
    # with a tally: each rate-limit window's (used, ms left) after this answer
    tallied: tuple[tuple[int, int], ...] = ()


MAX_PRELOAD = 5


def next_tasks(services: Services, identity: Identity, project_id: int,
               count: int = 1) -> list[LeasedTask]:
    """Lease up to `count` of the best open tasks this volunteer has not seen.

    More than one lets a page preload the next tasks; an empty list means
    nothing is left for this volunteer. Fewer than `count` come when that
    would put them over Settings.max_leases live leases, and LeaseLimitError
    (a 429) when they hold that many already.
    """
    identity.require_volunteer()
    count = _preload_count(count)
    cap = services.settings.max_leases
    checkouts = _healing(services, project_id, lambda: services.dispatcher.checkout(
        project_id, identity.id, count, cap))
    return _hand_out(services, project_id, identity.id, checkouts)


def _hand_out(services: Services, project_id: int, volunteer_id: int,
              checkouts: list[Checkout]) -> list[LeasedTask]:
    """Checked-out tasks, recorded in SQL and each with its signed lease."""
    if checkouts:
        rows.record_handouts(services.db, project_id, volunteer_id,
                             [c.task_id for c in checkouts])
    return [_leased(services, project_id, volunteer_id, c) for c in checkouts]


def next_task(services: Services, identity: Identity, project_id: int) -> LeasedTask | None:
    """The best open task for this volunteer, or None when none is left."""
    handouts = next_tasks(services, identity, project_id)
    return handouts[0] if handouts else None


def _leased(services: Services, project_id: int, volunteer_id: int, checkout) -> LeasedTask:
    claim = leases.LeaseClaim(project_id, checkout.task_id, volunteer_id, checkout.expires_ms)
    return LeasedTask(checkout.task_id, checkout.task_type, checkout.payload,
                   leases.issue(services.settings.secret_key, claim),
                   _as_datetime(checkout.expires_ms))


def _as_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def submit_answer(services: Services, identity: Identity, task_id: int,
                  token: str, raw_answer: Any, next_count: int = 0,
                  tally: Tally = ()) -> Receipt:
    """Store a volunteer's answer exactly once and count it if the task needs it.

    With `next_count` > 0 it also leases up to that many next tasks of the
    project, as next_tasks would, in the same Redis call as the submit (after
    it, so the answer's lease no longer counts against the cap): the
    receipt's `handed`, or its `handout_error` when none could be handed out.
    The same call counts the answer in the `tally`'s rate-limit windows
    (web.rate_limits), if any: the receipt's `tallied`.

    While Redis cannot be reached the answer is still stored (the signed lease
    proves it was handed out) and kept for replay_pending; the receipt says
    counted, provisionally, and its handout_error is an UnavailableError.
    """
    claim = _claim_for(services, identity, task_id, token)  # a volunteer's, for this task
    value = _validate(services, claim.project_id, raw_answer)
    if _too_old(claim):
        answer = rows.stored_answer(services.db, claim, token, value)
        return Receipt(answer.id, task_id, answer.counted, answer.created_at, claim.project_id)
    answer = rows.insert_answer(services.db, claim, token, value)
    try:
        submission, handing = _submitted(services, claim, next_count, tally)
    except REDIS_DOWN:
        _refuse_if_released(services, claim, answer)
        _keep_for_replay(services, claim, answer.id)
        return Receipt(answer.id, task_id, answer.counted, answer.created_at,
                       claim.project_id, handout_error=_redis_down())
    if submission.outcome == "skipped":
        _withdraw(services, claim, answer)
        raise LeaseSkippedError()
    answer = _settled(services, claim, answer, submission)
    if check_due(submission.answered) and check_volunteer(services, claim.project_id,
                                                          identity.id):
        # every few answers, one small read of this volunteer's answers: a flag
        # quarantined them, this answer included, so the reply says so
        answer = Stored(answer.id, False, answer.created_at)
    feedback = gold_feedback(services, claim.project_id, task_id, identity.id, answer.id,
                             value) if submission.outcome == "gold" else None
    refused = handing if isinstance(handing, BitesizeError) else None
    handed = None if handing is None or refused else _hand_out(
        services, claim.project_id, identity.id, handing)
    return Receipt(answer.id, task_id, answer.counted, answer.created_at,
                   claim.project_id, feedback, handed, refused, submission.tallied)


def _settled(services: Services, claim: leases.LeaseClaim, answer: Stored,
             submission: Submission) -> Stored:
    """What Redis's verdict on a stored answer means in SQL: a surplus answer
    is marked not counted, and the task's result is merged once it has all
    the answers it needs. Shared by the live submit and its replay."""
    if not submission.counted and answer.counted:
        rows.mark_surplus(services.db, answer.id)
        answer = Stored(answer.id, False, answer.created_at)
        # a merge that read it before it was marked counted one answer too many
        answer_uncounted(services, claim.project_id, claim.task_id)
    if submission.outcome in ("counted", "repeat") and submission.done >= submission.need:
        # a repeat too: the first attempt may have stopped before it merged
        update_result(services, claim.project_id, claim.task_id)
    return answer


def _redis_down() -> UnavailableError:
    return UnavailableError("tasks are resting for a moment; your answer is saved",
                            {"next": "try again shortly"})


def _keep_for_replay(services: Services, claim: leases.LeaseClaim, answer_id: int) -> None:
    """Note an answer whose submit Redis never heard (or whose reply was lost:
    the replay is then a harmless repeat)."""
    with services.db.session() as session:
        session.execute(insert_ignoring_duplicates(services.db, PendingSubmit.__table__).values(
            answer_id=answer_id, project_id=claim.project_id, task_id=claim.task_id,
            volunteer_id=claim.volunteer_id, created_at=utcnow()))


def replay_pending(services: Services, limit: int = 1000) -> int:
    """Close the leases of answers stored while Redis was out of reach, oldest
    first, as their live submit would have: count each if its task needs it
    (else mark it surplus) and merge the tasks it completes. An answer to a
    lease that was skipped meanwhile is kept (it got a 2xx) but not counted.
    Raises REDIS_DOWN errors while Redis is still away; returns how many
    were replayed. One that cannot be replayed (its project is gone, say) is
    logged and let go, so it never holds up those after it: its answer stays
    in SQL, where the project's next rebuild counts it. Run by the workers'
    periodic `replay` job."""
    with services.db.session() as session:
        waiting = session.execute(
            select(PendingSubmit, Answer.counted, Answer.created_at)
            .outerjoin(Answer, Answer.id == PendingSubmit.answer_id)
            .order_by(PendingSubmit.answer_id).limit(limit)).all()
    for pending, counted, created_at in waiting:
        try:
            if counted is not None:  # else the answer (or its project) was deleted
                _replay_one(services, pending, Stored(pending.answer_id, counted, created_at))
        except BitesizeError as exc:
            log.warning("answer %d could not be replayed (%s); a rebuild of project %d "
                        "counts it", pending.answer_id, exc.message, pending.project_id)
        with services.db.session() as session:
            session.execute(delete(PendingSubmit).where(
                PendingSubmit.answer_id == pending.answer_id))
    return len(waiting)


def _replay_one(services: Services, pending: PendingSubmit, answer: Stored) -> None:
    claim = leases.LeaseClaim(pending.project_id, pending.task_id, pending.volunteer_id, 0)
    submission = _healing(services, claim.project_id, lambda: services.dispatcher.submit(
        claim.project_id, claim.task_id, claim.volunteer_id))
    if submission.outcome == "skipped":
        submission = Submission("surplus", 0, 0)
    _settled(services, claim, answer, submission)


def _submitted(services: Services, claim: leases.LeaseClaim, next_count: int,
               tally: Tally) -> tuple[Submission, Handing | None]:
    """The answer's submit, with the next checkout in the same call if asked for."""
    dispatcher, project_id = services.dispatcher, claim.project_id
    remember = _remember_ms(claim)
    if next_count <= 0:
        return _healing(services, project_id, lambda: dispatcher.submit(
            project_id, claim.task_id, claim.volunteer_id, tally, remember)), None
    count = _preload_count(next_count)
    return _healing(services, project_id, lambda: dispatcher.submit_and_checkout(
        project_id, claim.task_id, claim.volunteer_id, count, services.settings.max_leases,
        tally, remember))


def _preload_count(asked: int) -> int:
    """How many tasks one hand-out leases: 1 to MAX_PRELOAD."""
    return max(1, min(asked, MAX_PRELOAD))


def skip_task(services: Services, identity: Identity, token: str) -> bool:
    """Give a leased task back; this volunteer will not be offered it again, and
    an answer sent with this lease afterwards is refused (LeaseSkippedError)."""
    return _release(services, _own_claim(services, identity, token))


def _release(services: Services, claim: leases.LeaseClaim) -> bool:
    """The lease back to the pool, marked skipped (a skip, or a report) for as
    long as its token is answerable. The release is recorded on its hand-out
    row first, as an answer is stored before its submit: a rebuild reading
    SQL between the two would otherwise forget the skip."""
    rows.record_release(services.db, claim)
    return _healing(services, claim.project_id, lambda: services.dispatcher.release(
        claim.project_id, claim.task_id, claim.volunteer_id, _remember_ms(claim)))


def _remember_ms(claim: leases.LeaseClaim) -> int:
    """How long Redis must remember how a lease ended (answered, skipped): as
    long as its token is taken (_claim_for), a retry then being recognised."""
    return max(GRACE_MS, claim.expires_ms + GRACE_MS - int(time.time() * 1000))


def report_task(services: Services, identity: Identity, token: str, reason: str,
                note: str | None = None) -> Filed:
    """Something is wrong with this task (engine.quality.reports.REASONS): the report
    reaches the charity, and the volunteer's lease is given back as with a skip,
    so they go on with another task and are not offered this one again."""
    claim = _own_claim(services, identity, token)
    if claim.expires_ms < (time.time() - REPORT_WITHIN_SECONDS) * 1000:
        raise GoneError("this lease ended too long ago to report its task",
                        {"lease": "ended too long ago"})
    if reason not in REASONS:
        raise InvalidError(f"the reason must be one of {', '.join(REASONS)}",
                           {"reason": "unknown reason"})
    filed = file_report(services, claim.project_id, claim.task_id, identity.id, reason, note)
    _release(services, claim)
    return filed


def extend_lease(services: Services, identity: Identity, token: str) -> datetime:
    """The volunteer is still working: their lease runs for another full term,
    at most Settings.max_extends times (then ExtendLimitError, a 409)."""
    claim = _own_claim(services, identity, token)
    most = services.settings.max_extends
    expires = _healing(services, claim.project_id, lambda: services.dispatcher.extend(
        claim.project_id, claim.task_id, identity.id, most))
    if expires is None:
        raise GoneError("this lease has ended; submit the answer anyway or get a new task",
                        {"lease": "not live"})
    return _as_datetime(expires)


def _own_claim(services: Services, identity: Identity, token: str) -> leases.LeaseClaim:
    identity.require_volunteer()
    claim = leases.verify(services.settings.secret_key, token)
    if claim.volunteer_id != identity.id:
        raise GoneError("this lease is not yours", {"lease": "issued to another volunteer"})
    return claim


def _claim_for(services: Services, identity: Identity, task_id: int,
               token: str) -> leases.LeaseClaim:
    claim = _own_claim(services, identity, token)
    if claim.task_id != task_id:
        raise GoneError("this lease is not for this task",
                        {"lease": "issued for another task"})
    return claim


def _too_old(claim: leases.LeaseClaim) -> bool:
    """Whether a lease ended more than GRACE_MS ago: how it ended (answered,
    skipped) is remembered in Redis no longer, so a first answer is refused
    (it could be a skipped lease's); a retry of a stored one is answered from SQL."""
    return claim.expires_ms + GRACE_MS < time.time() * 1000


def _validate(services: Services, project_id: int, raw_answer: Any) -> Any:
    return load_answer(_answer_schema(services, project_id), raw_answer)


_schemas: dict[tuple, Schema] = {}


def _answer_schema(services: Services, project_id: int) -> Schema:
    """Answer schemas are built once per project config version, per process;
    the version (Dispatcher.meta_version) says when a cached one is stale.
    While Redis is out of reach, the project's config is read from SQL."""
    try:
        version = services.dispatcher.meta_version(project_id)
    except REDIS_DOWN:
        return _schema_from_sql(services, project_id)
    schema = _schemas.get((id(services.registry), project_id, version))
    if schema is not None:
        return schema
    meta = services.dispatcher.meta(project_id)
    if meta is None:
        ensure_state(services, project_id)
        meta = services.dispatcher.meta(project_id)
    if meta is None:
        raise project_missing(project_id)
    if len(_schemas) > 1000:
        _schemas.clear()
    schema = services.registry.get(meta.task_type).answer_schema(meta.config)
    _schemas[(id(services.registry), project_id, meta.version)] = schema
    return schema


def _schema_from_sql(services: Services, project_id: int) -> Schema:
    with services.db.session() as session:
        project = session.get(Project, project_id)
        if project is None:
            raise project_missing(project_id)
        task_type, config = project.task_type, project.config
    return services.registry.get(task_type).answer_schema(config)


def _refuse_if_released(services: Services, claim: leases.LeaseClaim,
                        answer: Stored) -> None:
    """While Redis is out of reach SQL alone says whether the lease was given
    back: an answer stored after its release is withdrawn and refused, as
    Redis would have refused it (an answer stored before it, a retry now,
    stands)."""
    released = rows.released_at(services.db, claim)
    if released is not None and aware(released) <= aware(answer.created_at):
        _withdraw(services, claim, answer)
        raise LeaseSkippedError()


def _withdraw(services: Services, claim: leases.LeaseClaim, answer: Stored) -> None:
    """Delete the row of an answer to a skipped lease. Nothing refers to an answer
    row, and this one never got a 2xx; if a merge of its task read it meanwhile
    (it was stored counted), the task is merged again without it."""
    rows.delete_answer(services.db, answer.id)
    if answer.counted:
        answer_uncounted(services, claim.project_id, claim.task_id)


def _healing(services: Services, project_id: int, call: Callable[[], T], tries: int = 3) -> T:
    """Run a dispatch call; if the project's Redis state is gone, rebuild it and
    retry. A new connection to Redis may have found a new master (a failover):
    check_master drops every project's state first if so."""
    check_master(services)
    for _ in range(tries - 1):
        try:
            return call()
        except StateMissingError:
            ensure_state(services, project_id)
    return call()


__all__ = ["LeasedTask", "Receipt", "Submission", "extend_lease", "next_task", "next_tasks",
           "replay_pending", "report_task", "skip_task", "submit_answer"]
