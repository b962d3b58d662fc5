"""Stored images in an S3-compatible bucket (issue 17.4: many nodes, one store).

The bucket is moto's S3 server run as a separate process on loopback: a
stand-in for S3 (or MinIO, Ceph, R2...), spoken to over HTTP by boto3 exactly
as a real one would be. Images put by an import, tiles cut by a split and the
thumbnails all land in the bucket, none in the instance folder, and every web
node serves them from it at /media/<name>.
"""
from __future__ import annotations

import io
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace

import pytest
from PIL import Image

from engine.services import Services
from web import create_app
from workers.runner import run_worker

from .api.imports_helpers import jpeg

BUCKET = "bitesize-media"


@pytest.fixture
def s3(free_port, monkeypatch):
    """moto's S3 server in its own process; its URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(key, value)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        import boto3

        boto3.client("s3", endpoint_url=url).create_bucket(Bucket=BUCKET)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def bucketed(settings, registry, s3):
    services = Services(replace(settings, media_url=f"s3://{BUCKET}/media?endpoint={s3}"),
                        registry)
    yield services, create_app({"SERVICES": services, "TESTING": True}).test_client(), s3
    services.close()


def objects(s3_url: str) -> list[str]:
    import boto3

    listed = boto3.client("s3", endpoint_url=s3_url).list_objects_v2(Bucket=BUCKET)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def test_images_tiles_and_thumbnails_live_in_the_bucket(bucketed, auth, settings):
    services, web, s3_url = bucketed
    photo = io.BytesIO()
    Image.linear_gradient("L").resize((900, 600)).convert("RGB").save(photo, "JPEG")
    stored = services.media.put(photo.getvalue(), "big.jpg")
    assert objects(s3_url) == sorted([f"media/{stored.name}", f"media/{stored.thumb}"])
    assert services.media.put(photo.getvalue(), "again.jpg").duplicate

    charity = auth.charity()
    project = web.post("/api/v1/projects", headers=charity, json={
        "name": "Seal counts", "task_type": "locate",
        "config": {"question": "Box every seal", "tile_size": 512, "overlap": 64}}).json
    job = web.post(f"/api/v1/projects/{project['id']}/jobs", headers=charity,
                   json={"items": [{"image": f"/media/{stored.name}"}]})
    assert job.status_code == 202, job.json
    run_worker(services, burst=True)
    assert web.get(f"/api/v1/jobs/{job.json['id']}", headers=charity).json["state"] == "done"
    tiles = [key for key in objects(s3_url) if key not in
             (f"media/{stored.name}", f"media/{stored.thumb}")]
    assert len(tiles) >= 2  # a 900x600 photo in 512-pixel tiles

    # a volunteer is handed a tile and the web serves its bytes from the bucket
    r = web.get(f"/api/v1/projects/{project['id']}/tasks/next", headers=auth.volunteer())
    assert r.status_code == 200, r.json
    ref = r.json["task"]["payload"]["image"]
    served = web.get(ref)
    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    assert served.headers["Cache-Control"].startswith("public")
    assert served.data == services.media.read(ref)
    with Image.open(io.BytesIO(served.data)) as tile:
        assert max(tile.size) <= 512
    assert web.get(f"/media/{'0' * 64}.jpg").status_code == 404
    assert web.get("/media/..%2Fsecret_key").status_code == 404
    # nothing was written to the instance folder's media
    assert not (settings.instance_path / "media").exists()


def test_a_bucket_that_does_not_answer_is_a_clear_error(settings, registry, free_port,
                                                        monkeypatch):
    from engine.errors import UnavailableError

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    services = Services(replace(settings, media_url=f"s3://{BUCKET}?endpoint="
                                f"http://127.0.0.1:{free_port()}&region=us-east-1"), registry)
    try:
        with pytest.raises(UnavailableError):
            services.media.put(jpeg("red"), "red.jpg")
    finally:
        services.close()
    from engine.intake.uploads import Uploads

    dead = Uploads(f"s3://{BUCKET}/uploads?endpoint=http://127.0.0.1:{free_port()}"
                   "&region=us-east-1", settings.uploads_path)
    for call in (lambda: dead.put_json("a.json", {}), lambda: dead.get_json("a.json"),
                 lambda: dead.exists("a.json"), lambda: dead.delete("a.json"),
                 lambda: dead.names("staged"), lambda: dead.opened("a.csv").__enter__()):
        with pytest.raises(UnavailableError):
            call()


def test_uploads_wait_in_a_private_bucket_for_a_worker_on_another_machine(
        settings, registry, auth, s3, tmp_path):
    """BITESIZE_UPLOADS_URL: the web node that takes an upload and the worker that
    splits it share no folder, only the bucket. A zip sent to the API, and a CSV
    staged on one web node, matched on another and split by the worker: every
    file waits in the bucket, none in either instance folder, and deleting the
    project removes them."""
    import zipfile

    from engine.identity import authenticate
    from engine.intake import staging

    from .api.imports_helpers import upload

    bucket = f"s3://{BUCKET}/uploads?endpoint={s3}"
    web_node = Services(replace(settings, uploads_url=bucket), registry)
    other = replace(settings, uploads_url=bucket, instance_path=tmp_path / "another-machine")
    worker_node = Services(other, registry)
    web = create_app({"SERVICES": web_node, "TESTING": True}).test_client()
    charity = auth.charity()
    project = web.post("/api/v1/projects", headers=charity, json={
        "name": "Owls", "task_type": "classify", "state": "draft",
        "config": {"question": "Owl?", "labels": ["owl", "none"]}}).json
    photos = io.BytesIO()
    with zipfile.ZipFile(photos, "w") as archive:
        archive.writestr("a.jpg", jpeg("red"))
        archive.writestr("b.jpg", jpeg("blue"))
    sent = upload(web, charity, project["id"], photos.getvalue(), "photos.zip")
    assert sent.status_code == 202, sent.json
    assert objects(s3) == [f"uploads/job-{sent.json['id']}.zip"]
    run_worker(worker_node, burst=True)
    done = web.get(f"/api/v1/jobs/{sent.json['id']}", headers=charity).json
    assert (done["state"], done["progress"]["tasks_made"]) == ("done", 2), done

    owner = authenticate(web_node, charity["Authorization"].split()[1])
    staged, _ = staging.stage_csv(web_node, owner, project["id"],
                                  io.BytesIO(b"caption\nan owl\nno owl\nowl again\n"), "owls.csv")
    assert [s.token for s in staging.staged_uploads(worker_node, owner, project["id"])] == [
        staged.token]
    csv_reads = []  # downloads of the staged CSV (its small record is read too)
    worker_node.uploads.blobs.client.meta.events.register(
        "before-parameter-build.s3.GetObject",
        lambda params, **_: csv_reads.append(params) if params["Key"].endswith(".csv") else None)
    _, preview = staging.get_staged(worker_node, owner, project["id"], staged.token)
    assert preview.columns == ["caption"]
    assert preview.rows == [["an owl"], ["no owl"], ["owl again"]]
    # the preview's one read is ranged: never the whole file, whatever its size
    assert [read.get("Range") for read in csv_reads] == [f"bytes=0-{staging.PREVIEW_BYTES - 1}"]
    csv_reads.clear()
    job = staging.import_staged(worker_node, owner, project["id"], staged.token,
                                {"text": "caption"})
    assert len(csv_reads) == 1  # once, for the job's copy: no preview on the way
    assert not [key for key in objects(s3) if key.startswith("uploads/staged/")]
    run_worker(worker_node, burst=True)
    done = web.get(f"/api/v1/jobs/{job.id}", headers=charity).json
    assert (done["state"], done["progress"]["tasks_made"]) == ("done", 3), done
    assert not (settings.instance_path / "uploads").exists()
    assert not (other.instance_path / "uploads").exists()
    assert [key for key in objects(s3) if key.startswith("uploads/")]

    assert web.delete(f"/api/v1/projects/{project['id']}", headers=charity).status_code == 204
    assert not [key for key in objects(s3) if key.startswith("uploads/")]
    web_node.close()
    worker_node.close()


def test_an_upload_from_the_bucket_is_a_local_file_while_it_is_read(settings, s3):
    """Uploads.opened on a bucket: a readable copy for the block, gone after it;
    a file the block makes where none was (a IIIF job's fetched manifest) is
    kept in the bucket for the job's next run once `keep` is asked."""
    from engine.intake.uploads import Uploads

    uploads = Uploads(f"s3://{BUCKET}/uploads?endpoint={s3}", settings.uploads_path)
    with uploads.opened("job-9.manifest.json") as path:
        assert not path.exists()
        path.write_text('{"canvases": 3}')
        uploads.keep("job-9.manifest.json", path)
    assert uploads.get_json("job-9.manifest.json") == {"canvases": 3}
    assert objects(s3) == ["uploads/job-9.manifest.json"]
    with uploads.opened("job-9.manifest.json") as path:
        assert path.read_text() == '{"canvases": 3}'
        copy = path
    assert not copy.exists()
    uploads.delete("job-9.manifest.json")
    assert uploads.get_json("job-9.manifest.json") is None and objects(s3) == []


def test_a_iiif_job_keeps_its_manifest_in_the_bucket(settings, registry, auth, s3):
    """The manifest a IIIF job fetched on its first run is in the bucket once the
    job has run, so a resumed run on any machine numbers the same canvases."""
    import json
    import threading

    from .api.imports_helpers import Museum

    museum = Museum()
    threading.Thread(target=museum.httpd.serve_forever, daemon=True).start()
    services = Services(replace(settings, uploads_url=f"s3://{BUCKET}/uploads?endpoint={s3}"),
                        registry)
    try:
        web = create_app({"SERVICES": services, "TESTING": True}).test_client()
        charity = auth.charity()
        project = web.post("/api/v1/projects", headers=charity, json={
            "name": "Letters", "task_type": "classify",
            "config": {"question": "Signed?", "labels": ["yes", "no"]}}).json
        manifest = museum.v2()
        sent = web.post(f"/api/v1/projects/{project['id']}/jobs", headers=charity,
                        json={"iiif": museum.serve("/v2/manifest.json", manifest)})
        assert sent.status_code == 202, sent.json
        run_worker(services, burst=True)
        done = web.get(f"/api/v1/jobs/{sent.json['id']}", headers=charity).json
        assert (done["state"], done["progress"]["tasks_made"]) == ("done", 3), done
        kept = services.uploads.get_json(f"job-{sent.json['id']}.manifest.json")
        assert kept == json.loads(json.dumps(manifest))
        assert not (settings.instance_path / "uploads").exists()
    finally:
        services.close()
        museum.httpd.shutdown()
        museum.httpd.server_close()
