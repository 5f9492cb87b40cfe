"""The marks of a chart, read from its drawings in the plot area: bars (standing on a baseline,
stacked segments, adjacent histogram bins), boxes of a box plot, polylines and steps, and
scatter markers. Everything here reads "up" as the value direction: a horizontal chart is read
by transposing its drawings first (``transpose``), so one set of rules serves both."""

from __future__ import annotations

import dataclasses
import statistics

import pymupdf

_MARKER_MAX_PT = 14.0  # a closed path smaller than this is a marker, not a shape


def rgb(value) -> tuple | None:
    return None if value is None else tuple(round(c, 3) for c in value)


def visible(drawings: list) -> list:
    """The drawings that show on the page: a white rectangle filled and not stroked (a plotting
    library's figure and axes background) is left out, or it would join a figure to the caption
    and text drawn on it, make it as big as the page, or pass for a bar or a box."""
    return [d for d in drawings if not (
        d.get("type") == "f" and d.get("color") is None and rgb(d.get("fill")) == (1.0, 1.0, 1.0)
        and len(d["items"]) == 1 and d["items"][0][0] == "re")]


@dataclasses.dataclass(frozen=True)
class Marks:
    """Drawings reduced to what charts are made of, in page or transposed coordinates."""

    filled: tuple[tuple[tuple, pymupdf.Rect], ...]  # (colour, rectangle) filled
    outlined: tuple[tuple[tuple, pymupdf.Rect], ...]  # (colour, rectangle) stroked only
    polylines: tuple[tuple[tuple, tuple[pymupdf.Point, ...]], ...]  # (colour, points), two segments or more
    segments: tuple[tuple[tuple, pymupdf.Point, pymupdf.Point], ...]  # single straight lines
    dots: tuple[tuple[tuple, pymupdf.Point], ...]  # small closed paths: (colour, centre)


def _t(point, flip: bool) -> pymupdf.Point:
    return pymupdf.Point(point.y, point.x) if flip else pymupdf.Point(point)


def _tr(rect, flip: bool) -> pymupdf.Rect:
    rect = pymupdf.Rect(rect)
    return pymupdf.Rect(rect.y0, rect.x0, rect.y1, rect.x1) if flip else rect


def transpose(rect: pymupdf.Rect) -> pymupdf.Rect:
    return _tr(rect, True)


def marks_of(drawings, region: pymupdf.Rect, flip: bool = False) -> Marks:
    """The marks of the drawings in ``region``; rectangles are cut to it (a bar on a log axis
    reaches far below the frame)."""
    filled, outlined, polylines, lines, dots = [], [], [], [], []
    for drawing in visible(drawings):
        rect = pymupdf.Rect(drawing["rect"])
        items = drawing["items"]
        fill, stroke = rgb(drawing.get("fill")), rgb(drawing.get("color"))
        kinds = {item[0] for item in items}
        if kinds <= {"re", "qu"} and (fill is not None or stroke is not None):
            for item in items:
                box = pymupdf.Rect(item[1]) if item[0] == "re" else pymupdf.Quad(item[1]).rect
                if not box.intersects(region) and not (box.is_empty and region.contains(box.tl)):
                    continue
                if item[0] == "re":
                    box &= region
                if not _inside(box, region):
                    continue
                (filled if fill is not None else outlined).append(
                    (fill if fill is not None else stroke, _tr(box, flip)))
            continue
        if not _inside(rect, region):
            continue
        if fill is not None and kinds == {"l"} and len(items) >= 2 and _rectangular(items, rect):
            # A rectangle drawn as lines: a bar of value 0 is a flat one, and still a bar.
            filled.append((fill, _tr(rect, flip)))
            continue
        if 0 < rect.width <= _MARKER_MAX_PT and 0 < rect.height <= _MARKER_MAX_PT and "c" in kinds or (
                drawing.get("closePath") and 0 < rect.width <= _MARKER_MAX_PT and 0 < rect.height <= _MARKER_MAX_PT):
            color = fill if fill is not None else stroke
            if color is not None:
                dots.append((color, _t(pymupdf.Point((rect.x0 + rect.x1) / 2, (rect.y0 + rect.y1) / 2), flip)))
            continue
        if stroke is None or kinds != {"l"}:
            continue
        if len(items) == 1:
            lines.append((stroke, _t(items[0][1], flip), _t(items[0][2], flip)))
        elif all(abs(a[2] - b[1]) < 0.01 for a, b in zip(items, items[1:])):
            polylines.append((stroke, tuple(_t(p, flip) for p in [items[0][1]] + [item[2] for item in items])))
        else:  # separate lines drawn in one path (whiskers and caps, R's segments())
            lines.extend((stroke, _t(item[1], flip), _t(item[2], flip)) for item in items)
    return Marks(tuple(filled), tuple(outlined), tuple(polylines), tuple(lines), tuple(dots))


