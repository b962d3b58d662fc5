import random
from html.parser import HTMLParser
from importlib.resources import files

import pytest
from marshmallow import ValidationError

from task_types import Aggregate, ItemError, Microtask, TaskResult
from task_types.number import NumberType, trimmed_mean, weighted_median
from task_types.number import number as installed_number
from task_types.testing import template_environment

URL = "https://example.org/colony/0001.jpg"
GOOD_CONFIG = {"question": "How many birds?"}


@pytest.fixture
def number() -> NumberType:
    return NumberType()


@pytest.fixture
def free(number) -> dict:
    """Any value, the defaults: weighted median, tolerance 0.1."""
    return number.load_config({"question": "How long is the leaf?", "unit": "cm"})


@pytest.fixture
def count(number) -> dict:
    """A count from 0 to 1,000."""
    return number.load_config({"question": "How many birds?", "min": 0, "max": 1000,
                               "integer": True, "unit": "birds"})


def values(*numbers: float) -> list[dict]:
    return [{"value": n} for n in numbers]


def test_entry_point_object_describes_itself():
    assert installed_number.name == "number"
    assert installed_number.title == "Number"
    assert installed_number.description.endswith(".")
    assert installed_number.labels(GOOD_CONFIG) is None


# -- config ----------------------------------------------------------------


def test_config_is_stripped_and_defaulted(number):
    assert number.load_config({"question": " How many? ", "unit": " cm "}) == {
        "question": "How many?", "instructions": "", "unit": "cm", "min": None, "max": None,
        "integer": False, "method": "median", "trim": 0.2, "tolerance": 0.1,
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"question": None}, "question"),
        ({"question": ""}, "question"),
        ({"unit": "u" * 21}, "unit"),
        ({"min": "zero"}, "min"),
        ({"min": float("nan")}, "min"),
        ({"max": float("inf")}, "max"),
        ({"max": 1e16}, "max"),
        ({"min": 10, "max": 10}, "min"),
        ({"min": 10, "max": 5}, "min"),
        ({"min": 0.2, "max": 0.8, "integer": True}, "max"),
        ({"integer": "maybe"}, "integer"),
        ({"method": "mode"}, "method"),
        ({"trim": 0.5}, "trim"),
        ({"trim": -0.1}, "trim"),
        ({"tolerance": 0}, "tolerance"),
        ({"tolerance": 2}, "tolerance"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_config_names_the_field(number, change, field):
    raw = {key: value for key, value in {**GOOD_CONFIG, **change}.items() if value is not None}
    with pytest.raises(ValidationError) as exc:
        number.load_config(raw)
    assert list(exc.value.messages) == [field]


# -- items and split -------------------------------------------------------


@pytest.mark.parametrize(
    "item",
    [
        {"image": URL},
        {"text": "The letter mentions a sum of money."},
        {"image": URL, "id": "0001", "gold": 12},
        {"image": URL, "gold": 0},
    ],
)
def test_good_items_load_unchanged(number, count, item):
    loaded = number.item_schema(count).load(item)
    assert loaded == item
    assert type(loaded.get("gold", 0)) is int  # a count's gold is an int


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"image": "javascript:alert(1)"}, "image"),
        ({"image": URL, "text": "both"}, "image"),
        ({}, "image"),
        ({"text": "hi", "gold": "twelve"}, "gold"),
        ({"text": "hi", "gold": float("nan")}, "gold"),
        ({"text": "hi", "gold": -1}, "gold"),
        ({"text": "hi", "gold": 1001}, "gold"),
        ({"text": "hi", "gold": 12.5}, "gold"),
        ({"text": "hi", "id": "i" * 201}, "id"),
    ],
)
def test_bad_item_names_the_field(number, count, item, field):
    with pytest.raises(ValidationError) as exc:
        number.item_schema(count).load(item)
    assert field in exc.value.messages


def test_split_makes_one_task_per_item(number, count):
    item = number.item_schema(count).load({"image": URL, "id": "0001", "gold": 12})
    assert number.split(item, count) == [Microtask({"image": URL}, 12)]


