"""What the hot path knows of a project (its meta), and its form in Redis.

engine.projects publishes it from the project's row; the dispatcher keeps it
in the project's `meta` hash, beside its tasks, where its presence says the
project's dispatch state is complete (a rebuild writes it last)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

HIDDEN = "draft"  # the meta's `active` for a project volunteers may not know of


@dataclass(frozen=True)
class GoldMix:
    """How often gold is mixed in: `start` for the first `ramp` tasks a volunteer
    gets, then tapering linearly to `floor` over the next `ramp` tasks."""

    start: float = 0.4
    floor: float = 0.1
    ramp: int = 20


@dataclass(frozen=True)
class ProjectMeta:
    """What the hot path needs to know about a project, cached beside its tasks."""

    project_id: int
    active: bool
    task_type: str
    lease_seconds: int
    config: dict
    version: str  # changes with the config or quality thresholds: keys per-process caches
    strategy: str = "breadth"
    gold: GoldMix = GoldMix()
    hidden: bool = False  # a draft: a volunteer hears "does not exist", not "closed"

    def fields(self) -> dict[str, Any]:
        """The meta hash's fields (the project id is in its key). `active` is
        "1", "0" (closed) or "draft" (hidden): the hand-out reads one field."""
        active = "1" if self.active else HIDDEN if self.hidden else "0"
        return {"active": active, "task_type": self.task_type,
                "lease_seconds": self.lease_seconds, "config": json.dumps(self.config),
                "version": self.version, "strategy": self.strategy,
                "gold_start": self.gold.start, "gold_floor": self.gold.floor,
                "gold_ramp": self.gold.ramp}

    @classmethod
    def from_fields(cls, project_id: int, raw: dict) -> ProjectMeta:
        """The meta from its hash as Redis gives it (bytes or text)."""
        meta = {as_text(k): as_text(v) for k, v in raw.items()}
        gold = GoldMix(float(meta["gold_start"]), float(meta["gold_floor"]),
                       int(meta["gold_ramp"]))
        return cls(project_id, meta["active"] == "1", meta["task_type"],
                   int(meta["lease_seconds"]), json.loads(meta["config"]), meta["version"],
                   meta["strategy"], gold, meta["active"] == HIDDEN)


def as_text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
