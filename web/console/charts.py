"""Charts drawn on the server as SVG: bars, a histogram, a line over days,
progress bars, and an item's result drawn over its picture; and a matrix of
counts as a shaded HTML table (the quality page's confusion matrix).

Server-side SVG needs no JavaScript, no CDN and no inline style (a strict
Content-Security-Policy passes it), prints, and scales with the page through
its viewBox. Each chart is an image with a name (``role="img"``, a
``<title>`` and a ``<desc>`` that says what it shows in words); the numbers
themselves are in a table beside it (the templates put one in a
``<details>``), so a screen reader user gets the data, not a picture of it.
Every text that comes from data is escaped by markupsafe.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

BAR_AREA = (640, 160)  # width, height of the plotting area in SVG units
MARGIN_LEFT, MARGIN_BOTTOM, MARGIN_TOP = 40, 28, 10


@dataclass(frozen=True)
class Bar:
    label: str  # what the bar is, in words ("Tue 14:00", "90-100%")
    value: float
    tick: str = ""  # a label written under the axis at this bar, if any


def _svg_open(chart_id: str, width: int, height: int, title: str, desc: str,
              css: str, size: str = "") -> str:
    return (f'<svg class="{css}" id="{escape(chart_id)}" viewBox="0 0 {width} {height}"{size} '
            f'role="img" aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
            f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">'
            f'<title id="{escape(chart_id)}-title">{escape(title)}</title>'
            f'<desc id="{escape(chart_id)}-desc">{escape(desc)}</desc>')


def _nice_top(value: float) -> float:
    """The axis's top: the highest value rounded up to 1, 2 or 5 times a power of ten."""
    if value <= 0:
        return 1
    power = 1
    while power * 10 <= value:
        power *= 10
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def bar_chart(chart_id: str, bars: Sequence[Bar], title: str, desc: str,
              unit: str = "") -> Markup:
    """Vertical bars, one per value, on an axis from 0 to a round top value."""
    width, height = BAR_AREA
    total_w = MARGIN_LEFT + width + 8
    total_h = MARGIN_TOP + height + MARGIN_BOTTOM
    top = _nice_top(max((bar.value for bar in bars), default=0))
    step = width / max(len(bars), 1)
    gap = 1 if step > 3 else 0
    parts = [_svg_open(chart_id, total_w, total_h, title, desc, "chart chart-bars")]
    base = MARGIN_TOP + height
    parts.append(_grid(top))
    for n, bar in enumerate(bars):
        x = MARGIN_LEFT + n * step
        h = height * bar.value / top
        if bar.value > 0:
            parts.append(f'<rect class="bar" x="{x + gap / 2:.2f}" y="{base - h:.2f}" '
                         f'width="{max(step - gap, 0.5):.2f}" height="{h:.2f}">'
                         f'<title>{escape(bar.label)}: {_number(bar.value)}{escape(unit)}'
                         f'</title></rect>')
        if bar.tick:
            parts.append(f'<line class="tick" x1="{x:.2f}" x2="{x:.2f}" y1="{base}" '
                         f'y2="{base + 4}"/><text class="axis" x="{x:.2f}" y="{base + 18}" '
                         f'text-anchor="start">{escape(bar.tick)}</text>')
    parts.append(f'<line class="baseline" x1="{MARGIN_LEFT}" x2="{MARGIN_LEFT + width}" '
                 f'y1="{base}" y2="{base}"/></svg>')
    return Markup("".join(parts))


def histogram(chart_id: str, bars: Sequence[Bar], title: str, desc: str) -> Markup:
    """Touching bars over equal bins, each bin labelled under the axis."""
    width, height = BAR_AREA
    top = _nice_top(max((bar.value for bar in bars), default=0))
    total_w, total_h = MARGIN_LEFT + width + 8, MARGIN_TOP + height + MARGIN_BOTTOM
    step = width / max(len(bars), 1)
    base = MARGIN_TOP + height
    parts = [_svg_open(chart_id, total_w, total_h, title, desc, "chart chart-histogram")]
    parts.append(_grid(top))
    for n, bar in enumerate(bars):
        x = MARGIN_LEFT + n * step
        h = height * bar.value / top
        if bar.value > 0:
            parts.append(f'<rect class="bar" x="{x + 1:.2f}" y="{base - h:.2f}" '
                         f'width="{step - 2:.2f}" height="{h:.2f}"><title>'
                         f'{escape(bar.label)}: {_number(bar.value)}</title></rect>'
                         f'<text class="value" x="{x + step / 2:.2f}" y="{base - h - 3:.2f}" '
                         f'text-anchor="middle">{_number(bar.value)}</text>')
        parts.append(f'<text class="axis" x="{x + step / 2:.2f}" y="{base + 18}" '
                     f'text-anchor="middle">{escape(bar.tick or bar.label)}</text>')
    parts.append(f'<line class="baseline" x1="{MARGIN_LEFT}" x2="{MARGIN_LEFT + width}" '
                 f'y1="{base}" y2="{base}"/></svg>')
    return Markup("".join(parts))


