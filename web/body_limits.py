"""How big a request body may be: BITESIZE_MAX_UPLOAD_MB for the two routes that
take uploads, BITESIZE_MAX_BODY_KB for every other.

Every body but an upload's is a form or a small JSON document (an answer, a
sign-up, a project's settings), and Flask reads it whole before it is judged.
With the upload limit everywhere, a security review posted 45 MB of JSON to
the anonymous sign-up (`POST /api/v1/volunteers`): the worker took 6 s to refuse
it and grew from 690 MB to 1.3 GB; a few such requests at once could exhaust
the machine's memory. The smaller limit is set before anything reads the body
(this app's first before_request), so a larger one gets a 413 as soon as its
Content-Length is seen. The volunteer's hot path (web.hot_path) checks the
same limit itself.
"""
from __future__ import annotations

from flask import Flask, current_app, request

# The views whose requests carry files: a job's upload (API) and the console's
# uploads page. Their limit stays Flask's MAX_CONTENT_LENGTH.
UPLOAD_ENDPOINTS = frozenset({"api.create_job_", "console.upload"})
CONFIG_KEY = "BITESIZE_MAX_BODY"  # bytes, in the app's config


def body_limit(app: Flask) -> int:
    """The largest body, in bytes, of a request that is not an upload (never more
    than an upload's)."""
    uploads = app.config.get("MAX_CONTENT_LENGTH")
    return app.config[CONFIG_KEY] if uploads is None else min(app.config[CONFIG_KEY], uploads)


def _limit_body() -> None:
    if request.endpoint not in UPLOAD_ENDPOINTS:
        request.max_content_length = body_limit(current_app)


def init_app(app: Flask) -> None:
    app.config.setdefault(CONFIG_KEY, app.extensions["bitesize"].settings.max_body_kb * 1024)
    # first of all before_request functions: CSRF protection reads the form in its own
    app.before_request_funcs.setdefault(None, []).insert(0, _limit_body)
