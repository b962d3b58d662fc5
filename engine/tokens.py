"""API tokens: random, shown once, stored only as a SHA-256 hash.

Tokens carry 256 bits of randomness, so a fast hash is as safe as a slow one
and keeps the per-request lookup cheap. The prefix tells at a glance (and in
logs) whether a token belongs to a volunteer or to a charity/admin user.
"""
from __future__ import annotations

import hashlib
import secrets

VOLUNTEER_PREFIX = "bsv_"
USER_PREFIX = "bsu_"


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
