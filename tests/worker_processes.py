"""`bitesize worker` run as a process of its own in tests (the periodic jobs
once across workers, the watchdog, the scheduler's fork): the environment
that points it at the test's instance, database and Redis, and this checkout."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker_env(settings) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT),
            "BITESIZE_INSTANCE_PATH": str(settings.instance_path),
            "BITESIZE_DATABASE_URL": settings.database_url,
            "BITESIZE_REDIS_URL": settings.redis_url,
            "BITESIZE_SECRET_KEY": settings.secret_key}
