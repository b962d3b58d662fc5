"""Every API call refuses a bad request with a JSON 4xx that names the field.

The contract of DESIGN.md: errors are ``{"error": {"code", "message", "fields"}}``,
a client's mistake is never a 5xx, and the service keeps serving afterwards.
Another charity's projects, jobs and results look missing (404), not forbidden.
"""
from __future__ import annotations

import io
import json
import time
import zipfile

import pytest
from sqlalchemy import func, select, update

from engine import leases
from engine.models import Answer, Project, Task
from web import create_app

HUGE = 2**64  # no SQL integer column holds it
LABELS = ["penguin", "seal", "empty"]
PROJECT = {"name": "Seal cams", "task_type": "classify",
           "config": {"question": "What is it?", "labels": LABELS}}


@pytest.fixture
def scene(api, project, services) -> dict:
    """Ids for every URL placeholder, and a live lease of a fresh volunteer."""
    volunteer = api.volunteer()
    handout = api.next_task(volunteer["headers"], project["id"])
    return {"project": project["id"], "job": project["job"], "task": handout["task"]["id"],
            "lease": handout["lease"]["token"], "volunteer": volunteer,
            "vid": volunteer["id"]}


def url(template: str, scene: dict) -> str:
    return template.format(**scene)


def call(client, method: str, path: str, headers: dict | None = None, body=None):
    return client.open(path, method=method, headers=headers or {}, json=body)


BLOCK = "/api/v1/projects/{project}/volunteers/{vid}/block"
# (method, path, a valid-looking body, who may call it) of every call that needs a token
NEEDS_TOKEN = [
    ("POST", "/api/v1/projects", PROJECT, "charity"),
    ("POST", "/api/v1/projects/{project}/jobs", {"items": [{"text": "x"}]}, "owner"),
    ("GET", "/api/v1/jobs/{job}", None, "owner"),
    ("GET", "/api/v1/projects/{project}/results", None, "owner"),
    ("GET", "/api/v1/projects/{project}/review", None, "owner"),
    ("POST", "/api/v1/tasks/{task}/resolution", {"answer": {"label": "seal"}}, "owner"),
    ("POST", BLOCK, None, "owner"),
    ("DELETE", BLOCK, None, "owner"),
    ("GET", "/api/v1/projects/{project}/tasks/next", None, "volunteer"),
    ("POST", "/api/v1/tasks/{task}/answers", {"lease": "x", "answer": {"label": "s"}},
     "volunteer"),
    ("DELETE", "/api/v1/leases/{lease}", None, "volunteer"),
    ("POST", "/api/v1/leases/{lease}/extend", None, "volunteer"),
]
CHARITY_ONLY = [c[:3] for c in NEEDS_TOKEN if c[3] in ("charity", "owner")]
OWNER_ONLY = [c[:3] for c in NEEDS_TOKEN if c[3] == "owner"]
VOLUNTEER_ONLY = [c[:3] for c in NEEDS_TOKEN if c[3] == "volunteer"]
NEEDS_TOKEN = [c[:3] for c in NEEDS_TOKEN]
PUBLIC = [("POST", "/api/v1/volunteers", 201), ("GET", "/api/v1/projects", 200),
          ("GET", "/api/v1/projects/{project}", 200), ("GET", "/api/v1/openapi.json", 200)]


def ids(cases):
    return [f"{c[0]} {c[1]}" for c in cases]


# --- who is calling ---------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "body"), NEEDS_TOKEN, ids=ids(NEEDS_TOKEN))
def test_missing_token_is_401(api, client, scene, method, path, body):
    r = call(client, method, url(path, scene), body=body)
    error = api.error(r, 401)
    assert error["code"] == "unauthenticated"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer bsu_not-a-token", "Bearer bsv_not-a-token"])
@pytest.mark.parametrize(("method", "path", "body"),
                         [*NEEDS_TOKEN, ("GET", "/api/v1/projects", None),
                          ("GET", "/api/v1/projects/{project}", None)],
                         ids=ids([*NEEDS_TOKEN, ("GET", "/api/v1/projects"),
                                  ("GET", "/api/v1/projects/{project}")]))
def test_wrong_token_is_401(api, client, scene, method, path, body, header):
    """A token that was sent but matches nobody is refused even where none is needed."""
    r = call(client, method, url(path, scene), {"Authorization": header}, body)
    assert api.error(r, 401)["code"] == "unauthenticated"