def test_split_refuses_an_item_without_media(number, count):
    with pytest.raises(ItemError):
        number.split({"id": "0001"}, count)


# -- answers ---------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [(12, 12), (12.0, 12), ("7", 7), (0, 0)])
def test_count_answers_are_ints(number, count, raw, expected):
    loaded = number.answer_schema(count).load({"value": raw})
    assert loaded == {"value": expected} and type(loaded["value"]) is int


def test_free_answers_are_floats(number, free):
    assert number.answer_schema(free).load({"value": -3}) == {"value": -3.0}
    assert number.answer_schema(free).load({"value": 12.5}) == {"value": 12.5}


@pytest.mark.parametrize(
    "answer",
    [
        {},
        {"value": None},
        {"value": "twelve"},
        {"value": True},
        {"value": float("nan")},
        {"value": float("inf")},
        {"value": -1},
        {"value": 1000.5},
        {"value": 12.5},
        {"value": 12, "note": "hi"},
    ],
)
def test_bad_answer_is_refused(number, count, answer):
    with pytest.raises(ValidationError) as exc:
        number.answer_schema(count).load(answer)
    assert set(exc.value.messages) <= {"value", "note"} and exc.value.messages


def test_bound_messages_show_plain_numbers(number, count):
    with pytest.raises(ValidationError) as exc:
        number.answer_schema(count).load({"value": 2000})
    assert exc.value.messages == {"value": ["Must be at most 1000."]}


def test_huge_values_are_refused_even_without_bounds(number, free):
    with pytest.raises(ValidationError):
        number.answer_schema(free).load({"value": 1e16})


# -- aggregate -------------------------------------------------------------


@pytest.mark.parametrize(
    ("numbers", "weights", "value", "kept"),
    [
        ([12, 11, 12], None, 12, 3),
        ([10, 11, 12, 13], None, 11.5, 4),
        ([10, 20, 30], [0.1, 0.1, 0.9], 30, 3),
        ([12, 12, 13, 120], None, 12, 3),  # an extra zero is set aside
        ([12, 12, 12, 24], None, 12, 4),  # twice the value: not grossly off
        ([12, 12, 12, -12], None, 12, 3),  # across zero: grossly off
        ([5], None, 5, 1),
    ],
    ids=["median", "even", "weights", "outlier", "near-miss", "sign", "single"],
)
def test_aggregate_is_a_robust_weighted_median(number, free, numbers, weights, value, kept):
    result = number.aggregate(values(*numbers), weights, free)
    assert result.value == pytest.approx(value)
    assert result.support["answers"] == len(numbers)
    assert result.support["kept"] == kept


def test_all_equal_answers_are_certain(number, free):
    assert number.aggregate(values(7, 7, 7), None, free) == Aggregate(
        7.0, 1.0, {"answers": 3, "kept": 3, "spread": 0.0})


def test_confidence_falls_with_spread_and_with_outliers(number, free):
    # kept 10, 10, 11, 11 around 10.5: mean distance 0.5, 0.5 / (0.1 x 10.5)
    spread = number.aggregate(values(10, 10, 11, 11), None, free)
    assert spread.confidence == pytest.approx(1 / (1 + 0.5 / 1.05))
    # a quarter of the weight set aside caps the confidence at 3/4
    outlier = number.aggregate(values(10, 10, 10, 100), None, free)
    assert (outlier.value, outlier.confidence) == (10.0, pytest.approx(0.75))


def test_confidence_near_zero_uses_a_unit_scale(number, free):
    result = number.aggregate(values(0, 0, 0, 1), None, free)
    assert result.value == 0.0
    assert result.confidence == pytest.approx(1 / (1 + 0.25 / 0.1))


def test_bounded_scale_keeps_every_opinion_and_measures_against_its_width(number):
    rating = number.load_config({"question": "How sad?", "min": 0, "max": 100})
    result = number.aggregate(values(0, 0, 0, 80), None, rating)
    assert (result.value, result.support["kept"]) == (0.0, 4)
    assert result.confidence == pytest.approx(1 / (1 + 20 / 10))


