"""Passwords and failed sign-ins, shared by staff (console) and volunteer accounts.

Passwords are hashed with argon2id (argon2-cffi's defaults). Failed sign-ins
are counted in Redis per account and per address, so guessing is slow
everywhere at once; a check against an account that does not exist verifies
a dummy hash, so both cases take as long.
"""
from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

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


def reserve_attempt(services: Services, keys: list[str], hint: str = "") -> None:
    """Count this attempt as a failure before the password is checked, in each
    window (the account's counter, then the address's; a lone key gets the
    account's allowance), and 429 (the count taken back) when that is over
    the window's allowance. Counted after the check, attempts already in
    flight all saw room: 30 at once got 30 guesses against an allowance of
    10. An attempt that succeeds gives its count back (attempt_succeeded).
    `hint` ends the message. (EXPIRE ... NX would start a window in one call,
    but the embedded Redis is 6.x.)"""
    limits = (MAX_FAILURES_PER_ACCOUNT, MAX_FAILURES_PER_ADDRESS)[:len(keys)]
    pipe = services.redis.pipeline(transaction=False)  # a Cluster: keys in two slots
    for key in keys:
        pipe.incr(key)
        pipe.ttl(key)
    replies = pipe.execute()
    counts, ttls = replies[0::2], replies[1::2]
    for key, ttl in zip(keys, ttls, strict=True):
        if ttl < 0:  # a window starts at its first attempt
            services.redis.expire(key, WINDOW_SECONDS)
    for key, count, limit in zip(keys, counts, limits, strict=True):
        if count > limit:
            attempt_succeeded(services, keys)  # refused unchecked: not a failure
            wait = max(services.redis.ttl(key), 1)
            raise TooManyRequestsError(
                f"too many failed sign-ins: try again in {(wait + 59) // 60} minutes{hint}",
                retry_after=wait)


# DECR only a window still open: on one that expired meanwhile it made a -1
# that never expires, one more failure allowed in every window after.
_GIVE_BACK = "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end"


def attempt_succeeded(services: Services, keys: list[str]) -> None:
    """Give back the count reserve_attempt took: the password was right."""
    for key in keys:  # one script per key: a Cluster puts them in two slots
        services.redis.eval(_GIVE_BACK, 1, key)


@contextmanager
def attempt(services: Services, keys: list[str], hint: str = "") -> Iterator[None]:
    """One sign-in attempt: reserved (reserve_attempt), then given back unless
    it failed on the credentials (InvalidError). A server error on the way (a
    database hiccup, Redis) is not the user's failed guess."""
    reserve_attempt(services, keys, hint)
    try:
        yield
    except InvalidError:
        raise
    except BaseException:
        _give_back_quietly(services, keys)
        raise
    _give_back_quietly(services, keys)


def _give_back_quietly(services: Services, keys: list[str]) -> None:
    """Redis failing here leaves one count taken: no reason to fail a sign-in
    whose device is stored, nor to hide the error that ended one."""
    with contextlib.suppress(Exception):
        attempt_succeeded(services, keys)
