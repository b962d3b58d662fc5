"""One charity's hanging imports cannot hold up another charity's, nor the periodic jobs.

A real `bitesize worker` process (its import lanes and its main worker) on the
test's Redis and database. Penguin Watch sends as many locate imports as the
worker has import lanes, every picture on a local server that accepts the
connection and never answers; then Seal Trust sends a small JSON import. Seal
Trust's job must finish, and a periodic job run, while Penguin Watch's first
import is still stuck in its fetch and its other imports wait their turn (at
most one split per organisation at once), not in the lanes. When the server
answers at last, every Penguin Watch import finishes, each item made once.
"""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image
from rq.job import Job as RQJob
from sqlalchemy import func, select

from engine.identity import authenticate, create_user
from engine.intake import jobs as intake
from engine.projects import create_project
from engine.store.models import Item, Job, Task
from workers.runner import IMPORT_LANES

ROOT = Path(__file__).resolve().parents[1]


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (20, 90, 200)).save(out, "JPEG")
    return out.getvalue()


class HangingPictures:
    """A picture server on 127.0.0.1 that holds every request until released."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.asked: list[str] = []
        picture, server = jpeg(), self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.asked.append(self.path)
                server.released.wait(300)  # a bound, so that a failed test still ends
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(picture)))
                self.end_headers()
                self.wfile.write(picture)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def pictures():
    server = HangingPictures()
    yield server
    server.close()


def charity(services, org: str, task_type: str, config: dict):
    _, token = create_user(services, org, "charity")
    owner = authenticate(services, token)
    project = create_project(services, owner, {
        "name": f"{org} cams", "task_type": task_type, "min_answers": 1, "max_answers": 1,
        "config": config}).project
    return owner, project


def start_worker(tmp_path: Path, settings) -> subprocess.Popen:
    """`bitesize worker` as the Procfile runs it, on the test's database and Redis."""
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "BITESIZE_INSTANCE_PATH": str(settings.instance_path),
           "BITESIZE_DATABASE_URL": settings.database_url,
           "BITESIZE_REDIS_URL": settings.redis_url,
           "BITESIZE_SECRET_KEY": settings.secret_key,
           "BITESIZE_FETCH_ALLOW": "127.0.0.1"}  # the hanging server is a local one
    with open(tmp_path / "worker.log", "w") as log:
        return subprocess.Popen([sys.executable, "-m", "web.cli", "worker"], env=env,
                                cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_for(check, what: str, timeout: float = 90):
    """A deadline for a test that failed, not a measure: the states are asserted."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.05)
    raise AssertionError(f"waited {timeout} s for {what}")


def state(services, job_id: int) -> Job:
    with services.db.session() as session:
        return session.get(Job, job_id)


def made_once(services, job_id: int) -> bool:
    """Every item of the job stored once, and the job's counts match what exists."""
    with services.db.session() as session:
        seqs = list(session.scalars(select(Item.seq).where(Item.job_id == job_id)))
        tasks = session.scalar(select(func.count()).select_from(Task).join(
            Item, Task.item_id == Item.id).where(Item.job_id == job_id))
        job = session.get(Job, job_id)
    return len(seqs) == len(set(seqs)) == job.items_split and tasks == job.tasks_made


def test_a_charitys_hanging_imports_do_not_hold_up_another_charity(services, settings,
                                                                     pictures, tmp_path):
    penguins, stuck_project = charity(services, "Penguin Watch", "locate",
                                      {"question": "Mark the penguins"})
    seals, seal_project = charity(services, "Seal Trust", "classify",
                                  {"question": "What is it?", "labels": ["seal", "rock"]})
    stuck = [intake.create_job(services, penguins, stuck_project.id, items=[
        {"image": f"http://127.0.0.1:{pictures.port}/import-{n}/{i}.jpg", "id": f"p{n}-{i}"}
        for i in range(20)]) for n in range(IMPORT_LANES)]  # enough to fill every lane
    worker = start_worker(tmp_path, settings)
    try:
        wait_for(lambda: pictures.asked, "Penguin Watch's first import to hang in its fetch")
        small = intake.create_job(services, seals, seal_project.id, items=[
            {"text": f"photo {i}", "id": f"s{i}"} for i in range(5)])
        periodic = services.queue("high").enqueue("workers.jobs.watch_jobs")

        done = wait_for(lambda: (j := state(services, small.id)).state == "done" and j,
                        "Seal Trust's import to finish beside the hanging one")
        wait_for(lambda: periodic.get_status(refresh=True) == "finished",
                 "the periodic watchdog job to run beside the hanging import")
        # Penguin Watch's first import is still stuck; its others wait their turn
        assert [state(services, job.id).state for job in stuck] == (
            ["running"] + ["queued"] * (IMPORT_LANES - 1))
        assert {path.split("/")[1] for path in pictures.asked} == {"import-0"}
        assert pictures.released.is_set() is False
        assert (done.items_split, done.tasks_made) == (5, 5)
        assert RQJob.fetch(f"split-{stuck[1].id}", connection=services.redis
                           ).get_status() == "rate_limited"

        pictures.released.set()
        finished = [wait_for(lambda job=job: (j := state(services, job.id)).state == "done"
                             and j, f"Penguin Watch's import {job.id} to finish")
                    for job in stuck]
    finally:
        stop(worker)
    assert all(job.finished_at > done.finished_at for job in finished)
    assert all(made_once(services, job.id) for job in [*stuck, small])
    assert sum(job.tasks_made for job in finished) > 0  # the answered pictures were made
    log = (tmp_path / "worker.log").read_text()
    assert "Traceback" not in log, log[-3000:]
