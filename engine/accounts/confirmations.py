"""Confirming a volunteer's email: a link sent to the address before any news goes there.

A volunteer keeps their work under whatever address they type
(engine.accounts.volunteers), someone else's too; only following a link sent
to it shows the address is theirs. Until then no project's news goes there
(engine.accounts.news). The link's token is signed over the volunteer, the
address and an expiry, so it stops working once the address changes, and
nothing is stored for it. A worker sends it (workers.jobs.send_email_confirmation),
as password resets are sent: a slow mail server never holds a request. A send
the mail server refuses is tried again (SEND_RETRY): the address's week (see
engine.accounts.volunteers) starts only once a link went out, so a link never
sent would hold an address that is not the holder's until they asked again.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time

from rq import Retry
from sqlalchemy import update

from engine.accounts.mail import is_address, mail_configured, send_mail
from engine.accounts.resets import FAILED_JOB_SECONDS  # an address kept in Redis a day at most
from engine.errors import ConflictError, GoneError, UnavailableError
from engine.identity import Identity
from engine.services import Services
from engine.store.models import VolunteerAccount, utcnow

log = logging.getLogger(__name__)
LINK_DAYS = 7
SUBJECT = "Confirm your email for bitesize"
_TOKEN = re.compile(r"([1-9][0-9]{0,9})\.([1-9][0-9]{0,11})\.([0-9a-f]{32})")
MAX_ID = 2**31 - 1  # a database integer: a larger id is nobody, not an overflow
SEND_RETRY = Retry(max=3, interval=[60, 600, 3600])  # within the job's day in Redis


def request_confirmation(services: Services, identity: Identity) -> None:
    """Queue a link to the volunteer's kept address (asked again: a new link).
    409 where the site sends no email, with no address kept, or one confirmed."""
    identity.require_volunteer()
    if not mail_configured(services.settings):
        raise ConflictError("this site sends no email", {"mail": "not configured"})
    with services.db.session() as session:
        row = session.get(VolunteerAccount, identity.id)
        if row is None or not row.email:
            raise ConflictError("keep your work with an email first", {"email": "none kept"})
        if row.email_confirmed_at is not None:
            raise ConflictError("your email is confirmed already", {"email": "confirmed"})
        if not is_address(row.email):  # kept before addresses were checked as now
            raise ConflictError("this email cannot be mailed: keep your work under one plain "
                                "address", {"email": "not one plain address"})
        email = row.email
    _enqueue(services, identity.id, email)


def confirm_after_claim(services: Services, identity: Identity) -> bool:
    """After a volunteer kept (or changed) an email: request_confirmation, where
    it would send one (no refusal to report here); whether a link was queued."""
    try:
        request_confirmation(services, identity)
    except ConflictError:  # no mail server, or nothing to confirm
        return False
    return True


def _enqueue(services: Services, volunteer_id: int, email: str) -> None:
    services.queue("high").enqueue("workers.jobs.send_email_confirmation", volunteer_id,
                                   email, ttl=FAILED_JOB_SECONDS, result_ttl=0,
                                   failure_ttl=FAILED_JOB_SECONDS, retry=SEND_RETRY)


def send_confirmation(services: Services, volunteer_id: int, email: str) -> bool:
    """Email the link to `email` (the worker's job), unless the account's address
    changed, went or was confirmed meanwhile; whether it was sent. A send that
    failed is an UnavailableError, so that the job is tried again (SEND_RETRY)."""
    with services.db.session() as session:
        row = session.get(VolunteerAccount, volunteer_id)
        if row is None or row.email != email or row.email_confirmed_at is not None:
            return False
    expires = int(time.time()) + LINK_DAYS * 24 * 3600
    link = (services.settings.public_url.rstrip("/") + "/confirm-email/"
            + confirmation_token(services.settings.secret_key, volunteer_id, email, expires))
    problem = send_mail(services.settings, email, SUBJECT, _body(link))
    if problem is not None:
        log.warning("email confirmation for volunteer %s not sent: %s", volunteer_id, problem)
        raise UnavailableError("the confirmation link could not be mailed; it is tried "
                               "again later", {"mail": "not sent"})
    with services.db.session() as session:  # the first link mailed starts the clock
        session.execute(update(VolunteerAccount).where(
            VolunteerAccount.volunteer_id == volunteer_id, VolunteerAccount.email == email,
            VolunteerAccount.email_set_at.is_(None)).values(email_set_at=utcnow()))
    return True


def confirm_email(services: Services, token: str) -> str:
    """Mark the address a link was sent to confirmed (again: no change); the
    address. GoneError for a link not ours, expired, or to an address since changed."""
    found = _TOKEN.fullmatch(token or "") if isinstance(token, str) else None
    if found is None or int(found[2]) < time.time() or int(found[1]) > MAX_ID:
        raise _gone()
    volunteer_id, expires = int(found[1]), int(found[2])
    with services.db.writing() as session:
        # locked: an email change committed between this check and the write
        # below would otherwise be confirmed by the old address's link
        row = session.get(VolunteerAccount, volunteer_id, with_for_update=True)
        if row is None or not row.email or not hmac.compare_digest(
                found[0], confirmation_token(services.settings.secret_key, volunteer_id,
                                             row.email, expires)):
            raise _gone()
        if row.email_confirmed_at is None:
            row.email_confirmed_at = utcnow()
        return row.email


def confirmation_token(secret: str, volunteer_id: int, email: str, expires: int) -> str:
    body = f"{volunteer_id}.{expires}"
    signed = hmac.new(secret.encode(), f"confirm-email:{body}:{email}".encode(),
                      hashlib.sha256).hexdigest()[:32]
    return f"{body}.{signed}"


def _gone() -> GoneError:
    return GoneError("this link no longer works: ask for a new one on your volunteering page",
                     {"token": "unknown, expired or for another address"})


def _body(link: str) -> str:
    return ("Someone (we hope you) kept their bitesize volunteering under this address.\n\n"
            f"Confirm it is yours here (the link works for {LINK_DAYS} days):\n{link}\n\n"
            "Until you do, no project sends news to this address. If it was not you, "
            "ignore this email: nothing will be sent here, and once the link has "
            "expired you can keep your own volunteering under this address.\n")
