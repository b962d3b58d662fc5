"""The SQL database: engine and sessions, with SQLite tuned for several processes.

SQLite (the embedded default) runs in WAL mode so readers never block the
writer. ``synchronous`` defaults to NORMAL: in WAL mode a committed transaction
survives a crash of any bitesize process; only an OS crash or power cut can
lose the last commits, which is the laptop/demo trade-off (PostgreSQL is the
production database). ``BITESIZE_SQLITE_SYNCHRONOUS=FULL`` buys power-cut
durability for ~0.3 ms more per commit.

A new SQLite file is created mode 0600 before SQLite opens it: SQLite gives its
``-wal`` and ``-shm`` files the database file's mode, so no other user of the
machine can read the data (answers, e-mail addresses, token hashes).

Write transactions that read first use ``BEGIN IMMEDIATE`` (``writing()``):
a deferred SQLite transaction that reads and then writes fails at once with
SQLITE_BUSY when another process committed in between, instead of waiting.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session, sessionmaker

_SQLITE_PRAGMAS = ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=15000")
# Bare connections (Database.bare): how many idle ones a process keeps, and how
# long one may sit idle before it is pinged on PostgreSQL (whose server may have
# restarted meanwhile; SQLAlchemy's pool pings at every checkout instead).
BARE_IDLE_MAX, BARE_PING_AFTER = 8, 5.0


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
        self._bare = _BareConnections(self.engine, ping=not self.is_sqlite)

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

    @contextmanager
    def bare(self) -> Iterator[Any]:
        """A DBAPI connection of this process, for engine.store.prepared, given
        back when the block ends (the block commits itself); after an error it
        is rolled back, and closed if even that fails."""
        connection = self._bare.take()
        try:
            yield connection
        except BaseException:
            self._bare.drop(connection)
            raise
        self._bare.give_back(connection)

    def dispose(self) -> None:
        self._bare.close_all()
        self.engine.dispose()


class _BareConnections:
    """Idle DBAPI connections kept apart from SQLAlchemy's pool.

    Taking one from SQLAlchemy's pool and giving it back costs about 22 us of
    CPU (its events, the connection record, the reset on return), and 60 us
    more on PostgreSQL for the pre-ping's round trip: more than a one-row
    INSERT on SQLite, three times in every volunteer cycle. Here a connection
    is popped off a list and pushed back. Each one is made by the engine (so
    the connect-time PRAGMAs apply) and then detached from its pool, which
    no longer counts it. A connection is given back only after its block
    committed or rolled back; one that is broken is closed, and one
    idle longer than BARE_PING_AFTER seconds is pinged before use on
    PostgreSQL. One found broken means the server went away (a restart, a
    failover), so every idle one is closed with it, as SQLAlchemy's pool
    does. A forked child starts with none of its parent's, and never closes
    them (they are still its parent's).
    """

    def __init__(self, engine: Engine, ping: bool) -> None:
        self.engine, self.ping = engine, ping
        self.pid = os.getpid()
        self.idle: list[tuple[Any, float]] = []  # (connection, when given back)
        self.open = True  # False once disposed: connections given back then are closed
        self.orphans: list = []  # a forked child's copies of its parent's: never closed

    def take(self) -> Any:
        if self.pid != os.getpid():  # forked: the parent's connections are not ours
            self.orphans.append(self.idle)  # closing them here would close the parent's
            self.pid, self.idle = os.getpid(), []
        while True:
            try:
                connection, since = self.idle.pop()
            except IndexError:
                fairy = self.engine.raw_connection()
                fairy.detach()
                return fairy.dbapi_connection
            if not self.ping or time.monotonic() - since < BARE_PING_AFTER or _alive(connection):
                return connection
            self._server_gone(connection)

    def give_back(self, connection: Any) -> None:
        if self.open and self.pid == os.getpid() and len(self.idle) < BARE_IDLE_MAX:
            self.idle.append((connection, time.monotonic()))
        else:
            _close(connection)

    def drop(self, connection: Any) -> None:
        """After a failed block: rolled back and kept (an IntegrityError is an
        everyday event on the answer path), or closed if it is broken."""
        try:
            connection.rollback()
        except Exception:  # noqa: BLE001 - a broken connection: let it go
            self._server_gone(connection)
            return
        if getattr(connection, "broken", False):  # psycopg: the server is gone
            self._server_gone(connection)
        else:
            self.give_back(connection)

    def _server_gone(self, connection: Any) -> None:
        """A broken connection, and every idle one with it (made before the
        same restart, they would each fail one request)."""
        _close(connection)
        idle, self.idle = self.idle, []
        for other, _ in idle:
            _close(other)

    def close_all(self) -> None:
        self.open = False  # one still in use is closed when its block ends
        idle, self.idle = self.idle, []
        if self.pid == os.getpid():
            for connection, _ in idle:
                _close(connection)


def _alive(connection: Any) -> bool:
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT 1")
        cursor.close()
        connection.commit()  # not rollback: psycopg's deallocates its prepared statements
    except Exception:  # noqa: BLE001 - any failure means: not this connection
        return False
    return True


def _close(connection: Any) -> None:
    try:
        connection.close()
    except Exception:  # noqa: BLE001 - closing a broken connection may fail too
        pass


def custom_plans(session: Session) -> None:
    """Plan this transaction's statements for their own values (PostgreSQL; a
    no-op elsewhere). psycopg prepares a statement run five times, and
    PostgreSQL may then use one generic plan for every value: for the chunks
    of 500 task ids a re-merge reads, a fresh project's tables (not analysed
    yet) got a plan that scanned the whole project each time, 0.5 s a query
    instead of 16 ms, and a quarantine of 10,000 answers took 23 s instead of 4."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


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
    _create_private(sqlite_file(url))
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


def sqlite_file(url: str) -> Path | None:
    """The file of an SQLite URL; None for memory and ``file:`` URI databases."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _create_private(path: Path | None) -> None:
    """Make a missing database file empty with mode 0600, whatever the umask
    (os.open's mode is masked by it, hence the chmod). An existing file keeps
    the mode its owner gave it. A missing folder is left for SQLite to report."""
    if path is None or not path.parent.is_dir():
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
