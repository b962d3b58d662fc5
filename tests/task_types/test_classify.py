import json
from html.parser import HTMLParser

import pytest
from marshmallow import ValidationError

from task_types import Aggregate, ItemError, Microtask, TaskResult
from task_types.classify import classify as installed_classify
from task_types.testing import template_environment

URL = "https://example.org/trap/0001.jpg"
GOOD_CONFIG = {"question": "Which animal?", "labels": ["Deer", "Fox"]}


def test_entry_point_object_describes_itself():
    assert installed_classify.name == "classify"
    assert installed_classify.title == "Classify"
    assert installed_classify.lease_seconds == 60
    assert installed_classify.description.endswith(".")


# -- config ----------------------------------------------------------------


def test_config_is_stripped_and_defaulted(classify):
    loaded = classify.load_config({"question": " Which? ", "labels": [" Deer ", "Fox"]})
    assert loaded == {"question": "Which?", "labels": ["Deer", "Fox"], "instructions": ""}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"question": None}, "question"),
        ({"question": ""}, "question"),
        ({"question": "   "}, "question"),
        ({"question": "q" * 501}, "question"),
        ({"labels": None}, "labels"),
        ({"labels": "Deer,Fox"}, "labels"),
        ({"labels": ["Deer"]}, "labels"),
        ({"labels": [f"label {i}" for i in range(51)]}, "labels"),
        ({"labels": ["Deer", " "]}, "labels"),
        ({"labels": ["Deer", "x" * 101]}, "labels"),
        ({"labels": ["Deer", "deer "]}, "labels"),
        # a line break split the answers export's cell: consensus made up a task
        ({"labels": ["Deer", "sea\nlion"]}, "labels"),
        ({"labels": ["Deer", "Fox\u202e"]}, "labels"),  # turns the text after it around
        ({"instructions": "i" * 5001}, "instructions"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_config_names_the_field(classify, change, field):
    raw = {key: value for key, value in {**GOOD_CONFIG, **change}.items() if value is not None}
    with pytest.raises(ValidationError) as exc:
        classify.load_config(raw)
    assert list(exc.value.messages) == [field]


# -- items -----------------------------------------------------------------


@pytest.mark.parametrize(
    "item",
    [
        {"image": URL},
        {"image": "http://example.org/a.jpg?size=large"},
        {"image": "/media/projects/3/0001.jpg", "thumb": "/media/projects/3/0001.thumb.jpg"},
        {"text": "Dear Sir, I write from the front..."},
        {"image": URL, "id": "trap-7/0001", "gold": "Fox"},
    ],
)
def test_good_items_load_unchanged(classify, config, item):
    assert classify.item_schema(config).load(item) == item


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"image": "javascript:alert(1)"}, "image"),
        ({"image": "JavaScript:alert(1)"}, "image"),
        ({"image": "data:image/png;base64,iVBORw0KGgo="}, "image"),
        ({"image": "ftp://example.org/a.jpg"}, "image"),
        ({"image": "//evil.example/a.jpg"}, "image"),
        ({"image": "https://"}, "image"),
        ({"image": "media/a.jpg"}, "image"),
        ({"image": "/media/../instance/bitesize.sqlite"}, "image"),
        ({"image": "https://example.org/a b.jpg"}, "image"),
        # the secret would reach every volunteer in the task's payload (a security review)
        ({"image": "http://user:secret@images.example.org/a.png"}, "image"),
        ({"text": "hi", "thumb": "https://token@images.example.org/a.png"}, "thumb"),
        ({"image": 7}, "image"),
        ({"image": URL, "text": "and a text"}, "image"),
        ({}, "image"),
        ({"text": ""}, "text"),
        ({"text": "t" * 10_001}, "text"),
        ({"text": "hi", "thumb": "javascript:alert(1)"}, "thumb"),
        ({"text": "hi", "id": "i" * 201}, "id"),
        ({"text": "hi", "gold": "Wolf"}, "gold"),
        ({"text": "hi", "colour": "red"}, "colour"),
    ],
)
def test_bad_item_names_the_field(classify, config, item, field):
    with pytest.raises(ValidationError) as exc:
        classify.item_schema(config).load(item)
    assert field in exc.value.messages


# -- split -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            {"image": URL, "thumb": "/media/t.jpg", "id": "0001", "gold": "Deer"},
            Microtask({"image": URL, "thumb": "/media/t.jpg"}, "Deer"),
        ),
        ({"text": "A fox!"}, Microtask({"text": "A fox!"}, None)),
    ],
)
def test_split_makes_one_task_per_item(classify, config, item, expected):
    assert classify.split(item, config) == [expected]


def test_split_refuses_an_item_without_media(classify, config):
    with pytest.raises(ItemError) as exc:
        classify.split({"id": "0001"}, config)
    assert "image" in exc.value.fields


# -- answers ---------------------------------------------------------------


def test_answer_with_a_label_loads(classify, config):
    assert classify.answer_schema(config).load({"label": "Fox"}) == {"label": "Fox"}


@pytest.mark.parametrize(
    "answer",
    [{}, {"label": "Wolf"}, {"label": "fox"}, {"label": 3}, {"label": "Fox", "note": "hi"}],
)
def test_bad_answer_is_refused(classify, config, answer):
    with pytest.raises(ValidationError) as exc:
        classify.answer_schema(config).load(answer)
    assert set(exc.value.messages) <= {"label", "note"}


