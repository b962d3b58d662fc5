"""The volunteer's calls: next task, answer, skip."""
from __future__ import annotations

from flask import request

from engine.volunteering import extend_lease, next_tasks, skip_task, submit_answer
from web.api import bp, serialize
from web.api.schemas import AnswerCreate, NextQuery, load_body, load_query
from web.auth import identity
from web.services import services

# Built once: a marshmallow schema holds no per-load state, and building one per
# request costs more than the load itself.
_NEXT_QUERY = NextQuery()
_ANSWER_CREATE = AnswerCreate()


@bp.get("/projects/<int:project_id>/tasks/next")
def next_task_(project_id: int):
    """The next task and its lease; with ?count=N (N <= 5) also `queue`, the
    further tasks leased at once so a page can preload them."""
    caller = identity().require_volunteer()  # 401/403 before the query is judged
    # Most calls send no query at all: the schema would only give its default.
    count = load_query(_NEXT_QUERY)["count"] if request.args else 1
    handouts = next_tasks(services(), caller, project_id, count)
    if not handouts:
        return "", 204
    first, *rest = (_handout(h) for h in handouts)
    return {**first, "queue": rest} if count > 1 else first


def _handout(handout) -> dict:
    return {"task": {"id": handout.task_id, "type": handout.task_type,
                     "payload": handout.payload},
            "lease": {"token": handout.lease, "expires_at": serialize.iso(handout.expires_at)}}


@bp.post("/tasks/<int:task_id>/answers")
def submit_answer_(task_id: int):
    caller = identity().require_volunteer()  # 401/403 before the body is judged
    data = load_body(_ANSWER_CREATE)
    receipt = submit_answer(services(), caller, task_id, data["lease"], data["answer"])
    return {"id": receipt.answer_id, "task": receipt.task_id, "counted": receipt.counted,
            "created_at": serialize.iso(receipt.created_at)}, 201


@bp.delete("/leases/<token>")
def skip_task_(token: str):
    released = skip_task(services(), identity(), token)
    return {"released": released}


@bp.post("/leases/<token>/extend")
def extend_lease_(token: str):
    expires_at = extend_lease(services(), identity(), token)
    return {"token": token, "expires_at": serialize.iso(expires_at)}
