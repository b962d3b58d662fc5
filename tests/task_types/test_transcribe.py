"""transcribe: its schemas, the word-by-word merge, combine, score, offline text and
page template."""
import random
from importlib.resources import files

import pytest
from marshmallow import ValidationError

from task_types import Aggregate, TaskResult
from task_types.testing import template_environment
from task_types.text_align import char_distance, normal_form, pair_distances
from task_types.transcribe import transcribe as installed_transcribe

PAGE = "/media/" + "a" * 64 + ".png"


@pytest.fixture
def config(transcribe) -> dict:
    return transcribe.load_config({})


def test_entry_point_object_describes_itself():
    assert installed_transcribe.name == "transcribe"
    assert installed_transcribe.title == "Transcribe"
    assert installed_transcribe.lease_seconds == 300
    assert installed_transcribe.min_seconds == 3.0
    assert installed_transcribe.description.endswith(".")


# -- config ------------------------------------------------------------------


def test_config_defaults(transcribe):
    assert transcribe.load_config({}) == {
        "instructions": "", "language": "", "split": "lines",
        "min_line_height": 12, "merge_gap": 6, "padding": 8,
    }
    assert transcribe.load_config({"language": "de-AT", "split": "none"})["language"] == "de-AT"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"instructions": "i" * 5001}, "instructions"),
        ({"language": "English please"}, "language"),
        ({"language": "e"}, "language"),
        ({"language": "en\"><script>"}, "language"),
        ({"split": "words"}, "split"),
        ({"min_line_height": 1}, "min_line_height"),
        ({"min_line_height": 1001}, "min_line_height"),
        ({"min_line_height": "12"}, "min_line_height"),
        ({"min_line_height": 12.5}, "min_line_height"),
        ({"merge_gap": -1}, "merge_gap"),
        ({"padding": 201}, "padding"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_config_names_the_field(transcribe, change, field):
    with pytest.raises(ValidationError) as exc:
        transcribe.load_config(change)
    assert list(exc.value.messages) == [field]


# -- items ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "item",
    [
        {"image": PAGE},
        {"image": "https://archive.example.org/letters/12/p1.jpg", "id": "letter-12/p1"},
        {"image": PAGE, "regions": [[0, 0, 10, 5], [3, 7, 100, 20]]},
        {"image": PAGE, "regions": [[0, 0, 10, 5], [0, 9, 10, 5]], "gold": ["Dear Sir,", None]},
    ],
)
def test_good_items_load_unchanged(transcribe, config, item):
    assert transcribe.item_schema(config).load(item) == item


def test_gold_is_cleaned_like_an_answer(transcribe):
    config = transcribe.load_config({"split": "none"})
    loaded = transcribe.item_schema(config).load({"image": PAGE, "gold": "  Dear\n [Unclear] "})
    assert loaded["gold"] == "Dear [unclear]"


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({}, "image"),
        ({"image": "javascript:alert(1)"}, "image"),
        ({"image": "data:image/png;base64,iVBORw0KGgo="}, "image"),
        ({"image": "/media/../secret.png"}, "image"),
        ({"image": PAGE, "id": "i" * 201}, "id"),
        ({"image": PAGE, "regions": []}, "regions"),
        ({"image": PAGE, "regions": [[0, 0, 5, 5]] * 501}, "regions"),
        ({"image": PAGE, "regions": [[0, 0, 5]]}, "regions"),
        ({"image": PAGE, "regions": [[0, 0, 0, 5]]}, "regions"),
        ({"image": PAGE, "regions": [[-1, 0, 5, 5]]}, "regions"),
        ({"image": PAGE, "regions": [[0, 0, 5.5, 5]]}, "regions"),
        ({"image": PAGE, "regions": [[0, 0, 100_001, 5]]}, "regions"),
        ({"image": PAGE, "regions": "0,0,5,5"}, "regions"),
        ({"image": PAGE, "gold": "Dear Sir"}, "gold"),  # an automatic cut: lines unknown
        ({"image": PAGE, "regions": [[0, 0, 5, 5]], "gold": ["a", "b"]}, "gold"),
        ({"image": PAGE, "regions": [[0, 0, 5, 5]], "gold": "a"}, "gold"),
        ({"image": PAGE, "regions": [[0, 0, 5, 5]], "gold": [""]}, "gold"),
        ({"image": PAGE, "colour": "red"}, "colour"),
    ],
)
def test_bad_item_names_the_field(transcribe, config, item, field):
    with pytest.raises(ValidationError) as exc:
        transcribe.item_schema(config).load(item)
    assert field in exc.value.messages


