"""POST /volunteers: an anonymous volunteer in one call, no sign-up wall;
GET /volunteers/me: what their answers did (engine.contributions); keeping
that work, optionally (engine.accounts.volunteers): claim it with an email
and password or a recovery code, sign in on another device, download it all,
delete the account.

Sign-ups are rate-limited per client address and per network (web.rate_limits),
with defaults that let a school class start together behind one address; a
site may also ask each anonymous sign-up for proof of work
(engine.accounts.challenge, BITESIZE_SIGNUP_WORK; off by default).
"""
from __future__ import annotations

import json
from datetime import UTC, datetime

from flask import Response, request

from engine.accounts import challenge, confirmations, news
from engine.accounts import volunteers as accounts
from engine.accounts.mail import mail_configured
from engine.delivery.contributions import volunteer_record
from engine.identity import create_volunteer
from engine.projects import names_in_language
from engine.tokens import token_hash
from web import rate_limits
from web.api import bp, serialize
from web.api.schemas import (
    CurrentCredential,
    VolunteerClaim,
    VolunteerCreate,
    VolunteerSignIn,
    load_body,
)
from web.auth import bearer_token, identity
from web.i18n import chosen_language
from web.services import services


@bp.post("/volunteers")
def create_volunteer_():
    data = (load_body(VolunteerCreate()) if _has_body()
            else {"name": None, "challenge": None, "nonce": None})
    svc = services()
    bits = svc.settings.signup_work
    # proof of work, where the site asks for it: checked before the limits count
    # the sign-up, used up after they let it through
    solved = (challenge.verify(svc.settings.secret_key, bits, data["challenge"], data["nonce"])
              if bits else None)
    rate_limits.enforce(*rate_limits.sign_up_checks(rate_limits.client_address()))
    if solved is not None:
        challenge.spend(svc.redis, solved)
    volunteer_id, token = create_volunteer(svc, data["name"])
    return {"id": volunteer_id, "token": token}, 201


@bp.get("/volunteers/challenge")
def sign_up_challenge():
    """What POST /volunteers asks of an anonymous sign-up here: a challenge and
    the zero bits its solution needs, or bits 0 and no challenge (the default)."""
    settings = services().settings
    if not settings.signup_work:
        return {"challenge": None, "bits": 0, "expires_at": None}
    issued = challenge.issue(settings.secret_key, settings.signup_work)
    return {"challenge": issued.text, "bits": issued.bits,
            "expires_at": serialize.iso(datetime.fromtimestamp(issued.expires_at, UTC))}


def _has_body() -> bool:
    return bool(request.get_data(cache=True))


@bp.get("/volunteers/me")
def my_record():
    """The calling volunteer's answers, time given and finished tasks, per project."""
    caller = identity().require_volunteer()
    record = volunteer_record(services(), caller)
    subscribed = news.subscribed_projects(services(), caller.id)
    # each project by the name its charity gave it in the volunteer's language
    names = names_in_language(services(), [p.project_id for p in record.projects],
                              chosen_language())
    return {"id": caller.id, "account": _account(accounts.account_of(services(), caller.id)),
            "mail": mail_configured(services().settings),  # whether news by email can be had
            "answers": record.answers, "seconds": record.seconds,
            "first_at": serialize.iso(record.first_at),
            "last_at": serialize.iso(record.last_at),
            "projects": [{"id": p.project_id, "name": names.get(p.project_id, p.name),
                          "answers": p.answers,
                          "finished": p.finished, "seconds": p.seconds,
                          "news": p.project_id in subscribed}
                         for p in record.projects]}


@bp.post("/volunteers/me/account")
def claim_work():
    """Keep this volunteer's work under an email and password (set, or changed
    with the current password or recovery code: other devices are signed out)."""
    caller = identity().require_volunteer()
    data = load_body(VolunteerClaim())
    rate_limits.enforce(*rate_limits.email_checks(rate_limits.client_address(),
                                                  data["email"]))
    account, signed_out = accounts.claim(services(), caller, data["email"], data["password"],
                                         _proof(data.get("current_password")))
    sent = confirmations.confirm_after_claim(services(), caller)
    return {"account": _account(account), "other_devices_signed_out": signed_out,
            "confirmation_sent": sent}, 201


@bp.post("/volunteers/me/email-confirmation")
def send_email_confirmation():
    """Send again the link that confirms the kept email (news goes only to a
    confirmed address): 202; 409 without a mail server, an email, or when done."""
    caller = identity().require_volunteer()
    account = accounts.account_of(services(), caller.id)
    if account is not None and account.email:  # the same allowance as a claim of it
        rate_limits.enforce(*rate_limits.email_checks(rate_limits.client_address(),
                                                      account.email))
    confirmations.request_confirmation(services(), caller)
    return {"sent": True}, 202


@bp.post("/volunteers/me/recovery-code")
def make_recovery_code():
    """A recovery code to write down, shown this once; an earlier one stops working.
    Once the work is kept, the body gives the current password or recovery code,
    and other devices are signed out."""
    caller = identity().require_volunteer()
    data = load_body(CurrentCredential()) if _has_body() else {}
    code, signed_out = accounts.new_recovery_code(services(), caller,
                                                  _proof(data.get("current_password")))
    return {"recovery_code": code,
            "account": _account(accounts.account_of(services(), caller.id)),
            "other_devices_signed_out": signed_out}, 201


@bp.post("/volunteers/sign-in")
def sign_in_volunteer():
    """A token for this device, for the volunteer whose email and password (or
    recovery code) these are."""
    data = load_body(VolunteerSignIn())
    volunteer_id, token = accounts.sign_in(
        services(), rate_limits.client_address(), data.get("email"), data.get("password"),
        data.get("recovery_code"))
    return {"id": volunteer_id, "token": token}, 201


@bp.get("/volunteers/me/data")
def download_my_data():
    """Everything kept about the calling volunteer, as a JSON file to save."""
    caller = identity().require_volunteer()
    body = json.dumps(accounts.export(services(), caller), indent=2, ensure_ascii=False)
    return Response(body + "\n", mimetype="application/json", headers={
        "Content-Disposition": f'attachment; filename="bitesize-volunteer-{caller.id}.json"'})


@bp.delete("/volunteers/me")
def delete_me():
    """Delete the account: email, name and every token end now; answers stay, unlinked.
    Once the work is kept, the body gives the current password or recovery code."""
    caller = identity().require_volunteer()
    data = load_body(CurrentCredential()) if _has_body() else {}
    accounts.delete_account(services(), caller, _proof(data.get("current_password")))
    return {"deleted": True}


def _proof(current: str | None) -> accounts.Proof:
    return accounts.Proof(current, rate_limits.client_address(), token_hash(bearer_token()))


def _account(account: accounts.Account | None) -> dict | None:
    if account is None:
        return None
    return {"email": account.email, "email_confirmed": account.email_confirmed,
            "recovery_code": account.recovery_code,
            "created_at": serialize.iso(account.created_at)}
