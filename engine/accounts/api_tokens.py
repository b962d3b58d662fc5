"""An organisation's API tokens, made and revoked by its staff in the console.

A token acts as the staff member who made it (same organisation, same role),
is shown once and stored as a SHA-256 hash like every bitesize token.
Revoking one ends it at once on every process (engine.identity.revoking).
A token may also be made to end by itself after EXPIRY_DAYS days: past its
expiry it is refused like a revoked one, and no process keeps its identity
cached beyond that moment (engine.identity).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from engine.errors import InvalidError, NotFoundError, PermissionDeniedError
from engine.identity import Identity, revoking
from engine.services import Services
from engine.store.models import ApiToken, User, aware, utcnow
from engine.tokens import USER_PREFIX, new_token, token_hash

MAX_NAME = 100
EXPIRY_DAYS = (30, 90, 365)  # the lifetimes staff may choose; None: until revoked


@dataclass(frozen=True)
class TokenRow:
    id: int
    name: str
    made_by: str
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None
    revocable: bool = False  # by the caller who listed it (may_revoke)

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and aware(self.expires_at) <= utcnow()


def create_api_token(services: Services, identity: Identity, name: str,
                     expires_in_days: int | None = None) -> tuple[int, str]:
    """A new token for the caller's organisation, lasting until revoked or, with
    expires_in_days (one of EXPIRY_DAYS), that many days; returns (id, token),
    the only time the token itself is seen."""
    identity.require_user()
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidError(f"give the token a name of 1 to {MAX_NAME} characters, "
                           "e.g. what will use it", {"name": "1 to 100 characters"})
    if expires_in_days is not None and expires_in_days not in EXPIRY_DAYS:
        raise InvalidError("a token lasts until revoked or "
                           f"{', '.join(map(str, EXPIRY_DAYS))} days",
                           {"expires": "not a lifetime on offer"})
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    token = new_token(USER_PREFIX)
    with services.db.writing() as session:
        row = ApiToken(organisation_id=identity.organisation_id, user_id=identity.id, name=name,
                       token_hash=token_hash(token), expires_at=expires_at)
        session.add(row)
        session.flush()
        return row.id, token


def list_api_tokens(services: Services, identity: Identity) -> list[TokenRow]:
    """The organisation's tokens, newest first, revoked ones included (for the record)."""
    identity.require_user()
    query = (select(ApiToken, User).join(User, User.id == ApiToken.user_id)
             .where(ApiToken.organisation_id == identity.organisation_id)
             .order_by(ApiToken.id.desc()))
    with services.db.session() as session:
        return [TokenRow(t.id, t.name, u.email or u.name or f"user {u.id}", t.created_at,
                         t.revoked_at, t.expires_at, may_revoke(identity, t))
                for t, u in session.execute(query)]


def may_revoke(identity: Identity, token: ApiToken) -> bool:
    """Whoever made a token, and the organisation's admins, may end it; another
    charity member may not (a security review ended an admin's token, and the
    scripts it ran, from a charity member's session)."""
    return token.user_id == identity.id or identity.moderates(token.organisation_id)


def revoke_api_token(services: Services, identity: Identity, token_id: int) -> None:
    """End one of the organisation's tokens (see may_revoke); another
    organisation's looks missing."""
    identity.require_user()
    with revoking(services) as forget, services.db.writing() as session:
        row = session.get(ApiToken, token_id)
        if row is None or row.organisation_id != identity.organisation_id:
            raise NotFoundError(f"token {token_id} does not exist", {"token": "not found"})
        if not may_revoke(identity, row):
            raise PermissionDeniedError("only whoever made this token, or an admin of the "
                                        "organisation, may revoke it", {"token": "not yours"})
        if row.revoked_at is None:
            session.execute(update(ApiToken).where(ApiToken.id == token_id)
                            .values(revoked_at=utcnow()))
        forget([row.token_hash])
