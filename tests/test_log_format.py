"""Issue 17.5: BITESIZE_LOG_FORMAT=json makes the web's and the workers' log records
one JSON object per line, naming the request they were made in (README:
Configuration, Operations). Text, the default, changes nothing."""
from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from engine.services import Services
from web import create_app
from web.log_format import JsonFormatter
from web.request_ids import current

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def root_handlers():
    """Whatever a test adds to the root logger (and takes from the app's), put back."""
    root, app_logger = logging.getLogger(), logging.getLogger("web")
    before, app_before = list(root.handlers), list(app_logger.handlers)
    yield root
    root.handlers[:] = before
    app_logger.handlers[:] = app_before


def record(message: str, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("engine.example", logging.WARNING, __file__, 1, message,
                             (), exc_info)


def test_a_record_is_one_json_line_with_its_request():
    token = current.set("req-7")
    try:
        line = JsonFormatter().format(record("two\nlines"))
    finally:
        current.reset(token)
    assert "\n" not in line
    entry = json.loads(line)
    assert set(entry) == {"time", "level", "logger", "message", "request_id"}
    assert (entry["level"], entry["logger"], entry["message"], entry["request_id"]) == (
        "WARNING", "engine.example", "two\nlines", "req-7")
    assert entry["time"].endswith("+00:00") and "T" in entry["time"]


def test_outside_a_request_there_is_no_request_id_and_a_traceback_stays_inside():
    try:
        raise RuntimeError("broken")
    except RuntimeError:
        line = JsonFormatter().format(record("failed", sys.exc_info()))
    entry = json.loads(line)
    assert "request_id" not in entry
    assert "Traceback" in entry["exception"] and "RuntimeError: broken" in entry["exception"]


def test_json_mode_logs_a_failing_request_under_its_id(settings, registry, root_handlers):
    svc = Services(replace(settings, log_format="json"), registry)
    try:
        app = create_app({"SERVICES": svc, "TESTING": False})
        app.add_url_rule("/boom", "boom", lambda: 1 / 0)
        create_app({"SERVICES": svc, "TESTING": False})  # a second app adds no second handler
        ours = [h for h in root_handlers.handlers if isinstance(h.formatter, JsonFormatter)]
        assert len(ours) == 1
        stream = io.StringIO()
        ours[0].setStream(stream)
        reply = app.test_client().get("/boom", headers={"X-Request-Id": "probe-42"})
        assert reply.status_code == 500 and reply.headers["X-Request-Id"] == "probe-42"
    finally:
        svc.close()
    lines = stream.getvalue().splitlines()
    entries = [json.loads(line) for line in lines]  # every line is JSON
    (failure,) = [e for e in entries if e["message"].startswith("unexpected error")]
    assert failure["request_id"] == "probe-42" and failure["level"] == "ERROR"
    assert failure["logger"] == "web" and "ZeroDivisionError" in failure["exception"]


def test_text_mode_changes_nothing(app, root_handlers):
    assert not any(isinstance(h.formatter, JsonFormatter) for h in root_handlers.handlers)


def test_an_unknown_format_stops_the_app_at_start_up(settings, registry):
    svc = Services(replace(settings, log_format="xml"), registry)
    try:
        with pytest.raises(ValueError, match="BITESIZE_LOG_FORMAT"):
            create_app({"SERVICES": svc})
    finally:
        svc.close()


def test_the_workers_records_are_json_too(settings, services):
    """`bitesize worker`, as the Procfile runs it: a job that fails is logged by RQ
    through the root handler, as JSON."""
    services.queue("low").enqueue("workers.jobs.send_project_news", 987654)  # no such news
    env = {**os.environ, "BITESIZE_LOG_FORMAT": "json",
           "BITESIZE_INSTANCE_PATH": str(settings.instance_path),
           "BITESIZE_DATABASE_URL": settings.database_url,
           "BITESIZE_REDIS_URL": settings.redis_url,
           "BITESIZE_SECRET_KEY": settings.secret_key}
    done = subprocess.run([sys.executable, "-m", "web.cli", "worker", "--burst"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert lines, "the failing job was not logged"
    entries = [json.loads(line) for line in lines]
    failed = [e for e in entries if e["level"] == "ERROR" and e["logger"].startswith("rq.")]
    assert failed and "AttributeError" in json.dumps(failed)
