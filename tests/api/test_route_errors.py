"""Unknown routes and ids, wrong methods and oversized requests: JSON 4xx, never a 5xx.

Ids no SQL integer column can hold are a 404 like any other unknown id; a
request over the size limit is a 413 and the service keeps serving afterwards.
"""
from __future__ import annotations

import io

import pytest

from web import create_app

HUGE = 2**64  # no SQL integer column holds it


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
def test_unknown_ids_are_404(api, client, call, auth, method, path, role, missing):
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


@pytest.mark.parametrize("path", ["/api/v1/nothing", "/api/v1/projects/abc", "/api/nothing",
                                  "/api/v1/projects/-1", "/api/v1/jobs/1.5",
                                  "/api/v2/projects", "/api/v1/leases/a/b"])
def test_unknown_route_is_404_json(api, client, charity, path):
    api.error(client.get(path, headers=charity), 404)
    api.error(client.delete(path, headers=charity), 404)


@pytest.mark.parametrize(("method", "path"), [
    ("PUT", "/api/v1/projects"), ("POST", "/api/v1/projects/{project}"),
    ("GET", "/api/v1/volunteers"), ("POST", "/api/v1/openapi.json"),
    ("PATCH", "/api/v1/jobs/{job}"), ("GET", "/api/v1/tasks/{task}/answers"),
    ("POST", "/api/v1/leases/{lease}"), ("PUT", "/api/v1/projects/{project}/results"),
])
def test_wrong_method_is_405_json(api, client, url, call, scene, charity, method, path):
    r = call(client, method, url(path, scene), charity)
    assert api.error(r, 405)["code"] == "method_not_allowed"
    assert r.headers.get("Allow"), "a 405 says which methods are allowed"


# --- size limits ---------------------------------------------------------------

@pytest.fixture
def small_client(services):
    return create_app({"SERVICES": services, "TESTING": True,
                       "MAX_CONTENT_LENGTH": 1000}).test_client()


def test_a_huge_json_body_is_413(api, small_client, auth, project_body):
    charity = auth.charity()
    body = project_body(description="x" * 2000)
    r = small_client.post("/api/v1/projects", json=body, headers=charity)
    api.error(r, 413)
    r = small_client.post("/api/v1/volunteers", json={"name": "x" * 2000})
    api.error(r, 413)
    assert small_client.post("/api/v1/projects", json=project_body(),
                             headers=charity).status_code == 201


def test_bodies_that_are_not_uploads_are_limited_to_max_body_kb(api, app, client, auth,
                                                                project_body):
    """A security review posted 45 MB of JSON to the anonymous sign-up: 6 s to
    refuse it and 0.6 GB more memory in the worker. Every body but an upload's
    is held to BITESIZE_MAX_BODY_KB (1 MB by default) before it is read."""
    charity = auth.charity()
    over = "x" * (1024 * 1024)
    assert api.error(client.post("/api/v1/volunteers", json={"name": over}), 413)
    assert api.error(client.post("/api/v1/projects", json=project_body(description=over),
                                 headers=charity), 413)
    volunteer = api.volunteer()
    hot = app.extensions["hot_path"]
    served = hot.served
    assert api.error(client.post("/api/v1/tasks/1/answers", headers=volunteer["headers"],
                                 json={"lease": over, "answer": {"label": "seal"}}), 413)
    assert hot.served == served  # the hot path left it to Flask's 413
    project = api.project(charity)
    items = [{"image": f"https://example.org/{n:06d}-{'y' * 100}.jpg"} for n in range(9000)]
    upload = client.post(f"/api/v1/projects/{project['id']}/jobs", headers=charity,
                         json={"items": items})
    assert upload.status_code == 202, upload.get_data(as_text=True)  # over 1 MB: an upload
    assert client.post("/api/v1/volunteers", json={"name": "Ann"}).status_code == 201


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
