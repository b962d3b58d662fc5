"""The task types' exceptions, all named ...Error.

task_types/ sits below engine/ and cannot import its errors, so it keeps its
own small family; web/ maps these to HTTP codes next to the engine's. Like
the engine's errors, each carries a stable ``code`` and, where a field of the
input is to blame, ``fields`` mapping field names to messages.
"""
from __future__ import annotations

from typing import Any


class TaskTypeError(Exception):
    """Base of every error a task type or the registry raises on purpose."""

    code = "task_type_error"

    def __init__(self, message: str, fields: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class UnknownTaskTypeError(TaskTypeError):
    """A project names a task type that is not installed (or not loadable)."""

    code = "unknown_task_type"


class DuplicateTaskTypeError(TaskTypeError):
    """Two plugins claim one name: raised at start-up, since picking one silently
    would make a project's results depend on install order."""

    code = "duplicate_task_type"


class ItemError(TaskTypeError):
    """An uploaded item passed validation but still cannot be split."""

    code = "invalid_item"
