"""The shapes of the API's main success replies, for the OpenAPI document.

Only the fields a client relies on are required, and other fields are
allowed, so a reply may grow without breaking the document; schemathesis's
response_schema_conformance checks every reply listed here against it
(tests/api/test_schemathesis.py).
"""
from __future__ import annotations

from typing import Any

_TEXT, _INT, _BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
_TIME = {"type": "string", "nullable": True}  # web.api.serialize.iso: ISO 8601 or null


def _object(**props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(props), "properties": props}


def _list_of(name: str, item: dict[str, Any]) -> dict[str, Any]:
    return _object(**{name: {"type": "array", "items": item}})


PROJECT = _object(id=_INT, name=_TEXT, description=_TEXT, task_type=_TEXT,
                  config={"type": "object"}, state=_TEXT, min_answers=_INT,
                  max_answers=_INT, confidence={"type": "number"}, strategy=_TEXT,
                  quality={"type": "object"}, created_at=_TIME, progress={"type": "object"},
                  tutorial={"type": "array", "items": _TEXT}, field_guide=_TEXT)
PROJECT["required"].remove("quality")  # its owners' only (web.api.serialize.OWNERS_ONLY)
JOB = _object(id=_INT, project=_INT, kind=_TEXT, state=_TEXT, priority=_INT,
              progress={"type": "object"}, problems={"type": "array"}, problems_count=_INT,
              created_at=_TIME)
HANDOUT = _object(task=_object(id=_INT, type=_TEXT, payload={}),
                  lease=_object(token=_TEXT, expires_at=_TEXT))
# `next` (and `next_error`) only when the answer asked for the next task
ANSWERED = _object(id=_INT, task=_INT, counted=_BOOL, created_at=_TIME)
ANSWERED["properties"] = {
    **ANSWERED["properties"],
    "next": {**HANDOUT, "nullable": True, "properties": {
        **HANDOUT["properties"], "queue": {"type": "array", "items": HANDOUT}}},
    "next_error": _object(status=_INT, code=_TEXT, message=_TEXT),
    "feedback": _object(right=_BOOL, score={"type": "number"},
                        expected={"type": "string", "nullable": True})}

ACCOUNT = _object(email={"type": "string", "nullable": True}, recovery_code=_BOOL,
                  created_at=_TIME)

# (method, path) -> (status, JSON schema of the reply's body)
REPLIES: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("post", "/volunteers"): ("201", _object(id=_INT, token=_TEXT)),
    ("get", "/volunteers/challenge"): ("200", _object(
        challenge={"type": "string", "nullable": True}, bits=_INT, expires_at=_TIME)),
    ("get", "/volunteers/me"): ("200", _object(
        id=_INT, account={**ACCOUNT, "nullable": True}, mail=_BOOL, answers=_INT,
        seconds=_INT, first_at=_TIME, last_at=_TIME,
        projects={"type": "array", "items": _object(id=_INT, name=_TEXT, answers=_INT,
                                                     finished=_INT, seconds=_INT,
                                                     news=_BOOL)})),
    ("put", "/projects/{project_id}/news-subscription"): ("200", _object(project=_INT,
                                                                         subscribed=_BOOL)),
    ("delete", "/projects/{project_id}/news-subscription"): ("200", _object(
        project=_INT, subscribed=_BOOL)),
    ("post", "/projects/{project_id}/news"): ("202", _object(id=_INT, project=_INT,
                                                             recipients=_INT)),
    ("post", "/volunteers/me/account"): ("201", _object(account=ACCOUNT,
                                                       other_devices_signed_out=_INT)),
    ("post", "/volunteers/me/recovery-code"): ("201", _object(
        recovery_code=_TEXT, account=ACCOUNT, other_devices_signed_out=_INT)),
    ("post", "/volunteers/sign-in"): ("201", _object(id=_INT, token=_TEXT)),
    ("delete", "/volunteers/me"): ("200", _object(deleted=_BOOL)),
    ("post", "/projects"): ("201", PROJECT),
    ("get", "/projects"): ("200", _list_of("projects", PROJECT)),
    ("get", "/projects/{project_id}"): ("200", PROJECT),
    ("patch", "/projects/{project_id}"): ("200", PROJECT),
    **{("post", f"/projects/{{project_id}}/{action}"): ("200", PROJECT)
       for action in ("publish", "pause", "complete", "archive")},
    ("post", "/projects/{project_id}/jobs"): ("202", JOB),
    ("get", "/projects/{project_id}/jobs"): ("200", _list_of("jobs", JOB)),
    ("get", "/jobs/{job_id}"): ("200", JOB),
    ("post", "/jobs/{job_id}/rerun"): ("202", JOB),
    ("get", "/projects/{project_id}/tasks/next"): ("200", HANDOUT),
    ("post", "/tasks/{task_id}/answers"): ("201", ANSWERED),
    ("delete", "/leases/{token}"): ("200", _object(released=_BOOL)),
    ("post", "/leases/{token}/extend"): ("200", _object(token=_TEXT, expires_at=_TEXT)),
}
