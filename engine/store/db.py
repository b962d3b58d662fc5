"""The SQL database: engine and sessions, with SQLite tuned for several processes.

SQLite (the embedded default) runs in WAL mode so readers never block the
writer. ``synchronous`` defaults to NORMAL: in WAL mode a committed transaction
survives a crash of any bitesize process; only an OS crash or power cut can
lose the last commits, which is the laptop/demo trade-off (PostgreSQL is the
production database). ``BITESIZE_SQLITE_SYNCHRONOUS=FULL`` buys power-cut
durability for ~0.3 ms more per commit.

Write transactions that read first use ``BEGIN IMMEDIATE`` (``writing()``):
a deferred SQLite transaction that reads and then writes fails at once with
SQLITE_BUSY when another process committed in between, instead of waiting.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

_SQLITE_PRAGMAS = ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=15000")


class Database:
    """One SQLAlchemy engine per process, and the sessions made from it."""

    def __init__(self, url: str, sqlite_synchronous: str = "NORMAL") -> None:
        self.url = url
        self.engine = _make_engine(url, sqlite_synchronous)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writers = sessionmaker(
            self.engine.execution_options(sqlite_begin="IMMEDIATE"),
            expire_on_commit=False,
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session for reads, or for writes that do not read first."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A session for read-then-write work; takes SQLite's write lock up front."""
        with self._writers() as session, session.begin():
            yield session

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A bare Core connection in a transaction, for the hot path's single
        statements: no ORM Session or unit of work around them."""
        with self.engine.begin() as connection:
            yield connection

    def dispose(self) -> None:
        self.engine.dispose()


def dialect_insert(database: Database, table):
    """An INSERT that can say ON CONFLICT, in this database's dialect."""
    if database.is_sqlite:
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert
    return insert(table)


def insert_ignoring_duplicates(database: Database, table):
    """INSERT ... ON CONFLICT DO NOTHING, on SQLite and PostgreSQL alike."""
    return dialect_insert(database, table).on_conflict_do_nothing()


def _make_engine(url: str, sqlite_synchronous: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": 15})
    synchronous = sqlite_synchronous.upper()
    if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise ValueError(f"BITESIZE_SQLITE_SYNCHRONOUS must be NORMAL or FULL, not {synchronous}")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        # Let SQLAlchemy's "begin" event, not pysqlite, decide how to BEGIN.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        for pragma in (*_SQLITE_PRAGMAS, f"synchronous={synchronous}"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine
