"""Shared ground of the dispatch benchmark (bench/dispatch.py): sizes, timing, machine info.

It exists so that each part's module (dispatch_lua, dispatch_http,
dispatch_pool) and the command itself can share the benchmark's sizes and
project settings, the same clocks on Redis and the same statistics, without
the parts importing bench/dispatch.py. The table formatting lives here too,
as it knows nothing of any part.
"""
from __future__ import annotations

import itertools
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import redis

from engine.config import Settings
from engine.store.redis_server import is_cluster

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent

LABELS = ["penguin", "seal", "empty"]
CONFIG = {"question": "What is in this photo?", "labels": LABELS, "instructions": ""}
NEED = 3  # min_answers of every benchmark project


@dataclass(frozen=True)
class Sizes:
    """How big and how long each part runs; the full run keeps to about 3 minutes."""

    lua_pool: int
    lua_rounds: int
    lua_seconds: float  # per window, per side
    http_tasks: int
    http_rounds: int
    trivial_seconds: float
    volunteer_seconds: float
    warmup_seconds: float
    small_pool: int
    large_pool: int
    checkouts: int  # per pool size
    memory_tasks: int


FULL = Sizes(lua_pool=30_000, lua_rounds=8, lua_seconds=0.6,
             http_tasks=50_000, http_rounds=3, trivial_seconds=6, volunteer_seconds=12,
             warmup_seconds=2, small_pool=1_000, large_pool=1_000_000, checkouts=2_000,
             memory_tasks=100_000)
QUICK = Sizes(lua_pool=5_000, lua_rounds=2, lua_seconds=0.3,
              http_tasks=4_000, http_rounds=1, trivial_seconds=2, volunteer_seconds=3,
              warmup_seconds=1, small_pool=1_000, large_pool=50_000, checkouts=400,
              memory_tasks=10_000)


def wait_for_background_saves(r: redis.Redis, timeout: float = 180) -> float:
    """Wait until Redis has no AOF rewrite or RDB save running; the seconds waited.

    Loading a million tasks grows the embedded Redis's append-only file past
    its auto-rewrite size, and the forked child then competes for the CPU
    while Redis buffers every write for it, which would show up in both
    checkout times and used_memory.
    """
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        info = r.info("persistence")
        if not any(info.get(flag) for flag in ("aof_rewrite_in_progress", "aof_rewrite_scheduled",
                                               "rdb_bgsave_in_progress")):
            break
        time.sleep(0.2)
    return time.monotonic() - began


def evalsha_stats(r: redis.Redis) -> tuple[int, int]:
    """(calls, microseconds) the server has spent in EVALSHA so far: server-side cost,
    without the client, read as a difference so nobody's counters get reset."""
    stats = r.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


def run_window(step: Callable[[], None], seconds: float) -> tuple[int, float]:
    """Call step() for `seconds`; (calls, elapsed). The clock is read every 32 calls."""
    calls, began = 0, time.perf_counter()
    deadline = began + seconds
    while True:
        for _ in range(32):
            step()
        calls += 32
        now = time.perf_counter()
        if now >= deadline:
            return calls, now - began


def redis_cpu_reader(r: redis.Redis) -> Callable[[], float]:
    """CPU seconds the Redis server has used (all its clients: on a shared server,
    others too); on a Redis Cluster, every master's together."""
    def seconds(info: dict) -> float:
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def read() -> float:
        if is_cluster(r):
            return sum(seconds(r.info("cpu", target_nodes=node)) for node in r.get_primaries())
        return seconds(r.info("cpu"))
    return read


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * q // 100)))
    return ordered[int(rank) - 1]


def summarise(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    return {"count": len(values), "p50": percentile(values, 50), "p90": percentile(values, 90),
            "p99": percentile(values, 99), "mean": statistics.fmean(values), "max": max(values)}


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def machine_info(r: redis.Redis, settings: Settings, redis_mode: str) -> dict:
    import gunicorn

    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "redis_version": r.info("server")["redis_version"],
        "redis": redis_mode,
        "database": settings.database_url.split(":", 1)[0],
        "gunicorn": gunicorn.__version__,
        "git": _git_revision(),
        "loadavg_start": os.getloadavg(),
    }


def _git_revision() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, text=True, capture_output=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def format_table(rows: list[tuple[str, ...]]) -> str:
    header = ("part", "measure", "value", "target", "result")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    aligns = ("<", "<", ">", "<", "<")
    lines = []
    for n, row in enumerate([header, *rows]):
        lines.append("  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(row, aligns, widths,
                                                                       strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def chunks(iterable: Iterable, size: int) -> Iterator[list]:
    iterator = iter(iterable)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
