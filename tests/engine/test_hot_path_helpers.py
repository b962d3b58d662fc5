"""The hot path's helpers: the in-process volunteer identity cache, the Core
connection, and the dispatch scripts' cached key lists."""
from __future__ import annotations

import pytest
from sqlalchemy import insert, select

from engine import identity as identity_module
from engine.dispatch import _script_keys, keys, seen_key
from engine.errors import AuthenticationError
from engine.identity import Identity, authenticate, create_user, create_volunteer
from engine.models import Organisation
from engine.tokens import token_hash


def test_volunteer_identity_is_kept_in_process_for_a_few_seconds(services, monkeypatch):
    volunteer_id, token = create_volunteer(services)
    assert authenticate(services, token) == Identity("volunteer", volunteer_id)
    services.redis.delete(identity_module._cache_key(token_hash(token)))
    reads = []
    monkeypatch.setattr(identity_module, "_lookup",
                        lambda *args: reads.append(args) or Identity("volunteer", -1))
    assert authenticate(services, token) == Identity("volunteer", volunteer_id)
    assert reads == []  # answered in process: neither Redis nor SQL asked

    now = identity_module.time.monotonic()
    monkeypatch.setattr(identity_module.time, "monotonic",
                        lambda: now + identity_module.LOCAL_SECONDS + 1)
    assert authenticate(services, token) == Identity("volunteer", -1)  # expired: asked again
    assert len(reads) == 1


def test_users_and_bad_tokens_are_not_kept_in_process(services):
    _, token = create_user(services, "Owls Trust", "charity")
    authenticate(services, token)
    assert token_hash(token) not in identity_module._local_cache(services)
    with pytest.raises(AuthenticationError):
        authenticate(services, "v_not-a-token")
    assert identity_module._local_cache(services) == {}


def test_core_connection_commits_and_rolls_back(services):
    orgs = Organisation.__table__
    with services.db.connection() as connection:
        connection.execute(insert(orgs).values(name="kept"))
    with pytest.raises(RuntimeError), services.db.connection() as connection:
        connection.execute(insert(orgs).values(name="rolled back"))
        raise RuntimeError
    with services.db.connection() as connection:
        names = connection.execute(select(orgs.c.name)).scalars().all()
    assert "kept" in names and "rolled back" not in names


def test_script_keys_match_the_key_names():
    (base, checkout_after, submit_after), prefix, seen = _script_keys(7)
    k = keys(7)
    assert [*base, seen + "5", *checkout_after] == [
        k["meta"], k["pool"], k["state"], k["leases"], seen_key(7, 5),
        k["payload"], k["gold"], k["experience"], k["blocked"]]
    assert [*base, seen + "5", *submit_after] == [
        k["meta"], k["pool"], k["state"], k["leases"], seen_key(7, 5), k["gold"], k["blocked"]]
    assert prefix == k["prefix"]
