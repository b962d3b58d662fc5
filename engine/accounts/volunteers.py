"""Volunteers who keep what they did: claim anonymous work, sign in elsewhere,
take their data, leave.

A volunteer is anonymous by default: a token in the browser, nothing else.
One who wants to keep their history, or carry on from another device, claims
it with an email and password, or with a recovery code they write down (for
those without email); both may be set. Signing in on another device gives
that device a token of its own (VolunteerDevice), so no device signs another
out. Only what this needs is kept: the email, argon2 hashes, the code's
SHA-256 (a code has about 80 random bits, so a fast hash is enough).

Once an account keeps the work, changing how (a new email or password, a new
recovery code) needs its current password or recovery code: a device's token
alone, left in a shared or stolen browser, cannot take the account over. Such
a change also signs out every other device, since a change is what people do
when they think someone else got in.

Deleting the account removes the account, every device token, the name and
any project news subscription (engine.accounts.news),
and ends the volunteer's own token on every process at once; the answers stay
in the charity's results, tied to a volunteer nobody can sign in as any more.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from engine.accounts.confirmations import LINK_DAYS
from engine.accounts.mail import folded, mail_configured
from engine.accounts.passwords import (
    attempt,
    attempt_succeeded,
    check_password,
    hash_password,
    needs_rehash,
    reserve_attempt,
    verify_password,
)
from engine.accounts.staff import normal_email
from engine.errors import ConflictError, InvalidError
from engine.identity import (
    Identity,
    is_revoked,
    revoked_marker,
    revoking,
    volunteer_token_hashes,
)
from engine.services import Services
from engine.store.db import insert_ignoring_duplicates
from engine.store.models import (
    Answer,
    NewsSubscription,
    Project,
    TaskReport,
    Volunteer,
    VolunteerAccount,
    VolunteerDevice,
    aware,
    utcnow,
)
from engine.tokens import VOLUNTEER_PREFIX, new_token, token_hash

# Recovery codes: 16 characters from an alphabet without look-alikes (no 0/O,
# 1/I/L), shown in groups of four; about 79 random bits.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 16
_NOT_CODE = re.compile(r"[\s-]+")
# An address not confirmed within a link's 7 days, counted from the first link
# mailed to it, is free for the next volunteer who keeps it (_free_if_lapsed);
# a link sent again later still confirms it while nobody has.
UNCONFIRMED = timedelta(days=LINK_DAYS)


@dataclass(frozen=True)
class Account:
    """What a volunteer's account holds, as they may see it (never a hash)."""

    email: str | None
    recovery_code: bool  # whether a recovery code was made
    created_at: datetime
    email_confirmed: bool = False  # a link sent to it was followed (confirmations)


def account_of(services: Services, volunteer_id: int) -> Account | None:
    with services.db.session() as session:
        row = session.get(VolunteerAccount, volunteer_id)
        return None if row is None else _account(row)


@dataclass(frozen=True)
class Proof:
    """What a change to a kept account is asked for: the current password or
    recovery code, from this client address (failures count against both), and
    the hash of the token the change is made with (the device that stays)."""

    current: str | None
    address: str
    device_digest: str


def claim(services: Services, identity: Identity, email: str, password: str,
          proof: Proof) -> tuple[Account, int]:
    """Keep this volunteer's work under an email and password (set, or changed
    with proof); (the account, how many other devices were signed out)."""
    identity.require_volunteer()
    email = normal_email(email)
    check_password(password)
    try:
        with revoking(services) as forget, services.db.writing() as session:
            _free_if_lapsed(services, session, email, identity.id)
            row = _account_row(services, session, identity.id)
            changing = _check_proof(services, row, proof)
            if row.email != email:  # a new address is confirmed anew: its clock
                row.email_confirmed_at, row.email_set_at = None, None  # starts once mailed
            row.email, row.password_hash = email, hash_password(password)
            ended = _other_devices_ended(session, identity.id, proof) if changing else []
            session.flush()
            account = _account(row)
            forget(ended)
    except IntegrityError as exc:  # another claim of this email won the race
        raise _email_taken() from exc
    return account, len(ended)


def _free_if_lapsed(services: Services, session, email: str, volunteer_id: int) -> None:
    """409 if another volunteer keeps this address, unless they never confirmed
    it within UNCONFIRMED of the first link mailed to it: then it is no longer
    theirs (their work stays, under their token and any recovery code). Anyone
    may type anyone's address, and the owner must not be shut out of it for
    good. A site that sends no email never lapses one (nobody could confirm
    it: the first to keep an address would lose it after a week to anyone),
    nor does an address no link was mailed to."""
    holder = session.scalar(select(VolunteerAccount).where(VolunteerAccount.email == email)
                            .with_for_update())
    if holder is None or holder.volunteer_id == volunteer_id:
        return
    mailed = holder.email_set_at
    if (holder.email_confirmed_at is not None or mailed is None
            or not mail_configured(services.settings) or aware(mailed) > utcnow() - UNCONFIRMED):
        raise _email_taken()
    holder.email = holder.email_set_at = None
    session.flush()  # the address is unique: free before another row takes it


