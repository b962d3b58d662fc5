"""Console forms: request.form read through marshmallow, errors by field.

Every console POST is validated like an API body: a schema loads it, and
what is wrong comes back as {field: message} for the page to show beside
the field (never as a 500). CSRF is checked before any of this by Flask-WTF.
"""
from __future__ import annotations

from typing import Any

from flask import request
from marshmallow import Schema, ValidationError

from engine.errors import BitesizeError


def load_form(schema: Schema, data: dict | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the loaded values, {}) or (the raw values, errors by field)."""
    raw = {key: value for key, value in (data or request.form).items() if key != "csrf_token"}
    try:
        return schema.load(raw), {}
    except ValidationError as exc:
        return raw, flatten(exc.messages)


def flatten(messages: Any, prefix: str = "") -> dict[str, str]:
    """marshmallow's nested messages as {"config.labels": "text"}, one line each."""
    if isinstance(messages, dict):
        out: dict[str, str] = {}
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                name = prefix or "_schema"
            for k, v in flatten(value, name).items():
                out[k] = f"{out[k]}; {v}" if k in out else v
        return out
    if isinstance(messages, list | tuple):
        parts = []
        for m in messages:
            parts.extend(flatten(m, prefix).values() if isinstance(m, dict) else [str(m)])
        return {prefix: " ".join(parts)}
    return {prefix: str(messages)}


def engine_errors(exc: BitesizeError) -> dict[str, str]:
    """An engine error as page errors: by field where it names fields, else as a whole."""
    fields = flatten(exc.fields) if exc.fields else {}
    fields.setdefault("_schema", exc.message)
    return fields


SCREEN_BREAK = "---"  # a line of its own between two tutorial screens


def tutorial_screens(text: str) -> list[str]:
    """Screens from one text, split at lines of SCREEN_BREAK; empty ones dropped."""
    screens, current = [], []
    for line in (text or "").splitlines():
        if line.strip() == SCREEN_BREAK:
            screens.append("\n".join(current))
            current = []
        else:
            current.append(line)
    screens.append("\n".join(current))
    return [s.strip() for s in screens if s.strip()]
