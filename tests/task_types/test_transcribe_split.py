"""transcribe: cutting scanned pages into line tasks."""
import io

import pytest
from PIL import Image, ImageDraw

from task_types import ItemError, Microtask
from task_types import transcribe as transcribe_module
from task_types.testing import MemoryMedia

PAGE = "/media/" + "a" * 64 + ".png"


@pytest.fixture
def config(transcribe) -> dict:
    return transcribe.load_config({})


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
                                "box": [x, y, w, h], "size": [1200, 900]}
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
        Microtask({"image": PAGE, "line": 1}, "Dear Sir")]


def test_split_needs_media_to_cut(transcribe, config):
    with pytest.raises(ItemError) as exc:
        transcribe.split({"image": PAGE}, config)
    assert "image" in exc.value.fields


def test_split_refuses_a_corrupt_page(transcribe, config):
    with pytest.raises(ItemError) as exc:
        transcribe.split({"image": PAGE}, config, MemoryMedia({PAGE: b"not a picture"}))
    assert "image" in exc.value.fields
