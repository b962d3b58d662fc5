"""Run an RQ worker over bitesize's queues: periodic work beside import lanes.

SimpleWorker runs jobs in the worker process itself: bitesize's jobs are
short or batched, and forking per job costs ~4x the throughput (DESIGN.md).

One worker process is enough for the demo and small deployments, yet one
charity's slow or hanging import must not hold up another's, nor the
periodic jobs. So a worker runs, in one process:

- the main worker, in the main thread, on the ``high`` and ``low`` queues
  (the periodic quality, webhook and watchdog jobs), with RQ's scheduler:
  no import ever takes its turn;
- ``imports`` import lanes, threads each running a SimpleWorker on the
  ``default`` queue (splits). An organisation has at most
  ``engine.intake.queueing.ORG_IMPORTS`` splits queued or running at once (RQ's
  RateLimit), so a charity whose import hangs holds one lane, and another
  charity's job is taken by the next free lane.

In burst mode (tests, one-off runs) one worker empties every queue and stops.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time

from rq import SimpleWorker
from rq.timeouts import TimerDeathPenalty

from engine.intake.queueing import SPLIT_QUEUE
from engine.services import QUEUE_NAMES, Services
from workers.context import set_services
from workers.schedule import ensure_all
from workers.timing import TimedJob

IMPORT_LANES = 3  # default: three charities' imports at once, per worker process
STOP_WAIT = 10.0  # seconds a stopping worker waits for its lanes' running splits
SCHEDULER_STOP_WAIT = 5.0  # seconds a stopping worker waits for RQ's scheduler process
log = logging.getLogger(__name__)


class BurstWorker(SimpleWorker):
    """A worker that empties the queues and stops: no command channel, whose
    listener thread would cost up to a second to shut down after each burst."""

    job_class = TimedJob  # every job's duration goes to /metrics (workers.timing)

    def subscribe(self) -> None:
        pass

    def unsubscribe(self) -> None:
        pass


class PeriodicWorker(SimpleWorker):
    """The main worker, with RQ's scheduler. That scheduler is a process forked
    from this one, which runs threads (import lanes, the upkeep): a fork taken
    while one of them held a lock (a module being imported, a connection
    pool's) can leave the child stuck for ever. Its periodic jobs then never
    run (an audit's demo: the quality job never ran, the scheduler child stuck
    from its start), and RQ's stop_scheduler waits for it for ever, so the
    worker never stops (seen once in CI: a worker still running 30 s after
    SIGTERM).

    So the threads start only once the scheduler is forked (``after_scheduler``,
    called whether or not this worker won the scheduler's lock), and the wait
    when stopping is bounded: SIGTERM, then SIGKILL. The scheduler's Redis lock
    expires and the next scheduler takes over.

    RQ's scheduler moves the jobs due (a split's retry in 10 s) of the queues
    its worker works only: the split queue, worked by the import lanes, is
    named to it too (``also_scheduled``), or a retried split stayed queued for
    ever (a security review found five)."""

    job_class = TimedJob

    def __init__(self, *args, after_scheduler=None, also_scheduled=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.after_scheduler = after_scheduler
        self.also_scheduled = list(also_scheduled)

    def _start_scheduler(self, *args, **kwargs) -> None:
        worked = self.queues
        self.queues = [*worked, *(q for q in self.also_scheduled if q not in worked)]
        try:
            super()._start_scheduler(*args, **kwargs)
        finally:
            self.queues = worked
            if self.after_scheduler is not None:
                self.after_scheduler()

    def stop_scheduler(self) -> None:
        process = self.scheduler._process if self.scheduler else None
        if process is None or not process.pid:
            return
        try:
            os.kill(process.pid, signal.SIGTERM)
        except OSError:  # gone already
            pass
        process.join(SCHEDULER_STOP_WAIT)
        if process.is_alive():
            log.warning("RQ's scheduler (pid %d) did not stop within %.0f s: killed",
                        process.pid, SCHEDULER_STOP_WAIT)
            process.kill()
            process.join()


class LaneWorker(BurstWorker):
    """A SimpleWorker that runs in a thread: signals belong to the main worker, and
    a job's time limit is a timer (RQ's SIGALRM one works in the main thread only).
    A split the process leaves unfinished is resumed by the watchdog."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        pass


def run_worker(services: Services, burst: bool = False, name: str | None = None,
               imports: int = IMPORT_LANES) -> bool:
    """Work every queue; returns when stopped (or, in burst, when they are empty)."""
    set_services(services)
    if burst:
        worker = BurstWorker(services.queues(), connection=services.worker_redis, name=name)
        return worker.work(burst=True, logging_level="WARNING")
    ensure_all(services)
    lanes: list[tuple[LaneWorker, threading.Thread]] = []

    def start_threads() -> None:  # once RQ's scheduler is forked (PeriodicWorker)
        start_upkeep(services)
        lanes.extend(start_lanes(services, imports, name))

    periodic = [services.queue(q) for q in QUEUE_NAMES if q != SPLIT_QUEUE or not imports]
    worker = PeriodicWorker(periodic, connection=services.worker_redis, name=name,
                            after_scheduler=start_threads,
                            also_scheduled=[services.queue(SPLIT_QUEUE)] if imports else [])
    try:
        return worker.work(with_scheduler=True, logging_level="WARNING")
    finally:
        stop_lanes(lanes)


UPKEEP_SECONDS = 15.0


def start_upkeep(services: Services, every: float = UPKEEP_SECONDS) -> threading.Event:
    """Every `every` seconds, restart any periodic chain that was lost: a Redis
    that came back empty took the scheduled runs with it (the `replay` of
    answers stored meanwhile among them). The guard keys keep it to one chain
    per job across all workers; while Redis is away this simply waits. Set
    the returned event to stop it."""
    from engine.store.redis_server import REDIS_DOWN
    from workers.schedule import PERIODIC, ensure_scheduled

    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every):
            for periodic in PERIODIC:
                try:
                    ensure_scheduled(services, periodic)
                except REDIS_DOWN:
                    break
                except Exception:
                    log.exception("could not schedule the periodic %s job", periodic)

    threading.Thread(target=run, daemon=True, name="periodic-upkeep").start()
    return stop


def start_lanes(services: Services, count: int, name: str | None = None
                ) -> list[tuple[LaneWorker, threading.Thread]]:
    """Start ``count`` import lanes, each a daemon thread working the split queue."""
    lanes = []
    for n in range(1, count + 1):
        lane = LaneWorker([services.queue(SPLIT_QUEUE)], connection=services.worker_redis,
                          name=f"{name}-imports-{n}" if name else None)
        thread = threading.Thread(target=_work_lane, args=(lane,), daemon=True,
                                  name=f"import-lane-{n}")
        thread.start()
        lanes.append((lane, thread))
    return lanes


def _work_lane(lane: LaneWorker) -> None:
    try:
        lane.work(logging_level="WARNING")
    except Exception:  # a lane that dies must say so; the other lanes go on
        log.exception("import lane %s stopped", lane.name)


def stop_lanes(lanes: list[tuple[LaneWorker, threading.Thread]]) -> None:
    """Ask every lane to stop after its current split, and wait a little for them.
    Idle lanes wait on Redis and die with the process; a split still running when
    the wait ends stops with it and is resumed by the watchdog (nothing twice)."""
    for lane, _ in lanes:
        lane._stop_requested = True
    deadline = time.monotonic() + STOP_WAIT
    for lane, thread in lanes:
        if lane.get_current_job_id() is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
