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
