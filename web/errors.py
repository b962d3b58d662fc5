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
    response = jsonify({"error": {"code": code, "message": message, "fields": fields or {}}})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="bitesize"'
    if status == 503:
        response.headers["Retry-After"] = "1"
    return response


def _status_of(exc: e.BitesizeError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def init_app(app: Flask) -> None:
    @app.errorhandler(e.BitesizeError)
    def _engine_error(exc: e.BitesizeError):
        return error_response(_status_of(exc), exc.code, exc.message, exc.fields)

    @app.errorhandler(ValidationError)
    def _validation_error(exc: ValidationError):
        return error_response(422, "invalid", "the request is not valid", exc.messages)

    @app.errorhandler(UnknownTaskTypeError)
    def _unknown_type(exc: UnknownTaskTypeError):
        return error_response(422, "invalid", exc.message, {"task_type": exc.message})

    @app.errorhandler(TaskTypeError)
    def _task_type_error(exc: TaskTypeError):
        return error_response(422, "invalid", exc.message, exc.fields)

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
        app.logger.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(500, "internal", "something went wrong on our side")
