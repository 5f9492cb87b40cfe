"""A chart's axes read from its drawings and text: tick marks, the labels beside them, the plot
frame they stand on, and the map from page positions to data values (linear or logarithmic) or
to categories. Used by chart_data.py; a caption line is never a label here (captions.py)."""

from __future__ import annotations

import dataclasses
import math
import re
import statistics

import pymupdf

from vlcurate.transforms.sources.pdf.captions import is_caption

_NUMBER = re.compile(r"^[−\-–+]?\(?\$?\d[\d,]*(\.\d+)?%?\)?$|^[−\-–+]?\.\d+%?$")
_POWER = re.compile(r"^(\d+(?:\.\d+)?)\^([−\-–+]?\d+)$")  # "10^3": a log axis label, exponent raised
_FACTOR = re.compile(r"^(?:1e|[×x]\s*10\^)([−\-–+]?\d+)$")  # "1e6", "×10^6": the ticks' unit
_TICK_MAX_PT = 10.0  # tick marks are short lines at the axes
_LABEL_GAP_PT = 16.0  # how far a tick label may stand from its tick
_FIT_TOLERANCE = 0.01  # tick values off their fitted line by more than 1% of the range: not this scale


@dataclasses.dataclass(frozen=True)
class Axis:
    """A map from page coordinates to data values (linear, or linear in log10 when ``log``), or
    categories at positions."""

    scale: float = 0.0
    offset: float = 0.0
    categories: tuple[tuple[float, str], ...] = ()  # (page position, label)
    step: float = 0.0  # distance between ticks in data units (for logs: the smallest tick)
    log: bool = False

    @property
    def numeric(self) -> bool:
        return not self.categories

    def value(self, position: float) -> float:
        linear = self.scale * position + self.offset
        return 10 ** linear if self.log else linear

    def times(self, factor: float) -> Axis:
        """The axis with its tick values multiplied (matplotlib's "1e6" over the axis)."""
        if not self.numeric or self.log or factor == 1:
            return self
        return dataclasses.replace(self, scale=self.scale * factor, offset=self.offset * factor, step=self.step * factor)

    def category(self, position: float) -> str:
        return min(self.categories, key=lambda item: abs(item[0] - position))[1]


def parse_number(text: str) -> float | None:
    text = text.strip().replace("−", "-").replace("–", "-")
    power = _POWER.match(text)
    if power:
        return float(power.group(1)) ** int(power.group(2))
    if not _NUMBER.match(text):
        return None
    negative = text.startswith("-") or (text.startswith("(") and text.endswith(")"))
    digits = text.strip("-+()$%").replace(",", "")
    try:
        value = float(digits)
    except ValueError:
        return None
    return -value if negative else value


@dataclasses.dataclass(frozen=True)
class Span:
    text: str
    rect: pymupdf.Rect
    horizontal: bool

    @property
    def center(self) -> pymupdf.Point:
        return pymupdf.Point((self.rect.x0 + self.rect.x1) / 2, (self.rect.y0 + self.rect.y1) / 2)


def spans_of(page: pymupdf.Page, clip: pymupdf.Rect) -> list[Span]:
    """The text lines whose middle is in ``clip``, captions left out, each cut at its wide gaps
    (PyMuPDF joins close tick labels "c9 c10 c11" into one line). Letters beyond the page's
    edge are read too: a tick label the page cuts ("0.0025" showing "0025") is still whole in
    the file. A raised smaller number after a number is an exponent (matplotlib's log labels
    "10" + "3"), written "10^3"."""
    out = []
    flags = pymupdf.TEXTFLAGS_DICT & ~pymupdf.TEXT_MEDIABOX_CLIP
    reach = pymupdf.Rect(clip) + (-100, -100, 100, 100)  # beyond the page too: a clip of its own
    for block in page.get_text("dict", flags=flags, clip=reach).get("blocks", []):
        for line in block.get("lines", []):
            horizontal = abs(line["dir"][1]) < 0.01
            for pieces in _pieces(line["spans"]) if horizontal else [line["spans"]]:
                text = _line_text(pieces)
                rect = pymupdf.Rect(line["bbox"]) if not horizontal else _union(pieces)
                if text and not is_caption(text) and clip.contains(pymupdf.Point((rect.x0 + rect.x1) / 2, (rect.y0 + rect.y1) / 2)):
                    out.append(Span(text, rect, horizontal))
    return out


