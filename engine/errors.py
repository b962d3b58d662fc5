"""The engine's exceptions: one class per kind of failure, all named ...Error.

web/ maps each class to one HTTP status in one place (web/errors.py); workers
log them. Each carries a stable ``code`` for clients and, where a field of the
request is to blame, ``fields`` mapping field paths to messages.
"""
from __future__ import annotations

from typing import Any


class BitesizeError(Exception):
    """Base of every error the engine raises on purpose."""

    code = "error"

    def __init__(self, message: str, fields: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class InvalidError(BitesizeError):
    """The input is well-formed but not acceptable (maps to 422)."""

    code = "invalid"


class BadRequestError(BitesizeError):
    """The request itself is malformed: not JSON, wrong content type (400)."""

    code = "bad_request"


class AuthenticationError(BitesizeError):
    """No token, or a token that matches nobody (401)."""

    code = "unauthenticated"


class PermissionDeniedError(BitesizeError):
    """A known caller asking for something that is not theirs (403)."""

    code = "forbidden"


class NotFoundError(BitesizeError):
    """The thing named in the request does not exist, or is hidden (404)."""

    code = "not_found"


class ConflictError(BitesizeError):
    """The request clashes with stored state, e.g. a second answer (409)."""

    code = "conflict"


class GoneError(BitesizeError):
    """The thing existed but is no longer usable, e.g. an unknown lease (410)."""

    code = "gone"


class UnavailableError(BitesizeError):
    """A part the engine relies on is not ready; retrying shortly will work (503,
    with Retry-After: retry_after seconds)."""

    code = "unavailable"
    retry_after = 1


class TooLargeError(BitesizeError):
    """An upload or an archive member is over its size limit (413)."""

    code = "too_large"


class TooManyRequestsError(BitesizeError):
    """Too many attempts in a short time, e.g. failed sign-ins; wait and retry (429)."""

    code = "too_many_requests"

    def __init__(self, message: str, retry_after: int, fields: dict[str, Any] | None = None):
        super().__init__(message, fields)
        self.retry_after = retry_after
