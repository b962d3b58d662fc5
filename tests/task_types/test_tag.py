from html.parser import HTMLParser
from importlib.resources import files

import pytest
from marshmallow import ValidationError

from task_types import Aggregate, ItemError, Microtask, TaskResult
from task_types.tag import TagType, singular
from task_types.tag import tag as installed_tag
from task_types.testing import template_environment

URL = "https://example.org/trap/0001.jpg"
GOOD_CONFIG = {"question": "What is in the photo?", "tags": ["Deer", "Fox"]}


@pytest.fixture
def tag() -> TagType:
    return TagType()


@pytest.fixture
def config(tag) -> dict:
    """Vocabulary Deer, Fox, Badger, Bird; free tags on; "reynard" means Fox."""
    return tag.load_config({
        "question": "What is in the photo?",
        "tags": ["Deer", "Fox", "Badger", "Bird"],
        "free_tags": True,
        "synonyms": {"Reynard": "Fox", "Kitties": "cat"},
    })


@pytest.fixture
def closed(tag) -> dict:
    """The same vocabulary without free tags."""
    return tag.load_config({"question": "Which?", "tags": ["Deer", "Fox", "Badger", "Bird"]})


def test_entry_point_object_describes_itself():
    assert installed_tag.name == "tag"
    assert installed_tag.title == "Tag"
    assert installed_tag.description.endswith(".")
    assert installed_tag.labels(GOOD_CONFIG) is None  # not a single-label type


# -- config ----------------------------------------------------------------


def test_config_is_normalised_and_defaulted(tag):
    loaded = tag.load_config({"question": " Which? ", "tags": [" Red   fox ", "Deer"],
                              "synonyms": {" Vixens ": "red fox"}})
    assert loaded == {
        "question": "Which?", "instructions": "", "tags": ["Red fox", "Deer"],
        "free_tags": False, "synonyms": {"vixen": "red fox"}, "threshold": 0.5, "max_tags": 20,
    }


def test_config_may_have_no_vocabulary_with_free_tags(tag):
    assert tag.load_config({"question": "Tags?", "free_tags": True})["tags"] == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"question": None}, "question"),
        ({"question": "  "}, "question"),
        ({"question": "q" * 501}, "question"),
        ({"tags": "Deer;Fox"}, "tags"),
        ({"tags": []}, "tags"),
        ({"tags": None}, "tags"),
        ({"tags": [f"tag {i}" for i in range(201)]}, "tags"),
        ({"tags": ["Deer", " "]}, "tags"),
        ({"tags": ["Deer", "x" * 51]}, "tags"),
        ({"tags": ["Deer", "deer "]}, "tags"),
        ({"tags": ["Red fox", "red   FOX"]}, "tags"),
        ({"tags": ["Deer", "Fox;Badger"]}, "tags"),
        ({"tags": ["Deer", "Fox\x00"]}, "tags"),
        ({"tags": ["Deer", "Fox\u202e"]}, "tags"),
        ({"free_tags": "perhaps"}, "free_tags"),
        ({"threshold": 0}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"threshold": float("nan")}, "threshold"),
        ({"max_tags": 0}, "max_tags"),
        ({"max_tags": 201}, "max_tags"),
        ({"max_tags": "5"}, "max_tags"),
        ({"synonyms": ["reynard", "Fox"]}, "synonyms"),
        ({"synonyms": {"reynard": "Wolf"}}, "synonyms"),
        ({"synonyms": {"Deer": "Fox"}}, "synonyms"),
        ({"synonyms": {"deers": "Fox"}}, "synonyms"),
        ({"synonyms": {" ": "Fox"}}, "synonyms"),
        ({"synonyms": {"reynard": "fox;deer"}}, "synonyms"),
        ({"synonyms": {f"word {i}": "Fox" for i in range(1001)}}, "synonyms"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_config_names_the_field(tag, change, field):
    raw = {key: value for key, value in {**GOOD_CONFIG, **change}.items() if value is not None}
    with pytest.raises(ValidationError) as exc:
        tag.load_config(raw)
    assert list(exc.value.messages) == [field]


@pytest.mark.parametrize(
    "synonyms",
    [
        {"kitty": "cat", "cat": "feline"},  # a chain: kitty would need two steps
        {"kitties": "cat", "kitty": "dog"},  # one variant, two meanings
        {"reynard": "x" * 51},  # longer than a free tag may be
    ],
    ids=["chain", "two-meanings", "too-long"],
)
def test_synonyms_must_apply_in_one_step_to_a_possible_tag(tag, synonyms):
    with pytest.raises(ValidationError) as exc:
        tag.load_config({**GOOD_CONFIG, "free_tags": True, "synonyms": synonyms})
    assert list(exc.value.messages) == ["synonyms"]


# -- normal form -----------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("foxes", "fox"), ("penguins", "penguin"), ("berries", "berry"), ("churches", "church"),
        ("bushes", "bush"), ("glasses", "glass"), ("trees", "tree"), ("pies", "pie"),
        ("glass", "glass"), ("bus", "bus"), ("cactus", "cactus"), ("ibis", "ibis"),
        ("species", "species"), ("gas", "gas"), ("deer", "deer"), ("", ""),
    ],
)
def test_singular_handles_simple_plurals_only(word, expected):
    assert singular(word) == expected


