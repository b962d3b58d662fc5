"""How long background jobs take, kept in Redis so that every web process can report it.

RQ's workers run in processes of their own, often on other machines, so a
job's duration cannot go into a web process's metrics directly. Each worker
adds it, as the job ends, to one hash beside RQ's own keys (the Redis the
queues live on): a count, a sum and one histogram bucket per job function,
plus a count of failures. That is one pipelined round trip per job
(HINCRBY, HINCRBYFLOAT, HINCRBY, and a fourth HINCRBY when it failed), and
the hash stays as small as the set of job functions: fields are named by
function only, never by job id or argument. `/metrics` reads the hash whole
(one HGETALL) and turns it into a histogram family (web.engine_metrics).

Buckets are stored one by one (the bucket a duration falls in, not every
bucket above it) and summed into Prometheus's cumulative form on reading.
Like every Prometheus counter, the figures only grow; a Redis wipe resets
them, which Prometheus's rate() reads as a counter reset.
"""
from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

import redis

KEY = "bs:metrics:jobs"
# Seconds: a webhook run or a quality pass takes well under a second; a
# split of a large upload takes minutes (the split job's time limit is 30 min).
BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0)
_BOUNDS = tuple(repr(bound) for bound in BUCKETS) + ("+Inf",)


@dataclass
class JobTimings:
    """One job function's figures, as Prometheus reads a histogram."""

    count: int = 0
    total: float = 0.0  # seconds, every run together
    failed: int = 0
    buckets: dict[str, int] = field(default_factory=dict)  # upper bound -> runs in it

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound, runs at or below it) for every bound, "+Inf" last."""
        running, out = 0, []
        for bound in _BOUNDS:
            running += self.buckets.get(bound, 0)
            out.append((bound, running))
        return out


def record(connection: redis.Redis, function: str, seconds: float, failed: bool) -> None:
    """Add one run of `function` (a dotted name) that took `seconds`."""
    bucket = _BOUNDS[bisect_left(BUCKETS, seconds)]
    pipe = connection.pipeline(transaction=False)
    pipe.hincrby(KEY, f"{function}|count", 1)
    pipe.hincrbyfloat(KEY, f"{function}|sum", seconds)
    pipe.hincrby(KEY, f"{function}|le|{bucket}", 1)
    if failed:
        pipe.hincrby(KEY, f"{function}|failed", 1)
    pipe.execute()


def read(connection: redis.Redis) -> dict[str, JobTimings]:
    """Every job function's figures so far, by function name."""
    timings: dict[str, JobTimings] = {}
    for raw_field, raw_value in connection.hgetall(KEY).items():
        name = raw_field.decode() if isinstance(raw_field, bytes) else raw_field
        value = raw_value.decode() if isinstance(raw_value, bytes) else raw_value
        function, _, part = name.partition("|")
        entry = timings.setdefault(function, JobTimings())
        if part == "count":
            entry.count = int(value)
        elif part == "sum":
            entry.total = float(value)
        elif part == "failed":
            entry.failed = int(value)
        elif part.startswith("le|"):
            entry.buckets[part[3:]] = int(value)
    return timings
