"""Periodic work as a self-renewing chain of RQ scheduled jobs.

Each periodic job, when it runs, schedules its next run. A guard key in
Redis (expiring a little after the next run is due) keeps several workers
from starting several chains, and lets a new chain start by itself when one
was lost (a Redis wipe, every worker down): any worker start-up, and every
periodic run, calls `ensure_scheduled`.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from engine.services import Services

log = logging.getLogger(__name__)

# name -> (job function, queue, seconds between runs)
PERIODIC = {
    "quality": ("workers.jobs.estimate_quality", "high", 300),
    "webhooks": ("workers.jobs.deliver_webhooks_periodic", "low", 30),
    # splits whose worker died: resumed within a minute (engine.intake.watchdog)
    "watchdog": ("workers.jobs.watch_jobs", "high", 20),
    # answers stored while Redis was out of reach: counted within seconds of its return
    "replay": ("workers.jobs.replay_answers", "high", 10),
}


def ensure_scheduled(services: Services, name: str, delay: int | None = None) -> bool:
    """Schedule `name`'s next run unless one is already pending; True if scheduled."""
    func, queue, interval = PERIODIC[name]
    delay = interval if delay is None else delay
    guard = f"bs:periodic:{name}"
    if not services.queue_redis.set(guard, "1", nx=True, ex=delay + 120):
        return False
    services.queue(queue).enqueue_in(timedelta(seconds=delay), func,
                                     job_id=f"periodic-{name}-{time.time_ns()}")
    return True


def renew(services: Services, name: str) -> None:
    """Called by a periodic job as it runs: hand the guard on to the next run."""
    services.queue_redis.delete(f"bs:periodic:{name}")
    ensure_scheduled(services, name)


def ensure_all(services: Services) -> None:
    """At a worker's start: every periodic chain, and one watchdog sweep once a
    dead worker's heartbeat would have gone stale (see sweep_after_start)."""
    for name in PERIODIC:
        ensure_scheduled(services, name, delay=5)
    sweep_after_start(services)


def sweep_after_start(services: Services) -> threading.Timer:
    """Once, when a heartbeat from before this worker started must be stale: resume
    the split of a worker that died just before this one started.

    The periodic watchdog runs on RQ's scheduler, and a scheduler killed with
    its worker (a whole process group, a container) keeps its lock for a
    minute: RQ's scheduler in a new worker then only retries at its
    maintenance interval, ten minutes later. This timer does not wait for it,
    so a new worker resumes a dead worker's job within a minute of starting.
    """
    from engine.intake import jobs
    from engine.intake.watchdog import sweep

    def run() -> None:
        try:
            sweep(services)
        except Exception:
            log.exception("the watchdog sweep after start-up failed")

    timer = threading.Timer(jobs.STALE_AFTER.total_seconds() + 2 * jobs.HEARTBEAT_SECONDS, run)
    timer.daemon = True
    timer.start()
    return timer
