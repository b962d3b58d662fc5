"""Results of IIIF items as W3C Web Annotations: a transcribed page from a IIIF
manifest served over real HTTP comes back as one annotation per line, its
target the canvas with the line's box scaled to the canvas's coordinates."""
from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine.intake import samples

LINES = samples.LETTER[:2]
PAGE = samples.letter_page(LINES)  # 1100 px wide


class Archive:
    """A IIIF v3 manifest of one canvas twice the scan's size, and its image service."""

    def __init__(self) -> None:
        archive = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                if self.path == "/manifest.json":
                    body, kind = json.dumps(archive.manifest()).encode(), "application/json"
                elif self.path == "/iiif/page/full/max/0/default.jpg":
                    body, kind = PAGE, "image/jpeg"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def manifest(self) -> dict:
        canvas = f"{self.base}/canvas/1"
        return {"@context": "http://iiif.io/api/presentation/3/context.json",
                "id": f"{self.base}/manifest.json", "type": "Manifest",
                "label": {"en": ["Letters"]},
                "items": [{"id": canvas, "type": "Canvas", "width": 2200,
                           "height": 2 * (140 + 64 * len(LINES)), "label": {"en": ["Page 1"]},
                           "items": [{"type": "AnnotationPage", "items": [{
                               "type": "Annotation", "motivation": "painting",
                               "body": {"id": f"{self.base}/page.jpg", "type": "Image",
                                        "service": [{"id": f"{self.base}/iiif/page",
                                                     "type": "ImageService3"}]},
                               "target": canvas}]}]}]}


@pytest.fixture
def archive():
    server = Archive()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def transcribed_project(api, charity, archive) -> dict:
    r = api.client.post("/api/v1/projects", headers=charity, json={
        "name": "Letters", "task_type": "transcribe", "config": {}, "min_answers": 1,
        "max_answers": 1, "confidence": 0.5})
    project = r.json
    r = api.client.post(f"/api/v1/projects/{project['id']}/jobs", headers=charity,
                        json={"iiif": f"{archive.base}/manifest.json"})
    assert r.status_code == 202, r.json
    api.work()
    job = api.job(charity, r.json["id"])
    assert job["state"] == "done" and job["progress"]["tasks_made"] == len(LINES), job
    # one text item, not from IIIF: it has no canvas to annotate
    volunteer = api.volunteer()
    while True:
        r = api.client.get(f"/api/v1/projects/{project['id']}/tasks/next",
                           headers=volunteer["headers"])
        if r.status_code == 204:
            return project
        task = r.json["task"]
        text = LINES[task["payload"]["line"] - 1]
        assert api.client.post(f"/api/v1/tasks/{task['id']}/answers",
                               headers=volunteer["headers"],
                               json={"lease": r.json["lease"]["token"],
                                     "answer": {"text": text}}).status_code == 201


def test_transcribed_lines_become_annotations_on_the_canvas(api, charity, archive):
    project = transcribed_project(api, charity, archive)
    r = api.client.get(f"/api/v1/projects/{project['id']}/annotations", headers=charity)
    assert r.status_code == 200 and r.mimetype == "application/ld+json"
    page = json.loads(r.get_data(as_text=True))
    assert page["type"] == "AnnotationPage"
    assert "http://www.w3.org/ns/anno.jsonld" in page["@context"]
    assert page["id"].endswith(f"/api/v1/projects/{project['id']}/annotations")
    items = page["items"]
    assert [a["body"]["value"] for a in items] == list(LINES)  # reading order
    canvas = f"{archive.base}/canvas/1"
    for annotation in items:
        assert annotation["type"] == "Annotation"
        assert annotation["motivation"] == "supplementing"
        target = re.fullmatch(re.escape(canvas) + r"#xywh=(\d+),(\d+),(\d+),(\d+)",
                              annotation["target"])
        assert target, annotation["target"]
        x, y, w, h = map(int, target.groups())
        # lines sit 70 px in on a 1100-px scan: twice that on the 2200-wide canvas
        assert 100 <= x <= 140 and w > 600 and 0 < h < 128
        assert 0 < annotation["bitesize:confidence"] <= 1
    assert len({a["id"] for a in items}) == len(items)


def test_annotations_are_private_and_empty_without_iiif_items(api, auth, charity):
    r = api.client.post("/api/v1/projects", headers=charity, json={
        "name": "Plain", "task_type": "classify",
        "config": {"question": "Which?", "labels": ["a", "b"]}})
    project = r.json
    api.items(charity, project["id"], [{"text": "no canvas"}])
    page = api.client.get(f"/api/v1/projects/{project['id']}/annotations",
                          headers=charity).get_json(force=True)
    assert page["items"] == []
    url = f"/api/v1/projects/{project['id']}/annotations"
    assert api.error(api.client.get(url, headers=auth.charity("Seal Trust")), 404)
    assert api.error(api.client.get(url, headers=auth.volunteer()), 403)
    assert api.error(api.client.get(url), 401)


def test_located_marks_become_bodyless_annotations(api, charity, archive):
    r = api.client.post("/api/v1/projects", headers=charity, json={
        "name": "Marks", "task_type": "locate", "min_answers": 1, "max_answers": 1,
        "confidence": 0.5, "config": {"question": "Box the first word", "tile_size": 512,
                                      "overlap": 64}})
    project = r.json
    r = api.client.post(f"/api/v1/projects/{project['id']}/jobs", headers=charity,
                        json={"iiif": f"{archive.base}/manifest.json"})
    api.work()
    assert api.job(charity, r.json["id"])["state"] == "done"
    volunteer = api.volunteer()
    word = (70, 70, 170, 100)  # on the 1100-px scan: the letter's first word
    while (r := api.client.get(f"/api/v1/projects/{project['id']}/tasks/next",
                               headers=volunteer["headers"])).status_code == 200:
        x, y, w, h = r.json["task"]["payload"]["tile"]
        inside = x <= word[0] and word[2] <= x + w and y <= word[1] and word[3] <= y + h
        boxes = [[word[0] - x, word[1] - y, word[2] - x, word[3] - y]] if inside else []
        assert api.client.post(f"/api/v1/tasks/{r.json['task']['id']}/answers",
                               headers=volunteer["headers"],
                               json={"lease": r.json["lease"]["token"],
                                     "answer": {"boxes": boxes}}).status_code == 201
    page = api.client.get(f"/api/v1/projects/{project['id']}/annotations",
                          headers=charity).get_json(force=True)
    (annotation,) = page["items"]
    assert annotation["motivation"] == "identifying" and "body" not in annotation
    # twice the scan's pixels on the canvas
    assert annotation["target"] == f"{archive.base}/canvas/1#xywh=140,140,200,60"