@pytest.mark.parametrize("header", ["Basic dXNlcjpwdw==", "Bearer", "Bearer   ", "bsu_x",
                                    "Bearer nonsense", "Bearer " + "x" * 5000, "Bearer é",
                                    "Bearer bsu_\u0000"])
def test_malformed_authorization_header_is_401(api, client, scene, header):
    r = client.get(url("/api/v1/jobs/{job}", scene), headers={"Authorization": header})
    api.error(r, 401)


@pytest.mark.parametrize(("method", "path", "status"), PUBLIC, ids=ids(PUBLIC))
def test_public_calls_need_no_token(client, scene, method, path, status):
    assert call(client, method, url(path, scene)).status_code == status


@pytest.mark.parametrize(("method", "path", "body"), CHARITY_ONLY, ids=ids(CHARITY_ONLY))
def test_volunteer_token_where_a_charity_is_needed_is_403(api, client, scene, method, path, body):
    headers = scene["volunteer"]["headers"]
    assert api.error(call(client, method, url(path, scene), headers, body), 403)["code"] \
        == "forbidden"


@pytest.mark.parametrize(("method", "path", "body"), VOLUNTEER_ONLY, ids=ids(VOLUNTEER_ONLY))
def test_charity_token_where_a_volunteer_is_needed_is_403(api, client, scene, charity,
                                                          method, path, body):
    assert api.error(call(client, method, url(path, scene), charity, body), 403)["code"] \
        == "forbidden"


# --- whose data --------------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "body"), OWNER_ONLY, ids=ids(OWNER_ONLY))
@pytest.mark.parametrize("role", ["charity", "admin"])
def test_another_charitys_things_look_missing(api, client, auth, scene, method, path, body, role):
    headers = getattr(auth, role)("Seal Trust")
    assert api.error(call(client, method, url(path, scene), headers, body), 404)["code"] \
        == "not_found"


def test_another_charitys_zip_upload_looks_missing(api, client, scene, other_charity):
    r = client.post(url("/api/v1/projects/{project}/jobs", scene), headers=other_charity,
                    data={"file": (io.BytesIO(_empty_zip()), "photos.zip")})
    api.error(r, 404)


def test_a_paused_project_is_hidden_from_other_charities(api, client, services, scene, charity,
                                                        other_charity):
    with services.db.session() as session:
        session.execute(update(Project).values(state="paused"))
    path = url("/api/v1/projects/{project}", scene)
    api.error(client.get(path, headers=other_charity), 404)
    api.error(client.get(path), 404)
    assert client.get(path, headers=charity).status_code == 200
    assert client.get("/api/v1/projects", headers=other_charity).json == {"projects": []}
    assert len(client.get("/api/v1/projects", headers=charity).json["projects"]) == 1


def test_owner_only_fields_are_not_shown_to_others(client, scene, charity, other_charity):
    path = url("/api/v1/projects/{project}", scene)
    assert "lease_seconds" in client.get(path, headers=charity).json
    assert "lease_seconds" not in client.get(path, headers=other_charity).json
    assert "lease_seconds" not in client.get(path).json


# --- unknown things ----------------------------------------------------------

@pytest.mark.parametrize("missing", [999_999, 2**31 - 1, 2**31, 2**63, HUGE])
@pytest.mark.parametrize(("method", "path", "role"), [
    ("GET", "/api/v1/projects/{id}", None),
    ("POST", "/api/v1/projects/{id}/jobs", "charity"),
    ("GET", "/api/v1/jobs/{id}", "charity"),
    ("GET", "/api/v1/projects/{id}/tasks/next", "volunteer"),
    ("GET", "/api/v1/projects/{id}/results", "charity"),
    ("GET", "/api/v1/projects/{id}/review", "charity"),
    ("POST", "/api/v1/tasks/{id}/resolution", "charity"),
    ("POST", "/api/v1/projects/{id}/volunteers/1/block", "admin"),
    ("DELETE", "/api/v1/projects/{id}/volunteers/1/block", "admin"),
])
def test_unknown_ids_are_404(api, client, auth, method, path, role, missing):
    headers = getattr(auth, role)() if role else {}
    body = ({"items": [{"text": "x"}]} if "jobs" in path else
            {"answer": {"label": "seal"}} if "resolution" in path else None)
    r = call(client, method, path.format(id=missing), headers, body)
    assert api.error(r, 404)["code"] == "not_found"


