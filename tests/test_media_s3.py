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
