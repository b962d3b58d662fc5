"""Storage foundations: migrations match the models; SQLite runs in WAL mode."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from engine.models import Base


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
