"""Every error leaves as JSON: {"error": {"code", "message", "fields"}}.

This is the one place where engine exceptions become HTTP status codes.
Anything unexpected is logged and answered with a JSON 500, and the
process keeps serving.
"""
from __future__ import annotations

from flask import Flask, jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from engine import errors as e
from task_types import TaskTypeError, UnknownTaskTypeError

STATUS = {
    e.BadRequestError: 400,
    e.AuthenticationError: 401,
    e.PermissionDeniedError: 403,
    e.NotFoundError: 404,
    e.ConflictError: 409,
    e.GoneError: 410,
    e.TooLargeError: 413,
    e.InvalidError: 422,
    e.UnavailableError: 503,
}


def error_response(status: int, code: str, message: str, fields: dict | None = None):
    response = jsonify(error_body(code, message, fields))
    response.status_code = status
    response.headers.extend(error_headers(status))
    return response


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    """The one shape of every API error."""
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def error_headers(status: int) -> list[tuple[str, str]]:
    """What HTTP asks to go with some statuses: the scheme to use after a 401,
    when to try again after a 503."""
    if status == 401:
        return [("WWW-Authenticate", 'Bearer realm="bitesize"')]
    if status == 503:
        return [("Retry-After", "1")]
    return []


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
    def _explained(exc: Exception):
        return error_response(*describe(exc))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if not request.path.startswith("/api/"):
            return exc
        code = (exc.name or "error").lower().replace(" ", "_")
        response = error_response(exc.code or 500, code, exc.description or exc.name)
        for name, value in exc.get_headers():  # e.g. Allow on a 405, as HTTP requires
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        return error_response(*unexpected(app, request.method, request.path))


def unexpected(app: Flask, method: str, path: str) -> tuple[int, str, str]:
    """Log the exception being handled, with its traceback; the 500 to answer."""
    app.logger.exception("unexpected error on %s %s", method, path)
    return 500, "internal", "something went wrong on our side"
