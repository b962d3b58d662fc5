"""Fair hand-out over HTTP (issue 14, point 3): a cap on live leases (429 with
Retry-After, not 204), a bound on extends (409), no answer to a skipped lease
(410), on the hot path (web.hot_path) and through Flask alike."""
from __future__ import annotations

import pytest
from werkzeug.test import Client

from web.hot_path import HotPath

from .conftest import error_of


@pytest.fixture
def hot(app) -> HotPath:
    assert isinstance(app.extensions["hot_path"], HotPath)
    return app.extensions["hot_path"]


@pytest.fixture
def flask_only(hot) -> Client:
    """The same app without the hot path in front."""
    return Client(hot.flask_wsgi)


@pytest.fixture
def twenty(api, charity) -> int:
    """A project of 20 tasks, each wanting one answer: the issue's scene."""
    project = api.project(charity, min_answers=1, max_answers=1)
    api.items(charity, project["id"], [{"text": f"photo {n}"} for n in range(20)])
    return project["id"]


def _next(client, headers, project_id, query=""):
    return client.get(f"/api/v1/projects/{project_id}/tasks/next{query}", headers=headers)


def test_three_hoarders_leave_tasks_for_an_honest_volunteer(client, api, hot, twenty):
    """3 volunteers asking ?count=5 as fast as they can leased all 20 tasks and an
    honest volunteer got 204. Now each gets 5, then 429 with Retry-After."""
    for hoarder in (api.volunteer() for _ in range(3)):
        leased = []
        for _ in range(4):
            r = _next(client, hoarder["headers"], twenty, "?count=5")
            if r.status_code != 200:
                break
            leased += [r.json["task"], *r.json["queue"]]
        assert len(leased) == 5
        error = error_of(r, 429)
        assert error["code"] == "too_many_leases"
        assert error["message"] == "too many tasks held: answer or skip one first"
        assert int(r.headers["Retry-After"]) >= 1
    honest = api.volunteer()
    served = hot.served
    r = _next(client, honest["headers"], twenty)
    assert (r.status_code, hot.served - served) == (200, 1)  # the hot path served it


def test_the_cap_is_the_same_429_on_the_hot_path_and_through_flask(client, flask_only, api,
                                                                  hot, twenty):
    v = api.volunteer()
    assert _next(client, v["headers"], twenty, "?count=5").status_code == 200
    served = hot.served
    fast = _next(client, v["headers"], twenty)
    assert hot.served - served == 1
    reference = _next(flask_only, v["headers"], twenty)
    assert error_of(fast, 429) == error_of(reference, 429)
    assert int(reference.headers["Retry-After"]) >= 1


def test_the_hot_paths_429_says_when_to_retry(client, api, twenty):
    v = api.volunteer()
    assert _next(client, v["headers"], twenty, "?count=5").status_code == 200
    r = _next(client, v["headers"], twenty)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def test_answering_frees_a_place(client, api, twenty):
    v = api.volunteer()
    r = _next(client, v["headers"], twenty, "?count=5")
    assert api.answer(v["headers"], r.json["task"]["id"], r.json["lease"]["token"]
                      ).status_code == 201
    assert _next(client, v["headers"], twenty).status_code == 200
    assert _next(client, v["headers"], twenty).status_code == 429


def test_nothing_left_is_still_a_204(client, api, charity):
    project = api.project(charity, min_answers=1, max_answers=1)
    api.items(charity, project["id"], [{"text": "photo"}])
    v = api.volunteer()
    assert _next(client, v["headers"], project["id"]).status_code == 200
    assert _next(client, api.volunteer()["headers"], project["id"]).status_code == 204


def test_extends_are_bounded(client, api, twenty):
    v = api.volunteer()
    lease = api.next_task(v["headers"], twenty)["lease"]["token"]
    for _ in range(4):
        assert client.post(f"/api/v1/leases/{lease}/extend", headers=v["headers"]
                           ).status_code == 200
    error = error_of(client.post(f"/api/v1/leases/{lease}/extend", headers=v["headers"]), 409)
    assert error["code"] == "too_many_extends"
    assert "lease" in error["fields"]


@pytest.mark.parametrize("path", ["hot", "flask"])
def test_a_skipped_lease_cannot_be_answered(client, flask_only, api, hot, twenty,
                                            count_answers, services, path):
    v = api.volunteer()
    handout = api.next_task(v["headers"], twenty)
    task, lease = handout["task"]["id"], handout["lease"]["token"]
    r = client.delete(f"/api/v1/leases/{lease}", headers=v["headers"])
    assert (r.status_code, r.json) == (200, {"released": True})
    answering = client if path == "hot" else flask_only
    served = hot.served
    r = answering.post(f"/api/v1/tasks/{task}/answers", headers=v["headers"],
                       json={"lease": lease, "answer": {"label": "seal"}})
    assert hot.served - served == (1 if path == "hot" else 0)
    error = error_of(r, 410)
    assert (error["code"], error["message"]) == ("lease_skipped", "this task was skipped")
    assert count_answers(services) == 0
