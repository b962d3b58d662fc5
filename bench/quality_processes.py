"""The Procfile's processes for the quality check (bench/quality_check.py), as a
platform runs them: the release step and the CLI once, then the web and worker
processes in their own process groups, on a temporary instance folder.

Only what a platform would give them is passed on (PATH, PORT, the BITESIZE_*
variables named here), so the check sees the deployment a reader of the README
would get.
"""
from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from engine.store.redis_server import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent
ORG = "Quality Check Trust"
START_SECONDS = 60


def procfile(path: Path = ROOT / "Procfile") -> dict[str, str]:
    """The Procfile's process types and their command lines."""
    lines = (line.split(":", 1) for line in path.read_text().splitlines()
             if line.strip() and not line.startswith("#"))
    return {name.strip(): command.strip() for name, command in lines}


def process_env(instance: Path, port: int, redis_url: str = "",
                database_url: str = "") -> dict[str, str]:
    """What a platform gives the Procfile's processes: this Python's scripts first
    on PATH (bitesize, gunicorn), PORT, and only the BITESIZE_* variables named here."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BITESIZE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(BITESIZE_INSTANCE_PATH=str(instance), PORT=str(port), WEB_CONCURRENCY="2",
               TMPDIR=str(instance / "tmp"),
               # the scripts answer as fast as they can: the quarantine is what is
               # measured here, not the answer rate limit (60/minute) stopping them
               BITESIZE_LIMIT_ANSWERS="100000/minute")
    if redis_url:
        env["BITESIZE_REDIS_URL"] = redis_url
    if database_url:
        env["BITESIZE_DATABASE_URL"] = database_url
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shell(command: str, env: dict[str, str], timeout: float = 120) -> str:
    """A one-off command as a platform runs it (the release step, the CLI); its stdout."""
    done = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{command!r} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def admin_token(env: dict[str, str]) -> str:
    """An organisation admin's API token, made as the README says: on the command line."""
    out = shell(f"bitesize users create --role admin --org {shlex.quote(ORG)} "
                "--name 'Quality desk'", env)
    return out.strip().splitlines()[0]


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log: Path


def spawn(name: str, command: str, env: dict[str, str], log: Path) -> Child:
    """One long-running Procfile line in its own process group (stopped as a group)."""
    with log.open("ab") as out:
        process = subprocess.Popen(["bash", "-c", command], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    return Child(name, process, log)


def stop(children: list[Child]) -> None:
    """SIGTERM to each child's group (as a platform stops a dyno), SIGKILL if it lingers."""
    for child in children:
        if child.process.poll() is None:
            os.killpg(child.process.pid, signal.SIGTERM)
    for child in children:
        try:
            child.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(child.process.pid, signal.SIGKILL)
            child.process.wait()


def wait_until_serving(base: str, children: list[Child]) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        dead = next((c for c in children if c.process.poll() is not None), None)
        if dead is not None:
            raise RuntimeError(f"the {dead.name} process exited: "
                               f"{dead.log.read_text(errors='replace')[-2000:]}")
        try:
            if requests.get(base + "/api/v1/openapi.json", timeout=5).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the web process did not serve {base} in {START_SECONDS} s")


@dataclass(frozen=True)
class Deployment:
    base: str  # http://127.0.0.1:PORT
    admin_token: str
    instance: Path
    logs: list[Path]


@contextmanager
def deployment(instance: Path, redis_url: str = "",
               database_url: str = "") -> Iterator[Deployment]:
    """The Procfile's release step, then its web and worker processes, on `instance`;
    everything they started is stopped afterwards (the embedded Redis too)."""
    (instance / "tmp").mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = process_env(instance, port, redis_url, database_url)
    lines = procfile()
    if redis_url:
        import redis

        redis.Redis.from_url(redis_url).flushdb()  # a spare database: project ids restart
    children: list[Child] = []
    try:
        shell(lines["release"], env)
        token = admin_token(env)
        children = [spawn(name, lines[name], env, instance / f"{name}.log")
                    for name in ("worker", "web")]
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(base, children)
        yield Deployment(base, token, instance, [c.log for c in children])
    finally:
        stop(children)
        if not redis_url:
            EmbeddedRedis(instance).stop()
