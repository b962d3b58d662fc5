"""Every built-in task type end to end over HTTP: a charity uploads a job, the
RQ worker splits it (cutting pages into lines and photos into tiles),
volunteers answer through the API, and the results download per task and per
item, where the item's row is the type's combine (page text, boxes in photo
coordinates)."""
from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image, ImageDraw

from engine.intake import samples


def make_project(api, charity, task_type: str, config: dict, **extra) -> dict:
    body = {"name": f"{task_type} project", "task_type": task_type, "config": config,
            "min_answers": 2, "max_answers": 3, "confidence": 0.5,
            # answers here take no time, from volunteers minutes old
            "quality": {"quarantine": False, "trusted_after_minutes": 0}, **extra}
    r = api.client.post("/api/v1/projects", json=body, headers=charity)
    assert r.status_code == 201, r.json
    return r.json


def upload_zip(api, charity, project_id: int, files: dict[str, bytes]) -> dict:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    r = api.client.post(f"/api/v1/projects/{project_id}/jobs", headers=charity,
                        data={"file": (io.BytesIO(out.getvalue()), "job.zip")},
                        content_type="multipart/form-data")
    assert r.status_code == 202, r.json
    api.work()
    job = api.job(charity, r.json["id"])
    assert job["state"] == "done" and not job["problems"], job
    return job


def answer_everything(api, project_id: int, volunteers: int, answer_for) -> int:
    """Each volunteer answers every task offered, with answer_for(payload); returns
    the number of answers the API took (201)."""
    stored = 0
    for _ in range(volunteers):
        volunteer = api.volunteer()
        while True:
            r = api.client.get(f"/api/v1/projects/{project_id}/tasks/next",
                               headers=volunteer["headers"])
            if r.status_code == 204:
                break
            assert r.status_code == 200, r.json
            task, lease = r.json["task"], r.json["lease"]["token"]
            sent = api.client.post(f"/api/v1/tasks/{task['id']}/answers",
                                   json={"lease": lease, "answer": answer_for(task["payload"])},
                                   headers=volunteer["headers"])
            assert sent.status_code == 201, sent.json
            stored += 1
    return stored


def results(api, charity, project_id: int, level: str) -> list[dict]:
    r = api.client.get(f"/api/v1/projects/{project_id}/results?format=json&level={level}",
                       headers=charity)
    assert r.status_code == 200, r.get_data(True)
    return r.json


def test_tag_merges_normalised_free_tags(api, charity):
    project = make_project(api, charity, "tag", {
        "question": "Which tags fit?", "tags": ["fox", "deer", "badger"], "free_tags": True,
        "synonyms": {"brook": "stream"}})
    job = api.items(charity, project["id"], [{"text": "a fox by a stream", "id": "p1"},
                                              {"text": "nothing at all", "id": "p2"}])
    assert job["progress"]["tasks_made"] == 2
    picks = iter([["Fox", "Streams"], [], ["fox", "brook"], [], ["deer"], []])
    answered = answer_everything(api, project["id"], 3,
                                 lambda payload: {"tags": next(picks)})
    assert answered == 4  # two answers each retire both tasks (confidence 0.5)
    rows = {row["item_ref"]: row for row in results(api, charity, project["id"], "task")}
    assert rows["p1"]["value"] == ["fox", "stream"] and rows["p1"]["state"] == "retired"
    assert rows["p2"]["value"] == []
    items = {row["item_ref"]: row for row in results(api, charity, project["id"], "item")}
    assert items["p1"]["value"] == ["fox", "stream"] and items["p1"]["state"] == "done"


def test_number_takes_the_median_of_counts(api, charity):
    project = make_project(api, charity, "number", {
        "question": "How many birds?", "integer": True, "min": 0, "max": 500},
        min_answers=3, max_answers=3)
    api.items(charity, project["id"], [{"text": "flock photo", "id": "flock"}])
    counts = iter([40, 42, 400])
    assert answer_everything(api, project["id"], 3,
                             lambda payload: {"value": next(counts)}) == 3
    (row,) = results(api, charity, project["id"], "task")
    assert row["value"] == 42  # the weighted median: the outlier 400 does not drag it
    assert row["state"] in ("retired", "contested") and row["answers"] == 3
    (item,) = results(api, charity, project["id"], "item")
    assert item["value"] == row["value"]


def test_transcribe_cuts_lines_and_reassembles_the_page(api, charity):
    lines = samples.LETTER[:3]
    project = make_project(api, charity, "transcribe", {"instructions": "As written."})
    job = upload_zip(api, charity, project["id"], {"letter.jpg": samples.letter_page(lines)})
    assert job["progress"]["tasks_made"] == 3  # one task per line of the page

    def typed(payload):
        return {"text": lines[payload["line"] - 1]}

    assert answer_everything(api, project["id"], 2, typed) == 6
    rows = results(api, charity, project["id"], "task")
    assert sorted(row["value"] for row in rows) == sorted(lines)
    assert all(row["state"] == "retired" and row["confidence"] > 0.9 for row in rows)
    (page,) = results(api, charity, project["id"], "item")
    assert page["value"] == "\n".join(lines)  # reading order, top to bottom
    assert page["state"] == "done" and page["tasks"] == page["tasks_done"] == 3


