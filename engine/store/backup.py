"""Backups of what bitesize knows: the database and the instance folder's files.

`bitesize backup DEST` writes one folder, bitesize-YYYYmmddTHHMMSSZ, holding
the database (SQLite: the online backup API, consistent while the site runs;
PostgreSQL: `pg_dump --format=custom`), the stored media and uploads, the
instance secret when there is one, and a manifest naming the schema revision.
`bitesize restore SRC` puts them back into the configured database and
instance folder, then brings the schema up to this code's revision. Redis is
not backed up: dispatch state is rebuilt from SQL (the command line drops it
after a restore), and queued jobs belong to the database they came from.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from engine.config import Settings
from engine.errors import ConflictError, InvalidError, UnavailableError
from engine.store import migrate
from engine.store.db import Database

MANIFEST = "manifest.json"
SQLITE_FILE = "bitesize.db"
PG_DUMP_FILE = "database.dump"
FOLDERS = ("media", "uploads")  # of the instance folder


@dataclass(frozen=True)
class Backup:
    path: Path
    database: str  # "sqlite" or "postgresql"
    revision: list[str]
    files: int


def backup(settings: Settings, database: Database, dest: Path) -> Backup:
    """A new backup folder under `dest`, made private (it holds the secret)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = Path(dest) / f"bitesize-{stamp}"
    folder.mkdir(mode=0o700, parents=True)
    kind = _kind(settings)
    if kind == "sqlite":
        _sqlite_copy(settings.sqlite_path, folder / SQLITE_FILE)
    else:
        _run(["pg_dump", "--format=custom", "--no-owner", f"--file={folder / PG_DUMP_FILE}",
              _libpq_url(settings.database_url)], "pg_dump")
    files = sum(_copy_tree(settings.instance_path / name, folder / name) for name in FOLDERS)
    secret = settings.instance_path / "secret_key"
    if secret.exists():
        shutil.copy2(secret, folder / "secret_key")
    revision = _revision(database)
    (folder / MANIFEST).write_text(json.dumps({
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"), "database": kind,
        "revision": revision, "files": files}, indent=2) + "\n")
    return Backup(folder, kind, revision, files)


def restore(settings: Settings, database: Database, source: Path, force: bool = False) -> Backup:
    """Put a backup back; refuses a database that already holds projects unless
    `force`. The site's processes must be stopped meanwhile."""
    source = Path(source)
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise InvalidError(f"{source} is not a bitesize backup (no readable {MANIFEST})",
                           {"source": "not a backup"}) from exc
    kind = _kind(settings)
    if manifest.get("database") != kind:
        raise InvalidError(f"this backup is of a {manifest.get('database')} database; "
                           f"the configured one is {kind}", {"source": "other database"})
    if not set(manifest.get("revision") or []) <= migrate.head_revisions() | {None}:
        raise InvalidError("this backup was made by a newer bitesize: upgrade first",
                           {"source": "newer schema"})
    if not force and _holds_projects(database):
        raise ConflictError("the database already holds projects; restore with --force "
                            "to replace them", {"database": "not empty"})
    if kind == "sqlite":
        database.dispose()
        _sqlite_copy(source / SQLITE_FILE, settings.sqlite_path)
    else:
        _run(["pg_restore", "--clean", "--if-exists", "--no-owner",
              f"--dbname={_libpq_url(settings.database_url)}", str(source / PG_DUMP_FILE)],
             "pg_restore")
    files = sum(_copy_tree(source / name, settings.instance_path / name) for name in FOLDERS)
    if (source / "secret_key").exists():  # what the restored leases were signed with
        shutil.copy2(source / "secret_key", settings.instance_path / "secret_key")
    migrate.upgrade(database, settings.instance_path)
    return Backup(source, kind, manifest.get("revision") or [], files)


def _kind(settings: Settings) -> str:
    backend = make_url(settings.database_url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise InvalidError(f"backups know SQLite and PostgreSQL, not {backend}",
                           {"database": "unsupported"})
    if backend == "sqlite" and settings.sqlite_path is None:
        raise InvalidError("an in-memory SQLite database cannot be backed up",
                           {"database": "in memory"})
    return backend


def _sqlite_copy(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy even while others write."""
    target.parent.mkdir(parents=True, exist_ok=True)
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    os.chmod(target, 0o600)


def _copy_tree(source: Path, target: Path) -> int:
    """Copy a folder's files (hard links where the file system allows: media
    are named by content and never change); returns how many."""
    if not source.is_dir():
        return 0
    count = 0
    for path in source.rglob("*"):
        if path.is_file():
            dest = target / path.relative_to(source)
            dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not dest.exists():
                try:
                    os.link(path, dest)
                except OSError:
                    shutil.copy2(path, dest)
            count += 1
    return count


def _libpq_url(url: str) -> str:
    """The SQLAlchemy URL as pg_dump reads it (no "+psycopg" driver part)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _run(command: list[str], tool: str) -> None:
    if shutil.which(tool) is None:
        raise UnavailableError(f"{tool} is not installed here: install PostgreSQL's client "
                               f"tools (the same major version as the server)",
                               {"database": f"no {tool}"})
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise UnavailableError(f"{tool} failed: {done.stderr.strip()[-500:]}",
                               {"database": f"{tool} failed"})


def _revision(database: Database) -> list[str]:
    from alembic.runtime.migration import MigrationContext

    with database.engine.connect() as conn:
        return sorted(MigrationContext.configure(conn).get_current_heads())


def _holds_projects(database: Database) -> bool:
    with database.engine.connect() as conn:
        if not inspect(conn).has_table("project"):
            return False
        return conn.execute(text("SELECT 1 FROM project LIMIT 1")).first() is not None