# -- aggregate, combine, score ---------------------------------------------


@pytest.mark.parametrize(
    ("labels", "weights", "value", "confidence", "support"),
    [
        (["Deer", "Deer", "Fox"], None, "Deer", 2 / 3, {"Deer": 2.0, "Fox": 1.0}),
        (["Deer", "Deer", "Fox"], [0.2, 0.2, 0.9], "Fox", 0.9 / 1.3, {"Deer": 0.4, "Fox": 0.9}),
        (["Fox", "Deer"], None, "Deer", 0.5, {"Deer": 1.0, "Fox": 1.0}),
        (["Nothing", "Badger"], [0.5, 0.5], "Badger", 0.5, {"Badger": 0.5, "Nothing": 0.5}),
        (["Fox", "Fox", "Fox"], None, "Fox", 1.0, {"Fox": 3.0}),
        (["Deer", "Wolf", "Wolf"], None, "Deer", 1.0, {"Deer": 1.0}),
        (["Deer"], [0.0], None, 0.0, {"Deer": 0.0}),
        ([], None, None, 0.0, {}),
    ],
    ids=["majority", "weights", "tie", "tie-weighted", "unanimous", "unknown", "zero", "empty"],
)
def test_aggregate_is_a_weighted_vote(
    classify, config, labels, weights, value, confidence, support
):
    answers = [{"label": label} for label in labels]
    result = classify.aggregate(answers, weights, config)
    assert result.value == value
    assert result.confidence == pytest.approx(confidence)
    assert result.support == pytest.approx(support)


def test_support_follows_the_label_order(classify, config):
    answers = [{"label": "Nothing"}, {"label": "Fox"}, {"label": "Deer"}]
    assert list(classify.aggregate(answers, None, config).support) == ["Deer", "Fox", "Nothing"]


@pytest.mark.parametrize("weights", [[1.0], [1.0, -1.0]], ids=["misaligned", "negative"])
def test_aggregate_refuses_bad_weights(classify, config, weights):
    with pytest.raises(ValueError):
        classify.aggregate([{"label": "Deer"}, {"label": "Fox"}], weights, config)


@pytest.mark.parametrize(
    ("results", "expected"),
    [([TaskResult({}, "Fox", 0.8)], Aggregate("Fox", 0.8)), ([], Aggregate(None, 0.0))],
)
def test_combine_takes_the_single_result(classify, results, expected):
    assert classify.combine(results, {"image": URL}) == expected


def test_combine_refuses_several_results(classify):
    with pytest.raises(ValueError):
        classify.combine([TaskResult({}, "Fox", 1.0), TaskResult({}, "Deer", 1.0)],
                         {"image": URL})


def test_offline_text_round_trips(classify, config):
    answer = classify.answer_from_text(" Deer ", config)
    assert classify.answer_schema(config).load(answer) == {"label": "Deer"}
    assert classify.value_to_text("Deer") == "Deer"


@pytest.mark.parametrize(
    ("label", "gold", "expected"), [("Deer", "Deer", 1.0), ("Fox", "Deer", 0.0), ("Fox", None, 0.0)]
)
def test_score_is_exact_match(classify, label, gold, expected):
    assert classify.score({"label": label}, gold) == expected


# -- template --------------------------------------------------------------


class Buttons(HTMLParser):
    """Collects each button's attributes, decoded as a browser would."""

    def __init__(self) -> None:
        super().__init__()
        self.buttons: list[dict] = []

    def handle_starttag(self, tag, attrs):
        if tag == "button":
            self.buttons.append(dict(attrs))


def render(classify, config) -> str:
    return template_environment().from_string(classify.template).render(config=config)


def test_template_keeps_the_page_conventions(classify, config):
    html = render(classify, config)
    assert html.lstrip().startswith('<div class="task task-classify">')
    assert '<img data-bind-src="image" alt="The photo to classify">' in html
    assert '<p data-bind-text="text"></p>' in html
    assert "Which animal is in this photo?</h2>" in html
    assert "<kbd>1</kbd> Deer" in html


def test_template_escapes_labels_and_numbers_the_first_nine(classify):
    nasty = ["It's", 'say "hi"', "<script>alert(1)</script>", "a & b"]
    labels = nasty + [f"label {i}" for i in range(6)]
    config = classify.load_config({"question": "<b>Which?</b>", "labels": labels})
    html = render(classify, config)
    parser = Buttons()
    parser.feed(html)
    assert [json.loads(b["data-answer"]) for b in parser.buttons] == [
        {"label": label} for label in labels
    ]
    assert [b.get("data-key") for b in parser.buttons] == [str(n) for n in range(1, 10)] + [None]
    assert all(b["type"] == "button" for b in parser.buttons)
    assert "<script>" not in html and "<b>" not in html


def test_labels_may_hold_invisible_characters_configs_already_have(classify):
    """A soft hyphen or a zero-width space pasted into a label harms no export;
    refused, a project that already had one could no longer be edited (its
    labels cannot be renamed once answered)."""
    labels = ["Schnee\u00adeule", "Zero\u200bwidth"]
    assert classify.load_config({"question": "Which?", "labels": labels})["labels"] == labels
