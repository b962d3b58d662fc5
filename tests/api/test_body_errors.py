"""Request bodies and their fields: a bad one is a JSON 400/422 naming the field.

Covers bodies that are not JSON objects, text no database can store, and the
fields of volunteers, projects and job items (JSON and multipart). Nothing is
stored when a body is refused.
"""
from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import func, select

from engine.store.models import Project, Task

# --- bodies that are not JSON objects ---------------------------------------

BODY_CALLS = [
    ("/api/v1/volunteers", None),
    ("/api/v1/projects", "charity"),
    ("/api/v1/projects/{project}/jobs", "charity"),
    ("/api/v1/tasks/{task}/answers", "volunteer"),
]


def body_headers(scene, charity, role):
    return {None: {}, "charity": charity, "volunteer": scene["volunteer"]["headers"]}[role]


@pytest.mark.parametrize(("data", "content_type"), [
    ("not json", "text/plain"),
    ('{"name": "x"}', "text/plain"),  # JSON, but not said to be
    ("{broken", "application/json"),
    ('{"name": "x"', "application/json"),
    (b"\xff\xfe{}", "application/json"),  # not UTF-8
    ("[" * 100_000 + "]" * 100_000, "application/json"),  # deeper than any parser recurses
    ('{"name": NaN}', "application/json"),  # not JSON (RFC 8259), though Python reads it
    ('{"confidence": Infinity}', "application/json"),
    ("name=x", "application/x-www-form-urlencoded"),
], ids=["text", "json-as-text", "broken", "unclosed", "not-utf8", "deep", "nan", "infinity",
        "form"])
@pytest.mark.parametrize(("path", "role"), BODY_CALLS, ids=[c[0] for c in BODY_CALLS])
def test_a_body_that_is_not_json_is_400(api, client, url, scene, charity, path, role, data,
                                        content_type):
    r = client.post(url(path, scene), data=data, content_type=content_type,
                    headers=body_headers(scene, charity, role))
    assert "body" in api.error(r, 400)["fields"]
    assert client.get("/api/v1/projects").status_code == 200  # still serving


@pytest.mark.parametrize("body", [[], [{"name": "x"}], "name", 5, None, True],
                         ids=["empty-array", "array", "string", "number", "null", "true"])
@pytest.mark.parametrize(("path", "role"), BODY_CALLS, ids=[c[0] for c in BODY_CALLS])
def test_json_that_is_not_an_object_is_422(api, client, url, scene, charity, path, role, body):
    r = client.post(url(path, scene), data=json.dumps(body), content_type="application/json",
                    headers=body_headers(scene, charity, role))  # json=None would send nothing
    assert "body" in api.error(r, 422)["fields"]


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8",
                                          "application/vnd.bitesize+json"])
def test_json_content_types_are_accepted(client, content_type):
    r = client.post("/api/v1/volunteers", data='{"name": "Ada"}', content_type=content_type)
    assert r.status_code == 201, r.json


@pytest.mark.parametrize(("path", "role", "body"), [
    ("/api/v1/volunteers", None, '{"name": "\\ud800"}'),
    ("/api/v1/volunteers", None, '{"name": "a\\u0000b"}'),
    ("/api/v1/volunteers", None, '{"\\udfff": 1}'),
    ("/api/v1/projects", "charity", '{"name": "\\udc80", "task_type": "classify", '
     '"config": {"question": "q", "labels": ["a", "b"]}}'),
    ("/api/v1/projects", "charity", '{"name": "x", "task_type": "classify", '
     '"config": {"question": "q\\ud83d", "labels": ["a", "b"]}}'),
    ("/api/v1/projects/{project}/jobs", "charity", '{"items": [{"text": "\\ud800"}]}'),
    ("/api/v1/projects/{project}/jobs", "charity", '{"items": [{"text": "x\\u0000"}]}'),
    ("/api/v1/tasks/{task}/answers", "volunteer",
     '{"lease": "{lease}", "answer": {"label": "\\ud800"}}'),
], ids=["surrogate", "nul", "surrogate-key", "project-name", "config", "item", "item-nul",
        "answer"])
