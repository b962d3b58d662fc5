"""What the volunteer-page browser tests share: projects and uploads made over the
JSON API, the page's task on screen, and what SQL stored for the browser's volunteer."""
from __future__ import annotations

import io

from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import select

from engine.identity import authenticate
from engine.store.models import Answer, Task

LABELS = ["penguin", "seal", "empty"]
TOKEN_KEY = "bitesize.volunteer"


def make_project(client, headers, name="Penguin cams", labels=LABELS, **extra):
    body = {"name": name, "task_type": "classify",
            "config": {"question": "What is in the photo?", "labels": labels},
            "min_answers": 1, "max_answers": 1, "confidence": 0.6,
            # a test's clicks come far faster than a person's: too_fast would fire
            "quality": {"quarantine": False, "trusted_after_minutes": 0}, **extra}
    r = client.post("/api/v1/projects", json=body, headers=headers)
    assert r.status_code == 201, r.json
    return r.json


def upload(client, headers, project_id, items, work):
    r = client.post(f"/api/v1/projects/{project_id}/jobs", json={"items": items},
                    headers=headers)
    assert r.status_code == 202, r.json
    work()
    job = client.get(f"/api/v1/jobs/{r.json['id']}", headers=headers).json
    assert job["state"] == "done", job
    return job


def text_items(n):
    return [{"text": f"photo {i}", "id": f"img-{i}"} for i in range(n)]


def open_project(page, live_server, project_id):
    page.goto(f"{live_server}/projects/{project_id}")
    expect(page.locator("#task")).to_be_visible()
    return current_task(page)


def current_task(page) -> int:
    return int(page.locator("#task").get_attribute("data-task"))


def wait_for_new_task(page, old: int) -> int:
    expect(page.locator("#task")).not_to_have_attribute("data-task", str(old))
    expect(page.locator("#task")).to_be_visible()
    return current_task(page)


def volunteer_id(services, page) -> int:
    token = page.evaluate(f"localStorage.getItem({TOKEN_KEY!r})")
    assert token, "the page never got a volunteer token"
    return authenticate(services, token).id


def answers_of(services, volunteer: int) -> list[Answer]:
    with services.db.session() as session:
        return list(session.scalars(
            select(Answer).where(Answer.volunteer_id == volunteer).order_by(Answer.id)))


def task_texts(services, project_id) -> dict[int, str]:
    with services.db.session() as session:
        tasks = session.scalars(select(Task).where(Task.project_id == project_id))
        return {t.id: t.payload.get("text") for t in tasks}


def jpeg(width, height, colour) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "JPEG", quality=85)
    return out.getvalue()
