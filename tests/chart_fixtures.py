"""Charts drawn with matplotlib from known data, as PDF (vector) and PNG, and document pages that
hold them with captions, a photo and a ruled table."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display; set before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pymupdf  # noqa: E402

BAR = {
    "title": "Pages kept per stage",
    "categories": ["Crawl", "Lang-ID", "Dedup", "Quality", "Safety"],
    "series": {"2023": [100.0, 82.0, 61.0, 44.0, 39.0], "2024": [91.5, 70.2, 65.0, 30.4, 28.8]},
    "x_label": "Stage", "y_label": "Pages (thousands)",
}
LINE = {
    "x": [0, 1, 2, 3, 4, 5, 6],
    "series": {"train loss": [2.31, 1.72, 1.41, 1.22, 1.10, 1.02, 0.97], "val loss": [2.40, 1.90, 1.66, 1.55, 1.49, 1.47, 1.46]},
    "x_label": "Epoch", "y_label": "Loss",
}


def _save(fig, fmt: str) -> bytes:
    buffer = io.BytesIO()
    # Fixed metadata: the same figure always gives the same bytes.
    metadata = {"CreationDate": None} if fmt == "pdf" else {"Software": None}
    fig.savefig(buffer, format=fmt, metadata=metadata, dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def bar_chart(fmt: str = "pdf", data=BAR) -> bytes:
    fig, ax = plt.subplots(figsize=(5, 3.4))
    count, width = len(data["series"]), 0.8 / len(data["series"])
    for i, (name, values) in enumerate(data["series"].items()):
        positions = np.arange(len(values)) + (i - (count - 1) / 2) * width
        ax.bar(positions, values, width=width, label=name)
    ax.set_xticks(range(len(data["categories"])), data["categories"])
    ax.set_xlabel(data["x_label"])
    ax.set_ylabel(data["y_label"])
    ax.legend()
    return _save(fig, fmt)


def line_chart(fmt: str = "pdf", data=LINE) -> bytes:
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for name, values in data["series"].items():
        ax.plot(data["x"], values, label=name, marker="o")
    ax.set_xlabel(data["x_label"])
    ax.set_ylabel(data["y_label"])
    ax.legend()
    return _save(fig, fmt)


SCATTER = {"runs": ([1, 2, 3, 4, 5], [10, 30, 25, 45, 40]), "baseline": ([1.5, 2.5, 3.5], [5, 15, 20])}


def scatter_chart(fmt: str = "pdf", data=SCATTER) -> bytes:
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for name, (xs, ys) in data.items():
        ax.scatter(xs, ys, label=name)
    ax.set_xlabel("size")
    ax.set_ylabel("score")
    ax.legend()
    return _save(fig, fmt)


def photo_png(width: int = 320, height: int = 220) -> bytes:
    """A smooth gradient with noise: a raster picture, not a chart."""
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([xx * 0.7, yy * 1.1, (xx + yy) * 0.3], axis=-1) + np.random.default_rng(0).normal(0, 10, (height, width, 3))
    pixmap = pymupdf.Pixmap(pymupdf.csRGB, width, height, np.clip(rgb, 0, 255).astype(np.uint8).tobytes(), False)
    return pixmap.tobytes("png")


PROSE = ("The curation pipeline renders every page, reads its text layer and keeps the figures with "
         "their captions. Charts drawn as vector paths keep their data, which becomes a table.")


def document_with_figures() -> bytes:
    """Page 1: prose, a bar chart (Figure 1), a photo (Figure 2). Page 2: a line chart with its
    caption above it (Figure 3), and a ruled table (Table 1). Page 3: prose only."""
    document = pymupdf.open()
    page = document.new_page()  # 612 x 792
    page.insert_textbox(pymupdf.Rect(72, 60, 540, 110), PROSE, fontsize=10)
    chart = pymupdf.open(stream=bar_chart(), filetype="pdf")
    page.show_pdf_page(pymupdf.Rect(96, 120, 456, 365), chart, 0)
    page.insert_textbox(pymupdf.Rect(72, 372, 540, 400), "Figure 1: Pages kept per stage, in thousands.", fontsize=10)
    page.insert_image(pymupdf.Rect(150, 430, 390, 595), stream=photo_png())
    page.insert_textbox(pymupdf.Rect(72, 602, 540, 630), "Figure 2: A photograph of the reading room.", fontsize=10)

    page = document.new_page()
    page.insert_textbox(pymupdf.Rect(72, 60, 540, 88), "Fig. 3 - Training and validation loss per epoch.", fontsize=10)
    chart = pymupdf.open(stream=line_chart(), filetype="pdf")
    page.show_pdf_page(pymupdf.Rect(96, 92, 456, 337), chart, 0)
    page.insert_textbox(pymupdf.Rect(72, 380, 540, 400), "Table 1: Filters and the pages they removed.", fontsize=10)
    rows = [("Rule", "Removed"), ("Broken file", "3.1 %"), ("Blank page", "5.4 %"), ("Tiny page", "0.7 %")]
    top = 405
    for i, (rule, removed) in enumerate(rows):
        y = top + 22 * i
        page.insert_text((80, y + 15), rule, fontsize=10)
        page.insert_text((330, y + 15), removed, fontsize=10)
        page.draw_line((72, y), (460, y), width=0.6)
    page.draw_line((72, top + 22 * len(rows)), (460, top + 22 * len(rows)), width=0.6)
    for x in (72, 320, 460):
        page.draw_line((x, top), (x, top + 22 * len(rows)), width=0.6)

    page = document.new_page()
    page.insert_textbox(pymupdf.Rect(72, 60, 540, 200), PROSE * 3, fontsize=10)
    return document.tobytes(garbage=4, deflate=True, no_new_id=True)
