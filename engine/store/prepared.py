"""The hot path's SQL statements, compiled once and run on bare DBAPI connections.

SQLAlchemy's Connection.execute costs several times what SQLite spends on a
one-row insert or lookup: a Connection object, the begin event's BEGIN, the
compiled cache, a Result. The volunteer's path runs a few such statements on
every request, so it compiles each once per database and runs it on a DBAPI
connection of the database's own (Database.bare: made by SQLAlchemy's
engine, so its connect-time PRAGMAs apply, but reused without the pool's
costs). The SQL text, the parameter order and the conversion of every value
(JSON, dates, booleans) stay SQLAlchemy's, taken from the compiled
statement, so the rows written and read are the ones
Connection.execute would give.
"""
from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from engine.store.db import Database

T = TypeVar("T")


class Prepared:
    """One statement compiled for one database; `columns` names an INSERT's values."""

    def __init__(self, database: Database, statement, columns: Sequence[str] | None = None
                 ) -> None:
        dialect = database.engine.dialect
        compiled = statement.compile(dialect=dialect,
                                     column_keys=list(columns) if columns else None)
        self.statement = statement  # for SQLAlchemy's own path, where one is needed
        self._sql = compiled.string
        self._positional = compiled.positiontup is not None
        names = compiled.positiontup if self._positional else list(compiled.params)
        # (name, conversion, whether the caller gives it, else the statement's own value)
        self._binds = [(name, bind.type.dialect_impl(dialect).bind_processor(dialect),
                        bind.required, None if bind.required else bind.effective_value)
                       for name, bind in ((name, compiled.binds[name]) for name in names)]
        self._dialect = dialect
        self._columns = list(statement.exported_columns)
        self._results: list | None = None  # conversions of the returned values, once seen
        self.integrity_error = dialect.loaded_dbapi.IntegrityError

    def execute(self, cursor, parameters: Mapping[str, Any]) -> list[tuple]:
        """Run on a cursor of `transaction`; the rows it returns, converted."""
        values = []
        for name, convert, required, own in self._binds:
            value = parameters[name] if required else own
            values.append(convert(value) if convert else value)
        cursor.execute(self._sql, values if self._positional else dict(
            zip((bind[0] for bind in self._binds), values, strict=True)))
        if not self._columns:
            return []
        if self._results is None:  # they depend on the driver's type codes (PostgreSQL's)
            self._results = [
                column.type.dialect_impl(self._dialect).result_processor(self._dialect, code)
                for column, (_, code, *_) in zip(self._columns, cursor.description,
                                                 strict=True)]
        return [tuple(convert(value) if convert else value
                      for convert, value in zip(self._results, row, strict=True))
                for row in cursor.fetchall()]

    def run(self, database: Database, parameters: Mapping[str, Any]) -> list[tuple]:
        """Run in a transaction of its own."""
        with transaction(database) as cursor:
            return self.execute(cursor, parameters)


@contextmanager
def transaction(database: Database, atomic: bool = False) -> Iterator[Any]:
    """A DBAPI cursor whose statements are committed at the end, or rolled back
    (by Database.bare) if the block raises. A block may
    also give up without raising: `cursor.connection.rollback()`.

    engine.store.db runs SQLite connections in autocommit mode, so there each
    statement is its own transaction unless `atomic` begins one (taking the
    write lock at once): ask for it when several writes must commit together.
    On PostgreSQL a block that is not atomic runs in autocommit too: a lone
    INSERT is then one round trip instead of three (BEGIN, INSERT, COMMIT),
    and commits just as durably; the connection goes back to the pool in the
    driver's usual mode."""
    autocommit = not atomic and not database.is_sqlite
    with database.bare() as connection:
        if autocommit:
            connection.autocommit = True
        try:
            cursor = connection.cursor()
            try:
                if atomic and database.is_sqlite:
                    cursor.execute("BEGIN IMMEDIATE")
                yield cursor
            finally:
                cursor.close()  # SQLite finishes a RETURNING statement once it is reset
            connection.commit()
        except BaseException:
            if autocommit:  # on a connection the server dropped this fails too:
                with contextlib.suppress(Exception):  # the first error is the one to tell
                    connection.autocommit = False
            raise
        if autocommit:
            connection.autocommit = False


def per_database(build: Callable[[Database], T]) -> Callable[[Database], T]:
    """Build a module's statements once per database (tests use several) and
    keep them as long as the database lives."""
    cache: weakref.WeakKeyDictionary[Database, T] = weakref.WeakKeyDictionary()

    def statements(database: Database) -> T:
        built = cache.get(database)
        if built is None:
            built = cache[database] = build(database)
        return built

    return statements
