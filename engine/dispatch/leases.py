"""Lease tokens: signed, so a submit can be verified even after Redis forgot the lease.

A token names the project, task and volunteer it was issued for and when it
expires, with an HMAC over them. Losing Redis (a restart, a flush) therefore
never makes a volunteer's typed answer unverifiable: nothing is thrown away.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from engine.errors import GoneError

_NUMBER = r"([1-9][0-9]{0,18})"
_TOKEN = re.compile(r"\.".join([_NUMBER] * 4) + r"\.([0-9a-f]{32})")


@dataclass(frozen=True)
class LeaseClaim:
    project_id: int
    task_id: int
    volunteer_id: int
    expires_ms: int

    @property
    def body(self) -> str:
        return f"{self.project_id}.{self.task_id}.{self.volunteer_id}.{self.expires_ms}"


def issue(secret: str, claim: LeaseClaim) -> str:
    return f"{claim.body}.{_sign(secret, claim.body)}"


def verify(secret: str, token: str) -> LeaseClaim:
    """The claim inside a token, or GoneError when it is not one of ours.

    The shape is matched first, in ASCII only: str.isdigit() also accepts "²" or
    Arabic digits, which int() and hmac.compare_digest() then fail on (a 500),
    and unbounded digits would make int() slow. Only the canonical spelling (no
    leading zeros) matches, so one lease has one token.
    """
    match = _TOKEN.fullmatch(token) if isinstance(token, str) else None
    if match is None:
        raise GoneError("this lease is not known", {"lease": "unknown lease token"})
    claim = LeaseClaim(*(int(n) for n in match.groups()[:4]))
    if not hmac.compare_digest(match[5], _sign(secret, claim.body)):
        raise GoneError("this lease is not known", {"lease": "unknown lease token"})
    return claim


def _sign(secret: str, body: str) -> str:
    return hmac.new(secret.encode(), f"lease:{body}".encode(), hashlib.sha256).hexdigest()[:32]
