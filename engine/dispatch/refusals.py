"""What dispatch refuses, as the engine's errors (and their HTTP statuses): the
Lua scripts' answers turned into exceptions by engine.dispatch.dispatcher,
which also exports them."""
from __future__ import annotations

from engine.errors import (
    ConflictError,
    GoneError,
    NotFoundError,
    TooManyRequestsError,
    UnavailableError,
)


class StateMissingError(UnavailableError):
    """The project's dispatch state is not in Redis (never built, or wiped)."""

    code = "state_missing"


class ProjectClosedError(ConflictError):
    """The project is paused or completed: no tasks are handed out."""

    code = "project_closed"


class ProjectMissingError(NotFoundError):
    """A project that does not exist, or that the caller may not know of (another
    organisation's project; for volunteers, a draft, which the hand-out refuses
    with these words rather than say it exists and is closed). The one wording:
    engine.projects.project_missing makes it too."""

    def __init__(self, project_id: int) -> None:
        super().__init__(f"project {project_id} does not exist", {"project": "not found"})


class LeaseLimitError(TooManyRequestsError):
    """Fair hand-out: the volunteer holds the most live leases allowed, so that a
    few volunteers cannot lease a whole project and leave the others nothing.
    ``retry_after``: seconds until the oldest of their leases expires."""

    code = "too_many_leases"

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many tasks held: answer or skip one first", retry_after)


class ExtendLimitError(ConflictError):
    """The lease was extended as often as allowed: one volunteer cannot keep a
    task from everyone else for ever."""

    code = "too_many_extends"


class LeaseSkippedError(GoneError):
    """The volunteer gave this task back: an answer sent with its lease is refused."""

    code = "lease_skipped"

    def __init__(self) -> None:
        super().__init__("this task was skipped", {"lease": "skipped"})
