"""What every task type is: a plain object from plain data to plain data.

A task type never sees Flask, Redis or SQL. The engine hands it dicts (a
project's config, an uploaded item, volunteers' answers) and stores what it
returns, so a type can be unit-tested, or run offline, on its own.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any, Protocol

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


@dataclass(frozen=True)
class TaskResult:
    """One microtask's merged result, as ``combine`` receives it: the payload says
    which piece of the item it was (a tile's offset, a line's place on the page)."""

    payload: dict
    value: Any
    confidence: float = 0.0
    state: str = "retired"


@dataclass(frozen=True)
class Region:
    """A place in an item's picture and what the crowd said of it, in the
    picture's pixels: ``xywh`` is left, top, width, height."""

    xywh: tuple[float, float, float, float]
    text: str
    confidence: float
    purpose: str = "tagging"  # a W3C Web Annotation motivation, or "supplementing"


class Media(Protocol):
    """What ``split`` may use to cut pictures: read an item's image, store a piece.

    The engine passes its media store (content-addressed files, http(s) fetches
    with size limits); tests of a type can pass any object with these methods.
    It may also carry ``max_pixels``, the most pixels a picture may have (the
    deployment's setting; imaging.read_image decodes within it).
    """

    def read(self, ref: str) -> bytes:
        """The bytes behind ``ref`` (a ``/media/`` path or an http(s) URL);
        raises ItemError when they cannot be had."""

    def store(self, data: bytes, ext: str) -> str:
        """Keep ``data`` (an image the type made itself, e.g. ``ext="jpg"``) and
        return the ref a payload can show (``/media/<sha256>.jpg``)."""


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
    # Whether an answer written as text (an answers CSV's cell) may hold line
    # breaks. Where it may not, `bitesize consensus` reads a cell that runs over
    # lines as a quote never closed, and the rows it swallowed one by one.
    multiline_text: bool = False
    config_schema: type[Schema]

    def labels(self, config: dict) -> list[str] | None:
        """The closed set of answers, for types whose answer is one label of a
        list (so the engine can learn confusion matrices); None otherwise."""
        return None

    def label_of(self, answer: dict) -> str:
        """The label an answer picked; only called when `labels` is not None."""
        raise NotImplementedError(f"{self.name} answers are not single labels")

    def load_config(self, raw: dict, stored: dict | None = None) -> dict:
        """Validate a project's config; raises marshmallow.ValidationError.
        ``stored``: the config it edits, whose values a type may let through
        where a rule made since would refuse them (classify's labels, which
        cannot be renamed once answered)."""
        return self.config_schema().load(raw)

    @abstractmethod
    def item_schema(self, config: dict) -> Schema:
        """The schema of one uploaded item; it may depend on the config (labels)."""

    @abstractmethod
    def split(self, item: dict, config: dict, media: Media | None = None) -> list[Microtask]:
        """Cut one validated item into microtasks; raises ItemError if it cannot.

        Types that cut pictures (tiles, lines) read and store them through
        ``media``; the others ignore it. A payload is all a volunteer receives,
        so it holds only what the task shows: never the item's id (a charity's
        file name can give the answer away), nothing that tells gold apart.
        """

    @abstractmethod
    def answer_schema(self, config: dict) -> Schema:
        """The schema of one volunteer's answer under this config."""

    @abstractmethod
    def aggregate(
        self, answers: list[dict], weights: list[float] | None, config: dict
    ) -> Aggregate:
        """Merge one task's redundant answers, weighted by reliability."""

    def combine(self, task_results: list[TaskResult], item: dict) -> Aggregate:
        """Merge the results of one item's microtasks (in task order) into the
        item's result, with a confidence.

        The default suits types that make one task per item. Types that split
        (tiles, lines) override it to stitch the pieces back together.
        """
        if not task_results:
            return Aggregate(None, 0.0)
        if len(task_results) > 1:
            raise ValueError(f"{self.name} makes one task per item; override combine()")
        result = task_results[0]
        return Aggregate(result.value, result.confidence)

    def regions(self, task_results: list[TaskResult], item: dict) -> list[Region]:
        """The item's result as marked regions of its picture (a line and its
        text, a box around a penguin), for annotation exports such as IIIF;
        empty for types whose result is not about a place in the picture."""
        return []

    # -- offline merging (`bitesize consensus --type NAME`) ---------------------

    def offline_config(self) -> dict:
        """The config an answers CSV is merged under when none is given: the
        type's defaults, as permissive as the type allows."""
        return self.load_config(self.example()["config"])

    def config_from_answers(self, answers: dict[str, list[dict]]) -> dict:
        """The config an answers CSV given without one is merged under, from the
        answers read (task -> answers): number reads the scale off the values.
        By default the offline config."""
        return self.offline_config()

    def answer_from_text(self, text: str, config: dict) -> dict:
        """One answer from an answers CSV's ``answer`` cell (validated by the
        answer schema afterwards); raises ValueError when it cannot be read."""
        raise ValueError(f"{self.name} answers cannot be read from text")

    def value_to_text(self, value: Any) -> str:
        """A result value as the ``answer`` cell of RESULTS.csv, in the form
        ``answer_from_text`` reads back."""
        return "" if value is None else str(value)

    def answer_to_text(self, answer: dict) -> str:
        """One answer as the ``answer`` cell of an answers CSV (the raw answers
        export), in the form ``answer_from_text`` reads back. By default, the
        value the answer would give alone; types override it where cheaper."""
        return self.value_to_text(self.aggregate([answer], None, self.offline_config()).value)

    @abstractmethod
    def score(self, answer: dict, gold: Any, config: dict | None = None) -> float:
        """How right one answer is against gold, 0..1; feeds reliability. The
        engine passes the project's config (a tolerance, a radius may live
        there); without it the type's defaults apply."""

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
