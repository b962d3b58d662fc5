"""The dispatch proof: 200 volunteers in 4 processes over real HTTP against
gunicorn with several workers, with lease expiries, skips, late answers,
retried submits and a Redis wipe in the middle. Afterwards SQL must show
every task with exactly its needed counted answers from distinct volunteers,
every 2xx answer stored, and no volunteer shown a task twice."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from engine.store.models import Answer, Task

DRIVER = Path(__file__).with_name("load_driver.py")
TASKS, NEED, PROCESSES, VOLUNTEERS_EACH, LEASE_SECONDS = 1000, 3, 4, 50, 5


@contextmanager
def serving(settings, port: int) -> Iterator[str]:
    """gunicorn with several workers on these settings' database and Redis."""
    env = {**os.environ, "BITESIZE_INSTANCE_PATH": str(settings.instance_path),
           "BITESIZE_DATABASE_URL": settings.database_url,
           "BITESIZE_REDIS_URL": settings.redis_url,
           "BITESIZE_REDIS_CLUSTER": str(settings.redis_cluster),
           "BITESIZE_QUEUE_REDIS_URL": settings.queue_redis_url,
           "BITESIZE_SECRET_KEY": settings.secret_key,
           "BITESIZE_RATE_LIMITS": "0"}  # 200 sign-ups from one address in seconds
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", "3",
                             "--bind", f"127.0.0.1:{port}", "web:create_app()"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(base)
        yield base
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert b"Traceback" not in stderr, stderr.decode()[-3000:]


@pytest.fixture
def gunicorn(settings, services, free_port):
    with serving(settings, free_port()) as base:
        yield base


def _wait_until_serving(base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(base + "/api/v1/openapi.json", timeout=10).ok:
                return
        except requests.RequestException:
            time.sleep(0.2)
    raise AssertionError("gunicorn did not start serving")


@pytest.mark.e2e
def test_crowd_over_http_with_a_redis_wipe(services, auth, client, work, gunicorn, tmp_path):
    _prove(services, auth, client, work, gunicorn, tmp_path)


@pytest.mark.e2e
def test_crowd_over_http_on_a_redis_cluster(settings, registry, auth, redis_cluster, own_redis,
                                            free_port, tmp_path):
    """The same proof on three Redis Cluster masters (the queues on a Redis of
    their own), the wipe flushing every master."""
    from engine.services import Services
    from web import create_app
    from workers.runner import run_worker

    on_cluster = replace(settings, redis_url=redis_cluster.url, redis_cluster=1,
                         queue_redis_url=own_redis.url)
    services = Services(on_cluster, registry)
    client = create_app({"SERVICES": services, "TESTING": True}).test_client()
    try:
        with serving(on_cluster, free_port()) as base:
            _prove(services, auth, client, lambda: run_worker(services, burst=True), base,
                   tmp_path)
        assert len(redis_cluster.nodes) == 3
    finally:
        services.close()


def _prove(services, auth, client, work, gunicorn: str, tmp_path) -> None:
    charity = auth.charity()
    project = client.post("/api/v1/projects", headers=charity, json={
        "name": "Penguin cams", "task_type": "classify", "lease_seconds": LEASE_SECONDS,
        "config": {"question": "What is it?", "labels": ["penguin", "seal", "empty"]},
        "min_answers": NEED, "max_answers": NEED, "confidence": 0.5,
        # these volunteers answer in no time: flags would quarantine them
        "quality": {"quarantine": False, "trusted_after_minutes": 0}}).json
    client.post(f"/api/v1/projects/{project['id']}/jobs", headers=charity,
                json={"items": [{"text": f"photo {n}"} for n in range(TASKS)]})
    work()

    logs = [tmp_path / f"driver-{n}.json" for n in range(PROCESSES)]
    drivers = [subprocess.Popen([sys.executable, str(DRIVER), gunicorn, str(project["id"]),
                                 str(VOLUNTEERS_EACH), str(n + 1), str(log)])
               for n, log in enumerate(logs)]
    _wipe_redis_midway(services, project["id"])
    for d in drivers:
        assert d.wait(timeout=600) == 0
    observed = {key: sum((json.loads(p.read_text())[key] for p in logs), [])
                for key in ("seen", "answers", "errors")}

    assert observed["errors"] == []
    seen = Counter((volunteer, task) for volunteer, task in observed["seen"])
    assert max(seen.values()) == 1, "a volunteer was shown a task twice"
    # The crowd may go home while a last abandoned lease is still running:
    # once it has expired, fresh volunteers must be able to finish every task.
    time.sleep(LEASE_SECONDS + 1)
    answers = observed["answers"] + _sweep(gunicorn, project["id"])
    _assert_sql_matches(services, project["id"], answers)


def _sweep(base: str, project_id: int) -> list[list]:
    """Fresh volunteers answer whatever is left, until a new one gets nothing."""
    answers: list[list] = []
    while True:
        http = requests.Session()
        token = http.post(f"{base}/api/v1/volunteers", timeout=30).json()["token"]
        http.headers["Authorization"] = f"Bearer {token}"
        got = 0
        while (r := http.get(f"{base}/api/v1/projects/{project_id}/tasks/next",
                             timeout=30)).status_code == 200:
            task, lease = r.json()["task"]["id"], r.json()["lease"]["token"]
            a = http.post(f"{base}/api/v1/tasks/{task}/answers", timeout=30,
                          json={"lease": lease, "answer": {"label": "seal"}})
            assert a.status_code == 201, a.text
            answers.append([token, task, a.json()["id"], a.json()["counted"]])
            got += 1
        assert r.status_code == 204, r.text
        if not got:
            return answers


def _wipe_redis_midway(services, project_id) -> None:
    """Flush Redis once a third of the answers are in, as a restart would."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        with services.db.session() as session:
            count = session.scalar(select(func.count()).select_from(Answer)
                                   .where(Answer.project_id == project_id))
        if count >= TASKS * NEED // 3:
            services.redis.flushdb()  # on a Cluster: every master
            return
        time.sleep(0.2)
    raise AssertionError("the crowd never got a third of the way")


def _assert_sql_matches(services, project_id, answers) -> None:
    with services.db.session() as session:
        counted = Counter(session.scalars(select(Answer.task_id).where(
            Answer.project_id == project_id, Answer.counted.is_(True))))
        stored = {a.id: a for a in session.scalars(select(Answer).where(
            Answer.project_id == project_id))}
        states = Counter(session.scalars(select(Task.state).where(Task.project_id == project_id)))
    assert len(counted) == TASKS and set(counted.values()) == {NEED}
    assert states["open"] == 0 and states["retired"] + states["contested"] == TASKS
    volunteer_of: dict[str, int] = {}
    for token, task, answer_id, was_counted in answers:
        row = stored.get(answer_id)
        assert row is not None, f"answer {answer_id} got a 2xx but is not in SQL"
        assert row.task_id == task
        # one token is one volunteer: all its answers carry the same volunteer id
        assert volunteer_of.setdefault(token, row.volunteer_id) == row.volunteer_id
        # a surplus answer may later... never become counted; a counted one stays counted
        assert row.counted == was_counted
    assert len(set(volunteer_of.values())) == len(volunteer_of)
    assert len(stored) == len(answers)
