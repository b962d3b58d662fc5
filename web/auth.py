"""Bearer tokens on every API call: who is asking, resolved once per request.

Also where two rate limits hold on Flask's side (web.rate_limits): bad tokens
per client address (only failures count) and calls per user.
"""
from __future__ import annotations

from flask import g, request

from engine.dispatch.failover import check_master_before_auth
from engine.errors import AuthenticationError
from engine.identity import Identity, authenticate
from web import rate_limits
from web.services import services


def bearer_token() -> str | None:
    return token_from_header(request.headers.get("Authorization", ""))


def token_from_header(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def identity() -> Identity:
    """The caller; 401 when the token is missing or wrong (429 past the limit of
    bad tokens from this address); 429 past the user's limit of calls."""
    if "identity" not in g:
        g.identity = _authenticated(bearer_token())
        if not g.identity.is_volunteer:
            rate_limits.enforce(*rate_limits.api_checks(g.identity.id))
    return g.identity


def _authenticated(token: str | None) -> Identity:
    check_master_before_auth(services())
    try:
        return authenticate(services(), token)
    except AuthenticationError:
        if token is not None:  # a missing token is a mistake, not a guess
            rate_limits.enforce(*rate_limits.auth_failure_checks(rate_limits.client_address()))
        raise


def optional_identity() -> Identity | None:
    """The caller if a token was sent (and valid), else None for public reads."""
    if bearer_token() is None:
        return None
    return identity()
