"""Zip uploads over HTTP: real images made with Pillow, zipped in the test.

A good zip becomes tasks whose images are served from /media/; each bad member
(a path out of the folder, not an image, corrupt, a decompression bomb) is one
line in the job's report while the rest still comes in; a file that is no zip
at all is refused at upload time.
"""
from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib

import pytest
from PIL import Image
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from engine.store.models import Job, Task


def encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def photo(fmt: str, seed: int, size=(80, 60)) -> bytes:
    """A small image whose bytes differ per seed (random pixels)."""
    rng = os.urandom(size[0] * size[1] * 3) if seed < 0 else \
        bytes((seed * 37 + n) % 256 for n in range(size[0] * size[1] * 3))
    return encode(Image.frombytes("RGB", size, rng), fmt)


def png_bomb(width: int, height: int) -> bytes:
    """A valid black 1-bit PNG of a few hundred KB declaring width*height pixels."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte, then 8 pixels a byte
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row * min(1000, height - top))
                    for top in range(0, height, 1000)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def make_zip(members, compression=zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of (name, bytes[, compression]) members; names are written as given."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name, data, *method in members:
            archive.writestr(zipfile.ZipInfo(name), data,
                             compress_type=method[0] if method else compression)
    return out.getvalue()


GOOD = {"camera-1/2024/dawn.jpg": photo("JPEG", 1),
        "camera-1/2024/dusk.png": photo("PNG", 2),
        "camera-2/noon.jpg": photo("JPEG", 3),
        "top.jpeg": photo("JPEG", 4)}


@pytest.fixture
def project(api, charity) -> dict:
    return api.project(charity)


def upload(client, headers, project_id, data: bytes, filename="photos.zip"):
    # Encoded here, in memory: the test client spools big bodies to a temporary
    # file that it never closes (a ResourceWarning, an error under -W error).
    boundary, body = encode_multipart({"file": FileStorage(io.BytesIO(data), filename)})
    return client.post(f"/api/v1/projects/{project_id}/jobs", headers=headers, data=body,
                       content_type=f"multipart/form-data; boundary={boundary}")


def upload_and_run(client, api, headers, project_id, data, filename="photos.zip") -> dict:
    r = upload(client, headers, project_id, data, filename)
    assert r.status_code == 202, r.json
    assert r.json["kind"] == "zip" and r.json["state"] == "queued"
    api.work()
    return api.job(headers, r.json["id"])


def all_handouts(api, project_id: int) -> list[dict]:
    """Every task of the project, as one volunteer sees them (skipping each)."""
    volunteer = api.volunteer()
    handouts = []
    while True:
        r = api.client.get(f"/api/v1/projects/{project_id}/tasks/next",
                           headers=volunteer["headers"])
        if r.status_code == 204:
            return handouts
        assert r.status_code == 200, r.json
        handouts.append(r.json)
        api.client.delete(f"/api/v1/leases/{r.json['lease']['token']}",
                          headers=volunteer["headers"])


def item_refs(client, headers, project_id: int) -> list[str]:
    """The items' refs (their paths in the zip), sorted, as the charity exports them."""
    r = client.get(f"/api/v1/projects/{project_id}/results?format=json&level=item",
                   headers=headers)
    assert r.status_code == 200, r.json
    return sorted(row["item_ref"] for row in r.json)


def test_a_zip_of_images_becomes_tasks(client, api, charity, project):
    job = upload_and_run(client, api, charity, project["id"],
                         make_zip([*GOOD.items(), ("camera-2/", b"")]))
    assert job["state"] == "done", job
    assert job["error"] is None and job["problems"] == []
    assert job["progress"] == {"items_total": 4, "items_read": 4, "items_split": 4, "tasks_made": 4,
                               "duplicates": 0}

    assert item_refs(client, charity, project["id"]) == sorted(GOOD)
    handouts = all_handouts(api, project["id"])
    served = []
    for handout in handouts:
        payload = handout["task"]["payload"]
        assert "ref" not in payload  # the member's path stays with the charity
        with client.get(payload["image"]) as image:  # a file response: close it
            assert image.status_code == 200
            assert image.mimetype in ("image/jpeg", "image/png")
            served.append(image.data)
        with client.get(payload["thumb"]) as thumb, Image.open(io.BytesIO(thumb.data)) as shown:
            assert thumb.status_code == 200
            assert shown.format == "JPEG" and max(shown.size) <= 320
    assert sorted(served) == sorted(GOOD.values())


def test_the_same_zip_twice_reports_duplicates(client, api, charity, project):
    data = make_zip(GOOD.items())
    first = upload_and_run(client, api, charity, project["id"], data)
    second = upload_and_run(client, api, charity, project["id"], data)
    assert first["progress"]["duplicates"] == 0
    assert second["state"] == "done", second
    assert second["progress"]["duplicates"] == len(GOOD)


