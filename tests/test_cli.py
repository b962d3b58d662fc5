"""The `bitesize` command: db upgrade, users create, queue rebuild, worker, demo."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import requests
from sqlalchemy import select

from engine.store.models import Organisation, User
from engine.store.redis_server import EmbeddedRedis
from web.cli import cli


def test_db_upgrade_is_repeatable(runner):
    first = runner.invoke(cli, args=["db", "upgrade"])
    again = runner.invoke(cli, args=["db", "upgrade"])
    assert first.exit_code == 0 and again.exit_code == 0, first.output + again.output
    assert "up to date" in again.output


def test_users_create_prints_a_working_token(runner, client, services):
    result = runner.invoke(cli, args=["users", "create", "--role", "admin", "--org", "Bat Count"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[0]
    assert token.startswith("bsu_")
    r = client.get("/api/v1/projects", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    with services.db.session() as session:
        user = session.scalar(select(User))
        assert user.role == "admin"
        assert session.get(Organisation, user.organisation_id).name == "Bat Count"
        assert token not in user.token_hash  # only the hash is stored


def test_users_create_rejects_an_unknown_role(runner):
    result = runner.invoke(cli, args=["users", "create", "--role", "owner", "--org", "X"])
    assert result.exit_code != 0
    assert "owner" in result.output


def test_queue_rebuild_restores_dispatch_after_a_wipe(runner, client, auth, work, services):
    charity = auth.charity()
    project = client.post("/api/v1/projects", headers=charity, json={
        "name": "p", "task_type": "classify",
        "config": {"question": "q", "labels": ["x", "y"]}}).json
    client.post(f"/api/v1/projects/{project['id']}/jobs", headers=charity,
                json={"items": [{"text": "a"}, {"text": "b"}]})
    work()
    services.redis.flushdb()
    result = runner.invoke(cli, args=["queue", "rebuild", str(project["id"])])
    assert result.exit_code == 0, result.output
    assert f"project {project['id']}: 2 open tasks loaded" in result.output
    assert services.redis.exists(f"bs:{{p:{project['id']}}}:meta")


def test_demo_serves_pages_and_results_and_stops_cleanly(tmp_path, free_port):
    """`bitesize demo` as a user runs it: its own instance folder, embedded Redis."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BITESIZE_")}
    env["BITESIZE_INSTANCE_PATH"] = str(tmp_path / "instance")
    proc = subprocess.Popen([sys.executable, "-m", "web.cli", "demo", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        token = _read_token(proc)
        base = f"http://127.0.0.1:{port}"
        _wait_for(lambda: requests.get(base + "/", timeout=2).status_code == 200)
        headers = {"Authorization": f"Bearer {token}"}
        projects = requests.get(base + "/api/v1/projects", headers=headers, timeout=5).json()
        first = projects["projects"][0]["id"]
        _wait_for(lambda: requests.get(f"{base}/api/v1/projects/{first}", headers=headers,
                                       timeout=5).json()["progress"]["tasks"] == 24)
        page = requests.get(f"{base}/projects/{first}", timeout=5)
        assert "Which shape do you see?" in page.text
        csv_text = requests.get(f"{base}/api/v1/projects/{first}/results?format=csv",
                                headers=headers, timeout=5).text
        assert csv_text.splitlines()[0].startswith("task,item,item_ref,state")
        assert len(csv_text.splitlines()) == 25
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert not EmbeddedRedis(tmp_path / "instance").is_running()


def _read_token(proc) -> str:
    deadline = time.monotonic() + 60
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        match = re.search(r"admin token:\s+(bsu_\S+)", line)
        if match:
            return match.group(1)
        if not line and proc.poll() is not None:
            break
    raise AssertionError("demo printed no admin token:\n" + "".join(lines))


def _wait_for(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError("condition not met in time")