@pytest.mark.parametrize("gold", ["", "   ", 7, "x" * 2001, "tab\x00null"])
def test_bad_gold_of_a_one_line_item(transcribe, gold):
    config = transcribe.load_config({"split": "none"})
    with pytest.raises(ValidationError) as exc:
        transcribe.item_schema(config).load({"image": PAGE, "gold": gold})
    assert list(exc.value.messages) == ["gold"]


# -- answers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "loaded"),
    [
        ("Dear Sir,", "Dear Sir,"),
        ("  Dear\tSir,\r\n I  write ", "Dear Sir, I write"),
        ("[Unclear]", "[unclear]"),
        ("the [UNCLEAR], sir", "the [unclear], sir"),
        ("Grüße aus Köln", "Grüße aus Köln"),
    ],
)
def test_answer_text_is_cleaned(transcribe, config, text, loaded):
    assert transcribe.answer_schema(config).load({"text": text}) == {"text": loaded}


@pytest.mark.parametrize(
    "answer",
    [{}, {"text": ""}, {"text": " \n "}, {"text": 3}, {"text": None}, {"text": "x" * 2001},
     {"text": "bell\x07"}, {"text": "esc\x1b[31m"}, {"text": "c1\x9b"}],
)
def test_bad_answer_is_refused(transcribe, config, answer):
    with pytest.raises(ValidationError) as exc:
        transcribe.answer_schema(config).load(answer)
    assert list(exc.value.messages) == ["text"]


def test_an_extra_answer_field_is_refused(transcribe, config):
    with pytest.raises(ValidationError) as exc:
        transcribe.answer_schema(config).load({"text": "hi", "note": "x"})
    assert list(exc.value.messages) == ["note"]


# -- aggregate -----------------------------------------------------------------


def merged(transcribe, config, texts, weights=None) -> Aggregate:
    return transcribe.aggregate([{"text": text} for text in texts], weights, config)


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (["Dear Sir I write", "Dear Sir I write", "Dear Sir I wrote"], "Dear Sir I write"),
        (["Dear Sir, I write", "dear sir I write", "Dear Sir, I write"], "Dear Sir, I write"),
        (["the cat sat", "the black cat sat", "the black cat sat"], "the black cat sat"),
        (["the cat sat", "the cat sat", "the black cat sat"], "the cat sat"),
        (["the cat sat on the mat", "the cat on the mat", "the cat sat on mat"],
         "the cat sat on the mat"),
        (["the [unclear] sat", "the [unclear] sat", "the cat sat"], "the [unclear] sat"),
        (["Only one"], "Only one"),
    ],
    ids=["substitution", "spelling", "inserted", "not-inserted", "each-misses-one", "unclear",
         "single"],
)
def test_aggregate_votes_word_by_word(transcribe, config, texts, expected):
    assert merged(transcribe, config, texts).value == expected


def test_the_most_typed_spelling_of_the_winning_word_is_kept(transcribe, config):
    result = merged(transcribe, config, ["to Mr. Smith", "to mr smith", "to Mr. Smith,"])
    assert result.value == "to Mr. Smith"