def test_bad_members_are_reported_and_the_rest_comes_in(client, api, services, charity,
                                                        project):
    truncated = photo("JPEG", -1, (400, 300))
    bomb = png_bomb(30_000, 30_000)
    members = [
        ("good/a.jpg", GOOD["camera-2/noon.jpg"]),
        ("../evil.jpg", photo("JPEG", 5)),
        ("/etc/evil.jpg", photo("JPEG", 6)),
        ("notes.txt", b"not a photo"),
        ("broken.jpg", truncated[: len(truncated) // 2]),
        ("garbage.png", os.urandom(2000)),
        ("bomb.png", bomb, zipfile.ZIP_STORED),  # stored: only its pixel count betrays it
        ("bomb-zipped.png", bomb),
        ("good/b.png", GOOD["camera-1/2024/dusk.png"]),
    ]
    job = upload_and_run(client, api, charity, project["id"], make_zip(members),
                         filename="../../photos.zip")
    assert job["state"] == "done", job
    assert job["progress"]["tasks_made"] == 2
    reasons = {p["path"]: p["reason"] for p in job["problems"]}
    assert set(reasons) == {"../evil.jpg", "/etc/evil.jpg", "notes.txt", "broken.jpg",
                            "garbage.png", "bomb.png", "bomb-zipped.png"}, reasons
    assert "unsafe" in reasons["../evil.jpg"] and "unsafe" in reasons["/etc/evil.jpg"]
    assert "not an image" in reasons["notes.txt"]
    assert "corrupt" in reasons["broken.jpg"] or "truncated" in reasons["broken.jpg"]
    assert "not an image" in reasons["garbage.png"]
    assert "bomb" in reasons["bomb.png"] or "pixels" in reasons["bomb.png"]
    assert "bomb" in reasons["bomb-zipped.png"]

    # nothing landed outside the instance's media and uploads folders
    instance = services.settings.instance_path
    written = {p.relative_to(instance.parent).parts[:2] for p in instance.parent.rglob("*")
               if p.is_file()}
    assert {parts[1] for parts in written if parts[0] == "instance"} <= {
        "media", "uploads", "secret_key"}
    assert not list(instance.parent.rglob("evil*")) and not list(instance.rglob("*.txt"))

    # and the service still answers
    assert client.get("/api/v1/projects").status_code == 200
    assert len(all_handouts(api, project["id"])) == 2
    assert item_refs(client, charity, project["id"]) == ["good/a.jpg", "good/b.png"]


def test_a_zip_without_images_finishes_empty(client, api, charity, project):
    job = upload_and_run(client, api, charity, project["id"],
                         make_zip([("readme.txt", b"hi"), (".DS_Store", b"x"),
                                   ("__MACOSX/._a.jpg", b"x")]))
    assert job["state"] == "done", job
    assert job["progress"]["tasks_made"] == 0
    assert [p["path"] for p in job["problems"]] == ["readme.txt"]


def _no_central_directory() -> bytes:
    data = bytearray(make_zip(GOOD.items()))
    start = data.find(b"PK\x01\x02")
    data[start:start + 4] = b"XXXX"
    return bytes(data)


@pytest.mark.parametrize("data", [
    b"this is not a zip file at all",
    b"",
    photo("JPEG", 7),
    make_zip(GOOD.items())[:-30],  # cut off: no end of central directory
    _no_central_directory(),
], ids=["text", "empty", "jpeg", "truncated", "corrupt-directory"])
def test_a_file_that_is_no_zip_is_refused_at_upload(client, services, charity, project,
                                                    api, data):
    r = upload(client, charity, project["id"], data)
    error = api.error(r, 422)
    assert "zip" in error["message"] and "file" in error["fields"]
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0
    assert client.get("/api/v1/projects").status_code == 200


def test_a_zip_spoiled_after_upload_fails_the_job_clearly(client, api, services, charity,
                                                         project):
    r = upload(client, charity, project["id"], make_zip(GOOD.items()))
    assert r.status_code == 202, r.json
    (services.settings.uploads_path / f"job-{r.json['id']}.zip").write_bytes(b"gone bad")
    api.work()
    job = api.job(charity, r.json["id"])
    assert job["state"] == "failed"
    assert "zip" in job["error"]
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Task)) == 0


@pytest.mark.parametrize(("filename", "words"), [
    ("rows.csv", "CSV"), ("ROWS.CSV", "CSV"), ("photos.tar.gz", "zip"),
    ("photo.jpg", "zip"), ("manifest.json", "JSON"), ("noextension", "zip"),
])
def test_other_file_kinds_are_refused_with_a_clear_message(client, api, charity, project,
                                                           filename, words):
    r = upload(client, charity, project["id"], b"a,b\n1,2\n", filename)
    error = api.error(r, 422)
    assert words in error["message"]
    assert "file" in error["fields"]


def test_multipart_without_file_is_422(client, api, charity, project):
    r = client.post(f"/api/v1/projects/{project['id']}/jobs", headers=charity,
                    data={"photos": (io.BytesIO(make_zip(GOOD.items())), "photos.zip")})
    assert api.error(r, 422)["fields"] == {"file": "missing"}


def test_an_archive_with_too_many_members_is_413_at_upload(client, api, services, charity,
                                                           project):
    """Limits on the whole archive are checked from its directory before a job is made."""
    data = make_zip([(f"{n}.jpg", b"") for n in range(20_001)], zipfile.ZIP_STORED)
    error = api.error(upload(client, charity, project["id"], data), 413)
    assert "20001 members" in error["message"] and "file" in error["fields"]
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0
