"""The data behind a vector chart: axes from tick marks and labels, marks from the drawings.

A chart drawn as PDF paths (matplotlib, Excel, R export their charts this way) still holds its
numbers: bars are filled rectangles, lines are polylines, scatter markers are small closed paths,
and the axes are tick marks with numeric labels beside them. ``recover`` maps the marks through
the axes into data coordinates and returns a table: one row per x value (or category), one column
per series, named from the legend where there is one. It works on what PyMuPDF extracts
(``page.get_drawings()``, ``page.get_text("dict")``) and never guesses: a chart without two
numeric ticks on its value axis gives None.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import re
import statistics

import pymupdf

_NUMBER = re.compile(r"^[−\-–+]?\(?\$?\d[\d,]*(\.\d+)?%?\)?$|^[−\-–+]?\.\d+%?$")
_TICK_MAX_PT = 10.0  # tick marks are short lines at the axes
_LABEL_GAP_PT = 16.0  # how far a tick label may stand from its tick
_MARKER_MAX_PT = 14.0  # a closed path smaller than this is a marker, not a shape


@dataclasses.dataclass(frozen=True)
class Axis:
    """A linear map from page coordinates to data values, or categories at positions."""

    scale: float = 0.0
    offset: float = 0.0
    categories: tuple[tuple[float, str], ...] = ()  # (page position, label)
    step: float = 0.0  # distance between ticks in data units

    @property
    def numeric(self) -> bool:
        return not self.categories

    def value(self, position: float) -> float:
        return self.scale * position + self.offset

    def category(self, position: float) -> str:
        return min(self.categories, key=lambda item: abs(item[0] - position))[1]


@dataclasses.dataclass(frozen=True)
class ChartData:
    kind: str  # bar, line, scatter
    x_label: str
    y_label: str
    series: tuple[str, ...]
    rows: tuple[tuple[str, tuple[float | None, ...]], ...]  # (x, one value per series)
    y_step: float

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([self.x_label or "x", *self.series])
        for x, values in self.rows:
            writer.writerow([x, *("" if v is None else _format(v, self.y_step) for v in values)])
        return out.getvalue()

    def markdown(self) -> str:
        header = [self.x_label or "x", *self.series]
        lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
        for x, values in self.rows:
            cells = [x, *("" if v is None else _format(v, self.y_step) for v in values)]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        return "\n".join(lines)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _format(value: float, step: float) -> str:
    """A value to two decimals finer than the axis ticks step (ticks of 20: 61.2; of 0.5: 1.25),
    without trailing zeros."""
    decimals = 2 if step <= 0 else max(0, 2 - math.floor(math.log10(step)))
    text = f"{value:.{min(decimals, 6)}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def parse_number(text: str) -> float | None:
    text = text.strip().replace("−", "-").replace("–", "-")
    if not _NUMBER.match(text):
        return None
    negative = text.startswith("-") or (text.startswith("(") and text.endswith(")"))
    digits = text.strip("-+()$%").replace(",", "")
    try:
        value = float(digits)
    except ValueError:
        return None
    return -value if negative else value


# --- reading the page -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Span:
    text: str
    rect: pymupdf.Rect
    horizontal: bool

    @property
    def center(self) -> pymupdf.Point:
        return pymupdf.Point((self.rect.x0 + self.rect.x1) / 2, (self.rect.y0 + self.rect.y1) / 2)


def _spans(page: pymupdf.Page, clip: pymupdf.Rect) -> list[_Span]:
    out = []
    for block in page.get_text("dict", clip=clip).get("blocks", []):
        for line in block.get("lines", []):
            horizontal = abs(line["dir"][1]) < 0.01
            text = " ".join(span["text"].strip() for span in line["spans"] if span["text"].strip())
            rect = pymupdf.Rect(line["bbox"])
            # The clip cuts lines that cross its edge into stray letters: whole lines only.
            if text and clip.contains(pymupdf.Point((rect.x0 + rect.x1) / 2, (rect.y0 + rect.y1) / 2)):
                out.append(_Span(text, rect, horizontal))
    return out


def _segments(drawing) -> list[tuple[pymupdf.Point, pymupdf.Point]]:
    return [(item[1], item[2]) for item in drawing["items"] if item[0] == "l"]


def _color(value) -> tuple | None:
    return None if value is None else tuple(round(c, 3) for c in value)


def recover(page: pymupdf.Page, bbox: pymupdf.Rect, drawings: list | None = None) -> ChartData | None:
    """The chart's data table, or None when ``bbox`` holds no chart with numeric axes.

    ``drawings`` is the page's ``get_drawings()`` when the caller has it already.
    """
    area = pymupdf.Rect(bbox)
    page_drawings = page.get_drawings() if drawings is None else drawings
    drawings = [d for d in page_drawings if pymupdf.Rect(d["rect"]).intersects(area) or
                pymupdf.Rect(d["rect"]).is_empty and area.contains(d["rect"].tl)]
    spans = _spans(page, area)
    y_ticks, x_ticks = _ticks(drawings)
    frame = _frame(drawings, y_ticks, x_ticks)
    if frame is None:
        return None
    y_axis, y_labels = _axis(y_ticks, spans, vertical=True)
    x_axis, x_labels = _axis(x_ticks, spans, vertical=False)
    if x_axis is None:  # no tick marks: the labels standing right under the plot, if any
        x_labels = [s for s in spans if s.horizontal and 0 <= s.rect.y0 - frame.y1 < _LABEL_GAP_PT
                    and frame.x0 <= s.center.x <= frame.x1]
        x_axis = _axis_from([(s.center.x, s.text) for s in x_labels], vertical=False)
    if y_axis is None or not y_axis.numeric:
        return None
    legend = _legend(drawings, spans, frame)
    names = {color: name for color, name in legend.entries}
    marks = [d for d in drawings if not legend.box.contains(d["rect"]) and _inside(d["rect"], frame)]
    bars = _bars(marks, frame)
    lines = _lines(marks, frame)
    markers = _markers(marks, {color for color, _ in lines})
    if bars:
        kind, found = "bar", _bar_series(bars, x_axis, y_axis)
    elif lines:
        kind, found = "line", _point_series(lines, x_axis, y_axis)
    elif markers:
        kind, found = "scatter", _point_series(markers, x_axis, y_axis)
    else:
        return None
    if x_axis is None and kind != "bar":
        return None
    colors = list(found)
    series = tuple(names.get(color) or f"series {i + 1}" for i, color in enumerate(colors))
    rows = _table(found, colors, x_axis)
    x_label, y_label = _axis_titles(spans, frame, x_labels + y_labels)
    return ChartData(kind, x_label, y_label, series, rows, y_axis.step)


# --- axes -----------------------------------------------------------------------------------------


def _ticks(drawings) -> tuple[list[tuple[float, float, float]], list[tuple[float, float, float]]]:
    """Short horizontal lines (y ticks: (y, x0, x1)) and short vertical ones (x ticks: (x, y0, y1))."""
    y_ticks, x_ticks = [], []
    for drawing in drawings:
        for start, end in _segments(drawing):
            length = abs(start - end)
            if not 0 < length <= _TICK_MAX_PT:
                continue
            if abs(start.y - end.y) < 0.01:
                y_ticks.append((start.y, min(start.x, end.x), max(start.x, end.x)))
            elif abs(start.x - end.x) < 0.01:
                x_ticks.append((start.x, min(start.y, end.y), max(start.y, end.y)))
    return _aligned(y_ticks), _aligned(x_ticks)


def _aligned(ticks):
    """The ticks of one axis: the largest group that shares its inner end (the axis line)."""
    groups: dict[float, list] = {}
    for tick in ticks:
        groups.setdefault(round(tick[2], 0), []).append(tick)
        groups.setdefault(round(tick[1], 0), []).append(tick)
    if not groups:
        return []
    best = max(groups.values(), key=len)
    return sorted(set(best)) if len(best) >= 2 else []


def _frame(drawings, y_ticks, x_ticks) -> pymupdf.Rect | None:
    """The plot area: the axes rectangle the ticks stand on."""
    if len(y_ticks) < 2:
        return None
    # The y axis is where the ticks' shared end is; the x axis likewise.
    left = statistics.mode(round(t[2], 1) for t in y_ticks)
    if x_ticks:
        bottom = statistics.mode(round(t[1], 1) for t in x_ticks)
    else:
        bottom = max(t[0] for t in y_ticks)
    right, top = left, min(t[0] for t in y_ticks)
    for drawing in drawings:  # spines and the axes background reach further than the ticks
        rect = pymupdf.Rect(drawing["rect"])
        if abs(rect.x0 - left) < 1 and abs(rect.y1 - bottom) < 1:
            right, top = max(right, rect.x1), min(top, rect.y0)
        elif abs(rect.y1 - bottom) < 1 and rect.x0 >= left - 1:
            right = max(right, rect.x1)
    if right - left < 10 or bottom - top < 10:
        return None
    return pymupdf.Rect(left, top, right, bottom)


def _axis(ticks, spans, vertical: bool) -> tuple[Axis | None, list[_Span]]:
    """Pair each tick with the label beside it (the nearest); fit positions to values, or take
    the labels as categories. Returns the axis and the label spans it used."""
    pairs, used = [], []
    for position, start, end in ticks:
        best, distance = None, math.inf
        for span in spans:
            if not span.horizontal:
                continue
            if vertical:  # label to the left of the tick, level with it
                gap = start - span.rect.x1
                near = abs(span.center.y - position) < 4 and -2 < gap < _LABEL_GAP_PT
            else:  # label below the tick, centred on it
                gap = span.rect.y0 - end
                near = abs(span.center.x - position) < 4 and -2 < gap < _LABEL_GAP_PT
            if near and gap < distance:
                best, distance = span, gap
        if best is not None:
            pairs.append((position, best.text))
            used.append(best)
    return _axis_from(pairs, vertical), used


def _axis_from(pairs, vertical: bool) -> Axis | None:
    if len(pairs) < 2:
        return None
    numbers = [(position, parse_number(text)) for position, text in pairs]
    if all(value is not None for _, value in numbers):
        positions = [p for p, _ in numbers]
        values = [v for _, v in numbers]
        if len(set(values)) < 2:
            return None
        scale, offset = _fit(positions, values)
        step = statistics.median(abs(b - a) for a, b in zip(sorted(values), sorted(values)[1:]))
        return Axis(scale=scale, offset=offset, step=step)
    if vertical:
        return None
    return Axis(categories=tuple(sorted(pairs)))


def _fit(positions, values) -> tuple[float, float]:
    """Least-squares line value = scale * position + offset."""
    mean_p, mean_v = statistics.fmean(positions), statistics.fmean(values)
    spread = sum((p - mean_p) ** 2 for p in positions)
    scale = sum((p - mean_p) * (v - mean_v) for p, v in zip(positions, values)) / spread
    return scale, mean_v - scale * mean_p


def _axis_titles(spans, frame: pymupdf.Rect, tick_labels) -> tuple[str, str]:
    """The x title: the lowest text under the plot that is not a tick label; the y title: the
    vertical text furthest left of it."""
    below = [s for s in spans if s.horizontal and s not in tick_labels and frame.x0 <= s.center.x <= frame.x1
             and frame.y1 < s.rect.y0 < frame.y1 + 48]
    x_label = max(below, key=lambda s: s.rect.y0).text if below else ""
    left = [s for s in spans if not s.horizontal and s.rect.x1 < frame.x0 and frame.y0 <= s.center.y <= frame.y1]
    y_label = min(left, key=lambda s: s.rect.x0).text if left else ""
    return x_label, y_label


# --- legend ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Legend:
    box: pymupdf.Rect
    entries: tuple[tuple[tuple, str], ...]  # (colour, label)


def _legend(drawings, spans, frame: pymupdf.Rect) -> _Legend:
    """A framed box inside the plot holding short colour samples each followed by a label."""
    for drawing in drawings:
        rect = pymupdf.Rect(drawing["rect"])
        if drawing.get("fill") is None or drawing.get("color") is None or not frame.contains(rect):
            continue
        if rect.width * rect.height > 0.5 * frame.width * frame.height:
            continue
        texts = [s for s in spans if s.horizontal and rect.contains(s.rect.tl + (1, 1))]
        if not texts:
            continue
        entries = []
        for span in texts:
            sample = _sample_left_of(drawings, rect, span)
            if sample is not None:
                entries.append((sample, span.text))
        if entries:
            return _Legend(rect, tuple(entries))
    return _Legend(pymupdf.Rect(), ())


def _sample_left_of(drawings, box: pymupdf.Rect, span: _Span) -> tuple | None:
    for drawing in drawings:
        rect = pymupdf.Rect(drawing["rect"])
        if not box.contains(rect) or rect == box or rect.x1 > span.rect.x0 + 1:
            continue
        if abs((rect.y0 + rect.y1) / 2 - span.center.y) < 5:
            return _color(drawing.get("fill") if drawing["type"] == "f" else drawing.get("color"))
    return None


# --- marks ----------------------------------------------------------------------------------------


def _inside(rect, frame: pymupdf.Rect) -> bool:
    rect = pymupdf.Rect(rect)
    return frame.x0 - 1 <= rect.x0 and rect.x1 <= frame.x1 + 1 and frame.y0 - 1 <= rect.y0 and rect.y1 <= frame.y1 + 1


def _bars(marks, frame: pymupdf.Rect) -> list[tuple[tuple, pymupdf.Rect]]:
    """Filled rectangles standing on a common baseline: (colour, rectangle)."""
    candidates = []
    for drawing in marks:
        if drawing["type"] != "f" or drawing.get("fill") is None:
            continue
        for item in drawing["items"]:
            if item[0] == "re":
                rect = pymupdf.Rect(item[1])
                if rect.width > 0.5 and rect.height > 0 and rect.width * rect.height < 0.5 * frame.width * frame.height:
                    candidates.append((_color(drawing["fill"]), rect))
    if len(candidates) < 2:
        return []
    # Bars share an end: the baseline (value 0, or the axis); legend swatches and shapes do not.
    ends = [round(rect.y1, 0) for _, rect in candidates] + [round(rect.y0, 0) for _, rect in candidates]
    baseline = statistics.mode(ends)
    standing = [(c, r) for c, r in candidates if abs(r.y1 - baseline) < 1 or abs(r.y0 - baseline) < 1]
    return standing if len(standing) >= 2 else []


def _lines(marks, frame: pymupdf.Rect) -> list[tuple[tuple, list[pymupdf.Point]]]:
    """Stroked polylines of three or more points that are not axis or grid lines."""
    out = []
    for drawing in marks:
        if drawing["type"] != "s" or drawing.get("color") is None:
            continue
        segments = _segments(drawing)
        if len(segments) < 2 or len(segments) != len(drawing["items"]):
            continue
        points = [segments[0][0]] + [end for _, end in segments]
        ys = [p.y for p in points]
        if len(segments) < 3 and max(ys) - min(ys) < 0.01:  # a flat two-segment grid or legend line
            continue
        out.append((_color(drawing["color"]), points))
    return out


def _markers(marks, line_colors) -> list[tuple[tuple, list[pymupdf.Point]]]:
    """Small closed filled paths (scatter markers) grouped by colour; a line's own markers skipped."""
    by_color: dict[tuple, list[pymupdf.Point]] = {}
    for drawing in marks:
        rect = pymupdf.Rect(drawing["rect"])
        color = _color(drawing.get("fill"))
        if color is None or color in line_colors or not (0 < rect.width <= _MARKER_MAX_PT and 0 < rect.height <= _MARKER_MAX_PT):
            continue
        by_color.setdefault(color, []).append(pymupdf.Point((rect.x0 + rect.x1) / 2, (rect.y0 + rect.y1) / 2))
    return [(color, points) for color, points in by_color.items() if len(points) >= 2]


