"""marshmallow schemas as JSON Schema (the OpenAPI 3.0 dialect), limits included.

The OpenAPI document describes request bodies and query strings from the
same schemas that validate them, with their lengths, ranges and choices, so
a client (or a fuzzer) knows what the API accepts without trying it.
Only the fields and validators the API's schemas use are translated; any
other validator is left out (the document is then looser, never stricter).
"""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, missing, validate

_TYPES = {fields.String: "string", fields.Integer: "integer", fields.Float: "number",
          fields.Boolean: "boolean", fields.Dict: "object", fields.List: "array"}


def object_json(schema: Schema | type[Schema]) -> dict[str, Any]:
    """A body schema: every field, the required ones, and no others (marshmallow
    refuses unknown fields with a 422)."""
    schema = schema() if isinstance(schema, type) else schema
    props = {name: field_json(field) for name, field in schema.fields.items()}
    required = [name for name, field in schema.fields.items() if field.required]
    return {"type": "object", "properties": props, "required": required,
            "additionalProperties": False}


def field_json(field: fields.Field) -> dict[str, Any]:
    """One field: its type, its validators' limits, null if allowed, its default."""
    if isinstance(field, fields.Nested):
        out = object_json(field.schema)
    else:
        kind = next((t for cls, t in _TYPES.items() if isinstance(field, cls)), None)
        out = {"type": kind} if kind else {}
    if isinstance(field, fields.List):
        out["items"] = field_json(field.inner)
    for validator in field.validators:
        out.update(_limits(validator, out.get("type")))
    if field.allow_none:
        out["nullable"] = True
    if field.load_default is not missing and not callable(field.load_default):
        if field.load_default is not None or field.allow_none:
            out["default"] = field.load_default
    return out


def _limits(validator: Any, kind: str | None) -> dict[str, Any]:
    if isinstance(validator, validate.OneOf):
        return {"enum": list(validator.choices)}
    if isinstance(validator, validate.Range):
        return _bounds(validator)
    if isinstance(validator, validate.Length):
        names = {"string": ("minLength", "maxLength"), "array": ("minItems", "maxItems"),
                 "object": ("minProperties", "maxProperties")}.get(kind or "")
        if names is None:
            return {}
        bounds = (validator.equal, validator.equal) if validator.equal is not None else (
            validator.min, validator.max)
        return {name: value for name, value in zip(names, bounds, strict=True)
                if value is not None}
    return {}


def _bounds(validator: validate.Range) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if validator.min is not None:
        out["minimum"] = validator.min
        if not validator.min_inclusive:
            out["exclusiveMinimum"] = True
    if validator.max is not None:
        out["maximum"] = validator.max
        if not validator.max_inclusive:
            out["exclusiveMaximum"] = True
    return out


def query_parameters(schema: type[Schema]) -> list[dict[str, Any]]:
    """A query-string schema as OpenAPI parameters (every one optional)."""
    return [{"name": name, "in": "query", "required": field.required,
             "schema": field_json(field)} for name, field in schema().fields.items()]