# -- items -----------------------------------------------------------------


@pytest.mark.parametrize(
    "item",
    [
        {"image": URL},
        {"image": "/media/projects/3/0001.jpg", "thumb": "/media/projects/3/0001.thumb.jpg"},
        {"text": "A fox crossed the road."},
        {"image": URL, "id": "trap-7/0001", "gold": ["Fox", "Deer"]},
        {"image": URL, "gold": []},
    ],
)
def test_good_items_load_unchanged(tag, config, item):
    assert tag.item_schema(config).load(item) == item


def test_item_gold_is_normalised_like_an_answer(tag, config):
    item = tag.item_schema(config).load({"image": URL, "gold": ["foxes", " DEER", "Grass", "fox"]})
    assert item["gold"] == ["Fox", "Deer", "grass"]


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"image": "javascript:alert(1)"}, "image"),
        ({"image": URL, "text": "and a text"}, "image"),
        ({}, "image"),
        ({"text": "hi", "id": "i" * 201}, "id"),
        ({"text": "hi", "gold": "Fox"}, "gold"),
        ({"text": "hi", "gold": ["Fox", 3]}, "gold"),
        ({"text": "hi", "gold": ["Fox;Deer"]}, "gold"),
        ({"text": "hi", "gold": [f"tag {i}" for i in range(21)]}, "gold"),
        ({"text": "hi", "colour": "red"}, "colour"),
    ],
)
def test_bad_item_names_the_field(tag, config, item, field):
    with pytest.raises(ValidationError) as exc:
        tag.item_schema(config).load(item)
    assert field in exc.value.messages


def test_item_gold_must_be_in_a_closed_vocabulary(tag, closed):
    with pytest.raises(ValidationError) as exc:
        tag.item_schema(closed).load({"image": URL, "gold": ["Wolf"]})
    assert list(exc.value.messages) == ["gold"]


def test_split_makes_one_task_per_item(tag, config):
    item = {"image": URL, "thumb": "/media/t.jpg", "id": "0001", "gold": ["Deer"]}
    assert tag.split(item, config) == [
        Microtask({"image": URL, "thumb": "/media/t.jpg"}, ["Deer"])
    ]


def test_split_refuses_an_item_without_media(tag, config):
    with pytest.raises(ItemError) as exc:
        tag.split({"id": "0001"}, config)
    assert "image" in exc.value.fields


