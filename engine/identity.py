"""Who is calling: volunteers and users (charity members, admins) by API token,
and what each role may do.

Roles (README: Roles): ``charity`` runs its organisation's projects; ``admin``
(an organisation admin) also their quality calls (review, resolution, volunteers,
block); ``platform-admin`` may make every call an owner or admin may make, on
every organisation's projects. ``Identity.manages`` and ``Identity.moderates``
are the only places that decide it: everything else asks them.

Token lookups happen on every request, the volunteer's hot path included, so
the token hash -> identity mapping is cached in Redis; SQL answers a miss and
refills the cache (Redis can be wiped and this heals by itself).
"""
from __future__ import annotations

import json
import secrets
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from engine.errors import (
    AuthenticationError,
    InvalidError,
    NotFoundError,
    PermissionDeniedError,
)
from engine.services import Services
from engine.store.models import (
    AccountLink,
    ApiToken,
    Organisation,
    User,
    Volunteer,
    VolunteerDevice,
    aware,
    utcnow,
)
from engine.store.redis_server import REDIS_DOWN, unlink_matching
from engine.tokens import USER_PREFIX, VOLUNTEER_PREFIX, new_token, token_hash

CACHE_SECONDS = 24 * 3600
# What the cache holds for a token that was revoked or rotated away: it replaces
# the cached identity, so no process honours it after SQL has, and keeps a
# lookup that read SQL just before the revocation from caching the identity
# again (authenticate's NX), a race of milliseconds. After it a miss asks SQL,
# which refuses the token; kept short, a tombstone a failed revocation could
# not take back refuses a valid token for a minute, not a day.
REVOKED = b"revoked"
# The tombstone of a volunteer's token that a platform-wide block ended: refused
# with fields {"token": "blocked"} rather than as a token that matches nobody,
# so that their page stops instead of signing up a new volunteer behind the
# block. Once the tombstone is gone SQL says the same (_lookup), and a blocked
# volunteer's identity is never cached, so no cache can blur the two.
BLOCKED = b"blocked"
TOMBSTONE_SECONDS = 60
# Volunteer identities are also kept in each process for a second: a volunteer's
# calls in quick succession (a page preloading, a retried submit) skip a Redis
# round trip, and a token blocked platform-wide (forget_token) is refused by
# every process within that second (issue 14: revocation within a second).
# Blocking in a project is checked by the dispatch scripts on every call.
LOCAL_SECONDS = 1.0
LOCAL_MAX = 20_000
ROLES = ("charity", "admin", "platform-admin")
PLATFORM_ADMIN = "platform-admin"
# Roles that may make the quality calls an admin may make (block, unblock).
MODERATOR_ROLES = ("admin", PLATFORM_ADMIN)


@dataclass(frozen=True)
class Identity:
    kind: str  # volunteer | user
    id: int
    organisation_id: int | None = None
    role: str | None = None

    @property
    def is_volunteer(self) -> bool:
        return self.kind == "volunteer"

    def require_user(self) -> Identity:
        if self.kind != "user":
            raise PermissionDeniedError("this call needs a charity or admin token")
        return self

    def require_volunteer(self) -> Identity:
        if self.kind != "volunteer":
            raise PermissionDeniedError("this call needs a volunteer token")
        return self

    @property
    def is_platform_admin(self) -> bool:
        return self.kind == "user" and self.role == PLATFORM_ADMIN

    def manages(self, organisation_id: int | None) -> bool:
        """Whether this caller runs that organisation's projects (every call an
        owner may make): its own staff, and platform admins for every organisation."""
        return self.kind == "user" and (self.is_platform_admin
                                        or self.organisation_id == organisation_id)

    def moderates(self, organisation_id: int | None) -> bool:
        """Whether this caller may also make the admin-only quality calls (block)
        on that organisation's projects: its admins, and platform admins."""
        return self.manages(organisation_id) and self.role in MODERATOR_ROLES


