"""POST /volunteers: an anonymous volunteer in one call, no sign-up wall;
GET /volunteers/me: what their answers did (engine.contributions).

Sign-ups are rate-limited per client address and per network (web.rate_limits),
with defaults that let a school class start together behind one address.
"""
from __future__ import annotations

from flask import request

from engine.delivery.contributions import volunteer_record
from engine.identity import create_volunteer
from web import rate_limits
from web.api import bp, serialize
from web.api.schemas import VolunteerCreate, load_body
from web.auth import identity
from web.services import services


@bp.post("/volunteers")
def create_volunteer_():
    data = load_body(VolunteerCreate()) if _has_body() else {"name": None}
    rate_limits.enforce(*rate_limits.sign_up_checks(rate_limits.client_address()))
    volunteer_id, token = create_volunteer(services(), data["name"])
    return {"id": volunteer_id, "token": token}, 201


def _has_body() -> bool:
    return bool(request.get_data(cache=True))


@bp.get("/volunteers/me")
def my_record():
    """The calling volunteer's answers, time given and finished tasks, per project."""
    caller = identity().require_volunteer()
    record = volunteer_record(services(), caller)
    return {"id": caller.id, "answers": record.answers, "seconds": record.seconds,
            "first_at": serialize.iso(record.first_at),
            "last_at": serialize.iso(record.last_at),
            "projects": [{"id": p.project_id, "name": p.name, "answers": p.answers,
                          "finished": p.finished, "seconds": p.seconds}
                         for p in record.projects]}
