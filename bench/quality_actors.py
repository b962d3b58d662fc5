"""The people of the quality check (bench/quality_check.py), as the API sees them:
the admin who makes the project and then acts only on what the inbox lists,
honest volunteers who answer mostly right at a human pace, and scripts that
give one label as fast as they can. Each talks HTTP through its own session.
"""
from __future__ import annotations

import random
import threading
import time
from collections import Counter
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from typing import Any

import requests
from quality_scenario import (
    LABELS,
    PHOTO_TEXT,
    SCRIPT_LABEL,
    Sizes,
    Truth,
    gold_csv,
    project_body,
)

# --- the API, as its callers see it -------------------------------------------------------

class Api:
    """One caller's HTTP session (a volunteer's or the admin's); one thread each."""

    def __init__(self, base: str, token: str | None = None) -> None:
        self.base = base + "/api/v1"
        self.http = requests.Session()
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, expect: tuple[int, ...] = (200,),
             **kwargs: Any) -> requests.Response:
        response = self.http.request(method, self.base + path, timeout=60, **kwargs)
        if response.status_code not in expect:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response

    def json(self, method: str, path: str, expect: tuple[int, ...] = (200,),
             **kwargs: Any) -> Any:
        return self.call(method, path, expect, **kwargs).json()

    def close(self) -> None:
        self.http.close()


def new_volunteer(base: str, sessions: ExitStack) -> tuple[int, Api]:
    """An anonymous volunteer (POST /volunteers), with their own session, closed
    with `sessions`."""
    with closing(Api(base)) as anonymous:
        made = anonymous.json("POST", "/volunteers", expect=(201,))
    return made["id"], sessions.enter_context(closing(Api(base, made["token"])))


# --- the project --------------------------------------------------------------------------

def create_project(admin: Api, sizes: Sizes, truth: Truth) -> int:
    """The project, its items as JSON and its gold items as a CSV, split by the worker."""
    project = admin.json("POST", "/projects", expect=(201,), json=project_body(sizes))
    items = [{"text": f"{PHOTO_TEXT}{ref}", "id": ref}
             for ref in sorted(truth.labels) if ref not in truth.gold]
    jobs = [admin.json("POST", f"/projects/{project['id']}/jobs", expect=(202,),
                       json={"items": items}),
            admin.json("POST", f"/projects/{project['id']}/jobs", expect=(202,),
                       files={"file": ("gold.csv", gold_csv(truth), "text/csv")})]
    for job in jobs:
        wait_for_job(admin, job["id"])
    return project["id"]