def progress_bar(percent: float, label: str, text: str = "", role: bool = True) -> Markup:
    """A progress bar with role=progressbar and its values for assistive
    technology; the filled part is an SVG rect, so no inline style is needed.
    ``role=False`` draws the same bar as plain text and picture, for a page
    whose one progressbar must be another (the project page's upload job)."""
    value = max(0, min(100, round(percent)))
    shown = text or f"{value}%"
    semantics = (f' role="progressbar" aria-label="{escape(label)}" aria-valuemin="0" '
                 f'aria-valuemax="100" aria-valuenow="{value}" '
                 f'aria-valuetext="{escape(shown)}"') if role else ""
    return Markup(
        f'<div class="meter"{semantics}>'
        f'<svg class="meter-bar" viewBox="0 0 100 6" preserveAspectRatio="none" '
        f'aria-hidden="true" focusable="false" xmlns="http://www.w3.org/2000/svg">'
        f'<rect class="meter-track" x="0" y="0" width="100" height="6"/>'
        f'<rect class="meter-fill" x="0" y="0" width="{value}" height="6"/></svg>'
        f'<span class="meter-text">{escape(shown)}</span></div>')


def overlay(chart_id: str, url: str, width: int, height: int, regions, title: str,
            desc: str) -> Markup:
    """The item's picture with its result drawn on it, in the picture's own
    pixels: boxes as rectangles, points (1-px regions) as rings, lines of text
    as boxes with the text above them. ``regions`` are task_types.Region."""
    stroke = max(width, height) / 300
    radius = max(width, height) / 80
    font = max(height / 40, 10)
    # Drawn at the picture's own size at most; CSS scales it down to fit.
    size = f' width="{width}" height="{height}"'
    parts = [_svg_open(chart_id, width, height, title, desc, "overlay", size),
             f'<image href="{escape(url)}" x="0" y="0" width="{width}" height="{height}" '
             f'preserveAspectRatio="none"/>']
    for n, region in enumerate(regions, 1):
        x, y, w, h = (float(v) for v in region.xywh)
        name = f"Mark {n}" + (f": {region.text}" if region.text else "") + \
            f" (confidence {round(region.confidence * 100)}%)"
        if w <= 1 and h <= 1:
            parts.append(f'<circle class="mark point" cx="{x:.1f}" cy="{y:.1f}" '
                         f'r="{radius:.1f}" stroke-width="{stroke:.1f}">'
                         f'<title>{escape(name)}</title></circle>')
            continue
        parts.append(f'<rect class="mark box" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" '
                     f'height="{h:.1f}" stroke-width="{stroke:.1f}">'
                     f'<title>{escape(name)}</title></rect>')
        if region.text:
            parts.append(f'<text class="mark-text" x="{x:.1f}" y="{max(y - stroke, font):.1f}" '
                         f'font-size="{font:.1f}" stroke-width="{font / 6:.1f}">'
                         f'{escape(region.text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _grid(top: float) -> str:
    """Grid lines at 0, half and the top of the value axis, with their values."""
    width, height = BAR_AREA
    base, out = MARGIN_TOP + height, []
    for value in (0, top / 2, top) if top % 2 == 0 else (0, top):  # counts: whole numbers
        y = base - height * value / top
        out.append(f'<line class="grid" x1="{MARGIN_LEFT}" x2="{MARGIN_LEFT + width}" '
                   f'y1="{y:.1f}" y2="{y:.1f}"/><text class="axis" x="{MARGIN_LEFT - 4}" '
                   f'y="{y + 4:.1f}" text-anchor="end">{_number(value)}</text>')
    return "".join(out)


def _number(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


@dataclass(frozen=True)
class Point:
    label: str  # what the point is, in words ("Fri 10 May: 75% of 4 answers")
    value: float | None  # None: nothing that day (the line breaks there)
    tick: str = ""  # a label written under the axis at this point, if any


def line_chart(chart_id: str, points: Sequence[Point], title: str, desc: str,
               top: float = 1.0) -> Markup:
    """Values over time as a line with a dot at each point, on an axis from 0 to
    ``top`` written as percentages (shares: agreement, accuracy). A point
    without a value breaks the line rather than pretending it was zero."""
    width, height = BAR_AREA
    total_w, total_h = MARGIN_LEFT + width + 8, MARGIN_TOP + height + MARGIN_BOTTOM
    step = width / max(len(points), 1)
    base = MARGIN_TOP + height
    parts = [_svg_open(chart_id, total_w, total_h, title, desc, "chart chart-line")]
    for value in (0, top / 2, top):
        y = base - height * value / top
        parts.append(f'<line class="grid" x1="{MARGIN_LEFT}" x2="{MARGIN_LEFT + width}" '
                     f'y1="{y:.1f}" y2="{y:.1f}"/><text class="axis" x="{MARGIN_LEFT - 4}" '
                     f'y="{y + 4:.1f}" text-anchor="end">{round(value * 100)}%</text>')
    run: list[str] = []
    dots = []
    for n, point in enumerate(points):
        x = MARGIN_LEFT + (n + 0.5) * step
        if point.tick:
            parts.append(f'<line class="tick" x1="{x:.2f}" x2="{x:.2f}" y1="{base}" '
                         f'y2="{base + 4}"/><text class="axis" x="{x:.2f}" y="{base + 18}" '
                         f'text-anchor="middle">{escape(point.tick)}</text>')
        if point.value is None:
            parts.append(_polyline(run))
            run = []
            continue
        y = base - height * min(max(point.value, 0), top) / top
        run.append(f"{x:.2f},{y:.2f}")
        dots.append(f'<circle class="dot" cx="{x:.2f}" cy="{y:.2f}" r="3">'
                    f'<title>{escape(point.label)}</title></circle>')
    parts.append(_polyline(run))
    parts.extend(dots)
    parts.append(f'<line class="baseline" x1="{MARGIN_LEFT}" x2="{MARGIN_LEFT + width}" '
                 f'y1="{base}" y2="{base}"/></svg>')
    return Markup("".join(parts))


def _polyline(coordinates: list[str]) -> str:
    return f'<polyline class="line" points="{" ".join(coordinates)}"/>' \
        if len(coordinates) > 1 else ""


HEAT_LEVELS = 4  # cells shaded heat-0 (none) to heat-4 (all of their row)


def heat_level(count: int, total: int) -> int:
    """How dark a cell of a matrix is: its share of its row, in HEAT_LEVELS steps
    (any count at all is at least 1, so a rare mistake still shows)."""
    if count <= 0 or total <= 0:
        return 0
    return max(1, min(HEAT_LEVELS, round(HEAT_LEVELS * count / total)))


def matrix_table(table_id: str, caption: str, corner: str, across: str,
                 rows: Sequence[str], columns: Sequence[str],
                 counts: Sequence[Sequence[int]],
                 extra: Sequence[tuple[str, Sequence[str]]] = ()) -> Markup:
    """A matrix of counts as an HTML table a screen reader can walk: a row
    header (``<th scope="row">``) per row, a column header per column whose
    hidden prefix ``across`` says what the columns are ("answered"), each cell
    shaded by its share of its row (CSS classes heat-0..4; the diagonal, where
    the row's and the column's names are the same, is marked ``match``). The
    ``extra`` columns (a header and one text per row) follow: totals, shares."""
    head = "".join(f'<th scope="col"><span class="visually-hidden">{escape(across)} </span>'
                   f'{escape(column)}</th>' for column in columns)
    head += "".join(f'<th scope="col" class="num">{escape(name)}</th>' for name, _ in extra)
    body = []
    for n, (name, row) in enumerate(zip(rows, counts, strict=True)):
        total = sum(row)
        cells = "".join(
            f'<td class="num heat-{heat_level(count, total)}'
            f'{" match" if column == name else ""}">{count}</td>'
            for column, count in zip(columns, row, strict=True))
        cells += "".join(f'<td class="num">{escape(texts[n])}</td>' for _, texts in extra)
        body.append(f'<tr><th scope="row">{escape(name)}</th>{cells}</tr>')
    return Markup(f'<table class="data matrix" id="{escape(table_id)}">'
                  f'<caption>{escape(caption)}</caption><thead><tr>'
                  f'<th scope="col">{escape(corner)}</th>{head}</tr></thead>'
                  f'<tbody>{"".join(body)}</tbody></table>')
