"""Issue 17.5: the probes a load balancer asks (/healthz, /readyz) and the request id
every reply carries (README: Running in public, Operations).

/healthz touches nothing but the process; /readyz answers 200 only when the
database, Redis and the schema are all fit, else 503 naming what is not, in a
bounded time and without an error's text. Against a real Redis and database,
and against a Redis port nothing listens on or a server that never replies."""
from __future__ import annotations

import re
import socket
import threading
from dataclasses import replace

import pytest

from engine.services import Services
from web.operations import Readiness

PROJECT = {"name": "Seals", "task_type": "classify",
           "config": {"question": "Which?", "labels": ["seal", "penguin"]}}
HEX_ID = re.compile(r"[0-9a-f]{32}\Z")




def assert_secured(response) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


def test_healthz_says_the_process_is_up_and_touches_nothing_else(make_client, free_port,
                                                                 tmp_path):
    # Neither a database nor a Redis exists for this app: liveness does not care.
    client = make_client(redis_url=f"redis://127.0.0.1:{free_port()}/0",
                         database_url=f"sqlite:///{tmp_path / 'missing' / 'none.db'}")
    reply = client.get("/healthz")
    assert reply.status_code == 200
    assert reply.json == {"status": "ok"}
    assert_secured(reply)


def test_readyz_lists_every_check_when_all_are_fit(client):
    reply = client.get("/readyz")
    assert reply.status_code == 200, reply.json
    assert reply.json == {"status": "ready",
                          "checks": {"database": "ok", "redis": "ok", "migrations": "ok"}}
    assert_secured(reply)


def test_readyz_names_redis_when_it_is_down_and_never_says_where(make_client, free_port):
    port = free_port()
    client = make_client(redis_url=f"redis://127.0.0.1:{port}/0")
    reply = client.get("/readyz")
    assert reply.status_code == 503
    assert reply.json == {"status": "unready", "checks": {
        "database": "ok", "redis": "unreachable", "migrations": "ok"}}
    assert str(port) not in reply.get_data(True) and "127.0.0.1" not in reply.get_data(True)
    assert reply.headers["Retry-After"]
    assert_secured(reply)


def test_readyz_says_the_schema_is_behind_on_a_database_never_migrated(make_client, tmp_path):
    client = make_client(database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    reply = client.get("/readyz")
    assert reply.status_code == 503
    checks = reply.json["checks"]
    assert checks["database"] == "ok" and checks["redis"] == "ok"
    assert "bitesize db upgrade" in checks["migrations"]


@pytest.fixture
def silent_redis():
    """A TCP port that takes connections (the kernel's backlog) and never replies:
    a hung Redis. Closing it resets the waiting connections."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    server.close()


def test_a_hanging_redis_answers_the_probe_in_bounded_time(services, settings, registry,
                                                           silent_redis):
    hung = Services(replace(settings, redis_url=silent_redis), registry)
    try:
        # Long enough for a fresh engine's first connection on a busy CI machine;
        # the hung Redis would otherwise hold the probe forever.
        readiness = Readiness(hung, seconds=3)
        assert readiness.run() == {"database": "ok", "redis": "timed out", "migrations": "ok"}
    finally:
        hung.close()


def test_a_check_still_hanging_is_waited_on_again_never_started_twice(services):
    release, calls = threading.Event(), []

    def stuck(_svc) -> None:
        calls.append(1)
        release.wait(30)

    readiness = Readiness(services, {"stuck": stuck}, seconds=0.05)
    assert readiness.run() == {"stuck": "timed out"}
    assert readiness.run() == {"stuck": "timed out"}
    assert len(calls) == 1  # one thread held, however many probes come
    release.set()
    readiness._running["stuck"].result(timeout=30)
    assert readiness.run() == {"stuck": "ok"} and len(calls) == 2


def test_probes_answer_whatever_host_a_load_balancer_names(make_client):
    client = make_client(trusted_hosts="volunteers.example.org")
    by_address = {"Host": "10.0.0.5:8000"}
    assert client.get("/healthz", headers=by_address).status_code == 200
    assert client.get("/readyz", headers=by_address).status_code == 200
    assert client.get("/metrics", headers=by_address).status_code == 200  # from loopback
    assert client.get("/", headers=by_address).status_code == 400  # pages still refuse it
    assert client.get("/healthz/x", headers=by_address).status_code == 400


def test_every_reply_names_its_request(client, auth, work):
    charity, volunteer = auth.charity(), auth.volunteer()
    project = client.post("/api/v1/projects", headers=charity, json=PROJECT).json
    client.post(f"/api/v1/projects/{project['id']}/jobs", headers=charity,
                json={"items": [{"text": "a"}]})
    work()
    replies = [client.get("/healthz"), client.get("/no-such-page"),
               client.get("/api/v1/projects/999999"),
               # the volunteer's call, served by web.hot_path without Flask
               client.get(f"/api/v1/projects/{project['id']}/tasks/next", headers=volunteer)]
    assert [r.status_code for r in replies] == [200, 404, 404, 200]
    ids = [r.headers["X-Request-Id"] for r in replies]
    assert all(HEX_ID.match(rid) for rid in ids), ids
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(("given", "kept"), [
    ("4f1c2a9e-7d3b-4c8e-9a21-0b6f5e4d3c2b", True),  # a UUID
    ("0123456789abcdef0123456789abcdef", True),  # nginx's $request_id
    ("req:42.a_b", True),
    ("a" * 65, False),  # too long
    ("<script>", False),
    ("-starts-with-a-dash", False),
    ("has space", False),
])
def test_an_incoming_request_id_is_kept_only_when_short_and_safe(client, given, kept):
    reply = client.get("/healthz", headers={"X-Request-Id": given})
    echoed = reply.headers["X-Request-Id"]
    assert (echoed == given) is kept
    if not kept:
        assert HEX_ID.match(echoed)
