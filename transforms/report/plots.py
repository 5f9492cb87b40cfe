"""The dataset report's figures: matplotlib (Agg, no pyplot) to SVG bytes, the same bytes every run.

Each function takes plain numbers and returns an SVG document. matplotlib is imported on first
use (it costs about half a second) and only through ``Figure``, so no global pyplot state or GUI
backend is touched and figures can be drawn from any thread. Fixed rc settings, a fixed
``svg.hashsalt`` and no date in the metadata make the bytes repeatable.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

WIDTH = 7.0  # inches; the page scales the images down on narrow screens
COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")
MAX_POINTS = 5000  # a scatter plot shows at most this many points (an even stride over all)
_RC = {
    "svg.hashsalt": "vlcurate-report",
    "svg.fonttype": "path",  # text as paths: no fonts needed where the page is opened
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "path.simplify": True,
    "text.parse_math": False,  # names with a "$" are text, not mathtext
}


def _figure(height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(WIDTH, height), dpi=100, layout="constrained")


def _svg(draw, height: float) -> bytes:
    import matplotlib

    with matplotlib.rc_context(_RC):
        figure = _figure(height)
        draw(figure)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def bar_chart(labels: Sequence[str], values: Sequence[float], title: str, xlabel: str,
              colours: Sequence[str] | None = None) -> bytes:
    """Horizontal bars, the first label on top; each bar is annotated with its value."""
    height = 1.2 + 0.28 * max(len(labels), 1)

    def draw(figure):
        axes = figure.add_subplot()
        positions = list(range(len(labels)))
        bars = axes.barh(positions, values, color=list(colours) if colours else COLOURS[0])
        axes.set_yticks(positions, [_short(label) for label in labels])
        axes.invert_yaxis()
        axes.bar_label(bars, labels=[_number(v) for v in values], padding=3, fontsize=8)
        axes.margins(x=0.15)
        axes.set_title(title)
        axes.set_xlabel(xlabel)

    return _svg(draw, height)


def paired_bars(labels: Sequence[str], first: Sequence[float], second: Sequence[float],
                names: tuple[str, str], title: str, xlabel: str) -> bytes:
    """Two bars per label (e.g. a dataset's share against the target share)."""
    height = 1.4 + 0.45 * max(len(labels), 1)

    def draw(figure):
        axes = figure.add_subplot()
        positions = list(range(len(labels)))
        axes.barh([p - 0.2 for p in positions], first, height=0.4, color=COLOURS[0], label=names[0])
        axes.barh([p + 0.2 for p in positions], second, height=0.4, color=COLOURS[1], label=names[1])
        axes.set_yticks(positions, [_short(label) for label in labels])
        axes.invert_yaxis()
        axes.legend(loc="lower right")
        axes.set_title(title)
        axes.set_xlabel(xlabel)

    return _svg(draw, height)


def histogram(series: dict[str, Sequence[float]], title: str, xlabel: str, bins: int = 30,
              lines: Sequence[tuple[float, str]] = ()) -> bytes:
    """Overlaid histograms over shared bins, with labelled vertical lines (thresholds)."""
    values = [v for vs in series.values() for v in vs] + [x for x, _ in lines]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    edges = [low + (high - low) * i / bins for i in range(bins + 1)]

    def draw(figure):
        axes = figure.add_subplot()
        for i, (name, vs) in enumerate(series.items()):
            if vs:
                axes.hist(list(vs), bins=edges, alpha=0.65, color=COLOURS[i % len(COLOURS)],
                          label=f"{name} ({len(vs)})")
        for i, (x, name) in enumerate(lines):
            axes.axvline(x, color="black", linestyle=("--", ":", "-.")[i % 3], linewidth=1.2, label=name)
        axes.legend(loc="upper left", fontsize=8)
        axes.set_title(title)
        axes.set_xlabel(xlabel)
        axes.set_ylabel("samples")

    return _svg(draw, 3.2)


def size_plots(widths: Sequence[int], heights: Sequence[int], image_bytes: Sequence[int]) -> bytes:
    """Width x height scatter (an even stride over at most MAX_POINTS) and a histogram of bytes."""
    stride = max(1, -(-len(widths) // MAX_POINTS))

    def draw(figure):
        left, right = figure.subplots(1, 2)
        left.scatter(widths[::stride], heights[::stride], s=8, alpha=0.5, color=COLOURS[0], rasterized=stride > 1)
        left.set_title("image width x height (px)" + (f", every {stride}th" if stride > 1 else ""))
        left.set_xlabel("width")
        left.set_ylabel("height")
        kilobytes = [b / 1024 for b in image_bytes]
        right.hist(kilobytes, bins=30, color=COLOURS[2])
        right.set_title("image bytes per sample")
        right.set_xlabel("KiB")
        right.set_ylabel("samples")

    return _svg(draw, 3.2)


def _short(label: str, limit: int = 48) -> str:
    return label if len(label) <= limit else "..." + label[-(limit - 3):]


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3g}"
