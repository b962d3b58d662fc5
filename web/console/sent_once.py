"""A console form sent twice makes one thing, not two.

A double click on "Create project", or Back to the filled form and "Create
project" again, sent the same form twice and made two drafts (a charity
console audit). Such a form carries a random key (``form_key``, drawn when
the form is first shown and kept through its re-renders); the first request
that sends it claims the key in Redis, and a later one with the same values
is sent to what the first made. Changed values (Back, another name, Create)
are a new thing, made as asked.

Redis out of reach: the form goes ahead (two drafts are better than none).
"""
from __future__ import annotations

import hashlib
import re
import secrets
import time

from engine.store.redis_server import REDIS_DOWN
from web.services import services

KEY = "bs:console:sent:{user}:{key}"
PENDING = b"-"
CLAIM_SECONDS = 30  # the first request's time to make the thing
KEEP_SECONDS = 24 * 3600  # a form left open in a tab for a day is still known
WAIT_SECONDS = 5.0  # a second click waits this long for the first to finish
FORM_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")
NOT_VALUES = ("csrf_token", "form_key")


def new_key() -> str:
    return secrets.token_urlsafe(16)


def key_of(form) -> str:
    """The posted form's key, or a new one (a form first shown, or a bad key)."""
    posted = form.get("form_key", "")
    return posted if FORM_KEY.fullmatch(posted) else new_key()


def claim(user_id: int, form) -> str | None:
    """None when this request goes ahead (the first to send this form with these
    values; then ``made`` or ``failed``); else the address of what the first
    one made, waiting up to WAIT_SECONDS for it to finish."""
    key = form.get("form_key", "")
    if not FORM_KEY.fullmatch(key):
        return None
    name, digest = KEY.format(user=user_id, key=key), _digest(form)
    deadline = time.monotonic() + WAIT_SECONDS
    try:
        while True:
            if services().redis.set(name, PENDING + b" " + digest, nx=True, ex=CLAIM_SECONDS):
                return None
            found = services().redis.get(name)
            if found is None:  # expired, or the first failed: claim it again
                continue
            state, _, rest = found.partition(b" ")
            sent_digest, _, url = rest.partition(b" ")
            if sent_digest != digest:
                return None  # other values: another thing, made as asked
            if state != PENDING:
                return url.decode()
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)
    except REDIS_DOWN:
        return None


def made(user_id: int, form, url: str) -> None:
    """The first request made its thing, at ``url``."""
    key = form.get("form_key", "")
    if FORM_KEY.fullmatch(key):
        try:
            services().redis.set(KEY.format(user=user_id, key=key),
                                 b"made " + _digest(form) + b" " + url.encode(), ex=KEEP_SECONDS)
        except REDIS_DOWN:
            pass


def failed(user_id: int, form) -> None:
    """The first request made nothing: the form may be sent again."""
    key = form.get("form_key", "")
    if FORM_KEY.fullmatch(key):
        try:
            services().redis.delete(KEY.format(user=user_id, key=key))
        except REDIS_DOWN:
            pass


def _digest(form) -> bytes:
    values = sorted((name, value) for name in form if name not in NOT_VALUES
                    for value in form.getlist(name))
    return hashlib.sha256(repr(values).encode()).hexdigest()[:32].encode()
