"""Data minimisation: a volunteer receives only what the task shows.

No item id (a charity's file names, which can give the answer away), no job
or item row id, nothing that tells a gold task from another: not in what a
task type's split puts in a payload, not in GET .../tasks/next through the
hot path or through Flask, and not in payloads stored before this was so
(migration 0010, then a queue rebuild for Redis's copies).
"""
from __future__ import annotations

import json
from typing import Any

import pytest
from alembic import command
from sqlalchemy import select, update
from werkzeug.test import Client

from engine.dispatch.rebuild import rebuild_project
from engine.store import migrate
from engine.store.models import Task
from task_types.testing import MemoryMedia
from web.hot_path import HotPath

LABELS = ["penguin", "seal", "empty"]
# Ids as charities name their files: the answer and the gold mark are in them.
NORMAL = {f"normal-penguin-{n:02d}.jpg": f"a photo, number {n}" for n in range(4)}
GOLD = {f"GOLD-seal-{n:02d}.jpg": f"a photo, number {n + 10}" for n in range(4)}
LEAKY_KEYS = {"ref", "item", "item_id", "item_ref", "job", "job_id", "gold", "is_gold"}
HANDOUT_SHAPE = {"task": {"id", "type", "payload"}, "lease": {"token", "expires_at"}}


@pytest.fixture
def charity(auth) -> dict[str, str]:
    return auth.charity("Penguin Watch")


@pytest.fixture
def project(client, charity, work) -> dict:
    """A classify project whose items carry telling ids, half of them gold.
    Gold at a rate of 1: each volunteer gets every gold task first, then the
    rest (a lower rate leaves unseen gold to chance once the pool is empty)."""
    r = client.post("/api/v1/projects", headers=charity, json={
        "name": "Penguin cams", "task_type": "classify",
        "config": {"question": "What is in the photo?", "labels": LABELS},
        "min_answers": 2, "max_answers": 3, "gold_start": 1.0, "gold_floor": 1.0})
    assert r.status_code == 201, r.json
    items = ([{"text": text, "id": ref} for ref, text in NORMAL.items()]
             + [{"text": text, "id": ref, "gold": "seal"} for ref, text in GOLD.items()])
    job = client.post(f"/api/v1/projects/{r.json['id']}/jobs", json={"items": items},
                      headers=charity)
    assert job.status_code == 202, job.json
    work()
    done = client.get(f"/api/v1/jobs/{job.json['id']}", headers=charity)
    assert done.json["state"] == "done", done.json
    return {**r.json, "job": job.json["id"]}


def every_handout(client, project_id: int, query: str = "") -> list[tuple[dict, str]]:
    """Each task of the project as one new volunteer is handed it (skipping
    each to get the next): the reply's JSON and its raw text."""
    made = client.post("/api/v1/volunteers")
    headers = {"Authorization": f"Bearer {made.json['token']}"}
    out = []
    while True:
        r = client.get(f"/api/v1/projects/{project_id}/tasks/next{query}", headers=headers)
        if r.status_code == 204:
            return out
        assert r.status_code == 200, r.get_data(True)
        out.append((r.json, r.get_data(as_text=True)))
        gone = client.delete(f"/api/v1/leases/{r.json['lease']['token']}", headers=headers)
        assert gone.status_code == 200


