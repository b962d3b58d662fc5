"""A split never stays "running" forever: heartbeats, the watchdog, and a real kill -9.

A split keeps ``heartbeat_at`` fresh from a thread and records ``items_read``
as it goes; engine.intake.watchdog resumes a job whose heartbeat went stale
(its worker died), fails it after the third stop, and rerun_job accepts such
a job at once. The last test kills a real worker process mid-split and has a
new worker process finish the job, every item made exactly once; the
workers' clocks are sped up (a 0.2 s heartbeat, stale after 2 s) so that it
takes seconds, not a minute.
"""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select, update

from engine.errors import ConflictError
from engine.identity import authenticate, create_user
from engine.intake import jobs as intake
from engine.intake import watchdog
from engine.projects import create_project
from engine.store.models import Item, Job, Task, utcnow
from tests.worker_processes import worker_env
from workers.context import set_services
from workers.jobs import watch_jobs


@pytest.fixture
def owner(services):
    _, token = create_user(services, "Penguin Watch", "charity")
    return authenticate(services, token)


@pytest.fixture
def project(services, owner):
    return create_project(services, owner, {
        "name": "Seal cams", "task_type": "classify", "min_answers": 2, "max_answers": 3,
        "config": {"question": "What is it?", "labels": ["seal", "rock"]}}).project


def items(count: int) -> list[dict]:
    return [{"text": f"row {n}", "id": f"r{n}", **({"gold": "seal"} if n % 100 == 0 else {})}
            for n in range(count)]


def job_row(services, job_id: int) -> Job:
    with services.db.session() as session:
        return session.get(Job, job_id)


def made(services, job_id: int) -> tuple[list[int], int]:
    """(the seqs of the job's items, sorted; how many tasks they have)."""
    with services.db.session() as session:
        seqs = sorted(session.scalars(select(Item.seq).where(Item.job_id == job_id)))
        tasks = session.scalar(select(func.count()).select_from(Task).join(
            Item, Task.item_id == Item.id).where(Item.job_id == job_id))
    return seqs, tasks


def as_killed_worker_leaves_it(services, job_id: int, stored: int, ago: float = 120) -> None:
    """What a worker killed mid-split leaves: items stored up to ``stored``, the job
    running, its heartbeat ``ago`` seconds old, its RQ job in the started registry."""
    intake.run_job(services, job_id)  # a whole run, then undo what came after `stored`
    with services.db.session() as session:
        late = select(Item.id).where(Item.job_id == job_id, Item.seq >= stored)
        session.execute(Task.__table__.delete().where(Task.item_id.in_(late)))
        session.execute(Item.__table__.delete().where(Item.job_id == job_id,
                                                      Item.seq >= stored))
        session.execute(update(Job).where(Job.id == job_id).values(
            state="running", items_split=stored, tasks_made=stored, finished_at=None,
            heartbeat_at=utcnow() - timedelta(seconds=ago)))
    services.redis.zadd(StartedJobRegistry("default", connection=services.redis).key,
                        {f"split-{job_id}:deadbeef": time.time() + 6 * 3600})


def test_a_split_records_its_file_name_reading_progress_and_heartbeats(services, owner, project,
                                                                       monkeypatch):
    monkeypatch.setattr(intake, "BATCH", 10)
    monkeypatch.setattr(intake, "HEARTBEAT_SECONDS", 0.05)
    monkeypatch.setattr(intake, "PROGRESS_SECONDS", 0.0)
    job = intake.create_job(services, owner, project.id, items=items(40), enqueue=False)
    seen: list[tuple] = []
    real = intake._store_batch

    def slow_batch(*args, **kwargs):  # a slow batch: the thread must beat meanwhile
        before = job_row(services, job.id).heartbeat_at
        time.sleep(0.3)
        after = job_row(services, job.id)
        seen.append((before, after.heartbeat_at, after.items_read, after.state))
        return real(*args, **kwargs)

    monkeypatch.setattr(intake, "_store_batch", slow_batch)
    done = intake.run_job(services, job.id)
    assert done.state == "done" and done.items_read == 40 and done.tasks_made == 40
    assert all(after > before for before, after, _, _ in seen), seen  # beaten inside a batch
    # read as it goes, before each batch is stored (the last call stores what is left)
    assert [read for _, _, read, _ in seen] == [9, 19, 29, 39, 40]
    assert {state for *_, state in seen} == {"running"}
    assert not [t for t in threading.enumerate() if t.name.startswith("heartbeat-job-")]
    named = intake.create_job(services, owner, project.id, upload=io.BytesIO(b"text\nrow\n"),
                              filename="seals.csv", enqueue=False)
    assert job_row(services, named.id).filename == "seals.csv"


def test_the_watchdog_resumes_a_dead_workers_job_making_nothing_twice(services, owner, project,
                                                                      work):
    job = intake.create_job(services, owner, project.id, items=items(30), enqueue=False)
    as_killed_worker_leaves_it(services, job.id, stored=12)
    fresh = intake.create_job(services, owner, project.id, items=items(3), enqueue=False)
    with services.db.session() as session:  # a slow split, not a dead one: left alone
        session.execute(update(Job).where(Job.id == fresh.id).values(
            state="running", heartbeat_at=utcnow() - timedelta(seconds=5)))

    swept = watchdog.sweep(services)
    assert swept.resumed == [job.id] and swept.failed == []
    assert watchdog.sweep(services).resumed == []  # claimed once only
    queued = job_row(services, job.id)
    assert (queued.state, queued.resumed) == ("queued", 1)
    registry = StartedJobRegistry("default", connection=services.redis)
    assert not [m for m in services.redis.zrange(registry.key, 0, -1)
                if m.startswith(f"split-{job.id}:".encode())]
    registry.cleanup(time.time() + 10 * 3600)  # RQ's own clean-up finds nothing to fail
    assert job_row(services, job.id).state == "queued"
    assert job_row(services, fresh.id).state == "running"

    work()
    done = job_row(services, job.id)
    assert done.state == "done" and done.error is None
    assert made(services, job.id) == (list(range(30)), 30)
    assert (done.items_split, done.tasks_made) == (30, 30)