def split_joined(page: pymupdf.Page, spans: list[Span], x_ticks) -> list[Span]:
    """Tick labels PyMuPDF joined into one line ("c9 c10c11" under three ticks, when labels
    crowd or overlap) cut back into one a label: at spaces, at wide gaps and where a letter
    starts before the last one ends (one text's letters sit edge to edge; an earlier start
    is another text drawn over it). Only a line under two ticks or more is cut."""
    if len(x_ticks) < 2:
        return spans
    axis_end = statistics.median(t[2] for t in x_ticks)
    out = []
    for span in spans:
        under = [t[0] for t in x_ticks if span.rect.x0 + 1 < t[0] < span.rect.x1 - 1]
        if span.horizontal and len(under) >= 2 and -2 < span.rect.y0 - axis_end < _LABEL_GAP_PT:
            out.extend(_letter_runs(page, span))
        else:
            out.append(span)
    return out


def _letter_runs(page: pymupdf.Page, span: Span) -> list[Span]:
    runs, run = [], []

    def close():
        if run:
            runs.append(Span("".join(ch["c"] for ch in run), _union(run), True))
            run.clear()

    flags = pymupdf.TEXTFLAGS_RAWDICT & ~pymupdf.TEXT_MEDIABOX_CLIP
    for block in page.get_text("rawdict", flags=flags, clip=span.rect + (-1, -1, 1, 1)).get("blocks", []):
        for line in block.get("lines", []):
            for part in line["spans"]:
                for ch in part["chars"]:
                    if ch["c"].isspace():
                        close()
                        continue
                    if run and (ch["bbox"][0] - run[-1]["bbox"][2] > 0.5 * part["size"]
                                or ch["bbox"][0] < run[-1]["bbox"][2] - 0.3):
                        close()
                    run.append(ch)
            close()
    return runs or [span]


def _line_text(spans) -> str:
    parts, previous = [], None
    for span in spans:
        text = span["text"].strip()
        if not text:
            continue
        raised = (previous is not None and span["size"] < 0.85 * previous["size"]
                  and span["origin"][1] < previous["origin"][1] - 1 and re.fullmatch(r"[−\-–+]?\d+", text))
        if raised and re.fullmatch(r"\d+(\.\d+)?", parts[-1]):
            parts[-1] = f"{parts[-1]}^{text}"
        else:
            parts.append(text)
        previous = span
    return " ".join(parts)


def _pieces(spans) -> list[list[dict]]:
    """A line's spans in runs, a blank span or a gap wider than half the font size ending one."""
    runs: list[list[dict]] = [[]]
    for span in spans:
        if not span["text"].strip():
            runs.append([])
            continue
        last = runs[-1][-1] if runs[-1] else None
        if last is not None and span["bbox"][0] - last["bbox"][2] > 0.5 * last["size"]:
            runs.append([])
        runs[-1].append(span)
    return [run for run in runs if run]


def _union(spans) -> pymupdf.Rect:
    rect = pymupdf.Rect(spans[0]["bbox"])
    for span in spans[1:]:
        rect |= pymupdf.Rect(span["bbox"])
    return rect


def segments(drawing) -> list[tuple[pymupdf.Point, pymupdf.Point]]:
    return [(item[1], item[2]) for item in drawing["items"] if item[0] == "l"]


# --- ticks and the frame ----------------------------------------------------------------------------


def ticks(drawings) -> tuple[list[tuple[float, float, float]], list[tuple[float, float, float]]]:
    """Short horizontal lines (y ticks: (y, x0, x1)) and short vertical ones (x ticks: (x, y0, y1))."""
    y_ticks, x_ticks = [], []
    for drawing in drawings:
        for start, end in segments(drawing):
            length = abs(start - end)
            if not 0 < length <= _TICK_MAX_PT:
                continue
            if abs(start.y - end.y) < 0.01:
                y_ticks.append((start.y, min(start.x, end.x), max(start.x, end.x)))
            elif abs(start.x - end.x) < 0.01:
                x_ticks.append((start.x, min(start.y, end.y), max(start.y, end.y)))
    return _aligned(y_ticks), _aligned(x_ticks)