def new_recovery_code(services: Services, identity: Identity,
                      proof: Proof) -> tuple[str, int]:
    """A recovery code for this volunteer, shown once; an earlier code stops
    working. Once the account is kept, only with proof, and every other device
    is signed out (an old code that leaked may have signed one in). Returns the
    code and how many other devices were signed out."""
    identity.require_volunteer()
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    with revoking(services) as forget, services.db.writing() as session:
        row = _account_row(services, session, identity.id)
        changing = _check_proof(services, row, proof)
        row.recovery_hash = token_hash(code)
        ended = _other_devices_ended(session, identity.id, proof) if changing else []
        forget(ended)
    return "-".join(code[i:i + 4] for i in range(0, CODE_LENGTH, 4)), len(ended)


def _check_proof(services: Services, row: VolunteerAccount, proof: Proof,
                 purpose: str = "to change how") -> bool:
    """Whether the account already kept the work (so this is a change); if so,
    InvalidError on `current_password` unless the proof is its password or its
    recovery code. Wrong ones count per device token and per address, as
    sign-ins count theirs: not per volunteer, or a thief's token could spend the
    owner's allowance and keep them from the change that signs the thief out."""
    if row.password_hash is None and row.recovery_hash is None:
        return False
    typed = proof.current or ""
    if not typed:
        raise _proof_refused("needed", purpose)
    keys = [f"bs:vproof:device:{proof.device_digest}", f"bs:vproof:address:{proof.address}"]
    reserve_attempt(services, keys)
    code = _NOT_CODE.sub("", typed).upper()
    if (verify_password(row.password_hash, typed)
            or (row.recovery_hash is not None and code
                and secrets.compare_digest(token_hash(code), row.recovery_hash))):
        attempt_succeeded(services, keys)
        return True
    raise _proof_refused("not right", purpose)


def _proof_refused(detail: str, purpose: str) -> InvalidError:
    return InvalidError(f"your work is kept already: {purpose}, give its current password "
                        "or recovery code", {"current_password": detail})


def _other_devices_ended(session, volunteer_id: int, proof: Proof) -> list[str]:
    """Sign out every device of this volunteer but the one making the change;
    the hashes of the tokens that ended."""
    ended = [digest for digest in volunteer_token_hashes(session, volunteer_id)
             if digest != proof.device_digest and not is_revoked(digest)]
    session.execute(delete(VolunteerDevice).where(
        VolunteerDevice.volunteer_id == volunteer_id,
        VolunteerDevice.token_hash != proof.device_digest))
    volunteer = session.get(Volunteer, volunteer_id)
    if volunteer.token_hash != proof.device_digest:
        volunteer.token_hash = revoked_marker()
    return ended


def sign_in(services: Services, address: str, email: str | None = None,
            password: str | None = None, recovery_code: str | None = None) -> tuple[int, str]:
    """A new token for this device of the volunteer these credentials belong to:
    (volunteer id, token). Refused with one message whatever was wrong; too many
    failures from one address (or on one email) answer 429 for a while."""
    if recovery_code is not None:
        return _sign_in_with_code(services, address, recovery_code)
    email = folded(email)
    keys = [f"bs:vsignin:account:{token_hash(email)}", f"bs:vsignin:address:{address}"]
    with attempt(services, keys), services.db.writing() as session:
        row = session.scalar(select(VolunteerAccount).where(
            VolunteerAccount.email == email).with_for_update()) if email else None
        stored = row.password_hash if row is not None else None
        if not verify_password(stored, password or "") or _blocked(session, row):
            raise InvalidError("the email or the password is not right",
                               {"password": "not right"})
        if needs_rehash(stored):
            row.password_hash = hash_password(password)
        return row.volunteer_id, _new_device(session, row.volunteer_id)


def _sign_in_with_code(services: Services, address: str, code: str) -> tuple[int, str]:
    # Codes are guessed across every account at once, so only the address counts.
    keys = [f"bs:vsignin:code:{address}"]
    typed = _NOT_CODE.sub("", code or "").upper()
    with attempt(services, keys), services.db.writing() as session:
        row = session.scalar(select(VolunteerAccount).where(
            VolunteerAccount.recovery_hash == token_hash(typed)).with_for_update()) \
            if typed else None
        if row is None or _blocked(session, row):
            raise InvalidError("this recovery code is not right",
                               {"recovery_code": "not right"})
        return row.volunteer_id, _new_device(session, row.volunteer_id)


