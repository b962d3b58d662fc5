"""RQ job functions. Each takes ids, resolves them, and calls the engine."""
from __future__ import annotations

from engine.intake import run_job
from workers.context import services


def split_job(job_id: int) -> dict:
    """Split an uploaded job into items and tasks."""
    job = run_job(services(), job_id)
    return {"job": job.id, "state": job.state, "tasks_made": job.tasks_made}


def estimate_quality() -> dict:
    """Re-estimate volunteer reliability in every project with new answers."""
    from engine.quality import estimate_changed
    from workers.schedule import renew

    s = services()
    renew(s, "quality")
    return {str(pid): count for pid, count in estimate_changed(s).items()}
