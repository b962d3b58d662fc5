"""web.hot_path: the next and answer calls served beside Flask, and answered as Flask would.

Every other API test already goes through the hot path (it wraps the app the
test client calls). These tests pin what is particular to it: which requests
it takes and which it leaves to Flask, and that for the same request, with
the same state, it answers exactly what the Flask views answer: status, JSON
body and the headers HTTP asks for.
"""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import select
from werkzeug.test import Client

import web.api.tasks as tasks_api
from engine.store.models import Answer
from web.hot_path import HotPath

from .conftest import error_of


@pytest.fixture
def hot(app) -> HotPath:
    assert isinstance(app.extensions["hot_path"], HotPath)
    return app.extensions["hot_path"]


@pytest.fixture
def flask_only(hot) -> Client:
    """A client of the same app without the hot path in front: the reference."""
    return Client(hot.flask_wsgi)


def _served(hot: HotPath, client, *args, **kwargs):
    before = hot.served
    response = client.open(*args, **kwargs)
    return response, hot.served - before


def test_it_serves_the_plain_next_and_answer_calls(client, hot, api, project):
    volunteer = api.volunteer()
    r, served = _served(hot, client, f"/api/v1/projects/{project['id']}/tasks/next",
                        headers=volunteer["headers"])
    assert (r.status_code, served) == (200, 1)
    assert r.mimetype == "application/json" and r.get_data().endswith(b"}\n")
    assert set(r.json) == {"task", "lease"} and r.json["task"]["type"] == "classify"
    r, served = _served(hot, client, f"/api/v1/tasks/{r.json['task']['id']}/answers",
                        method="POST", headers=volunteer["headers"],
                        json={"lease": r.json["lease"]["token"], "answer": {"label": "seal"}})
    assert (r.status_code, served) == (201, 1)
    assert set(r.json) == {"id", "task", "counted", "created_at"} and r.json["counted"]
    assert int(r.headers["Content-Length"]) == len(r.get_data())


@pytest.mark.parametrize("method, path, kwargs", [
    ("GET", "/api/v1/projects/{p}/tasks/next?count=2", {}),
    ("HEAD", "/api/v1/projects/{p}/tasks/next", {}),
    ("GET", "/api/v1/projects/0{p}/tasks/next", {}),
    ("GET", "/api/v1/projects/{p}/tasks/next/", {}),
    ("GET", "/api/v1/projects/99999999999/tasks/next", {}),
    ("GET", "/api/v1/projects/{p}", {}),
    ("POST", "/api/v1/projects/{p}/tasks/next", {}),
    ("POST", "/api/v1/tasks/1/answers", {"data": "{}", "content_type": "text/plain"}),
    ("POST", "/api/v1/tasks/1/answers", {"data": "{}",
                                         "content_type": "application/vnd.x+json"}),
    ("PUT", "/api/v1/tasks/1/answers", {"json": {}}),
])
def test_it_leaves_every_other_request_to_flask(client, hot, api, project, method, path,
                                                  kwargs):
    volunteer = api.volunteer()
    r, served = _served(hot, client, path.format(p=project["id"]), method=method,
                        headers=volunteer["headers"], **kwargs)
    assert served == 0, (r.status_code, r.get_data(True))
    assert r.status_code != 500


def test_a_body_over_the_body_limit_goes_to_flask_for_its_413(app, client, hot, api,
                                                               project):
    app.config["BITESIZE_MAX_BODY"] = 100
    volunteer = api.volunteer()
    r, served = _served(hot, client, "/api/v1/tasks/1/answers", method="POST",
                        headers=volunteer["headers"],
                        json={"lease": "x" * 200, "answer": {"label": "seal"}})
    assert served == 0
    error_of(r, 413)


def _same(a, b) -> None:
    """Two replies to the same request: same status, JSON body and HTTP-required headers."""
    assert (a.status_code, a.get_json(silent=True)) == (b.status_code, b.get_json(silent=True))
    for name in ("Content-Type", "WWW-Authenticate", "Retry-After"):
        assert a.headers.get(name) == b.headers.get(name), name


def _bad_requests(project_id: int, task_id: int, lease: str, volunteer: dict, charity: dict):
    """(headers, method, path, body kwargs) of requests both paths must refuse alike."""
    answers = f"/api/v1/tasks/{task_id}/answers"
    good = {"lease": lease, "answer": {"label": "seal"}}
    vh = volunteer["headers"]
    return [
        ({}, "GET", f"/api/v1/projects/{project_id}/tasks/next", {}),
        ({"Authorization": "Bearer nope"}, "GET", f"/api/v1/projects/{project_id}/tasks/next",
         {}),
        ({"Authorization": "Basic abc"}, "GET", f"/api/v1/projects/{project_id}/tasks/next",
         {}),
        (charity, "GET", f"/api/v1/projects/{project_id}/tasks/next", {}),
        (vh, "GET", "/api/v1/projects/987654/tasks/next", {}),
        ({}, "POST", answers, {"json": good}),
        ({}, "POST", answers, {"data": "{not json", "content_type": "application/json"}),
        (charity, "POST", answers, {"json": good}),
        (vh, "POST", answers, {"data": "{not json", "content_type": "application/json"}),
        (vh, "POST", answers, {"data": "NaN", "content_type": "application/json"}),
        (vh, "POST", answers, {"data": '{"lease": "a\\u0000b", "answer": {}}',
                               "content_type": "application/json"}),
        (vh, "POST", answers, {"data": "[[[[" * 5000, "content_type": "application/json"}),
        (vh, "POST", answers, {"json": [good]}),
        (vh, "POST", answers, {"json": {"answer": {"label": "seal"}}}),
        (vh, "POST", answers, {"json": {"lease": "", "answer": {}}}),
        (vh, "POST", answers, {"json": {"lease": "forged", "answer": {"label": "seal"}}}),
        (vh, "POST", answers, {"json": {"lease": lease, "answer": "seal"}}),
        (vh, "POST", answers, {"json": {"lease": lease, "answer": {"label": "walrus"}}}),
        (vh, "POST", answers, {"json": {**good, "next": 6}}),
        (vh, "POST", f"/api/v1/tasks/{task_id + 1}/answers", {"json": good}),
    ]


