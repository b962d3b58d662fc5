"""The probes a load balancer or an orchestrator asks: is this process up, can it serve?

GET /healthz says the process answers HTTP, and nothing else: it touches
neither the database nor Redis, so a liveness probe never restarts a web
process because a shared service is down (restarting would not bring it back).

GET /readyz says whether this process can serve volunteers now: the database
answers a `SELECT 1`, Redis answers a PING, and the schema is at the newest
migration (engine.store.migrate.is_current, so a node started with new code
before `bitesize db upgrade` ran is kept out of rotation). 200 lists every
check as "ok"; 503 names the failing ones with a short reason ("unreachable",
"timed out", "behind the code: run `bitesize db upgrade`"), never an
exception's text, which may hold a host name or a connection string (the
reason is logged, once per change, for whoever runs the site).

Each check runs in a thread of its own and the probe waits for it at most
CHECK_SECONDS, so a Redis or database that hangs answers the probe with a
503 in about a second rather than holding it for the clients' own timeouts
(Redis's read timeout, a TCP connect to a host that vanished). A check still
hanging when the next probe comes is waited on again, never started twice,
so a long outage holds at most one thread per check.

Both are public (no token), never rate limited, and cheap: /readyz costs two
queries and a PING (the migration scripts' heads are read once per process).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as WaitTimeout
from time import monotonic

import redis
from flask import Flask, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from engine.services import Services
from engine.store import migrate
from engine.store.redis_server import ping_all

CHECK_SECONDS = 1.0
EXTENSION = "bitesize_readiness"
NO_STORE = {"Cache-Control": "no-store"}
log = logging.getLogger(__name__)


class NotReady(Exception):
    """A check's failure, with the short reason the probe may show."""


def database(svc: Services) -> None:
    with svc.db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def redis_ping(svc: Services) -> None:
    ping_all(svc.redis)


def migrations(svc: Services) -> None:
    if not migrate.is_current(svc.db):
        raise NotReady("behind the code: run `bitesize db upgrade`")


CHECKS: dict[str, Callable[[Services], None]] = {
    "database": database, "redis": redis_ping, "migrations": migrations}


def reason(exc: BaseException) -> str:
    """What the probe says about a failure: a fixed phrase, never the error's text."""
    if isinstance(exc, NotReady):
        return str(exc)
    if isinstance(exc, (WaitTimeout, redis.TimeoutError)):
        return "timed out"
    if isinstance(exc, (redis.ConnectionError, SQLAlchemyError, OSError)):
        return "unreachable"
    return f"failed ({type(exc).__name__})"


class Readiness:
    """The checks of one app, each in its own thread, each bounded in time."""

    def __init__(self, svc: Services, checks: dict[str, Callable[[Services], None]] = CHECKS,
                 seconds: float = CHECK_SECONDS) -> None:
        self.services = svc
        self.checks = checks
        self.seconds = seconds
        self._pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="readyz")
        self._running: dict[str, Future] = {}
        self._lock = threading.Lock()
        self._last: dict[str, str] = {}  # what each check said last, to log changes only

    def _start(self, name: str) -> Future:
        with self._lock:
            running = self._running.get(name)
            if running is None or running.done():
                running = self._running[name] = self._pool.submit(
                    self.checks[name], self.services)
            return running

    def run(self) -> dict[str, str]:
        """{check: "ok" or its reason}, within about `seconds` however the checks fare."""
        started = {name: self._start(name) for name in self.checks}
        deadline = monotonic() + self.seconds
        said = {}
        for name, future in started.items():
            try:
                future.result(timeout=max(0.0, deadline - monotonic()))
                said[name] = "ok"
            except Exception as exc:  # a probe answers, whatever happened
                said[name] = reason(exc)
                if self._last.get(name) != said[name]:
                    log.warning("not ready: %s %s (%r)", name, said[name], exc)
            else:
                if self._last.get(name, "ok") != "ok":
                    log.warning("ready again: %s", name)
        self._last = said
        return said


def healthz():
    return jsonify(status="ok"), 200, NO_STORE


def readyz():
    checks = current_app.extensions[EXTENSION].run()
    ready = all(said == "ok" for said in checks.values())
    body = {"status": "ready" if ready else "unready", "checks": checks}
    headers = NO_STORE if ready else {**NO_STORE, "Retry-After": "5"}
    return jsonify(body), 200 if ready else 503, headers


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = Readiness(app.extensions["bitesize"])
    app.add_url_rule("/healthz", "healthz", healthz)
    app.add_url_rule("/readyz", "readyz", readyz)
