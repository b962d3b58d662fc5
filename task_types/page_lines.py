"""Finding the lines of text on a scanned page, for transcribe's split.

A line of text is a horizontal band of ink with paper above and below it, so
the page's horizontal projection profile (how much ink each row of pixels
holds) shows the lines as runs of inked rows. The steps, all on a small
greyscale copy (about 1,000 rows: every fourth pixel of a 300 dpi A4 scan) and
all in numpy:

1. binarise at Otsu's threshold (ink is what is darker than the page);
2. ignore columns and rows that are mostly ink: the dark margins and binding
   shadows of a scan, which would join every line into one;
3. deskew: the profile is sharpest at the page's own angle, so a few sheared
   profiles are compared and a page tilted by 0.5 degrees or more is turned
   upright (once, before cutting) -- skipped when the page is straight;
4. rows with a little ink (a share of a typical text row) are inked; runs of
   inked rows closer than ``merge_gap`` are one band, and a band thinner than
   ``min_height`` (an i's dots, a stray descender, dust) joins a neighbour
   close enough or is dropped; a band spanning several line spacings is
   touching lines, cut at its emptiest rows;
5. each band's box spans its inked columns, padded by ``padding``.

Sizes are in the page's own pixels; the boxes are cut from the full-size
decoded image by the caller.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

ANALYSIS_ROWS = 1000
MOSTLY_INK = 0.8  # a column or row with more ink than this share is a margin, not text
INK_ROW_SHARE = 0.02  # a row is inked with this share of a typical text row's ink
MIN_CONTRAST = 40  # grey levels between paper and ink; below it the page is blank
INK_PIXELS = 50  # the darkest this many pixels (of the small copy) are the ink's shade
SKEW_ANGLES = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)  # degrees, refined by quarters
SKEW_COLUMNS = 4  # the tilt is judged on every fourth column
MIN_SKEW = 0.5  # degrees; smaller tilts leave lines well inside their padding
SHARPER = 1.05  # a tilt must sharpen the profile by 5% to be believed
DIP = 0.2  # touching lines are cut only at rows this much emptier than their text


@dataclass(frozen=True)
class LineCut:
    """The knobs of line cutting, in page pixels."""

    min_height: int = 12
    merge_gap: int = 6
    padding: int = 8


def find_lines(image: Image.Image, cut: LineCut) -> tuple[Image.Image, list[list[int]]]:
    """The page (turned upright if it was tilted) and its lines' boxes
    [x, y, w, h], top to bottom; no boxes when the page shows no ink."""
    small, scale = _small_grey(image)
    ink = _binarise(small)
    if ink is None:
        return image, []
    angle = _skew(ink)
    if angle:
        image = image.rotate(angle, Image.Resampling.BILINEAR, fillcolor=_paper(image))
        ink = _binarise(small.rotate(angle, Image.Resampling.BILINEAR, fillcolor=255))
        if ink is None:
            return image, []
    bands = _bands(ink, scale, cut)
    return image, _boxes(ink, bands, scale, cut.padding, image.size)


def _small_grey(image: Image.Image) -> tuple[Image.Image, int]:
    """A greyscale copy about ANALYSIS_ROWS high and its step (page pixels per
    copy pixel), sampled (nearest pixel) rather than averaged: a profile sums
    thousands of pixels per line, so sampling loses nothing it needs, and it
    costs a fraction of a millisecond where averaging a full page costs several."""
    step = max(1, math.ceil(image.height / ANALYSIS_ROWS))
    if step > 1:
        size = (max(1, image.width // step), max(1, image.height // step))
        image = image.resize(size, Image.Resampling.NEAREST)
    return (image if image.mode == "L" else image.convert("L")), step


def _paper(image: Image.Image) -> int | tuple[int, int, int]:
    return 255 if image.mode == "L" else (255, 255, 255)


def _binarise(small: Image.Image) -> np.ndarray | None:
    """Ink mask, margins (mostly-ink columns and rows) cleared; None for a page
    without contrast enough to hold writing.

    Otsu's threshold is kept at least half the minimum contrast below the
    paper: on a page with very little ink it would otherwise split the paper's
    own grain.
    """
    hist = np.array(small.histogram(), dtype=np.float64)
    grey = np.asarray(small)
    cum = np.cumsum(hist)
    paper = int(np.searchsorted(cum, 0.5 * grey.size))
    darkest = int(np.searchsorted(cum, INK_PIXELS))
    if paper - darkest < MIN_CONTRAST:
        return None
    ink = grey < min(_otsu(hist), paper - MIN_CONTRAST // 2)
    ink[:, np.count_nonzero(ink, axis=0) > MOSTLY_INK * ink.shape[0]] = False
    ink[np.count_nonzero(ink, axis=1) > MOSTLY_INK * ink.shape[1], :] = False
    return ink


def _otsu(hist: np.ndarray) -> int:
    """The grey level that best separates ink from paper (Otsu 1979)."""
    levels = np.arange(256, dtype=np.float64)
    weight = np.cumsum(hist)
    mass = np.cumsum(hist * levels)
    total, total_mass = weight[-1], mass[-1]
    other = total - weight
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total_mass * weight - mass * total) ** 2 / (weight * other)
    between[~np.isfinite(between)] = -1.0
    return int(np.argmax(between)) + 1


def _skew(ink: np.ndarray) -> float:
    """The page's tilt in degrees (Pillow's rotate sign), or 0.0 when it is
    straight enough: the shear whose profile is sharpest, searched by whole
    degrees, then by quarters around the best."""
    ys, xs = np.nonzero(ink[:, ::SKEW_COLUMNS])  # a sample of the ink is enough to judge
    if ys.size < 100:
        return 0.0
    step = max(1, ys.size // 5_000)
    ys = ys[::step].astype(np.float64)
    xs = xs[::step] * SKEW_COLUMNS - ink.shape[1] / 2
    seen: dict[float, float] = {}

    def sharpness(degrees: float) -> float:
        if degrees not in seen:
            rows = np.rint(ys + xs * math.tan(math.radians(degrees))).astype(np.int64)
            seen[degrees] = float(np.square(np.bincount(rows - rows.min())).sum())
        return seen[degrees]

    best = max(SKEW_ANGLES, key=sharpness)
    best = max((best + d for d in (-0.5, -0.25, 0.0, 0.25, 0.5)), key=sharpness)
    if abs(best) < MIN_SKEW or sharpness(best) < SHARPER * sharpness(0.0):
        return 0.0
    return -best


def _bands(ink: np.ndarray, scale: int, cut: LineCut) -> list[tuple[int, int]]:
    """Row ranges [top, bottom) of the lines, in analysis rows."""
    profile = ink.sum(axis=1)
    inked_rows = profile[profile > 0]
    if not inked_rows.size:
        return []
    typical = float(np.percentile(inked_rows, 90))
    inked = profile >= max(2.0, INK_ROW_SHARE * typical)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], inked.view(np.int8), [0]))))
    runs = [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    merged: list[tuple[int, int]] = []
    for top, bottom in runs:
        if merged and (top - merged[-1][1]) * scale <= cut.merge_gap:
            merged[-1] = (merged[-1][0], bottom)
        else:
            merged.append((top, bottom))
    return _split_tall(_absorb_thin(merged, max(1.0, cut.min_height / scale)), profile)


def _absorb_thin(bands: list[tuple[int, int]], min_rows: float) -> list[tuple[int, int]]:
    """Thin bands join the nearer neighbouring line when the gap to it is under
    half a typical line's height (accents, dots, descenders), else are dropped."""
    tall = [b - a for a, b in bands if b - a >= min_rows]
    if not tall:
        return []
    reach = 0.5 * float(np.median(tall))
    lines = [list(band) for band in bands if band[1] - band[0] >= min_rows]
    for top, bottom in bands:
        if bottom - top >= min_rows:
            continue
        gap, line = min((max(line[0] - bottom, top - line[1]), n)
                        for n, line in enumerate(lines))
        if gap <= reach:
            lines[line] = [min(lines[line][0], top), max(lines[line][1], bottom)]
    return [(a, b) for a, b in lines]