def keys_anywhere(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value).union(*(keys_anywhere(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(keys_anywhere(v) for v in value))
    return set()


def gold_ids(services, project_id: int) -> set[int]:
    with services.db.session() as session:
        return set(session.scalars(select(Task.id).where(
            Task.project_id == project_id, Task.is_gold.is_(True))))


def assert_minimal(handouts: list[tuple[dict, str]], gold: set[int]) -> None:
    """Gold and normal tasks both handed out, in one shape, with nothing telling."""
    tasks = {body["task"]["id"] for body, _ in handouts}
    assert tasks & gold and tasks - gold, "the check needs gold and normal tasks"
    for body, raw in handouts:
        assert {key: set(body[key]) for key in body} == HANDOUT_SHAPE, body
        assert set(body["task"]["payload"]) == {"text"}, body  # what classify shows
        assert not keys_anywhere(body) & LEAKY_KEYS, body
        for ref in (*NORMAL, *GOLD):
            assert ref not in raw, raw
        assert "gold" not in raw.lower(), raw


def test_the_hot_path_hands_out_no_ref_and_nothing_that_marks_gold(client, app, services,
                                                                  project):
    hot = app.extensions["hot_path"]
    assert isinstance(hot, HotPath)
    before = hot.served
    handouts = every_handout(client, project["id"])
    assert len(handouts) == len(NORMAL) + len(GOLD)
    assert hot.served - before == len(handouts) + 1  # every next call (and the 204)
    assert_minimal(handouts, gold_ids(services, project["id"]))


@pytest.mark.parametrize("query", ["", "?count=1"])
def test_the_flask_view_hands_out_the_same(app, services, project, query):
    flask_only = Client(app.extensions["hot_path"].flask_wsgi)
    handouts = every_handout(flask_only, project["id"], query)
    assert_minimal(handouts, gold_ids(services, project["id"]))


def test_a_preloaded_queue_is_as_bare(client, services, project):
    made = client.post("/api/v1/volunteers")
    r = client.get(f"/api/v1/projects/{project['id']}/tasks/next?count=5",
                   headers={"Authorization": f"Bearer {made.json['token']}"})
    assert r.status_code == 200 and len(r.json["queue"]) == 4
    first = {key: value for key, value in r.json.items() if key != "queue"}
    raw = r.get_data(as_text=True)
    handouts = [(first, raw)] + [(queued, raw) for queued in r.json["queue"]]
    for body, _ in handouts:
        assert {key: set(body[key]) for key in body} == HANDOUT_SHAPE, body
        assert not keys_anywhere(body) & LEAKY_KEYS, body
    assert not any(ref in raw for ref in (*NORMAL, *GOLD)) and "gold" not in raw.lower()


def test_no_task_type_puts_the_item_id_in_a_payload(registry):
    """Every registered type, split on its own example item under a telling id."""
    for name in registry.names():
        task_type = registry.get(name)
        example = task_type.example()
        config = task_type.load_config(example["config"])
        item = task_type.item_schema(config).load(
            {**example["item"], "id": "SECRET-answer-is-seal"})
        assert item["id"] == "SECRET-answer-is-seal", name  # split is given the id
        media = MemoryMedia(dict(example.get("media", {})))
        pieces = task_type.split(item, config, media)
        assert pieces, name
        for piece in pieces:
            assert "ref" not in piece.payload, (name, piece.payload)
            assert "SECRET-answer-is-seal" not in json.dumps(piece.payload), name


def test_migration_0010_strips_refs_stored_before(client, services, project):
    """Payloads stored by older versions hold ``ref``: down to 0009, put them
    back as they were, up again; the refs are gone from SQL, and after
    `bitesize queue rebuild` from handouts. (At 0009 the project table lacks
    later columns, so the old state is checked in SQL, not through a rebuild.)"""
    config = migrate.alembic_config(services.db)
    with services.db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0009")
    try:
        with services.db.writing() as session:
            tasks = session.execute(select(Task.id, Task.payload)
                                    .where(Task.project_id == project["id"])
                                    .order_by(Task.id)).all()
            old = {task_id: {**payload, "ref": ref}
                   for (task_id, payload), ref in zip(tasks, (*NORMAL, *GOLD), strict=True)}
            for task_id, payload in old.items():
                session.execute(update(Task).where(Task.id == task_id).values(payload=payload))
        with services.db.session() as session:
            stored = dict(session.execute(select(Task.id, Task.payload).where(
                Task.project_id == project["id"])).all())
        assert {p["ref"] for p in stored.values()} == {*NORMAL, *GOLD}  # the old state
    finally:
        migrate.upgrade(services.db, services.settings.instance_path)
    with services.db.session() as session:
        payloads = dict(session.execute(select(Task.id, Task.payload).where(
            Task.project_id == project["id"])).all())
    assert payloads == {task_id: {"text": payload["text"]} for task_id, payload in old.items()}
    rebuild_project(services, project["id"])  # `bitesize queue rebuild`
    assert_minimal(every_handout(client, project["id"]), gold_ids(services, project["id"]))


def test_migration_0010_leaves_other_payloads_alone(services, project):
    """A payload without ``ref`` (and every other key) comes through unchanged."""
    with services.db.session() as session:
        before = dict(session.execute(select(Task.id, Task.payload)).all())
    config = migrate.alembic_config(services.db)
    with services.db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0009")
    migrate.upgrade(services.db, services.settings.instance_path)
    with services.db.session() as session:
        assert dict(session.execute(select(Task.id, Task.payload)).all()) == before
