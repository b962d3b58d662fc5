"""Proof of work for anonymous sign-up, over the API (BITESIZE_SIGNUP_WORK)."""
from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select

from engine.accounts import challenge
from engine.services import Services
from engine.store.models import Volunteer
from web import create_app

from .conftest import error_of


@pytest.fixture
def asking(settings, registry):
    """A client of an app that asks sign-ups for 8 bits of work."""
    svc = Services(replace(settings, signup_work=8), registry)
    yield create_app({"SERVICES": svc, "TESTING": True}).test_client()
    svc.close()


def _volunteers(services) -> int:
    with services.db.session() as session:
        return session.scalar(select(func.count()).select_from(Volunteer))


def test_off_by_default(client, services):
    assert client.get("/api/v1/volunteers/challenge").json == {
        "challenge": None, "bits": 0, "expires_at": None}
    assert client.post("/api/v1/volunteers").status_code == 201


def test_a_sign_up_with_its_work_done(asking, services):
    asked = asking.get("/api/v1/volunteers/challenge").json
    assert asked["bits"] == 8 and asked["expires_at"]
    nonce = challenge.solve(asked["challenge"], asked["bits"])
    r = asking.post("/api/v1/volunteers", json={"challenge": asked["challenge"], "nonce": nonce})
    assert r.status_code == 201 and r.json["token"]
    # once only
    again = asking.post("/api/v1/volunteers",
                        json={"challenge": asked["challenge"], "nonce": nonce})
    assert error_of(again, 409)["fields"] == {"challenge": "used"}
    assert _volunteers(services) == 1


def test_sign_ups_without_the_work_are_refused(asking, services):
    error = error_of(asking.post("/api/v1/volunteers"), 422)
    assert error["code"] == "challenge_required" and error["fields"] == {"challenge": "required"}
    asked = asking.get("/api/v1/volunteers/challenge").json
    wrong = next(str(n) for n in range(1000)
                 if not challenge.solves(asked["challenge"], str(n), 8))
    r = asking.post("/api/v1/volunteers", json={"challenge": asked["challenge"], "nonce": wrong})
    assert error_of(r, 422)["fields"] == {"nonce": "wrong"}
    r = asking.post("/api/v1/volunteers", json={"challenge": "<script>", "nonce": "1"})
    assert "challenge" in error_of(r, 422)["fields"]
    assert _volunteers(services) == 0


def test_a_difficulty_nobody_could_meet_stops_the_start(settings, registry):
    svc = Services(replace(settings, signup_work=64), registry)
    with pytest.raises(ValueError, match="BITESIZE_SIGNUP_WORK"):
        create_app({"SERVICES": svc, "TESTING": True})
    svc.close()
