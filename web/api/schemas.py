"""marshmallow schemas of the API's request bodies and query strings."""
from __future__ import annotations

from flask import request
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from engine.dispatch import STRATEGIES
from engine.errors import BadRequestError, InvalidError


class VolunteerCreate(Schema):
    name = fields.String(validate=validate.Length(max=200), allow_none=True, load_default=None)


class ProjectCreate(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(validate=validate.Length(max=5000), load_default="")
    task_type = fields.String(required=True, validate=validate.Length(min=1, max=100))
    config = fields.Dict(required=True)
    min_answers = fields.Integer(validate=validate.Range(min=1, max=50), load_default=3)
    max_answers = fields.Integer(validate=validate.Range(min=1, max=100), load_default=5)
    confidence = fields.Float(validate=validate.Range(min=0.0, max=1.0), load_default=0.8)
    lease_seconds = fields.Integer(validate=validate.Range(min=5, max=3600),
                                   allow_none=True, load_default=None)
    strategy = fields.String(validate=validate.OneOf(STRATEGIES), load_default="breadth")
    gold_start = fields.Float(validate=validate.Range(min=0.0, max=1.0), load_default=0.4)
    gold_floor = fields.Float(validate=validate.Range(min=0.0, max=1.0), load_default=0.1)
    gold_ramp = fields.Integer(validate=validate.Range(min=1, max=10_000), load_default=20)

    @validates_schema
    def _answers_range(self, data, **_):
        if data.get("max_answers", 5) < data.get("min_answers", 3):
            raise ValidationError("must be at least min_answers", "max_answers")


PRIORITY = fields.Integer(validate=validate.Range(min=-999, max=999), load_default=0)


class JobItems(Schema):
    items = fields.List(fields.Dict(), required=True, validate=validate.Length(min=1))
    priority = PRIORITY


class JobForm(Schema):
    priority = PRIORITY


class NextQuery(Schema):
    count = fields.Integer(validate=validate.Range(min=1, max=5), load_default=1)


class AnswerCreate(Schema):
    lease = fields.String(required=True, validate=validate.Length(min=1, max=300))
    answer = fields.Raw(required=True)


class ResultsQuery(Schema):
    format = fields.String(validate=validate.OneOf(("csv", "json", "jsonl")), load_default="json")


def load_body(schema: Schema) -> dict:
    """The request's JSON body checked by a schema; clear 400/422 errors otherwise."""
    body = request.get_json(silent=True)
    if body is None:
        raise BadRequestError("the body must be JSON (Content-Type: application/json)",
                              {"body": "not JSON"})
    if not isinstance(body, dict):
        raise InvalidError("the body must be a JSON object", {"body": "not an object"})
    try:
        return schema.load(body)
    except ValidationError as exc:
        raise InvalidError("the request is not valid", exc.messages) from exc


def load_query(schema: Schema) -> dict:
    return load_form(schema, request.args)


def load_form(schema: Schema, values) -> dict:
    """Query strings and form fields: one value per name, checked by a schema."""
    try:
        return schema.load(values.to_dict())
    except ValidationError as exc:
        raise InvalidError("the query string is not valid", exc.messages) from exc
