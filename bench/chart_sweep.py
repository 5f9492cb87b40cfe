"""Chart data over a sweep of matplotlib bar, horizontal bar and line charts: how many come back
whole (one figure, `kind: chart`, its caption, every value within 2% of the axis range).

    .venv/bin/python bench/chart_sweep.py [--counts 2,3,4,5,7,9,12] [--scales 0.01,1,37,5000,2e6]

Each chart is one PDF page drawn by matplotlib from seeded values (every third with a bar of value
0, every fourth ending on a negative one) at three figure sizes, its caption drawn inside the
figure just under the axes; the figure extraction of `vlcurate charts` reads it back. Prints
each failure and the count.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the tests' chart fixtures

from fixtures import chart as charts  # noqa: E402
from vlcurate.transforms.data.rejects import Reject  # noqa: E402
from vlcurate.transforms.sources.pdf.config import FigureConfig, PdfConfig  # noqa: E402
from vlcurate.transforms.sources.pdf.core import inspect_document, open_pdf  # noqa: E402
from vlcurate.transforms.sources.pdf.figures import figure_samples  # noqa: E402

SIZES = ((4.0, 3.0), (6.4, 4.8), (3.2, 2.6))
KINDS = ("bar", "horizontal_bar", "line")


def values_of(count: int, scale: float) -> np.ndarray:
    values = np.round(np.random.default_rng(count).uniform(0.1, 1, count) * scale, 4)
    if count % 3 == 0:
        values[1] = 0.0
    if count % 4 == 1:
        values[-1] = -values[-1] / 2
    return values


def check(kind: str, count: int, size, scale: float) -> str | None:
    """None when the chart comes back whole, else what went wrong."""
    values, labels = values_of(count, scale), [f"c{i}" for i in range(count)]
    draw = {"bar": lambda ax: ax.bar(labels, values), "horizontal_bar": lambda ax: ax.barh(labels, values),
            "line": lambda ax: ax.plot(range(count), values, marker="o")}[kind]
    caption = f"Figure {count}: a {kind} chart."
    data = charts.captioned_page(draw, caption, figsize=size)
    pdf, config = open_pdf(data), PdfConfig(figures=FigureConfig())
    [task] = inspect_document(pdf, "mem://sweep.pdf", hashlib.sha256(data).hexdigest(), config)
    try:
        found = [s.meta["chart"] for s in figure_samples(pdf, task, config)]
    except Reject as reject:
        return f"no figure: {reject.reason}"
    if len(found) != 1 or found[0]["kind"] != "chart" or found[0]["caption"] != caption:
        return f"figures {[(f['kind'], f['caption']) for f in found]}"
    if "data_csv" not in found[0]:
        return f"no data: {found[0].get('data_reason')}"
    rows = {r[0]: float(r[1]) for r in list(csv.reader(io.StringIO(found[0]["data_csv"])))[1:]}
    keys = [str(i) for i in range(count)] if kind == "line" else labels
    if set(rows) != set(keys):
        return f"rows {sorted(rows)}"
    axis_range = values.max() - min(0.0, values.min())
    worst = max(abs(rows[k] - v) for k, v in zip(keys, values)) / axis_range
    return None if worst <= 0.02 else f"off by {worst:.1%} of the axis range"


def main() -> int:
    ap = argparse.ArgumentParser(description="Chart data over a sweep of matplotlib charts.")
    ap.add_argument("--counts", default="2,3,4,5,7,9,12")
    ap.add_argument("--scales", default="0.01,1,37,5000,2e6")
    args = ap.parse_args()
    try:
        counts = [int(c) for c in args.counts.split(",")]
        scales = [float(s) for s in args.scales.split(",")]
    except ValueError:
        print("chart_sweep: --counts takes integers and --scales numbers, comma-separated", file=sys.stderr)
        return 2
    failures = total = 0
    for kind, count, size, scale in itertools.product(KINDS, counts, SIZES, scales):
        total += 1
        problem = check(kind, count, size, scale)
        if problem:
            failures += 1
            print(f"{kind} {count} categories {size[0]}x{size[1]} in, values to {scale:g}: {problem}")
    print(f"{total - failures} of {total} charts came back whole")
    return 0


if __name__ == "__main__":
    sys.exit(main())
