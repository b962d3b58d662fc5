"""The headers a public site needs, on every response: pages, API, media, static, errors.

A strict Content-Security-Policy: scripts and styles only from this site's
own files (no inline script, no inline style: web/static and the task
types' files next to their templates), no plugins, no <base>, forms only to
this site. Pictures also from data: URLs (the favicon) and from any https
host, because items may name their image by URL (a IIIF image server, a
charity's own site) and the volunteer's browser loads it from there; plain
http hosts only on a page that is itself served over http (the demo).

Framing: the volunteer pages (/ and /projects/<id>) may be shown in a frame
by the origins in Settings.frame_ancestors (a charity's own site), else by
nobody; the console's preview only by the console itself (the wizard shows
it in an iframe); everything else never. X-Frame-Options says the same to
older browsers where it can (DENY or SAMEORIGIN; it cannot list origins).

HSTS only on a request that came over HTTPS (wsgi.url_scheme, set by gunicorn
from a trusted proxy's X-Forwarded-Proto or by ProxyFix), so the plain-http
demo never pins a browser to https on localhost.

All of it is WSGI middleware around the whole app, the volunteer's hot path
included, so no response leaves without it; init_app must run after every
other part has wrapped the app (create_app calls it last). Behind a reverse
proxy (BITESIZE_BEHIND_PROXY = the number of proxies), werkzeug's ProxyFix
goes outermost, so the client address (rate limits) and the scheme (HSTS)
are the client's.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from web.trusted_hosts import TrustedHosts, trusted_hosts

HSTS = "max-age=31536000"
PERMISSIONS = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
_VOLUNTEER_PAGE = re.compile(r"/(?:projects/[0-9]+/?)?\Z")
_CONSOLE_PREVIEW = re.compile(r"/console/(?:projects/[0-9]+/)?preview/?\Z")


def content_security_policy(frame_ancestors: str, secure: bool) -> str:
    images = "'self' data: https:" if secure else "'self' data: https: http:"
    return ("default-src 'self'; script-src 'self'; style-src 'self'; "
            f"img-src {images}; object-src 'none'; base-uri 'none'; "
            f"form-action 'self'; frame-ancestors {frame_ancestors}")


def framing(path: str, allowed: str) -> tuple[str, str | None]:
    """(frame-ancestors, X-Frame-Options or None) for a path."""
    if _VOLUNTEER_PAGE.match(path) and allowed:
        return allowed, None  # X-Frame-Options cannot name origins: CSP alone
    if _CONSOLE_PREVIEW.match(path):
        return "'self'", "SAMEORIGIN"
    return "'none'", "DENY"


def headers_for(path: str, secure: bool, allowed: str) -> list[tuple[str, str]]:
    """Every security header of one response."""
    ancestors, frame_options = framing(path, allowed)
    head = [("Content-Security-Policy", content_security_policy(ancestors, secure)),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "same-origin"),
            ("Permissions-Policy", PERMISSIONS),
            ("Cross-Origin-Opener-Policy", "same-origin")]
    if frame_options:
        head.append(("X-Frame-Options", frame_options))
    if secure:
        head.append(("Strict-Transport-Security", HSTS))
    return head


class SecurityHeaders:
    """WSGI middleware: adds the headers to whatever the app answers; a header
    the app set itself is left as it is."""

    def __init__(self, wsgi: Callable, frame_ancestors: str) -> None:
        self.wsgi = wsgi
        # Spaces or commas between origins; a ";" would start another directive.
        self.allowed = " ".join(origin for origin in frame_ancestors.replace(",", " ").split()
                                if ";" not in origin)
        # The few distinct sets, built once: the hot path pays a lookup, not a join.
        self._sets: dict[tuple[str, bool], list[tuple[str, str]]] = {}

    def headers(self, path: str, secure: bool) -> list[tuple[str, str]]:
        kind = "page" if _VOLUNTEER_PAGE.match(path) else \
            "preview" if _CONSOLE_PREVIEW.match(path) else "other"
        key = (kind, secure)
        if key not in self._sets:
            self._sets[key] = headers_for(path, secure, self.allowed)
        return self._sets[key]

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        extra = self.headers(environ.get("PATH_INFO", ""),
                             environ.get("wsgi.url_scheme") == "https")

        def start(status: str, headers: list, exc_info=None):
            present = {name.lower() for name, _ in headers}
            headers = headers + [(n, v) for n, v in extra if n.lower() not in present]
            return start_response(status, headers, exc_info)

        return self.wsgi(environ, start)


def proxies(settings) -> int:
    """How many reverse proxies stand in front (BITESIZE_BEHIND_PROXY; 0: none,
    the client connects directly and X-Forwarded-* headers are not believed)."""
    return max(int(settings.behind_proxy), 0)


def init_app(app: Flask) -> None:
    """Wrap the finished app: ProxyFix (if configured), then the headers, then
    the Host check (if configured)."""
    settings = app.extensions["bitesize"].settings
    wsgi = app.wsgi_app
    hosts = trusted_hosts(settings.trusted_hosts, settings.public_url)
    if hosts:
        wsgi = TrustedHosts(wsgi, hosts)
    wsgi = SecurityHeaders(wsgi, settings.frame_ancestors)  # on the Host's 400 too
    if count := proxies(settings):
        wsgi = ProxyFix(wsgi, x_for=count, x_proto=count)
    app.wsgi_app = wsgi
