"""The JSON API, v1: the contract of DESIGN.md's API table."""
from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def init_app(app: Flask) -> None:
    from web.api import jobs, openapi, projects, review, tasks, volunteers, webhooks  # noqa: F401

    app.register_blueprint(bp)
    openapi.init_app(app)
