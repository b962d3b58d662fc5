"""The two calls of every task, served without Flask's request machinery.

A volunteer makes two calls per task, GET .../tasks/next and POST
.../answers, and at peak load they are nearly all the traffic. Flask's
per-request machinery (request context, URL map, context-local proxies, a
Response object) cost about as much CPU as the engine's own work on them:
driving the app's WSGI callable in one process, a cycle (next + answer) took
about 1.0 ms of CPU through Flask and 0.75 ms through this path;
bench/dispatch.py part (b) measures the whole cycle over HTTP.

HotPath is WSGI middleware in front of the Flask app. It serves exactly
these two calls with the same functions as the Flask views (next_reply,
answer_reply), the same body parsing and schema, the same JSON provider,
the same error shapes (web.errors.describe) and the same rate limits
(web.rate_limits: an answer is counted by its own submit script, a next
not at all; a bad token counts against its address as in web.auth). Anything it does not take at a
glance goes to Flask unchanged, before anything is read or done: other
routes and methods, a query string, a body that is not plainly JSON with a
length under the upload limit, an id a row cannot have. So Flask still
answers those cases as it always has, and its views stay the reference.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from http import HTTPStatus
from typing import Any

from flask import Flask

from engine.dispatch.failover import check_master_before_auth
from engine.errors import AuthenticationError, BadRequestError
from engine.identity import authenticate
from web.api.schemas import load_object, parse_json
from web.api.tasks import ANSWER_CREATE, answer_reply, next_reply
from web.auth import token_from_header
from web.body_limits import body_limit
from web.converters import MAX_ID
from web.errors import describe, error_body, error_headers, unexpected
from web.metrics import ROUTE_KEY
from web.rate_limits import RateLimitedError, auth_failure_checks, limiter_of

# Ids as the int converter reads them, without leading zeros or signs; any
# other spelling is Flask's to judge.
_NEXT = re.compile(r"/api/v1/projects/([1-9][0-9]{0,9})/tasks/next\Z")
_ANSWERS = re.compile(r"/api/v1/tasks/([1-9][0-9]{0,9})/answers\Z")
# The Flask rules of the same two calls: web.metrics counts requests by rule.
_NEXT_RULE = "/api/v1/projects/<int:project_id>/tasks/next"
_ANSWERS_RULE = "/api/v1/tasks/<int:task_id>/answers"

StartResponse = Callable[..., Any]
Reply = tuple[int, "dict | None", list[tuple[str, str]]]  # status, body, extra headers


class HotPath:
    """WSGI middleware: the volunteer's next and answer calls, else the Flask app."""

    def __init__(self, app: Flask, flask_wsgi: Callable) -> None:
        self.app = app
        self.flask_wsgi = flask_wsgi
        self.services = app.extensions["bitesize"]
        self.limiter = limiter_of(app)  # None when rate limits are off
        self.served = 0  # calls answered here rather than by Flask; tests read it

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        call = self._route(environ)
        if call is None:
            return self.flask_wsgi(environ, start_response)
        self.served += 1
        try:
            status, body, headers = call()
        except Exception as exc:  # every error leaves as JSON, as Flask's handlers do
            status, code, message, fields = describe(exc) or (
                *unexpected(self.app, environ["REQUEST_METHOD"], environ["PATH_INFO"]), None)
            head = error_headers(status, exc)  # Retry-After: lease cap, limits, Redis down
            if isinstance(exc, RateLimitedError):  # and which limit, how much is left
                head += [h for h in exc.headers() if h[0] != "Retry-After"]
            return self._reply(start_response, status, error_body(code, message, fields), head)
        return self._reply(start_response, status, body, headers)

    def _route(self, environ: dict) -> Callable[[], Reply] | None:
        """The call to make for a request this path serves, else None (Flask's)."""
        if environ.get("QUERY_STRING"):
            return None
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if method == "GET" and (project_id := _row_id(_NEXT, path)):
            environ[ROUTE_KEY] = _NEXT_RULE
            return lambda: self._next(environ, project_id)
        if method == "POST" and (task_id := _row_id(_ANSWERS, path)):
            length = _plain_json_length(environ)  # a longer body: Flask's 413 (web.body_limits)
            if length is not None and length <= body_limit(self.app):
                environ[ROUTE_KEY] = _ANSWERS_RULE
                return lambda: self._answer(environ, task_id, length)
        return None

    def _next(self, environ: dict, project_id: int) -> Reply:
        reply = next_reply(self.services, self._volunteer(environ), project_id, 1)
        return (204, None, []) if reply is None else (200, reply, [])

    def _answer(self, environ: dict, task_id: int, length: int) -> Reply:
        caller = self._volunteer(environ)  # 401/403 before the body is judged
        # a 429 here if this process saw the volunteer's answer window fill;
        # else the answer's submit counts it (no Redis call of its own)
        tally = self.limiter.answer_tally(caller.id) if self.limiter else None
        with tally.counting_refusals() if tally else nullcontext():
            data = load_object(ANSWER_CREATE, parse_json(_read_body(environ, length)))
            reply = answer_reply(self.services, caller, task_id, data, tally)
        return 201, reply, tally.verdict.headers() if tally and tally.verdict else []

    def _volunteer(self, environ: dict):
        token = token_from_header(environ.get("HTTP_AUTHORIZATION", ""))
        check_master_before_auth(self.services)
        try:
            caller = authenticate(self.services, token)
        except AuthenticationError:
            if token is not None and self.limiter:  # as web.auth counts them
                self.limiter.check(*auth_failure_checks(environ.get("REMOTE_ADDR") or "unknown"))
            raise
        return caller.require_volunteer()

    def _reply(self, start_response: StartResponse, status: int, body: dict | None,
               headers: list[tuple[str, str]] | None = None) -> list[bytes]:
        """As Flask's jsonify would answer: the app's JSON provider, a final newline."""
        data = b"" if body is None else (self.app.json.dumps(body) + "\n").encode()
        head = [("Content-Length", str(len(data)))]
        if body is not None:
            head.insert(0, ("Content-Type", "application/json"))
        start_response(_STATUS_LINES[status], head + (headers or []))
        return [data]


def _row_id(pattern: re.Pattern, path: str) -> int | None:
    """The id a route's pattern reads in the path, if a row can have it."""
    found = pattern.match(path)
    number = int(found[1]) if found else 0
    return number if 0 < number <= MAX_ID else None


def _plain_json_length(environ: dict) -> int | None:
    """The declared length of a body sent as application/json, else None."""
    mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    length = environ.get("CONTENT_LENGTH", "")
    if mimetype != "application/json" or not length.isdigit():
        return None
    return int(length)


def _read_body(environ: dict, length: int) -> bytes:
    """The body's declared bytes; a 400, as from Flask, when the client sent fewer."""
    try:
        data = environ["wsgi.input"].read(length)
    except OSError as exc:  # gunicorn's NoMoreData on a client that hung up
        raise BadRequestError("the body ended before its declared length",
                              {"body": "incomplete"}) from exc
    if len(data) != length:
        raise BadRequestError("the body ended before its declared length",
                              {"body": "incomplete"})
    return data


_STATUS_LINES = {status.value: f"{status.value} {status.phrase.upper()}" for status in HTTPStatus}


def init_app(app: Flask) -> None:
    """Wrap the Flask app; tests find the HotPath in app.extensions["hot_path"]
    (other layers, web.security_headers, wrap it in turn)."""
    app.extensions["hot_path"] = app.wsgi_app = HotPath(app, app.wsgi_app)
