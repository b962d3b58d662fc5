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
a stalled body ends in a 400 and frees its thread. For a site on the open
internet, put a buffering reverse proxy in front (docs/nginx.conf.example):
it reads whole requests before gunicorn sees them.

Environment (all optional): PORT (5000), WEB_CONCURRENCY (workers, 2),
WEB_THREADS (threads per worker, 4), WEB_TIMEOUT (30), WEB_CLIENT_TIMEOUT (30),
FORWARDED_ALLOW_IPS (127.0.0.1: the addresses of the proxy whose
X-Forwarded-Proto gunicorn believes; "*" only when nothing else can reach the
port).
"""
import os

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
