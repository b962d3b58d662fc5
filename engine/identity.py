"""Who is calling: volunteers and users (charity members, admins) by API token.

Token lookups happen on every request, the volunteer's hot path included, so
the token hash -> identity mapping is cached in Redis; SQL answers a miss and
refills the cache (Redis can be wiped and this heals by itself).
"""
from __future__ import annotations

import json
import time
import weakref
from dataclasses import dataclass

from sqlalchemy import select

from engine.errors import AuthenticationError, InvalidError, PermissionDeniedError
from engine.services import Services
from engine.store.models import Organisation, User, Volunteer
from engine.tokens import USER_PREFIX, VOLUNTEER_PREFIX, new_token, token_hash

CACHE_SECONDS = 24 * 3600
# Volunteer identities are also kept in each process for a few seconds: the
# volunteer's two calls per task then skip a Redis round trip. Blocking is per
# project and checked by the dispatch scripts on every call, never here.
LOCAL_SECONDS = 10.0
LOCAL_MAX = 20_000
ROLES = ("charity", "admin")


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


def authenticate(services: Services, token: str | None) -> Identity:
    if not token:
        raise AuthenticationError("send 'Authorization: Bearer <token>'")
    digest = token_hash(token)
    local = _local_cache(services)
    now = time.monotonic()
    hit = local.get(digest)
    if hit is not None and hit[0] > now:
        return hit[1]
    cached = services.redis.get(_cache_key(digest))
    if cached:
        identity = Identity(**json.loads(cached))
    else:
        identity = _lookup(services, token, digest)
        services.redis.set(_cache_key(digest), json.dumps(identity.__dict__), ex=CACHE_SECONDS)
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


def _lookup(services: Services, token: str, digest: str) -> Identity:
    with services.db.session() as session:
        if token.startswith(VOLUNTEER_PREFIX):
            volunteer = session.scalar(select(Volunteer).where(Volunteer.token_hash == digest))
            if volunteer is not None and not volunteer.blocked:
                return Identity("volunteer", volunteer.id)
        elif token.startswith(USER_PREFIX):
            user = session.scalar(select(User).where(User.token_hash == digest))
            if user is not None:
                return Identity("user", user.id, user.organisation_id, user.role)
    raise AuthenticationError("this token is not valid")


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
    """A charity member or admin of an organisation (made if new); returns the token."""
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
