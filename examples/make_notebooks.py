"""Regenerate the demo notebooks in examples/notebooks/ (for `vlcurate notebooks`).

    python examples/make_notebooks.py [--outdir examples/notebooks]

Two small analyses as a data scientist leaves them: an import cell with a magic, data cells,
plots. Their outputs are real: this script runs each cell's code once (matplotlib's Agg backend
standing in for Jupyter's inline one: 400x300 pixels at 80 dpi, every open figure shown at the end
of its cell, print output as a stream) and saves what it drew. The pipeline itself never runs
code. Expected from `vlcurate notebooks`: 6 plot cells, 4 samples, 2 filtered (one cell shows two
plots, one has three lines of code). Deterministic: seeded data, numbered cell ids, no PNG
Software tag.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after the backend is chosen)
import nbformat  # noqa: E402
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output  # noqa: E402

METADATA = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python", "version": "3.11.7"},
}

class Markdown(str):
    """A markdown cell's text; every other cell is code."""


SALES = [
    Markdown("# Monthly sales review\n\nRevenue and costs of the twelve months of 2024, by month."),
    """%matplotlib inline
import numpy as np
import matplotlib.pyplot as plt""",
    """rng = np.random.default_rng(7)
months = np.arange(1, 13)
revenue = 120 + 8 * months + rng.normal(0, 10, 12)
costs = 90 + 5 * months + rng.normal(0, 6, 12)""",
    """print(f"mean revenue {revenue.mean():.1f}k, mean costs {costs.mean():.1f}k")""",
    Markdown("## Revenue against costs"),
    """fig, ax = plt.subplots()
ax.plot(months, revenue, marker="o", label="revenue")
ax.plot(months, costs, marker="s", label="costs")
ax.set_xlabel("month")
ax.set_ylabel("k EUR")
ax.set_title("Revenue and costs by month")
ax.legend()
plt.show()""",
    """margin = revenue - costs
fig, ax = plt.subplots()
ax.bar(months, margin, color=np.where(margin > margin.mean(), "tab:green", "tab:orange"))
ax.axhline(margin.mean(), color="black", linestyle="--", linewidth=1)
ax.set_xlabel("month")
ax.set_ylabel("k EUR")
ax.set_title("Monthly margin")
plt.show()""",
    Markdown("Both series at once, one histogram each:"),
    """for name, series in [("revenue", revenue), ("costs", costs)]:
    fig, ax = plt.subplots()
    ax.hist(series, bins=6, color="tab:blue")
    ax.set_title(f"Distribution of {name}")
    plt.show()""",
    """plt.imshow(np.eye(8), cmap="gray");""",
]

SENSORS = [
    Markdown("# Greenhouse sensor readings\n\nThree days of temperature and humidity, every half hour."),
    """%config InlineBackend.figure_format = "jpeg"
import numpy as np
import matplotlib.pyplot as plt""",
    """def moving_average(values, window=12):
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")""",
    """hours = np.arange(0, 72, 0.5)
rng = np.random.default_rng(3)
temperature = 18 + 4 * np.sin(hours / 24 * 2 * np.pi) + rng.normal(0, 0.8, hours.size)""",
    """humidity = 80 - 2.5 * (temperature - 18) + rng.normal(0, 2, hours.size)
print(f"{hours.size} readings")""",
    """smooth = moving_average(temperature)
fig, ax = plt.subplots()
ax.plot(hours, temperature, alpha=0.4, label="raw")
ax.plot(hours[len(hours) - len(smooth):], smooth, label="12-point average")
ax.set_xlabel("hour")
ax.set_ylabel("temperature (C)")
ax.legend()""",
    """fig, ax = plt.subplots()
ax.scatter(temperature, humidity, s=12, c=hours, cmap="viridis")
ax.set_xlabel("temperature (C)")
ax.set_ylabel("relative humidity (%)")
ax.set_title("Humidity falls as it warms")""",
]

NOTEBOOKS = {"sales-review.ipynb": (SALES, "png"), "greenhouse-sensors.ipynb": (SENSORS, "jpeg")}


def python_of(source: str) -> str:
    """The cell without its magic lines, which this stand-in kernel does not need."""
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))


def run_cell(source: str, namespace: dict, image_format: str) -> list:
    """Run one cell; its outputs as Jupyter's inline backend would record them."""
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        exec(compile(python_of(source), "<cell>", "exec"), namespace)
    outputs = [new_output("stream", name="stdout", text=stdout.getvalue())] if stdout.getvalue() else []
    for number in plt.get_fignums():
        figure = plt.figure(number)
        buffer = io.BytesIO()
        if image_format == "png":
            figure.savefig(buffer, format="png", dpi=80, metadata={"Software": None})
        else:
            figure.savefig(buffer, format="jpeg", dpi=80, pil_kwargs={"quality": 85})
        mime = f"image/{image_format}"
        text = f"<Figure size {figure.get_figwidth() * 80:.0f}x{figure.get_figheight() * 80:.0f} with 1 Axes>"
        outputs.append(new_output("display_data", data={mime: base64.b64encode(buffer.getvalue()).decode(),
                                                         "text/plain": text}))
    plt.close("all")
    return outputs


def make_notebook(cells: list[str], image_format: str) -> nbformat.NotebookNode:
    plt.rcParams.update({"figure.figsize": (5, 3.75), "figure.dpi": 80})
    namespace: dict = {}
    document = new_notebook(metadata=METADATA)
    count = 0
    for source in cells:
        if isinstance(source, Markdown):
            cell = new_markdown_cell(source)
        else:
            count += 1
            cell = new_code_cell(source, execution_count=count, outputs=run_cell(source, namespace, image_format))
        cell.id = f"cell-{len(document.cells)}"
        document.cells.append(cell)
    return document


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--outdir", type=Path, default=Path(__file__).resolve().parent / "notebooks")
    args = ap.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    for name, (cells, image_format) in NOTEBOOKS.items():
        path = args.outdir / name
        nbformat.write(make_notebook(cells, image_format), str(path))
        data = path.read_bytes()
        print(f"{path}  {len(data):7d} bytes  sha256 {hashlib.sha256(data).hexdigest()[:16]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
