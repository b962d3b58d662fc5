"""GET /metrics: Prometheus's view of the site, and the request counts behind it.

Every request is counted by route, method and status, and timed by route
(RequestMetrics, WSGI middleware around the volunteer's hot path and Flask
alike). The route is the URL rule that served it, never the raw path
(`/api/v1/tasks/<int:task_id>/answers`, not `/api/v1/tasks/81/answers`), so
the number of series stays that of the routes; a path no rule matches counts
as `unmatched`, a method outside HTTP's usual ones as `other`. Flask notes its
rule in the environ as the request ends; web.hot_path notes the same rules
for the two calls it serves without Flask. Counting costs the hot path two
in-memory updates (a counter and a histogram), no Redis and no SQL.

Everything else /metrics says is read when Prometheus scrapes, by
web.engine_metrics: open tasks per project, queued jobs, the webhook
backlog, and background jobs' durations (recorded in Redis by the workers).

gunicorn runs several worker processes, each counting its own requests.
prometheus_client's multiprocess mode adds them up: gunicorn.conf.py names a
private folder in PROMETHEUS_MULTIPROC_DIR before the workers start, every
process writes its counts to files there, and a scrape, answered by whichever
worker, reads them all. Without that variable (tests, `bitesize run`) one
process's own registry is the answer.

Who may read it: the figures name projects and their volumes, so a request
needs `Authorization: Bearer <BITESIZE_METRICS_TOKEN>` when that is set, and
otherwise must come from loopback or a private network (Prometheus beside
the site; behind a proxy, BITESIZE_BEHIND_PROXY makes the address the
client's). Anyone else gets a 404, in the API's JSON error shape.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections.abc import Callable, Iterable
from time import perf_counter

from flask import Flask, Response, current_app, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from web.auth import token_from_header
from web.engine_metrics import EngineCollector
from web.errors import error_response

ROUTE_KEY = "bitesize.route"  # environ: the URL rule that served the request
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Seconds: the hot path's calls take a millisecond or two of CPU; an upload
# or an export may take seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
EXTENSION = "bitesize_metrics"
log = logging.getLogger(__name__)
PRIVATE_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))


def multiprocess_dir() -> str | None:
    """The folder gunicorn's workers share their counts through, if any."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class RequestMetrics:
    """WSGI middleware: counts and times every request by route, method and status."""

    def __init__(self, wsgi: Callable, registry: CollectorRegistry) -> None:
        self.wsgi = wsgi
        self.requests = Counter("bitesize_http_requests", "HTTP requests answered",
                                ("route", "method", "status"), registry=registry)
        self.latency = Histogram("bitesize_http_request_duration_seconds",
                                 "Time to answer a request, until its reply starts",
                                 ("route",), buckets=LATENCY_BUCKETS, registry=registry)
        # labels() takes a lock and builds a key each time; the children, once made,
        # are kept here (as many as routes x methods x statuses seen).
        self._counts: dict[tuple[str, str, str], Counter] = {}
        self._timers: dict[str, Histogram] = {}
        self._failed = False  # logged once

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = perf_counter()
        status = "500"  # if the app raises before it starts a reply

        def start(line: str, headers: list, exc_info=None):
            nonlocal status
            status = line[:3]
            return start_response(line, headers, exc_info)

        try:
            return self.wsgi(environ, start)
        finally:
            self.observe(environ.get(ROUTE_KEY, UNMATCHED), environ.get("REQUEST_METHOD", ""),
                         status, perf_counter() - started)

    def observe(self, route: str, method: str, status: str, seconds: float) -> None:
        """Count one request; a failure here (the multiprocess folder gone) costs
        the figure, never the reply."""
        try:
            self._observe(route, method, status, seconds)
        except Exception:
            if not self._failed:
                self._failed = True
                log.exception("a request could not be counted for /metrics (logged once)")

    def _observe(self, route: str, method: str, status: str, seconds: float) -> None:
        method = method if method in METHODS else "other"
        key = (route, method, status)
        count = self._counts.get(key)
        if count is None:
            count = self._counts[key] = self.requests.labels(*key)
        timer = self._timers.get(route)
        if timer is None:
            timer = self._timers[route] = self.latency.labels(route)
        count.inc()
        timer.observe(seconds)


def _note_route(_exc: BaseException | None = None) -> None:
    """Flask's side: the rule that matched, for RequestMetrics (nothing when none did)."""
    if request.url_rule is not None:
        request.environ[ROUTE_KEY] = request.url_rule.rule


def may_read(token: str) -> bool:
    """Whether this request may read the metrics (see the module's docstring)."""
    if token:
        given = token_from_header(request.headers.get("Authorization", ""))
        return given is not None and hmac.compare_digest(given.encode(), token.encode())
    return is_private_address(request.remote_addr)


def is_private_address(address: str | None) -> bool:
    """Loopback or a private network: RFC 1918's, or IPv6's unique local
    addresses (IPv4-mapped IPv6 read as IPv4). Python's own is_private also
    admits documentation and reserved ranges; these are the networks a
    deployment's Prometheus actually sits in."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or any(ip in network for network in PRIVATE_NETWORKS
                                 if network.version == ip.version)


def exposition(app: Flask) -> bytes:
    """The text Prometheus reads: every process's counts, and the engine's state now."""
    state = app.extensions[EXTENSION]
    if (folder := multiprocess_dir()) is None:
        return generate_latest(state["registry"])
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=folder)
    registry.register(state["engine"])
    return generate_latest(registry)


def metrics():
    if not may_read(current_app.extensions["bitesize"].settings.metrics_token):
        return error_response(404, "not_found", "there is nothing at this address")
    return Response(exposition(current_app), content_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})


def init_app(app: Flask) -> None:
    """The /metrics route, and the counting around the app as it stands (the hot
    path included): call after web.hot_path.init_app."""
    registry = CollectorRegistry()
    engine = EngineCollector(app.extensions["bitesize"])
    if multiprocess_dir() is None:
        registry.register(engine)
    app.extensions[EXTENSION] = {"registry": registry, "engine": engine}
    app.add_url_rule("/metrics", "metrics", metrics)
    app.teardown_request(_note_route)
    app.wsgi_app = RequestMetrics(app.wsgi_app, registry)