def authenticate(services: Services, token: str | None) -> Identity:
    """Who a token belongs to: this process's cache of volunteers, then Redis's
    shared cache, then SQL (also while Redis cannot be reached)."""
    if not token:
        raise AuthenticationError("send 'Authorization: Bearer <token>'")
    digest = token_hash(token)
    local = _local_cache(services)
    now = time.monotonic()
    hit = local.get(digest)
    if hit is not None and hit[0] > now:
        return hit[1]
    try:
        cached = services.redis.get(_cache_key(digest))
    except REDIS_DOWN:  # SQL alone decides (a revocation changed SQL first)
        cached, reachable = None, False
    else:
        reachable = True
    if cached == REVOKED:
        raise AuthenticationError("this token is not valid")
    if cached == BLOCKED:
        raise blocked_volunteer()
    if cached:
        identity = Identity(**json.loads(cached))
    else:
        identity, lifetime = _lookup(services, token, digest)
        # NX: a lookup that read SQL just before a revocation must not overwrite
        # the revocation's tombstone with the identity it found; one that took
        # so long the tombstone may be gone caches nothing. A token that
        # expires is cached no longer than it lives.
        if reachable and time.monotonic() - now < TOMBSTONE_SECONDS / 2:
            services.redis.set(_cache_key(digest), json.dumps(identity.__dict__),
                               ex=max(1, min(CACHE_SECONDS, lifetime)), nx=True)
    if identity.is_volunteer:
        if len(local) >= LOCAL_MAX:
            local.clear()
        local[digest] = (now + LOCAL_SECONDS, identity)
    return identity


_local_caches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _local_cache(services: Services) -> dict[str, tuple[float, Identity]]:
    """This process's short-lived volunteer identities, per Services (so per database)."""
    cache = _local_caches.get(services)
    if cache is None:
        cache = _local_caches[services] = {}
    return cache


def _lookup(services: Services, token: str, digest: str) -> tuple[Identity, int]:
    """The token's identity and how many more seconds it lives (CACHE_SECONDS for
    tokens that do not expire)."""
    with services.db.session() as session:
        if token.startswith(VOLUNTEER_PREFIX):
            volunteer = session.scalar(select(Volunteer).where(Volunteer.token_hash == digest))
            if volunteer is None:  # a device they signed in on (engine.accounts.volunteers)
                volunteer = session.scalar(select(Volunteer).join(
                    VolunteerDevice, VolunteerDevice.volunteer_id == Volunteer.id)
                    .where(VolunteerDevice.token_hash == digest))
            if volunteer is not None and volunteer.blocked:
                raise blocked_volunteer()
            if volunteer is not None:
                return Identity("volunteer", volunteer.id), CACHE_SECONDS
        elif token.startswith(USER_PREFIX):
            user = session.scalar(select(User).where(User.token_hash == digest))
            lifetime = CACHE_SECONDS
            if user is None:  # an organisation's token, made in the console
                found = session.execute(
                    select(User, ApiToken.expires_at)
                    .join(ApiToken, ApiToken.user_id == User.id)
                    .where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None))).first()
                user, lifetime = found if found else (None, None)
                lifetime = _seconds_left(lifetime)
            if user is not None and lifetime > 0:
                return Identity("user", user.id, user.organisation_id, user.role), lifetime
    raise AuthenticationError("this token is not valid")


def blocked_volunteer() -> AuthenticationError:
    """The 401 of a token whose volunteer is blocked platform-wide: it names the
    token "blocked" (README: API overview), unlike one that matches nobody."""
    return AuthenticationError("this volunteer can no longer answer here",
                               {"token": "blocked"})


def _seconds_left(expires_at) -> int:
    """Whole seconds until a token's expiry (0 once passed); CACHE_SECONDS if none."""
    if expires_at is None:
        return CACHE_SECONDS
    return max(0, int((aware(expires_at) - utcnow()).total_seconds()))


def _cache_key(digest: str) -> str:
    return f"bs:auth:{digest}"


def create_volunteer(services: Services, name: str | None = None) -> tuple[int, str]:
    """A new anonymous volunteer: no sign-up, just a token to keep."""
    token = new_token(VOLUNTEER_PREFIX)
    with services.db.session() as session:
        volunteer = Volunteer(token_hash=token_hash(token), name=name)
        session.add(volunteer)
        session.flush()
        return volunteer.id, token


