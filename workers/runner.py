"""Run an RQ worker over bitesize's queues, highest priority first.

SimpleWorker runs jobs in the worker process itself: bitesize's jobs are
short or batched, and forking per job costs ~4x the throughput (DESIGN.md).
"""
from __future__ import annotations

from rq import SimpleWorker

from engine.services import Services
from workers.context import set_services
from workers.schedule import ensure_all


class BurstWorker(SimpleWorker):
    """A worker that empties the queues and stops: no command channel, whose
    listener thread would cost up to a second to shut down after each burst."""

    def subscribe(self) -> None:
        pass

    def unsubscribe(self) -> None:
        pass


def run_worker(services: Services, burst: bool = False, name: str | None = None) -> bool:
    """Work the high, default and low queues; returns when stopped (or empty, in burst)."""
    set_services(services)
    if not burst:
        ensure_all(services)
    worker_class = BurstWorker if burst else SimpleWorker
    worker = worker_class(services.queues(), connection=services.redis, name=name)
    return worker.work(burst=burst, with_scheduler=not burst, logging_level="WARNING")
