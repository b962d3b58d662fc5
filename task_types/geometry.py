"""Marks on a picture, as locate merges and scores them.

A mark is a box ``[x1, y1, x2, y2]`` or a point ``[x, y]`` in pixels; a list of
marks is an (n, 4) or (n, 2) float array here. Two marks are "the same thing"
when boxes overlap by an IoU of at least ``iou`` or points lie within
``radius`` pixels: `Likeness` turns that into one number per pair, a margin
that is >= 0 exactly when they are, so boxes and points share the clustering
and matching code below.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

# Rows of the pairwise margin matrix computed at a time: keeps memory bounded
# (chunk x n floats) when a task gathers thousands of marks.
CHUNK = 512

Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]  # margins, first marks, second marks


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box of ``a`` with every box of ``b``;
    0 where both are empty (no area), rather than a division by zero."""
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(width, 0, None) * np.clip(height, 0, None)
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])


@dataclass(frozen=True)
class Likeness:
    """When two marks show the same thing: boxes with IoU >= ``iou``, points
    within ``radius`` px."""

    iou: float = 0.5
    radius: float = 20.0

    def extent(self, marks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each mark's reach across (x): two alike marks' reaches overlap."""
        if marks.shape[1] == 4:
            return marks[:, 0], marks[:, 2]
        return marks[:, 0] - self.radius / 2, marks[:, 0] + self.radius / 2

    def margins(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Per pair, how far past the "same thing" line: >= 0 when alike, at most
        1 (identical), so a mean over pairs is an average-linkage test."""
        if a.shape[1] == 4:
            return iou_matrix(a, b) - self.iou
        return 1.0 - distance_matrix(a, b) / self.radius


def candidate_pairs(marks: np.ndarray, owners: Sequence[int], likeness: Likeness) -> Pairs:
    """Alike pairs of marks by different owners, each mark kept only with its best
    match per other owner: a cluster holds one mark per owner, so lesser matches
    cannot win, and one volunteer's hundred identical boxes stay a hundred pairs.

    Rows go in chunks ordered left to right, each compared only with the marks
    whose extent across reaches the chunk's: a photo full of penguins costs
    far less than every mark against every mark.
    """
    owner = np.asarray(owners)
    low, high = likeness.extent(marks)
    firsts, seconds, values = [np.zeros(0, int)], [np.zeros(0, int)], [np.zeros(0)]
    order = np.argsort(low + high, kind="stable")
    for begin in range(0, len(order), CHUNK):
        rows = order[begin:begin + CHUNK]
        columns = np.flatnonzero((low <= high[rows].max()) & (high >= low[rows].min()))
        margin = likeness.margins(marks[rows], marks[columns])
        margin[owner[rows, None] == owner[None, columns]] = -np.inf
        for run in _runs(owner[columns]):  # the columns of one owner, in index order
            best = run.start + margin[:, run].argmax(axis=1)  # first of equals
            value = margin[np.arange(len(rows)), best]
            keep = value >= 0
            firsts.append(rows[keep])
            seconds.append(columns[best[keep]])
            values.append(value[keep])
    first, second, value = (np.concatenate(parts) for parts in (firsts, seconds, values))
    first, second = np.minimum(first, second), np.maximum(first, second)
    _, unique = np.unique(first * len(owner) + second, return_index=True)
    return value[unique], first[unique], second[unique]


def _runs(labels: np.ndarray) -> list[slice]:
    """Slices of equal consecutive labels."""
    bounds = np.r_[0, np.flatnonzero(np.diff(labels)) + 1, len(labels)]
    return [slice(a, b) for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)]


def group(count: int, owners: Sequence[int], pairs: Pairs,
          joinable: Callable[[list[int], list[int]], bool] | None = None) -> list[list[int]]:
    """Greedy agglomeration: join the closest pairs first, never two marks of one
    owner in a group, and (if given) only groups ``joinable`` accepts. Ties go by
    mark index, so the same marks always give the same groups."""
    margin, first, second = pairs
    order = np.lexsort((second, first, -margin))
    label = list(range(count))
    members = {k: [k] for k in range(count)}
    taken = {k: {owners[k]} for k in range(count)}
    for a, b in zip(first[order].tolist(), second[order].tolist(), strict=True):
        keep, gone = sorted((label[a], label[b]))
        if keep == gone or taken[keep] & taken[gone]:
            continue
        if joinable is not None and not joinable(members[keep], members[gone]):
            continue
        for k in members[gone]:
            label[k] = keep
        members[keep] += members.pop(gone)
        taken[keep] |= taken.pop(gone)
    return [sorted(members[k]) for k in sorted(members)]


def cluster(marks: np.ndarray, owners: Sequence[int], likeness: Likeness) -> list[list[int]]:
    """Marks of several volunteers grouped into things: average linkage, so a
    group grows only while its members are alike on average, not by chaining."""
    if not len(marks):
        return []

    def joinable(a: list[int], b: list[int]) -> bool:
        return float(likeness.margins(marks[a], marks[b]).mean()) >= 0

    return group(len(marks), owners, candidate_pairs(marks, owners, likeness), joinable)


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The value with half the weight on each side; halfway between two values
    when the halves meet exactly between them (two marks: their middle)."""
    order = np.argsort(values, kind="stable")
    value, cumulative = values[order], np.cumsum(weights[order])
    half, slack = cumulative[-1] / 2, 1e-9 * cumulative[-1]
    low = int(np.searchsorted(cumulative, half - slack))
    if cumulative[low] > half + slack:
        return float(value[low])
    high = int(np.searchsorted(cumulative, half + slack, side="right"))
    return float((value[low] + value[min(high, len(value) - 1)]) / 2)


def matched(found: np.ndarray, expected: np.ndarray, likeness: Likeness) -> int:
    """How many marks pair up one to one with an alike expected mark: the most
    pairs possible (Hungarian), and among those the closest."""
    if not len(found) or not len(expected):
        return 0
    margin = likeness.margins(found, expected)
    alike = margin >= 0
    # Each pair is worth more than any sum of closeness, so the count comes first.
    gain = np.where(alike, min(len(found), len(expected)) + 1 + margin, 0.0)
    rows, columns = linear_sum_assignment(gain, maximize=True)
    return int(alike[rows, columns].sum())


@dataclass(frozen=True)
class Detection:
    """Counts of one comparison of marks with the expected ones; sums of these
    give micro-averaged precision and recall over many pictures."""

    matched: int = 0
    found: int = 0
    expected: int = 0

    def __add__(self, other: Detection) -> Detection:
        return Detection(self.matched + other.matched, self.found + other.found,
                         self.expected + other.expected)

    @property
    def precision(self) -> float:
        return self.matched / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        return self.matched / self.expected if self.expected else 1.0

    @property
    def f1(self) -> float:
        """Both empty is a perfect answer ("nothing here" where nothing is)."""
        total = self.found + self.expected
        return 2 * self.matched / total if total else 1.0


def detect(found: np.ndarray, expected: np.ndarray, likeness: Likeness) -> Detection:
    return Detection(matched(found, expected, likeness), len(found), len(expected))
