"""Quality over HTTP: contested tasks reach the review queue, an admin settles
them, and blocking a volunteer discounts their answers and reopens tasks."""
from __future__ import annotations

from sqlalchemy import select

from engine.store.models import Answer, Task

LABELS = ["penguin", "seal", "empty"]


def project_with_tasks(client, headers, work, texts, **extra):
    body = {"name": "cams", "task_type": "classify",
            "config": {"question": "What?", "labels": LABELS},
            "min_answers": 2, "max_answers": 2, "confidence": 0.9,
            "quality": {"trusted_after_minutes": 0}, **extra}  # volunteers minutes old
    project = client.post("/api/v1/projects", json=body, headers=headers).json
    client.post(f"/api/v1/projects/{project['id']}/jobs", headers=headers,
                json={"items": [{"text": t} for t in texts]})
    work()
    return project


def answer(client, project_id, headers, label):
    nxt = client.get(f"/api/v1/projects/{project_id}/tasks/next", headers=headers)
    if nxt.status_code == 204:
        return None
    task = nxt.json["task"]["id"]
    r = client.post(f"/api/v1/tasks/{task}/answers", headers=headers,
                    json={"lease": nxt.json["lease"]["token"], "answer": {"label": label}})
    assert r.status_code == 201, r.json
    return task


def test_contested_task_is_reviewed_and_settled(client, auth, work, services):
    charity = auth.charity()
    project = project_with_tasks(client, charity, work, ["blurry"])
    alice, bob = auth.volunteer(), auth.volunteer()
    task = answer(client, project["id"], alice, "penguin")
    answer(client, project["id"], bob, "seal")

    queue = client.get(f"/api/v1/projects/{project['id']}/review", headers=charity).json
    assert queue["total"] == 1
    entry = queue["tasks"][0]
    assert entry["id"] == task and entry["state"] == "contested"
    assert sorted(a["value"]["label"] for a in entry["answers"]) == ["penguin", "seal"]
    assert entry["distribution"] == {"penguin": 1.0, "seal": 1.0}
    # with their UTC offset on SQLite too, as every other time the API gives
    assert all(a["created_at"].endswith("+00:00") for a in entry["answers"]), entry

    r = client.post(f"/api/v1/tasks/{task}/resolution", headers=charity,
                    json={"answer": {"label": "seal"}})
    assert r.status_code == 200, r.json
    assert r.json["state"] == "settled" and r.json["value"] == "seal"
    rows = client.get(f"/api/v1/projects/{project['id']}/results", headers=charity).json
    assert rows[0]["state"] == "settled" and rows[0]["value"] == "seal"
    assert rows[0]["confidence"] == 1.0
    with services.db.session() as session:
        assert session.get(Task, task).gold == "seal"  # serves as gold from now on
    again = client.get(f"/api/v1/projects/{project['id']}/review", headers=charity).json
    assert again["total"] == 0


def test_resolution_is_checked(client, auth, work):
    charity = auth.charity()
    project = project_with_tasks(client, charity, work, ["x"])
    answer(client, project["id"], auth.volunteer(), "penguin")
    task = answer(client, project["id"], auth.volunteer(), "seal")
    bad = client.post(f"/api/v1/tasks/{task}/resolution", headers=charity,
                      json={"answer": {"label": "walrus"}})
    assert bad.status_code == 422 and "answer" in bad.json["error"]["fields"]
    other = client.post(f"/api/v1/tasks/{task}/resolution", headers=auth.charity("Other"),
                        json={"answer": {"label": "seal"}})
    assert other.status_code == 404
    volunteer = client.get(f"/api/v1/projects/{project['id']}/review",
                           headers=auth.volunteer())
    assert volunteer.status_code == 403


def test_blocking_discounts_answers_and_reopens_tasks(client, auth, work, services):
    charity, admin = auth.charity(), auth.admin()
    project = project_with_tasks(client, charity, work, ["a", "b"], confidence=0.5)
    spammer, honest = auth.volunteer(), auth.volunteer()
    while answer(client, project["id"], spammer, "empty"):
        pass
    while answer(client, project["id"], honest, "penguin"):
        pass
    with services.db.session() as session:
        spammer_id = session.scalars(select(Answer.volunteer_id).order_by(Answer.id)).first()
    refused = client.post(f"/api/v1/projects/{project['id']}/volunteers/{spammer_id}/block",
                          headers=charity)
    assert refused.status_code == 403  # admins block, not every charity member
    r = client.post(f"/api/v1/projects/{project['id']}/volunteers/{spammer_id}/block",
                    headers=admin)
    assert r.status_code == 200 and r.json["tasks_reopened"] == 2
    with services.db.session() as session:
        counted = session.scalars(select(Answer.counted).where(
            Answer.volunteer_id == spammer_id)).all()
        states = set(session.scalars(select(Task.state)))
    assert counted == [False, False] and states == {"open"}
    # the spammer gets nothing more; a fresh volunteer completes both tasks
    assert client.get(f"/api/v1/projects/{project['id']}/tasks/next",
                      headers=spammer).status_code == 204
    fresh = auth.volunteer()
    assert answer(client, project["id"], fresh, "penguin")
    assert answer(client, project["id"], fresh, "penguin")
    rows = client.get(f"/api/v1/projects/{project['id']}/results", headers=charity).json
    assert [(r["value"], r["state"]) for r in rows] == [("penguin", "retired")] * 2


def test_volunteer_stats_for_the_owner(client, auth, work, services):
    from engine.quality.reliability import estimate_project

    charity = auth.charity()
    project = project_with_tasks(client, charity, work, ["a", "b"], confidence=0.5)
    for _ in range(2):
        volunteer = auth.volunteer()
        while answer(client, project["id"], volunteer, "penguin"):
            pass
    estimate_project(services, project["id"])
    r = client.get(f"/api/v1/projects/{project['id']}/volunteers", headers=charity)
    assert r.status_code == 200
    rows = r.json["volunteers"]
    assert len(rows) == 2 and all(row["answers"] == 2 for row in rows)
    assert all(row["blocked"] is False and isinstance(row["flags"], list) for row in rows)
    hidden = client.get(f"/api/v1/projects/{project['id']}/volunteers",
                        headers=auth.charity("Other"))
    assert hidden.status_code == 404


def test_the_review_queue_names_each_item_volunteers_were_not_told(client, auth, work):
    """The item's id is the charity's: on its review queue, not in the payload."""
    charity = auth.charity()
    project = client.post("/api/v1/projects", headers=charity, json={
        "name": "cams", "task_type": "classify", "min_answers": 2, "max_answers": 2,
        "confidence": 0.9, "config": {"question": "What?", "labels": LABELS}}).json
    client.post(f"/api/v1/projects/{project['id']}/jobs", headers=charity,
                json={"items": [{"text": "blurry", "id": "cam-3/seal-1.jpg"}]})
    work()
    answer(client, project["id"], auth.volunteer(), "penguin")
    answer(client, project["id"], auth.volunteer(), "seal")
    (entry,) = client.get(f"/api/v1/projects/{project['id']}/review", headers=charity
                          ).json["tasks"]
    assert entry["ref"] == "cam-3/seal-1.jpg" and isinstance(entry["item"], int)
    assert entry["payload"] == {"text": "blurry"}
