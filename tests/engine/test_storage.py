"""Storage foundations: migrations match the models; SQLite runs in WAL mode."""
from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, inspect, text
from sqlalchemy.exc import IntegrityError

from engine.store import migrate
from engine.store.models import Base, Handout, utcnow
from engine.volunteering import next_task


def test_migrations_match_the_models(services):
    with services.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_sqlite_is_in_wal_mode(services):
    if not services.db.is_sqlite:
        assert services.db.engine.dialect.name == "postgresql"
        return
    with services.db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_the_handout_rekeying_migration_keeps_every_row_both_ways(services, make_project,
                                                                   volunteer):
    """0006 rebuilds the handout table around its (task, volunteer) key; down and up
    again, the same rows are there, and the table is back to the models' shape."""
    project = make_project(tasks=3, min_answers=2, max_answers=2)
    for v in (volunteer(), volunteer()):
        for _ in range(3):
            next_task(services, v, project.id)
    before = _handouts(services)
    assert len(before) == 6
    config = migrate.alembic_config(services.db)
    try:
        with services.db.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0005")
        assert _handouts(services) == before
        assert "id" in {c["name"] for c in inspect(services.db.engine).get_columns("handout")}
    finally:
        migrate.upgrade(services.db, services.settings.instance_path)
    assert _handouts(services) == before
    key = inspect(services.db.engine).get_pk_constraint("handout")
    assert key["constrained_columns"] == ["task_id", "volunteer_id"]
    with pytest.raises(IntegrityError):  # the key still refuses a second handout
        with services.db.engine.begin() as conn:
            conn.execute(insert(Handout).values(
                project_id=project.id, task_id=before[0][1], volunteer_id=before[0][2],
                created_at=utcnow()))
    test_migrations_match_the_models(services)


def _handouts(services) -> list[tuple]:
    with services.db.engine.connect() as conn:
        return conn.execute(text("SELECT project_id, task_id, volunteer_id FROM handout "
                                 "ORDER BY task_id, volunteer_id")).all()
