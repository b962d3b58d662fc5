"""locate: its config, item and answer schemas, offline text and page template."""
import math
from importlib.resources import files

import pytest
from marshmallow import ValidationError

from task_types.locate import locate as installed_locate
from task_types.testing import template_environment

PHOTO = "/media/colony.jpg"
BOXES = {"question": "Mark every penguin"}


def test_entry_point_object_describes_itself():
    assert installed_locate.name == "locate"
    assert installed_locate.title == "Locate"
    assert installed_locate.lease_seconds == 120
    assert installed_locate.min_seconds == 2.0
    assert installed_locate.description.endswith(".")


# -- config ----------------------------------------------------------------


def test_config_is_stripped_and_defaulted(locate):
    assert locate.load_config({"question": " Mark every penguin "}) == {
        "question": "Mark every penguin", "instructions": "", "shape": "box",
        "tile_size": 1024, "overlap": 128, "iou": 0.5, "radius": 20.0, "quorum": 0.5,
        "max_marks": 100,
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"question": None}, "question"),
        ({"question": "  "}, "question"),
        ({"question": "q" * 501}, "question"),
        ({"instructions": "i" * 5001}, "instructions"),
        ({"shape": "circle"}, "shape"),
        ({"tile_size": 255}, "tile_size"),
        ({"tile_size": 4097}, "tile_size"),
        ({"tile_size": 512.5}, "tile_size"),
        ({"tile_size": "1024"}, "tile_size"),
        ({"overlap": -1}, "overlap"),
        ({"tile_size": 512, "overlap": 256}, "overlap"),
        ({"iou": 0.0}, "iou"),
        ({"iou": 1.0}, "iou"),
        ({"iou": math.nan}, "iou"),
        ({"radius": 0}, "radius"),
        ({"radius": math.inf}, "radius"),
        ({"quorum": 0}, "quorum"),
        ({"quorum": 1.5}, "quorum"),
        ({"max_marks": 0}, "max_marks"),
        ({"max_marks": 501}, "max_marks"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_config_names_the_field(locate, change, field):
    raw = {key: value for key, value in {**BOXES, **change}.items() if value is not None}
    with pytest.raises(ValidationError) as exc:
        locate.load_config(raw)
    assert list(exc.value.messages) == [field]


# -- items -----------------------------------------------------------------


@pytest.mark.parametrize(
    "item",
    [
        {"image": PHOTO},
        {"image": "https://example.org/colony.jpg", "id": "colony-7"},
        {"image": PHOTO, "gold": []},
        {"image": PHOTO, "gold": [[10.0, 20.0, 30.0, 60.0], [-2.0, 0.0, 12.0, 9.5]]},
    ],
)
def test_good_items_load_unchanged(locate, boxes, item):
    assert locate.item_schema(boxes).load(item) == item


@pytest.mark.parametrize(
    ("item", "field", "words"),
    [
        ({}, "image", "Missing"),
        ({"image": "javascript:alert(1)"}, "image", "URL"),
        ({"image": PHOTO, "id": "i" * 201}, "id", "200"),
        ({"image": PHOTO, "gold": "10,20,30,40"}, "gold", "list of boxes"),
        ({"image": PHOTO, "gold": [[10, 20, 30]]}, "gold", "Box 1 must be 4 numbers"),
        ({"image": PHOTO, "gold": [[1, 1, 9, 9], [30, 20, 10, 40]]}, "gold", "Box 2"),
        ({"image": PHOTO, "gold": [[10, 20, 10.5, 40]]}, "gold", "at least 1 px"),
        ({"image": PHOTO, "gold": [[10, 20, math.nan, 40]]}, "gold", "finite"),
        ({"image": PHOTO, "gold": [[10, 20, True, 40]]}, "gold", "finite"),
        ({"image": PHOTO, "gold": [[10, 20, "30", 40]]}, "gold", "finite"),
        ({"image": PHOTO, "gold": [[10, 20, 200_000, 40]]}, "gold", "within"),
        ({"image": PHOTO, "gold": None}, "gold", "null"),
        ({"image": PHOTO, "colour": "red"}, "colour", "Unknown"),
    ],
)
def test_bad_item_names_the_field(locate, boxes, item, field, words):
    with pytest.raises(ValidationError) as exc:
        locate.item_schema(boxes).load(item)
    assert words in " ".join(exc.value.messages[field])


def test_point_items_take_point_gold(locate, points):
    schema = locate.item_schema(points)
    assert schema.load({"image": PHOTO, "gold": [[5, 6]]}) == {"image": PHOTO,
                                                              "gold": [[5.0, 6.0]]}
    with pytest.raises(ValidationError) as exc:
        schema.load({"image": PHOTO, "gold": [[5, 6, 7, 8]]})
    assert "Point 1 must be 2 numbers" in exc.value.messages["gold"][0]


# -- answers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "loaded"),
    [
        ({"boxes": []}, {"boxes": []}),
        ({"boxes": [[1, 2, 3, 4]]}, {"boxes": [[1.0, 2.0, 3.0, 4.0]]}),
        ({"boxes": [[-3.5, -1, 40, 50.25]]}, {"boxes": [[-3.5, -1.0, 40.0, 50.25]]}),
    ],
)
def test_good_answers_load(locate, boxes, answer, loaded):
    assert locate.answer_schema(boxes).load(answer) == loaded