def test_reliability_weights_change_the_vote(transcribe, config):
    texts = ["the cat sat", "the cat sat", "the hat sat"]
    assert merged(transcribe, config, texts).value == "the cat sat"
    # one careful volunteer outvotes two careless ones (log-odds weights)
    assert merged(transcribe, config, texts, [0.6, 0.6, 0.95]).value == "the hat sat"
    assert merged(transcribe, config, texts, [0.9, 0.9, 0.95]).value == "the cat sat"
    # a blocked volunteer (reliability 0) does not count at all
    assert merged(transcribe, config, texts, [0.0, 0.0, 0.7]).value == "the hat sat"


def test_words_typed_between_the_backbones_are_aligned_together(transcribe, config):
    texts = ["a b", "a b", "a x b", "a x b", "a y b"]
    # x has 2 votes against 2 for nothing: a tie in an inserted column is left out
    assert merged(transcribe, config, texts).value == "a b"
    assert merged(transcribe, config, texts, [0.7, 0.7, 0.8, 0.8, 0.7]).value == "a x b"


def test_ties_are_settled_by_answer_order(transcribe, config):
    first = merged(transcribe, config, ["the cat", "a cat"])
    assert first == merged(transcribe, config, ["the cat", "a cat"])
    assert first.value == "the cat"
    assert merged(transcribe, config, ["a cat", "the cat"]).value == "a cat"
    assert first.confidence == pytest.approx(0.75)  # columns: 1/2 and 2/2


def test_confidence_is_the_mean_column_agreement(transcribe, config):
    unanimous = merged(transcribe, config, ["Dear Sir", "dear sir,", "Dear Sir"])
    assert unanimous.confidence == pytest.approx(1.0)
    assert unanimous.support == {"answers": 3, "merge": "words", "word_agreement": 1.0,
                                 "free_wording": False, "columns": 2, "unanimous": 2, "unclear": 0,
                                 "agreement": 1.0}
    split = merged(transcribe, config, ["the [unclear] sat", "the [unclear] sat", "the cat sat"])
    assert split.confidence == pytest.approx((1 + 2 / 3 + 1) / 3)
    assert split.support["unclear"] == 1 and split.support["unanimous"] == 2


@pytest.mark.parametrize(
    ("texts", "weights"), [([], None), (["a"], [0.0])], ids=["no-answers", "zero-weight"])
def test_aggregate_without_counted_answers_has_no_value(transcribe, config, texts, weights):
    result = merged(transcribe, config, texts, weights)
    assert result.value is None and result.confidence == 0.0


@pytest.mark.parametrize("weights", [[1.0], [1.0, -0.5], [1.0, float("nan")]],
                         ids=["misaligned", "negative", "nan"])
def test_aggregate_refuses_bad_weights(transcribe, config, weights):
    with pytest.raises(ValueError):
        merged(transcribe, config, ["a", "b"], weights)


def test_ten_answers_each_missing_words_merge_back_to_the_line(transcribe, config):
    rng = random.Random(5)
    line = ("it was the best of times it was the worst of times it was the age of wisdom it "
            "was the age of foolishness it was the epoch of belief it was the epoch").split()
    texts = [" ".join(w for w in line if rng.random() > 0.05) for _ in range(10)]
    result = merged(transcribe, config, texts)
    assert result.value == " ".join(line)
    assert result.support["columns"] == len(line)


# -- combine, score, offline -------------------------------------------------------


def test_combine_puts_lines_in_reading_order(transcribe):
    results = [
        TaskResult({"box": [10, 200, 100, 30]}, "third line", 0.5),
        TaskResult({"box": [10, 100, 100, 30]}, "first", 1.0),
        TaskResult({"box": [300, 100, 100, 30]}, None, 0.0, "contested"),
    ]
    combined = transcribe.combine(results, {"image": PAGE})
    assert combined.value == "first\n[unclear]\nthird line"
    assert combined.confidence == pytest.approx((5 * 1.0 + 9 * 0.0 + 10 * 0.5) / 24)
    assert combined.support == {"lines": 3, "missing": 1}


