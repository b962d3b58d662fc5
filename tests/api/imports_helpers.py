"""What the import tests share (test_imports.py, test_imports_iiif.py): pictures made
in the test, an upload over HTTP run through the burst worker, and reads of
what a job stored. Plain functions, not fixtures: each test calls them with
the fixtures it has.
"""
from __future__ import annotations

import io

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