def _aligned(found):
    """The ticks of one axis: the largest group that shares an end (the axis line); of two
    groups as large, the one whose ticks are spaced the most evenly (R's rug of data marks also
    stands on the axis, unevenly)."""
    groups: dict[float, set] = {}
    for tick in found:
        groups.setdefault(round(tick[2], 0), set()).add(tick)
        groups.setdefault(round(tick[1], 0), set()).add(tick)
    if not groups:
        return []
    best = max(groups.values(), key=lambda group: (len({round(t[0], 1) for t in group}), -_unevenness(group)))
    return sorted(best) if len({round(t[0], 1) for t in best}) >= 2 else []


def _unevenness(group) -> float:
    positions = sorted({round(t[0], 1) for t in group})
    gaps = [b - a for a, b in zip(positions, positions[1:])]
    return statistics.pstdev(gaps) / max(statistics.fmean(gaps), 1e-9) if len(gaps) >= 2 else 0.0


def frame_of(drawings, y_ticks, x_ticks) -> pymupdf.Rect | None:
    """The plot area: the axes rectangle the ticks stand on (either axis may have no ticks)."""
    if len(y_ticks) < 2 and len(x_ticks) < 2:
        return None
    left = statistics.mode(round(t[2], 1) for t in y_ticks) if len(y_ticks) >= 2 else None
    bottom = statistics.mode(round(t[1], 1) for t in x_ticks) if len(x_ticks) >= 2 else max(t[0] for t in y_ticks)
    if left is None:  # no y ticks: the leftmost line or background standing on the bottom
        standing = [pymupdf.Rect(d["rect"]) for d in drawings if abs(d["rect"].y1 - bottom) < 1
                    and d["rect"].x0 <= min(t[0] for t in x_ticks)]
        if not standing:
            return None
        left = min(r.x0 for r in standing)
    right = max([left] + [t[0] for t in x_ticks])
    top = min([bottom] + [t[0] for t in y_ticks])
    for drawing in drawings:  # spines and the axes background reach further than the ticks
        rect = pymupdf.Rect(drawing["rect"])
        if abs(rect.x0 - left) < 1 and abs(rect.y1 - bottom) < 1:
            right, top = max(right, rect.x1), min(top, rect.y0)
        elif abs(rect.y1 - bottom) < 1 and rect.x0 >= left - 1:
            right = max(right, rect.x1)
        elif abs(rect.x0 - left) < 1 and abs(rect.x1 - left) < 1 and rect.y1 <= bottom + 1:
            top = min(top, rect.y0)  # the left spine on its own
    if right - left < 10 or bottom - top < 10:
        return None
    return pymupdf.Rect(left, top, right, bottom)


# --- values -----------------------------------------------------------------------------------------


def axis_of(found_ticks, spans, vertical: bool) -> tuple[Axis | None, list[Span]]:
    """Pair each label with the tick it stands by (y: left of the tick and level with it, upright
    or turned; x: under it, centred), one label a tick, nearest first; then fit positions to
    values, or take the labels as categories. Returns the axis and the label spans it used."""
    candidates = []
    for position, start, end in found_ticks:
        for span in spans:
            if vertical:
                gap, offset = start - span.rect.x1, abs(span.center.y - position)
            elif span.horizontal:
                gap, offset = span.rect.y0 - end, abs(span.center.x - position)
            else:
                continue
            if offset < 4 and -2 < gap < _LABEL_GAP_PT:
                candidates.append((offset + max(gap, 0), position, id(span), span))
    pairs, used, ticks_taken, spans_taken = [], [], set(), set()
    for _, position, key, span in sorted(candidates, key=lambda c: (c[0], c[1])):
        if position in ticks_taken or key in spans_taken:
            continue
        ticks_taken.add(position)
        spans_taken.add(key)
        pairs.append((position, span.text))
        used.append(span)
    return axis_from(sorted(pairs), vertical), used