def test_refusals_are_the_same_as_flasks(client, flask_only, hot, api, project, charity,
                                         count_answers, services):
    volunteer = api.volunteer()
    handout = api.next_task(volunteer["headers"], project["id"])
    cases = _bad_requests(project["id"], handout["task"]["id"], handout["lease"]["token"],
                          volunteer, charity)
    served = hot.served
    for headers, method, path, kwargs in cases:
        ours = client.open(path, method=method, headers=headers, **kwargs)
        theirs = flask_only.open(path, method=method, headers=headers, **kwargs)
        assert 400 <= ours.status_code < 500, (path, kwargs, ours.get_data(True))
        _same(ours, theirs)
    assert hot.served - served == len(cases)
    assert count_answers(services) == 0


def test_an_answer_and_its_retry_give_the_same_201_on_either_path(client, flask_only, api,
                                                                   project, count_answers,
                                                                   services):
    volunteer = api.volunteer()
    handout = api.next_task(volunteer["headers"], project["id"])
    path = f"/api/v1/tasks/{handout['task']['id']}/answers"
    body = {"lease": handout["lease"]["token"], "answer": {"label": "penguin"}}
    first = client.post(path, json=body, headers=volunteer["headers"])
    retry = flask_only.post(path, json=body, headers=volunteer["headers"])
    again = client.post(path, json=body, headers=volunteer["headers"])
    assert first.status_code == 201
    _same(first, retry)
    _same(first, again)
    assert count_answers(services) == 1


def test_another_answer_on_an_answered_lease_is_a_409_on_either_path(client, flask_only, api,
                                                                     project, services):
    """Not a retry: the first answer stands (one per lease), and the client is
    told, where it got the first one's 201 and believed its new answer saved."""
    volunteer = api.volunteer()
    handout = api.next_task(volunteer["headers"], project["id"])
    path = f"/api/v1/tasks/{handout['task']['id']}/answers"
    lease = handout["lease"]["token"]
    first = client.post(path, json={"lease": lease, "answer": {"label": "penguin"}},
                        headers=volunteer["headers"])
    assert first.status_code == 201
    changed = {"lease": lease, "answer": {"label": "seal"}}
    ours = client.post(path, json=changed, headers=volunteer["headers"])
    theirs = flask_only.post(path, json=changed, headers=volunteer["headers"])
    assert error_of(ours, 409)["fields"] == {
        "answer": "differs from the one already sent with this lease"}
    _same(ours, theirs)
    with services.db.session() as session:
        assert session.scalars(select(Answer.value)).all() == [{"label": "penguin"}]
    retry = client.post(path, json={"lease": lease, "answer": {"label": "penguin"}},
                        headers=volunteer["headers"])
    _same(first, retry)


def test_nothing_left_is_a_204_on_either_path(client, flask_only, api, project):
    volunteer = api.volunteer()
    url = f"/api/v1/projects/{project['id']}/tasks/next"
    for _ in range(2):  # the project's two tasks
        assert client.get(url, headers=volunteer["headers"]).status_code == 200
    ours = client.get(url, headers=volunteer["headers"])
    theirs = flask_only.get(url, headers=volunteer["headers"])
    assert (ours.status_code, ours.get_data()) == (204, b"")
    assert (theirs.status_code, theirs.get_data()) == (204, b"")


def test_a_body_shorter_than_its_declared_length_is_a_400(client, api, project):
    volunteer = api.volunteer()
    r = client.post("/api/v1/tasks/1/answers", data=b'{"lease": "x"}',
                    headers={**volunteer["headers"], "Content-Type": "application/json"},
                    environ_overrides={"CONTENT_LENGTH": "500"})
    assert error_of(r, 400)["fields"] == {"body": "incomplete"}


def test_an_unexpected_error_is_a_logged_json_500_and_the_next_call_works(
        client, api, project, monkeypatch, caplog):
    volunteer = api.volunteer()
    url = f"/api/v1/projects/{project['id']}/tasks/next"

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(tasks_api, "next_tasks", broken)
    with caplog.at_level(logging.ERROR):
        r = client.get(url, headers=volunteer["headers"])
    assert error_of(r, 500)["code"] == "internal"
    assert "disk on fire" not in r.get_data(True)
    assert any("unexpected error on GET" in rec.getMessage() and rec.exc_info
               for rec in caplog.records)
    monkeypatch.undo()
    assert client.get(url, headers=volunteer["headers"]).status_code == 200
