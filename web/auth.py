"""Bearer tokens on every API call: who is asking, resolved once per request."""
from __future__ import annotations

from flask import g, request

from engine.identity import Identity, authenticate
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
    """The caller; 401 when the token is missing or wrong."""
    if "identity" not in g:
        g.identity = authenticate(services(), bearer_token())
    return g.identity


def optional_identity() -> Identity | None:
    """The caller if a token was sent (and valid), else None for public reads."""
    if bearer_token() is None:
        return None
    return identity()
