"""Log records as text (the default) or as one JSON object per line.

BITESIZE_LOG_FORMAT=json is for deployments whose logs go to a collector
(Loki, CloudWatch, journald with jq): every record is one line holding
`time` (UTC, ISO 8601), `level`, `logger` and `message`, `request_id` when
the record was made while serving a request (web.request_ids: the id the
reply's X-Request-Id header gave the client, so one request's lines can be
found from what a volunteer or a charity quotes), and `exception` with its
traceback when there is one. A message's own newlines stay inside the JSON
string, so a traceback never splits into lines a collector reads as records.

Every bitesize process builds its app with web.create_app, which calls
init_app: gunicorn's workers, `bitesize run`, and `bitesize worker` (the CLI
builds the app before it starts the RQ worker), so this one switch covers the
web's and the workers' records alike. In JSON mode the root logger gets a
handler on stderr (one only, however many apps a process builds); Flask's own
text handler leaves the app's logger, which would otherwise write each of its
records twice; RQ's worker finds the root handler and adds none of its own.
gunicorn's own lines (workers booting, timing out; the access log) follow
through gunicorn.conf.py's JsonLogger. Text mode changes nothing.
"""
from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from flask import Flask
from flask.logging import default_handler

from web.request_ids import current

FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (request_id := current.get()) is not None:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def log_format(setting: str) -> str:
    """The format a BITESIZE_LOG_FORMAT value names; ValueError, at start-up, for others."""
    name = setting.strip().lower() or "text"
    if name not in FORMATS:
        raise ValueError(f"BITESIZE_LOG_FORMAT must be text or json, not {setting!r}")
    return name


def use_json(logger: logging.Logger | None = None) -> logging.Handler:
    """Make `logger` (the root logger) write JSON lines to stderr; idempotent."""
    logger = logger or logging.getLogger()
    for handler in logger.handlers:
        if isinstance(handler.formatter, JsonFormatter):
            return handler
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    return handler


def init_app(app: Flask) -> None:
    if log_format(app.extensions["bitesize"].settings.log_format) == "json":
        use_json()
        app.logger.removeHandler(default_handler)
