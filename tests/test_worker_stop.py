"""A stopping worker never waits for ever on RQ's scheduler process.

The scheduler is forked from a worker that runs threads, and a child forked
while another thread held a lock can hang; RQ joined it without a limit, so
the worker outlived its SIGTERM. These run a real child process in its place.
"""
from __future__ import annotations

import multiprocessing
import signal
import time
import types

import workers.runner as runner


def _stuck() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as a child stuck on a lock
    time.sleep(120)


def _obliging() -> None:
    # SIGTERM's default: it stops at once. Set here, since a fork inherits the
    # test process's handlers (an in-process RQ worker earlier in the run left its own).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    time.sleep(120)


def _worker_with(services, target) -> tuple[runner.PeriodicWorker, multiprocessing.Process]:
    process = multiprocessing.get_context("fork").Process(target=target, daemon=True)
    process.start()
    worker = runner.PeriodicWorker([services.queue("high")], connection=services.queue_redis)
    worker.scheduler = types.SimpleNamespace(_process=process)
    return worker, process


def test_a_scheduler_that_ignores_sigterm_is_killed_after_the_wait(services, monkeypatch):
    monkeypatch.setattr(runner, "SCHEDULER_STOP_WAIT", 0.5)
    worker, process = _worker_with(services, _stuck)
    time.sleep(0.2)  # its SIGTERM handler is set
    started = time.monotonic()
    worker.stop_scheduler()
    assert time.monotonic() - started < 10
    assert not process.is_alive()
    assert process.exitcode == -signal.SIGKILL


def test_a_scheduler_that_stops_on_sigterm_is_not_killed(services, monkeypatch):
    monkeypatch.setattr(runner, "SCHEDULER_STOP_WAIT", 30)
    worker, process = _worker_with(services, _obliging)
    time.sleep(0.2)
    started = time.monotonic()
    worker.stop_scheduler()
    assert time.monotonic() - started < 10
    assert process.exitcode == -signal.SIGTERM


def test_the_scheduler_moves_due_jobs_of_the_split_queue_the_lanes_work(services):
    """A split's retry (in 10 s) is a job scheduled on the split queue, which the
    main worker does not work itself: RQ's scheduler, named only the worker's own
    queues, never moved it, and the import stayed queued for ever (a security
    review). Here the scheduler runs once, in burst (no fork)."""
    from datetime import UTC, datetime, timedelta

    from engine.intake.queueing import SPLIT_QUEUE

    split = services.queue(SPLIT_QUEUE)
    due = split.enqueue_at(datetime.now(UTC) - timedelta(seconds=1), "builtins.print", "retry")
    assert due.id not in split.job_ids  # scheduled, not queued yet
    started = []
    worker = runner.PeriodicWorker([services.queue("high")], connection=services.queue_redis,
                                   after_scheduler=lambda: started.append(True),
                                   also_scheduled=[split])
    worker._start_scheduler(burst=True)
    assert due.id in split.job_ids
    assert [q.name for q in worker.queues] == ["high"]  # still works its own queues only
    assert started == [True]
