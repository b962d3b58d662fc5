import io
import random

import jinja2
import pytest
from marshmallow import ValidationError
from PIL import Image, ImageDraw

from task_types import Aggregate, ItemError, Microtask, TaskResult
from task_types import transcribe as transcribe_module
from task_types.testing import MemoryMedia
from task_types.text_align import char_distance, normal_form, pair_distances
from task_types.transcribe import TranscribeType
from task_types.transcribe import transcribe as installed_transcribe

PAGE = "/media/" + "a" * 64 + ".png"


@pytest.fixture
def transcribe() -> TranscribeType:
    return TranscribeType()


@pytest.fixture
def config(transcribe) -> dict:
    return transcribe.load_config({})


def test_entry_point_object_describes_itself():
    assert installed_transcribe.name == "transcribe"
    assert installed_transcribe.title == "Transcribe"
    assert installed_transcribe.lease_seconds == 300
    assert installed_transcribe.min_seconds == 3.0
    assert installed_transcribe.description.endswith(".")


# -- pictures for split --------------------------------------------------------


def page_png(lines: int = 5, size=(1200, 900), tilt: float = 0.0, mode: str = "RGB",
             dots: bool = False, border: bool = False) -> bytes:
    """A page of ``lines`` lines of dark 'words' (30 px high, 60 px apart)."""
    page = Image.new(mode, size, "white" if mode == "RGB" else 250)
    ink = "black" if mode == "RGB" else 20
    draw = ImageDraw.Draw(page)
    for n in range(lines):
        top = 100 + 90 * n
        for word in range(8 - n % 3):
            left = 120 + 110 * word
            draw.rectangle((left, top, left + 80, top + 30), fill=ink)
            if dots:  # an i's dot: a thin mark just above the line
                draw.rectangle((left + 10, top - 10, left + 14, top - 7), fill=ink)
    if border:  # a scanner's dark edge down the left and along the top
        draw.rectangle((0, 0, 40, size[1]), fill=ink)
        draw.rectangle((0, 0, size[0], 30), fill=ink)
    if tilt:
        page = page.rotate(tilt, fillcolor="white" if mode == "RGB" else 250)
    out = io.BytesIO()
    page.save(out, "PNG")
    return out.getvalue()


def stored_size(media: MemoryMedia, ref: str) -> tuple[int, int]:
    return Image.open(io.BytesIO(media.files[ref])).size


def split_page(transcribe, data: bytes, config: dict, **item) -> tuple[list, MemoryMedia]:
    media = MemoryMedia({PAGE: data})
    loaded = transcribe.item_schema(config).load({"image": PAGE, **item})
    return transcribe.split(loaded, config, media), media


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


# -- split -------------------------------------------------------------------


def test_split_cuts_a_page_into_its_lines(transcribe, config):
    tasks, media = split_page(transcribe, page_png(), config, id="p1")
    assert len(tasks) == 5
    boxes = [task.payload["box"] for task in tasks]
    for n, (task, (x, y, w, h)) in enumerate(zip(tasks, boxes, strict=True)):
        top = 100 + 90 * n
        words = 8 - n % 3
        # the line's ink, with the padding (8 px) around it, and no neighbour
        assert y <= top - 4 and y + h >= top + 31 + 4 and h < 70
        assert x <= 120 - 4 and x + w >= 120 + 110 * (words - 1) + 81 + 4
        assert task.payload == {"image": task.payload["image"], "page": PAGE, "line": n + 1,
                                "box": [x, y, w, h], "size": [1200, 900], "ref": "p1"}
        assert task.gold is None
        assert stored_size(media, task.payload["image"]) == (w, h)
    assert [y for _, y, _, _ in boxes] == sorted(y for _, y, _, _ in boxes)


def test_split_keeps_dots_with_their_line_and_ignores_a_dark_edge(transcribe, config):
    tasks, _ = split_page(transcribe, page_png(dots=True, border=True), config)
    boxes = [task.payload["box"] for task in tasks]
    assert len(boxes) == 5
    assert all(x > 40 for x, _, _, _ in boxes)  # the dark edge is not part of any line
    assert all(y <= 100 + 90 * n - 10 for n, (_, y, _, _) in enumerate(boxes))  # dots inside


def test_split_cuts_lines_whose_strokes_touch(transcribe, config):
    page = Image.open(io.BytesIO(page_png(lines=6)))
    draw = ImageDraw.Draw(page)
    for x in (150, 400, 700):  # descenders reaching down into the next line
        draw.rectangle((x, 120, x + 4, 200), fill="black")
        draw.rectangle((x + 40, 300, x + 44, 380), fill="black")
        draw.rectangle((x + 80, 390, x + 84, 470), fill="black")
    out = io.BytesIO()
    page.save(out, "PNG")
    tasks, _ = split_page(transcribe, out.getvalue(), config)
    boxes = [task.payload["box"] for task in tasks]
    assert len(boxes) == 6
    for n, (_, y, _, h) in enumerate(boxes):
        assert y <= 100 + 90 * n < 100 + 90 * n + 31 <= y + h  # each holds its own line


