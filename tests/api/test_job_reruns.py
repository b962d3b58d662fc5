"""Jobs that stop half-way: resumed by a re-run or by RQ's retries, never making
anything twice; failures that are the upload's fault are not retried.

A split is interrupted for real: batches of 2 (engine.intake.jobs.BATCH) and a
failure injected after a batch's items were committed in SQL but before its
tasks reached Redis, the worst moment.
"""
from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image
from rq import Retry
from rq.exceptions import AbandonedJobError
from rq.job import Job as RQJob
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from engine.intake import jobs as intake
from engine.intake import queueing
from engine.store.models import Item, Task
from workers.context import set_services
from workers.jobs import split_failed


def jpeg(n: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (n * 40 % 256, n * 90 % 256, 200)).save(out, "JPEG")
    return out.getvalue()


def photos_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for n in range(5):
            archive.writestr(f"cam/{n}.jpg", jpeg(n))
        archive.writestr("cam/notes.txt", b"x")
        archive.writestr("cam/again/0.jpg", jpeg(0))
    return out.getvalue()


CSV = ("id,text,gold\n" + "".join(f"r{n},row {n},{'walrus' if n == 3 else ''}\n"
                                  for n in range(7)))  # row 3 (line 5): a gold no label has


@pytest.fixture
def project(api, charity) -> dict:
    return api.project(charity)


@pytest.fixture
def interrupt(services, monkeypatch):
    """Batches of 2; the 2nd batch's tasks never reach Redis: the run dies there."""
    monkeypatch.setattr(intake, "BATCH", 2)
    real = services.dispatcher.add_tasks
    calls = []

    def add_tasks(project_id, tasks):
        calls.append(project_id)
        if len(calls) == 2:
            raise RuntimeError("power cut")
        return real(project_id, tasks)

    monkeypatch.setattr(services.dispatcher, "add_tasks", add_tasks)
    return lambda: monkeypatch.setattr(services.dispatcher, "add_tasks", real)


def upload(client, headers, project_id, data: bytes, filename: str):
    boundary, body = encode_multipart({"file": FileStorage(io.BytesIO(data), filename)})
    r = client.post(f"/api/v1/projects/{project_id}/jobs", headers=headers, data=body,
                    content_type=f"multipart/form-data; boundary={boundary}")
    assert r.status_code == 202, r.json
    return r.json


def rerun(client, headers, job_id: int):
    return client.post(f"/api/v1/jobs/{job_id}/rerun", headers=headers)


def stored(services, project_id: int) -> tuple[list[int], int]:
    """(the seqs of the project's items, sorted; how many tasks it has)."""
    with services.db.session() as session:
        seqs = sorted(session.scalars(select(Item.seq).where(Item.project_id == project_id)))
        tasks = session.scalar(select(func.count()).select_from(Task)
                               .where(Task.project_id == project_id))
        return seqs, tasks


def handed_out(api, project_id: int) -> int:
    """How many tasks one volunteer is offered in turn (skipping each)."""
    volunteer, count = api.volunteer(), 0
    while True:
        r = api.client.get(f"/api/v1/projects/{project_id}/tasks/next",
                           headers=volunteer["headers"])
        if r.status_code == 204:
            return count
        count += 1
        api.client.delete(f"/api/v1/leases/{r.json['lease']['token']}",
                          headers=volunteer["headers"])


def test_an_interrupted_zip_job_resumes_on_rerun_without_duplicates(
        client, api, services, charity, project, interrupt):
    job = upload(client, charity, project["id"], photos_zip(), "photos.zip")
    api.work()
    failed = api.job(charity, job["id"])
    assert failed["state"] == "failed" and failed["error"] == "RuntimeError: power cut"
    assert stored(services, project["id"]) == ([0, 1, 2, 3], 4)  # 2 batches committed
    assert f"split-{job['id']}" in services.queue().failed_job_registry.get_job_ids()

    interrupt()  # the cause is fixed
    r = rerun(client, charity, job["id"])
    assert r.status_code == 202 and r.json["state"] == "queued", r.json
    assert r.json["error"] == "RuntimeError: power cut"  # kept until the new run starts
    api.work()
    done = api.job(charity, job["id"])
    assert done["state"] == "done" and done["error"] is None, done
    assert stored(services, project["id"]) == ([0, 1, 2, 3, 4], 5)
    assert done["progress"] == {"items_total": 7, "items_read": 7, "items_split": 5,
                                "tasks_made": 5, "duplicates": 1}
    assert sorted((p["path"], p["reason"]) for p in done["problems"]) == [
        ("cam/again/0.jpg", "already in this project"), ("cam/notes.txt", "not an image file")]
    assert handed_out(api, project["id"]) == 5  # Redis caught up with SQL