def test_the_third_stop_fails_the_job_and_run_again_starts_afresh(services, owner, project, work):
    job = intake.create_job(services, owner, project.id, items=items(10), enqueue=False)
    as_killed_worker_leaves_it(services, job.id, stored=4)
    with services.db.session() as session:
        session.execute(update(Job).where(Job.id == job.id).values(resumed=2))
    assert watchdog.sweep(services).failed == [job.id]
    failed = job_row(services, job.id)
    assert failed.state == "failed" and failed.resumed == 3
    assert failed.error == ("the worker stopped 3 times while splitting this job; "
                            "Run again to try once more")
    again = intake.rerun_job(services, owner, job.id)
    assert (again.state, again.resumed) == ("queued", 0)
    work()
    assert job_row(services, job.id).state == "done"
    assert made(services, job.id) == (list(range(10)), 10)


def test_run_again_takes_a_stalled_job_but_not_a_live_one(services, owner, project, work):
    job = intake.create_job(services, owner, project.id, items=items(6), enqueue=False)
    as_killed_worker_leaves_it(services, job.id, stored=2, ago=5)
    with pytest.raises(ConflictError, match="running"):  # beating 5 s ago: alive
        intake.rerun_job(services, owner, job.id)
    with services.db.session() as session:
        session.execute(update(Job).where(Job.id == job.id).values(
            heartbeat_at=utcnow() - timedelta(minutes=5)))
    assert intake.rerun_job(services, owner, job.id).state == "queued"
    work()
    assert made(services, job.id) == (list(range(6)), 6)


def test_the_watchdog_is_a_periodic_job_that_renews_itself(services, owner, project):
    job = intake.create_job(services, owner, project.id, items=items(5), enqueue=False)
    as_killed_worker_leaves_it(services, job.id, stored=1)
    set_services(services)
    try:
        assert watch_jobs() == {"resumed": [job.id], "failed": []}
    finally:
        set_services(None)
    assert services.redis.exists("bs:periodic:watchdog")
    scheduled = services.queue("high").scheduled_job_registry.get_job_ids()
    assert [j for j in scheduled if j.startswith("periodic-watchdog-")]


# --- a real worker, killed -------------------------------------------------------------

LAUNCHER = '''"""A bitesize worker with its clocks sped up; --slow makes its split slow."""
import sys
import time
from datetime import timedelta

from engine.intake import jobs

jobs.HEARTBEAT_SECONDS = 0.2
jobs.STALE_AFTER = timedelta(seconds=2)
if "--slow" in sys.argv:
    jobs.BATCH = 20
    real = jobs._store_batch

    def slow(*args, **kwargs):
        time.sleep(0.05)
        return real(*args, **kwargs)

    jobs._store_batch = slow
from web.cli import main

sys.argv = ["bitesize", "worker"]
main()
'''


def start_worker(tmp_path: Path, settings, *args: str) -> subprocess.Popen:
    launcher = tmp_path / "fast_clock_worker.py"
    launcher.write_text(LAUNCHER)
    env = worker_env(settings)
    with open(tmp_path / f"worker{'-'.join(args)}.log", "w") as log:
        # Its own process group: the worker and the scheduler it forks die together.
        return subprocess.Popen([sys.executable, str(launcher), *args], env=env, cwd=tmp_path,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.05)
    raise AssertionError(f"waited {timeout} s for {what}")


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_worker_killed_mid_split_is_replaced_and_the_job_finishes_once(
        services, settings, owner, project, tmp_path):
    total = 2000
    job = intake.create_job(services, owner, project.id, items=items(total))
    first = start_worker(tmp_path, settings, "--slow")
    second = None
    try:
        mid = wait_for(lambda: (j := job_row(services, job.id)).items_split >= 200 and j,
                       20, "the first worker to be half-way")
        assert mid.state == "running" and mid.heartbeat_at is not None
        os.killpg(first.pid, signal.SIGKILL)  # kill -9, its scheduler too
        first.wait(timeout=10)
        left = job_row(services, job.id)
        assert left.state == "running" and 200 <= left.items_split < total, left.items_split
        second = start_worker(tmp_path, settings)
        done = wait_for(lambda: (j := job_row(services, job.id)).state == "done" and j,
                        25, "the new worker to finish the job")
    finally:
        stop(first, signal.SIGKILL)
        if second is not None:
            stop(second)
    assert made(services, job.id) == (list(range(total)), total)  # every item exactly once
    assert (done.items_split, done.tasks_made, done.items_read) == (total, total, total)
    assert done.resumed == 1 and done.error is None
    registry = StartedJobRegistry("default", connection=services.redis)
    assert not [m for m in services.redis.zrange(registry.key, 0, -1)
                if m.startswith(f"split-{job.id}:".encode())]
    log = (tmp_path / "worker.log").read_text()
    assert "Traceback" not in log, log[-3000:]
