"""A revocation and its tombstone land together (engine.identity.revoking): the
tombstone is written before the commit, so Redis failing at that moment rolls
the revocation back instead of leaving the token's cached identity honoured
for a day behind a change that went through."""
from __future__ import annotations

import pytest
import redis

from engine import identity as identity_module
from engine.accounts.api_tokens import create_api_token, revoke_api_token
from engine.errors import AuthenticationError
from engine.identity import Identity, authenticate, revoke_user, revoking
from engine.store.models import ApiToken, User
from engine.tokens import token_hash


def _redis_fails_at_tombstones(monkeypatch, services):
    """Redis out of reach for a SET (a revocation writes none but its tombstones)."""
    def refuse(*_args, **_kwargs):
        raise redis.exceptions.ConnectionError("Redis went away")
    monkeypatch.setattr(services.redis, "set", refuse)


def test_a_token_revoked_while_redis_fails_is_not_revoked_and_can_be_again(services, owner,
                                                                          monkeypatch):
    token_id, token = create_api_token(services, owner, "nightly export")
    assert authenticate(services, token).id == owner.id  # cached in Redis now
    with monkeypatch.context() as patched:
        _redis_fails_at_tombstones(patched, services)
        with pytest.raises(redis.exceptions.ConnectionError):
            revoke_api_token(services, owner, token_id)
    with services.db.session() as session:
        assert session.get(ApiToken, token_id).revoked_at is None  # nothing changed
    assert authenticate(services, token).id == owner.id  # as SQL says

    revoke_api_token(services, owner, token_id)  # tried again, with Redis back
    with pytest.raises(AuthenticationError):
        authenticate(services, token)


def test_ending_a_user_while_redis_fails_changes_nothing(services, owner, monkeypatch):
    with services.db.session() as session:
        old_hash = session.get(User, owner.id).token_hash
    extra_id, extra = create_api_token(services, owner, "the website")
    with monkeypatch.context() as patched:
        _redis_fails_at_tombstones(patched, services)
        with pytest.raises(redis.exceptions.ConnectionError):
            revoke_user(services, owner.id)
    with services.db.session() as session:
        assert session.get(User, owner.id).token_hash == old_hash
        assert session.get(ApiToken, extra_id).revoked_at is None
    assert authenticate(services, extra).id == owner.id


def test_a_transaction_that_fails_after_its_tombstones_takes_them_back(services):
    """The token is still valid in SQL: it must not be refused for a day."""
    volunteer_id, token = identity_module.create_volunteer(services)
    authenticate(services, token)
    with pytest.raises(RuntimeError), revoking(services) as forget:
        forget([token_hash(token)])
        key = identity_module._cache_key(token_hash(token))
        assert services.redis.get(key) == identity_module.REVOKED
        # one a failed revocation could not take back refuses a valid token briefly
        assert 0 < services.redis.ttl(key) <= identity_module.TOMBSTONE_SECONDS
        raise RuntimeError("the commit failed")
    assert not services.redis.exists(identity_module._cache_key(token_hash(token)))
    assert authenticate(services, token) == Identity("volunteer", volunteer_id)
