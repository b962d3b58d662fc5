"""RQ job functions. Each takes ids, resolves them, and calls the engine."""
from __future__ import annotations

from engine.intake import run_job
from workers.context import services


def split_job(job_id: int) -> dict:
    """Split an uploaded job into items and tasks."""
    job = run_job(services(), job_id)
    return {"job": job.id, "state": job.state, "tasks_made": job.tasks_made}


def estimate_quality() -> dict:
    """Re-estimate volunteer reliability in every project that has answers."""
    from sqlalchemy import select

    from engine.models import Answer
    from engine.quality import estimate_project
    from workers.schedule import renew

    s = services()
    renew(s, "quality")
    with s.db.session() as session:
        project_ids = list(session.scalars(select(Answer.project_id).distinct()))
    return {str(pid): estimate_project(s, pid) for pid in project_ids}