@pytest.mark.parametrize("missing", [2**31, 2**63, HUGE])
def test_answers_to_impossible_task_ids_are_404(api, client, auth, missing):
    r = client.post(f"/api/v1/tasks/{missing}/answers", headers=auth.volunteer(),
                    json={"lease": "1.1.1.1.x", "answer": {"label": "seal"}})
    api.error(r, 404)


@pytest.mark.parametrize("method", ["POST", "DELETE"])
@pytest.mark.parametrize("missing", [999_999, 2**31, HUGE])
def test_blocking_unknown_volunteers(api, client, auth, method, missing):
    """Blocking or unblocking nobody is a 404 (for an impossible id too, with
    either method: not a 405)."""
    admin = auth.admin()
    project = api.project(admin)
    r = client.open(f"/api/v1/projects/{project['id']}/volunteers/{missing}/block",
                    method=method, headers=admin)
    api.error(r, 404)


def test_another_charitys_task_does_not_reveal_its_project(api, client, scene, auth):
    r = client.post(url("/api/v1/tasks/{task}/resolution", scene), headers=auth.admin("Seal"),
                    json={"answer": {"label": "seal"}})
    error = api.error(r, 404)
    assert error["fields"] == {"task": "not found"}
    assert "project" not in error["message"]


def test_only_an_admin_blocks(api, client, scene, charity):
    r = client.post(url(BLOCK, scene), headers=charity)
    assert api.error(r, 403)["code"] == "forbidden"


def test_another_charitys_job_does_not_reveal_its_project(api, client, scene, other_charity):
    error = api.error(client.get(url("/api/v1/jobs/{job}", scene), headers=other_charity), 404)
    assert error["fields"] == {"job": "not found"}
    assert "project" not in error["message"]


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


@pytest.mark.parametrize("path", ["/api/v1/nothing", "/api/v1/projects/abc", "/api/nothing",
                                  "/api/v1/projects/-1", "/api/v1/jobs/1.5",
                                  "/api/v2/projects", "/api/v1/leases/a/b"])
def test_unknown_route_is_404_json(api, client, charity, path):
    api.error(client.get(path, headers=charity), 404)
    api.error(client.delete(path, headers=charity), 404)


@pytest.mark.parametrize(("method", "path"), [
    ("PUT", "/api/v1/projects"), ("DELETE", "/api/v1/projects/{project}"),
    ("GET", "/api/v1/volunteers"), ("POST", "/api/v1/openapi.json"),
    ("PATCH", "/api/v1/jobs/{job}"), ("GET", "/api/v1/tasks/{task}/answers"),
    ("POST", "/api/v1/leases/{lease}"), ("PUT", "/api/v1/projects/{project}/results"),
])
def test_wrong_method_is_405_json(api, client, scene, charity, method, path):
    r = call(client, method, url(path, scene), charity)
    assert api.error(r, 405)["code"] == "method_not_allowed"
    assert r.headers.get("Allow"), "a 405 says which methods are allowed"


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
def test_a_body_that_is_not_json_is_400(api, client, scene, charity, path, role, data,
                                        content_type):
    r = client.post(url(path, scene), data=data, content_type=content_type,
                    headers=body_headers(scene, charity, role))
    assert "body" in api.error(r, 400)["fields"]
    assert client.get("/api/v1/projects").status_code == 200  # still serving


@pytest.mark.parametrize("body", [[], [{"name": "x"}], "name", 5, None, True],
                         ids=["empty-array", "array", "string", "number", "null", "true"])
@pytest.mark.parametrize(("path", "role"), BODY_CALLS, ids=[c[0] for c in BODY_CALLS])
def test_json_that_is_not_an_object_is_422(api, client, scene, charity, path, role, body):
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
def test_text_no_database_can_store_is_400(api, client, services, scene, charity, path, role,
                                           body):
    """JSON can spell a lone surrogate or NUL, but SQLite and PostgreSQL refuse them."""
    body = body.replace("{lease}", scene["lease"])
    r = client.post(url(path, scene), data=body, content_type="application/json",
                    headers=body_headers(scene, charity, role))
    assert api.error(r, 400)["fields"] == {"body": "not text"}
    assert _answers(services) == 0