def wait_for_job(admin: Api, job_id: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = admin.json("GET", f"/jobs/{job_id}")
        if job["state"] == "done":
            return
        if job["state"] == "failed":
            raise RuntimeError(f"job {job_id} failed: {job['error']}")
        time.sleep(0.2)
    raise RuntimeError(f"job {job_id} was not split in {timeout} s (is the worker running?)")


# --- the volunteers -----------------------------------------------------------------------

def answer(api: Api, handout: dict, label: str) -> dict:
    """POST the answer; the reply's fields the check reads, with the task's ref."""
    task = handout["task"]
    reply = api.json("POST", f"/tasks/{task['id']}/answers", expect=(201,),
                     json={"lease": handout["lease"]["token"], "answer": {"label": label}})
    return {"task": task["id"], "ref": shown_ref(task["payload"]), "label": label,
            "counted": reply["counted"], "created_at": reply["created_at"]}


def shown_ref(payload: dict) -> str:
    """The item a volunteer is looking at, read off what the task shows (as a
    person would read the photo): volunteers are not sent the item's id."""
    return payload["text"].removeprefix(PHOTO_TEXT)


def honest_label(truth: Truth, ref: str, rng: random.Random, accuracy: float) -> str:
    """The true label most of the time, another one otherwise."""
    right = truth.labels[ref]
    if rng.random() < accuracy:
        return right
    return rng.choice([label for label in LABELS if label != right])


def honest_volunteer(api: Api, project_id: int, truth: Truth, sizes: Sizes, seed: int,
                     stop_event: threading.Event) -> list[dict]:
    """Looks at each task for a human while (more than min_seconds), then answers;
    when nothing is left for them, looks again now and then (tasks may reopen)."""
    rng, replies = random.Random(seed), []
    while not stop_event.is_set():
        got = api.call("GET", f"/projects/{project_id}/tasks/next", expect=(200, 204))
        if got.status_code == 204:
            stop_event.wait(0.3)
            continue
        handout = got.json()
        label = honest_label(truth, shown_ref(handout["task"]["payload"]), rng,
                             sizes.honest_accuracy)
        time.sleep(rng.uniform(*sizes.pace))
        replies.append(answer(api, handout, label))
    return replies


def scripted_volunteer(api: Api, project_id: int, start_after: float,
                       stop_event: threading.Event) -> list[dict]:
    """One label, as fast as it can, from its start until nothing more is handed out
    (a quarantined volunteer still gets tasks; a blocked one gets none)."""
    stop_event.wait(start_after)
    replies = []
    while not stop_event.is_set():
        got = api.call("GET", f"/projects/{project_id}/tasks/next", expect=(200, 204, 403))
        if got.status_code != 200:
            break
        replies.append(answer(api, got.json(), SCRIPT_LABEL))
    return replies


# --- the admin, at the inbox --------------------------------------------------------------

@dataclass
class Desk:
    """What the admin saw in the inbox and did about it."""

    polls: int = 0
    first_seen: dict[int, float] = field(default_factory=dict)  # volunteer -> time.time()
    listed: dict[int, dict] = field(default_factory=dict)  # volunteer -> its first inbox row
    blocked: dict[int, dict] = field(default_factory=dict)  # volunteer -> the block's reply
    settled: dict[int, str] = field(default_factory=dict)  # task -> the label given
    kinds: Counter = field(default_factory=Counter)  # distinct rows seen, by kind
    errors: list[str] = field(default_factory=list)
    seen: set = field(default_factory=set)


def admin_desk(admin: Api, project_id: int, truth: Truth, sizes: Sizes, desk: Desk,
               stop_event: threading.Event) -> Desk:
    """Poll the inbox; act on each row by the call it points to."""
    while not stop_event.is_set():
        page = admin.json("GET", "/inbox", params={"project": project_id, "limit": 100})
        now = time.time()
        desk.polls += 1
        for row in page["items"]:
            key = (row["kind"], row["volunteer"], row["task"], row["job"], row["event"])
            if key not in desk.seen:
                desk.seen.add(key)
                desk.kinds[row["kind"]] += 1
            act(admin, project_id, truth, row, now, desk)
        stop_event.wait(sizes.poll_seconds)
    return desk


def act(admin: Api, project_id: int, truth: Truth, row: dict, now: float, desk: Desk) -> None:
    if row["kind"] == "volunteer":
        block(admin, project_id, row, now, desk)
    elif row["kind"] == "task":
        settle(admin, project_id, truth, row["task"], desk)


def block(admin: Api, project_id: int, row: dict, now: float, desk: Desk) -> None:
    """A quarantined volunteer: blocked in this project, the flags as the reason."""
    volunteer = row["volunteer"]
    desk.first_seen.setdefault(volunteer, now)
    desk.listed.setdefault(volunteer, row)
    if volunteer in desk.blocked:
        return
    reason = "quarantined for " + ", ".join(row["reasons"] or ["no reason given"])
    desk.blocked[volunteer] = admin.json(
        "POST", f"/projects/{project_id}/volunteers/{volunteer}/block",
        json={"scope": "project", "reason": reason})


def settle(admin: Api, project_id: int, truth: Truth, task_id: int, desk: Desk) -> None:
    """A contested task: its picture read in the review queue, settled with the truth."""
    if task_id in desk.settled:
        return
    queue = admin.json("GET", f"/projects/{project_id}/review", params={"limit": 500})
    entry = next((t for t in queue["tasks"] if t["id"] == task_id), None)
    if entry is None:  # no longer contested (a block merged it again): nothing to do
        return
    label = truth.labels[entry["ref"]]
    done = admin.call("POST", f"/tasks/{task_id}/resolution", expect=(200, 409),
                      json={"answer": {"label": label}, "note": "checked against the truth"})
    if done.status_code == 200:
        desk.settled[task_id] = label
