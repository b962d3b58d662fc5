"""A benchmark run's own instance folder, and what it leaves behind: nothing.

Services on a temporary folder start the embedded Redis in it (unless a
Redis URL names a server). Removing the folder does not stop that Redis: one
left running once its folder was gone ignored a plain stop and held about
490 MB (bench/rebuild.py, run after run). So the folder's Redis is stopped
first, then the folder removed.
"""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.config import Settings
from engine.services import Services
from engine.store.redis_server import EmbeddedRedis


@contextmanager
def temporary_instance(prefix: str, database_url: str = "", redis_url: str = "",
                       **more) -> Iterator[Settings]:
    """Settings on a new temporary folder (``more``: other Settings fields); the
    embedded Redis stopped and the folder removed afterwards."""
    instance = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield Settings(instance_path=instance, database_url=database_url,
                       redis_url=redis_url, **more).resolved()
    finally:
        if not redis_url:
            EmbeddedRedis(instance).stop()
        shutil.rmtree(instance, ignore_errors=True)


@contextmanager
def temporary_services(prefix: str, database_url: str = "", redis_url: str = "",
                       **more) -> Iterator[Services]:
    """Services on a temporary_instance; a Redis server's database (a spare one,
    which the benchmarks flush) is emptied again afterwards."""
    with temporary_instance(prefix, database_url, redis_url, **more) as settings:
        services = Services(settings)
        try:
            yield services
        finally:
            if redis_url:
                services.redis.flushdb()
            services.close()
