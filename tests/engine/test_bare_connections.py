"""Database.bare: the hot path's DBAPI connections, reused without SQLAlchemy's pool."""
from __future__ import annotations

import pytest
from sqlalchemy import insert, select

from engine.store import db as db_module
from engine.store.models import Handout, Task, utcnow
from engine.store.prepared import Prepared, transaction


def _connection_of(database):
    with transaction(database) as cursor:
        return cursor.connection


def test_a_connection_is_reused_from_block_to_block(services):
    first = _connection_of(services.db)
    assert _connection_of(services.db) is first
    # one in use is not handed out twice: a nested block gets another
    with transaction(services.db) as outer, transaction(services.db) as inner:
        assert outer.connection is not inner.connection


def test_a_failed_block_is_rolled_back_and_its_connection_kept(services, make_project,
                                                               volunteer):
    project = make_project(tasks=1)
    with services.db.session() as session:
        task_id = session.scalar(select(Task.id).where(Task.project_id == project.id))
    who = volunteer()
    handout = Prepared(services.db, insert(Handout.__table__),
                       ("project_id", "task_id", "volunteer_id", "created_at"))
    row = {"project_id": project.id, "task_id": task_id, "volunteer_id": who.id,
           "created_at": utcnow()}
    handout.run(services.db, row)
    used = _connection_of(services.db)
    with pytest.raises(handout.integrity_error), transaction(services.db, atomic=True) as cursor:
        handout.execute(cursor, row)  # the same key again
    # nothing of the failed block stays, and the connection serves the next one
    assert _connection_of(services.db) is used
    with services.db.session() as session:
        assert session.scalar(select(Handout.task_id).where(
            Handout.volunteer_id == who.id)) == task_id


def test_a_connection_that_died_while_idle_is_replaced_with_its_siblings(services,
                                                                        monkeypatch):
    """PostgreSQL's connections are pinged after BARE_PING_AFTER idle seconds (the
    server may have restarted); here the ping is forced on either database. One
    found dead means the server went away: the other idle ones go with it."""
    bare = services.db._bare
    with transaction(services.db) as one, transaction(services.db) as two:
        dead = [one.connection, two.connection]
    for connection in dead:
        connection.close()  # as a server restart leaves them
    monkeypatch.setattr(bare, "ping", True)
    monkeypatch.setattr(db_module, "BARE_PING_AFTER", 0.0)
    with transaction(services.db) as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchall()[0][0] == 1
        fresh = cursor.connection
    assert all(fresh is not connection for connection in dead)
    assert [connection for connection, _ in bare.idle] == [fresh]


def test_a_forked_child_never_uses_its_parents_connections(services):
    parent = _connection_of(services.db)
    services.db._bare.pid = -1  # as a forked child sees it: another process's list
    try:
        assert _connection_of(services.db) is not parent
        assert services.db._bare.pid > 0
        # kept, never closed: in a real child it is still the parent's connection
        orphans = services.db._bare.orphans
        assert [[connection for connection, _ in kept] for kept in orphans] == [[parent]]
    finally:
        parent.close()  # a real child leaves it open: its parent still uses it


def test_dispose_closes_idle_connections_and_those_still_in_use(services):
    with transaction(services.db) as one, transaction(services.db) as two:
        idle = two.connection  # given back first, so taken last
    with transaction(services.db) as cursor:
        busy = cursor.connection
        assert busy is one.connection
        services.db.dispose()
        assert _closed(idle)
        assert not _closed(busy)
    assert _closed(busy)  # given back after the dispose: closed, not kept


def _closed(connection) -> bool:
    try:
        connection.cursor().execute("SELECT 1")
    except Exception:  # noqa: BLE001 - sqlite3 and psycopg raise their own kinds
        return True
    return False
