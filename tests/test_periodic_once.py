"""Periodic jobs run once across all workers (issue 17.4): two `bitesize worker`
processes on one database and Redis, as on two machines, and the 10-second
`replay` job runs once per period, not once per worker."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from engine.store import job_timings
from tests.worker_processes import worker_env

RUN_SECONDS = 18  # the first run is due 5 s after a worker starts, then every 10 s


def test_two_workers_run_each_periodic_job_once_per_period(settings, services):
    workers = [subprocess.Popen([sys.executable, "-m", "web.cli", "worker", "--imports", "0"],
                                env=worker_env(settings), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
               for _ in range(2)]
    try:
        time.sleep(RUN_SECONDS)
        runs = job_timings.read(services.queue_redis).get("workers.jobs.replay_answers")
    finally:
        for worker in workers:
            worker.terminate()
        errors = [_stopped(worker) for worker in workers]
    assert all(b"Traceback" not in e for e in errors), errors
    # each says once that it runs (else its log stays empty: it logs warnings only)
    assert all(e.startswith(b"bitesize worker started (pid ") and
               b"the periodic jobs, imports among them" in e for e in errors), errors
    # at ~5 s and ~15 s: twice at most, whichever worker took each run; a chain
    # per worker would have run it up to four times
    assert runs is not None and 1 <= runs.count <= 2, runs


def _stopped(worker: subprocess.Popen) -> bytes:
    """The worker's stderr once it has stopped. A warm shutdown waits for the
    job in hand, and for RQ's scheduler process at most
    workers.runner.SCHEDULER_STOP_WAIT (once, in CI, a stuck scheduler kept a
    worker running past 30 s); should one still outlive 30 s, its whole
    process group is killed rather than left running into the next tests."""
    try:
        return worker.communicate(timeout=30)[1]
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        return worker.communicate(timeout=30)[1]


# A worker whose RQ scheduler, as it is forked, says which threads run beside it.
FORK_WITNESS = """
import sys, threading
from rq.scheduler import RQScheduler

real = RQScheduler.start


def start(self):
    beside = sorted(t.name for t in threading.enumerate() if t is not threading.main_thread())
    print("forked beside:", ",".join(beside), file=sys.stderr, flush=True)
    return real(self)


RQScheduler.start = start
from web.cli import main

sys.argv = ["bitesize", "worker", "--imports", "2"]
main()
"""


def test_the_scheduler_is_forked_before_the_workers_own_threads_start(settings, services,
                                                                       tmp_path):
    """A fork taken while an import lane or the upkeep held a lock (a module
    half-imported) left the scheduler child stuck from its start, and no
    periodic job ever ran: the lanes and the upkeep start after the fork."""
    launcher = tmp_path / "fork_witness.py"
    launcher.write_text(FORK_WITNESS)
    worker = subprocess.Popen([sys.executable, str(launcher)], env=worker_env(settings),
                              cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not services.queue_redis.keys(
                "rq:scheduler-lock:*"):
            time.sleep(0.1)
    finally:
        worker.terminate()
        stderr = _stopped(worker).decode()
    forked = [line for line in stderr.splitlines() if line.startswith("forked beside:")]
    assert len(forked) == 1, stderr
    assert "import-lane" not in forked[0] and "upkeep" not in forked[0], forked[0]
