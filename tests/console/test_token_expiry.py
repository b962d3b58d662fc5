"""API tokens that end by themselves: chosen in the console, refused once past, never
kept in a cache beyond their expiry."""
from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import update

from engine.identity import _cache_key
from engine.store.models import ApiToken, utcnow
from engine.tokens import token_hash


def _make(console, forms, **data) -> tuple[str, str]:
    made = forms.post(console, "/console/tokens", {"name": "nightly export", **data})
    assert made.status_code == 201, made.get_data(as_text=True)
    page = made.get_data(as_text=True)
    return re.search(r'id="new-token"[^>]*value="([^"]+)"', page).group(1), page


def _projects(app, token: str) -> int:
    return app.test_client().get("/api/v1/projects",
                                 headers={"Authorization": f"Bearer {token}"}).status_code


def test_a_token_with_a_lifetime_works_and_says_when_it_ends(app, console, forms, services):
    token, page = _make(console, forms, expires="30")
    ends = (utcnow() + timedelta(days=30)).strftime("%Y-%m-%d")
    assert f"active, expires {ends}" in page
    assert _projects(app, token) == 200
    # the identity cached for other processes lives no longer than the token
    ttl = services.redis.ttl(_cache_key(token_hash(token)))
    assert 0 < ttl <= 30 * 24 * 3600


def test_a_token_made_without_a_lifetime_lasts_until_revoked(app, console, forms):
    token, page = _make(console, forms)
    assert "active, expires" not in page and ">active<" in page
    assert _projects(app, token) == 200


def test_a_token_past_its_expiry_is_refused_and_shown_expired(app, console, forms, services):
    token, _ = _make(console, forms, expires="90")
    with services.db.session() as session:
        session.execute(update(ApiToken).where(ApiToken.token_hash == token_hash(token))
                        .values(expires_at=utcnow() - timedelta(seconds=5)))
    assert _projects(app, token) == 401
    page = console.get("/console/tokens").get_data(as_text=True)
    assert "expired " in page
    assert "/revoke" not in page  # nothing left to revoke


def test_a_cached_token_ends_with_its_expiry(app, console, forms, services):
    """Cached while valid, the identity is not served past the expiry from the cache."""
    token, _ = _make(console, forms, expires="30")
    with services.db.session() as session:
        session.execute(update(ApiToken).where(ApiToken.token_hash == token_hash(token))
                        .values(expires_at=utcnow() + timedelta(seconds=2)))
    services.redis.delete(_cache_key(token_hash(token)))
    assert _projects(app, token) == 200  # cached now, for at most 2 seconds
    assert services.redis.ttl(_cache_key(token_hash(token))) <= 2


def test_a_lifetime_not_on_offer_is_refused_beside_its_field(console, forms):
    reply = forms.post(console, "/console/tokens", {"name": "x", "expires": "7"})
    assert reply.status_code == 422
    page = reply.get_data(as_text=True)
    assert 'id="f-expires-error"' in page and 'aria-invalid="true"' in page
