"""classify: a volunteer picks one label for an image or a text.

The simplest type and the template for the others: one task per item,
answers merged by a weighted majority vote.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from marshmallow import Schema, ValidationError, fields, validates, validates_schema
from marshmallow.validate import Length

from task_types.base import Aggregate, Media, Microtask, TaskType
from task_types.errors import ItemError

MAX_REF = 2048
JOINERS = frozenset({"\u200c", "\u200d"})  # format characters emoji and some scripts need
# embeddings, overrides and isolates: they turn the text after them around
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class StrippedString(fields.String):
    """A string without surrounding blanks, so " Deer" and "Deer" are one label."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip()


def plain_characters(text: str, what: str = "Tags", strict: bool = True) -> None:
    """Refuse characters that would break a CSV cell across lines or turn text
    around (controls, line breaks and direction overrides): a label with a
    line break read back from the answers export made up a task of its own.
    ``strict`` (tags) refuses every invisible format, private-use and
    surrogate character and every noncharacter too; labels, which configs
    stored before this rule may hold (a soft hyphen, a zero-width space pasted
    in), and which cannot be renamed once answered, are refused only what does
    harm, so that such a project can still be edited.

    A code point merely unassigned in this Python's Unicode table is taken: the
    volunteer's browser (and phone keyboard) may know a newer Unicode, where it
    is an emoji (U+1FABF, a goose, is Unicode 15), and refusing it refused the
    whole answer after the page had moved on (task_types/templates/tag.js keeps
    it too). Noncharacters are never assigned, whatever the version."""
    for ch in text:
        category = unicodedata.category(ch)
        harmful = category == "Cc" or ch in BIDI_CONTROLS
        if harmful or strict and (category in ("Cs", "Co") or noncharacter(ch)
                                  or (category == "Cf" and ch not in JOINERS)):
            raise ValidationError(f"{what} cannot contain control characters or line breaks.")


def noncharacter(ch: str) -> bool:
    """U+FDD0..U+FDEF and the last two code points of every plane (U+FFFE,
    U+1FFFF, ...): kept for a program's own use, never a character in any
    version of Unicode."""
    point = ord(ch)
    return 0xFDD0 <= point <= 0xFDEF or point & 0xFFFE == 0xFFFE


def plain_label(text: str) -> None:
    plain_characters(text, "Labels", strict=False)


def unique_labels(labels: list[str]) -> None:
    """Labels differing only in case would split the vote and confuse volunteers."""
    seen: set[str] = set()
    for label in labels:
        if label.casefold() in seen:
            raise ValidationError(f"Labels must be unique, ignoring case: {label!r} repeats.")
        seen.add(label.casefold())


def media_ref(value: str) -> None:
    """Accept only what is safe in an ``<img src>``: an http(s) URL or a file we
    stored under /media/. Anything else (``javascript:``, ``data:``) is refused."""
    if len(value) > MAX_REF or any(ch.isspace() or ord(ch) < 32 for ch in value):
        raise ValidationError("Must be an http(s) URL or a /media/ path, without spaces.")
    if value.startswith("/media/") and ".." not in value.split("/"):
        return
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError("Must be an http(s) URL or a /media/ path.")
    if "@" in parts.netloc:  # user:secret@host: the secret would go to every volunteer
        raise ValidationError("Must not carry a user name or password (user:password@).")


