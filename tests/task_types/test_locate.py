import io
import json
import math

import jinja2
import numpy as np
import pytest
from marshmallow import ValidationError
from PIL import Image

from task_types import ItemError, TaskResult
from task_types.geometry import Likeness, cluster, weighted_median
from task_types.locate import LocateType
from task_types.locate import locate as installed_locate
from task_types.testing import MemoryMedia
from task_types.tiling import marks_in_tile, starts, tile_grid

PHOTO = "/media/colony.jpg"
BOXES = {"question": "Mark every penguin"}
POINTS = {"question": "Tap every penguin", "shape": "point", "radius": 10}


@pytest.fixture
def locate() -> LocateType:
    return LocateType()


@pytest.fixture
def boxes(locate) -> dict:
    return locate.load_config(BOXES)


@pytest.fixture
def points(locate) -> dict:
    return locate.load_config(POINTS)


def jpeg(width: int, height: int, orientation: int | None = None) -> bytes:
    """A smooth gradient (red across, green down), so a tile's colour says where
    it was cut from."""
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    pixels = np.stack([x, y, np.full_like(x, 128)], axis=2).astype(np.uint8)
    out = io.BytesIO()
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    Image.fromarray(pixels).save(out, "JPEG", quality=95, exif=exif)
    return out.getvalue()


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


# -- split -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "size", "overlap", "expected"),
    [
        (800, 1024, 128, [0]),
        (1024, 1024, 128, [0]),
        (1025, 1024, 128, [0, 1]),
        (1000, 256, 32, [0, 186, 372, 558, 744]),
        (6000, 512, 128, None),
    ],
)
def test_tiles_overlap_enough_and_end_flush(length, size, overlap, expected):
    where = starts(length, size, overlap)
    if expected is not None:
        assert where == expected
    assert where[0] == 0 and where[-1] + size >= length and where[-1] <= max(length - size, 0)
    assert all(b - a <= size - overlap for a, b in zip(where, where[1:], strict=False))
    assert len(where) == 1 or len(where) - 1 < (length - overlap) / (size - overlap)


def test_tile_grid_goes_row_by_row_with_whole_tiles():
    grid = tile_grid(1000, 300, 256, 32)
    assert grid[:2] == [(0, 0, 256, 256), (186, 0, 256, 256)]
    assert grid[-1] == (744, 44, 256, 256)
    assert len(grid) == 10
    assert tile_grid(200, 100, 256, 32) == [(0, 0, 200, 100)]


def test_split_needs_media(locate, boxes):
    with pytest.raises(ItemError) as exc:
        locate.split({"image": PHOTO}, boxes)
    assert "image" in exc.value.fields


@pytest.mark.parametrize("data", [b"not a picture", jpeg(64, 64)[:200]],
                         ids=["not-image", "truncated"])
def test_split_refuses_a_bad_picture(locate, boxes, data):
    with pytest.raises(ItemError) as exc:
        locate.split({"image": PHOTO}, boxes, MemoryMedia({PHOTO: data}))
    assert "image" in exc.value.fields


def test_split_refuses_a_missing_picture(locate, boxes):
    with pytest.raises(ItemError):
        locate.split({"image": PHOTO}, boxes, MemoryMedia())


def test_a_photo_that_fits_one_tile_is_shown_as_uploaded(locate, boxes):
    media = MemoryMedia({PHOTO: jpeg(640, 480)})
    item = {"image": PHOTO, "id": "colony-7", "gold": [[10.0, 20.0, 30.0, 60.0]]}
    (task,) = locate.split(item, boxes, media)
    assert task.payload == {"image": PHOTO, "tile": [0, 0, 640, 480], "size": [640, 480],
                            "ref": "colony-7"}
    assert task.gold == [[10.0, 20.0, 30.0, 60.0]]
    assert list(media.files) == [PHOTO]  # nothing re-encoded or stored


