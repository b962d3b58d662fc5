"""An answer before it is stored: checked by its task type's schema.

Volunteers' submits (engine.volunteering) and admins' resolutions
(engine.quality.review) both accept answers, so the check lives here, below
both, rather than in either door.
"""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError

from engine.errors import InvalidError


def load_answer(schema: Schema, raw_answer: Any) -> Any:
    """An answer checked by its task type's schema; 422 naming `answer` otherwise."""
    if not isinstance(raw_answer, dict):
        raise InvalidError("the answer must be a JSON object", {"answer": "not an object"})
    try:
        return schema.load(raw_answer)
    except ValidationError as exc:
        raise InvalidError("the answer is not valid", {"answer": exc.messages}) from exc