# -- answers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ([" deer ", "FOX"], ["Deer", "Fox"]),
        (["Foxes", "birds"], ["Fox", "Bird"]),
        (["reynard", "Reynards"], ["Fox"]),
        (["Penguins", "berries", "Glass", "bus"], ["penguin", "berry", "glass", "bus"]),
        (["Red   Foxes", "kitty"], ["red fox", "cat"]),
        (["Deer", "deer", "DEER "], ["Deer"]),
        ([], []),
    ],
    ids=["vocabulary", "plural-of-vocabulary", "synonym", "free", "collapsed", "repeats", "none"],
)
def test_answer_is_normalised(tag, config, tags, expected):
    assert tag.answer_schema(config).load({"tags": tags}) == {"tags": expected}


@pytest.mark.parametrize(
    "answer",
    [
        {},
        {"tags": "Deer"},
        {"tags": [3]},
        {"tags": [""]},
        {"tags": ["  "]},
        {"tags": ["x" * 51]},
        {"tags": ["x" * 201]},
        {"tags": ["fox;deer"]},
        {"tags": ["fox\x07"]},
        {"tags": [f"tag {i}" for i in range(21)]},
        {"tags": ["Deer"], "note": "hi"},
    ],
)
def test_bad_answer_is_refused(tag, config, answer):
    with pytest.raises(ValidationError) as exc:
        tag.answer_schema(config).load(answer)
    assert set(exc.value.messages) <= {"tags", "note"} and exc.value.messages


def test_a_character_newer_than_pythons_unicode_is_taken_but_no_noncharacter(tag, config):
    """A browser may know a newer Unicode than the server: U+1FABF (a goose,
    Unicode 15) is unassigned in Python 3.11's table, and refusing it refused
    the whole answer after the page had moved on. A noncharacter, a surrogate,
    private use and format characters stay refused, whatever the version."""
    goose = "\U0001FABF"
    assert tag.answer_schema(config).load({"tags": [f"{goose} goose"]}) == {
        "tags": [f"{goose} goose"]}
    for hidden in ("\ufdd0", "\uffff", "\U0001fffe", "\ud800", "\ue000", "\u200b"):
        with pytest.raises(ValidationError):
            tag.answer_schema(config).load({"tags": [f"fox{hidden}"]})


def test_repeats_do_not_count_against_max_tags(tag, config):
    answer = {"tags": ["Deer"] * 30}
    assert tag.answer_schema(config).load(answer) == {"tags": ["Deer"]}


def test_closed_vocabulary_refuses_free_tags_but_takes_synonyms_to_tags(tag):
    config = tag.load_config({"question": "Which?", "tags": ["Fox"], "synonyms": {"vixen": "fox"}})
    schema = tag.answer_schema(config)
    assert schema.load({"tags": ["Vixens"]}) == {"tags": ["Fox"]}
    with pytest.raises(ValidationError) as exc:
        schema.load({"tags": ["Wolf"]})
    assert "Wolf" in exc.value.messages["tags"][0]


def test_an_exact_vocabulary_tag_wins_over_its_plural_form(tag):
    config = tag.load_config({"question": "Which?", "tags": ["Glass", "Glasses"]})
    schema = tag.answer_schema(config)
    assert schema.load({"tags": ["glasses", "GLASS"]}) == {"tags": ["Glasses", "Glass"]}


# -- aggregate, combine, score ---------------------------------------------


def tags_of(*answers: list[str]) -> list[dict]:
    return [{"tags": list(answer)} for answer in answers]


