"""gunicorn's settings for bitesize: the Procfile's `web` line uses this file
(gunicorn also reads ./gunicorn.conf.py by itself when started here, as the
demo is).

Why threads: a sync worker serves one connection at a time, so a client that
opens a connection and sends nothing (or sends its body slowly) holds a whole
worker; two such clients took down a 2-worker site. The gthread worker waits
for a request's first bytes in its main loop, not in a thread, so idle
connections cost no thread, and kept-alive connections are watched the same
way and closed after `keepalive` seconds.

What threads alone do not bound is a client that sends its headers or body a
byte at a time: that holds one thread while it lasts. `pre_request` gives the
request's socket a timeout (WEB_CLIENT_TIMEOUT seconds without progress), so
a stalled body ends in a 400 and frees its thread; but it runs once the
headers are read, and headers sent a byte at a time are bounded by nothing
here (16 such connections stopped a 2 x 4 site for a minute in a security
review). A site on the open internet needs a buffering reverse proxy in front
(docs/nginx.conf.example): it reads whole requests before gunicorn sees them.

Environment (all optional): PORT (5000), WEB_CONCURRENCY (workers, 2),
WEB_THREADS (threads per worker, 4), WEB_TIMEOUT (30), WEB_CLIENT_TIMEOUT (30),
FORWARDED_ALLOW_IPS (127.0.0.1: the addresses of the proxy whose
X-Forwarded-Proto gunicorn believes; "*" only when nothing else can reach the
port).

Metrics: each worker counts its own requests; /metrics, answered by any one
worker, adds up all of them (web.metrics) through prometheus_client's
multiprocess mode. It needs PROMETHEUS_MULTIPROC_DIR set before the workers
import the app, so this file sets it, when the environment does not, to a new
private folder (removed when gunicorn stops); `child_exit` tells
prometheus_client that a worker is gone. A folder given in the environment
must be emptied before each start, as prometheus_client asks.

BITESIZE_LOG_FORMAT=json makes gunicorn's own lines (workers booting, timing
out, the access log) JSON too, as the app's are (web.log_format).
"""
import os
import shutil
import tempfile

from gunicorn.glogging import Logger

bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
# 4: the volunteer's calls are CPU-bound Python; more threads per worker only
# queue on the GIL (bench/dispatch.py, quiet machine: volunteer cycles/s 561
# with 4 threads, 576 with 2, 430 with 8, 496 on sync workers).
threads = int(os.environ.get("WEB_THREADS", "4"))

# A worker that stops answering its arbiter for this long is restarted.
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 2  # seconds an idle kept-alive connection is kept

# What a request line and its headers may be: enough for every real client.
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190

# Only the proxy (on this machine by default) may say the request came over
# HTTPS; the app's ProxyFix (BITESIZE_BEHIND_PROXY) reads X-Forwarded-For.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

CLIENT_TIMEOUT = float(os.environ.get("WEB_CLIENT_TIMEOUT", "30"))


def pre_request(worker, req):
    """Bound every wait on this request's socket (reading the body, sending the
    reply) to CLIENT_TIMEOUT seconds without progress; gthread resets it to
    blocking for the connection's next request."""
    sock = getattr(getattr(req, "unreader", None), "sock", None)
    if sock is not None and hasattr(sock, "settimeout"):
        sock.settimeout(CLIENT_TIMEOUT)


# Made here, in the arbiter, so every worker inherits it (see the docstring);
# which folder is ours is kept in the environment too, since a reload (HUP)
# reads this file again. A binary upgrade (USR2) starts from gunicorn's
# original environment, so the new arbiter makes a folder of its own.
_MADE = "_BITESIZE_OWN_METRICS_DIR"
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ[_MADE] = tempfile.mkdtemp(
        prefix="bitesize-metrics-")  # mode 0700


def child_exit(server, worker):
    """A worker ended: its counts stay (they are totals), its live gauges go."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """gunicorn stops: the folder goes, if this file made it."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder and folder == os.environ.get(_MADE):
        shutil.rmtree(folder, ignore_errors=True)


class JsonLogger(Logger):
    """gunicorn's logger, its lines written as web.log_format writes the app's."""

    def setup(self, cfg):
        super().setup(cfg)
        from web.log_format import JsonFormatter

        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(JsonFormatter())


if os.environ.get("BITESIZE_LOG_FORMAT", "").strip().lower() == "json":
    logger_class = JsonLogger