def create_user(services: Services, organisation: str, role: str,
                name: str = "") -> tuple[int, str]:
    """A charity member, organisation admin or platform admin (staff of an
    organisation, made if new); returns the token."""
    if role not in ROLES:
        raise InvalidError(f"role must be one of {', '.join(ROLES)}", {"role": "unknown role"})
    if not organisation.strip():
        raise InvalidError("an organisation name is needed", {"org": "empty"})
    token = new_token(USER_PREFIX)
    with services.db.writing() as session:
        org = session.scalar(select(Organisation).where(Organisation.name == organisation))
        if org is None:
            org = Organisation(name=organisation)
            session.add(org)
            session.flush()
        user = User(organisation_id=org.id, role=role, name=name, token_hash=token_hash(token))
        session.add(user)
        session.flush()
        return user.id, token


# The password hash of an account `revoke_user` locked: no password matches it,
# and unlike a pending account's None it tells "forgot password" and the
# console's invitations to leave the account alone (engine.accounts.staff).
LOCKED_PASSWORD = "locked"


def revoke_user(services: Services, user_id: int) -> None:
    """End everything the user signs in with, at once and on every process: their
    personal API token, every organisation token they made in the console, their
    console sessions (a new session version), their password and any link that
    would set one. Only the command line gives them a way back in
    (engine.accounts.staff's restore: a new one-time link)."""
    _replace_token(services, user_id, None)
    with revoking(services) as forget, services.db.writing() as session:
        user = session.get(User, user_id)
        user.session_version = (user.session_version or 0) + 1
        if user.email is not None:  # a console account: locked until restored
            user.password_hash = LOCKED_PASSWORD
        session.execute(update(AccountLink).where(AccountLink.user_id == user_id,
                                                  AccountLink.used_at.is_(None))
                        .values(used_at=utcnow()))
        tokens = list(session.scalars(select(ApiToken).where(
            ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))))
        for row in tokens:
            row.revoked_at = utcnow()
        forget(row.token_hash for row in tokens)


def rotate_user(services: Services, user_id: int) -> str:
    """Give the user a new API token and end the old one; returns the new token."""
    token = new_token(USER_PREFIX)
    _replace_token(services, user_id, token)
    return token


def _replace_token(services: Services, user_id: int, token: str | None) -> None:
    with revoking(services) as forget, services.db.writing() as session:
        user = session.get(User, user_id)
        if user is None:
            raise NotFoundError(f"user {user_id} does not exist", {"user": "not found"})
        old = user.token_hash
        user.token_hash = token_hash(token) if token else revoked_marker()
        forget([] if is_revoked(old) else [old])


def volunteer_token_hashes(session, volunteer_id: int) -> list[str]:
    """Every token hash a volunteer signs in with: their own, and one per device
    they signed in on (engine.accounts.volunteers)."""
    own = session.scalar(select(Volunteer.token_hash).where(Volunteer.id == volunteer_id))
    devices = session.scalars(select(VolunteerDevice.token_hash).where(
        VolunteerDevice.volunteer_id == volunteer_id))
    return [own, *devices] if own is not None else list(devices)


def forget_token(services: Services, digest: str, tombstone: bytes = REVOKED) -> None:
    """Make every process refuse the token with this hash from now on: its
    cached identity is replaced by a tombstone (SQL already refuses it; BLOCKED
    for a platform-wide block, so the refusal says why); this process forgets
    it at once, others within LOCAL_SECONDS."""
    services.redis.set(_cache_key(digest), tombstone, ex=TOMBSTONE_SECONDS)
    _local_cache(services).pop(digest, None)


