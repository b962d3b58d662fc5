"""Lease tokens: signed, so a submit can be verified even after Redis forgot the lease.

A token names the project, task and volunteer it was issued for and when it
expires, with an HMAC over them. Losing Redis (a restart, a flush) therefore
never makes a volunteer's typed answer unverifiable: nothing is thrown away.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from engine.errors import GoneError


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
    """The claim inside a token, or GoneError when it is not one of ours."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 5 or not all(p.isdigit() for p in parts[:4]):
        raise GoneError("this lease is not known", {"lease": "unknown lease token"})
    claim = LeaseClaim(*(int(p) for p in parts[:4]))
    if not hmac.compare_digest(parts[4], _sign(secret, claim.body)):
        raise GoneError("this lease is not known", {"lease": "unknown lease token"})
    return claim


def _sign(secret: str, body: str) -> str:
    return hmac.new(secret.encode(), f"lease:{body}".encode(), hashlib.sha256).hexdigest()[:32]
