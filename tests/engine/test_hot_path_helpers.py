"""The hot path's helpers: the in-process volunteer identity cache, the Core
connection, the dispatch scripts' cached key lists and the connections they
are sent on, the config version cache, and the prepared SQL statements."""
from __future__ import annotations

import time
from dataclasses import replace

import pytest
from sqlalchemy import func, insert, select

from engine import identity as identity_module
from engine.dispatch import answer_rows
from engine.dispatch import dispatcher as dispatch
from engine.dispatch.dispatcher import Dispatcher, _script_keys, keys, seen_key
from engine.errors import AuthenticationError
from engine.identity import Identity, authenticate, create_user, create_volunteer
from engine.store.models import Answer, Handout, Organisation, Task, utcnow
from engine.store.prepared import transaction
from engine.tokens import token_hash
from engine.volunteering import next_task, submit_answer


def test_volunteer_identity_is_kept_in_process_for_a_few_seconds(services, monkeypatch):
    volunteer_id, token = create_volunteer(services)
    assert authenticate(services, token) == Identity("volunteer", volunteer_id)
    services.redis.delete(identity_module._cache_key(token_hash(token)))
    reads = []
    monkeypatch.setattr(identity_module, "_lookup",
                        lambda *args: reads.append(args) or (Identity("volunteer", -1),
                                                             identity_module.CACHE_SECONDS))
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
        k["payload"], k["gold"], k["blocked"]]
    assert [*base, seen + "5", *submit_after] == [
        k["meta"], k["pool"], k["state"], k["leases"], seen_key(7, 5), k["gold"], k["blocked"],
        k["muted"], k["answered"]]
    assert prefix == k["prefix"]


def test_a_live_lease_is_only_a_member_of_the_leases_set(services, make_project, volunteer):
    """No key per live lease (memory, and a write less per checkout); a key
    remembers how it ended, for retried submits."""
    project = make_project(tasks=1, min_answers=1, max_answers=1)
    v = volunteer()
    handout = next_task(services, v, project.id)
    k = keys(project.id)
    member, ended = f"{handout.task_id}:{v.id}", f"{k['prefix']}lease:{handout.task_id}:{v.id}"
    assert services.redis.zscore(k["leases"], member) is not None
    assert not services.redis.exists(ended)
    submit_answer(services, v, handout.task_id, handout.lease, {"label": "a"})
    assert services.redis.zscore(k["leases"], member) is None
    assert services.redis.get(ended) == b"done"


def test_dispatch_calls_survive_a_flushed_script_cache(services, make_project, volunteer):
    project = make_project(tasks=2, min_answers=1, max_answers=1)
    assert next_task(services, volunteer(), project.id) is not None
    services.redis.script_flush()  # as after a Redis restart
    assert next_task(services, volunteer(), project.id) is not None


def test_dispatch_calls_survive_a_dropped_connection(services, make_project, volunteer):
    project = make_project(tasks=2, min_answers=1, max_answers=1)
    wire = services.dispatcher._wire
    client_id = wire.call(("CLIENT", "ID"), lambda: None)  # the connection it keeps
    services.redis.client_kill_filter(_id=client_id)
    assert next_task(services, volunteer(), project.id) is not None


def test_a_forked_process_does_not_reuse_the_parents_connections(services, make_project,
                                                                 volunteer):
    project = make_project(tasks=2, min_answers=1, max_answers=1)
    wire = services.dispatcher._wire
    next_task(services, volunteer(), project.id)
    parents = [c for idle in wire._idle.values() for c in idle]
    wire._pid = -1  # as in a child forked after the parent made its calls
    assert next_task(services, volunteer(), project.id) is not None
    kept = [c for idle in wire._idle.values() for c in idle]
    assert parents and kept and not set(map(id, kept)) & set(map(id, parents))


def test_config_version_is_read_at_most_once_a_second(services, make_project, monkeypatch):
    project = make_project(tasks=1)
    mine = services.dispatcher
    first = mine.meta_version(project.id)
    elsewhere = Dispatcher(services.redis)  # another process's
    elsewhere.set_meta(replace(elsewhere.meta(project.id), version="changed-elsewhere"))
    assert mine.meta_version(project.id) == first  # trusted for up to a second
    later = time.monotonic() + dispatch.VERSION_SECONDS + 1
    with monkeypatch.context() as patch:
        patch.setattr(dispatch.time, "monotonic", lambda: later)
        assert mine.meta_version(project.id) == "changed-elsewhere"


def test_this_process_sees_its_own_config_change_at_once(services, make_project):
    project = make_project(tasks=1)
    mine = services.dispatcher
    mine.meta_version(project.id)
    mine.set_meta(replace(mine.meta(project.id), version="changed-here"))
    assert mine.meta_version(project.id) == "changed-here"


def test_prepared_statements_write_and_read_what_sqlalchemy_does(services, make_project,
                                                                 volunteer):
    project = make_project(tasks=1)
    v = volunteer()
    with services.db.session() as session:
        task_id = session.scalar(select(Task.id).where(Task.project_id == project.id))
    now = utcnow()
    answer_id, counted, created_at = answer_rows._statements(services.db).answer.run(
        services.db, {"task_id": task_id, "project_id": project.id, "volunteer_id": v.id,
                      "value": {"label": "a", "note": "ünïcode"}, "lease": "l",
                      "counted": True, "created_at": now})[0]
    with services.db.session() as session:
        stored = session.get(Answer, answer_id)
        assert (stored.value, stored.counted, stored.created_at) == (
            {"label": "a", "note": "ünïcode"}, True, created_at)
    assert counted is True and created_at.replace(tzinfo=None) == now.replace(tzinfo=None)


def test_an_atomic_transaction_commits_all_or_nothing(services, make_project, volunteer):
    project = make_project(tasks=2)
    v = volunteer()
    with services.db.session() as session:
        task_ids = list(session.scalars(select(Task.id).where(Task.project_id == project.id)))
    handout = answer_rows._statements(services.db).handout
    rows = [{"project_id": project.id, "task_id": t, "volunteer_id": v.id,
             "created_at": utcnow()} for t in task_ids]
    with pytest.raises(RuntimeError), transaction(services.db, atomic=True) as cursor:
        handout.execute(cursor, rows[0])
        raise RuntimeError
    with transaction(services.db, atomic=True) as cursor:
        handout.execute(cursor, rows[0])
        cursor.connection.rollback()  # giving up without raising
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Handout)) == 0
    with transaction(services.db, atomic=True) as cursor:
        for row in rows:
            handout.execute(cursor, row)
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Handout)) == 2
