"""Queueing a job's split on RQ, each organisation taking its turn.

A split waits behind its organisation's turn (RQ's RateLimit), so one
charity's uploads never hold every import lane while another charity's job
waits (workers.runner gives the splits their lanes). A failed or dead run's
RQ job is forgotten before the split is queued again, so its id can be reused
and its turn is given back at once.
"""
from __future__ import annotations

import contextlib

from rq import Callback, RateLimit, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob
from rq.rate_limit import RateLimitRegistry
from rq.registry import StartedJobRegistry
from sqlalchemy import select

from engine.services import Services
from engine.store.models import Job, Project

SPLIT_QUEUE = "default"
# Splits of one organisation queued or running at once, on all workers together
# (enqueue_split): the others wait their turn, so another charity's job never
# waits behind them.
ORG_IMPORTS = 1
# Back-off between attempts of a split that failed for a passing reason.
SPLIT_RETRY = Retry(max=3, interval=[10, 60, 300])


def enqueue_split(services: Services, job_id: int) -> None:
    """Queue the job's split behind its organisation's turn (RQ's RateLimit): at most
    ORG_IMPORTS splits of one organisation are queued or running at once, the
    rest wait in RQ's rate-limited set and are queued, oldest first, as each
    one ends. So one charity's uploads (or a split stuck on slow pictures) take
    at most that many of the workers' import lanes, and another charity's job
    is taken by the next free lane (workers.runner)."""
    services.queue(SPLIT_QUEUE).enqueue(
        "workers.jobs.split_job", job_id, job_id=_rq_id(job_id), job_timeout=6 * 3600,
        retry=SPLIT_RETRY, on_failure=Callback("workers.jobs.split_failed"),
        rate_limit=RateLimit(_turn_key(services, job_id), ORG_IMPORTS))


def _turn_key(services: Services, job_id: int) -> str:
    """The RQ rate-limit key that the organisation's splits share."""
    with services.db.session() as session:
        org_id = session.scalar(select(Project.organisation_id).join(
            Job, Job.project_id == Project.id).where(Job.id == job_id))
    return f"bitesize:imports:org-{org_id}"


def _rq_id(job_id: int) -> str:
    return f"split-{job_id}"


def forget_rq_job(services: Services, job_id: int) -> None:
    """Remove the job's RQ job: from the started registry where a dead worker left
    it (else RQ's own clean-up would later call it abandoned and fail our job),
    then the job itself, so its id can be enqueued afresh."""
    rq_id = _rq_id(job_id)
    registry = StartedJobRegistry(SPLIT_QUEUE, connection=services.queue_redis)
    for member in services.queue_redis.zrange(registry.key, 0, -1):
        if member.decode().split(":", 1)[0] == rq_id:
            services.queue_redis.zrem(registry.key, member)
    with contextlib.suppress(NoSuchJobError):
        _free_turn(RQJob.fetch(rq_id, connection=services.queue_redis))


def _free_turn(rq_job: RQJob) -> None:
    """Delete the RQ job and give back its organisation's turn. A dead worker's job
    still holds its turn, and RQ keeps a rate-limited job's turn while its
    execution record lives (up to the six-hour timeout): that record is
    removed first, so the turn is released at once and the next split of the
    organisation (this one, re-enqueued) can start."""
    key = rq_job.rate_limit_key
    rq_job.execution_registry.delete(job=rq_job, pipeline=rq_job.connection)
    rq_job.delete()
    if key:
        RateLimitRegistry(key, rq_job.connection).release_and_enqueue(rq_job.id)
