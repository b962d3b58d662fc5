"""marshmallow schemas of the API's request bodies and query strings."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from flask import request
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from engine.accounts.passwords import MAX_PASSWORD, MIN_PASSWORD
from engine.dispatch.dispatcher import STRATEGIES
from engine.errors import BadRequestError, InvalidError
from engine.quality.reports import REASONS
from web.i18n import LANGUAGES


class VolunteerCreate(Schema):
    name = fields.String(validate=validate.Length(max=200), allow_none=True, load_default=None)
    # where the site asks for proof of work (engine.accounts.challenge): a solved challenge
    challenge = fields.String(validate=validate.Regexp(r"^[A-Za-z0-9._-]{1,200}$"),
                              allow_none=True, load_default=None)
    nonce = fields.String(validate=validate.Regexp(r"^[A-Za-z0-9]{1,64}$"),
                          allow_none=True, load_default=None)


class CurrentCredential(Schema):
    """Proof for changing how a volunteer's work is kept, once it is: the current
    password or recovery code (engine.accounts.volunteers)."""

    current_password = fields.String(validate=validate.Length(max=MAX_PASSWORD))


class VolunteerClaim(CurrentCredential):
    """Keep this volunteer's work under an email and password (engine.accounts.volunteers)."""

    email = fields.String(required=True, validate=validate.Length(min=3, max=320))
    password = fields.String(required=True, validate=validate.Length(min=MIN_PASSWORD,
                                                                     max=MAX_PASSWORD))


class VolunteerSignIn(Schema):
    """Sign in on this device: an email and password, or a recovery code."""

    email = fields.String(validate=validate.Length(max=320))
    password = fields.String(validate=validate.Length(max=MAX_PASSWORD))
    recovery_code = fields.String(validate=validate.Length(max=100))

    @validates_schema
    def _one_way(self, data: dict, **_: Any) -> None:
        if "recovery_code" in data:
            if "email" in data or "password" in data:
                raise ValidationError("send a recovery code, or an email and password, "
                                      "not both", "recovery_code")
        elif "email" not in data or "password" not in data:
            raise ValidationError("an email and a password, or a recovery code, are needed",
                                  "password" if "email" in data else "email")


def _count(high: int = 10_000) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=1, max=high))


def _share() -> fields.Float:
    return fields.Float(validate=validate.Range(min=0.0, max=1.0))


class QualitySettings(Schema):
    """A project's flag thresholds (README: Consensus and quality); keys left
    out keep their defaults (engine.quality.thresholds.QUALITY_DEFAULTS)."""

    quarantine = fields.Boolean()
    too_fast_after = _count()
    too_fast_seconds = fields.Float(validate=validate.Range(min=0.0, max=3600.0),
                                    allow_none=True)
    same_answer_after = _count()
    same_answer_share = _share()
    failing_gold_after = _count()
    failing_gold_below = _share()
    low_agreement_after = _count()
    low_agreement_below = _share()
    # trust is earned (engine.quality.trust): 0 minutes makes everyone established
    trusted_after_minutes = fields.Integer(strict=True,
                                           validate=validate.Range(min=0, max=43_200))
    trusted_after_gold = fields.Integer(strict=True, validate=validate.Range(min=0, max=1000))
    # volunteers' reports that take a task out of circulation (0: never by themselves)
    reports_to_withdraw = fields.Integer(strict=True, validate=validate.Range(min=0, max=100))
    # a volunteer's first N gold answers are told the charity's answer (0: none)
    gold_feedback = fields.Integer(strict=True, validate=validate.Range(min=0, max=10_000))


MAX_TUTORIAL_SCREENS = 10


def _tutorial(**kwargs) -> fields.List:
    """Screens of Markdown (pictures as ![words](https://...)), shown in order."""
    return fields.List(fields.String(validate=validate.Length(min=1, max=5000)),
                       validate=validate.Length(max=MAX_TUTORIAL_SCREENS), **kwargs)


class ProjectTexts(Schema):
    """A project's own words in one more language of the volunteer pages
    (web.i18n.LANGUAGES); whatever is left out shows as written. `labels`
    names the config's labels as volunteers read them (answers keep the label)."""

    name = fields.String(validate=validate.Length(min=1, max=200))
    description = fields.String(validate=validate.Length(max=5000))
    question = fields.String(validate=validate.Length(min=1, max=1000))
    instructions = fields.String(validate=validate.Length(max=5000))
    labels = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=200)),
                         values=fields.String(validate=validate.Length(min=1, max=200)),
                         validate=validate.Length(max=500))
    tutorial = _tutorial()
    field_guide = fields.String(validate=validate.Length(max=20_000))


