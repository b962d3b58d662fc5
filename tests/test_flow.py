"""The walking skeleton end to end over HTTP: a job in, volunteers, results out."""
from __future__ import annotations

import csv
import io

LABELS = ["penguin", "seal", "empty"]


def make_project(client, headers, **extra):
    body = {"name": "Penguin cams", "task_type": "classify",
            "config": {"question": "What is in the photo?", "labels": LABELS},
            "min_answers": 3, "max_answers": 5, "confidence": 0.6,
            # volunteers here answer in no time (and minutes old)
            "quality": {"quarantine": False, "trusted_after_minutes": 0}, **extra}
    r = client.post("/api/v1/projects", json=body, headers=headers)
    assert r.status_code == 201, r.json
    return r.json


def upload_items(client, headers, project_id, items, work):
    r = client.post(f"/api/v1/projects/{project_id}/jobs", json={"items": items}, headers=headers)
    assert r.status_code == 202, r.json
    work()
    job = client.get(f"/api/v1/jobs/{r.json['id']}", headers=headers).json
    assert job["state"] == "done", job
    return job


def answer_all(client, project_id, volunteers, choose):
    """Every volunteer answers until told there is nothing left; returns answers given."""
    given = []
    for headers in volunteers:
        while True:
            r = client.get(f"/api/v1/projects/{project_id}/tasks/next", headers=headers)
            if r.status_code == 204:
                break
            assert r.status_code == 200, r.json
            task, lease = r.json["task"], r.json["lease"]
            label = choose(task)
            a = client.post(f"/api/v1/tasks/{task['id']}/answers",
                            json={"lease": lease["token"], "answer": {"label": label}},
                            headers=headers)
            assert a.status_code == 201, a.json
            given.append((headers["Authorization"], task["id"]))
    return given


def test_job_to_results(client, auth, work):
    charity = auth.charity()
    project = make_project(client, charity)
    items = [{"text": f"photo {n}", "id": f"img-{n}"} for n in range(6)]
    job = upload_items(client, charity, project["id"], items, work)
    assert job["progress"] == {"items_total": 6, "items_read": 6, "items_split": 6, "tasks_made": 6,
                               "duplicates": 0}

    volunteers = [auth.volunteer() for _ in range(4)]
    given = answer_all(client, project["id"], volunteers, lambda task: "penguin")
    assert len(given) == len(set(given)) == 18  # 3 per task, no volunteer twice

    shown = client.get(f"/api/v1/projects/{project['id']}", headers=charity).json
    assert shown["progress"]["retired"] == 6
    rows = client.get(f"/api/v1/projects/{project['id']}/results?format=json",
                      headers=charity).json
    assert [r["value"] for r in rows] == ["penguin"] * 6
    assert all(r["state"] == "retired" and r["confidence"] == 1.0 for r in rows)
    text = client.get(f"/api/v1/projects/{project['id']}/results?format=csv",
                      headers=charity).get_data(as_text=True)
    table = list(csv.DictReader(io.StringIO(text)))
    assert [r["item_ref"] for r in table] == [f"img-{n}" for n in range(6)]


def test_disagreement_asks_for_more_answers(client, auth, work):
    charity = auth.charity()
    project = make_project(client, charity, min_answers=2, max_answers=3, confidence=0.9)
    upload_items(client, charity, project["id"], [{"text": "blurry"}], work)
    picks = iter(["penguin", "seal", "seal"])
    volunteers = [auth.volunteer() for _ in range(4)]
    given = answer_all(client, project["id"], volunteers, lambda task: next(picks))
    assert len(given) == 3  # 2 disagreeing answers raised the need to the max of 3
    rows = client.get(f"/api/v1/projects/{project['id']}/results", headers=charity).json
    assert rows[0]["state"] == "contested"
    assert rows[0]["value"] == "seal"
    assert abs(rows[0]["confidence"] - 2 / 3) < 1e-9
