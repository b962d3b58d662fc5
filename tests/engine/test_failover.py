"""A new Redis master (a failover, or a restart from an older snapshot): what
engine.dispatch.failover.check_master drops so that SQL decides again. The
Sentinel and Cluster runs are in tests/test_redis_topologies.py; this is the
single server every deployment starts with."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import redis
from sqlalchemy import update

from engine import identity as identity_module
from engine.dispatch import failover
from engine.dispatch.dispatcher import keys
from engine.dispatch.failover import REPLID_KEY, check_master
from engine.errors import AuthenticationError
from engine.identity import Identity, authenticate, create_volunteer, revoked_marker
from engine.store.models import User, Volunteer
from engine.tokens import token_hash


def _master_changes(services) -> None:
    """As after a reconnection to a master with another replication id: the
    next check_master finds it."""
    services.redis_reconnected = True
    check_master(services)  # the first check only notes the ids
    services.redis.set(REPLID_KEY, "an-old-master")
    services.redis_reconnected = True


def _new_master(services) -> bool:
    _master_changes(services)
    return check_master(services)


def _failing(patched, name: str, error: Exception) -> None:
    def fail(*_args, **_kwargs):
        raise error
    patched.setattr(failover, name, fail)


def test_a_new_master_forgets_identities_whose_tombstone_it_may_lack(services, make_project):
    """A volunteer blocked platform-wide just before a failover: SQL refuses
    them, but the tombstone that replaced their cached identity had not
    reached the replica, which still holds the identity (a day's lifetime)."""
    project = make_project(tasks=2)
    volunteer_id, token = create_volunteer(services)
    assert authenticate(services, token) == Identity("volunteer", volunteer_id)
    with services.db.writing() as session:  # the block, its tombstone lost
        session.get(Volunteer, volunteer_id).blocked = True
    identity_module._local_cache(services).clear()  # another process, or seconds later
    assert authenticate(services, token) == Identity("volunteer", volunteer_id)  # stale

    assert services.redis.exists(keys(project.id)["meta"])
    assert _new_master(services) is True
    assert not services.redis.exists(keys(project.id)["meta"])  # dispatch rebuilt from SQL
    with pytest.raises(AuthenticationError):
        authenticate(services, token)


def test_the_same_master_keeps_the_cached_identities(services):
    """A new connection to the same master (a pool growing, a process starting)
    costs nobody a lookup in SQL."""
    volunteer_id, token = create_volunteer(services)
    authenticate(services, token)
    services.redis_reconnected = True
    check_master(services)
    services.redis_reconnected = True
    assert check_master(services) is False
    digest = identity_module.token_hash(token)
    assert services.redis.exists(identity_module._cache_key(digest))
    identity_module._local_cache(services).clear()
    assert authenticate(services, token) == Identity("volunteer", volunteer_id)


def test_a_drop_that_fails_is_done_by_the_next_check(services, make_project, monkeypatch):
    """GETSET records the new master before the drop: a drop that failed half way
    (a SCAN timing out) would otherwise never be tried again."""
    project = make_project(tasks=2)
    _master_changes(services)
    with monkeypatch.context() as patched:
        _failing(patched, "forget_cached_identities",
                 redis.exceptions.TimeoutError("SCAN timed out"))
        with pytest.raises(redis.exceptions.TimeoutError):
            check_master(services)
    assert services.redis_reconnected is True
    assert services.redis.get(REPLID_KEY) == b"an-old-master"
    assert check_master(services) is True  # done now
    assert not services.redis.exists(keys(project.id)["meta"])


def test_the_first_api_call_after_a_failover_is_not_answered_from_a_stale_identity(
        services, client, auth):
    """The check used to run on the dispatch path only, after the token was looked
    up: a staff token whose tombstone the new master lacked kept working until
    some volunteer asked for a task."""
    headers = auth.charity()
    assert client.get("/api/v1/projects", headers=headers).status_code == 200  # cached
    digest = token_hash(headers["Authorization"].split()[1])
    with services.db.writing() as session:  # rotated away, the tombstone lost
        session.execute(update(User).where(User.token_hash == digest)
                        .values(token_hash=revoked_marker()))
    assert client.get("/api/v1/projects", headers=headers).status_code == 200  # stale
    services.redis.set(REPLID_KEY, "an-old-master")
    services.redis_reconnected = True
    assert client.get("/api/v1/projects", headers=headers).status_code == 401


def test_a_drop_owed_when_redis_went_away_is_done_by_this_process_later(
        services, make_project, monkeypatch):
    """The drop failed because Redis went away, so putting the old ids back failed
    too: GETSET now answers this process's own new ids, and only the drop it
    remembers owing makes the next check do it (a review found it lost)."""
    project = make_project(tasks=2)
    _master_changes(services)
    with monkeypatch.context() as patched:
        _failing(patched, "forget_cached_identities",
                 redis.exceptions.ConnectionError("Redis went away"))
        patched.setattr(failover, "_put_back", lambda *_args: None)  # refused as well
        with pytest.raises(redis.exceptions.ConnectionError):
            check_master(services)
    assert services.redis.get(REPLID_KEY) != b"an-old-master"
    assert check_master(services) is True
    assert not services.redis.exists(keys(project.id)["meta"])
    assert services.failover_owed is None
    services.redis_reconnected = True
    assert check_master(services) is False  # paid: nothing owed any more


def test_a_failed_master_check_fails_no_api_call(services, client, auth, monkeypatch):
    """A demoted master refusing writes during a failover: the check fails, the
    call is still answered (it used to be answered, from the cache)."""
    headers = auth.charity()
    assert client.get("/api/v1/projects", headers=headers).status_code == 200
    services.redis.set(REPLID_KEY, "an-old-master")
    services.redis_reconnected = True
    _failing(monkeypatch, "drop_states",
             redis.exceptions.ReadOnlyError("READONLY You can't write against a replica."))
    assert client.get("/api/v1/projects", headers=headers).status_code == 200
    assert services.redis_reconnected is True  # owed, for the next call


def test_a_lookup_slower_than_a_tombstone_lives_caches_nothing(services, monkeypatch):
    """A lookup that read SQL just before a revocation, then stalled past the
    tombstone's minute, would cache the revoked token's identity for a day."""
    volunteer_id, token = create_volunteer(services)
    clock = iter([1000.0, 1000.0 + identity_module.TOMBSTONE_SECONDS])
    monkeypatch.setattr(identity_module, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    assert authenticate(services, token) == Identity("volunteer", volunteer_id)
    assert not services.redis.exists(identity_module._cache_key(token_hash(token)))
