"""`bitesize demo`: every process of a real deployment, on one laptop.

gunicorn serves the app and an RQ worker runs jobs, both as child processes
sharing this instance folder (SQLite file, embedded Redis, media). Their logs
go to <instance>/logs/ (or to the terminal with --logs), so the URL and the
admin token, printed last once the web server answers, stay on screen.
Ctrl-C stops the children and the embedded Redis and says so; a child that
dies on its own is named, with the last line of its log, and the demo exits
non-zero.
"""
from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import click

from engine.accounts import staff as accounts
from engine.identity import find_organisation
from engine.intake.samples import DEMO_ORG, create_demo
from engine.services import Services
from engine.store import migrate
from engine.store.redis_server import EmbeddedRedis

DEMO_STAFF_EMAIL = "demo@bitesize.example"
START_SECONDS = 60


@dataclass
class Child:
    """One process of the demo, what to call it, and where its log goes."""

    name: str
    process: subprocess.Popen
    log: Path | None

    def why(self) -> str:
        code = self.process.returncode
        if code is not None and code < 0:
            how = f"killed by {signal.Signals(-code).name}"
        else:
            how = f"exit status {code}"
        if self.log is None:
            return how
        last = _last_line(self.log)
        return how + (f": {last}" if last else "") + f" (log: {self.log})"


class Stopped(Exception):
    """Ctrl-C or SIGTERM: the person asked the demo to stop."""


def run_demo(services: Services, host: str, port: int, show_logs: bool = False) -> int:
    """Start everything, announce it, wait; returns the exit status."""
    instance = services.settings.instance_path
    migrate.upgrade(services.db, instance)
    services.redis.ping()  # starts the embedded Redis before the children need it
    token, project_ids = create_demo(services)
    signal.signal(signal.SIGTERM, _stop_requested)
    children: list[Child] = []
    try:
        children = _start(instance, host, port, show_logs)
        failed = _wait_until_serving(children, host, port)
        if failed is None:
            link = _console_link(services, f"http://{host}:{port}")
            _announce(host, port, token, project_ids, link,
                      None if show_logs else instance / "logs")
            failed = _watch(children)
        click.echo(f"bitesize demo: the {failed.name} stopped ({failed.why()}); "
                   "shutting the rest down", err=True)
        return 1
    except (KeyboardInterrupt, Stopped):
        click.echo("\nbitesize demo stopped")
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
        _stop(children)
        if not services.settings.redis_url:
            EmbeddedRedis(instance).stop()


def _stop_requested(signum, frame) -> None:
    raise Stopped()


def _start(instance: Path, host: str, port: int, show_logs: bool) -> list[Child]:
    """The worker and gunicorn, in their own process group so that Ctrl-C reaches
    only the demo, which then stops them in order."""
    logs = instance / "logs"
    tmp = instance / "tmp"
    logs.mkdir(exist_ok=True)
    tmp.mkdir(exist_ok=True)
    env = {**os.environ, "BITESIZE_INSTANCE_PATH": str(instance), "TMPDIR": str(tmp)}
    access = "-" if show_logs else str(logs / "access.log")
    web = [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"{host}:{port}",
           "--access-logfile", access, "--control-socket", str(instance / "gunicorn.ctl"),
           "--worker-tmp-dir", str(tmp), "web:create_app()"]
    worker = [sys.executable, "-m", "web.cli", "worker"]
    return [_spawn("worker", worker, env, None if show_logs else logs / "worker.log"),
            _spawn("web server (gunicorn)", web, env, None if show_logs else logs / "web.log")]


def _spawn(name: str, command: list[str], env: dict[str, str], log: Path | None) -> Child:
    out: IO | None = log.open("ab") if log else None
    try:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT
                                   if out else None, start_new_session=True)
    finally:
        if out:
            out.close()  # the child holds its own copy
    return Child(name, process, log)


def _wait_until_serving(children: list[Child], host: str, port: int) -> Child | None:
    """Wait for the web server to answer a request; the child that died, if one did.

    An answer, not an open port: gunicorn's master listens at once, while its
    workers still import the app (seconds on a busy machine), and a visitor
    who opened the printed link then waited that long for the first page."""
    target = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # any interface: ask loopback
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        dead = _dead(children)
        if dead:
            return dead
        if _answers(target, port):
            return None
        time.sleep(0.2)
    raise click.ClickException(f"the web server did not answer on port {port} within "
                               f"{START_SECONDS} s (see {children[-1].log or 'the output'})")


def _answers(host: str, port: int) -> bool:
    """Whether a worker answers GET / with any HTTP status."""
    connection = http.client.HTTPConnection(host, port, timeout=2)
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _watch(children: list[Child]) -> Child:
    while True:
        dead = _dead(children)
        if dead:
            return dead
        time.sleep(0.5)


def _dead(children: list[Child]) -> Child | None:
    return next((child for child in children if child.process.poll() is not None), None)


def _console_link(services: Services, url: str) -> str:
    """A fresh one-time link for the demo charity's console account (made once):
    open it, choose a password, and the console is yours."""
    staff = accounts.find_staff(services, DEMO_STAFF_EMAIL)
    if staff is None:
        org_id = find_organisation(services, DEMO_ORG)
        user_id = accounts.create_staff(services, org_id, DEMO_STAFF_EMAIL, "admin", "Demo")
    else:
        user_id = staff.id
    return f"{url}/console/set-password/{accounts.issue_link(services, user_id, 'reset')}"


def _announce(host: str, port: int, token: str, project_ids: list[int], console_link: str,
              logs: Path | None) -> None:
    url = f"http://{host}:{port}"
    results = f"{url}/api/v1/projects/{project_ids[0]}/results?format=csv"
    kept = f"\n  logs:           {logs}/ (or run with --logs to see them here)" if logs else ""
    click.echo(f"""
bitesize demo is running: {url}/
  volunteer page: {url}/projects/{project_ids[0]}
  console:        {url}/console/ as {DEMO_STAFF_EMAIL}; choose its password here:
                  {console_link}
  admin token:    {token}
  results:        curl -H 'Authorization: Bearer {token}' '{results}'
  API docs:       {url}/api/docs{kept}
Press Ctrl-C to stop.
""")


def _stop(children: list[Child]) -> None:
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for child in children:
        try:
            child.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()


def _last_line(log: Path) -> str:
    """The last non-empty line of a log, which usually says why a process ended."""
    try:
        with log.open("rb") as handle:
            handle.seek(max(log.stat().st_size - 4096, 0))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")
