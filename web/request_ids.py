"""A request id on every request, to find one request's log lines and to quote in a report.

The id is the incoming X-Request-Id when it is a short, safe token (a proxy or
load balancer made it, e.g. nginx's $request_id: its log and ours then share
the id), else a new random one; anything longer or with other characters is
replaced, so an id never carries text into a log line or a header that the
client chose freely. It goes back as the X-Request-Id response header on every
reply, kept in environ["bitesize.request_id"] for the code that answers, and
in a context variable that web.log_format writes into every log record made
while the request is served.

WSGI middleware around everything else (web.create_app adds it last), so the
volunteer's hot path (web.hot_path), which never enters Flask, and the Host
check's 400 carry the header too.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from contextvars import ContextVar

from flask import Flask

HEADER = "X-Request-Id"
ENVIRON_KEY = "bitesize.request_id"
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}\Z")  # a UUID, nginx's 32 hex digits...

# The id of the request this thread is serving, else None (a worker, the CLI).
current: ContextVar[str | None] = ContextVar("bitesize_request_id", default=None)


def request_id(environ: dict) -> str:
    """The incoming id if it is safe to keep, else a new one (32 hex digits)."""
    given = environ.get("HTTP_X_REQUEST_ID")
    if given and _SAFE.match(given):
        return given
    return os.urandom(16).hex()


class RequestIds:
    """WSGI middleware: an id per request, in the environ, the logs and the reply."""

    def __init__(self, wsgi: Callable) -> None:
        self.wsgi = wsgi

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        rid = environ[ENVIRON_KEY] = request_id(environ)

        def start(status: str, headers: list, exc_info=None):
            return start_response(status, [*headers, (HEADER, rid)], exc_info)

        token = current.set(rid)
        try:
            return self.wsgi(environ, start)
        finally:
            current.reset(token)


def init_app(app: Flask) -> None:
    """Wrap the finished app (outermost: create_app calls this last)."""
    app.wsgi_app = RequestIds(app.wsgi_app)