@pytest.mark.parametrize(
    ("answers", "weights", "value", "confidence", "support"),
    [
        (tags_of(["Deer"], ["Deer", "Fox"], ["Deer"]), None,
         ["Deer"], 2 / 3, {"Deer": 1.0, "Fox": 1 / 3}),
        (tags_of(["Deer"], ["Fox"], ["Fox"]), [1.0, 0.2, 0.2],
         ["Deer"], 1 / 1.4, {"Deer": 1 / 1.4, "Fox": 0.4 / 1.4}),
        (tags_of(["Fox", "Deer"], ["Fox", "Deer"], []), None,
         ["Deer", "Fox"], 2 / 3, {"Deer": 2 / 3, "Fox": 2 / 3}),
        (tags_of(["Fox"], ["Deer"]), None, ["Deer", "Fox"], 0.5, {"Deer": 0.5, "Fox": 0.5}),
        (tags_of(["zebra"], ["aardvark"], ["Bird"], ["Bird", "aardvark", "zebra"]), None,
         ["Bird", "aardvark", "zebra"], 0.5, {"Bird": 0.5, "aardvark": 0.5, "zebra": 0.5}),
        (tags_of([], [], ["grass"]), None, [], 2 / 3, {"grass": 1 / 3}),
        (tags_of([], []), None, [], 1.0, {}),
        (tags_of(["Deer"]), [0.0], None, 0.0, {}),
        ([], None, None, 0.0, {}),
    ],
    ids=["majority", "weights", "both", "tie-vocabulary-order", "tie-free-by-name",
         "none-wins", "all-none", "zero", "empty"],
)
def test_aggregate_votes_per_tag(tag, config, answers, weights, value, confidence, support):
    result = tag.aggregate(answers, weights, config)
    assert result.value == value
    assert result.confidence == pytest.approx(confidence)
    assert result.support == pytest.approx(support)


def test_support_is_ranked_like_the_value(tag, config):
    answers = tags_of(["grass", "Fox"], ["Badger", "Fox"], ["Fox", "Deer"])
    assert list(tag.aggregate(answers, None, config).support) == ["Fox", "Deer", "Badger", "grass"]


def test_threshold_comes_from_the_config(tag, config):
    answers = tags_of(["Deer", "Fox"], ["Deer"], ["Deer"], ["Deer"])
    assert tag.aggregate(answers, None, config).value == ["Deer"]
    loose = {**config, "threshold": 0.25}
    result = tag.aggregate(answers, None, loose)
    assert result.value == ["Deer", "Fox"]
    assert result.confidence == pytest.approx(0.25)  # Fox is in on a quarter of the weight


def test_share_on_the_threshold_passes_despite_float_sums(tag, config):
    answers = tags_of(["Fox"], ["Fox"], ["Deer"], ["Deer"])
    assert tag.aggregate(answers, [0.1, 0.7, 0.2, 0.6], config).value == ["Deer", "Fox"]


def test_tags_the_config_no_longer_allows_are_ignored(tag, closed):
    answers = tags_of(["Deer", "Wolf"], ["Deer"])
    assert tag.aggregate(answers, None, closed) == Aggregate(["Deer"], 1.0, {"Deer": 1.0})


@pytest.mark.parametrize("weights", [[1.0], [1.0, -1.0], [1.0, float("nan")]],
                         ids=["misaligned", "negative", "nan"])
def test_aggregate_refuses_bad_weights(tag, config, weights):
    with pytest.raises(ValueError):
        tag.aggregate(tags_of(["Deer"], ["Fox"]), weights, config)


def test_combine_takes_the_single_result(tag):
    assert tag.combine([TaskResult({}, ["Fox"], 0.8)], {"image": URL}) == Aggregate(["Fox"], 0.8)


@pytest.mark.parametrize(
    ("given", "gold", "expected"),
    [
        (["Deer", "Fox"], ["Deer", "Fox"], 1.0),
        (["Deer"], ["Deer", "Fox"], 0.5),
        (["Deer", "Badger"], ["Deer", "Fox"], 1 / 3),
        (["Badger"], ["Deer"], 0.0),
        ([], [], 1.0),
        ([], ["Deer"], 0.0),
        (["foxes"], ["Fox"], 1.0),
        (["Deer"], None, 0.0),
        (["Deer"], "Deer", 0.0),
        (["Deer"], [None], 0.0),
        (["Deer"], {"tags": ["Deer"]}, 0.0),
    ],
)
def test_score_is_jaccard_of_the_tag_sets(tag, given, gold, expected):
    assert tag.score({"tags": given}, gold) == pytest.approx(expected)


def test_score_of_a_malformed_answer_is_zero(tag):
    assert tag.score({"tags": "Deer"}, ["Deer"]) == 0.0
    assert tag.score({}, ["Deer"]) == 0.0