@contextmanager
def revoking(services: Services) -> Iterator[Callable[[Iterable[str]], None]]:
    """Tombstones for the tokens a transaction revokes, written before it commits.

        with revoking(services) as forget, services.db.writing() as session:
            ...  # the tokens end in SQL
            forget(digests)  # or forget(digests, BLOCKED) for a platform-wide block

    Written after the commit, a tombstone Redis failed to take left the token's
    cached identity honoured for a day while the caller got a 503 for a change
    that had gone through. Before it, Redis out of reach rolls the revocation
    back (a 503, nothing changed: the caller tries again), and a lookup that read
    SQL before the commit cannot cache over a tombstone (authenticate's NX). If
    the transaction then fails, the tombstones are taken back, best effort: the
    token is still valid, and one left behind refuses it for TOMBSTONE_SECONDS.

    On SQLite the writes run under the database's write lock: a Redis that
    hangs (not one that refuses connections) holds every writer for up to the
    client's read timeout. Revocations are rare, and SQLite deployments use the
    embedded Redis on the same machine."""
    written: list[str] = []

    def forget(digests: Iterable[str], tombstone: bytes = REVOKED) -> None:
        for digest in digests:
            forget_token(services, digest, tombstone)
            written.append(digest)

    try:
        yield forget
    except BaseException:
        for digest in written:
            try:
                trust_token_again(services, digest)
            except REDIS_DOWN:  # the rest expire within TOMBSTONE_SECONDS
                break
        raise


def forget_cached_identities(services: Services) -> int:
    """Drop every cached identity (after a restore: tokens may now name other
    rows, or none); each is looked up in SQL again on its next use."""
    _local_cache(services).clear()
    return unlink_matching(services.redis, _cache_key("*"))


def trust_token_again(services: Services, digest: str) -> None:
    """Undo ``forget_token`` for a token SQL accepts again (a volunteer unblocked
    platform-wide): the tombstone goes, the next call reads SQL and caches it."""
    services.redis.delete(_cache_key(digest))


REVOKED_PREFIX = "revoked:"  # a stored token hash no token has (SHA-256 hex has no colon)


def revoked_marker() -> str:
    """A stored token hash that no token has, unique per user."""
    return REVOKED_PREFIX + secrets.token_hex(16)


def is_revoked(stored_hash: str) -> bool:
    return stored_hash.startswith(REVOKED_PREFIX)


def console_status(password_hash: str | None) -> str:
    """A console account's status: "invited" (no password set yet), "revoked"
    (locked by revoke_user until restored) or "active"."""
    if password_hash is None:
        return "invited"
    return "revoked" if password_hash == LOCKED_PASSWORD else "active"


@dataclass(frozen=True)
class UserRow:
    id: int
    organisation: str
    role: str
    name: str
    # "active" (a personal API token works), "none" (a console account that
    # never had one: it signs in with its password) or "revoked"
    token: str
    console: str | None  # console_status; None for a user without a console account
    created_at: datetime


def _token_state(user: User) -> str:
    """UserRow.token: a console account starts with a marker in place of a token,
    so a marker alone means revoked only for a user who has no other way in."""
    if not is_revoked(user.token_hash):
        return "active"
    if user.email is None or user.password_hash == LOCKED_PASSWORD:
        return "revoked"
    return "none"


def list_users(services: Services, organisation: str | None = None) -> list[UserRow]:
    """Every charity member and admin, oldest first; one organisation's if named."""
    query = (select(User, Organisation.name).join(Organisation)
             .order_by(User.id))
    if organisation is not None:
        query = query.where(Organisation.name == organisation)
    with services.db.session() as session:
        return [UserRow(user.id, org, user.role, user.name or "", _token_state(user),
                        None if user.email is None else console_status(user.password_hash),
                        user.created_at) for user, org in session.execute(query)]


def organisation_names(services: Services) -> dict[int, str]:
    """Every organisation's name by id."""
    with services.db.session() as session:
        return dict(session.execute(select(Organisation.id, Organisation.name)).all())


def find_organisation(services: Services, name: str) -> int:
    """The id of the organisation called `name`; NotFoundError naming the known ones."""
    with services.db.session() as session:
        found = session.scalar(select(Organisation.id).where(Organisation.name == name))
        if found is not None:
            return found
        known = sorted(session.scalars(select(Organisation.name)))
    listed = ", ".join(repr(n) for n in known[:10]) or "none yet"
    raise NotFoundError(f"no organisation is called {name!r} (known: {listed})",
                        {"org": "not found"})