def test_trimmed_mean_cuts_weight_from_each_end(number, free):
    config = {**free, "method": "trimmed_mean", "trim": 0.2}
    # 20% of 5 answers from each end: 90 and 130 go, the mean of 97, 100, 104
    assert number.aggregate(values(90, 97, 100, 104, 130), None, config).value == pytest.approx(
        301 / 3)
    # a cut through one answer keeps its inner part: 0.4 of 3 and of 9
    assert trimmed_mean([(3.0, 1.0), (4.0, 1.0), (9.0, 1.0)], 0.2) == pytest.approx(
        (0.4 * 3 + 4 + 0.4 * 9) / 1.8)
    plain_mean = number.aggregate(values(90, 97, 100, 104, 130), None, {**config, "trim": 0.0})
    assert plain_mean.value == pytest.approx(104.2)


def test_counts_come_out_as_ints(number, count):
    result = number.aggregate(values(11, 12), None, count)
    assert result.value == 12 and type(result.value) is int  # 11.5 rounds half up


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([(1.0, 1.0), (2.0, 1.0), (3.0, 1.0)], 2.0),
        ([(1.0, 1.0), (2.0, 1.0)], 1.5),
        ([(1.0, 3.0), (2.0, 1.0), (9.0, 1.0)], 1.0),
        ([(1.0, 0.1), (2.0, 0.2), (3.0, 0.3)], 2.5),
    ],
)
def test_weighted_median(points, expected):
    assert weighted_median(points) == pytest.approx(expected)


def test_aggregate_does_not_depend_on_answer_order(number, free):
    numbers = [3.5, 4.0, 4.0, 4.25, 9.0, 4.1, 3.9]
    weights = [0.3, 0.9, 0.5, 0.7, 0.2, 0.6, 0.4]
    expected = number.aggregate(values(*numbers), weights, free)
    pairs = list(zip(numbers, weights, strict=True))
    random.Random(7).shuffle(pairs)
    shuffled = number.aggregate(values(*[n for n, _ in pairs]), [w for _, w in pairs], free)
    assert shuffled == expected


@pytest.mark.parametrize(
    ("numbers", "weights"), [([], None), ([3, 4], [0.0, 0.0])], ids=["empty", "zero"]
)
def test_no_weight_gives_no_value(number, free, numbers, weights):
    result = number.aggregate(values(*numbers), weights, free)
    assert (result.value, result.confidence) == (None, 0.0)


@pytest.mark.parametrize("weights", [[1.0], [1.0, -1.0], [1.0, float("inf")]],
                         ids=["misaligned", "negative", "inf"])
def test_aggregate_refuses_bad_weights(number, free, weights):
    with pytest.raises(ValueError):
        number.aggregate(values(1, 2), weights, free)


def test_combine_takes_the_single_result(number):
    assert number.combine([TaskResult({}, 12, 0.9)], {"image": URL}) == Aggregate(12, 0.9)


# -- score -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "gold", "expected"),
    [
        (100, 100, 1.0),
        (109, 100, 1.0),
        (90, 100, 1.0),
        (120, 100, 2 / 3),
        (140, 100, 0.0),
        (1000, 100, 0.0),
        (0, 0, 1.0),
        (0.05, 0, 1.0),
        (0.25, 0, 0.5),
        (1, 0, 0.0),
        (12, None, 0.0),
        (12, "12", 0.0),
        (12, True, 0.0),
        (12, float("nan"), 0.0),
        (12, [12], 0.0),
    ],
)
def test_score_is_one_within_tolerance_then_falls(number, given, gold, expected):
    assert number.score({"value": given}, gold) == pytest.approx(expected)


def test_score_uses_the_config_when_given(number):
    config = number.load_config({"question": "How sad?", "min": 0, "max": 100, "tolerance": 0.05})
    assert number.score({"value": 10}, 0, config) == pytest.approx(1 - 0.05 / 0.15)
    assert number.score({"value": 10}, 0) == 0.0


