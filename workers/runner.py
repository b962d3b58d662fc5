"""Run an RQ worker over bitesize's queues, highest priority first.

SimpleWorker runs jobs in the worker process itself: bitesize's jobs are
short or batched, and forking per job costs ~4x the throughput (DESIGN.md).
"""
from __future__ import annotations

from rq import SimpleWorker

from engine.services import Services
from workers.context import set_services


def run_worker(services: Services, burst: bool = False, name: str | None = None) -> bool:
    """Work the high, default and low queues; returns when stopped (or empty, in burst)."""
    set_services(services)
    worker = SimpleWorker(services.queues(), connection=services.redis, name=name)
    return worker.work(burst=burst, with_scheduler=not burst, logging_level="WARNING")
