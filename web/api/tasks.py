"""The volunteer's calls: next task, answer, skip."""
from __future__ import annotations

from engine.volunteering import next_task, skip_task, submit_answer
from web.api import bp, serialize
from web.api.schemas import AnswerCreate, load_body
from web.auth import identity
from web.services import services


@bp.get("/projects/<int:project_id>/tasks/next")
def next_task_(project_id: int):
    handout = next_task(services(), identity(), project_id)
    if handout is None:
        return "", 204
    return {"task": {"id": handout.task_id, "type": handout.task_type,
                     "payload": handout.payload},
            "lease": {"token": handout.lease, "expires_at": serialize.iso(handout.expires_at)}}


@bp.post("/tasks/<int:task_id>/answers")
def submit_answer_(task_id: int):
    caller = identity()
    data = load_body(AnswerCreate())
    receipt = submit_answer(services(), caller, task_id, data["lease"], data["answer"])
    return {"id": receipt.answer_id, "task": receipt.task_id, "counted": receipt.counted,
            "created_at": serialize.iso(receipt.created_at)}, 201


@bp.delete("/leases/<token>")
def skip_task_(token: str):
    released = skip_task(services(), identity(), token)
    return {"released": released}