def test_split_turns_a_tilted_page_upright(transcribe, config):
    tasks, media = split_page(transcribe, page_png(tilt=2.5, mode="L"), config)
    assert len(tasks) == 5
    # upright lines are cut as bands little taller than the writing; left
    # tilted, each would span the 40 px the line climbs across the page
    assert all(task.payload["box"][3] < 62 for task in tasks)
    assert all(stored_size(media, t.payload["image"]) == tuple(t.payload["box"][2:])
               for t in tasks)


def test_config_knobs_change_the_cut(transcribe):
    merged = transcribe.load_config({"merge_gap": 80, "padding": 0})
    tasks, _ = split_page(transcribe, page_png(lines=3), merged)
    assert len(tasks) == 1  # gaps of 60 px are merged: one band
    assert tasks[0].payload["box"][1] == 100  # no padding


def test_a_page_without_lines_is_one_task(transcribe, config):
    blank = io.BytesIO()
    Image.new("RGB", (300, 200), (250, 250, 248)).save(blank, "PNG")
    tasks, media = split_page(transcribe, blank.getvalue(), config)
    assert [task.payload["box"] for task in tasks] == [[0, 0, 300, 200]]
    assert stored_size(media, tasks[0].payload["image"]) == (300, 200)


def test_split_refuses_a_page_of_noise(transcribe, config, monkeypatch):
    monkeypatch.setattr(transcribe_module, "MAX_LINES", 3)
    with pytest.raises(ItemError) as exc:
        split_page(transcribe, page_png(lines=5), config)
    assert "image" in exc.value.fields and "regions" in exc.value.message


def test_split_cuts_the_charitys_regions(transcribe, config):
    regions = [[500, 300, 200, 50], [100, 100, 300, 40], [1100, 800, 500, 500]]
    tasks, media = split_page(transcribe, page_png(), config, regions=regions,
                              gold=["Second line", None, "Corner"])
    assert [t.payload["box"] for t in tasks] == [regions[0], regions[1], [1100, 800, 100, 100]]
    assert [t.gold for t in tasks] == ["Second line", None, "Corner"]
    assert [t.payload["line"] for t in tasks] == [1, 2, 3]
    assert [stored_size(media, t.payload["image"]) for t in tasks] == [
        (200, 50), (300, 40), (100, 100)]


def test_split_refuses_a_region_off_the_page(transcribe, config):
    with pytest.raises(ItemError) as exc:
        split_page(transcribe, page_png(), config, regions=[[0, 0, 10, 10], [1200, 0, 10, 10]])
    assert "Region 2" in exc.value.message and "regions" in exc.value.fields


def test_split_none_makes_one_task_without_media(transcribe):
    config = transcribe.load_config({"split": "none"})
    item = transcribe.item_schema(config).load({"image": PAGE, "id": "l7", "gold": "Dear Sir"})
    assert transcribe.split(item, config) == [
        Microtask({"image": PAGE, "line": 1, "ref": "l7"}, "Dear Sir")]


def test_split_needs_media_to_cut(transcribe, config):
    with pytest.raises(ItemError) as exc:
        transcribe.split({"image": PAGE}, config)
    assert "image" in exc.value.fields


def test_split_refuses_a_corrupt_page(transcribe, config):
    with pytest.raises(ItemError) as exc:
        transcribe.split({"image": PAGE}, config, MemoryMedia({PAGE: b"not a picture"}))
    assert "image" in exc.value.fields


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
    assert unanimous.support == {"answers": 3, "columns": 2, "unanimous": 2, "unclear": 0,
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
    return jinja2.Environment(autoescape=True).from_string(transcribe.template).render(
        config=config)


def test_template_has_the_line_input_mark_and_hooks(transcribe):
    html = render(transcribe, transcribe.load_config({"language": "cy"}))
    assert '<img data-bind-src="image"' in html
    assert "<form data-answer-form" in html and '<button type="submit">' in html
    assert 'name="text"' in html and 'lang="cy"' in html and 'spellcheck="false"' in html
    assert "data-unclear" in html and 'window.bitesizeTaskTypes["transcribe"]' in html
    assert "Type the line, or [unclear] where you cannot read it." in html
    assert "lang=" not in render(transcribe, transcribe.load_config({}))


def test_template_escapes_hostile_instructions(transcribe):
    config = transcribe.load_config({"instructions": "<script>alert(1)</script> & <b>x</b>"})
    html = render(transcribe, config)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;x&lt;/b&gt;" in html
    assert "<script>alert(1)" not in html and "<b>x</b>" not in html
