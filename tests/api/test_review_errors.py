"""Review queue, resolution and results: bodies and queries are checked after the token."""
from __future__ import annotations

import pytest

# --- review and resolution ----------------------------------------------------

RESOLUTION_CASES = [
    ({}, "answer"),
    ({"answer": "seal"}, "answer"),
    ({"answer": None}, "answer"),
    ({"answer": {}}, "answer.label"),
    ({"answer": {"label": "walrus"}}, "answer.label"),
    ({"answer": {"label": "seal"}, "note": 5}, "note"),
    ({"answer": {"label": "seal"}, "note": "x" * 2001}, "note"),
    ({"answer": {"label": "seal"}, "why": "x"}, "why"),
]


@pytest.mark.parametrize(("body", "field"), RESOLUTION_CASES,
                         ids=[f"{i}-{c[1]}" for i, c in enumerate(RESOLUTION_CASES)])
def test_resolution_fields_are_checked(api, client, url, scene, auth, body, field):
    r = client.post(url("/api/v1/tasks/{task}/resolution", scene), json=body,
                    headers=auth.admin("Penguin Watch"))
    api.field(api.error(r, 422)["fields"], field)


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=x", "offset=-1",
                                   "offset=1.5", "sort=id"])
def test_review_query_is_checked(api, client, url, scene, charity, query):
    r = client.get(url("/api/v1/projects/{project}/review?", scene) + query, headers=charity)
    assert set(api.error(r, 422)["fields"]) <= {"limit", "offset", "sort"}


def test_review_and_resolution_check_the_token_first(api, client, url, scene):
    api.error(client.get(url("/api/v1/projects/{project}/review?limit=x", scene)), 401)
    api.error(client.post(url("/api/v1/tasks/{task}/resolution", scene), json={}), 401)
    headers = scene["volunteer"]["headers"]
    api.error(client.post(url("/api/v1/tasks/{task}/resolution", scene), json={},
                          headers=headers), 403)


# --- results -----------------------------------------------------------------

@pytest.mark.parametrize("query", ["format=xml", "format=", "format=CSV", "format=csv&x=1"])
def test_results_query_is_checked(api, client, url, scene, charity, query):
    r = client.get(url("/api/v1/projects/{project}/results?", scene) + query, headers=charity)
    fields = api.error(r, 422)["fields"]
    assert "format" in fields or "x" in fields


def test_results_check_the_token_before_the_query(api, client, url, scene):
    api.error(client.get(url("/api/v1/projects/{project}/results?format=xml", scene)), 401)
