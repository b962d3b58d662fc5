"""locate: volunteers mark every penguin (building, person...) on a photo, with
boxes or points.

A big photo is cut into overlapping tiles (tiling.py), one microtask each, and
answers are in tile pixels. The marks of a task's volunteers are clustered
(one mark per volunteer per cluster, geometry.py); a cluster backed by a
quorum of the answers' weight becomes one mark of the result. combine puts
the tiles' marks back in photo pixels and merges what the overlaps doubled.
"""
from __future__ import annotations

import io
import json
import math
from functools import lru_cache
from typing import Any

import numpy as np
from marshmallow import Schema, ValidationError, fields, validates_schema
from marshmallow.validate import Length, OneOf, Range
from PIL import Image, ImageDraw

from task_types import geometry, tiling
from task_types.base import Aggregate, Media, Microtask, Region, TaskResult, TaskType
from task_types.classify import StrippedString, media_ref
from task_types.errors import ItemError
from task_types.imaging import read_image
from task_types.weighting import answer_weights

SHAPES = ("box", "point")
KEYS = {"box": "boxes", "point": "points"}
WIDTHS = {"box": 4, "point": 2}
LOWEST, HIGHEST = -1000.0, 100_000.0  # px: generous, drags slip past an edge
MAX_GOLD = 10_000
SCORE_LIKENESS = geometry.Likeness(iou=0.5, radius=20.0)  # without a config