# -- offline ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tags"),
    [("a; b;c", ["a", "b", "c"]), ("", []), ("  ", []), ("fox;;", ["fox"]),
     ("Red fox", ["Red fox"])],
)
def test_answer_from_text_splits_at_semicolons(tag, text, tags):
    assert tag.answer_from_text(text, tag.offline_config()) == {"tags": tags}


def test_offline_config_takes_any_tag(tag):
    offline = tag.offline_config()
    assert offline["tags"] == [] and offline["free_tags"] is True
    loaded = tag.answer_schema(offline).load({"tags": ["Foxes", "grass"]})
    assert loaded == {"tags": ["fox", "grass"]}


def test_offline_text_round_trips(tag, config):
    value = tag.aggregate(tags_of(["Deer", "red fox"], ["Deer", "red fox"]), None, config).value
    text = tag.value_to_text(value)
    assert text == "Deer;red fox"
    assert tag.answer_schema(config).load(tag.answer_from_text(text, config)) == {"tags": value}
    assert tag.value_to_text([]) == "" and tag.value_to_text(None) == ""


@pytest.mark.parametrize(
    ("tags", "text"),
    [(["Deer", "red fox"], "deer;red fox"), (["Glasses", "Glass"], "glass"), ([], "")],
)
def test_answer_to_text_reads_back_unchanged_offline(tag, tags, text):
    offline = tag.offline_config()
    assert tag.answer_to_text({"tags": tags}) == text
    again = tag.answer_schema(offline).load(tag.answer_from_text(text, offline))
    assert tag.answer_to_text(again) == text


# -- template --------------------------------------------------------------


class Elements(HTMLParser):
    """Start tags with their attributes, decoded as a browser would."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))

    def all(self, name: str) -> list[dict]:
        return [attrs for tag, attrs in self.found if tag == name]


def render(tag, config) -> str:
    return template_environment().from_string(tag.template).render(config=config)


def parse(html: str) -> Elements:
    parser = Elements()
    parser.feed(html)
    return parser


def test_template_keeps_the_page_conventions(tag, config):
    html = render(tag, config)
    assert html.lstrip().startswith('<div class="task task-tag" data-max-tags="20">')
    assert '<img data-bind-src="image" alt="The photo to tag">' in html
    assert '<p data-bind-text="text"></p>' in html
    assert "<form data-answer-form" in html
    script = files("task_types.templates").joinpath("tag.js").read_text()
    assert 'window.bitesizeTaskTypes["tag"]' in script
    assert "<script" not in html and "<style" not in html  # the site's CSP runs neither
    buttons = parse(html).all("button")
    assert [b["type"] for b in buttons] == ["button"] * 4 + ["submit"]
    assert len(parse(html).all("input")) == 1  # the free-tag field


def test_template_escapes_tags_and_numbers_the_first_nine(tag):
    nasty = ["It's", 'say "hi"', "<script>alert(1)</script>", "a & b"]
    tags = nasty + [f"tag {i}" for i in range(6)]
    config = tag.load_config({"question": "<b>Which?</b>", "tags": tags,
                              "instructions": "<img src=x onerror=alert(1)>"})
    html = render(tag, config)
    toggles = [b for b in parse(html).all("button") if "data-tag" in b]
    assert [b["data-tag"] for b in toggles] == tags
    assert all(b["aria-pressed"] == "false" and b["type"] == "button" for b in toggles)
    assert not any("data-answer" in b or "data-key" in b for b in toggles)
    assert [f"<kbd>{n}</kbd>" in html for n in (1, 9)] == [True, True]
    assert "<kbd>10</kbd>" not in html
    assert "<script>alert" not in html and "<b>" not in html and "<img src=x" not in html
    assert parse(html).all("input") == []  # no free-tag field when free tags are off


def test_template_without_vocabulary_shows_only_the_free_field(tag):
    html = render(tag, tag.offline_config())
    elements = parse(html)
    assert [b["type"] for b in elements.all("button")] == ["submit"]
    assert elements.all("input")[0]["maxlength"] == "50"
