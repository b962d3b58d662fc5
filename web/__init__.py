"""The HTTP door into the engine: API blueprints, volunteer pages, CLI.

`create_app` follows Flask's tutorial: defaults, then the environment
(BITESIZE_* via engine.config), then the test mapping; each part registers
itself with `init_app`. Nothing happens at import time.
"""
from __future__ import annotations

from typing import Any

from flask import Flask

from engine.config import Settings
from engine.services import Services


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app. test_config may hold SERVICES (a ready Services) or
    BITESIZE (overrides of engine settings) and any Flask settings."""
    test_config = dict(test_config or {})
    services = test_config.pop("SERVICES", None) or Services(
        Settings.from_env(test_config.pop("BITESIZE", None)))
    app = Flask(__name__, instance_path=str(services.settings.instance_path))
    app.config.from_mapping(
        SECRET_KEY=services.settings.secret_key,
        MAX_CONTENT_LENGTH=services.settings.max_upload_mb * 1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    app.config.update(test_config)
    app.extensions["bitesize"] = services

    from web import (
        api,
        body_limits,
        console,
        converters,
        errors,
        hot_path,
        i18n,
        log_format,
        metrics,
        operations,
        pages,
        rate_limits,
        request_ids,
        security_headers,
        templating,
    )

    log_format.init_app(app)
    body_limits.init_app(app)
    converters.init_app(app)
    errors.init_app(app)
    templating.init_app(app)
    i18n.init_app(app)
    api.init_app(app)
    console.init_app(app)  # after the API: it exempts the API's blueprint from CSRF
    pages.init_app(app)
    operations.init_app(app)
    rate_limits.init_app(app)
    hot_path.init_app(app)  # wraps the finished Flask app
    metrics.init_app(app)  # around the hot path: every request is counted
    # outside those: every reply (the hot path's too) has the headers and
    # ProxyFix, when configured, corrects the client's address before anyone reads it
    security_headers.init_app(app)
    request_ids.init_app(app)  # outermost: every reply, the Host check's 400 too, names its id
    return app

