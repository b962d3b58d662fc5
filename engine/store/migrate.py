"""Schema migrations (Alembic) run from code: `bitesize db upgrade`, tests, demo.

Several processes may start at once on a fresh instance (web workers and RQ
workers); on SQLite an exclusive lock file makes them upgrade one at a time.
"""
from __future__ import annotations

import fcntl
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from engine.store.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database.url.replace("%", "%%"))
    return config


def upgrade(database: Database, lock_dir: Path, revision: str = "head") -> None:
    """Bring the schema to `revision`; safe to call from concurrent processes."""
    config = alembic_config(database)
    with _file_lock(lock_dir / "migrate.lock"), database.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def is_current(database: Database) -> bool:
    """Whether the schema is at the newest revision (False for an empty database)."""
    with database.engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_heads()
    return set(current) == head_revisions()


@cache
def head_revisions() -> frozenset[str]:
    """The newest revisions among the migration scripts this code ships with.

    Read once per process (reading the scripts costs ~8 ms; they change only
    with a new release, which restarts the process): the readiness probe
    (web.operations) asks `is_current` every few seconds."""
    return frozenset(ScriptDirectory(str(MIGRATIONS)).get_heads())


@contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
