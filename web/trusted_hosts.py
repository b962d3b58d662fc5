"""Which Host a request may name: Settings.trusted_hosts, plus the public URL's host.

Whatever builds an absolute URL from the request (url_for(_external=True): the
IIIF annotation page's id, the invitation link shown in the console) writes
the Host header into it, so a request naming someone else's site would get
links to that site back. With trusted_hosts set, such a request is refused
with a 400 before anything runs: JSON under /api, a plain page otherwise.
Empty trusted_hosts: any Host (development, the demo).

This is WSGI middleware rather than Flask's TRUSTED_HOSTS: Flask's check
fails before a URL adapter exists, so its error page cannot be rendered (a
500), and the volunteer's hot path (web.hot_path) never reaches Flask.
Entries are host names (a port is ignored); ".example.org" also admits every
subdomain, as werkzeug's host_is_trusted reads it.

The operational endpoints (/healthz, /readyz, /metrics: web.operations,
web.metrics) answer whatever the Host: load balancers and Prometheus reach a
node by its address (Kubernetes' probes name the pod's IP), and those replies
hold no URL that could echo the Host.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from werkzeug.sansio.utils import host_is_trusted

from web.errors import error_body

ANY_HOST = frozenset({"/healthz", "/readyz", "/metrics"})
_PAGE = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<title>Unknown site</title></head><body><h1>Unknown site</h1>"
         "<p>This server does not answer for that host name.</p></body></html>\n")


def trusted_hosts(text: str, public_url: str) -> list[str]:
    """The configured names, plus the public URL's host; [] (any host) when none
    is configured."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        return []
    public = urlsplit(public_url).hostname
    return names + ([public] if public and public not in names else [])


def request_host(environ: dict) -> str:
    """The Host the client named (HTTP/1.0 clients may send none: the server's)."""
    return environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")


class TrustedHosts:
    """WSGI middleware: a 400 for a request whose Host is not a trusted one."""

    def __init__(self, wsgi: Callable, hosts: list[str]) -> None:
        self.wsgi = wsgi
        self.hosts = hosts

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if host_is_trusted(request_host(environ), self.hosts) or \
                environ.get("PATH_INFO") in ANY_HOST:
            return self.wsgi(environ, start_response)
        return refuse(environ, start_response)


def refuse(environ: dict, start_response: Callable) -> list[bytes]:
    """The 400, in the shape the path's clients read."""
    if environ.get("PATH_INFO", "").startswith("/api/"):
        body = json.dumps(error_body("bad_host", "this server does not answer for that host",
                                     {"host": "not trusted"})) + "\n"
        kind = "application/json"
    else:
        body, kind = _PAGE, "text/html; charset=utf-8"
    data = body.encode()
    start_response("400 BAD REQUEST", [("Content-Type", kind),
                                       ("Content-Length", str(len(data)))])
    return [data]
