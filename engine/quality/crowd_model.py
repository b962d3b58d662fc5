"""Which crowd model a project's results rest on, and why: for the admin.

The periodic estimate (engine.quality.reliability) lets ``truth.auto`` choose
among models by how well each predicts answers it did not see
(engine.quality.truth_choice); the choice is kept here, per project, for the
quality page and the project's JSON. It is derived data, so it lives in Redis:
after a wipe the next quality run (which then re-estimates every project)
writes it again.
"""
from __future__ import annotations

import json
from typing import Any

from engine.quality.truth_choice import Choice
from engine.services import Services
from engine.store.models import iso, utcnow

KEY = "bs:quality:model:{}"
NAMES = {  # what each model assumes, in the admin's words
    "pooled": "the crowd's vote: one accuracy for everyone",
    "onecoin": "one accuracy per volunteer",
    "ds": "a confusion matrix per volunteer (Dawid-Skene)",
    "hierarchical": "a confusion matrix per volunteer, kept near the crowd's until "
                    "they have answered enough",
    "smoothed": "a confusion matrix per volunteer, kept near their own accuracy",
}


def record(services: Services, project_id: int, choice: Choice | None) -> None:
    """Keep the model the last estimate chose (nothing for types without labels)."""
    if choice is None:
        return
    services.redis.set(KEY.format(project_id),
                       json.dumps({**choice.as_dict(), "at": iso(utcnow())}))


def read(services: Services, project_id: int) -> dict[str, Any] | None:
    """The recorded choice with its plain name, or None before any estimate."""
    raw = services.redis.get(KEY.format(project_id))
    if raw is None:
        return None
    found = json.loads(raw)
    return {**found, "name": NAMES.get(found["chosen"], found["chosen"])}
