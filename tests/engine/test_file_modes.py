"""Files other users of the machine must not read: the SQLite database (and its
-wal and -shm), the embedded Redis's folder, config and socket. Made so at
creation, whatever the umask of the process that made them."""
from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text

from engine.config import Settings
from engine.store.db import Database, sqlite_file
from engine.store.redis_server import EmbeddedRedis

PERMISSIVE = 0o000  # the worst case: nothing masked
USUAL = 0o022  # the common default: files 0644, folders 0755


@contextmanager
def umask(mask: int) -> Iterator[None]:
    before = os.umask(mask)
    try:
        yield
    finally:
        os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [PERMISSIVE, USUAL])
def test_a_new_sqlite_database_and_its_wal_are_private(tmp_path, mask):
    path = tmp_path / "bitesize.db"
    with umask(mask):
        database = Database(f"sqlite:///{path}")
        try:
            with database.engine.begin() as conn:
                conn.execute(text("CREATE TABLE t (x INTEGER)"))
                conn.execute(text("INSERT INTO t VALUES (1)"))
            files = [path, path.with_name("bitesize.db-wal"), path.with_name("bitesize.db-shm")]
            assert all(f.exists() for f in files)  # WAL mode: all three, while open
            assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
        finally:
            database.dispose()


def test_an_existing_database_keeps_its_mode(tmp_path):
    """An owner's own choice (a group that backs it up) is not undone."""
    path = tmp_path / "shared.db"
    path.touch()
    path.chmod(0o640)
    database = Database(f"sqlite:///{path}")
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
    database.dispose()
    assert mode(path) == 0o640


@pytest.mark.parametrize(("url", "file"), [
    ("sqlite://", None), ("sqlite:///:memory:", None),
    ("sqlite:///relative/x.db", Path("relative/x.db")), ("sqlite:////abs/x.db", Path("/abs/x.db")),
])
def test_sqlite_file_names_the_file_of_a_url(url, file):
    assert sqlite_file(url) == file


def test_a_memory_database_makes_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    database = Database("sqlite://")
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
    database.dispose()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mask", [PERMISSIVE, USUAL])
def test_the_embedded_redis_keeps_its_files_to_itself(tmp_path, mask):
    server = EmbeddedRedis(tmp_path / "instance")
    try:
        with umask(mask):
            client = server.client()
        client.set("k", "v")
        client.save()  # write dump.rdb now
        assert mode(server.dir) == 0o700
        assert mode(server.dir / "redis.conf") == 0o600
        assert stat.S_ISSOCK(os.stat(server.socket).st_mode)
        assert mode(server.socket) & 0o077 == 0  # unixsocketperm 700
        # Redis makes these with the umask; the folder shuts others out of them
        assert {"dump.rdb", "redis.pid", "redis.log"} <= {p.name for p in server.dir.iterdir()}
    finally:
        server.stop()


def test_an_older_redis_folder_is_tightened(tmp_path):
    folder = tmp_path / "instance" / "redis"
    folder.mkdir(parents=True)
    folder.chmod(0o755)
    server = EmbeddedRedis(tmp_path / "instance")
    try:
        server.ensure_running()
        assert mode(folder) == 0o700
    finally:
        server.stop()


@pytest.mark.parametrize("mask", [PERMISSIVE, USUAL])
def test_a_new_instance_folder_and_its_secret_are_private(tmp_path, mask):
    with umask(mask):
        settings = Settings(instance_path=tmp_path / "instance").resolved()
    assert mode(settings.instance_path) == 0o700
    assert mode(settings.instance_path / "secret_key") == 0o600
    assert settings.sqlite_path is not None


def test_an_existing_instance_folder_keeps_its_mode(tmp_path):
    """A folder its owner opened to a proxy's group (to serve media) stays so."""
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance").chmod(0o750)
    Settings(instance_path=tmp_path / "instance").resolved()
    assert mode(tmp_path / "instance") == 0o750
