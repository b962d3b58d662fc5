"""Task-type plugins: pure logic per kind of microtask.

Nothing here imports Flask, Redis or SQLAlchemy: a task type takes plain data
and returns plain data, so it can be tested (and reused offline) on its own.
"""
from task_types.base import Aggregate, Media, Microtask, Region, TaskResult, TaskType
from task_types.errors import (
    DuplicateTaskTypeError,
    ItemError,
    TaskTypeError,
    UnknownTaskTypeError,
)
from task_types.registry import TaskTypeRegistry

__all__ = [
    "Aggregate",
    "DuplicateTaskTypeError",
    "ItemError",
    "Media",
    "Microtask",
    "Region",
    "TaskResult",
    "TaskType",
    "TaskTypeError",
    "TaskTypeRegistry",
    "UnknownTaskTypeError",
]
