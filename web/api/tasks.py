"""The volunteer's calls: next task, answer, skip."""
from __future__ import annotations

from contextlib import nullcontext

from flask import g, request

from engine.identity import Identity
from engine.services import Services
from engine.volunteering import (
    extend_lease,
    next_tasks,
    report_task,
    skip_task,
    submit_answer,
)
from web.api import bp, serialize
from web.api.schemas import AnswerCreate, NextQuery, ReportCreate, load_body, load_query
from web.auth import identity
from web.errors import describe
from web.rate_limits import AnswerTally, RateLimitedError
from web.services import services

# Built once: a marshmallow schema holds no per-load state, and building one per
# request costs more than the load itself.
_NEXT_QUERY = NextQuery()
ANSWER_CREATE = AnswerCreate()


@bp.get("/projects/<int:project_id>/tasks/next")
def next_task_(project_id: int):
    """The next task and its lease; with ?count=N (N <= 5) also `queue`, the
    further tasks leased at once so a page can preload them.

    A volunteer holding Settings.max_leases live leases in the project gets a
    429 with Retry-After (until their oldest lease expires), not a 204, which
    means nothing is left: answering or skipping one frees a place.

    web.hot_path serves the plain call (no query string) without Flask's
    request machinery; both answer through next_reply."""
    caller = identity().require_volunteer()  # 401/403 before the query is judged
    # Most calls send no query at all: the schema would only give its default.
    count = load_query(_NEXT_QUERY)["count"] if request.args else 1
    reply = next_reply(services(), caller, project_id, count)
    return ("", 204) if reply is None else reply


def next_reply(svc: Services, caller: Identity, project_id: int, count: int) -> dict | None:
    """The body of a 200 to GET .../tasks/next, or None for a 204 (nothing left)."""
    return _tasks_reply(next_tasks(svc, caller, project_id, count), count)


def _tasks_reply(handouts: list, count: int) -> dict | None:
    """Leased tasks as GET .../tasks/next?count=N answers them (None: nothing left)."""
    if not handouts:
        return None
    first, *rest = (_handout(h) for h in handouts)
    return {**first, "queue": rest} if count > 1 else first


def _handout(handout) -> dict:
    return {"task": {"id": handout.task_id, "type": handout.task_type,
                     "payload": handout.payload},
            "lease": {"token": handout.lease, "expires_at": serialize.iso(handout.expires_at)}}


@bp.post("/tasks/<int:task_id>/answers")
def submit_answer_(task_id: int):
    """An answer; web.hot_path serves this call too, through answer_reply."""
    caller = identity().require_volunteer()  # 401/403 before the body is judged
    tally = g.get("answer_tally")  # web.api's before_request: the answer limits
    try:
        with tally.counting_refusals() if tally else nullcontext():
            reply = answer_reply(services(), caller, task_id, load_body(ANSWER_CREATE), tally)
    except RateLimitedError as exc:  # refusals filled the window: say which limit
        g.rate_limit = exc.verdict
        raise
    if tally is not None and tally.verdict is not None:
        g.rate_limit = tally.verdict.tighter(g.get("rate_limit"))
    return reply, 201


def answer_reply(svc: Services, caller: Identity, task_id: int, data: dict,
                 tally: AnswerTally | None = None) -> dict:
    """The body of the 201 to POST .../answers, for a body checked by ANSWER_CREATE.

    With `next` > 0 it also holds `next`: what GET .../tasks/next?count=N would
    have answered for the answer's project (null for its 204), leased after the
    answer is stored, so the answer's lease no longer counts against the cap.
    The answer is stored whatever happens to the hand-out: if that fails (the
    project was paused, the volunteer holds too many leases), the reply is
    still the answer's 201, with `next` null and `next_error` saying why.
    With a tally, the answer's submit counts it against the volunteer's answer
    limits, and the tally holds the verdict for the reply's headers."""
    count = data.get("next") or 0
    receipt = submit_answer(svc, caller, task_id, data["lease"], data["answer"], count,
                            tally.windows if tally else ())
    if tally is not None:
        tally.settle(receipt.tallied)
    reply = {"id": receipt.answer_id, "task": receipt.task_id, "counted": receipt.counted,
             "created_at": serialize.iso(receipt.created_at)}
    if receipt.feedback is not None:  # a practice task: the charity's answer
        reply["feedback"] = receipt.feedback
    if receipt.handout_error is not None:
        status, code, message, _ = describe(receipt.handout_error)
        reply.update(next=None, next_error={"status": status, "code": code,
                                            "message": message})
    elif count:
        reply["next"] = _tasks_reply(receipt.handed, count)
    return reply


@bp.delete("/leases/<token>")
def skip_task_(token: str):
    """Skip: the task goes back; an answer sent with this lease then gets 410."""
    released = skip_task(services(), identity(), token)
    return {"released": released}


@bp.post("/leases/<token>/report")
def report_task_(token: str):
    """Something is wrong with this task: reported to the charity, and the lease
    given back as with a skip (the volunteer goes on with another task)."""
    caller = identity().require_volunteer()
    data = load_body(ReportCreate())
    filed = report_task(services(), caller, token, data["reason"], data["note"])
    return {"reported": True, "withdrawn": filed.withdrawn}, 201


@bp.post("/leases/<token>/extend")
def extend_lease_(token: str):
    """Another lease term: 410 once the lease ended, 409 after Settings.max_extends."""
    expires_at = extend_lease(services(), identity(), token)
    return {"token": token, "expires_at": serialize.iso(expires_at)}
