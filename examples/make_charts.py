"""Regenerate the figures demo in examples/charts/ (for `vlcurate charts`).

    python examples/make_charts.py [--outdir examples/charts]

figures.pdf is a two-page report: a grouped bar chart and a line chart drawn with matplotlib and
placed as vector drawings (their data can be read back), a chart placed as a PNG (a picture
only), and a ruled table, each with a caption. Deterministic: fixed data, matplotlib's PDF
without a creation date, no random PDF /ID.
"""

from __future__ import annotations

import argparse
import hashlib
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pymupdf  # noqa: E402

STAGES = ["Crawl", "Lang-ID", "Dedup", "Quality", "Safety"]
KEPT = {"2023": [100, 82, 61, 44, 39], "2024": [120, 96, 70, 52, 47]}
EPOCHS = [1, 2, 3, 4, 5, 6, 7, 8]
LOSS = {"train": [2.3, 1.8, 1.5, 1.32, 1.2, 1.12, 1.06, 1.02], "validation": [2.4, 1.95, 1.7, 1.58, 1.52, 1.49, 1.48, 1.48]}


def figure_bytes(draw, fmt: str) -> bytes:
    fig, ax = plt.subplots(figsize=(5, 3.2))
    draw(ax)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=110, metadata={"CreationDate": None} if fmt == "pdf" else {"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def bars(ax) -> None:
    for i, (year, values) in enumerate(KEPT.items()):
        ax.bar([x + (i - 0.5) * 0.4 for x in range(len(STAGES))], values, width=0.4, label=year)
    ax.set_xticks(range(len(STAGES)), STAGES)
    ax.set_xlabel("Curation stage")
    ax.set_ylabel("Pages kept (thousands)")
    ax.legend()


def lines(ax) -> None:
    for name, values in LOSS.items():
        ax.plot(EPOCHS, values, marker="o", label=name)
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Loss")
    ax.legend()


def scatter(ax) -> None:
    ax.scatter([0.2, 0.35, 0.5, 0.62, 0.8, 0.9], [0.31, 0.42, 0.48, 0.61, 0.7, 0.83], color="tab:green")
    ax.set_xlabel("CLIP score")
    ax.set_ylabel("Human rating")


def text(page, rect, words, size=10, font="helv"):
    page.insert_textbox(pymupdf.Rect(rect), words, fontsize=size, fontname=font)


def make(path: Path) -> None:
    document = pymupdf.open()
    page = document.new_page(width=595, height=842)
    text(page, (64, 60, 531, 80), "Curation report: what each stage keeps", 15, "hebo")
    text(page, (64, 90, 531, 140), "Each stage of the pipeline removes pages that would not help training. "
         "Figure 1 shows how many pages each stage kept in the last two crawls; Figure 2 the training loss "
         "of a small model on the result.")
    page.show_pdf_page(pymupdf.Rect(88, 150, 508, 419), pymupdf.open(stream=figure_bytes(bars, "pdf")), 0)
    text(page, (64, 424, 531, 450), "Figure 1: Pages kept after each curation stage, in thousands, per crawl.", 9.5, "heit")
    page.show_pdf_page(pymupdf.Rect(88, 470, 508, 739), pymupdf.open(stream=figure_bytes(lines, "pdf")), 0)
    text(page, (64, 744, 531, 770), "Figure 2: Training and validation loss per epoch.", 9.5, "heit")

    page = document.new_page(width=595, height=842)
    text(page, (64, 60, 531, 100), "A chart pasted as a picture keeps no data: the pipeline crops it and its "
         "caption, and marks it as a picture.")
    page.insert_image(pymupdf.Rect(128, 110, 468, 328), stream=figure_bytes(scatter, "png"))
    text(page, (64, 334, 531, 360), "Figure 3: Human rating against CLIP score for six sample pairs.", 9.5, "heit")
    text(page, (64, 390, 531, 410), "Table 1: Rules and the share of pages they removed.", 9.5, "heit")
    rows = [("Rule", "Criterion", "Removed"), ("Broken file", "fails to open", "3.1 %"),
            ("Blank page", "under 1 % ink", "5.4 %"), ("Duplicate", "same image hash", "9.8 %")]
    for i, row in enumerate(rows):
        y = 415 + 22 * i
        for x, cell in zip((72, 220, 420), row):
            page.insert_text((x, y + 15), cell, fontsize=10, fontname="hebo" if i == 0 else "helv")
        page.draw_line((64, y), (531, y), width=0.6)
    page.draw_line((64, 415 + 22 * len(rows)), (531, 415 + 22 * len(rows)), width=0.6)
    document.set_metadata({"title": "Curation report", "creationDate": "D:20240101000000Z", "modDate": "D:20240101000000Z"})
    document.save(path, garbage=4, deflate=True, no_new_id=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", type=Path, default=Path(__file__).resolve().parent / "charts")
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    path = args.outdir / "figures.pdf"
    make(path)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB, sha256 {hashlib.sha256(path.read_bytes()).hexdigest()[:16]})")


if __name__ == "__main__":
    main()