class Marks(fields.Field):
    """A list of boxes [x1, y1, x2, y2] or points [x, y] in pixels, each checked
    with a message that names it ("Box 3: ..."), so a volunteer's client or a
    charity's upload learns which mark is wrong."""

    def __init__(self, shape: str, most: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shape, self.most = shape, most

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list:
        if not isinstance(value, list):
            raise ValidationError(f"Must be a list of {KEYS[self.shape]}.")
        if len(value) > self.most:
            raise ValidationError(f"At most {self.most} marks.")
        return [self._mark(mark, n) for n, mark in enumerate(value, 1)]

    def _mark(self, mark: Any, n: int) -> list[float]:
        name = f"{self.shape.title()} {n}"
        width = WIDTHS[self.shape]
        form = "[x1, y1, x2, y2]" if width == 4 else "[x, y]"
        if not isinstance(mark, list) or len(mark) != width:
            raise ValidationError(f"{name} must be {width} numbers {form}.")
        if not all(_finite_number(v) for v in mark):
            raise ValidationError(f"{name} must be {width} finite numbers {form}.")
        if not all(LOWEST <= v <= HIGHEST for v in mark):
            raise ValidationError(f"{name} must lie within {LOWEST:g}..{HIGHEST:g} px.")
        if width == 4 and (mark[2] - mark[0] < tiling.MIN_SIZE
                           or mark[3] - mark[1] < tiling.MIN_SIZE):
            raise ValidationError(f"{name} must have x1 < x2 and y1 < y2, "
                                  f"at least {tiling.MIN_SIZE:g} px apart.")
        return [float(v) for v in mark]


def _finite_number(value: Any) -> bool:
    """A number a box can stand on: finite, and an int no larger than a float
    holds (math.isfinite overflows on a 400-digit one)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, int):
        return abs(value) <= LARGEST_INT
    return math.isfinite(value)


LARGEST_INT = 2**1023  # past it an int is no float (math.isfinite raises OverflowError)


class LocateConfigSchema(Schema):
    question = StrippedString(required=True, validate=Length(1, 500))
    instructions = fields.String(load_default="", validate=Length(max=5000))
    shape = fields.String(load_default="box", validate=OneOf(SHAPES))
    tile_size = fields.Integer(load_default=1024, strict=True, validate=Range(256, 4096))
    overlap = fields.Integer(load_default=128, strict=True, validate=Range(0, 2047))
    iou = fields.Float(load_default=0.5, allow_nan=False, validate=Range(0.1, 0.95), metadata={
        "label": "Box overlap to merge (IoU)",
        "description": "Two volunteers' boxes mark the same thing when they overlap at least "
                       "this much (intersection over union; 0.5 is usual)."})
    radius = fields.Float(load_default=20.0, allow_nan=False, validate=Range(1.0, 1000.0),
                          metadata={"label": "Point distance to merge (pixels)",
                                    "description": "Points closer than this mark the same "
                                                   "thing."})
    quorum = fields.Float(load_default=0.5, allow_nan=False, validate=Range(0.01, 1.0), metadata={
        "label": "Share of volunteers needed for a mark",
        "description": "A mark is kept when at least this share of the volunteers who saw "
                       "the tile made it (0.5: half of them)."})
    max_marks = fields.Integer(load_default=100, strict=True, validate=Range(1, 500))

    @validates_schema
    def check_overlap(self, data: dict, **kwargs: Any) -> None:
        """Overlap of half a tile or more would show most pixels twice or more."""
        if "overlap" in data and "tile_size" in data and 2 * data["overlap"] >= data["tile_size"]:
            raise ValidationError("Must be less than half the tile size.", "overlap")


@lru_cache(maxsize=32)
def _answer_schema(shape: str, most: int) -> type[Schema]:
    """One schema class per (shape, limit), made once: answers are validated on
    every submit."""
    return Schema.from_dict({KEYS[shape]: Marks(shape, most, required=True)},
                            name=f"Locate{shape.title()}AnswerSchema")


@lru_cache(maxsize=4)
def _item_schema(shape: str) -> type[Schema]:
    return Schema.from_dict({
        "image": fields.String(required=True, validate=media_ref),
        "id": fields.String(validate=Length(max=200)),
        "gold": Marks(shape, MAX_GOLD),
    }, name=f"Locate{shape.title()}ItemSchema")


class LocateType(TaskType):
    name = "locate"
    title = "Locate"
    description = "Volunteers mark every thing asked for on a photo, with boxes or points."
    lease_seconds = 120
    min_seconds = 2.0
    config_schema = LocateConfigSchema

    def item_schema(self, config: dict) -> Schema:
        return _item_schema(config["shape"])()

    def answer_schema(self, config: dict) -> Schema:
        return _answer_schema(config["shape"], config["max_marks"])()

    # -- split -----------------------------------------------------------------

    def split(self, item: dict, config: dict, media: Media | None = None) -> list[Microtask]:
        """One task per tile; a photo that fits one tile is shown as uploaded
        (no re-encoding), a bigger one is decoded once and cut."""
        if media is None:
            message = "Locating needs the photo itself to cut tiles; no media store was given."
            raise ItemError(message, {"image": [message]})
        image = read_image(media, item["image"])
        size = image.size
        tiles = tiling.tile_grid(*size, config["tile_size"], config["overlap"])
        refs = [item["image"]] if len(tiles) == 1 else tiling.cut(image, tiles, media)
        return [Microtask(self._payload(config, ref, tile, size),
                          tiling.marks_in_tile(item["gold"], tile) if "gold" in item else None)
                for ref, tile in zip(refs, tiles, strict=True)]

    def _payload(self, config: dict, ref: str, tile: tiling.Tile,
                 size: tuple[int, int]) -> dict:
        """What the volunteer is shown: the tile's picture and where it lies. Never
        the item's id: a charity's file name can give the answer away or mark gold
        (the id stays on the item row, for the console and the exports)."""
        payload = {"image": ref, "tile": list(tile), "size": list(size)}
        if config["shape"] == "point":
            payload["radius"] = config["radius"]  # combine merges overlap doubles by it
        return payload

    # -- aggregate ---------------------------------------------------------------

    def aggregate(
        self, answers: list[dict], weights: list[float] | None, config: dict
    ) -> Aggregate:
        """Cluster the marks, keep the clusters backed by ``quorum`` of the weight.

        Each kept or dropped cluster is a yes/no decision; the confidence is that
        of the shakiest one (max(share, 1 - share)), so a list is only as sure as
        its most doubtful mark. Answers that mark nothing count as weight against
        every cluster; all saying "nothing here" is a sure empty list.
        """
        key = KEYS[config["shape"]]
        weights = answer_weights(answers, weights)
        counted = [(answer[key], weight) for answer, weight in zip(answers, weights, strict=True)
                   if key in answer]  # answers of another shape (config edited) do not count
        total = sum(weight for _, weight in counted)
        if total <= 0:
            return Aggregate(None, 0.0, {"marks": [], "clusters": 0, "answers": len(counted)})
        marks, owners = _flatten([marks for marks, _ in counted], WIDTHS[config["shape"]])
        weight = np.array([w for _, w in counted])
        likeness = geometry.Likeness(config["iou"], config["radius"])
        found = [_found(marks[members], weight[owners[members]], total, config["shape"])
                 for members in geometry.cluster(marks, owners.tolist(), likeness)]
        found.sort(key=lambda mark: (-mark["share"], mark[config["shape"]]))
        for mark in found:
            mark["kept"] = mark["share"] >= config["quorum"] - 1e-9
        confidence = min((max(mark["share"], 1 - mark["share"]) for mark in found), default=1.0)
        value = sorted(mark[config["shape"]] for mark in found if mark["kept"])
        # Lone marks of a careless (or hostile) answer need not all be kept as evidence.
        support = {"marks": found[:2 * config["max_marks"]], "clusters": len(found),
                   "answers": len(counted)}
        return Aggregate(value, confidence, support)

    # -- combine -----------------------------------------------------------------

    def combine(self, task_results: list[TaskResult], item: dict) -> Aggregate:
        """The tiles' marks in photo pixels, overlap doubles merged. A tile without
        a result yet makes the item's confidence 0: a missing tile is not "nothing"."""
        done = [part for part in task_results if part.value is not None]
        if not done:
            return Aggregate(None, 0.0, {"tiles": len(task_results),
                                         "unfinished": len(task_results), "marks": 0})
        size = tuple(done[0].payload["size"])
        radius = done[0].payload.get("radius", SCORE_LIKENESS.radius)
        value = tiling.stitch([(part.payload["tile"], part.value) for part in done], size, radius)
        confidence = min(part.confidence if part.value is not None else 0.0
                         for part in task_results)
        support = {"tiles": len(task_results), "unfinished": len(task_results) - len(done),
                   "marks": sum(len(part.value) for part in done)}
        return Aggregate(value, confidence, support)

    # -- score -------------------------------------------------------------------

    def regions(self, task_results: list[TaskResult], item: dict) -> list[Region]:
        """Each mark of the photo's combined result (a point as a 1-px square);
        the annotation only says where: what was looked for is the project's
        question."""
        combined = self.combine(task_results, item)
        if not combined.value:
            return []
        out = []
        for mark in combined.value:
            x, y = mark[0], mark[1]
            w, h = (mark[2] - x, mark[3] - y) if len(mark) == 4 else (1.0, 1.0)
            out.append(Region((x, y, w, h), "", combined.confidence, "identifying"))
        return out

    def score(self, answer: dict, gold: Any, config: dict | None = None) -> float:
        """F1 of the answer's marks against gold (boxes at IoU >= 0.5, points within
        the config's radius, 20 px without one; one to one); a malformed or
        missing gold scores 0."""
        detection = self.detection(answer, gold, config)
        return detection.f1 if detection is not None else 0.0

    def detection(self, answer: dict, gold: Any,
                  config: dict | None = None) -> geometry.Detection | None:
        """Matched, found and expected counts of an answer against gold, for
        precision and recall (summed over photos: micro-averaged); None when the
        gold or the answer cannot be read as marks of one shape."""
        shape = "box" if "boxes" in answer else "point"
        found, expected = _array(answer.get(KEYS[shape]), shape), _array(gold, shape)
        if found is None or expected is None:
            return None
        likeness = SCORE_LIKENESS
        if config and "radius" in config:
            likeness = geometry.Likeness(iou=SCORE_LIKENESS.iou, radius=config["radius"])
        return geometry.detect(found, expected, likeness)

    # -- offline -----------------------------------------------------------------

    def offline_config(self) -> dict:
        """Defaults, with boxes: a CSV of points needs a config with "shape":
        "point" (an empty list cannot tell which shape it is)."""
        return self.load_config({"question": "Mark every thing asked for"})

    def answer_from_text(self, text: str, config: dict) -> dict:
        """A JSON list of boxes or points, e.g. ``[[10, 20, 50, 80]]``; ``[]`` is
        "nothing here".

        A box with no width or no height, or an empty mark ``[]``, among good
        marks is left out (the ``PartlyRead`` answer says which): real files
        have them (a click that did not drag) and they mark nothing, but the
        volunteer's other boxes are still theirs. An answer of nothing but such
        marks is returned whole, for the answer schema to refuse: it is not
        "nothing here". The live answer schema refuses them all (a volunteer's
        client can ask again)."""
        try:
            marks = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: a cell of [[[[...]]]]
            raise ValueError(f"not a JSON list of marks: {text[:80]!r}") from None
        if not isinstance(marks, list):
            raise ValueError(f"not a JSON list of marks: {text[:80]!r}")
        shape, width = config["shape"], WIDTHS[config["shape"]]
        why = [_degenerate(mark, width) for mark in marks]
        kept = [mark for mark, empty in zip(marks, why, strict=True) if empty is None]
        if marks and not kept:
            return {KEYS[shape]: marks}
        if any(not isinstance(mark, list) or len(mark) != width for mark in kept):
            raise ValueError(f"this config marks {KEYS[shape]}, lists of {width} "
                             f"numbers; for the other shape give a config with its \"shape\"")
        return PartlyRead({KEYS[shape]: kept},
                          tuple(f"{shape.title()} {n} {empty}: left out"
                                for n, empty in enumerate(why, 1) if empty is not None))

    def value_to_text(self, value: Any) -> str:
        return "" if value is None else json.dumps(value, separators=(",", ":"))

    def answer_to_text(self, answer: dict) -> str:
        return self.value_to_text(answer.get("boxes", answer.get("points")))

    def example(self) -> dict:
        ref = "/media/example-penguins.jpg"
        return {
            "config": {
                "question": "Mark every penguin",
                "instructions": "Draw a box around each penguin you can see, even a part of one.",
                "shape": "box",
                "tile_size": 256,
                "overlap": 32,
            },
            "item": {"image": ref, "id": "colony-7", "gold": [[40, 60, 70, 110],
                                                              [200, 150, 240, 210]]},
            "answers": [
                {"boxes": [[41, 58, 71, 112], [199, 151, 238, 209]]},
                {"boxes": [[38, 61, 69, 108]]},
                {"boxes": [[42, 60, 72, 111], [201, 149, 241, 212], [120, 10, 130, 20]]},
            ],
            "media": {ref: _example_photo()},
        }


class PartlyRead(dict):
    """An answer read from a CSV cell, and what reading left out of it (one
    reason per mark, naming it): the offline reader counts each in its report
    (engine.quality.offline_rows). Equal to the plain answer dict."""

    def __init__(self, answer: dict, left_out: tuple[str, ...] = ()) -> None:
        super().__init__(answer)
        self.left_out = left_out


def _degenerate(mark: Any, width: int) -> str | None:
    """Why ``mark`` marks nothing (an empty list; a box of well-formed numbers
    with less than tiling.MIN_SIZE of width or height, whichever way it was
    drawn), or None. A malformed mark is not degenerate: the schema names it."""
    if mark == []:
        return "is empty"
    if width != 4 or not isinstance(mark, list) or len(mark) != 4 \
            or not all(map(_finite_number, mark)):
        return None
    flat = [abs(mark[2] - mark[0]) < tiling.MIN_SIZE, abs(mark[3] - mark[1]) < tiling.MIN_SIZE]
    if all(flat):
        return "has no area"
    return "has no width" if flat[0] else "has no height" if flat[1] else None


def _found(marks: np.ndarray, weight: np.ndarray, total: float, shape: str) -> dict:
    """One cluster: its weighted-median mark and the share of the weight behind it."""
    centre = [geometry.weighted_median(marks[:, k], weight) for k in range(marks.shape[1])]
    if shape == "box":
        mark = [tiling.outward(centre[0], math.floor), tiling.outward(centre[1], math.floor),
                tiling.outward(centre[2], math.ceil), tiling.outward(centre[3], math.ceil)]
    else:
        mark = [round(centre[0], 1), round(centre[1], 1)]
    return {shape: mark, "share": float(weight.sum()) / total}


def _flatten(answers: list[list[list[float]]], width: int) -> tuple[np.ndarray, np.ndarray]:
    """All marks in one array, and the index of the answer each came from."""
    marks = [mark for marks in answers for mark in marks]
    owners = [n for n, marks in enumerate(answers) for _ in marks]
    return np.asarray(marks, dtype=float).reshape(-1, width), np.asarray(owners, dtype=int)


def _array(marks: Any, shape: str) -> np.ndarray | None:
    """``marks`` as an (n, 2|4) array, or None if they are not a list of finite
    marks of that shape (gold may be anything a charity uploaded)."""
    width = WIDTHS[shape]
    if not isinstance(marks, list) or not all(
            isinstance(mark, list) and len(mark) == width and all(map(_finite_number, mark))
            for mark in marks):
        return None
    return np.asarray(marks, dtype=float).reshape(-1, width)


def _example_photo() -> bytes:
    """A 480 x 300 JPEG with two dark blobs where the example's gold boxes are."""
    image = Image.new("RGB", (480, 300), (200, 220, 235))
    draw = ImageDraw.Draw(image)
    for box in ([40, 60, 70, 110], [200, 150, 240, 210]):
        draw.ellipse(box, fill=(30, 30, 40))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


locate = LocateType()