@pytest.mark.parametrize(
    ("answer", "field", "words"),
    [
        ({}, "boxes", "Missing"),
        ({"boxes": None}, "boxes", "null"),
        ({"boxes": {"x": 1}}, "boxes", "list of boxes"),
        ({"boxes": [[1, 2, 3, 4]] * 101}, "boxes", "At most 100"),
        ({"boxes": [[1, 2, 3, 4], [1, 2, 3]]}, "boxes", "Box 2 must be 4 numbers"),
        ({"boxes": [[1, 2, math.inf, 4]]}, "boxes", "finite"),
        ({"boxes": [[1, 2, False, 4]]}, "boxes", "finite"),
        ({"boxes": [[1, 2, None, 4]]}, "boxes", "finite"),
        ({"boxes": [[-1001, 2, 3, 4]]}, "boxes", "within"),
        ({"boxes": [[5, 2, 3, 4]]}, "boxes", "x1 < x2"),
        ({"boxes": [[1, 4, 3, 4]]}, "boxes", "y1 < y2"),
        ({"boxes": [], "points": []}, "points", "Unknown"),
        ({"boxes": [], "note": "hi"}, "note", "Unknown"),
    ],
)
def test_bad_answer_names_the_mark(locate, boxes, answer, field, words):
    with pytest.raises(ValidationError) as exc:
        locate.answer_schema(boxes).load(answer)
    assert words in " ".join(exc.value.messages[field])


def test_point_answers_and_the_mark_limit(locate, points):
    schema = locate.answer_schema({**points, "max_marks": 2})
    assert schema.load({"points": [[1, 2], [3.5, 4]]}) == {"points": [[1.0, 2.0], [3.5, 4.0]]}
    for bad in ({"points": [[1, 2]] * 3}, {"points": [[1, 2, 3, 4]]}, {"boxes": []}):
        with pytest.raises(ValidationError):
            schema.load(bad)


# -- offline ---------------------------------------------------------------


def test_offline_text_round_trips(locate):
    offline = locate.offline_config()
    assert offline["shape"] == "box"
    text = locate.value_to_text([[1.5, 2.0, 30.0, 40.0]])
    assert text == "[[1.5,2.0,30.0,40.0]]"
    answer = locate.answer_schema(offline).load(locate.answer_from_text(f" {text} ", offline))
    assert answer == {"boxes": [[1.5, 2.0, 30.0, 40.0]]}
    assert locate.answer_to_text(answer) == text
    assert locate.answer_from_text("[]", offline) == {"boxes": []}
    assert locate.value_to_text(None) == ""


def test_offline_points_need_a_point_config(locate, points):
    assert locate.answer_from_text("[[3, 4]]", points) == {"points": [[3, 4]]}
    assert locate.answer_from_text("[]", points) == {"points": []}
    with pytest.raises(ValueError, match="shape"):
        locate.answer_from_text("[[3, 4]]", locate.offline_config())


@pytest.mark.parametrize("text", ["", "[[1, 2, 3, 4]", "{\"boxes\": []}", "7", "[1, 2, 3, 4]"])
def test_unreadable_text_is_a_value_error(locate, boxes, text):
    with pytest.raises(ValueError):
        locate.answer_from_text(text, boxes)


# -- template --------------------------------------------------------------


def render(locate, config) -> str:
    return template_environment().from_string(locate.template).render(config=config)


def test_template_keeps_the_page_conventions(locate, boxes):
    html = render(locate, boxes)
    assert html.lstrip().startswith('<div class="task task-locate" data-shape="box" '
                                    'data-max-marks="100">')
    assert '<img data-bind-src="image"' in html
    assert "<form data-answer-form" in html and '<button type="submit"' in html
    assert "Drag a box around each one." in html
    script = files("task_types.templates").joinpath("locate.js").read_text()
    assert "window.bitesizeTaskTypes.locate" in script
    assert "innerHTML" not in html + script
    assert "<script" not in html and "<style" not in html  # the site's CSP runs neither


def test_template_for_points_says_tap(locate, points):
    html = render(locate, points)
    assert 'data-shape="point"' in html and "Tap each one." in html


def test_template_escapes_hostile_config(locate):
    config = locate.load_config({"question": "<script>alert(1)</script>",
                                 "instructions": '<img src=x onerror="alert(1)">'})
    html = render(locate, config)
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_offline_reading_leaves_out_marks_that_mark_nothing(locate, boxes, points):
    """Only the offline reading is lenient: the live schema still refuses the box."""
    read = locate.answer_from_text("[[10, 10, 50, 50], [5, 5, 9, 5], [], [3, 3, 3.5, 9]]", boxes)
    assert read == {"boxes": [[10, 10, 50, 50]]}
    assert read.left_out == ("Box 2 has no height: left out", "Box 3 is empty: left out",
                             "Box 4 has no width: left out")
    with pytest.raises(ValidationError, match="at least 1 px apart"):
        locate.answer_schema(boxes).load({"boxes": [[10, 10, 50, 50], [5, 5, 9, 5]]})
    tapped = locate.answer_from_text("[[3, 4], []]", points)
    assert tapped == {"points": [[3, 4]]} and tapped.left_out == ("Point 2 is empty: left out",)


@pytest.mark.parametrize("text", ["[[30, 30, 30, 80]]", "[[1, 1, 1, 1], []]",
                                  "[[50, 50, 10, 10], [0, 0, 0, 9]]"])
def test_an_answer_with_no_usable_box_is_still_refused_offline(locate, boxes, text):
    """Nothing but degenerate marks is not "nothing here"; an upside-down box is a
    malformed one, not a degenerate one: the schema refuses both."""
    with pytest.raises(ValidationError):
        locate.answer_schema(boxes).load(locate.answer_from_text(text, boxes))