def test_emoji_and_other_real_text_are_fine(api, client, charity):
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

_DROP = object()


def project_body(**changes):
    """A valid project body with some fields changed, or dropped (value _DROP)."""
    body = {**PROJECT, "min_answers": 2, "max_answers": 3, **changes}
    return {key: value for key, value in body.items() if value is not _DROP}

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
def test_project_fields_are_checked(api, client, charity, services, changes, field):
    r = client.post("/api/v1/projects", json=project_body(**changes), headers=charity)
    api.field(api.error(r, 422)["fields"], field)
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Project)) == 0


def test_unknown_task_type_names_the_installed_ones(api, client, charity):
    r = client.post("/api/v1/projects", json=project_body(task_type="nope"), headers=charity)
    error = api.error(r, 422)
    assert "classify" in error["message"]
    assert error["fields"]["task_type"]


def test_a_good_project_is_stored(client, charity):
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
def test_job_items_are_checked(api, client, scene, charity, body, field):
    r = client.post(url("/api/v1/projects/{project}/jobs", scene), json=body, headers=charity)
    api.field(api.error(r, 422)["fields"], field)


def test_too_many_items_are_refused(api, client, services, scene, charity):
    from dataclasses import replace

    services.settings = replace(services.settings, max_items_per_request=2)
    r = client.post(url("/api/v1/projects/{project}/jobs", scene), headers=charity,
                    json={"items": [{"text": str(n)} for n in range(3)]})
    assert "items" in api.error(r, 422)["fields"]


def test_at_most_twenty_bad_items_are_reported(api, client, scene, charity):
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
def test_multipart_without_a_file_is_422(api, client, scene, charity, data):
    r = client.post(url("/api/v1/projects/{project}/jobs", scene), headers=charity,
                    data=data, content_type="multipart/form-data")
    assert "file" in api.error(r, 422)["fields"]


def test_garbled_multipart_is_4xx(api, client, scene, charity):
    for content_type in ("multipart/form-data", "multipart/form-data; boundary=xyz"):
        r = client.post(url("/api/v1/projects/{project}/jobs", scene), headers=charity,
                        data=b"--xyz\r\nnonsense\r\n\r\n", content_type=content_type)
        assert "file" in api.error(r, 422)["fields"]


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
def test_answer_fields_are_checked(api, client, services, scene, body, field):
    body = {k: (v.format(**scene) if isinstance(v, str) else v) for k, v in body.items()}
    r = client.post(url("/api/v1/tasks/{task}/answers", scene), json=body,
                    headers=scene["volunteer"]["headers"])
    api.field(api.error(r, 422)["fields"], field)
    assert _answers(services) == 0
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
def test_a_forged_or_garbled_lease_is_410(api, client, services, scene, token):
    r = client.post(url("/api/v1/tasks/{task}/answers", scene),
                    headers=scene["volunteer"]["headers"],
                    json={"lease": token, "answer": {"label": "seal"}})
    assert "lease" in api.error(r, 410)["fields"]
    r = client.delete(f"/api/v1/leases/{token}", headers=scene["volunteer"]["headers"])
    assert "lease" in api.error(r, 410)["fields"]
    assert _answers(services) == 0


def test_a_tampered_lease_is_410(api, client, scene):
    """Changing the task or volunteer inside a real token breaks its signature."""
    project, task, volunteer, expires, signature = scene["lease"].split(".")
    for forged in (f"{project}.{task}.{int(volunteer) + 1}.{expires}.{signature}",
                   f"{project}.{task}.{volunteer}.{int(expires) + 10**6}.{signature}",
                   f"{project}.{task}.{volunteer}.{expires}.{signature[::-1]}"):
        r = client.post(url("/api/v1/tasks/{task}/answers", scene),
                        headers=scene["volunteer"]["headers"],
                        json={"lease": forged, "answer": {"label": "seal"}})
        api.error(r, 410)


def test_someone_elses_lease_is_410(client, services, scene, api):
    thief = api.volunteer()
    r = api.answer(thief["headers"], scene["task"], scene["lease"])
    assert "lease" in api.error(r, 410)["fields"]
    r = client.delete(f"/api/v1/leases/{scene['lease']}", headers=thief["headers"])
    assert "lease" in api.error(r, 410)["fields"]
    assert _answers(services) == 0
    # and the owner can still use it
    assert api.answer(scene["volunteer"]["headers"], scene["task"], scene["lease"]
                      ).status_code == 201


