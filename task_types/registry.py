"""The installed task types, found through entry points.

Built-in types register through the same ``bitesize.task_types`` entry point
group as third-party ones, so there is one way in. The registry is built at
app and worker start-up and passed around: there is no module-level instance.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib.metadata import EntryPoint, entry_points

from task_types.base import TaskType
from task_types.errors import DuplicateTaskTypeError, UnknownTaskTypeError

GROUP = "bitesize.task_types"


class TaskTypeRegistry:
    """Task types by name, plus the ones that are installed but cannot load."""

    def __init__(
        self, types: Iterable[TaskType], unavailable: dict[str, str] | None = None
    ) -> None:
        self._types: dict[str, TaskType] = {}
        for task_type in types:
            if task_type.name in self._types:
                first = type(self._types[task_type.name])
                raise DuplicateTaskTypeError(
                    f"task type {task_type.name!r} is defined twice: by "
                    f"{_qualname(first)} and by {_qualname(type(task_type))}"
                )
            self._types[task_type.name] = task_type
        self.unavailable: dict[str, str] = dict(unavailable or {})

    @classmethod
    def from_entry_points(cls, group: str = GROUP) -> TaskTypeRegistry:
        """Load every type registered under ``group``.

        A plugin that fails to import (a missing optional dependency, a bug) is
        kept in ``unavailable`` with the reason, so one broken plugin does not
        take the whole site down. Two plugins claiming one name is fatal.
        """
        types: list[TaskType] = []
        unavailable: dict[str, str] = {}
        for ep in _unique_names(entry_points(group=group)):
            try:
                types.append(_load(ep))
            except Exception as exc:  # noqa: BLE001 - any failure means "unavailable"
                unavailable[ep.name] = f"{type(exc).__name__}: {exc}"
        return cls(types, unavailable)

    def get(self, name: str) -> TaskType:
        """The type called ``name``; the error says what is installed instead."""
        try:
            return self._types[name]
        except KeyError:
            message = self._unknown_message(name)
            raise UnknownTaskTypeError(message, {"task_type": [message]}) from None

    def _unknown_message(self, name: str) -> str:
        if name in self.unavailable:
            return f"task type {name!r} is installed but unavailable: {self.unavailable[name]}"
        installed = ", ".join(self.names()) or "none"
        return f"unknown task type {name!r}; installed: {installed}"

    def names(self) -> list[str]:
        return sorted(self._types)

    def __iter__(self) -> Iterator[TaskType]:
        return (self._types[name] for name in self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __len__(self) -> int:
        return len(self._types)

    def __repr__(self) -> str:
        return f"<TaskTypeRegistry {self.names()} unavailable={sorted(self.unavailable)}>"


def _unique_names(eps: Iterable[EntryPoint]) -> list[EntryPoint]:
    """Entry points with their names checked before anything is imported, so a
    clash is reported even when one of the two plugins is broken."""
    seen: dict[str, EntryPoint] = {}
    for ep in eps:
        first = seen.get(ep.name)
        if first is None:
            seen[ep.name] = ep
        elif first.value != ep.value:
            raise DuplicateTaskTypeError(
                f"task type {ep.name!r} is registered by two entry points: "
                f"{_describe(first)} and {_describe(ep)}"
            )
        # The same name and target seen twice is one plugin found twice
        # (e.g. an editable install on sys.path two ways), not a clash.
    return list(seen.values())


def _load(ep: EntryPoint) -> TaskType:
    task_type = ep.load()
    if not isinstance(task_type, TaskType):
        raise TypeError(f"{ep.value} is {task_type!r}, not a TaskType instance")
    if task_type.name != ep.name:
        raise ValueError(f"{ep.value} is named {task_type.name!r}, not {ep.name!r}")
    return task_type


def _describe(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    origin = f" (from {dist.name} {dist.version})" if dist is not None else ""
    return f"'{ep.name} = {ep.value}'{origin}"


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