def colony(boxes: list[tuple[int, int, int, int]], size=(1100, 700)) -> bytes:
    image = Image.new("RGB", size, (225, 232, 240))
    draw = ImageDraw.Draw(image)
    for box in boxes:
        draw.ellipse(box, fill=(30, 30, 40))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def test_locate_tiles_a_photo_and_maps_boxes_back(api, charity):
    # one penguin well inside a tile, one across the seam of two tiles
    penguins = [(100, 100, 160, 220), (420, 300, 540, 380)]
    project = make_project(api, charity, "locate", {
        "question": "Box every penguin", "tile_size": 512, "overlap": 64})
    job = upload_zip(api, charity, project["id"], {"colony.jpg": colony(penguins)})
    assert job["progress"]["tasks_made"] == 6  # 1100x700 in 512-px tiles overlapping 64: 3 x 2

    def marked(payload):
        """What a careful volunteer draws: every penguin part inside this tile."""
        x, y, w, h = payload["tile"]
        boxes = []
        for x1, y1, x2, y2 in penguins:
            cx1, cy1, cx2, cy2 = max(x1, x), max(y1, y), min(x2, x + w), min(y2, y + h)
            if cx2 - cx1 > 5 and cy2 - cy1 > 5:
                boxes.append([cx1 - x, cy1 - y, cx2 - x, cy2 - y])
        return {"boxes": boxes}

    assert answer_everything(api, project["id"], 2, marked) == 12
    tiles = results(api, charity, project["id"], "task")
    assert all(row["state"] == "retired" for row in tiles)
    (photo,) = results(api, charity, project["id"], "item")
    assert photo["state"] == "done"
    found = sorted(tuple(round(v) for v in box) for box in photo["value"])
    assert found == sorted(penguins)  # each once, in photo pixels, seams merged


@pytest.mark.parametrize(("task_type", "config", "answer"), [
    ("tag", {"question": "Tags?", "tags": ["fox"]}, {"tags": ["wolf"]}),
    ("number", {"question": "How many?", "min": 0, "max": 10}, {"value": 11}),
    ("transcribe", {}, {"text": ""}),
    ("locate", {"question": "Box it"}, {"boxes": [[10, 10, 5, 5]]}),
])
def test_invalid_answers_are_field_errors(api, charity, task_type, config, answer):
    project = make_project(api, charity, task_type, {**config, "split": "none"}
                           if task_type == "transcribe" else config)
    if task_type in ("transcribe", "locate"):
        upload_zip(api, charity, project["id"], {"a.jpg": colony([])})
    else:
        api.items(charity, project["id"], [{"text": "x"}])
    volunteer = api.volunteer()
    handout = api.next_task(volunteer["headers"], project["id"])
    r = api.client.post(f"/api/v1/tasks/{handout['task']['id']}/answers",
                        json={"lease": handout["lease"]["token"], "answer": answer},
                        headers=volunteer["headers"])
    error = api.error(r, 422)
    assert error["fields"], error


def test_a_contested_transcription_is_settled_by_an_admin(api, auth, charity):
    project = make_project(api, charity, "transcribe", {"split": "none"},
                           min_answers=2, max_answers=2, confidence=0.99)
    upload_zip(api, charity, project["id"], {"line.jpg": colony([])})
    typed = iter(["the old mill", "the cold hill"])
    answer_everything(api, project["id"], 2, lambda payload: {"text": next(typed)})
    r = api.client.get(f"/api/v1/projects/{project['id']}/review", headers=charity)
    assert r.status_code == 200, r.json
    (entry,) = r.json["tasks"]
    assert sorted(a["value"]["text"] for a in entry["answers"]) == [
        "the cold hill", "the old mill"]
    assert entry["distribution"]["columns"] == 3  # the type's own support: the alignment
    r = api.client.post(f"/api/v1/tasks/{entry['id']}/resolution", headers=auth.admin(),
                        json={"answer": {"text": "The  old mill"}})
    assert r.status_code == 200, r.json
    (row,) = results(api, charity, project["id"], "task")
    assert row["state"] == "settled" and row["value"] == "The old mill"
    (item,) = results(api, charity, project["id"], "item")
    assert item["state"] == "done" and item["value"] == "The old mill"
    r = api.client.post(f"/api/v1/tasks/{entry['id']}/resolution", headers=auth.admin(),
                        json={"answer": {"text": ""}})
    assert r.status_code in (409, 422)
