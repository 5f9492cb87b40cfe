"""The data behind a vector chart: axes from tick marks and labels, marks from the drawings.

A chart drawn as PDF paths (matplotlib, Excel, R export their charts this way) still holds its
numbers: bars are filled or outlined rectangles, lines are polylines, scatter markers are small
closed paths, boxes are rectangles with a median line and whiskers, and the axes are tick marks
with numeric labels beside them (chart_axes.py). ``recover`` maps the marks (chart_marks.py)
through the axes into data coordinates and returns a table: one row per x value (or category,
bin, box), one column per series, named from the legend where there is one. It works on what
PyMuPDF extracts (``page.get_drawings()``, ``page.get_text("dict")``) and never guesses: a plot
whose axes carry no numeric tick labels gives a ChartData without rows and with the reason; a
figure with no plot frame gives None.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math

import pymupdf

from vlcurate.transforms.sources.pdf.chart_axes import (
    Axis, Span, axis_from, axis_of, axis_titles, factor_of, frame_of, parse_number, spans_of, split_joined,
    ticks)
from vlcurate.transforms.sources.pdf.chart_marks import (
    Marks, bars, boxes, dotted_segments, is_histogram, is_step, lines, markers, marks_of, rgb, segment_steps, step_points,
    transpose)
from vlcurate.transforms.sources.pdf.tables import markdown_table

__all__ = ["ChartData", "parse_number", "recover", "rgb"]

_LABEL_GAP_PT = 16.0  # how far category labels may stand under a plot without tick marks
_REGION_SHARE = 0.06  # marks may reach this share of the frame beyond it (R's axes stop at the last tick)


@dataclasses.dataclass(frozen=True)
class ChartData:
    kind: str  # bar, stacked_bar, histogram, box, line, step, scatter; horizontal_ before a turned one
    x_label: str
    y_label: str
    series: tuple[str, ...]
    rows: tuple[tuple[str, tuple[float | None, ...]], ...]  # (x, one value per series)
    y_step: float
    steps: tuple[float, ...] = ()  # a step per column where they differ (a histogram's bin ends)
    reason: str | None = None  # why there are no rows

    @classmethod
    def unreadable(cls, reason: str, x_label: str = "", y_label: str = "") -> ChartData:
        """A plot whose values cannot be read (no numeric tick labels): a chart without data."""
        return cls("unknown", x_label, y_label, (), (), 0.0, reason=reason)

    def _cells(self, values) -> list[str]:
        steps = self.steps or (self.y_step,) * len(values)
        return ["" if v is None else _format(v, step) for v, step in zip(values, steps)]

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([self.x_label or "x", *self.series])
        for x, values in self.rows:
            writer.writerow([x, *self._cells(values)])
        return out.getvalue()

    def markdown(self) -> str:
        return markdown_table([self.x_label or "x", *self.series], [[x, *self._cells(values)] for x, values in self.rows])


def _format(value: float, step: float) -> str:
    """A value to two decimals finer than the axis ticks step (ticks of 20: 61.2; of 0.5: 1.25),
    without trailing zeros."""
    decimals = 2 if step <= 0 else max(0, 2 - math.floor(math.log10(step)))
    text = f"{value:.{min(decimals, 6)}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def recover(page: pymupdf.Page, bbox: pymupdf.Rect, drawings: list | None = None) -> ChartData | None:
    """The chart's data table; a ChartData without rows (and its reason) for a plot whose values
    cannot be read; None when ``bbox`` holds no plot (no axes with ticks).

    ``drawings`` is the page's ``get_drawings()`` when the caller has it already.
    """
    area = pymupdf.Rect(bbox)
    page_drawings = page.get_drawings() if drawings is None else drawings
    drawings = [d for d in page_drawings if pymupdf.Rect(d["rect"]).intersects(area) or
                pymupdf.Rect(d["rect"]).is_empty and area.contains(d["rect"].tl)]
    spans = spans_of(page, area)
    y_ticks, x_ticks = ticks(drawings)
    frame = frame_of(drawings, y_ticks, x_ticks)
    if frame is None:
        return None
    spans = split_joined(page, spans, x_ticks)
    y_axis, y_labels = axis_of(y_ticks, spans, vertical=True)
    x_axis, x_labels = axis_of(x_ticks, spans, vertical=False)
    if x_axis is None:  # no tick marks: the labels standing right under the plot, if any
        x_labels = [s for s in spans if s.horizontal and 0 <= s.rect.y0 - frame.y1 < _LABEL_GAP_PT
                    and frame.x0 <= s.center.x <= frame.x1]
        x_axis = axis_from([(s.center.x, s.text) for s in x_labels], vertical=False)
    y_factor, y_unit = factor_of(spans, frame, vertical=True)
    x_factor, x_unit = factor_of(spans, frame, vertical=False)
    y_axis = y_axis and y_axis.times(y_factor)
    x_axis = x_axis and x_axis.times(x_factor)
    x_label, y_label = axis_titles(spans, frame, x_labels + y_labels + y_unit + x_unit)
    legend = _legend(drawings, spans, frame)
    grow = _REGION_SHARE * max(frame.width, frame.height)
    region = (frame + (-grow, -grow, grow, grow)) & area
    drawings = [d for d in drawings if not legend.box.contains(d["rect"])]
    if y_axis is not None and y_axis.numeric:
        found = _read(marks_of(drawings, region), frame, x_axis, y_axis)
        prefix = ""
    elif x_axis is not None and x_axis.numeric:  # bars lying down: read turned, values along x
        turned = None if y_axis is None else Axis(categories=y_axis.categories)
        found = _read(marks_of(drawings, region, flip=True), transpose(frame), turned, x_axis)
        prefix, x_label, y_label, y_axis = "horizontal_", y_label, x_label, x_axis
    else:
        reason = "the plot's axes have no numeric tick labels" if (y_ticks or x_ticks) else "no tick marks"
        return ChartData.unreadable(reason, x_label, y_label) if _has_marks(drawings, region) else None
    if found is None:
        return ChartData.unreadable("no bars, boxes, lines or markers inside the axes", x_label, y_label)
    kind, series_found, header, steps = found
    names = {color: name for color, name in legend.entries}
    colors = list(series_found)
    series = header or tuple(names.get(color) or f"series {i + 1}" for i, color in enumerate(colors))
    category_axis = turned if prefix else x_axis
    rows = _table(series_found, colors, category_axis) if not header else _columns(series_found)
    if kind == "histogram":
        x_label = "bin start"
    return ChartData(prefix + kind, x_label, y_label, series, rows, y_axis.step, steps)


def _has_marks(drawings, region) -> bool:
    marks = marks_of(drawings, region)
    return bool(marks.filled or marks.outlined or marks.polylines or marks.dots)


def _read(marks: Marks, frame: pymupdf.Rect, x_axis: Axis | None, y_axis: Axis):
    """(kind, found, header, steps) of the marks, value axis up: boxes, bars (stacked, bins),
    lines (steps), then markers. ``found`` is colour -> {x: value}, or for boxes and bins
    x -> values under ``header``."""
    found_boxes = boxes(marks, frame)
    if found_boxes:
        rows = {}
        for number, box in enumerate(found_boxes, start=1):
            x = _x_of(box.center, x_axis, number)
            rows[x] = tuple(y_axis.value(y) for y in (box.whisker_low, box.q1, box.median, box.q3, box.whisker_high))
        return "box", rows, ("whisker low", "q1", "median", "q3", "whisker high"), ()
    found_bars = bars(marks, frame)
    if found_bars:
        if x_axis is not None and x_axis.numeric and is_histogram(found_bars):
            rows = {}
            for bar in sorted(found_bars, key=lambda b: b.rect.x0):
                start = _x_of(bar.rect.x0, x_axis, 0)
                rows[start] = (x_axis.value(bar.rect.x1), _bar_value(bar, y_axis))
            return "histogram", rows, ("bin end", "height"), (x_axis.step, y_axis.step)
        stacked = any(bar.base is not None for bar in found_bars)
        return ("stacked_bar" if stacked else "bar"), _bar_series(found_bars, x_axis, y_axis), (), ()
    if x_axis is None:
        return None
    found_lines, drawn_steps = lines(marks) + dotted_segments(marks), segment_steps(marks, frame)
    if found_lines or drawn_steps:
        steps = all(is_step(points) for _, points in found_lines)
        groups = drawn_steps + [(c, step_points(p) if steps else p) for c, p in found_lines]
        # Series are told apart by colour; a second series of one colour (R's dotted overlay
        # over its ECDF) gets a key of its own.
        keyed = [(color if [c for c, _ in groups[:i]].count(color) == 0 else (*color, i), points)
                 for i, (color, points) in enumerate(groups)]
        kind = "step" if drawn_steps or steps else "line"
        return kind, _point_series(keyed, x_axis, y_axis), (), ()
    found_markers = markers(marks, set())
    if found_markers:
        return "scatter", _point_series(found_markers, x_axis, y_axis), (), ()
    return None


def _x_of(position: float, x_axis: Axis | None, number: int) -> str:
    if x_axis is None:
        return str(number)
    if x_axis.numeric:
        return _format(x_axis.value(position), x_axis.step)
    return x_axis.category(position)


def _bar_value(bar, y_axis: Axis) -> float:
    """A bar's value: the end further from zero; a stacked segment's: its own height."""
    top, bottom = y_axis.value(bar.rect.y0), y_axis.value(bar.rect.y1)
    if bar.base is not None:
        return abs(top - bottom) if bar.base == bar.rect.y1 else -abs(top - bottom)
    return top if abs(top) >= abs(bottom) else bottom


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


def _sample_left_of(drawings, box: pymupdf.Rect, span: Span) -> tuple | None:
    for drawing in drawings:
        rect = pymupdf.Rect(drawing["rect"])
        if not box.contains(rect) or rect == box or rect.x1 > span.rect.x0 + 1:
            continue
        if abs((rect.y0 + rect.y1) / 2 - span.center.y) < 5:
            return rgb(drawing.get("fill") if drawing["type"] == "f" else drawing.get("color"))
    return None


# --- series ------------------------------------------------------------------------------------------


def _bar_series(bars, x_axis: Axis | None, y_axis: Axis) -> dict[tuple, dict[str, float]]:
    """colour -> {x: value}."""
    found: dict[tuple, dict[str, float]] = {}
    for bar in sorted(bars, key=lambda item: (item.rect.x0, -item.rect.y1)):
        color, rect, value = bar.color, bar.rect, _bar_value(bar, y_axis)
        x = _x_of((rect.x0 + rect.x1) / 2, x_axis, len(found.get(color, {})) + 1)
        found.setdefault(color, {})[x] = value
    return found


def _point_series(groups, x_axis: Axis, y_axis: Axis) -> dict[tuple, dict[str, float]]:
    found: dict[tuple, dict[str, float]] = {}
    for color, points in groups:
        series = found.setdefault(color, {})
        for point in points:
            series[_x_of(point.x, x_axis, 0)] = y_axis.value(point.y)
    return found


def _table(found, colors, x_axis: Axis | None) -> tuple[tuple[str, tuple[float | None, ...]], ...]:
    xs = {x for series in found.values() for x in series}
    if x_axis is not None and not x_axis.numeric:
        order = [label for _, label in x_axis.categories]
        ordered = [x for x in order if x in xs]
    else:
        ordered = sorted(xs, key=lambda x: float(x) if parse_number(x) is not None else math.inf)
    return tuple((x, tuple(found[color].get(x) for color in colors)) for x in ordered)


def _columns(found) -> tuple[tuple[str, tuple[float | None, ...]], ...]:
    """Rows of a box plot or a histogram: x -> its values, in the chart's order."""
    return tuple((x, tuple(values)) for x, values in found.items())
