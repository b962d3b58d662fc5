"""Engine objects as the API's JSON shapes."""
from __future__ import annotations

from typing import Any

from engine.projects import ProjectView
from engine.quality.thresholds import thresholds
from engine.store.models import Job, iso


def project(view: ProjectView, owner: bool) -> dict[str, Any]:
    p = view.project
    out = {"id": p.id, "name": p.name, "description": p.description,
           "task_type": p.task_type, "config": p.config, "state": p.state,
           "min_answers": p.min_answers, "max_answers": p.max_answers,
           "confidence": p.confidence, "lease_seconds": p.lease_seconds,
           "strategy": p.strategy, "gold_start": p.gold_start, "gold_floor": p.gold_floor,
           "gold_ramp": p.gold_ramp, "quality": thresholds(p),
           "created_at": iso(p.created_at), "progress": view.progress,
           "tutorial": p.tutorial or [], "field_guide": p.field_guide or "",
           "translations": p.translations or {}}
    if not owner:
        # The quality flags' thresholds and the gold mix tell a cheat how fast to
        # answer and how often gold comes to stay unflagged (security review).
        for private in OWNERS_ONLY:
            out.pop(private)
    return out


OWNERS_ONLY = ("lease_seconds", "quality", "gold_start", "gold_floor", "gold_ramp")


def job(j: Job, max_problems: int | None = None) -> dict[str, Any]:
    """A job; ``problems`` is the stored report (at most 1,000 entries and a last
    "N more problems not listed"), or its first ``max_problems`` in lists;
    ``problems_count`` is every problem found either way."""
    problems = j.problems or []
    return {"id": j.id, "project": j.project_id, "kind": j.kind, "state": j.state,
            "priority": j.priority, "filename": j.filename,
            "progress": {"items_total": j.items_total, "items_read": j.items_read,
                         "items_split": j.items_split, "tasks_made": j.tasks_made,
                         "duplicates": j.duplicates},
            "resumed": j.resumed, "heartbeat_at": iso(j.heartbeat_at),
            "problems": problems[:max_problems], "problems_count": j.problems_count,
            "error": j.error,
            "created_at": iso(j.created_at), "started_at": iso(j.started_at),
            "finished_at": iso(j.finished_at)}
