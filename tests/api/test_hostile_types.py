"""The hostile sweep for every built-in type beyond classify: hostile values in
every field of a project's config and of a volunteer's answer, and in the
other JSON bodies added since (webhooks, IIIF imports), never make a 5xx."""
from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

from .test_hostile_sweep import HOSTILE, _put

TYPES = {  # type -> (a valid config, config fields, a valid answer, answer fields)
    "tag": ({"question": "Tags?", "tags": ["fox", "deer"], "free_tags": True,
             "synonyms": {"vixen": "fox"}},
            ["question", "tags", "tags.0", "free_tags", "synonyms", "synonyms.vixen",
             "threshold", "max_tags"],
            {"tags": ["fox", "wolf"]}, ["tags", "tags.0", "tags.1"]),
    "number": ({"question": "How many?", "min": 0, "max": 100, "integer": True},
               ["question", "unit", "min", "max", "integer", "method", "trim", "tolerance"],
               {"value": 3}, ["value"]),
    "transcribe": ({"split": "none"},
                   ["instructions", "language", "split", "min_line_height", "merge_gap",
                    "padding"],
                   {"text": "a line"}, ["text"]),
    "locate": ({"question": "Box it", "tile_size": 512, "overlap": 64},
               ["question", "shape", "tile_size", "overlap", "iou", "radius", "quorum",
                "max_marks"],
               {"boxes": [[1, 2, 30, 40]]}, ["boxes", "boxes.0", "boxes.0.0", "boxes.0.3"]),
}


def _project(api, charity, task_type: str) -> dict:
    config = TYPES[task_type][0]
    r = api.client.post("/api/v1/projects", headers=charity, json={
        "name": task_type, "task_type": task_type, "config": config})
    assert r.status_code == 201, r.json
    return r.json


def _image_zip() -> bytes:
    photo, out = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (300, 200), "white").save(photo, "JPEG")
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.jpg", photo.getvalue())
    return out.getvalue()


def _lease(api, charity, project: dict) -> tuple[dict, dict]:
    r = api.client.post(f"/api/v1/projects/{project['id']}/jobs", headers=charity,
                        data={"file": (io.BytesIO(_image_zip()), "a.zip")},
                        content_type="multipart/form-data") \
        if project["task_type"] in ("transcribe", "locate") else \
        api.client.post(f"/api/v1/projects/{project['id']}/jobs", headers=charity,
                        json={"items": [{"text": "x"}]})
    assert r.status_code == 202, r.json
    api.work()
    volunteer = api.volunteer()
    return volunteer, api.next_task(volunteer["headers"], project["id"])


@pytest.mark.parametrize(("task_type", "where"), [
    pytest.param(t, f, id=f"{t}:config.{f}") for t, spec in TYPES.items() for f in spec[1]])
def test_hostile_config_values_never_make_a_5xx(api, charity, task_type, where):
    body = {"name": "x", "task_type": task_type, "config": TYPES[task_type][0]}
    for value in HOSTILE:
        r = api.client.post("/api/v1/projects", headers=charity,
                            json=_put(body, f"config.{where}", value))
        assert r.status_code < 500, (value, r.get_data(True))
        if r.status_code >= 400:
            assert api.error(r, r.status_code)["fields"], value


@pytest.mark.parametrize("task_type", list(TYPES))
def test_hostile_answer_values_never_make_a_5xx(api, charity, task_type):
    project = _project(api, charity, task_type)
    volunteer, handout = _lease(api, charity, project)
    body = {"lease": handout["lease"]["token"], "answer": TYPES[task_type][2]}
    for where in TYPES[task_type][3]:
        for value in HOSTILE:
            r = api.client.post(f"/api/v1/tasks/{handout['task']['id']}/answers",
                                headers=volunteer["headers"],
                                json=_put(body, f"answer.{where}", value))
            assert r.status_code < 500, (where, value, r.get_data(True))
            if r.status_code >= 400:
                api.error(r, r.status_code)
            assert r.status_code != 201 or r.json["task"] == handout["task"]["id"]


@pytest.mark.parametrize("where", ["url", "secret", "events", "events.0", "active", "other"])
def test_hostile_webhook_values_never_make_a_5xx(api, charity, where):
    project = _project(api, charity, "number")
    body = {"url": "https://example.org/hook", "secret": "s" * 20, "events": ["job.split"],
            "active": True}
    for value in HOSTILE:
        r = api.client.put(f"/api/v1/projects/{project['id']}/webhook", headers=charity,
                           json=_put(body, where, value))
        assert r.status_code < 500, (value, r.get_data(True))
        if r.status_code >= 400:
            api.error(r, r.status_code)


def test_hostile_iiif_values_never_make_a_5xx(api, charity):
    project = _project(api, charity, "transcribe")
    for value in HOSTILE:
        r = api.client.post(f"/api/v1/projects/{project['id']}/jobs", headers=charity,
                            json={"iiif": value})
        assert r.status_code < 500, (value, r.get_data(True))
        if r.status_code >= 400:
            assert "iiif" in api.error(r, r.status_code)["fields"], value
