"""Every error leaves as JSON: {"error": {"code", "message", "fields"}}.

This is the one place where engine exceptions become HTTP status codes.
Anything unexpected is logged and answered with a JSON 500, and the
process keeps serving.
"""
from __future__ import annotations

import redis
from flask import Flask, jsonify, make_response, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from engine import errors as e
from engine.store.redis_server import REDIS_DOWN
from task_types import TaskTypeError, UnknownTaskTypeError

# Redis down or failing over: a failover takes seconds, a restart a little more.
REDIS_RETRY_AFTER = 5

STATUS = {
    e.BadRequestError: 400,
    e.AuthenticationError: 401,
    e.PermissionDeniedError: 403,
    e.NotFoundError: 404,
    e.ConflictError: 409,
    e.GoneError: 410,
    e.TooLargeError: 413,
    e.InvalidError: 422,
    e.TooManyRequestsError: 429,
    e.UnavailableError: 503,
}


def error_response(status: int, code: str, message: str, fields: dict | None = None,
                   exc: Exception | None = None):
    response = jsonify(error_body(code, message, fields))
    response.status_code = status
    response.headers.extend(error_headers(status, exc))
    return response


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    """The one shape of every API error."""
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def error_headers(status: int, exc: Exception | None = None) -> list[tuple[str, str]]:
    """What HTTP asks to go with some statuses: the scheme to use after a 401,
    when to try again after a 429 or 503 (the error's own wait, else 1 s)."""
    if status == 401:
        return [("WWW-Authenticate", 'Bearer realm="bitesize"')]
    seconds = retry_after(exc) if exc is not None else None
    if seconds is None and status == 503:
        seconds = 1
    return [] if seconds is None else [("Retry-After", str(seconds))]


def wants_page() -> bool:
    """Pages (the console, the volunteer pages) get a branded HTML error page;
    the API always answers JSON."""
    return not request.path.startswith("/api/")


PAGE_TITLES = {400: _l("That request could not be used"), 403: _l("Not yours to open"),
               404: _l("Page not found"), 405: _l("That cannot be done here"),
               410: _l("No longer there"), 413: _l("Too large"),
               422: _l("That cannot be used"), 429: _l("Too many tries"),
               500: _l("Something went wrong on our side"), 503: _l("Back in a moment")}
# What the volunteer pages say instead of the framework's own English
# explanations (the console keeps the specific message).
PAGE_MESSAGES = {404: _l("There is nothing at this address: the project may have closed, "
                         "or the link may be mistyped."),
                 405: _l("This page cannot be used that way."),
                 429: _l("Please wait a moment, then try again."),
                 500: _l("The error is logged. Please try again in a moment."),
                 503: _l("Tasks are resting for a moment: back in a moment.")}


def error_page(status: int, message: str):
    """A branded error page with a way back; the console's look under /console,
    the volunteer pages' language elsewhere (web.i18n)."""
    title = PAGE_TITLES.get(status, _l("Something went wrong"))
    if request.path.startswith("/console"):
        return render_template("console/error.html", status=status, title=title,
                               message=message), status
    return render_template("error.html", status=status, title=title,
                           message=PAGE_MESSAGES.get(status, message)), status


def describe(exc: Exception) -> tuple[int, str, str, dict | None] | None:
    """(status, code, message, fields) of an error the API explains to its caller,
    or None for one it does not expect (a 500). Shared by Flask's handlers and
    web.hot_path, so both answer an error alike."""
    if isinstance(exc, e.BitesizeError):
        return _status_of(exc), exc.code, exc.message, exc.fields
    if isinstance(exc, ValidationError):
        return 422, "invalid", "the request is not valid", exc.messages
    if isinstance(exc, UnknownTaskTypeError):
        return 422, "invalid", exc.message, {"task_type": exc.message}
    if isinstance(exc, TaskTypeError):
        return 422, "invalid", exc.message, exc.fields
    if isinstance(exc, REDIS_DOWN):  # down, restarting, or a failover under way
        return 503, "unavailable", "tasks are resting for a moment; try again shortly", None
    return None


def retry_after(exc: Exception) -> int | None:
    """The seconds a 429 or 503 tells its client to wait (Retry-After)."""
    if isinstance(exc, e.TooManyRequestsError | e.UnavailableError):
        return exc.retry_after
    if isinstance(exc, REDIS_DOWN):
        return REDIS_RETRY_AFTER
    return None


def _status_of(exc: e.BitesizeError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def init_app(app: Flask) -> None:
    @app.errorhandler(e.BitesizeError)
    @app.errorhandler(ValidationError)
    @app.errorhandler(TaskTypeError)
    @app.errorhandler(redis.exceptions.ConnectionError)
    @app.errorhandler(redis.exceptions.TimeoutError)
    def _explained(exc: Exception):
        status, code, message, fields = describe(exc)
        if isinstance(exc, REDIS_DOWN):
            app.logger.warning("Redis unreachable on %s %s: %s", request.method,
                               request.path, exc)
        if not wants_page():
            return error_response(status, code, message, fields, exc)
        response = make_response(error_page(status, message))
        if (seconds := retry_after(exc)) is not None:
            response.headers["Retry-After"] = str(seconds)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if isinstance(exc, CSRFError):
            return error_page(400, "This form has expired or did not come from this site. "
                              "Go back, reload the page and try again.")
        if wants_page():
            return error_page(exc.code or 500, exc.description or exc.name)
        code = (exc.name or "error").lower().replace(" ", "_")
        response = error_response(exc.code or 500, code, exc.description or exc.name)
        for name, value in exc.get_headers():  # e.g. Allow on a 405, as HTTP requires
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        status, code, message = unexpected(app, request.method, request.path)
        if wants_page():
            return error_page(status, "The error is logged. Please try again in a moment.")
        return error_response(status, code, message)


def unexpected(app: Flask, method: str, path: str) -> tuple[int, str, str]:
    """Log the exception being handled, with its traceback; the 500 to answer."""
    app.logger.exception("unexpected error on %s %s", method, path)
    return 500, "internal", "something went wrong on our side"