def _split_tall(bands: list[tuple[int, int]], profile: np.ndarray) -> list[tuple[int, int]]:
    """A band spanning several line spacings is lines whose ascenders and
    descenders touch (common in handwriting): cut it into that many lines, each
    cut at the emptiest rows near where an even split puts it, and only where
    those rows are a real dip (a heading in large letters has none) that still
    holds ink (blank rows there were joined on purpose, by ``merge_gap``)."""
    spacing = _line_spacing(profile)
    if spacing is None:
        return bands
    single = [b - a for a, b in bands if b - a < spacing]  # bands of one line each
    gap = spacing - float(np.median(single)) if single else 0.0  # blank between lines
    out: list[tuple[int, int]] = []
    for top, bottom in bands:
        count = max(1, round((bottom - top + gap) / spacing))
        cuts = [top]
        dip = DIP * float(np.percentile(profile[top:bottom], 90)) if count > 1 else 0.0
        for m in range(1, count):
            guess = top + m * (bottom - top) / count
            low = max(cuts[-1] + 1, int(guess - spacing / 3))
            high = min(bottom - 1, int(guess + spacing / 3) + 1)
            window = profile[low:high] if high > low else profile[:0]
            if window.size and 0 < window.min() <= dip:
                emptiest = np.flatnonzero(window == window.min())
                cuts.append(low + int(emptiest[len(emptiest) // 2]))
        cuts.append(bottom)
        out.extend(zip(cuts[:-1], cuts[1:], strict=False))
    return out


def _line_spacing(profile: np.ndarray) -> float | None:
    """The page's line spacing in rows: lines repeat down the page, so the
    profile's autocorrelation peaks at the spacing (the highest peak after it
    first falls below zero); None when there is no such peak."""
    values = profile.astype(np.float64) - profile.mean()
    n = values.size
    spectrum = np.fft.rfft(values, 2 * n)
    corr = np.fft.irfft(spectrum * np.conj(spectrum))[: n // 2]
    below = np.flatnonzero(corr < 0)
    if not below.size or corr[0] <= 0:
        return None
    lag = int(below[0] + np.argmax(corr[below[0]:]))
    return float(lag) if corr[lag] > 0 else None


def _boxes(ink: np.ndarray, bands: list[tuple[int, int]], scale: int, padding: int,
           size: tuple[int, int]) -> list[list[int]]:
    """Each band's box in page pixels [x, y, w, h]: its inked columns, padded and
    kept within the page."""
    if not bands:
        return []
    edges = np.array(bands, dtype=np.intp).ravel()
    if edges[-1] == ink.shape[0]:
        edges = edges[:-1]  # reduceat runs the last slice to the end by itself
    inked = np.logical_or.reduceat(ink, edges, axis=0)[::2]
    first = np.argmax(inked, axis=1)
    last = inked.shape[1] - np.argmax(inked[:, ::-1], axis=1)
    width, height = size
    boxes = []
    for (top, bottom), left, right in zip(bands, first.tolist(), last.tolist(), strict=True):
        x0 = max(0, left * scale - padding)
        x1 = min(width, right * scale + padding)
        y0 = max(0, top * scale - padding)
        y1 = min(height, bottom * scale + padding)
        boxes.append([x0, y0, x1 - x0, y1 - y0])
    return boxes
