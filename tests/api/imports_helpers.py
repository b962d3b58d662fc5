"""What the import tests share (test_imports*.py): pictures made in the test, an
upload over HTTP run through the burst worker, reads of what a job stored, and
the Museum, a local server of IIIF manifests and images (its fixture, museum,
is in conftest.py). Plain functions, not fixtures: each test calls them with
the fixtures it has.
"""
from __future__ import annotations

import io
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from engine.store.models import Item

V2 = "http://iiif.io/api/presentation/2/context.json"
V3 = "http://iiif.io/api/presentation/3/context.json"


def jpeg(colour: str, size=(64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


def upload(client, headers, project_id, data: bytes, filename: str, **form):
    fields = {"file": FileStorage(io.BytesIO(data), filename), **form}
    boundary, body = encode_multipart(fields)
    return client.post(f"/api/v1/projects/{project_id}/jobs", headers=headers, data=body,
                       content_type=f"multipart/form-data; boundary={boundary}")


def run(client, api, headers, project_id, data, filename, **form) -> dict:
    r = upload(client, headers, project_id, data, filename, **form)
    assert r.status_code == 202, r.json
    api.work()
    return api.job(headers, r.json["id"])


def stored_items(services, job_id: int) -> list[dict]:
    with services.db.session() as session:
        return list(session.scalars(select(Item.data).where(Item.job_id == job_id)
                                    .order_by(Item.seq)))


def count(services, model, **where) -> int:
    with services.db.session() as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return session.scalar(query)


class Museum:
    """A local IIIF server: v2 and v3 manifests, Image API URLs and plain images."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.hits: dict[str, int] = {}
        self.fail_first: dict[str, int] = {}  # path -> how many 503s before serving
        self.images = {name: jpeg(colour) for name, colour in
                       [("c1", "red"), ("c2", "green"), ("c3", "blue"), ("c4", "gray")]}
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        for name, data in self.images.items():
            self.routes[f"/iiif/{name}/full/full/0/default.jpg"] = (200, data)
            self.routes[f"/iiif/{name}/full/max/0/default.jpg"] = (200, data)
            self.routes[f"/images/{name}.jpg"] = (200, data)

    def _handler(self):
        museum = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                museum.hits[self.path] = museum.hits.get(self.path, 0) + 1
                status, body = museum.routes.get(self.path, (404, b"not here"))
                if museum.fail_first.get(self.path, 0) >= museum.hits[self.path]:
                    status, body = 503, b"busy"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        return Handler

    def serve(self, path: str, document) -> str:
        self.routes[path] = (200, json.dumps(document).encode())
        return self.base + path

    def v2(self) -> dict:
        b = self.base
        service = {"@context": "http://iiif.io/api/image/2/context.json",
                   "profile": "http://iiif.io/api/image/2/level1.json"}
        long_id = f"{b}/canvas/" + "x" * 250
        canvases = [
            {"@id": f"{b}/canvas/1", "@type": "sc:Canvas", "label": "p. <i>1</i>",
             "width": 640, "height": 480, "images": [{"@type": "oa:Annotation", "resource": {
                 "@id": f"{b}/images/thumb1.jpg", "service": {**service, "@id": f"{b}/iiif/c1"}}}]},
            {"@id": f"{b}/canvas/2", "@type": "sc:Canvas", "label": "p. 2", "width": 640,
             "height": 480, "images": [{"resource": {"@id": f"{b}/images/c2.jpg"}}]},
            {"@id": long_id, "@type": "sc:Canvas", "label": "p. 3", "width": 640,
             "height": 480, "images": [{"resource": {"@id": f"{b}/images/c3.jpg",
                                                     "service": {**service,
                                                                 "@id": f"{b}/iiif/c3/"}}}]},
        ]
        return {"@context": V2, "@id": f"{b}/v2/manifest.json", "@type": "sc:Manifest",
                "label": "Letters", "sequences": [{"canvases": canvases}]}

    def v3(self) -> dict:
        b = self.base

        def canvas(n, body):
            return {"id": f"{b}/v3/canvas/{n}", "type": "Canvas", "width": 800, "height": 600,
                    "label": {"en": [f"Folio {n}"], "fr": [f"Feuillet {n}"]},
                    "items": [{"type": "AnnotationPage", "items": [
                        {"type": "Annotation", "motivation": "painting", "body": body}]}]}

        def image(name):
            return {"id": f"{b}/images/{name}-small.jpg", "type": "Image",
                    "service": [{"id": f"{b}/iiif/{name}", "type": "ImageService3",
                                 "profile": "level1"}]}

        return {"@context": ["http://www.w3.org/ns/anno.jsonld", V3],
                "id": f"{b}/v3/manifest.json", "type": "Manifest", "label": {"en": ["Diary"]},
                "items": [canvas(1, image("c4")), canvas(2, {"id": f"{b}/a.mp3", "type": "Sound"}),
                          canvas(3, image("c1"))]}