def test_split_cuts_overlapping_tiles_and_clips_gold(locate):
    config = locate.load_config({**BOXES, "tile_size": 256, "overlap": 32})
    media = MemoryMedia({PHOTO: jpeg(1000, 300)})
    gold = [[200.0, 100.0, 240.0, 160.0],  # inside tiles 0 and 1 (x 186..442), whole
            [420.0, 10.0, 450.0, 40.0]]  # across x = 442, where tile 1 ends: 22 of 30 px in it
    tasks = locate.split({"image": PHOTO, "gold": gold}, config, media)
    assert [task.payload["tile"] for task in tasks] == [list(t) for t in tile_grid(1000, 300,
                                                                                   256, 32)]
    for task in tasks:
        json.dumps(task.payload)
        x, y, w, h = task.payload["tile"]
        assert task.payload["size"] == [1000, 300]
        with Image.open(io.BytesIO(media.read(task.payload["image"]))) as tile:
            assert tile.format == "JPEG" and tile.size == (w, h)
            red, green, _ = tile.getpixel((w // 2, h // 2))
        assert red == pytest.approx(255 * (x + w / 2) / 999, abs=4)  # cut from its place
        assert green == pytest.approx(255 * (y + h / 2) / 299, abs=4)
    assert tasks[0].gold == [[200.0, 100.0, 240.0, 160.0]]
    assert tasks[1].gold == [[14.0, 100.0, 54.0, 160.0], [234.0, 10.0, 256.0, 40.0]]
    assert tasks[2].gold == [[48.0, 10.0, 78.0, 40.0]]
    assert tasks[6].gold == [[14.0, 56.0, 54.0, 116.0]]  # the second is above this row
    small = locate.split({"image": PHOTO, "gold": [[430.0, 10.0, 460.0, 40.0]]}, config, media)
    assert small[1].gold == []  # 12 of 30 px: most of the box is outside tile 1


def test_split_cuts_the_upright_photo(locate):
    """A camera's EXIF rotation is applied: tiles and sizes are as people see it."""
    config = locate.load_config({**BOXES, "tile_size": 256, "overlap": 0})
    tasks = locate.split({"image": PHOTO}, config, MemoryMedia({PHOTO: jpeg(600, 300, 6)}))
    assert tasks[0].payload["size"] == [300, 600]
    assert [task.payload["tile"][:2] for task in tasks] == [[0, 0], [44, 0], [0, 172],
                                                            [44, 172], [0, 344], [44, 344]]


def test_point_tasks_carry_the_radius_and_point_gold(locate, points):
    config = {**points, "tile_size": 256, "overlap": 32}
    tasks = locate.split({"image": PHOTO, "gold": [[100.0, 100.0], [250.0, 20.0]]}, config,
                         MemoryMedia({PHOTO: jpeg(480, 256)}))
    assert [task.payload["radius"] for task in tasks] == [10.0, 10.0]
    assert [task.gold for task in tasks] == [[[100.0, 100.0], [250.0, 20.0]], [[26.0, 20.0]]]


def test_marks_in_tile_keep_what_the_tile_shows():
    tile = (100, 100, 200, 200)
    assert marks_in_tile([[150, 150], [99, 150], [300, 150], [299.5, 299.5]], tile) == [
        [50, 50], [199.5, 199.5]]
    assert marks_in_tile([[90, 120, 110, 140], [80, 120, 110, 140], [290, 290, 400, 400]],
                         tile) == [[0, 20, 10, 40]]


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


# -- aggregate -------------------------------------------------------------


def answers_of(*marks: list) -> list[dict]:
    return [{"boxes": list(m)} for m in marks]


PENGUIN = [10.0, 10.0, 50.0, 90.0]
NEAR = [12.0, 8.0, 52.0, 88.0]
ROCK = [200.0, 200.0, 240.0, 230.0]


def test_a_majority_keeps_a_box_and_drops_a_lone_one(locate, boxes):
    result = locate.aggregate(answers_of([PENGUIN], [NEAR, ROCK], [PENGUIN]), None, boxes)
    assert result.value == [[10.0, 10.0, 50.0, 90.0]]
    assert result.confidence == pytest.approx(2 / 3)  # the rock: 1 of 3 saw it
    assert result.support == {"answers": 3, "clusters": 2, "marks": [
        {"box": [10.0, 10.0, 50.0, 90.0], "share": 1.0, "kept": True},
        {"box": ROCK, "share": pytest.approx(1 / 3), "kept": False}]}


def test_weights_decide_which_boxes_stand(locate, boxes):
    answers = answers_of([PENGUIN, ROCK], [], [])
    assert locate.aggregate(answers, None, boxes).value == []
    trusted = locate.aggregate(answers, [0.9, 0.2, 0.2], boxes)
    assert trusted.value == [PENGUIN, ROCK]
    assert trusted.confidence == pytest.approx(0.9 / 1.3)


def test_the_box_is_the_weighted_median(locate, boxes):
    answers = answers_of([[10, 10, 50, 90]], [[14, 12, 54, 94]], [[11, 9, 49, 91]])
    assert locate.aggregate(answers, None, boxes).value == [[11.0, 10.0, 50.0, 91.0]]
    assert locate.aggregate(answers, [0.1, 0.8, 0.1], boxes).value == [[14.0, 12.0, 54.0, 94.0]]
    two = locate.aggregate(answers[:2], None, boxes)
    assert two.value == [[12.0, 11.0, 52.0, 92.0]]  # halfway between two


def test_one_volunteer_counts_once_per_thing(locate, boxes):
    """Two boxes of one volunteer on one penguin are not two votes for it."""
    result = locate.aggregate(answers_of([PENGUIN, NEAR], [], []), None, boxes)
    assert result.value == []
    assert [mark["share"] for mark in result.support["marks"]] == pytest.approx([1 / 3, 1 / 3])


def test_quorum_is_a_share_of_the_weight(locate, boxes):
    answers = answers_of([PENGUIN], [NEAR], [], [])
    assert locate.aggregate(answers, None, boxes).value == [[11.0, 9.0, 51.0, 89.0]]
    strict = {**boxes, "quorum": 0.75}
    assert locate.aggregate(answers, None, strict).value == []


def test_iou_threshold_decides_what_is_one_thing(locate, boxes):
    shifted = [30.0, 10.0, 70.0, 90.0]  # IoU 1/3 with PENGUIN
    answers = answers_of([PENGUIN], [shifted])
    assert len(locate.aggregate(answers, None, boxes).value) == 2
    assert len(locate.aggregate(answers, None, {**boxes, "iou": 0.3}).value) == 1


def test_nothing_everywhere_is_a_sure_empty_list(locate, boxes):
    result = locate.aggregate(answers_of([], [], []), None, boxes)
    assert (result.value, result.confidence) == ([], 1.0)


@pytest.mark.parametrize(
    ("answers", "weights"),
    [([], None), (answers_of([PENGUIN]), [0.0]), ([{"points": [[1, 2]]}], None)],
    ids=["none", "zero-weight", "other-shape"],
)
def test_no_weight_means_no_result(locate, boxes, answers, weights):
    result = locate.aggregate(answers, weights, boxes)
    assert (result.value, result.confidence) == (None, 0.0)


@pytest.mark.parametrize("weights", [[1.0], [1.0, -1.0], [1.0, math.nan]],
                         ids=["misaligned", "negative", "nan"])
def test_aggregate_refuses_bad_weights(locate, boxes, weights):
    with pytest.raises(ValueError):
        locate.aggregate(answers_of([PENGUIN], [NEAR]), weights, boxes)


def test_aggregate_does_not_depend_on_answer_order(locate, boxes):
    marks = [[PENGUIN, ROCK], [NEAR], [ROCK, [300, 10, 320, 40]], [PENGUIN, ROCK]]
    results = {json.dumps(locate.aggregate(answers_of(*order), None, boxes).value)
               for order in (marks, marks[::-1], marks[1:] + marks[:1])}
    assert results == {json.dumps([PENGUIN, ROCK])}


def test_points_cluster_within_the_radius(locate, points):
    answers = [{"points": [[100, 100], [300, 300]]}, {"points": [[104, 97]]},
               {"points": [[130, 100]]}]
    result = locate.aggregate(answers, None, points)
    assert result.value == [[102.0, 98.5]]
    assert result.support["marks"][0] == {"point": [102.0, 98.5], "share": pytest.approx(2 / 3),
                                          "kept": True}
    assert locate.aggregate(answers, None, {**points, "radius": 40}).value == [[104.0, 100.0]]


def test_clusters_are_average_linked_not_chained():
    """A chain of boxes each like the next is not one thing when its ends differ."""
    chain = np.array([[0, 0, 100, 100], [30, 0, 130, 100], [60, 0, 160, 100]], dtype=float)
    assert cluster(chain, [0, 1, 2], Likeness(iou=0.5)) == [[0, 1], [2]]


def test_weighted_median_splits_the_weight():
    values = np.array([1.0, 5.0, 2.0])
    assert weighted_median(values, np.array([1.0, 1.0, 1.0])) == 2.0
    assert weighted_median(values, np.array([1.0, 3.0, 1.0])) == 5.0
    assert weighted_median(values[:2], np.array([2.0, 2.0])) == 3.0
    assert weighted_median(values, np.array([1.0, 1.0, 0.0])) == 3.0


# -- combine ---------------------------------------------------------------


def part(tile, value, confidence=0.9, size=(1000, 300)) -> TaskResult:
    return TaskResult({"image": PHOTO, "tile": list(tile), "size": list(size)}, value,
                      confidence)


LEFT, RIGHT = (0, 0, 256, 256), (186, 0, 256, 256)


def test_combine_moves_marks_to_photo_pixels_and_merges_overlap_doubles(locate):
    results = [
        part(LEFT, [[200.0, 100.0, 240.0, 160.0], [10.0, 10.0, 30.0, 30.0]], 0.9),
        part(RIGHT, [[15.0, 101.0, 55.0, 161.0], [100.0, 100.0, 140.0, 140.0]], 0.7),
    ]
    combined = locate.combine(results, {"image": PHOTO})
    assert combined.value == [[10.0, 10.0, 30.0, 30.0], [200.5, 100.5, 240.5, 160.5],
                              [286.0, 100.0, 326.0, 140.0]]
    assert combined.confidence == 0.7  # as sure as its least sure tile
    assert combined.support == {"tiles": 2, "unfinished": 0, "marks": 4}


def test_combine_rebuilds_a_box_cut_by_a_tile_edge(locate):
    """A penguin across the right edge of the left tile: the left tile's box stops
    at its edge, the right tile saw the penguin whole; the right side comes
    from the tile that saw it, the left side from both."""
    results = [part(LEFT, [[220.0, 50.0, 256.0, 120.0]]),
               part(RIGHT, [[34.0, 52.0, 84.0, 118.0]])]
    assert locate.combine(results, {}).value == [[220.0, 51.0, 270.0, 119.0]]


def test_combine_joins_a_thing_wider_than_the_overlap(locate):
    results = [part(LEFT, [[150.0, 50.0, 256.0, 120.0]]),
               part(RIGHT, [[0.0, 50.0, 120.0, 120.0]])]
    assert locate.combine(results, {}).value == [[150.0, 50.0, 306.0, 120.0]]


def test_combine_clips_to_the_photo_and_keeps_tiles_apart(locate):
    results = [part((0, 0, 400, 300), [[-5.0, -3.0, 20.0, 20.0], [-20.0, 5.0, -4.0, 30.0]],
                    size=(400, 300))]
    assert locate.combine(results, {}).value == [[0.0, 0.0, 20.0, 20.0]]
    far = [part(LEFT, [[10.0, 10.0, 50.0, 50.0]]), part((744, 44, 256, 256),
                                                       [[10.0, 10.0, 50.0, 50.0]])]
    assert len(locate.combine(far, {}).value) == 2


def test_combine_merges_points_within_the_tiles_radius(locate):
    payload = {"image": PHOTO, "size": [1000, 300], "radius": 10.0}
    results = [TaskResult({**payload, "tile": list(LEFT)}, [[200.0, 100.0], [20.0, 20.0]], 1.0),
               TaskResult({**payload, "tile": list(RIGHT)}, [[18.0, 104.0], [40.0, 100.0]], 1.0)]
    assert locate.combine(results, {}).value == [[20.0, 20.0], [202.0, 102.0], [226.0, 100.0]]


def test_an_unfinished_tile_makes_the_item_unsure(locate):
    combined = locate.combine([part(LEFT, []), part(RIGHT, None, 0.0)], {})
    assert (combined.value, combined.confidence) == ([], 0.0)
    assert combined.support["unfinished"] == 1
    nothing = locate.combine([part(LEFT, None, 0.0)], {})
    assert (nothing.value, nothing.support["unfinished"]) == (None, 1)
    assert locate.combine([], {}).value is None


# -- score -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("marks", "gold", "expected"),
    [
        ([PENGUIN], [PENGUIN], 1.0),
        ([NEAR], [PENGUIN], 1.0),
        ([], [], 1.0),
        ([PENGUIN], [], 0.0),
        ([], [PENGUIN], 0.0),
        ([PENGUIN, ROCK], [PENGUIN], 2 / 3),
        ([PENGUIN, NEAR], [PENGUIN], 2 / 3),  # one to one: the double is a miss
        ([[30.0, 10.0, 70.0, 90.0]], [PENGUIN], 0.0),  # IoU 1/3 < 0.5
        ([PENGUIN], None, 0.0),
        ([PENGUIN], "10,10,50,90", 0.0),
        ([PENGUIN], [[10, 10, 50]], 0.0),
        ([PENGUIN], [[10, 10, "50", 90]], 0.0),
        ([PENGUIN], [[10, 10, math.nan, 90]], 0.0),
        ([PENGUIN], {"boxes": [PENGUIN]}, 0.0),
    ],
)
def test_score_is_f1_at_iou_half(locate, marks, gold, expected):
    assert locate.score({"boxes": marks}, gold) == pytest.approx(expected)


def test_score_points_within_twenty_pixels(locate):
    assert locate.score({"points": [[10, 10], [100, 100]]}, [[25, 20], [100, 130]]) == 0.5
    assert locate.score({"points": [[10, 10]]}, [PENGUIN]) == 0.0


def test_detection_counts_for_precision_and_recall(locate):
    detection = locate.detection({"boxes": [PENGUIN, ROCK, [300, 0, 340, 40]]},
                                 [NEAR, [500, 0, 540, 40]])
    assert (detection.matched, detection.found, detection.expected) == (1, 3, 2)
    assert (detection.precision, detection.recall) == (pytest.approx(1 / 3), 0.5)
    total = detection + locate.detection({"boxes": [ROCK]}, [ROCK])
    assert (total.precision, total.recall, total.f1) == (0.5, pytest.approx(2 / 3),
                                                         pytest.approx(4 / 7))
    assert locate.detection({"boxes": []}, None) is None


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
    return jinja2.Environment(autoescape=True).from_string(locate.template).render(config=config)


def test_template_keeps_the_page_conventions(locate, boxes):
    html = render(locate, boxes)
    assert html.lstrip().startswith('<div class="task task-locate" data-shape="box" '
                                    'data-max-marks="100">')
    assert '<img data-bind-src="image"' in html
    assert "<form data-answer-form" in html and '<button type="submit"' in html
    assert "Drag a box around each one." in html
    assert "window.bitesizeTaskTypes.locate" in html
    assert "innerHTML" not in html


def test_template_for_points_says_tap(locate, points):
    html = render(locate, points)
    assert 'data-shape="point"' in html and "Tap each one." in html


def test_template_escapes_hostile_config(locate):
    config = locate.load_config({"question": "<script>alert(1)</script>",
                                 "instructions": '<img src=x onerror="alert(1)">'})
    html = render(locate, config)
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
