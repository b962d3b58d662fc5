"""Answers and their leases: field checks, forged or foreign leases (410), conflicts (409).

A retried submit is the same answer; a refused one stores nothing and leaves
the lease usable for a proper answer.
"""
from __future__ import annotations

import time

import pytest

from engine.dispatch import leases

# --- answers -----------------------------------------------------------------

ANSWER_CASES = [
    ({"answer": {"label": "seal"}}, "lease"),
    ({"lease": "{lease}"}, "answer"),
    ({"lease": "{lease}", "answer": {"label": "seal"}, "when": 1}, "when"),
    ({"lease": 5, "answer": {"label": "seal"}}, "lease"),
    ({"lease": "", "answer": {"label": "seal"}}, "lease"),
    ({"lease": "x" * 301, "answer": {"label": "seal"}}, "lease"),
    ({"lease": "{lease}", "answer": "seal"}, "answer"),
    ({"lease": "{lease}", "answer": ["seal"]}, "answer"),
    ({"lease": "{lease}", "answer": None}, "answer"),
    ({"lease": "{lease}", "answer": {}}, "answer.label"),
    ({"lease": "{lease}", "answer": {"label": "walrus"}}, "answer.label"),
    ({"lease": "{lease}", "answer": {"label": "Seal"}}, "answer.label"),
    ({"lease": "{lease}", "answer": {"label": 3}}, "answer.label"),
    ({"lease": "{lease}", "answer": {"label": "seal", "sure": True}}, "answer.sure"),
]


@pytest.mark.parametrize(("body", "field"), ANSWER_CASES,
                         ids=[f"{i}-{c[1]}" for i, c in enumerate(ANSWER_CASES)])
def test_answer_fields_are_checked(api, client, url, count_answers, services, scene, body, field):
    body = {k: (v.format(**scene) if isinstance(v, str) else v) for k, v in body.items()}
    r = client.post(url("/api/v1/tasks/{task}/answers", scene), json=body,
                    headers=scene["volunteer"]["headers"])
    api.field(api.error(r, 422)["fields"], field)
    assert count_answers(services) == 0
    # the lease is still good for a proper answer
    r = client.post(url("/api/v1/tasks/{task}/answers", scene), headers=scene["volunteer"][
        "headers"], json={"lease": scene["lease"], "answer": {"label": "seal"}})
    assert r.status_code == 201, r.json


@pytest.mark.parametrize("token", [
    "garbage", "1.2.3.4", "1.2.3.4.5.6", "1.2.3.4." + "0" * 32, "a.b.c.d." + "0" * 32,
    "1.2.3.4.ü" + "0" * 31,  # non-ASCII signature
    "\u0661.2.3.4." + "0" * 32,  # Arabic-Indic digit one
    "\u00b2.2.3.4." + "0" * 32,  # superscript two: isdigit(), yet not int()
    "9" * 290 + ".1.1.1.x",
])
def test_a_forged_or_garbled_lease_is_410(api, client, url, count_answers, services, scene, token):
    r = client.post(url("/api/v1/tasks/{task}/answers", scene),
                    headers=scene["volunteer"]["headers"],
                    json={"lease": token, "answer": {"label": "seal"}})
    assert "lease" in api.error(r, 410)["fields"]
    r = client.delete(f"/api/v1/leases/{token}", headers=scene["volunteer"]["headers"])
    assert "lease" in api.error(r, 410)["fields"]
    assert count_answers(services) == 0


def test_a_tampered_lease_is_410(api, client, url, scene):
    """Changing the task or volunteer inside a real token breaks its signature."""
    project, task, volunteer, expires, signature = scene["lease"].split(".")
    for forged in (f"{project}.{task}.{int(volunteer) + 1}.{expires}.{signature}",
                   f"{project}.{task}.{volunteer}.{int(expires) + 10**6}.{signature}",
                   f"{project}.{task}.{volunteer}.{expires}.{signature[::-1]}"):
        r = client.post(url("/api/v1/tasks/{task}/answers", scene),
                        headers=scene["volunteer"]["headers"],
                        json={"lease": forged, "answer": {"label": "seal"}})
        api.error(r, 410)


def test_someone_elses_lease_is_410(client, count_answers, services, scene, api):
    thief = api.volunteer()
    r = api.answer(thief["headers"], scene["task"], scene["lease"])
    assert "lease" in api.error(r, 410)["fields"]
    r = client.delete(f"/api/v1/leases/{scene['lease']}", headers=thief["headers"])
    assert "lease" in api.error(r, 410)["fields"]
    assert count_answers(services) == 0
    # and the owner can still use it
    assert api.answer(scene["volunteer"]["headers"], scene["task"], scene["lease"]
                      ).status_code == 201


def test_a_lease_for_another_task_is_410(client, count_answers, services, scene, api):
    other_task = scene["task"] + 1
    r = api.answer(scene["volunteer"]["headers"], other_task, scene["lease"])
    assert "lease" in api.error(r, 410)["fields"]
    assert count_answers(services) == 0


def test_a_second_answer_with_another_lease_is_409(client, count_answers, services, scene, api):
    headers = scene["volunteer"]["headers"]
    first = api.answer(headers, scene["task"], scene["lease"], "seal")
    assert first.status_code == 201, first.json
    second_lease = _lease(services, scene["project"], scene["task"], scene["volunteer"]["id"])
    r = api.answer(headers, scene["task"], second_lease, "penguin")
    assert "task" in api.error(r, 409)["fields"]
    assert count_answers(services) == 1


def test_a_retried_submit_is_the_same_answer(client, count_answers, services, scene, api):
    headers = scene["volunteer"]["headers"]
    first = api.answer(headers, scene["task"], scene["lease"], "seal")
    again = api.answer(headers, scene["task"], scene["lease"], "seal")
    assert first.status_code == again.status_code == 201, (first.json, again.json)
    assert again.json["id"] == first.json["id"]
    assert again.json["counted"] == first.json["counted"]
    assert count_answers(services) == 1


def test_charity_gets_403_before_the_body_is_judged(api, client, url, scene, charity):
    r = client.post(url("/api/v1/tasks/{task}/answers", scene), json={"x": 1},
                    headers=charity)
    api.error(r, 403)


def test_skipping_a_lease(client, scene):
    path = f"/api/v1/leases/{scene['lease']}"
    assert client.delete(path, headers=scene["volunteer"]["headers"]).json == {"released": True}
    assert client.delete(path, headers=scene["volunteer"]["headers"]).json == {"released": False}


def test_answer_to_an_unknown_task_is_404(client, services, scene, api):
    volunteer = api.volunteer()
    token = _lease(services, scene["project"], 999_999, volunteer["id"])
    r = api.answer(volunteer["headers"], 999_999, token)
    assert "task" in api.error(r, 404)["fields"]


def test_lease_for_an_unknown_project_is_404(client, services, api):
    volunteer = api.volunteer()
    token = _lease(services, 999_999, 1, volunteer["id"])
    r = api.answer(volunteer["headers"], 1, token)
    assert "project" in api.error(r, 404)["fields"]


def _lease(services, project_id: int, task_id: int, volunteer_id: int) -> str:
    """A genuine lease, as only the server could sign it."""
    claim = leases.LeaseClaim(project_id, task_id, volunteer_id,
                              int(time.time() * 1000) + 60_000)
    return leases.issue(services.settings.secret_key, claim)