def axis_from(pairs, vertical: bool) -> Axis | None:
    if len(pairs) < 2:
        return None
    numbers = [(position, parse_number(text)) for position, text in pairs]
    if all(value is not None for _, value in numbers):
        return _numeric(numbers, logs=any("^" in text for _, text in pairs))
    if any(value is not None for _, value in numbers) and sum(v is not None for _, v in numbers) >= 0.7 * len(numbers):
        return _numeric([(p, v) for p, v in numbers if v is not None], logs=False)  # a stray word or two
    return Axis(categories=tuple(sorted(pairs)))


def _numeric(numbers, logs: bool) -> Axis | None:
    """The scale the ticks fit: linear, else logarithmic (values 1, 10, 100 evenly spaced), else
    linear without the one tick that does not fit (a label cut at the page edge)."""
    attempts = [("log", numbers)] if logs else [("linear", numbers), ("log", numbers)]
    if len(numbers) >= 4 and not logs:
        rest = min((numbers[:i] + numbers[i + 1:] for i in range(len(numbers))), key=_misfit)
        attempts.append(("linear", rest))
    for scale, points in attempts:
        values = [v for _, v in points]
        if scale == "log":
            if min(values) <= 0:
                continue
            values = [math.log10(v) for v in values]
        positions = [p for p, _ in points]
        if len(set(values)) < 2 or len(set(positions)) < 2:
            continue
        slope, offset = _fit(positions, values)
        spread = max(values) - min(values)
        if max(abs(slope * p + offset - v) for p, v in zip(positions, values)) > _FIT_TOLERANCE * spread:
            continue
        raw = sorted(v for _, v in points)
        step = raw[0] if scale == "log" else statistics.median(abs(b - a) for a, b in zip(raw, raw[1:]))
        return Axis(scale=slope, offset=offset, step=step, log=scale == "log")
    return None


def _misfit(points) -> float:
    """How far the worst of ``points`` stands off the line they fit, as a share of their range."""
    positions, values = [p for p, _ in points], [v for _, v in points]
    if len(set(positions)) < 2 or len(set(values)) < 2:
        return math.inf
    slope, offset = _fit(positions, values)
    return max(abs(slope * p + offset - v) for p, v in points) / (max(values) - min(values))


def _fit(positions, values) -> tuple[float, float]:
    """Least-squares line value = scale * position + offset."""
    mean_p, mean_v = statistics.fmean(positions), statistics.fmean(values)
    spread = sum((p - mean_p) ** 2 for p in positions)
    scale = sum((p - mean_p) * (v - mean_v) for p, v in zip(positions, values)) / spread
    return scale, mean_v - scale * mean_p


def factor_of(spans, frame: pymupdf.Rect, vertical: bool) -> tuple[float, list[Span]]:
    """The unit an axis's ticks count in, written once at its end: "1e6" over the top of the y
    axis, or at the right end under the x axis; (1.0, []) when there is none."""
    for span in spans:
        found = _FACTOR.match(span.text.replace("−", "-"))
        if not found or not span.horizontal:
            continue
        if vertical:
            near = span.rect.y1 <= frame.y0 + 2 and abs(span.rect.x0 - frame.x0) < 30
        else:
            near = span.rect.y0 >= frame.y1 and span.rect.x1 >= frame.x1 - 30
        if near:
            return 10.0 ** int(found.group(1).replace("−", "-").replace("–", "-")), [span]
    return 1.0, []


def axis_titles(spans, frame: pymupdf.Rect, tick_labels) -> tuple[str, str]:
    """The x title: the lowest text under the plot that is not a tick label; the y title: the
    vertical text furthest left of it."""
    below = [s for s in spans if s.horizontal and s not in tick_labels and frame.x0 <= s.center.x <= frame.x1
             and frame.y1 < s.rect.y0 < frame.y1 + 48]
    x_label = max(below, key=lambda s: s.rect.y0).text if below else ""
    left = [s for s in spans if not s.horizontal and s not in tick_labels and s.rect.x1 < frame.x0
            and frame.y0 <= s.center.y <= frame.y1]
    y_label = min(left, key=lambda s: s.rect.x0).text if left else ""
    return x_label, y_label
