"""Every job's duration, recorded where every web process can read it.

The web's /metrics reports how long background jobs take, but jobs run in
worker processes, maybe on other machines. TimedJob is the job class the
workers run (workers.runner): it times the job function itself (not RQ's
bookkeeping around it) and adds the duration to the counters in Redis that
engine.store.job_timings keeps, on the Redis the job came from. A job that
raises, or runs out of time, is counted too, as failed.

Recording costs one pipelined round trip per job, and a Redis that is down
at that moment costs the figure, never the job: the error is logged and the
job's own outcome stands.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import redis
from rq.job import Job

from engine.store import job_timings

log = logging.getLogger(__name__)


class TimedJob(Job):
    """An RQ job that records its function's duration when it ends."""

    def perform(self) -> Any:
        started = time.perf_counter()
        failed = True
        try:
            result = super().perform()
            failed = False
            return result
        finally:
            self._record(time.perf_counter() - started, failed)

    def _record(self, seconds: float, failed: bool) -> None:
        try:
            job_timings.record(self.connection, self.func_name or "unknown", seconds, failed)
        except redis.RedisError as exc:
            log.warning("could not record the duration of job %s: %s", self.id, exc)
