"""Form fields generated from a marshmallow schema, and form text read back.

A task type describes its settings once, as the marshmallow schema that
validates a project's config; the wizard draws its form from that schema so
that every installed type, third-party ones included, gets a form without
console code of its own, and so that the form can never ask for something
the type would refuse. Each field kind has one input:

    String            text input (a textarea for ``instructions``: Markdown)
    String + OneOf    select                Integer, Float   number input
    List of strings   textarea, one a line  Boolean          checkbox
    Dict str -> str   textarea, "typed = canonical" a line
    Nested            fieldset of its own fields

``describe`` turns a schema and values into ``FormField``s for the template
(console/wizard_fields.html); ``read`` turns the posted text back into the
plain dict the schema loads, so the schema's own messages come back by field
(``place_errors`` puts them beside the input they concern).
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from marshmallow import Schema, fields
from marshmallow.utils import missing
from marshmallow.validate import OneOf, Range

from engine.lifecycle import readable

# Field names whose text is long and Markdown: shown to volunteers as written.
MARKDOWN_FIELDS = {"instructions"}
MARKDOWN_HINT = ("Markdown: **bold**, *italic*, lists, [links](https://example.org). "
                 "Shown to volunteers beside every task; HTML is shown as text.")


@dataclass
class FormField:
    """One input of a generated form, ready for the template."""

    name: str  # the input's name: "config.labels"
    label: str
    kind: str  # text | textarea | markdown | number | select | lines | pairs | checkbox | group
    value: str = ""
    required: bool = False
    hint: str = ""
    choices: list[str] = field(default_factory=list)
    choice_labels: list[str] = field(default_factory=list)  # what each choice reads as
    min: float | None = None
    max: float | None = None
    step: str = "any"
    checked: bool = False
    children: list[FormField] = field(default_factory=list)

    @property
    def options(self) -> list[tuple[str, str]]:
        """(value, what it reads as) of each choice of a select."""
        return list(zip(self.choices, self.choice_labels or self.choices, strict=True))

    @property
    def id(self) -> str:
        return "f-" + self.name.replace(".", "-")


def kind_of(name: str, f: fields.Field) -> str:
    if isinstance(f, fields.Nested):
        return "group"
    if isinstance(f, fields.Boolean):
        return "checkbox"
    if isinstance(f, fields.Integer | fields.Float | fields.Decimal):
        return "number"
    if isinstance(f, fields.List):
        return "lines"
    if isinstance(f, fields.Dict):
        return "pairs"
    if any(isinstance(v, OneOf) for v in f.validators):
        return "select"
    if name in MARKDOWN_FIELDS:
        return "markdown"
    return "text"


def default_of(f: fields.Field) -> Any:
    value = f.load_default
    if value is missing:
        return None
    return value() if callable(value) else value


def describe(schema: Schema, values: Mapping[str, Any] | None = None, *, prefix: str = "",
             posted: Mapping[str, str] | None = None) -> list[FormField]:
    """The schema's fields as FormFields named ``prefix.name``, showing ``posted``
    form text when the form came back (so what was typed is kept, errors and
    all), else ``values`` (a stored config), else the schema's defaults."""
    out = []
    for name, f in schema.fields.items():
        if f.dump_only:
            continue
        key = f.data_key or name
        full = f"{prefix}.{key}" if prefix else key
        kind = kind_of(name, f)
        meta = f.metadata
        item = FormField(full, meta.get("label") or readable(key), kind,
                         required=f.required, hint=meta.get("description", ""))
        if kind == "group":
            inner = values.get(key) if values else None
            item.children = describe(f.schema, inner if isinstance(inner, Mapping) else None,
                                     prefix=full, posted=posted)
            out.append(item)
            continue
        present = values is not None and key in values
        value = values[key] if present else default_of(f)
        if kind == "checkbox":
            item.checked = (full in posted) if posted is not None else bool(value)
        else:
            item.value = posted.get(full, "") if posted is not None else as_text(kind, value)
        if kind == "select":
            one_of = next(v for v in f.validators if isinstance(v, OneOf))
            item.choices = [str(c) for c in one_of.choices]
            # OneOf(labels=...) names them for people ("Trimmed mean", not trimmed_mean)
            item.choice_labels = [str(label) for label in one_of.labels] or item.choices
        if kind == "number":
            _bounds(item, f)
        item.hint = item.hint or _hint(kind, f)
        out.append(item)
    return out


def _bounds(item: FormField, f: fields.Field) -> None:
    for v in f.validators:
        if isinstance(v, Range):
            item.min = v.min if v.min is not None and math.isfinite(v.min) else item.min
            item.max = v.max if v.max is not None and math.isfinite(v.max) else item.max
    item.step = "1" if isinstance(f, fields.Integer) else "any"


