"""Staff accounts for the console: email + password, one-time links, sessions.

Passwords are hashed and sign-ins counted by engine.accounts.passwords. A person gets
in through a one-time link (an invitation, or "forgot password") that lets
them set a password; links are random, stored as hashes, used once and
expire. Failed sign-ins are counted in Redis per account and per address,
so guessing is slow everywhere at once. A user's ``session_version`` is part
of every console session: bumping it (sign out everywhere, a new password)
ends every other session at once.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select, update

from engine.accounts.mail import folded, is_address
from engine.accounts.passwords import (  # noqa: F401  (MIN_PASSWORD, MAX_FAILURES_*: callers')
    MAX_FAILURES_PER_ACCOUNT,
    MAX_FAILURES_PER_ADDRESS,
    MAX_PASSWORD,
    MIN_PASSWORD,
    attempt,
    check_password,
    hash_password,
    needs_rehash,
    verify_password,
)
from engine.errors import (
    ConflictError,
    GoneError,
    InvalidError,
    NotFoundError,
)
from engine.identity import (
    REVOKED_PREFIX,
    ROLES,
    Identity,
    console_status,
    revoked_marker,
)
from engine.services import Services
from engine.store.models import AccountLink, ApiToken, Organisation, User, aware, utcnow
from engine.store.redis_server import REDIS_DOWN
from engine.tokens import token_hash

LINK_DAYS = {"invite": 7, "reset": 1}


@dataclass(frozen=True)
class Staff:
    """A signed-in (or about to be) member of an organisation's staff."""

    id: int
    email: str
    name: str
    role: str
    organisation_id: int
    organisation: str
    session_version: int

    @property
    def identity(self) -> Identity:
        return Identity("user", self.id, self.organisation_id, self.role)


def normal_email(email: str) -> str:
    """One plain address (engine.accounts.mail.is_address), lower-cased, as
    accounts keep it; InvalidError for anything else, lists of addresses and
    line breaks included."""
    email = folded(email)
    if not is_address(email):
        raise InvalidError("this is not an email address", {"email": "not an email address"})
    return email


def create_staff(services: Services, organisation: str | int, email: str, role: str = "charity",
                 name: str = "") -> int:
    """A staff account with no password yet (it comes through a link); the
    organisation (by name or id) is made if it is new and named."""
    if role not in ROLES:
        raise InvalidError(f"role must be one of {', '.join(ROLES)}", {"role": "unknown role"})
    email = normal_email(email)
    with services.db.writing() as session:
        if session.scalar(select(User.id).where(User.email == email)) is not None:
            raise ConflictError(f"{email} already has an account", {"email": "already in use"})
        org_id = _organisation_id(session, organisation)
        user = User(organisation_id=org_id, role=role, name=name.strip()[:200], email=email,
                    token_hash=revoked_marker())
        session.add(user)
        session.flush()
        return user.id


def _organisation_id(session, organisation: str | int) -> int:
    if isinstance(organisation, int):
        return organisation
    if not organisation.strip():
        raise InvalidError("an organisation name is needed", {"org": "empty"})
    org = session.scalar(select(Organisation).where(Organisation.name == organisation))
    if org is None:
        org = Organisation(name=organisation)
        session.add(org)
        session.flush()
    return org.id


def issue_link(services: Services, user_id: int, purpose: str) -> str:
    """A one-time link token (invite: 7 days, reset: 1 day); earlier unused
    links of the same user and purpose stop working."""
    with services.db.writing() as session:
        return _new_link(session, user_id, purpose)


def _new_link(session, user_id: int, purpose: str) -> str:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.execute(update(AccountLink).where(
        AccountLink.user_id == user_id, AccountLink.purpose == purpose,
        AccountLink.used_at.is_(None)).values(used_at=now))
    session.add(AccountLink(user_id=user_id, purpose=purpose, token_hash=token_hash(token),
                            created_at=now, expires_at=now + timedelta(days=LINK_DAYS[purpose])))
    return token


def restore(services: Services, user_id: int) -> str:
    """A one-time link (7 days) for a staff account to set a new password: the
    command line's way back in for an account `bitesize users revoke` locked, and
    the link of a pending admin's account, which the console does not re-invite."""
    with services.db.session() as session:
        email = session.scalar(select(User.email).where(User.id == user_id))
    if email is None:
        raise NotFoundError(f"user {user_id} has no console account (no email)",
                            {"user": "no console account"})
    return issue_link(services, user_id, "invite")