def test_combine_keeps_task_order_without_boxes(transcribe):
    results = [TaskResult({"line": 1}, "one", 0.9), TaskResult({"line": 2}, "two", 0.9)]
    assert transcribe.combine(results, {"image": PAGE}).value == "one\ntwo"
    assert transcribe.combine([], {"image": PAGE}) == Aggregate(None, 0.0)


@pytest.mark.parametrize(
    ("text", "gold", "expected"),
    [
        ("Dear Sir", "Dear Sir", 1.0),
        ("dear  sir", "Dear Sir", 1.0),
        ("Dear Sit", "Dear Sir", 7 / 8),
        ("Dear", "Dear Sir", 4 / 8),
        ("something else entirely, and long", "Dear Sir", 0.0),
        ("Dear Sir", None, 0.0),
        ("Dear Sir", 7, 0.0),
        ("Dear Sir", ["Dear Sir"], 0.0),
        ("Dear Sir", "", 0.0),
    ],
)
def test_score_is_one_minus_character_error_rate(transcribe, text, gold, expected):
    assert transcribe.score({"text": text}, gold) == pytest.approx(expected)


def test_score_survives_a_malformed_answer(transcribe):
    assert transcribe.score({}, "Dear Sir") == 0.0


def test_offline_text_round_trips(transcribe):
    offline = transcribe.offline_config()
    assert offline == transcribe.load_config({})
    answer = transcribe.answer_from_text(" Dear  Sir,\r\n", offline)
    assert transcribe.answer_schema(offline).load(answer) == {"text": "Dear Sir,"}
    assert transcribe.value_to_text("Dear Sir,") == "Dear Sir,"
    assert transcribe.value_to_text(None) == ""


# -- text_align's distances ------------------------------------------------------


def reference_distance(a, b) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row = row, [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            row[j] = min(prev[j - 1] + (x != y), prev[j] + 1, row[j - 1] + 1)
    return row[-1]


def test_distances_match_the_textbook_algorithm():
    rng = random.Random(7)
    for _ in range(300):
        a = "".join(rng.choice("abcé ") for _ in range(rng.randint(0, 90)))
        b = "".join(rng.choice("abcé ") for _ in range(rng.randint(0, 90)))
        assert char_distance(a, b) == reference_distance(a, b)
    seqs = [[rng.randint(0, 4) for _ in range(rng.randint(0, 15))] for _ in range(8)]
    table = pair_distances(seqs)
    assert [[int(v) for v in row] for row in table] == [
        [reference_distance(a, b) for b in seqs] for a in seqs]


@pytest.mark.parametrize(
    ("token", "form"),
    [("Sir,", "sir"), ("«Köln»", "köln"), ("--", "--"), ("[unclear],", "[unclear]"),
     ("unclear", "unclear"), ("don't", "don't"), ("£5", "£5")],
)
def test_words_are_compared_in_a_normal_form(token, form):
    assert normal_form(token) == form


# -- template --------------------------------------------------------------------


def render(transcribe, config) -> str:
    return template_environment().from_string(transcribe.template).render(
        config=config)


def test_template_has_the_line_input_mark_and_hooks(transcribe):
    html = render(transcribe, transcribe.load_config({"language": "cy"}))
    assert '<img data-bind-src="image"' in html
    assert "<form data-answer-form" in html and '<button type="submit">' in html
    assert 'name="text"' in html and 'lang="cy"' in html and 'spellcheck="false"' in html
    script = files("task_types.templates").joinpath("transcribe.js").read_text()
    assert "data-unclear" in html and 'window.bitesizeTaskTypes["transcribe"]' in script
    assert "Type the line, or [unclear] where you cannot read it." in script
    assert "<script" not in html and "<style" not in html  # the site's CSP runs neither
    assert "lang=" not in render(transcribe, transcribe.load_config({}))


def test_template_escapes_hostile_instructions(transcribe):
    config = transcribe.load_config({"instructions": "<script>alert(1)</script> & <b>x</b>"})
    html = render(transcribe, config)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;x&lt;/b&gt;" in html
    assert "<script>alert(1)" not in html and "<b>x</b>" not in html