def test_an_interrupted_csv_job_resumes_and_reports_each_bad_row_once(
        client, api, services, charity, project, interrupt):
    job = upload(client, charity, project["id"], CSV.encode(), "rows.csv")
    api.work()
    assert api.job(charity, job["id"])["state"] == "failed"
    interrupt()
    assert rerun(client, charity, job["id"]).status_code == 202
    api.work()
    done = api.job(charity, job["id"])
    assert done["state"] == "done", done
    assert stored(services, project["id"]) == ([0, 1, 2, 4, 5, 6], 6)
    assert [(p["item"], p["line"]) for p in done["problems"]] == [(3, 5)]
    assert done["progress"]["items_split"] == 6 and done["progress"]["tasks_made"] == 6


def test_only_a_failed_job_can_be_run_again(client, api, auth, charity, other_charity,
                                            project):
    job = api.items(charity, project["id"], [{"text": "x"}])
    error = api.error(rerun(client, charity, job["id"]), 409)
    assert "done" in error["message"] and error["fields"] == {"job": "done, not failed"}
    api.error(rerun(client, other_charity, job["id"]), 404)
    api.error(rerun(client, auth.volunteer(), job["id"]), 403)
    api.error(rerun(client, {}, job["id"]), 401)
    api.error(rerun(client, charity, 999_999), 404)


def test_an_admin_of_the_charity_may_run_a_failed_job_again(client, api, auth, services,
                                                            charity, project):
    job = upload(client, charity, project["id"], photos_zip(), "photos.zip")
    (services.settings.uploads_path / f"job-{job['id']}.zip").write_bytes(b"spoilt")
    api.work()
    assert api.job(charity, job["id"])["state"] == "failed"
    (services.settings.uploads_path / f"job-{job['id']}.zip").write_bytes(photos_zip())
    admin = auth.admin("Penguin Watch")
    assert rerun(client, admin, job["id"]).status_code == 202
    api.error(rerun(client, admin, job["id"]), 409)  # queued already: one run at a time
    api.work()
    assert api.job(charity, job["id"])["progress"]["tasks_made"] == 5


def test_failed_jobs_are_listed_with_their_error(client, api, services, charity,
                                                 other_charity, project):
    api.items(charity, project["id"], [{"text": "x"}])
    job = upload(client, charity, project["id"], photos_zip(), "photos.zip")
    (services.settings.uploads_path / f"job-{job['id']}.zip").write_bytes(b"spoilt")
    api.work()
    listed = client.get(f"/api/v1/projects/{project['id']}/jobs?state=failed",
                        headers=charity).json["jobs"]
    assert [(j["id"], j["state"]) for j in listed] == [(job["id"], "failed")]
    assert "zip" in listed[0]["error"]
    everything = client.get(f"/api/v1/projects/{project['id']}/jobs", headers=charity).json
    assert [j["state"] for j in everything["jobs"]] == ["failed", "done"]  # newest first
    api.error(client.get(f"/api/v1/projects/{project['id']}/jobs", headers=other_charity), 404)
    error = api.error(client.get(f"/api/v1/projects/{project['id']}/jobs?state=lost",
                                 headers=charity), 422)
    assert "state" in error["fields"]


def flaky_insert(monkeypatch, failures: int):
    """The first ``failures`` inserts lose the database connection."""
    real, calls = intake._insert, []

    def insert(*args):
        calls.append(1)
        if len(calls) <= failures:
            raise OperationalError("INSERT INTO item ...", {}, Exception("server closed"))
        return real(*args)

    monkeypatch.setattr(intake, "_insert", insert)
    return calls


