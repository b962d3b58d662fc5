"""The charity console: staff run their organisation's projects in the browser.

Server-rendered pages under /console, calling the engine's functions (never
the HTTP API). Unlike the API and the volunteer pages, the console keeps a
signed-cookie session (web.console.sessions): who is signed in, and the
CSRF secret Flask-WTF checks on every form. Every view but the sign-in and
account-link pages needs a signed-in staff member (``g.staff``).
"""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Flask, g, redirect, request, session, url_for
from flask_wtf.csrf import CSRFProtect

from engine.accounts.staff import current_staff, new_session_id, session_ended
from engine.errors import InvalidError
from web.api.schemas import unstorable_fields
from web.services import services

bp = Blueprint("console", __name__, url_prefix="/console")
csrf = CSRFProtect()
SESSION_LIFETIME = timedelta(days=7)  # then sign in again
# Pages a visitor who is not signed in may open.
OPEN_VIEWS = {"console.login", "console.forgot", "console.set_password"}


def init_app(app: Flask) -> None:
    from web import api
    from web.console import (  # noqa: F401 - each module adds its views to bp
        accounts,
        contested,
        dashboard,
        desk,
        newcomers,
        news,
        overview,
        project_page,
        quality_page,
        results,
        tokens,
        uploads,
        volunteer_page,
        webhooks,
        wizard,
    )
    from web.console.sessions import ConsoleSessions

    app.session_interface = ConsoleSessions()
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:  # Flask's default is None
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["PERMANENT_SESSION_LIFETIME"] = SESSION_LIFETIME
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # valid for the session's life
    csrf.init_app(app)
    csrf.exempt(api.bp)  # bearer tokens, no cookies: nothing to forge
    app.register_blueprint(bp)


@bp.before_request
def _require_staff():
    """Load the signed-in staff member; send anyone else to sign in."""
    g.staff = None
    if "uid" in session:
        g.staff = current_staff(services(), session["uid"], session.get("sv", -1))
        if g.staff is not None and session.get("sid") and session_ended(services(),
                                                                          session["sid"]):
            g.staff = None  # this session was signed out (a copy of its cookie)
        if g.staff is None:
            session.clear()  # signed out (everywhere), or the account is gone
    if g.staff is None and request.endpoint not in OPEN_VIEWS:
        return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
    return None


@bp.before_request
def _refuse_unstorable():
    """No form or query value with a NUL or an unpaired surrogate reaches a view:
    no database stores them (on PostgreSQL a name with a NUL was a 500), as the
    API's bodies and query strings refuse them too."""
    unstorable = {name: reason for values in (request.args, request.form)
                  for name, reason in unstorable_fields(values).items()}
    if unstorable:
        names = ", ".join(sorted(unstorable))
        raise InvalidError(f"{names}: holds a NUL character or an unpaired surrogate, which "
                           "is not text. Remove it and try again.", unstorable)


def sign_in_session(staff) -> None:
    """Start a fresh session for this staff member (a new CSRF secret too)."""
    session.clear()
    session.permanent = True
    session["uid"] = staff.id
    session["sv"] = staff.session_version
    session["sid"] = new_session_id()


def staff_identity():
    """The signed-in staff member as the engine's Identity."""
    return g.staff.identity