def _rectangular(items, rect: pymupdf.Rect) -> bool:
    """Lines that only join the corners of their bounding box."""
    near = lambda v, a, b: abs(v - a) < 0.01 or abs(v - b) < 0.01  # noqa: E731
    return all(near(p.x, rect.x0, rect.x1) and near(p.y, rect.y0, rect.y1) for item in items for p in item[1:3])


def _inside(rect, frame: pymupdf.Rect) -> bool:
    rect = pymupdf.Rect(rect)
    return frame.x0 - 1 <= rect.x0 and rect.x1 <= frame.x1 + 1 and frame.y0 - 1 <= rect.y0 and rect.y1 <= frame.y1 + 1


# --- bars ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Bar:
    color: tuple
    rect: pymupdf.Rect
    base: float | None  # the page y it stands on when that is another bar (a stacked segment)


def bars(marks: Marks, frame: pymupdf.Rect) -> list[Bar]:
    """Rectangles standing on a common baseline, and the segments stacked on them. Filled ones;
    outlined ones where nothing is filled (R draws histograms as outlines)."""
    found = marks.filled if len(marks.filled) >= 2 else marks.outlined
    candidates = [(c, r) for c, r in found if r.width > 0.5 and r.height >= 0
                  and r.width * r.height < 0.5 * frame.width * frame.height]
    if len(candidates) < 2:
        return []
    # Bars share an end: the baseline (value 0, or the axis); legend swatches and shapes do not.
    ends = [round(r.y1, 0) for _, r in candidates] + [round(r.y0, 0) for _, r in candidates]
    baseline = statistics.mode(ends)
    standing = [Bar(c, r, None) for c, r in candidates if abs(r.y1 - baseline) < 1 or abs(r.y0 - baseline) < 1]
    rest = [(c, r) for c, r in candidates if not (abs(r.y1 - baseline) < 1 or abs(r.y0 - baseline) < 1)]
    grown = True
    while rest and grown:  # a segment stands on the end of a bar under (or over) it, as wide
        grown = False
        for color, rect in list(rest):
            for bar in standing:
                if abs(bar.rect.x0 - rect.x0) < 1 and abs(bar.rect.x1 - rect.x1) < 1 and (
                        abs(rect.y1 - bar.rect.y0) < 0.6 or abs(rect.y0 - bar.rect.y1) < 0.6):
                    base = rect.y1 if abs(rect.y1 - bar.rect.y0) < 0.6 else rect.y0
                    standing.append(Bar(color, rect, base))
                    rest.remove((color, rect))
                    grown = True
                    break
    return standing if len(standing) >= 2 else []


def is_histogram(found: list[Bar]) -> bool:
    """Bins: one colour, nothing stacked, each bar touching the next."""
    if len({b.color for b in found}) != 1 or any(b.base is not None for b in found) or len(found) < 3:
        return False
    rects = sorted((b.rect for b in found), key=lambda r: r.x0)
    return all(abs(a.x1 - b.x0) < 0.6 for a, b in zip(rects, rects[1:]))


# --- boxes ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Box:
    center: float
    whisker_low: float  # page y of each, in the value direction
    q1: float
    median: float
    q3: float
    whisker_high: float


