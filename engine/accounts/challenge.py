"""Proof of work for anonymous sign-up: off unless a site turns it on.

A site that meets crowds of fake volunteers (issue 14: ten fresh accounts
outvoted an honest one) can make every anonymous sign-up cost the caller
some computing, on top of the per-address limits: Settings.signup_work is
the number of leading zero bits asked for (0, the default: no challenge).

The flow, with no third-party service and nothing kept per challenge until
it is used: GET /api/v1/volunteers/challenge gives a challenge signed with
the site's secret and valid for CHALLENGE_SECONDS; the caller finds a nonce
such that SHA-256("<challenge>:<nonce>") starts with that many zero bits
(2^bits hashes on average; the volunteer page's SHA-256, static/signup_work.js,
did about 200,000 a second in headless Chromium on our 2-core machines: 16
bits in about 0.3 s, each further bit doubling it) and sends both with POST /api/v1/volunteers.
Each solved challenge signs up one volunteer: Redis remembers it as used
until it expires.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import redis

from engine.errors import ConflictError, InvalidError

CHALLENGE_SECONDS = 600
# 4 million hashes on average: a phone's browser at ~50,000 a second takes 84 s,
# and seldom runs past CHALLENGE_SECONDS; more would lock people out, not fakes
MAX_BITS = 22
USED_PREFIX = "bs:challenge:used:"


class ChallengeRequiredError(InvalidError):
    """This site asks anonymous sign-ups for proof of work (a 422 the page acts on)."""

    code = "challenge_required"

    def __init__(self) -> None:
        super().__init__("this site asks new volunteers to solve a challenge first: "
                         "GET /api/v1/volunteers/challenge",
                         {"challenge": "required"})


@dataclass(frozen=True)
class Challenge:
    text: str
    bits: int
    expires_at: int  # Unix seconds


def check_setting(bits: int) -> None:
    """At start-up: a difficulty the site can live with (ValueError otherwise)."""
    if not 0 <= bits <= MAX_BITS:
        raise ValueError(f"BITESIZE_SIGNUP_WORK must be 0 (off) to {MAX_BITS} bits, not {bits}")


def issue(secret: str, bits: int, now: float | None = None) -> Challenge:
    """A new challenge asking `bits` zero bits, signed so that it needs no storage."""
    expires = int(now if now is not None else time.time()) + CHALLENGE_SECONDS
    body = f"{bits}.{expires}.{secrets.token_urlsafe(12)}"
    return Challenge(f"{body}.{_signature(secret, body)}", bits, expires)


def verify(secret: str, bits: int, text: str | None, nonce: str | None,
           now: float | None = None) -> str:
    """Check a solved challenge without touching Redis; its key for `spend`.

    Raises ChallengeRequiredError when none was sent, InvalidError (naming
    the field) when it is forged, expired, easier than the site asks now, or
    the nonce does not solve it."""
    if not text:
        raise ChallengeRequiredError()
    body, _, signature = text.rpartition(".")
    parts = body.split(".")
    if len(parts) != 3 or not hmac.compare_digest(signature, _signature(secret, body)):
        raise InvalidError("this challenge was not issued here", {"challenge": "not valid"})
    asked, expires = int(parts[0]), int(parts[1])
    if expires < (now if now is not None else time.time()):
        raise InvalidError("this challenge has expired: ask for a new one",
                           {"challenge": "expired"})
    if asked < bits:
        raise InvalidError("this challenge is easier than the site asks now: ask for a new one",
                           {"challenge": "too easy"})
    if nonce is None or not solves(text, nonce, asked):
        raise InvalidError("the nonce does not solve the challenge", {"nonce": "wrong"})
    return parts[2]


def spend(connection: redis.Redis, key: str) -> None:
    """Use a verified challenge up: ConflictError if it signed someone up before."""
    if not connection.set(USED_PREFIX + key, 1, nx=True, ex=CHALLENGE_SECONDS):
        raise ConflictError("this challenge was used already: ask for a new one",
                            {"challenge": "used"})


def solves(text: str, nonce: str, bits: int) -> bool:
    """Whether SHA-256("text:nonce") starts with `bits` zero bits."""
    digest = hashlib.sha256(f"{text}:{nonce}".encode()).digest()
    return int.from_bytes(digest, "big") >> (256 - bits) == 0 if bits else True


def solve(text: str, bits: int) -> str:
    """A nonce that solves a challenge (for tests, scripts and the command line)."""
    nonce = 0
    while not solves(text, str(nonce), bits):
        nonce += 1
    return str(nonce)


def _signature(secret: str, body: str) -> str:
    # "challenge:" keeps these signatures apart from the secret's other uses (leases, news)
    return hmac.new(secret.encode(), f"challenge:{body}".encode(),
                    hashlib.sha256).hexdigest()[:32]
