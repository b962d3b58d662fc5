"""The organisation's API tokens: make one (shown once), see them, revoke one."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from marshmallow import Schema, fields
from marshmallow.validate import Length, OneOf

from engine.accounts.api_tokens import (
    EXPIRY_DAYS,
    MAX_NAME,
    create_api_token,
    list_api_tokens,
    revoke_api_token,
)
from engine.errors import BitesizeError
from web.console import bp, staff_identity
from web.console.forms import engine_errors, load_form
from web.services import services

LIFETIMES = ("never", *map(str, EXPIRY_DAYS))  # the form's choices: until revoked, or days


class TokenForm(Schema):
    name = fields.String(required=True, validate=Length(1, MAX_NAME))
    expires = fields.String(validate=OneOf(LIFETIMES), load_default="never")


@bp.route("/tokens", methods=["GET", "POST"])
def tokens():
    errors, made = {}, None
    if request.method == "POST":
        values, errors = load_form(TokenForm())
        if not errors:
            try:
                days = None if values["expires"] == "never" else int(values["expires"])
                token_id, token = create_api_token(services(), staff_identity(),
                                                   values["name"], days)
            except BitesizeError as exc:
                errors = engine_errors(exc)
            else:
                made = {"id": token_id, "name": values["name"], "token": token}
    status = 422 if errors else 201 if made else 200
    return render_template("console/tokens.html", tokens=list_api_tokens(
        services(), staff_identity()), errors=errors, made=made, lifetimes=EXPIRY_DAYS,
        chosen=request.form.get("expires", "never")), status


@bp.post("/tokens/<int:token_id>/revoke")
def revoke_token(token_id: int):
    revoke_api_token(services(), staff_identity(), token_id)
    flash("The token is revoked: calls made with it are refused from now on.", "info")
    return redirect(url_for("console.tokens"))
