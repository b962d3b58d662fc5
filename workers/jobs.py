"""RQ job functions. Each takes ids, resolves them, and calls the engine."""
from __future__ import annotations

import logging

from rq import get_current_job
from rq.exceptions import AbandonedJobError
from rq.timeouts import JobTimeoutException

from engine.intake.jobs import is_transient, record_failure, run_job
from workers.context import services

log = logging.getLogger(__name__)


def split_job(job_id: int) -> dict:
    """Split an uploaded job into items and tasks. A transient failure is retried
    with back-off (engine.intake.queueing.SPLIT_RETRY), the job waiting queued meanwhile."""
    current = get_current_job()

    def retry_in(exc: BaseException) -> int | None:
        if current is None or not current.should_retry or not worth_retrying(exc):
            return None
        return current.get_retry_interval()

    last = current is None or not current.should_retry
    job = run_job(services(), job_id, retry_in=retry_in, last_attempt=last)
    if job is None:  # its draft was deleted
        return {"job": job_id, "state": "deleted", "tasks_made": 0}
    return {"job": job.id, "state": job.state, "tasks_made": job.tasks_made}


def split_failed(rq_job, connection, exc_type, exc, traceback) -> None:
    """RQ's failure callback for split_job, called before RQ decides on a retry.

    A failure another attempt cannot fix (the upload's fault, a bug) is not
    retried. A worker that died mid-job (abandoned) could not record anything
    itself, so its failure, or its coming retry, is recorded here.
    """
    if not worth_retrying(exc):
        rq_job.retries_left = None
    if isinstance(exc, AbandonedJobError):
        retry = rq_job.get_retry_interval() if rq_job.should_retry else None
        record_failure(services(), rq_job.args[0], exc, retry)


def worth_retrying(exc: BaseException) -> bool:
    """Transient failures, a worker's death, and the job's time running out: a
    split resumes where it stopped, so another attempt gets further."""
    return isinstance(exc, (AbandonedJobError, JobTimeoutException)) or is_transient(exc)


def watch_jobs() -> dict:
    """Every ~20 s: resume (or fail) splits whose worker died (engine.intake.watchdog)."""
    from engine.intake.watchdog import sweep
    from workers.schedule import renew

    s = services()
    renew(s, "watchdog")  # first: a failing sweep must not end the chain
    swept = sweep(s)
    return {"resumed": swept.resumed, "failed": swept.failed}


def estimate_quality() -> dict:
    """Re-estimate volunteer reliability in every project with new answers, then
    re-check the retired work of volunteers now below the threshold
    (engine.quality.recheck), then merge again the tasks held for an
    established volunteer's support (engine.quality.held): time and gold
    establish volunteers, not new answers. First, the re-merges of a block or
    quarantine that a lost process left unfinished (engine.quality.remerging),
    and the projects whose version in Redis is stale
    (engine.projects.refresh_versions)."""
    from engine.projects import refresh_versions
    from engine.quality.held import release_held
    from engine.quality.recheck import recheck_projects
    from engine.quality.reliability import estimate_changed
    from engine.quality.remerging import finish_remerges
    from workers.schedule import renew

    s = services()
    renew(s, "quality")
    finish_remerges(s)
    try:  # only a speed-up: never in the way of the estimates
        refresh_versions(s)
    except Exception:
        log.exception("refreshing the projects' versions in Redis failed; tried next run")
    done = estimate_changed(s)
    recheck_projects(s, list(done))
    release_held(s)
    return {str(pid): count for pid, count in done.items()}


def replay_answers() -> dict:
    """Every ~10 s: close the leases of answers stored while Redis was out of
    reach, count them and merge what they complete (engine.volunteering)."""
    from engine.volunteering import replay_pending
    from workers.schedule import renew

    s = services()
    renew(s, "replay")
    total = 0
    while (replayed := replay_pending(s)) > 0:
        total += replayed
    return {"replayed": total}


def release_held_tasks(project_id: int) -> dict:
    """Merge a project's held tasks again: a volunteer was just established by
    gold (nudged by engine.quality.held.release_soon)."""
    from engine.quality.held import release_held

    return {str(pid): count for pid, count in release_held(services(), [project_id]).items()}


def deliver_webhooks() -> dict:
    """POST the webhook events that are due (nudged when events are recorded)."""
    from engine.delivery.sender import deliver_due

    return {str(pid): count for pid, count in deliver_due(services()).items()}


def deliver_webhooks_periodic() -> dict:
    """The same, every 30 s: retries come due even when no new event nudges."""
    from workers.schedule import renew

    renew(services(), "webhooks")
    return deliver_webhooks()


def send_project_news(news_id: int) -> dict:
    """Email a charity's note to its project's subscribed volunteers."""
    from engine.accounts.news import send_news

    return send_news(services(), news_id)


def send_email_confirmation(volunteer_id: int, email: str) -> None:
    """Email a volunteer the link that confirms their address, if it is still
    theirs and unconfirmed (engine.accounts.confirmations)."""
    from engine.accounts.confirmations import send_confirmation

    send_confirmation(services(), volunteer_id, email)


def send_password_reset(email: str, link_prefix: str) -> None:
    """Email a console account's "forgot password" link (engine.accounts.resets);
    returns nothing, so no job result says whether the address has an account."""
    from engine.accounts.resets import send_reset

    send_reset(services(), email, link_prefix)