def test_a_lease_for_another_task_is_410(client, services, scene, api):
    other_task = scene["task"] + 1
    r = api.answer(scene["volunteer"]["headers"], other_task, scene["lease"])
    assert "lease" in api.error(r, 410)["fields"]
    assert _answers(services) == 0


def test_a_second_answer_with_another_lease_is_409(client, services, scene, api):
    headers = scene["volunteer"]["headers"]
    first = api.answer(headers, scene["task"], scene["lease"], "seal")
    assert first.status_code == 201, first.json
    second_lease = _lease(services, scene["project"], scene["task"], scene["volunteer"]["id"])
    r = api.answer(headers, scene["task"], second_lease, "penguin")
    assert "task" in api.error(r, 409)["fields"]
    assert _answers(services) == 1


def test_a_retried_submit_is_the_same_answer(client, services, scene, api):
    headers = scene["volunteer"]["headers"]
    first = api.answer(headers, scene["task"], scene["lease"], "seal")
    again = api.answer(headers, scene["task"], scene["lease"], "seal")
    assert first.status_code == again.status_code == 201, (first.json, again.json)
    assert again.json["id"] == first.json["id"]
    assert again.json["counted"] == first.json["counted"]
    assert _answers(services) == 1


def test_charity_gets_403_before_the_body_is_judged(api, client, scene, charity):
    r = client.post(url("/api/v1/tasks/{task}/answers", scene), json={"x": 1},
                    headers=charity)
    api.error(r, 403)


def test_skipping_a_lease(client, scene):
    path = f"/api/v1/leases/{scene['lease']}"
    assert client.delete(path, headers=scene["volunteer"]["headers"]).json == {"released": True}
    assert client.delete(path, headers=scene["volunteer"]["headers"]).json == {"released": False}


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
def test_resolution_fields_are_checked(api, client, scene, auth, body, field):
    r = client.post(url("/api/v1/tasks/{task}/resolution", scene), json=body,
                    headers=auth.admin("Penguin Watch"))
    api.field(api.error(r, 422)["fields"], field)


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=x", "offset=-1",
                                   "offset=1.5", "sort=id"])
def test_review_query_is_checked(api, client, scene, charity, query):
    r = client.get(url("/api/v1/projects/{project}/review?", scene) + query, headers=charity)
    assert set(api.error(r, 422)["fields"]) <= {"limit", "offset", "sort"}


def test_review_and_resolution_check_the_token_first(api, client, scene):
    api.error(client.get(url("/api/v1/projects/{project}/review?limit=x", scene)), 401)
    api.error(client.post(url("/api/v1/tasks/{task}/resolution", scene), json={}), 401)
    headers = scene["volunteer"]["headers"]
    api.error(client.post(url("/api/v1/tasks/{task}/resolution", scene), json={},
                          headers=headers), 403)


# --- results -----------------------------------------------------------------

@pytest.mark.parametrize("query", ["format=xml", "format=", "format=CSV", "format=csv&x=1"])
def test_results_query_is_checked(api, client, scene, charity, query):
    r = client.get(url("/api/v1/projects/{project}/results?", scene) + query, headers=charity)
    fields = api.error(r, 422)["fields"]
    assert "format" in fields or "x" in fields


def test_results_check_the_token_before_the_query(api, client, scene):
    api.error(client.get(url("/api/v1/projects/{project}/results?format=xml", scene)), 401)


# --- size limits ---------------------------------------------------------------

@pytest.fixture
def small_client(services):
    return create_app({"SERVICES": services, "TESTING": True,
                       "MAX_CONTENT_LENGTH": 1000}).test_client()


def test_a_huge_json_body_is_413(api, small_client, auth):
    charity = auth.charity()
    body = project_body(description="x" * 2000)
    r = small_client.post("/api/v1/projects", json=body, headers=charity)
    api.error(r, 413)
    r = small_client.post("/api/v1/volunteers", json={"name": "x" * 2000})
    api.error(r, 413)
    assert small_client.post("/api/v1/projects", json=project_body(),
                             headers=charity).status_code == 201