def export(services: Services, identity: Identity) -> dict[str, Any]:
    """Everything bitesize keeps about this volunteer, as JSON-ready data."""
    identity.require_volunteer()
    with services.db.session() as session:
        volunteer = session.get(Volunteer, identity.id)
        account = session.get(VolunteerAccount, identity.id)
        answers = session.execute(
            select(Answer.project_id, Project.name, Answer.task_id, Answer.value,
                   Answer.counted, Answer.created_at)
            .join(Project, Project.id == Answer.project_id)
            .where(Answer.volunteer_id == identity.id).order_by(Answer.id)).all()
        reports = session.execute(
            select(TaskReport.project_id, TaskReport.task_id, TaskReport.reason,
                   TaskReport.note, TaskReport.created_at)
            .where(TaskReport.volunteer_id == identity.id).order_by(TaskReport.id)).all()
        devices = session.scalar(select(VolunteerDevice.volunteer_id).where(
            VolunteerDevice.volunteer_id == identity.id).limit(1))
        news = list(session.scalars(select(NewsSubscription.project_id).where(
            NewsSubscription.volunteer_id == identity.id).order_by(NewsSubscription.project_id)))
    return {
        "volunteer": {"id": volunteer.id, "name": volunteer.name,
                      "created_at": volunteer.created_at.isoformat()},
        "account": None if account is None else {
            "email": account.email, "email_confirmed": account.email_confirmed_at is not None,
            "recovery_code": account.recovery_hash is not None,
            "created_at": account.created_at.isoformat(),
            "other_devices_signed_in": devices is not None},
        "answers": [{"project": p, "project_name": name, "task": t, "answer": value,
                     "counted": counted, "created_at": at.isoformat()}
                    for p, name, t, value, counted, at in answers],
        "reports": [{"project": p, "task": t, "reason": reason, "note": note,
                     "created_at": at.isoformat()} for p, t, reason, note, at in reports],
        "news_by_email_from_projects": news,
    }


def delete_account(services: Services, identity: Identity, proof: Proof) -> None:
    """Forget who this volunteer is: account, name and every token end now,
    on every process; their answers stay in the results, unlinked from them.
    Once the work is kept, the proof is asked for (its password or recovery
    code), so that a token left in a shared browser cannot delete the record."""
    identity.require_volunteer()
    with revoking(services) as forget, services.db.writing() as session:
        row = session.get(VolunteerAccount, identity.id, with_for_update=True)
        if row is not None:
            _check_proof(services, row, proof, "to delete it")
        volunteer = session.get(Volunteer, identity.id)
        digests = volunteer_token_hashes(session, identity.id)
        volunteer.token_hash, volunteer.name = revoked_marker(), None
        session.execute(delete(VolunteerDevice).where(
            VolunteerDevice.volunteer_id == identity.id))
        session.execute(delete(NewsSubscription).where(
            NewsSubscription.volunteer_id == identity.id))
        session.execute(delete(VolunteerAccount).where(
            VolunteerAccount.volunteer_id == identity.id))
        forget(digests)


def _account_row(services: Services, session, volunteer_id: int) -> VolunteerAccount:
    """The volunteer's account row, made if none, locked on PostgreSQL until the
    change commits (a sign-in with the old password waits, then sees the new).
    Made by an insert that passes over a row made meanwhile: two requests at
    once (a double click) each added one, and the second failed on the key."""
    session.execute(insert_ignoring_duplicates(services.db, VolunteerAccount.__table__)
                    .values(volunteer_id=volunteer_id, created_at=utcnow()))
    return session.get(VolunteerAccount, volunteer_id, with_for_update=True,
                       populate_existing=True)


def _account(row: VolunteerAccount) -> Account:
    return Account(row.email, row.recovery_hash is not None, row.created_at,
                   row.email_confirmed_at is not None)


def _blocked(session, row: VolunteerAccount | None) -> bool:
    """A volunteer blocked platform-wide cannot come back by signing in. Read
    shared (PostgreSQL): a platform block committing meanwhile is waited for
    and seen; read plain, the sign-in passed, and its new device's token was
    not among those the block ended."""
    return row is not None and bool(session.scalar(select(Volunteer.blocked).where(
        Volunteer.id == row.volunteer_id).with_for_update(read=True)))


def _new_device(session, volunteer_id: int) -> str:
    token = new_token(VOLUNTEER_PREFIX)
    session.add(VolunteerDevice(token_hash=token_hash(token), volunteer_id=volunteer_id))
    return token


def _email_taken() -> ConflictError:
    return ConflictError("this email already keeps another volunteer's work: sign in with it",
                         {"email": "already in use"})
