"""What every task type is: a plain object from plain data to plain data.

A task type never sees Flask, Redis or SQL. The engine hands it dicts (a
project's config, an uploaded item, volunteers' answers) and stores what it
returns, so a type can be unit-tested, or run offline, on its own.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

from marshmallow import Schema


@dataclass(frozen=True)
class Microtask:
    """One bite a volunteer sees: its payload, and the true answer if it is gold."""

    payload: dict
    gold: Any = None


@dataclass(frozen=True)
class Aggregate:
    """The merged answer of one task.

    ``support`` keeps the evidence behind ``value`` (e.g. the weighted vote per
    label) so the review screen can show why a task is contested.
    """

    value: Any
    confidence: float
    support: dict = field(default_factory=dict)


class TaskType(ABC):
    """Base class of task types; subclass it and register one instance under
    the ``bitesize.task_types`` entry point group.

    Abstract methods make a half-written plugin fail when its module is
    imported, so the registry reports it unavailable instead of it breaking
    later, mid-job.
    """

    name: str
    title: str
    description: str
    lease_seconds: int = 60
    # Answers given faster than this look like clicking without looking; the
    # engine flags volunteers whose median time per task is below it.
    min_seconds: float = 1.0
    config_schema: type[Schema]

    def labels(self, config: dict) -> list[str] | None:
        """The closed set of answers, for types whose answer is one label of a
        list (so the engine can learn confusion matrices); None otherwise."""
        return None

    def label_of(self, answer: dict) -> str:
        """The label an answer picked; only called when `labels` is not None."""
        raise NotImplementedError(f"{self.name} answers are not single labels")

    def load_config(self, raw: dict) -> dict:
        """Validate a project's config; raises marshmallow.ValidationError."""
        return self.config_schema().load(raw)

    @abstractmethod
    def item_schema(self, config: dict) -> Schema:
        """The schema of one uploaded item; it may depend on the config (labels)."""

    @abstractmethod
    def split(self, item: dict, config: dict) -> list[Microtask]:
        """Cut one validated item into microtasks; raises ItemError if it cannot."""

    @abstractmethod
    def answer_schema(self, config: dict) -> Schema:
        """The schema of one volunteer's answer under this config."""

    @abstractmethod
    def aggregate(
        self, answers: list[dict], weights: list[float] | None, config: dict
    ) -> Aggregate:
        """Merge one task's redundant answers, weighted by reliability."""

    def combine(self, task_results: list[Any], item: dict) -> Any:
        """Merge the results of one item's microtasks into the item's result.

        The default suits types that make one task per item. Types that split
        (tiles, lines) override it to stitch the pieces back together.
        """
        if not task_results:
            return None
        if len(task_results) > 1:
            raise ValueError(f"{self.name} makes one task per item; override combine()")
        result = task_results[0]
        return result.value if isinstance(result, Aggregate) else result

    @abstractmethod
    def score(self, answer: dict, gold: Any) -> float:
        """How right one answer is against gold, 0..1; feeds reliability."""

    @abstractmethod
    def example(self) -> dict:
        """Plain sample data, ``{"config", "item", "answers"}``: the shared test
        runs every registered type through it, and docs and demos can reuse it."""

    @property
    def template_package(self) -> str:
        """Where the template lives: by default ``templates`` next to the module,
        so a third-party type gets the same layout as the built-in ones."""
        module = type(self).__module__
        return f"{module.rpartition('.')[0] or module}.templates"

    @property
    def template_name(self) -> str:
        return f"{self.name}.html"

    @property
    def template(self) -> str:
        """Jinja source of the HTML fragment that shows a payload and collects an
        answer; it is rendered with ``config`` only, the page fills the payload."""
        path = files(self.template_package).joinpath(self.template_name)
        return path.read_text(encoding="utf-8")