def link_holder(services: Services, token: str) -> Staff:
    """Whose link this is, if it can still be used."""
    with services.db.session() as session:
        link = session.scalar(select(AccountLink).where(
            AccountLink.token_hash == token_hash(token or "")))
        if link is None:
            raise NotFoundError("this link is not valid: ask for a new one", {"link": "unknown"})
        if link.used_at is not None or aware(link.expires_at) < utcnow():
            raise GoneError("this link has expired or was already used: ask for a new one",
                            {"link": "expired"})
        return _staff(session, link.user_id)


def use_link(services: Services, token: str, password: str) -> Staff:
    """Set the password through a link, once; every other session ends."""
    check_password(password)
    link_holder(services, token)
    now = utcnow()
    with services.db.writing() as session:
        used = session.execute(update(AccountLink).where(
            AccountLink.token_hash == token_hash(token), AccountLink.used_at.is_(None))
            .values(used_at=now)).rowcount
        if not used:  # another tab used it first
            raise GoneError("this link was already used: ask for a new one", {"link": "used"})
        user_id = session.scalar(select(AccountLink.user_id).where(
            AccountLink.token_hash == token_hash(token)))
        _set_password(session, user_id, password)
        return _staff(session, user_id)


def set_password(services: Services, user_id: int, password: str) -> None:
    """Set a password directly (the command line's --password-stdin)."""
    check_password(password)
    with services.db.writing() as session:
        _set_password(session, user_id, password)


def _set_password(session, user_id: int, password: str) -> None:
    session.execute(update(User).where(User.id == user_id).values(
        password_hash=hash_password(password), session_version=User.session_version + 1))


def sign_in(services: Services, email: str, password: str, address: str) -> Staff:
    """The staff member these credentials belong to. Refused with the same
    message whatever was wrong; too many failures answer 429 for a while."""
    email = folded(email)
    keys = [f"bs:signin:account:{token_hash(email)}", f"bs:signin:address:{address}"]
    with attempt(services, keys, ", or reset your password"), \
            services.db.session() as session:
        user = session.scalar(select(User).where(User.email == email)) if email else None
        stored = user.password_hash if user is not None else None
        if not verify_password(stored, password):
            raise InvalidError("the email or the password is not right",
                               {"password": "not right"})
        if needs_rehash(stored):
            _set_password(session, user.id, password)
        return _staff(session, user.id)


def new_session_id() -> str:
    """A console session's own id, kept in its cookie, so that signing out can end
    that one session (the cookie is signed, not stored: without this a copy of
    it stayed valid for its whole lifetime after "Sign out")."""
    return secrets.token_urlsafe(16)


def end_session(services: Services, session_id: str, seconds: int) -> bool:
    """Remember, for the session's remaining ``seconds``, that it was signed out;
    False when Redis cannot be reached (the browser still drops its cookie)."""
    try:
        services.redis.set(_signed_out_key(session_id), "1", ex=max(1, int(seconds)))
    except REDIS_DOWN:
        return False
    return True


def session_ended(services: Services, session_id: str) -> bool:
    """Whether this session was signed out. While Redis cannot be reached, no: the
    console then serves on SQL alone, and the browser dropped its cookie anyway."""
    try:
        return bool(services.redis.exists(_signed_out_key(session_id)))
    except REDIS_DOWN:
        return False


def _signed_out_key(session_id: str) -> str:
    return f"bs:signedout:{token_hash(session_id)}"


def sign_out_everywhere(services: Services, user_id: int) -> None:
    with services.db.writing() as session:
        session.execute(update(User).where(User.id == user_id).values(
            session_version=User.session_version + 1))


def current_staff(services: Services, user_id: int, session_version: int) -> Staff | None:
    """The staff member of a console session, unless that session was ended."""
    with services.db.session() as session:
        user = session.get(User, user_id)
        if (user is None or user.session_version != session_version
                or console_status(user.password_hash) != "active"):
            return None
        return _staff(session, user.id)


def can_reset(services: Services, staff: Staff) -> bool:
    """Whether "forgot password" may send this account a link: only one that has a
    password to forget. A pending invitation asks its inviter for a new link, and
    an account `bitesize users revoke` locked must not let its owner back in
    through their own mailbox."""
    return _password_status(services, staff.id) == "active"


def find_staff(services: Services, email: str) -> Staff | None:
    with services.db.session() as session:
        user_id = session.scalar(select(User.id).where(User.email == folded(email)))
        return _staff(session, user_id) if user_id is not None else None


# The role an invitation from the console makes; an account above it (an admin,
# a platform admin) gets its links from the command line only.
INVITED_ROLE = "charity"