def test_text_no_database_can_store_is_400(api, client, url, count_answers, services, scene,
                                           charity, path, role, body):
    """JSON can spell a lone surrogate or NUL, but SQLite and PostgreSQL refuse them."""
    body = body.replace("{lease}", scene["lease"])
    r = client.post(url(path, scene), data=body, content_type="application/json",
                    headers=body_headers(scene, charity, role))
    assert api.error(r, 400)["fields"] == {"body": "not text"}
    assert count_answers(services) == 0


def test_emoji_and_other_real_text_are_fine(api, client, project_body, charity):
    name = "Pingüinos 🐧 \u00e9 \U0001f427 漢字"
    r = client.post("/api/v1/projects", json=project_body(name=name), headers=charity)
    assert r.status_code == 201, r.json
    assert client.get(f"/api/v1/projects/{r.json['id']}").json["name"] == name


# --- POST /volunteers --------------------------------------------------------

@pytest.mark.parametrize(("body", "field"), [
    ({"name": 5}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": ["x"]}, "name"),
    ({"nick": "x"}, "nick"),
])
def test_volunteer_fields_are_checked(api, client, body, field):
    assert field in api.error(client.post("/api/v1/volunteers", json=body), 422)["fields"]


def test_volunteer_with_a_name(client):
    assert client.post("/api/v1/volunteers", json={"name": "Ada"}).status_code == 201


# --- POST /projects ----------------------------------------------------------

_DROP = ...  # a value in project_body(**changes) that leaves the field out
PROJECT_CASES = [
    ({"name": _DROP}, "name"),
    ({"task_type": _DROP}, "task_type"),
    ({"config": _DROP}, "config"),
    ({"state": "paused"}, "state"),
    ({"organisation_id": 2}, "organisation_id"),
    ({"name": 123}, "name"),
    ({"name": ""}, "name"),
    ({"name": None}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"description": "x" * 5001}, "description"),
    ({"task_type": 5}, "task_type"),
    ({"task_type": "nope"}, "task_type"),
    ({"task_type": ""}, "task_type"),
    ({"config": ["labels"]}, "config"),
    ({"config": "labels"}, "config"),
    ({"config": {}}, "config"),
    ({"config": {"question": "What?"}}, "config.labels"),
    ({"config": {"question": "What?", "labels": ["penguin"]}}, "config.labels"),
    ({"config": {"question": "What?", "labels": []}}, "config.labels"),
    ({"config": {"question": "What?", "labels": ["a", "A"]}}, "config.labels"),
    ({"config": {"question": "What?", "labels": ["a", ""]}}, "config.labels"),
    ({"config": {"question": "What?", "labels": "a,b"}}, "config.labels"),
    ({"config": {"labels": ["a", "b"]}}, "config.question"),
    ({"config": {"question": "What?", "labels": ["a", "b"], "colour": 1}}, "config.colour"),
    ({"min_answers": "three"}, "min_answers"),
    ({"min_answers": True}, "min_answers"),
    ({"min_answers": 0}, "min_answers"),
    ({"min_answers": 2.5}, "min_answers"),
    ({"min_answers": 10**30}, "min_answers"),
    ({"max_answers": 101}, "max_answers"),
    ({"min_answers": 4, "max_answers": 3}, "max_answers"),
    ({"confidence": 1.5}, "confidence"),
    ({"confidence": "high"}, "confidence"),
    ({"confidence": -0.1}, "confidence"),
    ({"lease_seconds": 1}, "lease_seconds"),
    ({"lease_seconds": [60]}, "lease_seconds"),
]


@pytest.mark.parametrize(("changes", "field"), PROJECT_CASES,
                         ids=[f"{i}-{c[1]}" for i, c in enumerate(PROJECT_CASES)])
def test_project_fields_are_checked(api, client, project_body, charity, services, changes, field):
    r = client.post("/api/v1/projects", json=project_body(**changes), headers=charity)
    api.field(api.error(r, 422)["fields"], field)
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Project)) == 0


def test_unknown_task_type_names_the_installed_ones(api, client, project_body, charity):
    r = client.post("/api/v1/projects", json=project_body(task_type="nope"), headers=charity)
    error = api.error(r, 422)
    assert "classify" in error["message"]
    assert error["fields"]["task_type"]


