"""Passwords and failed sign-ins, shared by staff (console) and volunteer accounts.

Passwords are hashed with argon2id (argon2-cffi's defaults). Failed sign-ins
are counted in Redis per account and per address, so guessing is slow
everywhere at once; a check against an account that does not exist verifies
a dummy hash, so both cases take as long.
"""
from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from engine.errors import InvalidError, TooManyRequestsError
from engine.identity import LOCKED_PASSWORD
from engine.services import Services

MIN_PASSWORD = 10
MAX_PASSWORD = 1000
# Failed sign-ins allowed per window: per account (slows guessing one password)
# and per address (slows trying many accounts from one place).
WINDOW_SECONDS = 15 * 60
MAX_FAILURES_PER_ACCOUNT = 10
MAX_FAILURES_PER_ADDRESS = 50

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def check_password(password: str) -> None:
    """A password long enough to be worth having, and not absurdly long."""
    if len(password or "") < MIN_PASSWORD:
        raise InvalidError(f"a password needs at least {MIN_PASSWORD} characters",
                           {"password": f"at least {MIN_PASSWORD} characters"})
    if len(password) > MAX_PASSWORD:
        raise InvalidError("this password is too long", {"password": "too long"})


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` is the one hashed in `stored`; None (no account) takes
    as long as a real check and is always False."""
    real = stored if stored != LOCKED_PASSWORD else None  # a revoked account: as none
    try:
        return _hasher.verify(real or _DUMMY_HASH, password or "") and real is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Hashed with weaker parameters than today's: hash it again after a sign-in."""
    return _hasher.check_needs_rehash(stored)


def check_attempts(services: Services, keys: list[str], hint: str = "") -> None:
    """429 while the account's or the address's window of failures is full.
    `keys`: the account's counter, then the address's (a lone key gets the
    account's allowance); `hint` ends the message."""
    limits = (MAX_FAILURES_PER_ACCOUNT, MAX_FAILURES_PER_ADDRESS)[:len(keys)]
    pipe = services.redis.pipeline(transaction=False)  # a Cluster: keys in two slots
    for key in keys:
        pipe.get(key)
    counts = pipe.execute()
    for key, count, limit in zip(keys, counts, limits, strict=True):
        if count is not None and int(count) >= limit:
            wait = max(services.redis.ttl(key), 1)
            raise TooManyRequestsError(
                f"too many failed sign-ins: try again in {(wait + 59) // 60} minutes{hint}",
                retry_after=wait)


def count_failure(services: Services, keys: list[str]) -> None:
    """One more failure in each window; a window starts at its first failure.
    (EXPIRE ... NX would say it in one call, but the embedded Redis is 6.x.)"""
    pipe = services.redis.pipeline(transaction=False)  # a Cluster: keys in two slots
    for key in keys:
        pipe.incr(key)
        pipe.ttl(key)
    replies = pipe.execute()
    for key, ttl in zip(keys, replies[1::2], strict=True):
        if ttl < 0:
            services.redis.expire(key, WINDOW_SECONDS)
