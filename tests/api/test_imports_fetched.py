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


def photo_items(iiif_museum) -> list[dict]:
    return [{"image": f"{iiif_museum.base}/images/{name}.jpg", "id": name} for name in PHOTOS]


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
        client, api, services, charity, iiif_museum, monkeypatch):
    monkeypatch.setattr(intake, "BATCH", 1)  # c1 is stored before c2's server is busy
    project = api.project(charity, **LOCATE)
    iiif_museum.fail_first["/images/c2.jpg"] = 1
    job_id = start_job(client, charity, project["id"], photo_items(iiif_museum))
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
    hits = {name: iiif_museum.hits[f"/images/{name}.jpg"] for name in PHOTOS}
    assert hits == {"c1": 1, "c2": 2, "c3": 1}  # resumed, not started over


def test_an_image_server_busy_through_every_retry_costs_its_item_not_the_import(
        client, api, services, charity, iiif_museum, monkeypatch):
    """A review: failing every attempt at a server that stays down left the job
    failed for good, every rerun stopping at the same picture, so no item after
    it was ever split. The last attempt reports it as its item's problem."""
    monkeypatch.setattr(queueing, "SPLIT_RETRY", Retry(max=2))  # no waiting between attempts
    project = api.project(charity, **LOCATE)
    iiif_museum.fail_first["/images/c2.jpg"] = 10**6  # down for good
    job_id = start_job(client, charity, project["id"], photo_items(iiif_museum))
    api.work()
    done = api.job(charity, job_id)
    assert done["state"] == "done" and done["error"] is None, done
    [problem] = done["problems"]
    assert problem["ref"] == "c2", problem
    assert problem["reason"].endswith("c2.jpg could not be fetched: HTTP 503"), problem
    assert iiif_museum.hits["/images/c2.jpg"] == 3  # the first attempt and two retries
    assert [item["id"] for item in stored_items(services, job_id)] == ["c1", "c3"]
    assert count(services, Task, project_id=project["id"]) == 2


def test_the_command_line_import_has_no_retry_so_a_busy_server_is_one_items_problem(
        api, services, charity, iiif_museum):
    """`bitesize import` runs the split once, with nothing to retry it."""
    project = api.project(charity, **LOCATE)
    iiif_museum.fail_first["/images/c2.jpg"] = 1
    job = intake.create_job(services, _owner(services, charity), project["id"],
                            items=photo_items(iiif_museum))
    done = intake.run_job(services, job.id)
    assert done.state == "done" and [p["ref"] for p in done.problems] == ["c2"]


def _owner(services, headers):
    from engine.identity import authenticate
    return authenticate(services, headers["Authorization"].split()[1])


def test_the_pixel_limit_setting_holds_for_a_picture_fetched_by_url(
        settings, registry, api, services, charity, iiif_museum):
    url = f"{iiif_museum.base}/images/c1.jpg"  # 64x48: 3,072 pixels
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