def test_a_huge_upload_is_413(small_client, auth, api):
    charity = auth.charity()
    project = api.project(charity)
    r = small_client.post(f"/api/v1/projects/{project['id']}/jobs", headers=charity,
                          data={"file": (io.BytesIO(b"\0" * 5000), "photos.zip")})
    api.error(r, 413)
    assert small_client.get("/api/v1/projects", headers=charity).status_code == 200


def test_the_setting_max_upload_mb_limits_requests(api, services, auth):
    from dataclasses import replace

    services.settings = replace(services.settings, max_upload_mb=1)
    client = create_app({"SERVICES": services, "TESTING": True}).test_client()
    r = client.post("/api/v1/volunteers", data=b"{}" + b" " * (1024 * 1024 + 1),
                    content_type="application/json")
    api.error(r, 413)


# --- openapi -------------------------------------------------------------------

def test_openapi_lists_every_call(api, client):
    doc = client.get("/api/v1/openapi.json").json
    assert set(doc["paths"]) >= {"/volunteers", "/projects", "/projects/{project_id}",
                                 "/projects/{project_id}/jobs", "/jobs/{job_id}",
                                 "/tasks/{task_id}/answers", "/leases/{token}",
                                 "/projects/{project_id}/results",
                                 "/projects/{project_id}/tasks/next"}


# --- helpers ---------------------------------------------------------------------

def _lease(services, project_id: int, task_id: int, volunteer_id: int) -> str:
    """A genuine lease, as only the server could sign it."""
    claim = leases.LeaseClaim(project_id, task_id, volunteer_id,
                              int(time.time() * 1000) + 60_000)
    return leases.issue(services.settings.secret_key, claim)


def _answers(services) -> int:
    with services.db.session() as session:
        return session.scalar(select(func.count()).select_from(Answer))


def _empty_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w"):
        pass
    return out.getvalue()


# --- a sweep: hostile values in every field never make a 5xx -----------------

HOSTILE = [None, True, False, -1, 0, 2**64, -(2**64), 1e308, -1e308, 0.5, "", " ",
           "x" * 20_000, [], {}, [[]], {"a": {"b": {}}}, ["a", 1, None], "../../etc/passwd",
           "<script>alert(1)</script>", "=cmd|' /C calc'!A0", "\u202egnp.exe", "🐧",
           "javascript:alert(1)", "/media/../../secret", "https://", "1.2.3.4.5"]
SWEEP = [  # (path, who, a valid body, where to put the hostile value)
    ("/api/v1/volunteers", None, {"name": "Ada"}, ["name", "other"]),
    ("/api/v1/projects", "charity", dict(PROJECT, min_answers=2, max_answers=3),
     ["name", "description", "task_type", "config", "min_answers", "max_answers",
      "confidence", "lease_seconds", "strategy", "gold_start", "gold_floor", "gold_ramp",
      "config.question", "config.labels", "config.labels.0", "config.instructions"]),
    ("/api/v1/projects/{project}/jobs", "charity", {"items": [{"text": "x", "id": "a"}]},
     ["items", "items.0", "items.0.text", "items.0.image", "items.0.thumb", "items.0.id",
      "items.0.gold", "priority"]),
    ("/api/v1/tasks/{task}/answers", "volunteer",
     {"lease": "{lease}", "answer": {"label": "seal"}}, ["lease", "answer", "answer.label"]),
    ("/api/v1/tasks/{task}/resolution", "admin", {"answer": {"label": "seal"}},
     ["answer", "answer.label", "note"]),
]


def _put(body, path: str, value):
    """A deep copy of body with value at the dotted path (list indexes as numbers)."""
    body = json.loads(json.dumps(body))
    *parents, last = path.split(".")
    node = body
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return body


@pytest.mark.parametrize(("path", "who", "body", "where"), [
    pytest.param(p, w, b, f, id=f"{p}:{f}") for p, w, b, fs in SWEEP for f in fs])
def test_hostile_values_never_make_a_5xx(api, client, auth, scene, charity, path, who, body,
                                         where):
    headers = {None: {}, "charity": charity, "volunteer": scene["volunteer"]["headers"],
               "admin": auth.admin("Penguin Watch")}[who]
    body = json.loads(json.dumps(body).replace("{lease}", scene["lease"]))
    for value in HOSTILE:
        r = client.post(url(path, scene), json=_put(body, where, value), headers=headers)
        assert r.status_code < 500, (value, r.get_data(True))
        if r.status_code >= 400:
            api.error(r, r.status_code)