def test_a_good_project_is_stored(client, project_body, charity):
    r = client.post("/api/v1/projects", json=project_body(lease_seconds=30), headers=charity)
    assert r.status_code == 201, r.json
    assert r.json["lease_seconds"] == 30


# --- POST /projects/<id>/jobs (JSON) ------------------------------------------

ITEM_CASES = [
    ({}, "items"),
    ({"items": []}, "items"),
    ({"items": "photos"}, "items"),
    ({"items": None}, "items"),
    ({"items": [1]}, "items.0"),
    ({"items": [{"text": "ok"}, "x"]}, "items.1"),
    ({"items": [{"text": "ok"}, {}]}, "items.1"),
    ({"items": [{"text": "ok"}, {"id": "x"}]}, "items.1"),
    ({"items": [{"text": "ok"}, {"image": "javascript:alert(1)"}]}, "items.1.image"),
    ({"items": [{"image": "data:image/png;base64,AAAA"}]}, "items.0.image"),
    ({"items": [{"image": "/media/../secret"}]}, "items.0.image"),
    ({"items": [{"image": "https://x.org/a.jpg", "thumb": "javascript:x"}]}, "items.0.thumb"),
    ({"items": [{"image": "https://x.org/a.jpg", "text": "both"}]}, "items.0"),
    ({"items": [{"text": ""}]}, "items.0.text"),
    ({"items": [{"text": 5}]}, "items.0.text"),
    ({"items": [{"text": "x", "id": 7}]}, "items.0.id"),
    ({"items": [{"text": "x", "id": "x" * 201}]}, "items.0.id"),
    ({"items": [{"text": "x", "gold": "walrus"}]}, "items.0.gold"),
    ({"items": [{"text": "x", "colour": "red"}]}, "items.0.colour"),
    ({"items": [{"text": "x"}], "colour": 1}, "colour"),
    ({"items": [{"text": "x"}], "priority": 2.5}, "priority"),
    ({"items": [{"text": "x"}], "priority": 1000}, "priority"),
]


@pytest.mark.parametrize(("body", "field"), ITEM_CASES,
                         ids=[f"{i}-{c[1]}" for i, c in enumerate(ITEM_CASES)])
def test_job_items_are_checked(api, client, url, scene, charity, body, field):
    r = client.post(url("/api/v1/projects/{project}/jobs", scene), json=body, headers=charity)
    api.field(api.error(r, 422)["fields"], field)


def test_too_many_items_are_refused(api, client, url, services, scene, charity):
    from dataclasses import replace

    services.settings = replace(services.settings, max_items_per_request=2)
    r = client.post(url("/api/v1/projects/{project}/jobs", scene), headers=charity,
                    json={"items": [{"text": str(n)} for n in range(3)]})
    assert "items" in api.error(r, 422)["fields"]


def test_at_most_twenty_bad_items_are_reported(api, client, url, scene, charity):
    r = client.post(url("/api/v1/projects/{project}/jobs", scene), headers=charity,
                    json={"items": [{} for _ in range(100)]})
    assert len(api.error(r, 422)["fields"]["items"]) == 20


def test_stored_items_are_the_validated_ones(api, charity, client, services):
    """What a job stores is what the schema loaded (labels stripped), not the raw item."""
    project = api.project(charity)
    job = api.items(charity, project["id"], [{"text": "x", "gold": " seal "}])
    assert job["state"] == "done", job
    with services.db.session() as session:
        assert session.scalar(select(Task.gold)) == "seal"


# --- multipart uploads: see also test_uploads.py -----------------------------

@pytest.mark.parametrize("data", [
    {},
    {"items": "[]"},
    {"file": (io.BytesIO(b""), "")},
])
def test_multipart_without_a_file_is_422(api, client, url, scene, charity, data):
    r = client.post(url("/api/v1/projects/{project}/jobs", scene), headers=charity,
                    data=data, content_type="multipart/form-data")
    assert "file" in api.error(r, 422)["fields"]


def test_garbled_multipart_is_4xx(api, client, url, scene, charity):
    for content_type in ("multipart/form-data", "multipart/form-data; boundary=xyz"):
        r = client.post(url("/api/v1/projects/{project}/jobs", scene), headers=charity,
                        data=b"--xyz\r\nnonsense\r\n\r\n", content_type=content_type)
        assert "file" in api.error(r, 422)["fields"]
