"""Who may call what: tokens, roles, and another charity's things looking missing.

Errors are ``{"error": {"code", "message", "fields"}}`` (DESIGN.md). A missing or
unknown token is a 401, the wrong kind of account a 403, and another charity's
projects, jobs and results look missing (404), not forbidden.
"""
from __future__ import annotations

import io
import zipfile

import pytest
from sqlalchemy import update

from engine.identity import create_user, forget_cached_identities
from engine.store.models import Project

LABELS = ["penguin", "seal", "empty"]
PROJECT = {"name": "Seal cams", "task_type": "classify",
           "config": {"question": "What is it?", "labels": LABELS}}

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
def test_missing_token_is_401(api, client, url, call, scene, method, path, body):
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
def test_wrong_token_is_401(api, client, url, call, scene, method, path, body, header):
    """A token that was sent but matches nobody is refused even where none is needed."""
    r = call(client, method, url(path, scene), {"Authorization": header}, body)
    assert api.error(r, 401)["code"] == "unauthenticated"


@pytest.mark.parametrize("header", ["Basic dXNlcjpwdw==", "Bearer", "Bearer   ", "bsu_x",
                                    "Bearer nonsense", "Bearer " + "x" * 5000, "Bearer é",
                                    "Bearer bsu_\u0000"])
def test_malformed_authorization_header_is_401(api, client, url, scene, header):
    r = client.get(url("/api/v1/jobs/{job}", scene), headers={"Authorization": header})
    api.error(r, 401)


@pytest.mark.parametrize(("method", "path", "status"), PUBLIC, ids=ids(PUBLIC))
def test_public_calls_need_no_token(client, url, call, scene, method, path, status):
    assert call(client, method, url(path, scene)).status_code == status


@pytest.mark.parametrize(("method", "path", "body"), CHARITY_ONLY, ids=ids(CHARITY_ONLY))
def test_volunteer_token_where_a_charity_is_needed_is_403(api, client, url, call, scene, method,
                                                          path, body):
    headers = scene["volunteer"]["headers"]
    assert api.error(call(client, method, url(path, scene), headers, body), 403)["code"] \
        == "forbidden"


@pytest.mark.parametrize(("method", "path", "body"), VOLUNTEER_ONLY, ids=ids(VOLUNTEER_ONLY))
def test_charity_token_where_a_volunteer_is_needed_is_403(api, client, url, call, scene, charity,
                                                          method, path, body):
    assert api.error(call(client, method, url(path, scene), charity, body), 403)["code"] \
        == "forbidden"


def test_a_volunteer_blocked_platform_wide_is_told_so_not_taken_for_a_stranger(
        api, client, services, charity):
    """Their page must stop, not sign up a new volunteer behind the block: the
    401 names the token "blocked" on the hot path and on Flask's, while the
    block's tombstone lasts and after it (SQL decides; nothing is cached)."""
    project = api.project(charity)
    api.items(charity, project["id"], [{"text": "a"}, {"text": "b"}])
    blocked = api.volunteer()
    held = api.next_task(blocked["headers"], project["id"])
    platform = {"Authorization": "Bearer "
                + create_user(services, "Bitesize Ops", "platform-admin")[1]}
    r = client.post(BLOCK.format(project=project["id"], vid=blocked["id"]), headers=platform,
                    json={"scope": "platform"})
    assert r.status_code == 200, r.json
    headers = blocked["headers"]
    calls = [
        lambda: client.get(f"/api/v1/projects/{project['id']}/tasks/next", headers=headers),
        lambda: client.get(f"/api/v1/projects/{project['id']}/tasks/next?count=2",
                           headers=headers),  # Flask's view, not the hot path
        lambda: api.answer(headers, held["task"]["id"], held["lease"]["token"]),
        lambda: client.get("/api/v1/volunteers/me", headers=headers),
        lambda: client.get(f"/api/v1/projects/{project['id']}", headers=headers),
    ]
    for _ in range(2):  # the tombstone, then SQL alone, twice over
        for make in calls + calls:
            error = api.error(make(), 401)
            assert error["fields"] == {"token": "blocked"}, error
            assert error["message"] == "this volunteer can no longer answer here"
        forget_cached_identities(services)
    stranger = client.get(f"/api/v1/projects/{project['id']}/tasks/next",
                          headers={"Authorization": "Bearer bsv_not-a-token"})
    assert api.error(stranger, 401)["fields"] == {}  # matches nobody: no reason given


# --- whose data --------------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "body"), OWNER_ONLY, ids=ids(OWNER_ONLY))
@pytest.mark.parametrize("role", ["charity", "admin"])
def test_another_charitys_things_look_missing(api, client, url, call, auth, scene, method, path,
                                              body, role):
    headers = getattr(auth, role)("Seal Trust")
    assert api.error(call(client, method, url(path, scene), headers, body), 404)["code"] \
        == "not_found"


def test_another_charitys_zip_upload_looks_missing(api, client, url, scene, other_charity):
    r = client.post(url("/api/v1/projects/{project}/jobs", scene), headers=other_charity,
                    data={"file": (io.BytesIO(_empty_zip()), "photos.zip")})
    api.error(r, 404)


def test_a_paused_project_is_hidden_from_other_charities(api, client, url, services, scene, charity,
                                                        other_charity):
    with services.db.session() as session:
        session.execute(update(Project).values(state="paused"))
    path = url("/api/v1/projects/{project}", scene)
    api.error(client.get(path, headers=other_charity), 404)
    api.error(client.get(path), 404)
    assert client.get(path, headers=charity).status_code == 200
    assert client.get("/api/v1/projects", headers=other_charity).json == {"projects": []}
    assert len(client.get("/api/v1/projects", headers=charity).json["projects"]) == 1


@pytest.mark.parametrize("field", ["lease_seconds", "quality", "gold_start", "gold_floor",
                                   "gold_ramp"])
def test_owner_only_fields_are_not_shown_to_others(client, url, scene, charity, other_charity,
                                                   field):
    """The quality flags' thresholds and the gold mix were public: a security
    review read how fast and how samey a cheat may answer unflagged."""
    path = url("/api/v1/projects/{project}", scene)
    assert field in client.get(path, headers=charity).json
    assert field not in client.get(path, headers=other_charity).json
    assert field not in client.get(path).json
    listed = client.get("/api/v1/projects").json["projects"]
    assert listed and all(field not in shown for shown in listed)


def test_another_charitys_task_does_not_reveal_its_project(api, client, url, scene, auth):
    r = client.post(url("/api/v1/tasks/{task}/resolution", scene), headers=auth.admin("Seal"),
                    json={"answer": {"label": "seal"}})
    error = api.error(r, 404)
    assert error["fields"] == {"task": "not found"}
    assert "project" not in error["message"]


def test_only_an_admin_blocks(api, client, url, scene, charity):
    r = client.post(url(BLOCK, scene), headers=charity)
    assert api.error(r, 403)["code"] == "forbidden"


def test_another_charitys_job_does_not_reveal_its_project(api, client, url, scene, other_charity):
    error = api.error(client.get(url("/api/v1/jobs/{job}", scene), headers=other_charity), 404)
    assert error["fields"] == {"job": "not found"}
    assert "project" not in error["message"]


def _empty_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w"):
        pass
    return out.getvalue()