def test_a_transient_failure_is_retried_and_makes_nothing_twice(
        client, api, services, charity, project, monkeypatch):
    monkeypatch.setattr(queueing, "SPLIT_RETRY", Retry(max=3))  # no waiting between attempts
    monkeypatch.setattr(intake, "BATCH", 2)
    calls = flaky_insert(monkeypatch, failures=2)
    job = upload(client, charity, project["id"], CSV.encode(), "rows.csv")
    api.work()
    done = api.job(charity, job["id"])
    assert done["state"] == "done" and done["error"] is None, done
    assert stored(services, project["id"]) == ([0, 1, 2, 4, 5, 6], 6)
    assert len(calls) == 2 + 3  # two failed attempts, then three batches of two
    assert handed_out(api, project["id"]) == 6


def test_a_transient_failure_waits_queued_with_back_off(client, api, services, charity,
                                                        project, monkeypatch):
    flaky_insert(monkeypatch, failures=1)
    job = upload(client, charity, project["id"], CSV.encode(), "rows.csv")
    api.work()
    waiting = api.job(charity, job["id"])
    assert waiting["state"] == "queued", waiting
    assert "OperationalError" in waiting["error"] and "tried again in 10 s" in waiting["error"]
    queue = services.queue("default")
    scheduled = queue.scheduled_job_registry
    assert scheduled.get_job_ids() == [f"split-{job['id']}"]
    when = scheduled.get_scheduled_time(f"split-{job['id']}")
    assert timedelta(seconds=5) < when - datetime.now(UTC) <= timedelta(seconds=10)

    rq_job = RQJob.fetch(f"split-{job['id']}", connection=services.redis)
    scheduled.remove(rq_job)
    queue.enqueue_job(rq_job)  # what RQ's scheduler does when the time comes
    api.work()
    assert api.job(charity, job["id"])["state"] == "done"
    assert stored(services, project["id"]) == ([0, 1, 2, 4, 5, 6], 6)


def test_when_retries_run_out_the_job_fails_with_the_last_error(
        client, api, services, charity, project, monkeypatch):
    monkeypatch.setattr(queueing, "SPLIT_RETRY", Retry(max=2))
    calls = flaky_insert(monkeypatch, failures=99)
    job = upload(client, charity, project["id"], CSV.encode(), "rows.csv")
    api.work()
    failed = api.job(charity, job["id"])
    assert failed["state"] == "failed" and failed["error"].startswith("OperationalError")
    assert "tried again" not in failed["error"]
    assert len(calls) == 3
    assert f"split-{job['id']}" in services.queue().failed_job_registry.get_job_ids()


def test_a_worker_that_died_mid_job_is_recorded_and_retried(client, api, services, charity,
                                                            project):
    job = upload(client, charity, project["id"], CSV.encode(), "rows.csv")
    rq_job = RQJob.fetch(f"split-{job['id']}", connection=services.redis)
    set_services(services)
    try:
        split_failed(rq_job, services.redis, AbandonedJobError, AbandonedJobError(), None)
        assert rq_job.should_retry
        waiting = api.job(charity, job["id"])
        assert waiting["state"] == "queued" and "AbandonedJobError" in waiting["error"]
        rq_job.retries_left = None  # the last attempt
        split_failed(rq_job, services.redis, AbandonedJobError, AbandonedJobError(), None)
    finally:
        set_services(None)
    assert api.job(charity, job["id"])["state"] == "failed"


def test_an_upload_error_stops_rq_retrying(services):
    """The failure callback decides, before RQ does, that a retry cannot help."""
    from engine.errors import InvalidError

    class Job:
        retries_left = 3
        should_retry = property(lambda self: bool(self.retries_left))

    job = Job()
    split_failed(job, None, InvalidError, InvalidError("not a zip"), None)
    assert job.retries_left is None
    job = Job()
    split_failed(job, None, OperationalError, OperationalError("x", {}, Exception()), None)
    assert job.retries_left == 3
