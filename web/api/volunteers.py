"""POST /volunteers: an anonymous volunteer in one call, no sign-up wall."""
from __future__ import annotations

from flask import request

from engine.identity import create_volunteer
from web.api import bp
from web.api.schemas import VolunteerCreate, load_body
from web.services import services


@bp.post("/volunteers")
def create_volunteer_():
    data = load_body(VolunteerCreate()) if _has_body() else {"name": None}
    volunteer_id, token = create_volunteer(services(), data["name"])
    return {"id": volunteer_id, "token": token}, 201


def _has_body() -> bool:
    return bool(request.get_data(cache=True))