def invite(services: Services, inviter: Staff, email: str, name: str = "") -> tuple[Staff, str]:
    """Invite a colleague into the inviter's organisation; (their account, link token).

    Inviting again a colleague who never set a password sends a fresh link, but
    only to an account an invitation could have made (role ``charity``): the
    inviter sees the link, so re-inviting a pending admin or platform admin
    would hand the inviter that account (a security review took over a
    platform admin's pending account this way).

    An address is one account on the whole site, so an invitation another
    organisation made holds it; one never taken up holds it for UNCLAIMED_DAYS
    (counted from the account's making: inviting again does not extend it),
    then an invitation from elsewhere moves the account there (``_claim``)."""
    email = normal_email(email)
    existing = find_staff(services, email)
    if existing is None:
        create_staff(services, inviter.organisation_id, email, INVITED_ROLE, name)
        existing = find_staff(services, email)
    elif existing.organisation_id != inviter.organisation_id:
        if not _claim(services, existing.id, inviter.organisation_id, name):
            raise _taken(email)
        existing = find_staff(services, email)
    elif _password_status(services, existing.id) != "invited":
        raise _taken(email)
    elif existing.role != INVITED_ROLE:
        raise ConflictError(f"{email} is an account with the role {existing.role}: its link "
                            "comes from whoever runs this bitesize (bitesize users restore)",
                            {"email": "an account only the command line can invite"})
    return existing, _invitation_link(services, existing, inviter.organisation_id)


def _invitation_link(services: Services, person: Staff, organisation_id: int) -> str:
    """The link, made in one transaction with a last look at the account: still
    pending, a charity member's, in this organisation. Another organisation's
    claim (``_claim``) could otherwise move it between invite's checks and the
    link, and the link shown here would open an account over there (a review
    found this race); a claim after this commit ends the link instead."""
    with services.db.writing() as session:
        user = session.get(User, person.id, with_for_update=True)
        if (user is None or user.organisation_id != organisation_id
                or user.password_hash is not None or user.role != INVITED_ROLE):
            raise _taken(person.email)
        return _new_link(session, person.id, "invite")


def _taken(email: str) -> ConflictError:
    return ConflictError(f"{email} already has an account", {"email": "already has an account"})


# How long an invitation never taken up holds its address against other
# organisations. A charity that typed someone else's address (by mistake, or
# to squat it: the inviter sees the link where no mail server is configured)
# would otherwise keep it from the organisation the person works for for good.
UNCLAIMED_DAYS = LINK_DAYS["invite"]


def _claim(services: Services, user_id: int, organisation_id: int, name: str) -> bool:
    """Move an account nobody took up to this organisation: a pending charity
    member's, made more than UNCLAIMED_DAYS ago, with no token that works (the
    command line can give a pending account one: a script of the old
    organisation's would then act in the new one). Its unused links end (the
    old inviter's would otherwise open an account in this organisation). False
    if it does not qualify; one UPDATE, so two organisations claiming at once
    cannot both move it."""
    cutoff = utcnow() - timedelta(days=UNCLAIMED_DAYS)
    live_token = select(ApiToken.id).where(
        ApiToken.user_id == User.id, ApiToken.revoked_at.is_(None),
        or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > utcnow())).exists()
    with services.db.writing() as session:
        moved = session.execute(update(User).where(
            User.id == user_id, User.password_hash.is_(None), User.role == INVITED_ROLE,
            User.created_at < cutoff, User.organisation_id != organisation_id,
            User.token_hash.startswith(REVOKED_PREFIX), ~live_token).values(
            organisation_id=organisation_id, name=name.strip()[:200], created_at=utcnow(),
            session_version=User.session_version + 1)).rowcount
        if moved:
            session.execute(update(AccountLink).where(
                AccountLink.user_id == user_id, AccountLink.used_at.is_(None))
                .values(used_at=utcnow()))
    return bool(moved)


def _password_status(services: Services, user_id: int) -> str:
    """The account's status as console_status reads it from its password hash."""
    with services.db.session() as session:
        return console_status(session.scalar(select(User.password_hash).where(User.id == user_id)))


def team(services: Services, organisation_id: int) -> list[tuple[Staff, str]]:
    """The organisation's staff, each with their status: "active", "invited" (no
    password set yet) or "revoked" (`bitesize users revoke`)."""
    with services.db.session() as session:
        users = session.scalars(select(User).where(User.organisation_id == organisation_id,
                                                   User.email.is_not(None)).order_by(User.id))
        return [(_staff(session, u.id), console_status(u.password_hash)) for u in users]




def _staff(session, user_id: int) -> Staff:
    row = session.execute(select(User, Organisation.name).join(Organisation)
                          .where(User.id == user_id)).one()
    user, org = row
    return Staff(user.id, user.email or "", user.name or "", user.role, user.organisation_id,
                 org, user.session_version)