def _bar_series(bars, x_axis: Axis | None, y_axis: Axis) -> dict[tuple, dict[str, float]]:
    """colour -> {x: value}; a bar's value is the end further from zero."""
    found: dict[tuple, dict[str, float]] = {}
    for color, rect in sorted(bars, key=lambda item: item[1].x0):
        top, bottom = y_axis.value(rect.y0), y_axis.value(rect.y1)
        value = top if abs(top) >= abs(bottom) else bottom
        center = (rect.x0 + rect.x1) / 2
        if x_axis is None:
            x = f"{len(found.get(color, {})) + 1}"
        elif x_axis.numeric:
            x = _format(x_axis.value(center), x_axis.step)
        else:
            x = x_axis.category(center)
        found.setdefault(color, {})[x] = value
    return found


def _point_series(groups, x_axis: Axis, y_axis: Axis) -> dict[tuple, dict[str, float]]:
    found: dict[tuple, dict[str, float]] = {}
    for color, points in groups:
        series = found.setdefault(color, {})
        for point in points:
            x = _format(x_axis.value(point.x), x_axis.step) if x_axis.numeric else x_axis.category(point.x)
            series[x] = y_axis.value(point.y)
    return found


def _table(found, colors, x_axis: Axis | None) -> tuple[tuple[str, tuple[float | None, ...]], ...]:
    xs = {x for series in found.values() for x in series}
    if x_axis is not None and not x_axis.numeric:
        order = [label for _, label in x_axis.categories]
        ordered = [x for x in order if x in xs]
    else:
        ordered = sorted(xs, key=lambda x: float(x) if parse_number(x) is not None else math.inf)
    return tuple((x, tuple(found[color].get(x) for color in colors)) for x in ordered)
