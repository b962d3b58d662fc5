"""IIIF imports over HTTP with the real worker: v2 and v3 manifests served with their
images by a local HTTP server, and the outbound guard on what an import may fetch.

Every manifest is made in the test; every job runs through RQ's burst worker.
The other importers (JSON, CSV, zips) are in test_imports.py.
"""
from __future__ import annotations

import json

import pytest
from rq import Retry

from engine.intake import jobs as intake
from engine.intake import queueing
from engine.intake.fetch import fetch
from engine.store.models import Job

from .imports_helpers import V2, V3, count, run, stored_items


@pytest.fixture
def project(api, charity) -> dict:
    return api.project(charity)


def import_iiif(client, api, headers, project_id, url) -> dict:
    r = client.post(f"/api/v1/projects/{project_id}/jobs", headers=headers, json={"iiif": url})
    assert r.status_code == 202, r.json
    assert r.json["kind"] == "iiif" and r.json["state"] == "queued"
    api.work()
    return api.job(headers, r.json["id"])


def test_a_v2_manifest_makes_one_item_per_canvas_image(client, api, services, charity,
                                                       project, iiif_museum):
    manifest = iiif_museum.v2()
    url = iiif_museum.serve("/v2/manifest.json", manifest)
    job = import_iiif(client, api, charity, project["id"], url)
    assert job["state"] == "done", job
    assert job["progress"]["tasks_made"] == 3 and job["problems"] == []
    items = stored_items(services, job["id"])
    b = iiif_museum.base
    assert [item["image"] for item in items] == [f"{b}/iiif/c1/full/full/0/default.jpg",
                                                 f"{b}/images/c2.jpg",
                                                 f"{b}/iiif/c3/full/full/0/default.jpg"]
    assert items[0]["id"] == f"{b}/canvas/1"
    assert items[0]["iiif"] == {"canvas": f"{b}/canvas/1", "width": 640, "height": 480,
                                "label": "p. 1", "manifest": url}
    assert items[2]["id"] == "canvas 3"  # the canvas id is too long for an item id
    assert items[2]["iiif"]["canvas"] == manifest["sequences"][0]["canvases"][2]["@id"]
    for item, name in zip(items, ["c1", "c2", "c3"], strict=True):  # the URLs serve the scans
        assert fetch(item["image"], 1_000_000, allow="127.0.0.1") == iiif_museum.images[name]
    copy = services.settings.uploads_path / f"job-{job['id']}.manifest.json"
    assert json.loads(copy.read_text()) == manifest

    again = import_iiif(client, api, charity, project["id"], url)
    assert again["progress"]["duplicates"] == 3 and again["progress"]["tasks_made"] == 0


def test_a_v3_manifest_uses_image_api_3_and_reports_a_canvas_without_image(
        client, api, services, charity, project, iiif_museum):
    url = iiif_museum.serve("/v3/manifest.json", iiif_museum.v3())
    job = import_iiif(client, api, charity, project["id"], url)
    assert job["state"] == "done", job
    items = stored_items(services, job["id"])
    assert [item["image"] for item in items] == [
        f"{iiif_museum.base}/iiif/c4/full/max/0/default.jpg",
        f"{iiif_museum.base}/iiif/c1/full/max/0/default.jpg"]
    assert items[1]["iiif"]["label"] == "Folio 3"
    assert [fetch(item["image"], 1_000_000, allow="127.0.0.1") for item in items] == [
        iiif_museum.images["c4"], iiif_museum.images["c1"]]
    assert job["problems"] == [{"item": 1, "canvas": f"{iiif_museum.base}/v3/canvas/2",
                                "reason": "no image is painted on this canvas"}]
    handout = api.next_task(api.volunteer()["headers"], project["id"])
    assert handout["task"]["payload"]["image"].startswith(f"{iiif_museum.base}/iiif/")


def test_a_manifest_uploaded_as_a_json_file_is_imported(client, api, services, charity,
                                                       project, iiif_museum):
    data = json.dumps(iiif_museum.v3()).encode()
    job = run(client, api, charity, project["id"], data, "diary.json")
    assert job["kind"] == "iiif" and job["state"] == "done", job
    assert job["progress"]["tasks_made"] == 2
    assert iiif_museum.hits.get("/v3/manifest.json") is None  # the upload itself was used


@pytest.mark.parametrize(("path", "document", "words"), [
    ("/collection.json", {"@context": V3, "type": "Collection", "id": "c", "items": []},
     "collection"),
    ("/empty.json", {"@context": V2, "@type": "sc:Manifest", "@id": "m", "sequences": []},
     "no sequence"),
    ("/nothing.json", {"not": "iiif"}, "not a IIIF Presentation"),
    ("/missing.json", None, "HTTP 404"),
])
def test_a_bad_manifest_fails_the_job_clearly_without_retries(client, api, services, charity,
                                                              project, iiif_museum, path, document,
                                                              words):
    url = iiif_museum.serve(path, document) if document is not None else iiif_museum.base + path
    job = import_iiif(client, api, charity, project["id"], url)
    assert job["state"] == "failed" and words in job["error"], job
    assert iiif_museum.hits[path] == 1  # the upload's fault: not tried again
    failed = services.queue("default").failed_job_registry.get_job_ids()
    assert f"split-{job['id']}" in failed
    assert not (services.settings.uploads_path / f"job-{job['id']}.manifest.json").exists()


