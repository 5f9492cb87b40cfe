"""Generated notebooks: nbformat 4 documents with real matplotlib plots (Agg) as their outputs.

Everything is deterministic: cell ids are numbered, PNGs are saved without the Software tag, so
the same call gives the same bytes (and the samples the same keys).
"""

from __future__ import annotations

import base64
import functools
import io

import nbformat
from matplotlib.figure import Figure
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from PIL import Image

DPI = 80
PYTHON = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


@functools.lru_cache(maxsize=None)
def plot(width: int = 400, height: int = 300, image_format: str = "png", slope: float = 1.0) -> bytes:
    """A line chart of ``width`` x ``height`` pixels, as matplotlib's Agg backend saves it."""
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    axes = figure.subplots()
    axes.plot([0, 1, 2, 3, 4], [0, slope, 4 * slope, 9 * slope, 16 * slope], marker="o")
    axes.set_title(f"slope {slope}")
    buffer = io.BytesIO()
    if image_format == "png":
        figure.savefig(buffer, format="png", metadata={"Software": None})
    else:
        figure.savefig(buffer, format="jpeg", pil_kwargs={"quality": 90})
    return buffer.getvalue()


@functools.lru_cache(maxsize=None)
def bomb_png() -> bytes:
    """A 20000 x 20000 one-bit PNG: 400 million pixels in about 50 KB."""
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, format="PNG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def figure(data: bytes, mime: str = "image/png", output_type: str = "display_data", lines: bool = False,
           execution_count: int | None = None):
    """An output showing an image; ``lines``: the base64 as a list of 76-character lines, as some
    writers store it."""
    encoded = b64(data)
    value = [encoded[i:i + 76] + "\n" for i in range(0, len(encoded), 76)] if lines else encoded
    bundle = {mime: value, "text/plain": ["<Figure size 400x300 with 1 Axes>"]}
    if output_type == "execute_result":
        return new_output(output_type, data=bundle, execution_count=execution_count)
    return new_output(output_type, data=bundle)


def raw_image_output(mime: str, value: str):
    """An image output whose value is given as it is (broken base64, not an image...)."""
    return new_output("display_data", data={mime: value})


def text_output(text: str):
    return new_output("stream", name="stdout", text=text)


def code(source: str, *outputs, count: int | None = None):
    return new_code_cell(source, outputs=list(outputs), execution_count=count)


def markdown(text: str):
    return new_markdown_cell(text)


def notebook(*cells, metadata=None) -> bytes:
    """The notebook's .ipynb bytes, as Jupyter writes them (sorted keys, one-space indent)."""
    document = new_notebook(cells=list(cells), metadata=PYTHON if metadata is None else metadata)
    for i, cell in enumerate(document.cells):
        cell.id = f"cell-{i}"
    return nbformat.writes(document).encode("utf-8")


IMPORTS = "%matplotlib inline\nimport numpy as np\nimport matplotlib.pyplot as plt"
DATA = "x = np.arange(5)\ny = x ** 2"
LINE_PLOT = """fig, ax = plt.subplots()
ax.plot(x, y, marker="o")
ax.set_xlabel("x")
ax.set_ylabel("x squared")
ax.set_title("Squares")
plt.show()"""


def analysis() -> bytes:
    """A small analysis: imports, data, an unrelated cell, four plot cells with every outcome
    (a PNG pair, a JPEG pair, two images in one cell, too little code) and a cell without plots."""
    return notebook(
        markdown("# Squares"),
        code(IMPORTS, count=1),
        code(DATA, count=2),
        code('print("unrelated")\nunused = 1', text_output("unrelated\n"), count=3),
        code(LINE_PLOT, figure(plot()), count=4),
        code(LINE_PLOT.replace("plt.show()", "fig"), figure(plot(320, 240, "jpeg"), "image/jpeg",
                                                        "execute_result", execution_count=5), count=5),
        code(LINE_PLOT + "\n" + LINE_PLOT, figure(plot(slope=1)), figure(plot(slope=2)), count=6),
        code("plt.plot([1, 4, 9])", figure(plot(slope=3)), count=7),
        code("y.sum()", count=8),
    )
