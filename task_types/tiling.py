"""Tiles for locate: cutting a big photo into overlapping tiles, and stitching
the marks found on the tiles back into one list in photo pixels.

Tiles overlap so that a thing cut by one tile's edge is whole in its
neighbour; the price is that it may be marked in both (whole in one, a part
in the other), which `stitch` recognises by comparing the marks' parts inside
the two tiles' shared area.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

from task_types.base import Media
from task_types.geometry import Pairs, area, distance_matrix, group, iou_matrix
from task_types.imaging import encode_jpeg

Tile = tuple[int, int, int, int]  # x, y, width, height in photo pixels
MIN_SIZE = 1.0  # px: a box narrower or lower than this marks nothing
MIN_VISIBLE = 0.5  # share of a gold box a tile must show for it to be that tile's gold
DUPLICATE_IOU = 0.5  # two tiles' marks of one thing: IoU of their parts in the shared area
CUT_MARGIN = 3.0  # px: a box side this near an inner tile edge may be cut by it
QUALITY = 85


def starts(length: int, size: int, overlap: int) -> list[int]:
    """Where tiles start along one side: as few as give at least ``overlap``
    between neighbours, spread evenly so the last ends flush with the edge and
    no tile is a sliver."""
    if length <= size:
        return [0]
    count = math.ceil((length - overlap) / (size - overlap))
    return [i * (length - size) // (count - 1) for i in range(count)]


def tile_grid(width: int, height: int, size: int, overlap: int) -> list[Tile]:
    """The tiles of a ``width`` x ``height`` photo, row by row."""
    tile_width, tile_height = min(size, width), min(size, height)
    return [(x, y, tile_width, tile_height)
            for y in starts(height, size, overlap) for x in starts(width, size, overlap)]


def cut(image: Image.Image, tiles: Sequence[Tile], media: Media) -> list[str]:
    """Crop, encode and store each tile; the refs, in tile order."""
    return [media.store(encode_jpeg(image.crop((x, y, x + w, y + h)), QUALITY), "jpg")
            for x, y, w, h in tiles]


def marks_in_tile(marks: Sequence[Sequence[float]], tile: Tile) -> list[list[float]]:
    """Photo marks as one tile shows them, in tile pixels: points inside it, and
    boxes clipped to it when at least half of the box is visible (a sliver of a
    penguin is not what a volunteer is asked to mark)."""
    x, y, w, h = tile
    inside = []
    for mark in marks:
        if len(mark) == 2:
            if x <= mark[0] < x + w and y <= mark[1] < y + h:
                inside.append([mark[0] - x, mark[1] - y])
            continue
        clipped = [max(mark[0], x), max(mark[1], y), min(mark[2], x + w), min(mark[3], y + h)]
        whole, shown = _box_area(mark), _box_area(clipped)
        if shown >= MIN_VISIBLE * whole and min(clipped[2] - clipped[0],
                                                clipped[3] - clipped[1]) >= MIN_SIZE:
            inside.append([clipped[0] - x, clipped[1] - y, clipped[2] - x, clipped[3] - y])
    return inside


def _box_area(box: Sequence[float]) -> float:
    return max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)


def stitch(pieces: Sequence[tuple[Tile, Sequence[Sequence[float]]]], size: tuple[int, int],
           radius: float) -> list[list[float]]:
    """Every tile's marks in photo pixels, with the duplicates that overlapping
    tiles make merged, clipped to the photo, rounded, in a stable order."""
    marks, owners, tiles = [], [], []
    for index, (tile, values) in enumerate(pieces):
        for value in values:
            shift = [tile[0], tile[1]] * (len(value) // 2)
            marks.append([v + s for v, s in zip(value, shift, strict=True)])
            owners.append(index)
            tiles.append(tile)
    if not marks:
        return []
    found, where = np.asarray(marks, dtype=float), np.asarray(tiles, dtype=float)
    groups = group(len(found), owners, _duplicates(found, owners, where, radius))
    if found.shape[1] == 2:
        merged = [_point(found[g].mean(axis=0), size) for g in groups]
    else:
        merged = [_box(_merge_boxes(found[g], where[g], size), size) for g in groups]
    return sorted(mark for mark in merged if mark is not None)


def _duplicates(marks: np.ndarray, owners: list[int], tiles: np.ndarray, radius: float) -> Pairs:
    """Pairs of marks from two overlapping tiles that show one thing: their parts
    inside the shared area overlap (boxes), or both lie in it close together
    (points). Only neighbouring tiles are compared, never every pair of marks."""
    owner = np.asarray(owners)  # non-decreasing: marks come tile by tile
    present = np.unique(owner)
    first, last = np.searchsorted(owner, present), np.searchsorted(owner, present, "right")
    rects = tiles[first]
    shared = np.concatenate([np.maximum(rects[:, None, :2], rects[None, :, :2]),
                             np.minimum(rects[:, None, :2] + rects[:, None, 2:],
                                        rects[None, :, :2] + rects[None, :, 2:])], axis=2)
    touching = (shared[..., 0] < shared[..., 2]) & (shared[..., 1] < shared[..., 3])
    values, firsts, seconds = [np.zeros(0)], [np.zeros(0, int)], [np.zeros(0, int)]
    for p, q in zip(*np.nonzero(np.triu(touching, 1)), strict=True):
        left, right = np.arange(first[p], last[p]), np.arange(first[q], last[q])
        margin = _shared_margins(marks[left], marks[right], shared[p, q], radius)
        row, column = np.nonzero(margin >= 0)
        values.append(margin[row, column])
        firsts.append(left[row])
        seconds.append(right[column])
    return np.concatenate(values), np.concatenate(firsts), np.concatenate(seconds)


def _shared_margins(a: np.ndarray, b: np.ndarray, shared: np.ndarray, radius: float
                    ) -> np.ndarray:
    if a.shape[1] == 2:
        inside = np.all((a >= shared[:2]) & (a <= shared[2:]), axis=1)
        near = 1.0 - distance_matrix(a, b) / radius
        inside_b = np.all((b >= shared[:2]) & (b <= shared[2:]), axis=1)
        return np.where(inside[:, None] & inside_b[None, :], near, -1.0)
    low, high = np.r_[shared[:2], shared[:2]], np.r_[shared[2:], shared[2:]]
    clipped_a, clipped_b = np.clip(a, low, high), np.clip(b, low, high)
    shown = (area(clipped_a)[:, None] > 0) & (area(clipped_b)[None, :] > 0)
    return np.where(shown, iou_matrix(clipped_a, clipped_b) - DUPLICATE_IOU, -1.0)


def _merge_boxes(boxes: np.ndarray, tiles: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One box from a thing's boxes in several tiles: each side is the mean of
    the boxes that saw it, and where every box was cut there, the farthest."""
    if len(boxes) == 1:  # most things are seen by one tile: skip the arithmetic
        return boxes[0]
    left, top = tiles[:, 0], tiles[:, 1]
    right, bottom = left + tiles[:, 2], top + tiles[:, 3]
    cut_sides = np.stack([
        (boxes[:, 0] <= left + CUT_MARGIN) & (left > 0),
        (boxes[:, 1] <= top + CUT_MARGIN) & (top > 0),
        (boxes[:, 2] >= right - CUT_MARGIN) & (right < size[0]),
        (boxes[:, 3] >= bottom - CUT_MARGIN) & (bottom < size[1]),
    ], axis=1)
    merged = np.empty(4)
    for side in range(4):
        seen = boxes[~cut_sides[:, side], side]
        farthest = boxes[:, side].min() if side < 2 else boxes[:, side].max()
        merged[side] = seen.mean() if len(seen) else farthest
    return merged


def _box(box: Sequence[float], size: tuple[int, int]) -> list[float] | None:
    """Clipped to the photo and rounded outwards to 0.1 px; None when too thin."""
    x1, y1 = outward(max(box[0], 0.0), math.floor), outward(max(box[1], 0.0), math.floor)
    x2, y2 = outward(min(box[2], size[0]), math.ceil), outward(min(box[3], size[1]), math.ceil)
    if x2 - x1 < MIN_SIZE or y2 - y1 < MIN_SIZE:
        return None
    return [x1, y1, x2, y2]


def _point(point: Sequence[float], size: tuple[int, int]) -> list[float]:
    return [round(min(max(point[0], 0.0), size[0]), 1), round(min(max(point[1], 0.0), size[1]), 1)]


def outward(value: float, direction) -> float:
    """``value`` to 0.1 px, by ``math.floor`` or ``math.ceil``: rounding a box
    outwards never makes it thinner than the merged marks were."""
    return direction(round(value * 10, 6)) / 10
