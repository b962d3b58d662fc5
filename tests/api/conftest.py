"""Fixtures for the API tests: a charity with a project, another charity, volunteers.

Everything goes through HTTP (Flask's test client) except where a test needs
what no client could make, such as a second lease for one task.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.store.models import Answer
from tests.local_servers import serving

from .imports_helpers import Museum

LABELS = ["penguin", "seal", "empty"]
PROJECT = {"name": "Seal cams", "task_type": "classify",
           "config": {"question": "What is it?", "labels": LABELS}}


def error_of(response, status: int) -> dict[str, Any]:
    """The ``error`` object of a JSON error reply, checked for the API's shape."""
    assert response.status_code == status, (response.status_code, response.get_data(True))
    assert response.mimetype == "application/json", response.headers
    body = response.get_json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"], error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["fields"], dict), error
    return error


def field_at(fields: dict, path: str) -> Any:
    """The error under a dotted path such as ``items.1.image`` (KeyError if absent)."""
    node: Any = fields
    for part in path.split("."):
        node = node[part]
    return node


class Api:
    """Short calls for setting the scene over HTTP."""

    def __init__(self, client, auth, work) -> None:
        self.client, self.auth, self.work = client, auth, work

    def project(self, headers: dict, **extra: Any) -> dict:
        body = {"name": "Penguin cams", "task_type": "classify",
                "config": {"question": "What is in the photo?", "labels": LABELS},
                "min_answers": 2, "max_answers": 3, "confidence": 0.6,
                # volunteers here answer in no time: tests of quarantine turn it on
                "quality": {"quarantine": False, "trusted_after_minutes": 0}, **extra}
        r = self.client.post("/api/v1/projects", json=body, headers=headers)
        assert r.status_code == 201, r.json
        return r.json

    def items(self, headers: dict, project_id: int, items: list[dict]) -> dict:
        r = self.client.post(f"/api/v1/projects/{project_id}/jobs", json={"items": items},
                             headers=headers)
        assert r.status_code == 202, r.json
        self.work()
        return self.job(headers, r.json["id"])

    def job(self, headers: dict, job_id: int) -> dict:
        r = self.client.get(f"/api/v1/jobs/{job_id}", headers=headers)
        assert r.status_code == 200, r.json
        return r.json

    def volunteer(self) -> dict:
        """A volunteer made through the API: ``{"id", "token", "headers"}``."""
        r = self.client.post("/api/v1/volunteers")
        assert r.status_code == 201, r.json
        return {**r.json, "headers": {"Authorization": f"Bearer {r.json['token']}"}}

    def next_task(self, headers: dict, project_id: int) -> dict:
        r = self.client.get(f"/api/v1/projects/{project_id}/tasks/next", headers=headers)
        assert r.status_code == 200, r.get_data(True)
        return r.json

    error = staticmethod(error_of)
    field = staticmethod(field_at)

    def answer(self, headers: dict, task_id: int, lease: str, label: str = "penguin"):
        return self.client.post(f"/api/v1/tasks/{task_id}/answers",
                                json={"lease": lease, "answer": {"label": label}},
                                headers=headers)


@pytest.fixture
def api(client, auth, work) -> Api:
    return Api(client, auth, work)


@pytest.fixture
def charity(auth) -> dict:
    return auth.charity("Penguin Watch")


@pytest.fixture
def other_charity(auth) -> dict:
    return auth.charity("Seal Trust")


@pytest.fixture
def project(api, charity) -> dict:
    """A classify project of Penguin Watch with two text items split into tasks."""
    project = api.project(charity)
    job = api.items(charity, project["id"], [{"text": "photo 1", "id": "a"},
                                             {"text": "photo 2", "id": "b"}])
    assert job["state"] == "done", job
    return {**project, "job": job["id"]}


@pytest.fixture
def iiif_museum() -> Iterator[Museum]:
    """A local server of IIIF manifests (v2 and v3), Image API URLs and plain
    images, some failing on cue (tests/api/imports_helpers.py); the suite-wide
    `museum` (tests/conftest.py) serves one plain manifest."""
    with serving(Museum()) as server:
        yield server


# --- shared by the error tests (test_*_errors.py, test_hostile_sweep.py) -------

@pytest.fixture
def scene(api, project, services) -> dict:
    """Ids for every URL placeholder, and a live lease of a fresh volunteer."""
    volunteer = api.volunteer()
    handout = api.next_task(volunteer["headers"], project["id"])
    return {"project": project["id"], "job": project["job"], "task": handout["task"]["id"],
            "lease": handout["lease"]["token"], "volunteer": volunteer,
            "vid": volunteer["id"]}


def _url(template: str, scene: dict) -> str:
    return template.format(**scene)


def _call(client, method: str, path: str, headers: dict | None = None, body=None):
    return client.open(path, method=method, headers=headers or {}, json=body)


def _count_answers(services) -> int:
    with services.db.session() as session:
        return session.scalar(select(func.count()).select_from(Answer))


def _project_body(**changes):
    """A valid project body with some fields changed, or dropped (value ``...``)."""
    body = {**PROJECT, "min_answers": 2, "max_answers": 3, **changes}
    return {key: value for key, value in body.items() if value is not ...}


@pytest.fixture
def url():
    """``url(template, scene)``: a path with the scene's ids filled in."""
    return _url


@pytest.fixture
def call():
    """``call(client, method, path, headers=None, body=None)``: any request, JSON body."""
    return _call


@pytest.fixture
def count_answers():
    """``count_answers(services)``: how many answers are stored."""
    return _count_answers


@pytest.fixture
def project_body():
    """``project_body(**changes)``: a valid project body; a value ``...`` drops that field."""
    return _project_body