class ClassifyConfigSchema(Schema):
    """``stored_labels``: labels of the config being edited, let through the
    character rule (plain_label), which came after some were stored: refused,
    such a project could not be edited at all, its labels fixed once answered."""

    question = StrippedString(required=True, validate=Length(1, 500))
    labels = fields.List(
        StrippedString(validate=Length(1, 100)),
        required=True,
        validate=[Length(2, 50), unique_labels],
    )
    instructions = fields.String(load_default="", validate=Length(max=5000))

    def __init__(self, stored_labels: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stored_labels = frozenset(stored_labels)

    @validates("labels")
    def _plain_labels(self, labels: list[str], **_kwargs: Any) -> None:
        for label in labels:
            if label not in self.stored_labels:
                plain_label(label)


class LabelledSchema(Schema):
    """A schema checking values against the project's labels. marshmallow 4 has
    no schema context, so the labels come in through the constructor."""

    def __init__(self, labels: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.labels = list(labels)

    def check_label(self, value: str, field_name: str) -> None:
        if value not in self.labels:
            raise ValidationError(f"Must be one of: {', '.join(self.labels)}.", field_name)


class ClassifyItemSchema(LabelledSchema):
    image = fields.String(validate=media_ref)
    text = fields.String(validate=Length(1, 10_000))
    thumb = fields.String(validate=media_ref)
    id = fields.String(validate=Length(max=200))
    gold = StrippedString()

    @validates_schema
    def check_item(self, data: dict, **kwargs: Any) -> None:
        if ("image" in data) == ("text" in data):
            message = ("Give exactly one of image or text, not both." if "image" in data else
                       "Give exactly one of image or text: this item has neither (an empty "
                       "cell?).")
            raise ValidationError({"image": [message], "text": [message]})
        if "gold" in data:
            self.check_label(data["gold"], "gold")


class ClassifyAnswerSchema(LabelledSchema):
    label = fields.String(required=True)

    @validates_schema
    def check_answer(self, data: dict, **kwargs: Any) -> None:
        self.check_label(data["label"], "label")


class ClassifyType(TaskType):
    name = "classify"
    title = "Classify"
    description = "Volunteers pick the one label that fits an image or a text."
    lease_seconds = 60
    config_schema = ClassifyConfigSchema

    def load_config(self, raw: dict, stored: dict | None = None) -> dict:
        return ClassifyConfigSchema((stored or {}).get("labels", ())).load(raw)

    def item_schema(self, config: dict) -> Schema:
        return ClassifyItemSchema(config["labels"])

    def split(self, item: dict, config: dict, media: Media | None = None) -> list[Microtask]:
        """One task showing the image or text (and thumbnail). Only what the
        volunteer needs: the item's id stays on its row, since a charity's file
        name or id can give the answer away or mark a gold item."""
        payload = {key: item[key] for key in ("image", "text", "thumb") if key in item}
        if "image" not in payload and "text" not in payload:
            message = "An item needs an image or a text."
            raise ItemError(message, {"image": [message], "text": [message]})
        return [Microtask(payload, item.get("gold"))]

    def answer_schema(self, config: dict) -> Schema:
        return ClassifyAnswerSchema(config["labels"])

    def aggregate(
        self, answers: list[dict], weights: list[float] | None, config: dict
    ) -> Aggregate:
        """Weighted majority vote; a tie goes to the label listed first in the
        config, so the same answers always give the same result."""
        support = tally(answers, weights, config["labels"])
        total = sum(support.values())
        if total <= 0:
            return Aggregate(None, 0.0, support)
        winner = max(support, key=support.__getitem__)  # first of equals wins
        return Aggregate(winner, support[winner] / total, support)

    def score(self, answer: dict, gold: Any, config: dict | None = None) -> float:
        return 1.0 if answer.get("label") == gold else 0.0

    def answer_from_text(self, text: str, config: dict) -> dict:
        return {"label": text.strip()}

    def answer_to_text(self, answer: dict) -> str:
        return str(answer.get("label", ""))

    def labels(self, config: dict) -> list[str]:
        return list(config["labels"])

    def label_of(self, answer: dict) -> str:
        return answer["label"]

    def example(self) -> dict:
        return {
            "config": {
                "question": "Which animal is in this photo?",
                "labels": ["Deer", "Fox", "Badger", "Nothing"],
                "instructions": "Pick Nothing when the photo shows no animal.",
            },
            "item": {"image": "https://example.org/trap/0001.jpg", "id": "0001", "gold": "Deer"},
            "answers": [{"label": "Deer"}, {"label": "Fox"}, {"label": "Deer"}],
        }


def tally(answers: list[dict], weights: list[float] | None, labels: list[str]) -> dict:
    """Weight per label, in the config's label order; answers with a label the
    config no longer has (it was edited) are ignored rather than counted."""
    if weights is None:
        weights = [1.0] * len(answers)
    if len(weights) != len(answers):
        raise ValueError(f"{len(answers)} answers but {len(weights)} weights")
    votes: dict[str, float] = {}
    for answer, weight in zip(answers, weights, strict=True):
        if weight < 0:
            raise ValueError(f"negative weight {weight}")
        label = answer.get("label")
        if label in labels:
            votes[label] = votes.get(label, 0.0) + weight
    return {label: votes[label] for label in labels if label in votes}


classify = ClassifyType()
