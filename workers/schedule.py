"""Periodic work as a self-renewing chain of RQ scheduled jobs.

Each periodic job, when it runs, schedules its next run. A guard key in
Redis (expiring a little after the next run is due) keeps several workers
from starting several chains, and lets a new chain start by itself when one
was lost (a Redis wipe, every worker down): any worker start-up, and every
periodic run, calls `ensure_scheduled`.
"""
from __future__ import annotations

import time
from datetime import timedelta

from engine.services import Services

# name -> (job function, queue, seconds between runs)
PERIODIC = {
    "quality": ("workers.jobs.estimate_quality", "high", 300),
    "webhooks": ("workers.jobs.deliver_webhooks_periodic", "low", 30),
}


def ensure_scheduled(services: Services, name: str, delay: int | None = None) -> bool:
    """Schedule `name`'s next run unless one is already pending; True if scheduled."""
    func, queue, interval = PERIODIC[name]
    delay = interval if delay is None else delay
    guard = f"bs:periodic:{name}"
    if not services.redis.set(guard, "1", nx=True, ex=delay + 120):
        return False
    services.queue(queue).enqueue_in(timedelta(seconds=delay), func,
                                     job_id=f"periodic-{name}-{time.time_ns()}")
    return True


def renew(services: Services, name: str) -> None:
    """Called by a periodic job as it runs: hand the guard on to the next run."""
    services.redis.delete(f"bs:periodic:{name}")
    ensure_scheduled(services, name)


def ensure_all(services: Services) -> None:
    for name in PERIODIC:
        ensure_scheduled(services, name, delay=5)
