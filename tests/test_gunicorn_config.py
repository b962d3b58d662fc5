"""Issue 14.6: the Procfile's web server survives slow clients. gunicorn runs as
the Procfile runs it (its `web` line, gunicorn.conf.py) with one worker of 4
threads; 4 connections that send nothing and one that sends its body slowly
must not keep a normal request from being answered, and a body that stalls
ends in a 400 that frees its thread.

Before gunicorn.conf.py the Procfile ran sync workers: one idle connection
held a whole worker until gunicorn's 30 s timeout killed it, so the normal
request below was not answered within its (generous) client timeout."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
ANSWER_WITHIN = 20  # seconds: far more than a request takes, far less than a sync worker's hang


def web_command() -> list[str]:
    """The Procfile's web line, run by a shell as a platform runs it."""
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines()
                if line.startswith("web:"))
    return ["bash", "-c", "exec " + line.split(":", 1)[1].strip()]


@pytest.fixture
def web(settings, services, free_port) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PORT": str(port), "WEB_CONCURRENCY": "1", "WEB_THREADS": "4",
           "WEB_CLIENT_TIMEOUT": "2",
           "BITESIZE_INSTANCE_PATH": str(settings.instance_path),
           "BITESIZE_DATABASE_URL": settings.database_url,
           "BITESIZE_REDIS_URL": settings.redis_url,
           "BITESIZE_SECRET_KEY": settings.secret_key, "BITESIZE_RATE_LIMITS": "0"}
    proc = subprocess.Popen(web_command(), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(base, proc)
        yield base
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert b"Traceback" not in stderr, stderr.decode()[-3000:]


def _wait_until_serving(base: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        try:
            if requests.get(base + "/api/v1/openapi.json", timeout=10).ok:
                return
        except requests.RequestException:
            time.sleep(0.2)
    raise AssertionError("gunicorn did not start serving")


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=ANSWER_WITHIN + 10)


def slow_body_start(base: str, token: str) -> socket.socket:
    """An answer whose headers promise 1000 bytes, of which 10 are sent."""
    sock = connect(base)
    sock.sendall((f"POST /api/v1/tasks/1/answers HTTP/1.1\r\nHost: x\r\n"
                  f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: 1000\r\n\r\n").encode() + b'{"lease": ')
    return sock


def reply_of(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_idle_and_slow_clients_do_not_block_a_normal_request(web):
    token = requests.post(web + "/api/v1/volunteers", timeout=ANSWER_WITHIN).json()["token"]
    idle = [connect(web) for _ in range(4)]
    slow = slow_body_start(web, token)
    try:
        slow.sendall(b'"a')  # still coming, slowly
        r = requests.get(web + "/api/v1/openapi.json", timeout=ANSWER_WITHIN)
        assert r.status_code == 200
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        # the stalled body is given up on: a 400, and its thread is free again
        reply = reply_of(slow)
        assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
        assert b'"incomplete"' in reply
        r = requests.get(web + "/", timeout=ANSWER_WITHIN)
        assert r.status_code == 200
    finally:
        for sock in [*idle, slow]:
            sock.close()


def test_the_limits_on_a_request_line_and_headers(web):
    assert requests.get(web + "/" + "a" * 5000, timeout=ANSWER_WITHIN).status_code == 414
    many = {f"X-Filler-{n}": "x" for n in range(60)}
    assert requests.get(web + "/", headers=many, timeout=ANSWER_WITHIN).status_code == 431
    assert requests.get(web + "/", timeout=ANSWER_WITHIN).status_code == 200


def test_the_probes_and_metrics_under_gunicorn(web):
    """Issue 17.5: as the Procfile runs it, /metrics counts through the multiprocess
    folder gunicorn.conf.py makes, and the probes answer."""
    from prometheus_client.parser import text_string_to_metric_families

    for _ in range(3):
        assert requests.get(web + "/healthz", timeout=ANSWER_WITHIN).json() == {"status": "ok"}
    ready = requests.get(web + "/readyz", timeout=ANSWER_WITHIN)
    assert ready.status_code == 200 and ready.json()["status"] == "ready", ready.text
    assert len(ready.headers["X-Request-Id"]) == 32
    text = requests.get(web + "/metrics", timeout=ANSWER_WITHIN).text
    counted = {tuple(sorted(s.labels.items())): s.value
               for family in text_string_to_metric_families(text)
               if family.name == "bitesize_http_requests" for s in family.samples
               if s.name == "bitesize_http_requests_total"}
    assert counted[(("method", "GET"), ("route", "/healthz"), ("status", "200"))] == 3
