"""Items whose pictures a split fetches by URL (locate cuts tiles from them): a
busy image server is tried again later, never an item lost; the deployment's
pixel limit holds for a fetched picture as for an uploaded one.

The pictures are the Museum's (a local HTTP server on 127.0.0.1, which the
suite's fetch_allow lets imports reach); every job runs through RQ's burst worker.
"""
from __future__ import annotations

from dataclasses import replace

from rq import Retry
from rq.job import Job as RQJob

from engine.intake import jobs as intake
from engine.intake import queueing
from engine.services import Services
from engine.store.models import Task
from web import create_app
from workers.runner import run_worker

from .imports_helpers import count, stored_items

LOCATE = {"task_type": "locate",
          "config": {"question": "Box each nest", "tile_size": 512, "overlap": 64}}
PHOTOS = ("c1", "c2", "c3")


def photo_items(museum) -> list[dict]:
    return [{"image": f"{museum.base}/images/{name}.jpg", "id": name} for name in PHOTOS]


def start_job(client, headers, project_id: int, items: list[dict]) -> int:
    r = client.post(f"/api/v1/projects/{project_id}/jobs", headers=headers,
                    json={"items": items})
    assert r.status_code == 202, r.json
    return r.json["id"]


def retry_now(services, job_id: int) -> None:
    """What RQ's scheduler does when a retry's time comes: queue it again."""
    queue = services.queue("default")
    rq_job = RQJob.fetch(f"split-{job_id}", connection=services.queue_redis)
    queue.scheduled_job_registry.remove(rq_job)
    queue.enqueue_job(rq_job)


def test_a_busy_image_server_leaves_the_job_queued_and_its_retry_stores_each_item_once(
        client, api, services, charity, museum, monkeypatch):
    monkeypatch.setattr(intake, "BATCH", 1)  # c1 is stored before c2's server is busy
    project = api.project(charity, **LOCATE)
    museum.fail_first["/images/c2.jpg"] = 1
    job_id = start_job(client, charity, project["id"], photo_items(museum))
    api.work()
    waiting = api.job(charity, job_id)
    assert waiting["state"] == "queued", waiting
    assert "c2.jpg could not be fetched: HTTP 503" in waiting["error"]
    assert "tried again in 10 s" in waiting["error"]
    assert waiting["progress"]["items_split"] == 1 and waiting["problems"] == []

    retry_now(services, job_id)
    api.work()
    done = api.job(charity, job_id)
    assert done["state"] == "done" and done["error"] is None and done["problems"] == [], done
    assert [item["id"] for item in stored_items(services, job_id)] == list(PHOTOS)
    assert count(services, Task, project_id=project["id"]) == 3
    hits = {name: museum.hits[f"/images/{name}.jpg"] for name in PHOTOS}
    assert hits == {"c1": 1, "c2": 2, "c3": 1}  # resumed, not started over


def test_an_image_server_busy_through_every_retry_fails_the_job_for_a_rerun(
        client, api, services, charity, museum, monkeypatch):
    monkeypatch.setattr(queueing, "SPLIT_RETRY", Retry(max=2))  # no waiting between attempts
    project = api.project(charity, **LOCATE)
    museum.fail_first["/images/c2.jpg"] = 3
    job_id = start_job(client, charity, project["id"], photo_items(museum))
    api.work()
    failed = api.job(charity, job_id)
    assert failed["state"] == "failed", failed
    assert failed["error"] == f"{museum.base}/images/c2.jpg could not be fetched: HTTP 503"
    assert museum.hits["/images/c2.jpg"] == 3

    r = client.post(f"/api/v1/jobs/{job_id}/rerun", headers=charity)  # the server is back
    assert r.status_code == 202, r.json
    api.work()
    done = api.job(charity, job_id)
    assert done["state"] == "done" and done["problems"] == [], done
    assert [item["id"] for item in stored_items(services, job_id)] == list(PHOTOS)
    assert count(services, Task, project_id=project["id"]) == 3


def test_the_pixel_limit_setting_holds_for_a_picture_fetched_by_url(
        settings, registry, api, services, charity, museum):
    url = f"{museum.base}/images/c1.jpg"  # 64x48: 3,072 pixels
    strict = Services(replace(settings, max_image_pixels=3000), registry)
    try:
        client = create_app({"SERVICES": strict, "TESTING": True}).test_client()
        project = api.project(charity, **LOCATE)
        job_id = start_job(client, charity, project["id"], [{"image": url, "id": "big"}])
        run_worker(strict, burst=True)
        refused = api.job(charity, job_id)
    finally:
        strict.close()
    assert refused["state"] == "done" and refused["progress"]["tasks_made"] == 0, refused
    [problem] = refused["problems"]
    assert problem["ref"] == "big"
    assert "64x48 pixels, over the limit of 3000 pixels" in problem["reason"], problem

    default = api.project(charity, **LOCATE)  # the same picture under the default limit
    assert api.items(charity, default["id"], [{"image": url}])["progress"]["tasks_made"] == 1
