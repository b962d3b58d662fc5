"""The job watchdog: a split whose worker died is resumed, or failed, never left running.

A worker killed mid-split (kill -9, an out-of-memory kill, a lost machine)
records nothing: its job stays ``running``, and RQ only calls its job
abandoned when the job's six-hour timeout has passed. A running split beats
(engine.intake.heartbeat.Heartbeat) every few seconds, so a job whose heartbeat
is older than ``jobs.STALE_AFTER`` has lost its worker. ``sweep``, run every
~20 s by the workers (workers.schedule), claims each such job with one
conditional UPDATE (so two sweeps never both claim it), removes the dead RQ
job from RQ's started registry, and enqueues the split again: it resumes
where it stopped, since a run skips the items already stored. A job whose
worker stopped ``MAX_STOPS`` times is failed instead, with an error that
says so; its owner can run it again (engine.intake.jobs.rerun_job).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update

from engine.intake import jobs
from engine.intake.jobs import finish_job, stalled
from engine.intake.queueing import enqueue_split, forget_rq_job
from engine.services import Services
from engine.store.models import Job, utcnow

MAX_STOPS = 3  # the third stop fails the job: something in it may be killing workers
log = logging.getLogger(__name__)


@dataclass
class Swept:
    """What one sweep did, by job id."""

    resumed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def sweep(services: Services, now: datetime | None = None) -> Swept:
    """Resume (or fail) every running job whose worker stopped beating."""
    cutoff = (now or utcnow()) - jobs.STALE_AFTER
    with services.db.session() as session:
        found = session.execute(select(Job.id, Job.resumed).where(stalled(cutoff))).all()
    swept = Swept()
    for job_id, stops in found:
        if stops + 1 >= MAX_STOPS:
            if _fail(services, job_id, stops + 1, cutoff):
                swept.failed.append(job_id)
        elif _claim(services, job_id, cutoff):
            forget_rq_job(services, job_id)
            enqueue_split(services, job_id)
            swept.resumed.append(job_id)
    if swept.resumed or swept.failed:
        log.warning("jobs whose worker stopped: resumed %s, failed %s", swept.resumed,
                    swept.failed)
    return swept


def _claim(services: Services, job_id: int, cutoff: datetime) -> bool:
    """Queue the job again if it is still stalled: bumping ``resumed`` also tells a
    run that was only slow, not dead, that the job is no longer its own."""
    with services.db.session() as session:
        return bool(session.execute(
            update(Job).where(Job.id == job_id, stalled(cutoff))
            .values(state="queued", resumed=Job.resumed + 1, heartbeat_at=None)).rowcount)


def _fail(services: Services, job_id: int, stops: int, cutoff: datetime) -> bool:
    error = (f"the worker stopped {stops} times while splitting this job; "
             "Run again to try once more")
    finished = finish_job(services, job_id, "failed", error, stalled(cutoff), resumed=stops)
    if finished is not None:
        forget_rq_job(services, job_id)
    return finished is not None
