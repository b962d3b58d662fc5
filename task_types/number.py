"""number: a volunteer types a count or a measured value.

Answers are merged robustly: values far from the rest (a typo, an extra
zero, another unit) are set aside first, then the others are combined by a
weighted median (the default), a weighted trimmed mean, or the plain mean
(a rating: every opinion counts once). The confidence falls as the kept
answers spread out relative to the value, and with the weight of the answers
set aside.

An answers CSV merged without a config (`bitesize consensus`) gets one from
its own values (``detected_scale``): a rating scale whose top the crowd keeps
reaching is merged by the mean on that scale, anything else as a count or a
measure is.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validates_schema
from marshmallow.validate import Length, OneOf, Range

from task_types.base import Aggregate, Media, Microtask, TaskType
from task_types.classify import ClassifyItemSchema, StrippedString, classify
from task_types.weighting import answer_weights

METHODS = ("median", "trimmed_mean", "mean")
DEFAULT_TOLERANCE = 0.1
LARGEST = 1e15  # past any count or measure typed by hand; floats stay exact to the unit
# An outlier is an answer both far from the others (more than this many
# robust standard deviations from the weighted median; MAD x 1.4826 is the
# normal-consistent MAD) and grossly off (further from the median than the
# scale: a factor of two or more from the value). Chosen on Snow et al.'s
# affect ratings (shared/data/dev), where looser rules only cost accuracy.
OUTLIER_SDS = 3.0
MAD_TO_SD = 1.4826
EPSILON = 1e-12  # relative: where a cumulative weight sits exactly on the half
OFFLINE_QUESTION = "What is the value?"
END_REACHED = 2  # times (a task, an end) the top value is answered, for a scale's end


class NumberConfigSchema(Schema):
    question = StrippedString(required=True, validate=Length(1, 500))
    instructions = fields.String(load_default="", validate=Length(max=5000))
    unit = StrippedString(load_default="", validate=Length(max=20))
    min = fields.Float(load_default=None, allow_none=True, allow_nan=False,
                       validate=Range(-LARGEST, LARGEST))
    max = fields.Float(load_default=None, allow_none=True, allow_nan=False,
                       validate=Range(-LARGEST, LARGEST))
    integer = fields.Boolean(load_default=False)
    method = fields.String(load_default="median", validate=OneOf(METHODS, labels=(
        "Median", "Trimmed mean", "Mean")), metadata={
        "description": "Median: one true value, typos set aside; trimmed mean: the same, "
                       "smoother; mean: a rating, every volunteer's opinion counting once."})
    trim = fields.Float(load_default=0.2, allow_nan=False,
                        validate=Range(0, 0.5, max_inclusive=False), metadata={
                            "description": "With the trimmed mean: the share of answers set "
                                           "aside at each end."})
    tolerance = fields.Float(load_default=DEFAULT_TOLERANCE, allow_nan=False,
                             validate=Range(0, 1, min_inclusive=False), metadata={
                                 "description": "How far apart (as a share of the value) two "
                                                "answers may be and still agree."})

    @validates_schema
    def check_bounds(self, data: dict, **kwargs: Any) -> None:
        low, high = data.get("min"), data.get("max")
        if low is None or high is None:
            return
        if low >= high:
            raise ValidationError("min must be less than max.", "min")
        if data.get("integer") and math.ceil(low) > math.floor(high):
            raise ValidationError("No whole number lies between min and max.", "max")


def value_problem(value: float, config: dict) -> str | None:
    """Why ``value`` cannot be an answer (or gold) under ``config``, or None."""
    if config["min"] is not None and value < config["min"]:
        return f"Must be at least {number_text(config['min'])}."
    if config["max"] is not None and value > config["max"]:
        return f"Must be at most {number_text(config['max'])}."
    if config["integer"] and not float(value).is_integer():
        return "Must be a whole number."
    return None


def as_stored(value: float, config: dict) -> float | int:
    """Counts are kept as ints, so results and exports show "12", not "12.0"."""
    return int(value) if config["integer"] else float(value)


class NumberItemSchema(ClassifyItemSchema):
    """classify's item (an image or a text, a thumb, an id), with a number as
    its gold."""

    gold = fields.Float(allow_nan=False, validate=Range(-LARGEST, LARGEST))

    def __init__(self, config: dict, **kwargs: Any) -> None:
        super().__init__([], **kwargs)
        self.config = config

    def check_label(self, value: float, field_name: str) -> None:
        """Gold must be an answer a volunteer could give."""
        problem = value_problem(value, self.config)
        if problem:
            raise ValidationError(problem, field_name)

    @post_load
    def store_gold(self, data: dict, **kwargs: Any) -> dict:
        if "gold" in data:
            data["gold"] = as_stored(data["gold"], self.config)
        return data


class NumberAnswerSchema(Schema):
    value = fields.Float(required=True, allow_nan=False, validate=Range(-LARGEST, LARGEST))

    def __init__(self, config: dict, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config

    @validates_schema
    def check_value(self, data: dict, **kwargs: Any) -> None:
        problem = value_problem(data["value"], self.config)
        if problem:
            raise ValidationError(problem, "value")

    @post_load
    def store(self, data: dict, **kwargs: Any) -> dict:
        return {"value": as_stored(data["value"], self.config)}


class NumberType(TaskType):
    name = "number"
    title = "Number"
    description = "Volunteers type a count or a measured value for an image or a text."
    lease_seconds = 90
    config_schema = NumberConfigSchema

    def item_schema(self, config: dict) -> Schema:
        return NumberItemSchema(config)

    def split(self, item: dict, config: dict, media: Media | None = None) -> list[Microtask]:
        """One task per item, with the payload classify would show."""
        return classify.split(item, config, media)

    def answer_schema(self, config: dict) -> Schema:
        return NumberAnswerSchema(config)

    def aggregate(
        self, answers: list[dict], weights: list[float] | None, config: dict
    ) -> Aggregate:
        """Outliers set aside around the weighted median, then the configured
        method over the rest. ``mean`` ignores ``weights``: on a rating the answer
        is the crowd's average opinion, and agreeing with the crowd's usual
        answer (what reliability measures) is no sign of a better one.

        Confidence = (weight kept / all weight) / (1 + spread / (tolerance x
        scale)), the spread being the kept answers' weighted mean distance
        from the value: answers all equal give 1, answers spread over one
        tolerance give 1/2, and a third of the weight set aside caps it at 2/3.
        """
        method = config["method"]
        weights = answer_weights(answers, weights)  # checked even where unused
        points = weighted_points(answers, [1.0] * len(answers) if method == "mean" else weights)
        if not points:
            return Aggregate(None, 0.0, {"answers": len(answers), "kept": 0, "spread": 0.0})
        kept = without_outliers(points, config)
        if method == "trimmed_mean":
            value = trimmed_mean(kept, config["trim"])
        elif method == "mean":
            value = trimmed_mean(kept, 0.0)  # nothing trimmed: the plain mean
        else:
            value = weighted_median(kept)
        if config["integer"]:
            value = math.floor(value + 0.5)
        spread = mean_distance(kept, value)
        share = sum(w for _, w in kept) / sum(w for _, w in points)
        confidence = share / (1.0 + spread / (config["tolerance"] * scale(value, config)))
        return Aggregate(value, min(1.0, confidence),
                         {"answers": len(answers), "kept": len(kept), "spread": spread})

    def score(self, answer: dict, gold: Any, config: dict | None = None) -> float:
        """1 within the tolerance, then falling in a straight line to 0 at four
        times it, so a near miss still earns some trust and a wild one none.

        Without the project's config the default tolerance and scale apply.
        """
        given = finite_number(answer.get("value") if isinstance(answer, dict) else None)
        truth = finite_number(gold)
        if given is None or truth is None:
            return 0.0
        tolerance = config["tolerance"] if config else DEFAULT_TOLERANCE
        error = abs(given - truth) / scale(truth, config)
        if error <= tolerance:
            return 1.0
        return max(0.0, 1.0 - (error - tolerance) / (3.0 * tolerance))

    def offline_config(self) -> dict:
        """Any number, merged by the default method: what an answers CSV is
        read under before its values say which scale they are on."""
        return self.load_config({"question": OFFLINE_QUESTION})

    def config_from_answers(self, answers: Mapping[str, Sequence[dict]]) -> dict:
        """The config an answers CSV (task -> its answers) is merged under when
        none was given: the offline one on the scale its values use
        (``detected_scale``)."""
        values = [[value for answer in task
                   if (value := finite_number(answer.get("value"))) is not None]
                  for task in answers.values()]
        return self.load_config({"question": OFFLINE_QUESTION, **detected_scale(values)})

    def answer_from_text(self, text: str, config: dict) -> dict:
        try:
            return {"value": float(text.strip())}
        except ValueError:
            raise ValueError(f"not a number: {text[:50]!r}") from None

    def value_to_text(self, value: Any) -> str:
        return "" if value is None else number_text(value)

    def answer_to_text(self, answer: dict) -> str:
        return number_text(answer["value"])

    def example(self) -> dict:
        return {
            "config": {
                "question": "How many birds are in this photo?",
                "unit": "birds",
                "min": 0,
                "integer": True,
                "instructions": "Count every bird you can see, even the half-hidden ones.",
            },
            "item": {"image": "https://example.org/colony/0001.jpg", "id": "0001", "gold": 12},
            "answers": [{"value": 12}, {"value": 11}, {"value": 12}, {"value": 120}],
        }


def detected_scale(tasks: Sequence[Sequence[float]]) -> dict:
    """min, max, integer and method for values given without a config, one
    list per task.

    A rating scale is one whose ends the crowd keeps reaching: the largest
    value (in size) is answered on ``END_REACHED`` tasks or more, as 100 is on
    a 0..100 scale, or at both ends of a signed scale (-100 and 100). Its
    answers are opinions, merged by the mean (a median or a trimmed mean leans
    to the crowd's most common answer: on ratings piled up at 0 it undershoots
    the average opinion), not rounded even of whole ratings, on the scale
    0..top, or -top..top when any value is negative (a signed scale: a file
    mixing 0..100 and -100..100 ratings is on -100..100). Otherwise the largest
    value is one answer's (a count, a measure, or a slip of the keyboard): no
    upper bound, so the type's outlier rule can set a slip aside, the default
    median, whole numbers when every value is one, and 0 as the least value
    when none is negative.
    """
    values = [value for task in tasks for value in task]
    top = max((abs(value) for value in values), default=0.0)
    signed = any(value < 0 for value in values)
    ends = {(n, value) for n, task in enumerate(tasks) for value in task if abs(value) == top}
    if top > 0 and len(ends) >= END_REACHED:
        return {"min": -top if signed else 0.0, "max": top, "integer": False,
                "method": "mean"}
    return {"min": None if signed else 0.0, "max": None, "method": "median",
            "integer": bool(values) and all(float(value).is_integer() for value in values)}


def number_text(value: float) -> str:
    """A number as people write it: no exponent, no trailing zeros, and 15
    significant digits at most so float noise (0.1 + 0.2) does not show."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = format(Decimal(f"{value:.15g}"), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def finite_number(value: Any) -> float | None:
    """``value`` as a float when it is a real, finite number (a malformed gold
    is None, never a crash)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def scale(reference: float, config: dict | None) -> float:
    """What an error is measured against. With both bounds, the values live on
    a known scale (a 0-100 rating) and an error is a share of its width; else
    a share of the value itself, never less than 1, so near zero (a count of
    0 or 1) errors are counted in units rather than blowing up."""
    if config and config["min"] is not None and config["max"] is not None:
        return max(abs(reference), config["max"] - config["min"])
    return max(abs(reference), 1.0)


def weighted_points(answers: list[dict], weights: list[float]) -> list[tuple[float, float]]:
    """(value, weight) of the answers that count, sorted by value; answers with
    no weight, or no usable value, drop out."""
    points = []
    for answer, weight in zip(answers, weights, strict=True):
        value = finite_number(answer.get("value"))
        if weight > 0 and value is not None:
            points.append((value, weight))
    return sorted(points)


def weighted_median(points: list[tuple[float, float]]) -> float:
    """The value at half the total weight of sorted points; exactly on a
    boundary between two values, their mean (the usual median when weights
    are equal and the count is even)."""
    half = sum(w for _, w in points) / 2.0
    running = 0.0
    for i, (value, weight) in enumerate(points):
        running += weight
        if abs(running - half) <= EPSILON * half and i + 1 < len(points):
            return (value + points[i + 1][0]) / 2.0
        if running >= half:
            return value
    return points[-1][0]


def trimmed_mean(points: list[tuple[float, float]], trim: float) -> float:
    """The weighted mean of the middle of the weight: ``trim`` of the total
    weight cut from each end, a point on a cut counting for its inner part."""
    total = sum(w for _, w in points)
    low, high = trim * total, (1.0 - trim) * total
    start = weighted_sum = kept = 0.0
    for value, weight in points:
        inner = min(start + weight, high) - max(start, low)
        if inner > 0:
            weighted_sum += value * inner
            kept += inner
        start += weight
    return weighted_sum / kept if kept > 0 else weighted_median(points)


def without_outliers(points: list[tuple[float, float]], config: dict
                     ) -> list[tuple[float, float]]:
    """The points that are not outliers: an extra zero, a slip of the unit.

    Being far in robust standard deviations is not enough: when most answers
    agree exactly the MAD is 0 and every near miss would go. The answer must
    also be off by more than the scale (see ``scale``): more than twice the
    median, or on the other side of 0 from it. On a bounded scale no
    answer in range is that far: a rating nobody else gave is an opinion to
    weigh (the trimmed mean or median tempers it), not a typo.
    """
    centre = weighted_median(points)
    mad = weighted_median(sorted((abs(value - centre), w) for value, w in points))
    limit = max(OUTLIER_SDS * MAD_TO_SD * mad, scale(centre, config))
    return [(value, w) for value, w in points if abs(value - centre) <= limit]


def mean_distance(points: list[tuple[float, float]], centre: float) -> float:
    """Weighted mean absolute distance from ``centre``: unlike the MAD it is not
    0 while a minority disagrees, so confidence sees every kept answer."""
    return sum(w * abs(value - centre) for value, w in points) / sum(w for _, w in points)


number = NumberType()