def _hint(kind: str, f: fields.Field) -> str:
    if kind == "markdown":
        return MARKDOWN_HINT
    if kind == "lines":
        return "One per line."
    if kind == "pairs":
        return "One per line, as: typed = canonical (e.g. reynard = Fox)."
    if kind == "number" and f.allow_none:
        return "Leave empty for none."
    return ""


def as_text(kind: str, value: Any) -> str:
    """A config value as the text its input shows."""
    if value is None:
        return ""
    if kind == "lines":
        return "\n".join(str(v) for v in value)
    if kind == "pairs":
        return "\n".join(f"{k} = {v}" for k, v in value.items())
    if kind == "number" and isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else str(value)
    return str(value)


def read(schema: Schema, form: Mapping[str, str], *,
         prefix: str = "") -> tuple[dict[str, Any], dict[str, str]]:
    """(the plain dict for ``schema.load``, errors found reading the text).

    Empty inputs are left out, so the schema's defaults (and its "required"
    message) apply; text that is not a number is passed on as it is, for the
    schema to refuse in its own words.
    """
    raw: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, f in schema.fields.items():
        if f.dump_only:
            continue
        key = f.data_key or name
        full = f"{prefix}.{key}" if prefix else key
        kind = kind_of(name, f)
        if kind == "group":
            inner, inner_errors = read(f.schema, form, prefix=full)
            errors.update(inner_errors)
            if inner:
                raw[key] = inner
            continue
        if kind == "checkbox":
            raw[key] = full in form
            continue
        text = form.get(full, "")
        if kind == "lines":
            entries = [line.strip() for line in text.splitlines() if line.strip()]
            if entries or not f.required:
                raw[key] = entries
        elif kind == "pairs":
            pairs, problem = _pairs(text)
            if problem:
                errors[full] = problem
            raw[key] = pairs
        elif not text.strip():
            if kind == "number" and f.allow_none:
                raw[key] = None
        elif kind == "number":
            raw[key] = _number(text.strip(), int if isinstance(f, fields.Integer) else float)
        else:
            raw[key] = text.strip() if kind != "markdown" else text.replace("\r\n", "\n")
    return raw, errors


def _number(text: str, kind: Callable[[str], Any]) -> Any:
    try:
        return kind(text)
    except ValueError:
        if kind is int:  # "12.0" is twelve; "12.5" is for the schema to refuse
            try:
                value = float(text)
            except ValueError:
                return text
            return int(value) if value.is_integer() else value
        return text


def _pairs(text: str) -> tuple[dict[str, str], str]:
    pairs: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        typed, sep, canonical = line.partition("=")
        if not sep:
            return pairs, f"Line {n} needs an = between the typed word and what it stands for."
        pairs[typed.strip()] = canonical.strip()
    return pairs, ""


def names(form_fields: list[FormField]) -> list[str]:
    """Every input name, groups' inputs included."""
    out = []
    for f in form_fields:
        out.extend(names(f.children) if f.kind == "group" else [f.name])
    return out


def place_errors(errors: Mapping[str, str], known: list[str],
                 whole: str = "_schema") -> dict[str, str]:
    """Errors keyed by the input they concern: "config.labels.0" goes to
    "config.labels"; what concerns no input goes under ``whole``."""
    placed: dict[str, str] = {}
    for key, message in errors.items():
        target = max((n for n in known if key == n or key.startswith(n + ".")),
                     key=len, default=whole)
        placed[target] = f"{placed[target]} {message}" if target in placed else message
    return placed


# marshmallow's Length messages speak of a list's "length"; a textarea of one
# entry per line is clearer counted in lines.
_LIST_LENGTH = (
    (re.compile(r"Length must be between (\d+) and (\d+)\."),
     r"Give between \1 and \2, one per line."),
    (re.compile(r"Shorter than minimum length (\d+)\."), r"Give at least \1, one per line."),
    (re.compile(r"Longer than maximum length (\d+)\."), r"Give at most \1, one per line."),
)


def reword(errors: dict[str, str], form_fields: list[FormField]) -> dict[str, str]:
    """Errors with list-length messages said in lines, for one-per-line inputs."""
    lines = {f.name for f in _flat(form_fields) if f.kind == "lines"}
    out = dict(errors)
    for name in lines & set(out):
        for pattern, text in _LIST_LENGTH:
            out[name] = pattern.sub(text, out[name])
    return out


def _flat(form_fields: list[FormField]) -> list[FormField]:
    out = []
    for f in form_fields:
        out.extend(_flat(f.children) if f.kind == "group" else [f])
    return out