def test_score_of_a_malformed_answer_is_zero(number):
    assert number.score({}, 12) == 0.0
    assert number.score({"value": "12"}, 12) == 0.0


# -- offline ---------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [("12.5", 12.5), (" -3 ", -3.0), ("1e3", 1000.0)])
def test_answer_from_text_reads_a_number(number, text, value):
    assert number.answer_from_text(text, number.offline_config()) == {"value": value}


@pytest.mark.parametrize("text", ["", "twelve", "12,5", "12 birds"])
def test_answer_from_text_refuses_what_is_not_a_number(number, text):
    with pytest.raises(ValueError):
        number.answer_from_text(text, number.offline_config())


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (12, "12"), (12.0, "12"), (12.5, "12.5"), (-0.0, "0"), (0.1 + 0.2, "0.3"),
        (1e20, "100000000000000000000"), (1.5e-7, "0.00000015"), (None, ""),
    ],
)
def test_value_to_text_writes_plain_numbers(number, value, text):
    assert number.value_to_text(value) == text


@pytest.mark.parametrize(("value", "text"), [(12, "12"), (12.0, "12"), (-0.125, "-0.125")])
def test_answer_to_text_reads_back_unchanged_offline(number, value, text):
    offline = number.offline_config()
    assert number.answer_to_text({"value": value}) == text
    again = number.answer_schema(offline).load(number.answer_from_text(text, offline))
    assert number.answer_to_text(again) == text


def test_offline_config_takes_any_value_by_the_default_method(number):
    offline = number.offline_config()
    assert (offline["min"], offline["max"], offline["integer"], offline["method"]) == (
        None, None, False, "median")


def test_offline_text_round_trips(number, count):
    value = number.aggregate(values(41, 42, 42), None, count).value
    text = number.value_to_text(value)
    assert text == "42"
    assert number.answer_schema(count).load(number.answer_from_text(text, count)) == {"value": 42}


# -- template --------------------------------------------------------------


class Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[dict] = []
        self.buttons: list[dict] = []

    def handle_starttag(self, tag, attrs):
        if tag == "input":
            self.inputs.append(dict(attrs))
        elif tag == "button":
            self.buttons.append(dict(attrs))


def render(number, config) -> Inputs:
    html = template_environment().from_string(number.template).render(config=config)
    parser = Inputs()
    parser.feed(html)
    parser.html = html
    return parser


def test_template_keeps_the_page_conventions(number, count):
    page = render(number, count)
    assert page.html.lstrip().startswith('<div class="task task-number">')
    assert 'data-bind-src="image"' in page.html and 'data-bind-text="text"' in page.html
    assert "<form data-answer-form" in page.html
    script = files("task_types.templates").joinpath("number.js").read_text()
    assert 'window.bitesizeTaskTypes["number"]' in script
    assert "<script" not in page.html and "<style" not in page.html  # the site's CSP runs neither
    assert [b["type"] for b in page.buttons] == ["submit"]
    assert ">birds</span>" in page.html


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"min": 0, "max": 1000, "integer": True},
         {"inputmode": "numeric", "step": "1", "min": "0.0", "max": "1000.0"}),
        ({"min": 0}, {"inputmode": "decimal", "step": "any", "min": "0.0", "max": None}),
        ({"min": -10}, {"inputmode": None, "step": "any", "min": "-10.0", "max": None}),
        ({}, {"inputmode": None, "step": "any", "min": None, "max": None}),
    ],
    ids=["count", "positive", "negative", "free"],
)
def test_template_input_follows_the_config(number, change, expected):
    config = number.load_config({**GOOD_CONFIG, **change})
    (field,) = render(number, config).inputs
    assert field["type"] == "number"
    assert {key: field.get(key) for key in expected} == expected


def test_template_escapes_hostile_config(number):
    config = number.load_config({"question": "<script>alert(1)</script>", "unit": "<b>cm</b>",
                                 "instructions": "\"'><img src=x onerror=alert(1)>"})
    html = render(number, config).html
    assert "<script>alert" not in html and "<b>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