def test_a_manifest_server_in_trouble_is_tried_again(client, api, services, charity, project,
                                                     iiif_museum, monkeypatch):
    monkeypatch.setattr(queueing, "SPLIT_RETRY", Retry(max=3))  # no waiting between attempts
    url = iiif_museum.serve("/v2/manifest.json", iiif_museum.v2())
    iiif_museum.fail_first["/v2/manifest.json"] = 2
    job = import_iiif(client, api, charity, project["id"], url)
    assert job["state"] == "done" and job["error"] is None, job
    assert iiif_museum.hits["/v2/manifest.json"] == 3
    assert job["progress"]["tasks_made"] == 3


@pytest.mark.parametrize("iiif", ["ftp://example.org/m.json", "/media/x.json", "https://",
                                  "javascript:alert(1)", "http://exa mple.org/m", "", 5, None,
                                  "http://[::1/m.json",
                                  ["http://example.org"], "http://x/" + "a" * 3000])
def test_a_iiif_body_needs_an_http_url(client, api, services, charity, project, iiif):
    r = client.post(f"/api/v1/projects/{project['id']}/jobs", headers=charity,
                    json={"iiif": iiif})
    assert "iiif" in api.error(r, 422)["fields"]
    assert count(services, Job) == 0


def test_items_and_iiif_together_are_refused(client, api, charity, project):
    r = client.post(f"/api/v1/projects/{project['id']}/jobs", headers=charity,
                    json={"iiif": "https://example.org/m.json", "items": [{"text": "x"}]})
    assert "iiif" in api.error(r, 422)["fields"]


def test_a_rerun_reads_the_manifest_kept_by_the_first_run(client, api, services, charity,
                                                          project, iiif_museum, monkeypatch):
    monkeypatch.setattr(intake, "BATCH", 1)
    real, calls = intake._insert, []

    def insert(*args):  # the second canvas dies on the way in
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return real(*args)

    monkeypatch.setattr(intake, "_insert", insert)
    manifest = iiif_museum.v2()
    url = iiif_museum.serve("/v2/manifest.json", manifest)
    job = import_iiif(client, api, charity, project["id"], url)
    assert job["state"] == "failed" and job["progress"]["items_split"] == 1, job

    manifest["sequences"][0]["canvases"] = manifest["sequences"][0]["canvases"][:1]
    iiif_museum.serve("/v2/manifest.json", manifest)  # the iiif_museum changed it meanwhile
    assert client.post(f"/api/v1/jobs/{job['id']}/rerun", headers=charity).status_code == 202
    api.work()
    done = api.job(charity, job["id"])
    assert done["state"] == "done" and done["progress"]["items_split"] == 3, done
    assert iiif_museum.hits["/v2/manifest.json"] == 1
    assert [i["iiif"]["label"] for i in stored_items(services, job["id"])] == [
        "p. 1", "p. 2", "p. 3"]


# The outbound guard on imports (tests/engine/test_outbound.py tests it whole):
# the suite's settings allow 127.0.0.1, the iiif_museum's address, and nothing else.

@pytest.mark.parametrize("host", ["127.0.0.2", "[::ffff:127.0.0.2]", "169.254.169.254",
                                  "0x7f000002"])
def test_a_manifest_inside_our_network_fails_the_job_without_a_request(
        client, api, services, charity, project, iiif_museum, host):
    job = import_iiif(client, api, charity, project["id"], f"http://{host}/manifest.json")
    assert job["state"] == "failed", job
    assert job["error"].endswith("could not be fetched: address not allowed"), job


def test_a_manifest_redirected_inside_is_not_followed(client, api, services, charity, project,
                                                      iiif_museum, monkeypatch):
    monkeypatch.setattr(queueing, "SPLIT_RETRY", Retry(max=1))
    real = iiif_museum._handler()

    class Redirect(real):
        def do_GET(self):  # noqa: N802 - the http.server API
            if self.path == "/moved.json":
                self.send_response(302)
                self.send_header("Location", "ftp://127.0.0.1:21/manifest.json")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            super().do_GET()

    iiif_museum.httpd.RequestHandlerClass = Redirect
    job = import_iiif(client, api, charity, project["id"], f"{iiif_museum.base}/moved.json")
    assert job["state"] == "failed" and "redirect not allowed" in job["error"], job


@pytest.mark.parametrize("iiif", ["http://user:pass@example.org/m.json",
                                  "https://user@example.org/m.json"])
def test_a_iiif_url_with_credentials_is_refused(client, api, services, charity, project, iiif):
    r = client.post(f"/api/v1/projects/{project['id']}/jobs", headers=charity,
                    json={"iiif": iiif})
    error = api.error(r, 422)
    assert "iiif" in error["fields"] and "pass" not in json.dumps(error)
    assert count(services, Job) == 0

