"""A running split's heartbeat: proof, every few seconds, that its worker lives.

engine.intake.jobs runs a split inside one; engine.intake.watchdog takes a
running job whose heartbeat went stale for one whose worker died.
"""
from __future__ import annotations

import logging
import threading

from sqlalchemy import update

from engine.services import Services
from engine.store.models import Job, utcnow

log = logging.getLogger(__name__)


class Heartbeat:
    """Keeps ``job.heartbeat_at`` fresh from a daemon thread while a split runs, so
    a slow batch (large pictures, a slow database) never looks like a dead worker.

    Each beat is one short UPDATE on its own pooled connection; on SQLite it
    waits its turn for the write lock like any writer (busy_timeout), and a
    beat that fails is logged and tried again at the next one: only eight
    missed beats in a row make the job look dead. A beat that finds the job
    no longer running under this run's ``owner`` mark sets ``lost``.
    """

    def __init__(self, services: Services, job_id: int, owner: int, every: float) -> None:
        self.services, self.job_id, self.owner = services, job_id, owner
        self.every = every
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-job-{job_id}",
                                        daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()  # wakes the thread at once; a beat under way finishes first
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.beat()

    def beat(self) -> None:
        try:
            with self.services.db.session() as session:
                mine = session.execute(update(Job).where(
                    Job.id == self.job_id, Job.state == "running", Job.resumed == self.owner)
                    .values(heartbeat_at=utcnow())).rowcount
        except Exception:  # the next beat may pass; the split itself goes on
            log.warning("job %s: heartbeat not recorded", self.job_id, exc_info=True)
            return
        if not mine:
            self.lost = True
