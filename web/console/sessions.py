"""Cookie sessions for the console only.

The API authenticates every call by bearer token and the volunteer pages
keep their token in localStorage, so neither needs a cookie; skipping the
session there saves its work on every request of the hot path. Console
pages get Flask's signed cookie: HttpOnly, SameSite=Lax (app config), and
Secure whenever the request came over HTTPS.
"""
from __future__ import annotations

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface

PREFIX = "/console"


class ConsoleSessions(SecureCookieSessionInterface):
    def open_session(self, app: Flask, request_):
        if not request_.path.startswith(PREFIX):
            return None  # Flask then gives the request a null session
        return super().open_session(app, request_)

    def save_session(self, app: Flask, session, response) -> None:
        if not request.path.startswith(PREFIX):
            return
        super().save_session(app, session, response)

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure

    def get_cookie_path(self, app: Flask) -> str:
        return PREFIX
