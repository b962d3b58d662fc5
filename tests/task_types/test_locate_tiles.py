"""locate: cutting photos into tiles and stitching the tiles' marks back together."""
import io
import json

import numpy as np
import pytest
from PIL import Image

from task_types import ItemError, TaskResult
from task_types.testing import MemoryMedia
from task_types.tiling import marks_in_tile, starts, tile_grid

PHOTO = "/media/colony.jpg"
BOXES = {"question": "Mark every penguin"}


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
    assert task.payload == {"image": PHOTO, "tile": [0, 0, 640, 480], "size": [640, 480]}
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