def _translations(**kwargs) -> fields.Dict:
    return fields.Dict(keys=fields.String(validate=validate.OneOf(tuple(LANGUAGES))),
                       values=fields.Nested(ProjectTexts), **kwargs)


class ProjectCreate(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(validate=validate.Length(max=5000), load_default="")
    tutorial = _tutorial(load_default=None)
    field_guide = fields.String(validate=validate.Length(max=20_000), load_default=None)
    translations = _translations(load_default=None)
    task_type = fields.String(required=True, validate=validate.Length(min=1, max=100))
    config = fields.Dict(required=True)
    # strict: a JSON body has real integers; 2.5 must be refused, not read as 2
    min_answers = fields.Integer(strict=True, validate=validate.Range(min=1, max=50),
                                 load_default=3)
    max_answers = fields.Integer(strict=True, validate=validate.Range(min=1, max=100),
                                 load_default=5)
    confidence = fields.Float(validate=validate.Range(min=0.0, max=1.0), load_default=0.8)
    lease_seconds = fields.Integer(strict=True, validate=validate.Range(min=5, max=3600),
                                   allow_none=True, load_default=None)
    strategy = fields.String(validate=validate.OneOf(STRATEGIES), load_default="breadth")
    gold_start = fields.Float(validate=validate.Range(min=0.0, max=1.0), load_default=0.4)
    gold_floor = fields.Float(validate=validate.Range(min=0.0, max=1.0), load_default=0.1)
    gold_ramp = fields.Integer(strict=True, validate=validate.Range(min=1, max=10_000),
                               load_default=20)
    quality = fields.Nested(QualitySettings, load_default=None)
    # The API's projects start active, as they always have; "draft" keeps one
    # to its organisation until POST .../publish.
    state = fields.String(validate=validate.OneOf(("draft", "active")), load_default="active")

    @validates_schema
    def _answers_range(self, data, **_):
        if data.get("max_answers", 5) < data.get("min_answers", 3):
            raise ValidationError("must be at least min_answers", "max_answers")


class ProjectUpdate(Schema):
    """PATCH /projects/<id>: any of the settings, none required; ``config`` keys
    are merged into the project's config. The task type and the state are not
    here: the state moves through publish/pause/complete/archive."""

    name = fields.String(validate=validate.Length(min=1, max=200))
    description = fields.String(validate=validate.Length(max=5000))
    tutorial = _tutorial()
    field_guide = fields.String(validate=validate.Length(max=20_000))
    translations = _translations()  # replaces the project's, whole
    config = fields.Dict()
    min_answers = fields.Integer(strict=True, validate=validate.Range(min=1, max=50))
    max_answers = fields.Integer(strict=True, validate=validate.Range(min=1, max=100))
    confidence = fields.Float(validate=validate.Range(min=0.0, max=1.0))
    lease_seconds = fields.Integer(strict=True, validate=validate.Range(min=5, max=3600),
                                   allow_none=True)
    strategy = fields.String(validate=validate.OneOf(STRATEGIES))
    gold_start = fields.Float(validate=validate.Range(min=0.0, max=1.0))
    gold_floor = fields.Float(validate=validate.Range(min=0.0, max=1.0))
    gold_ramp = fields.Integer(strict=True, validate=validate.Range(min=1, max=10_000))
    quality = fields.Nested(QualitySettings)  # merged into the project's


PRIORITY_RANGE = validate.Range(min=-999, max=999)


class JobItems(Schema):
    """A job as JSON: its items, or the URL of a IIIF manifest to import."""

    items = fields.List(fields.Dict(), validate=validate.Length(min=1))
    iiif = fields.String(validate=validate.Length(min=1, max=2048))
    priority = fields.Integer(strict=True, validate=PRIORITY_RANGE, load_default=0)

    @validates_schema
    def _one_source(self, data, **_):
        if "items" not in data and "iiif" not in data:
            raise ValidationError("Missing data for required field.", "items")
        if "items" in data and "iiif" in data:
            raise ValidationError("Give items or iiif, not both.", "iiif")


class JobForm(Schema):
    priority = fields.Integer(validate=PRIORITY_RANGE, load_default=0)  # form text: "5"
    mapping = fields.String(validate=validate.Length(max=10_000), load_default=None)


class JobsQuery(Schema):
    state = fields.String(validate=validate.OneOf(("queued", "running", "done", "failed")),
                          load_default=None)
    limit = fields.Integer(validate=validate.Range(min=1, max=500), load_default=50)
    offset = fields.Integer(validate=validate.Range(min=0, max=10**9), load_default=0)


class NextQuery(Schema):
    count = fields.Integer(validate=validate.Range(min=1, max=5), load_default=1)


class AnswerCreate(Schema):
    lease = fields.String(required=True, validate=validate.Length(min=1, max=300))
    answer = fields.Raw(required=True)
    # N > 0: the reply also hands out the next task (and N - 1 more to preload),
    # as GET .../tasks/next?count=N would: a volunteer's cycle in one call
    next = fields.Integer(strict=True, validate=validate.Range(min=0, max=5), load_default=0)


class ReportCreate(Schema):
    """A volunteer's "something is wrong with this task" (engine.quality.reports)."""

    reason = fields.String(required=True, validate=validate.OneOf(tuple(REASONS)))
    note = fields.String(validate=validate.Length(max=300), load_default=None, allow_none=True)


class ResultsQuery(Schema):
    format = fields.String(validate=validate.OneOf(("csv", "json", "jsonl")), load_default="json")
    level = fields.String(validate=validate.OneOf(("task", "item")), load_default="task")
    bom = fields.Boolean(load_default=False)


class AnswersQuery(Schema):
    format = fields.String(validate=validate.OneOf(("csv", "json", "jsonl")), load_default="csv")
    bom = fields.Boolean(load_default=False)


def load_body(schema: Schema) -> dict:
    """The request's JSON body checked by a schema; clear 400/422 errors otherwise."""
    return load_object(schema, json_body())


def load_object(schema: Schema, body: Any) -> dict:
    """A parsed body checked by a schema: it must be a JSON object (400), and valid (422)."""
    if not isinstance(body, dict):
        raise InvalidError("the body must be a JSON object", {"body": "not an object"})
    try:
        return schema.load(body)
    except ValidationError as exc:
        raise InvalidError("the request is not valid", exc.messages) from exc


def json_body() -> Any:
    """The request's body parsed as strict JSON (parse_json), or a 400 naming ``body``."""
    if not request.is_json:
        raise BadRequestError("the body must be JSON (Content-Type: application/json)",
                              {"body": "not JSON"})
    return parse_json(request.get_data())


def parse_json(data: bytes) -> Any:
    """Bytes parsed as strict JSON, or a 400 naming ``body``.

    Parsed here rather than by ``request.get_json(silent=True)``, which cannot
    tell ``null`` from garbage, lets RecursionError (a few KB of ``[[[[``) escape
    as a 500, and reads NaN and Infinity, which are not JSON and would be stored.
    """
    try:
        body = json.loads(data, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise BadRequestError(f"the body is not valid JSON: {exc}", {"body": "not JSON"}
                              ) from exc
    if data.isascii() and b"\\u" not in data and b"\x00" not in data:
        return body  # no escape and no byte beyond ASCII: no NUL or surrogate to find
    for path, text in _strings(body):
        if _UNSTORABLE.search(text):
            raise BadRequestError(f"{path or 'the body'} holds a NUL character or an unpaired "
                                  "surrogate (such as \\ud800): not text", {"body": "not text"})
    return body


# JSON may spell these ("\u0000", "\ud800") but no database stores them: SQLite
# cannot encode a lone surrogate and PostgreSQL's text refuses NUL, both as a 500.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _strings(body: Any) -> Iterator[tuple[str, str]]:
    """Every string in a parsed body (keys too), with its dotted path. Iterative:
    a body nested nearly as deep as the parser allows must not overflow here."""
    stack: list[tuple[str, Any]] = [("", body)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            yield path, value
        elif isinstance(value, dict):
            for key, item in value.items():
                stack += [(path, key), (_join(path, key), item)]
        elif isinstance(value, list):
            stack += [(_join(path, n), item) for n, item in enumerate(value)]


def _join(path: str, key: str | int) -> str:
    return f"{path}.{key}" if path else str(key)


def load_query(schema: Schema) -> dict:
    return load_form(schema, request.args)


def load_form(schema: Schema, values) -> dict:
    """Query strings and form fields: one value per name, checked by a schema."""
    unstorable = unstorable_fields(values)
    if unstorable:
        raise InvalidError("the query string is not valid", unstorable)
    try:
        return schema.load(values.to_dict())
    except ValidationError as exc:
        raise InvalidError("the query string is not valid", exc.messages) from exc


def unstorable_fields(values) -> dict[str, str]:
    """Form or query values (a MultiDict: every value of a repeated name) holding
    a NUL or an unpaired surrogate, by name: as in JSON bodies (parse_json), no
    database stores them (PostgreSQL's text refuses NUL with an error that would
    be a 500)."""
    return {name: "holds a NUL character or an unpaired surrogate: not text"
            for name, value in values.items(multi=True)
            if isinstance(value, str) and _UNSTORABLE.search(value)}