def boxes(marks: Marks, frame: pymupdf.Rect) -> list[Box]:
    """Box-and-whisker marks: a rectangle crossed by a median line as wide as it, with whiskers
    at its centre reaching out from its top and bottom (to the box's ends when there are none)."""
    out = []
    horizontal = [(a, b) for _, a, b in marks.segments if abs(a.y - b.y) < 0.01]
    vertical = [(a, b) for _, a, b in marks.segments if abs(a.x - b.x) < 0.01]
    for _, rect in marks.outlined + marks.filled:
        if rect.width < 2 or rect.height < 0.5 or rect.width > 0.5 * frame.width:
            continue  # a box plot's boxes stand side by side; the plot's own frame is no box
        medians = [a.y for a, b in horizontal if rect.y0 - 0.5 <= a.y <= rect.y1 + 0.5
                   and min(a.x, b.x) <= rect.x0 + 1 and max(a.x, b.x) >= rect.x1 - 1
                   and abs(a.x - b.x) <= 1.2 * rect.width + 1]  # as wide as the box, not an axis line
        if not medians:
            continue
        center = (rect.x0 + rect.x1) / 2
        reach = [(min(a.y, b.y), max(a.y, b.y)) for a, b in vertical if abs(a.x - center) < 1]
        high = min([y0 for y0, y1 in reach if abs(y1 - rect.y0) < 1] + [rect.y0])
        low = max([y1 for y0, y1 in reach if abs(y0 - rect.y1) < 1] + [rect.y1])
        out.append(Box(center, low, rect.y1, statistics.median(medians), rect.y0, high))
    return sorted(out, key=lambda box: box.center)


# --- lines, steps and points ----------------------------------------------------------------------------


def lines(marks: Marks) -> list[tuple[tuple, list[pymupdf.Point]]]:
    """Polylines of three or more points that are not flat (grid or legend lines)."""
    out = []
    for color, points in marks.polylines:
        ys = [p.y for p in points]
        if len(points) < 4 and max(ys) - min(ys) < 0.01:
            continue
        out.append((color, list(points)))
    return out


def dotted_segments(marks: Marks) -> list[tuple[tuple, list[pymupdf.Point]]]:
    """A line of two points: one straight line with a marker of its colour on each end."""
    out = []
    for color, a, b in marks.segments:
        ends = [p for c, p in marks.dots if c == color and (abs(p - a) < 1 or abs(p - b) < 1)]
        if any(abs(p - a) < 1 for p in ends) and any(abs(p - b) < 1 for p in ends):
            out.append((color, [a, b] if a.x <= b.x else [b, a]))
    return out


def is_step(points: list[pymupdf.Point]) -> bool:
    """Every segment flat or upright: a step function (an empirical CDF, matplotlib's step)."""
    pairs = list(zip(points, points[1:]))
    return len(pairs) >= 3 and all(abs(a.y - b.y) < 0.01 or abs(a.x - b.x) < 0.01 for a, b in pairs)


def step_points(points: list[pymupdf.Point]) -> list[pymupdf.Point]:
    """Where each level starts: the left end of every flat run."""
    starts = [a for a, b in zip(points, points[1:]) if abs(a.y - b.y) < 0.01 and abs(a.x - b.x) >= 0.01]
    if abs(points[-2].x - points[-1].x) < 0.01:  # the last jump starts a level drawn no further
        starts.append(points[-1])
    return starts


def segment_steps(marks: Marks, frame: pymupdf.Rect) -> list[tuple[tuple, list[pymupdf.Point]]]:
    """A step function drawn as separate flat lines, each starting where the last one ended
    (R's plot.ecdf): the left end of each, by colour. Axis lines and grid lines span the frame
    and are left out."""
    by_color: dict[tuple, list[tuple[pymupdf.Point, pymupdf.Point]]] = {}
    for color, a, b in marks.segments:
        inside = frame.x0 + 0.5 < min(a.x, b.x) and frame.y0 - 0.5 <= a.y < frame.y1 - 0.5  # not ticks, not the axis
        if inside and abs(a.y - b.y) < 0.01 and 0.01 <= abs(a.x - b.x) < 0.9 * frame.width:
            by_color.setdefault(color, []).append((a, b) if a.x < b.x else (b, a))
    out = []
    for color, flats in by_color.items():
        flats.sort(key=lambda ab: ab[0].x)
        chained = sum(abs(b[0].x - a[1].x) < 0.6 for a, b in zip(flats, flats[1:]))
        if len(flats) >= 3 and chained >= 0.8 * (len(flats) - 1):
            out.append((color, [a for a, _ in flats]))
    return out


def markers(marks: Marks, line_colors) -> list[tuple[tuple, list[pymupdf.Point]]]:
    """Small closed paths (scatter markers) grouped by colour; a line's own markers skipped."""
    by_color: dict[tuple, list[pymupdf.Point]] = {}
    for color, center in marks.dots:
        if color not in line_colors:
            by_color.setdefault(color, []).append(center)
    return [(color, points) for color, points in by_color.items() if len(points) >= 2]
