"""`bitesize demo`: every process of a real deployment, on one laptop.

gunicorn serves the app and an RQ worker runs jobs, both as child processes
sharing this instance folder (SQLite file, embedded Redis, media). Ctrl-C
stops the children and the embedded Redis.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click

from engine.intake.samples import create_demo
from engine.services import Services
from engine.store import migrate
from engine.store.redis_server import EmbeddedRedis


def run_demo(services: Services, host: str, port: int) -> None:
    migrate.upgrade(services.db, services.settings.instance_path)
    services.redis.ping()  # starts the embedded Redis before the children need it
    token, project_ids = create_demo(services)
    env = {**os.environ, "BITESIZE_INSTANCE_PATH": str(services.settings.instance_path)}
    children = [
        subprocess.Popen([sys.executable, "-m", "web.cli", "worker"], env=env),
        subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", "2",
                          "--bind", f"{host}:{port}", "--access-logfile", "-",
                          "web:create_app()"], env=env),
    ]
    _announce(host, port, token, project_ids)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        click.echo("a demo process stopped; shutting down", err=True)
    except KeyboardInterrupt:
        click.echo("\nstopping the demo…")
    finally:
        _stop(children)
        if not services.settings.redis_url:
            EmbeddedRedis(services.settings.instance_path).stop()


def _announce(host: str, port: int, token: str, project_ids: list[int]) -> None:
    url = f"http://{host}:{port}"
    results = f"{url}/api/v1/projects/{project_ids[0]}/results?format=csv"
    click.echo(f"""
bitesize demo is running: {url}/
  volunteer page: {url}/projects/{project_ids[0]}
  admin token:    {token}
  results:        curl -H 'Authorization: Bearer {token}' '{results}'
  API docs:       {url}/api/docs
Press Ctrl-C to stop.
""")


def _stop(children: list[subprocess.Popen]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for child in children:
        try:
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.kill()
