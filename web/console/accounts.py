"""Signing in and out, one-time links, and the team page (invitations).

Messages never say whether an email has an account (sign-in failures and
"forgot password" read the same either way).
"""
from __future__ import annotations

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from marshmallow import Schema, ValidationError, fields
from marshmallow.validate import Length

from engine.accounts import staff as accounts
from engine.accounts.mail import mail_configured, send_mail
from engine.accounts.resets import request_reset
from engine.errors import BitesizeError, InvalidError, TooManyRequestsError
from web import rate_limits
from web.console import SESSION_LIFETIME, bp, sign_in_session
from web.console.forms import engine_errors, load_form
from web.services import services


class SignInForm(Schema):
    email = fields.String(required=True, validate=Length(1, 320))
    password = fields.String(required=True, validate=Length(1, accounts.MAX_PASSWORD))
    next = fields.String(load_default="")


class PasswordForm(Schema):
    password = fields.String(required=True, validate=Length(1, accounts.MAX_PASSWORD))
    confirm = fields.String(required=True, validate=Length(1, accounts.MAX_PASSWORD))


def _an_email(value: str) -> None:
    """Refused beside the field (forgot password, invitations), as accounts
    would refuse it, rather than as an error page."""
    try:
        accounts.normal_email(value)
    except InvalidError as exc:
        raise ValidationError("This is not an email address.") from exc


class EmailForm(Schema):
    email = fields.String(required=True, validate=[Length(1, 320), _an_email])


class InviteForm(EmailForm):
    name = fields.String(load_default="", validate=Length(max=200))


def safe_next(target: str | None) -> str:
    """Only a path inside the console: never a redirect to another site."""
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return url_for("console.projects")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if g.staff is not None and request.method == "GET":
        return redirect(safe_next(request.args.get("next")))
    errors, values, status = {}, {"next": request.args.get("next", "")}, 200
    headers: dict[str, str] = {}
    if request.method == "POST":
        values, errors = load_form(SignInForm())
        if not errors:
            try:
                staff = accounts.sign_in(services(), values["email"], values["password"],
                                         request.remote_addr or "unknown")
            except TooManyRequestsError as exc:  # when to try again, as the API says it
                errors, status = {"_schema": exc.message}, 429
                headers["Retry-After"] = str(exc.retry_after)
            except BitesizeError as exc:
                errors, status = {"_schema": exc.message}, 401
            else:
                sign_in_session(staff)
                return redirect(safe_next(values.get("next")))
        values.pop("password", None)
    return render_template("console/login.html", values=values, errors=errors), status, headers


@bp.post("/logout")
def logout():
    # a copy of this cookie is refused from now on (engine.accounts.staff)
    if session.get("sid") and not accounts.end_session(
            services(), session["sid"], SESSION_LIFETIME.total_seconds()):
        current_app.logger.warning("sign-out of user %s not remembered: Redis is away",
                                   session.get("uid"))
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("console.login"))


@bp.post("/logout-everywhere")
def logout_everywhere():
    accounts.sign_out_everywhere(services(), g.staff.id)
    session.clear()
    flash("You are signed out on every device.", "info")
    return redirect(url_for("console.login"))


@bp.route("/set-password/<token>", methods=["GET", "POST"])
def set_password(token: str):
    try:
        holder = accounts.link_holder(services(), token)
    except BitesizeError as exc:
        return render_template("console/link_expired.html", message=exc.message), 410
    errors = {}
    if request.method == "POST":
        values, errors = load_form(PasswordForm())
        if not errors and values["password"] != values["confirm"]:
            errors = {"confirm": "the two passwords are not the same"}
        if not errors:
            try:
                staff = accounts.use_link(services(), token, values["password"])
            except BitesizeError as exc:
                errors = engine_errors(exc)
            else:
                sign_in_session(staff)
                flash("Your password is set. Welcome to the console.", "info")
                return redirect(url_for("console.projects"))
    return render_template("console/set_password.html", holder=holder, errors=errors,
                           min_length=accounts.MIN_PASSWORD), 422 if errors else 200


@bp.route("/forgot", methods=["GET", "POST"])
def forgot():
    errors, sent = {}, False
    mail = mail_configured(services().settings)  # without it no link could reach anyone
    if request.method == "POST" and mail:
        values, errors = load_form(EmailForm())
        if not errors:
            rate_limits.enforce(*rate_limits.email_checks(rate_limits.client_address(),
                                                          values["email"]))
            # a worker looks the address up and sends the link: this request
            # does the same work, so takes the same time, for any address
            request_reset(services(), values["email"], emailed_link(_TOKEN_SPOT)[:-1])
            sent = True
    return render_template("console/forgot.html", errors=errors, sent=sent, mail=mail), \
        422 if errors else 200


_TOKEN_SPOT = "-"  # stands for the token when a link without one is built


@bp.route("/team", methods=["GET", "POST"])
def team():
    errors, invited = {}, None
    if request.method == "POST":
        values, errors = load_form(InviteForm())
        if not errors:
            try:
                person, token = accounts.invite(services(), g.staff, values["email"],
                                                values["name"])
            except BitesizeError as exc:
                errors = engine_errors(exc)
            else:
                invited = _send_invitation(person, token)
    return render_template("console/team.html", members=accounts.team(
        services(), g.staff.organisation_id), errors=errors, invited=invited,
        mail=mail_configured(services().settings)), 422 if errors else 200


def _send_invitation(person, token: str) -> dict:
    """Mail the link; show it to the inviter only where no mail server is
    configured. Where one is, the link goes to the mailbox alone: whoever uses
    it has shown they own the address (shown, it let a charity make an account
    of anyone's address, which then no other organisation could invite)."""
    settings = services().settings
    problem = send_mail(settings, person.email, f"Join {g.staff.organisation} on bitesize",
                        _invite_body(g.staff, emailed_link(token)))
    shown = None if mail_configured(settings) else url_for(
        "console.set_password", token=token, _external=True)
    return {"email": person.email, "link": shown, "problem": problem}


def emailed_link(token: str) -> str:
    """A link for an email, on BITESIZE_PUBLIC_URL: never built from the request's
    Host header, which whoever asks for a reset could set to their own site."""
    path = url_for("console.set_password", token=token)
    return services().settings.public_url.rstrip("/") + path


def _invite_body(inviter, link: str) -> str:
    return (f"{inviter.email} invites you to run projects for {inviter.organisation} on "
            f"bitesize.\n\nSet your password here (the link works once, for "
            f"{accounts.LINK_DAYS['invite']} days):\n{link}\n")

