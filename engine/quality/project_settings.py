"""What the answer path needs of a project's quality settings, kept per process.

An answer may be checked (engine.quality.arrivals: a volunteer's answers 3 to
10, then every few) and, on a gold task, told the charity's answer
(engine.quality.feedback): both need the project's flag thresholds, task type
and config. Read through the ORM on each such answer they cost PostgreSQL four
round trips; here they are kept by the project's version, which hashes type,
config and thresholds (engine.projects.config_version) and which the answer's own
validation has just read (Dispatcher.meta_version: no Redis call of its own,
and another process's change is seen within its VERSION_SECONDS).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from engine.projects import config_version
from engine.quality.thresholds import thresholds
from engine.services import Services
from engine.store.models import Project
from engine.store.redis_server import REDIS_DOWN

MAX_KEPT = 10_000  # projects x versions; all forgotten at once past it


@dataclass(frozen=True)
class QualitySettings:
    limits: Mapping[str, Any]  # thresholds(project), read-only: one copy per process
    task_type: str
    config: dict  # as task types take it; shared, so never changed


# By (project, version): an entry never outlives the settings it was read from.
_kept: dict[tuple[int, str], QualitySettings] = {}


def quality_settings(services: Services, project_id: int) -> QualitySettings | None:
    """The project's settings (None: no such project). Kept when the version
    Redis has is the one SQL's row hashes to; read from SQL, and not kept,
    while Redis is out of reach or has not been told of a change yet."""
    try:
        version = services.dispatcher.meta_version(project_id)
    except REDIS_DOWN:
        version = None
    kept = _kept.get((project_id, version)) if version is not None else None
    if kept is not None:
        return kept
    with services.db.session() as session:
        project = session.get(Project, project_id)
        if project is None:
            return None
        found = QualitySettings(MappingProxyType(thresholds(project)), project.task_type,
                                project.config)
        read = config_version(project)
    if version is not None and read == version:
        if len(_kept) >= MAX_KEPT:
            _kept.clear()
        _kept[(project_id, version)] = found
    return found
