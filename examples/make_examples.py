"""Regenerate the small demo PDFs in examples/pdfs/.

    python examples/make_examples.py [--outdir examples/pdfs]

Writes three PDFs that exercise different page kinds for the
PDF-pages-to-training-shards pipeline:

* report.pdf  - 3 pages of born-digital text (title, headings, prose, a ruled table)
* scanned.pdf - 1 page that is only a slightly rotated, noisy greyscale image
                (no text layer: page.get_text() returns "")
* chart.pdf   - 1 page with a heading, a caption and a vector bar chart

Output is byte-for-byte deterministic: fixed metadata dates, a fixed trailer
/ID (PyMuPDF otherwise adds a random one), only Base-14 fonts (nothing
embedded, so no random subset tags) and seeded noise for the scan.
"""

from __future__ import annotations

import argparse
import hashlib
import io
from pathlib import Path

import numpy as np
import pymupdf
from PIL import Image, ImageFilter

A4 = pymupdf.paper_rect("a4")  # 595 x 842 pt
MARGIN = 64
FIXED_DATE = "D:20240101000000Z"  # fixed so that the Info dict never changes

# Base-14 font names understood by Page.insert_text: not embedded, so nothing random.
BODY, BOLD, ITALIC = "helv", "hebo", "heit"

# Values of the bar chart in chart.pdf, kept here so tests can refer to them.
CHART_VALUES = [("Crawl", 100), ("Lang-ID", 82), ("Dedup", 61), ("Quality", 44), ("Safety", 39)]


# --------------------------------------------------------------------------- layout helpers


def wrap(text: str, fontname: str, fontsize: float, width: float) -> list[str]:
    """Greedy word wrap using the real glyph widths of the Base-14 font."""
    lines, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if pymupdf.get_text_length(candidate, fontname=fontname, fontsize=fontsize) <= width:
            line = candidate
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines


class Writer:
    """Flows headings and paragraphs down a page, tracking the y cursor."""

    def __init__(self, page: pymupdf.Page):
        self.page = page
        self.x = MARGIN
        self.y = MARGIN
        self.width = page.rect.width - 2 * MARGIN

    def text(self, text, fontname=BODY, fontsize=10.5, leading=1.4, gap_after=8, color=(0, 0, 0)):
        for line in wrap(text, fontname, fontsize, self.width):
            self.y += fontsize * leading
            self.page.insert_text((self.x, self.y), line, fontname=fontname, fontsize=fontsize, color=color)
        self.y += gap_after

    def heading(self, text, fontsize=14):
        self.y += 6
        self.text(text, fontname=BOLD, fontsize=fontsize, leading=1.3, gap_after=4)


def footer(page: pymupdf.Page, label: str) -> None:
    y = page.rect.height - 36
    page.draw_line((MARGIN, y - 12), (page.rect.width - MARGIN, y - 12), color=(0.6, 0.6, 0.6), width=0.5)
    page.insert_text((MARGIN, y), label, fontname=BODY, fontsize=8, color=(0.4, 0.4, 0.4))


def save(doc: pymupdf.Document, path: Path, **metadata) -> None:
    """Save with everything that could vary between runs pinned down."""
    doc.set_metadata(
        {"creator": "examples/make_examples.py", "producer": "PyMuPDF",
         "creationDate": FIXED_DATE, "modDate": FIXED_DATE, **metadata}
    )
    # Without no_new_id PyMuPDF writes a random trailer /ID on every save; we set a
    # fixed one derived from the file name so the file still carries an /ID.
    file_id = hashlib.sha256(path.name.encode()).hexdigest()[:32]
    doc.xref_set_key(-1, "ID", f"[<{file_id}><{file_id}>]")
    doc.save(path, garbage=4, deflate=True, no_new_id=True)
    doc.close()


# --------------------------------------------------------------------------- report.pdf

REPORT_PAGES = [
    [
        ("title", "Curating PDF Pages for Vision-Language Pretraining"),
        ("byline", "Data Platform Team - Technical Report 7 - January 2024"),
        ("h", "1. Motivation"),
        ("p", "Vision-language models learn to read documents only if they see many of them. "
              "Public PDFs are an abundant source of such pages: scientific articles, manuals, "
              "invoices, slide decks and scanned books. Each page gives a rendered image together "
              "with an embedded text layer, which makes PDFs unusually cheap to turn into paired "
              "image-text training examples."),
        ("p", "The raw crawl is noisy, however. A sizeable fraction of files are broken, encrypted or "
              "consist of blank pages, and many are near-duplicates of each other. Scanned documents "
              "carry no text layer at all and must either be sent to OCR or kept as image-only "
              "samples. This report describes the pipeline we use to turn a directory of PDFs into "
              "sharded training data and the checks that decide which pages are kept."),
        ("h", "2. Pipeline overview"),
        ("p", "The pipeline is written with Apache Beam so that the same code runs on a laptop and "
              "on a cluster. Files are listed and split into page ranges, each worker opens a "
              "document once and renders its pages at a fixed longest side of 1024 pixels. For every "
              "page we store the PNG image, the text blocks in reading order and a small JSON record "
              "with the page size, the number of characters and the source file."),
        ("p", "Records are grouped into WebDataset tar shards of roughly equal size. Writing shards "
              "rather than one file per page keeps the number of objects in storage small and lets "
              "training jobs stream the data sequentially."),
    ],
    [
        ("h", "3. Filtering rules"),
        ("p", "Filters run on cheap page statistics before any model is involved. The table below "
              "lists the rules and the share of pages each one removed on a sample of ten thousand "
              "documents. Rules are applied in order, so the percentages refer to the pages that "
              "reached that stage."),
        ("table", [("Rule", "Criterion", "Removed"),
                   ("Broken file", "PDF fails to open or render", "3.1 %"),
                   ("Blank page", "fewer than 1 % non-white pixels", "5.4 %"),
                   ("Tiny page", "longest side under 200 pt", "0.7 %"),
                   ("Exact duplicate", "identical image hash", "9.8 %"),
                   ("Language", "text not in target languages", "12.2 %")]),
        ("p", "Pages without a text layer are not discarded: they are tagged as image-only so that "
              "an OCR stage or a captioning model can fill in the text later. Keeping them matters, "
              "because scanned material is where document understanding models are weakest."),
        ("h", "4. Throughput"),
        ("p", "Rendering dominates the cost of the pipeline. On a two-core machine a plain "
              "multiprocessing loop over PyMuPDF renders a few dozen pages per second at 1024 "
              "pixels. Our target is for the Beam pipeline to reach at least eighty percent of "
              "that rate, so that the framework overhead stays small compared to the rendering itself."),
    ],
    [
        ("h", "5. Lessons learned"),
        ("p", "Deterministic output paid for itself many times over. When the same input always "
              "produces the same shards, a change in the output points directly at a change in the "
              "code, and caches keyed by content hash stay valid across runs."),
        ("p", "Splitting work by page range instead of by file kept all workers busy. A single "
              "thousand-page manual would otherwise occupy one worker long after the others had "
              "finished their short files."),
        ("p", "Finally, storing the text blocks with their coordinates rather than a flat string "
              "turned out to be useful for more than training: it lets us draw the layout on top "
              "of the rendered page when inspecting samples by hand."),
        ("h", "6. Next steps"),
        ("p", "We plan to add a perceptual-hash near-duplicate filter, an OCR stage for image-only "
              "pages, and per-shard statistics that summarise page sizes, character counts and "
              "languages so that data mixtures can be chosen without reading the shards again."),
    ],
]


def draw_table(page: pymupdf.Page, w: Writer, rows) -> None:
    """A small ruled table: horizontal rules between rows, bold header."""
    col_x = [w.x, w.x + 120, w.x + w.width - 70]  # left edge of each column
    row_h = 18
    top = w.y + 6
    for i, row in enumerate(rows):
        y0 = top + i * row_h
        if i == 0:
            page.draw_rect((w.x, y0, w.x + w.width, y0 + row_h), color=None, fill=(0.9, 0.92, 0.95))
        for x, cell in zip(col_x, row):
            page.insert_text((x + 4, y0 + 12.5), cell, fontname=BOLD if i == 0 else BODY, fontsize=9.5)
        page.draw_line((w.x, y0 + row_h), (w.x + w.width, y0 + row_h), width=1.0 if i == 0 else 0.4)
    page.draw_line((w.x, top), (w.x + w.width, top), width=1.0)  # top rule
    w.y = top + len(rows) * row_h
    page.insert_text((w.x, w.y + 14), "Table 1: Page filters and the share of pages they removed.",
                     fontname=ITALIC, fontsize=9)
    w.y += 26


def make_report(path: Path) -> None:
    doc = pymupdf.open()
    for number, blocks in enumerate(REPORT_PAGES, start=1):
        page = doc.new_page(width=A4.width, height=A4.height)
        w = Writer(page)
        for kind, content in blocks:
            if kind == "title":
                w.text(content, fontname=BOLD, fontsize=20, leading=1.2, gap_after=2)
            elif kind == "byline":
                w.text(content, fontname=ITALIC, fontsize=10, gap_after=10, color=(0.3, 0.3, 0.3))
            elif kind == "h":
                w.heading(content)
            elif kind == "p":
                w.text(content)
            elif kind == "table":
                draw_table(page, w, content)
        footer(page, f"Curating PDF Pages - page {number} of {len(REPORT_PAGES)}")
    save(doc, path, title="Curating PDF Pages for Vision-Language Pretraining",
         author="Data Platform Team", subject="Example report for vlcurate")


# --------------------------------------------------------------------------- scanned.pdf

SCAN_TEXT = [
    ("h", "Minutes of the Data Review Meeting"),
    ("p", "Present: the curation group and two members of the training team. The meeting reviewed "
          "the first batch of rendered pages and agreed on the criteria for the next crawl."),
    ("h", "Decisions"),
    ("p", "1. Scanned pages are kept and tagged as image-only. 2. Pages with fewer than twenty "
          "characters of text are sent to the OCR queue. 3. Exact duplicates are removed before "
          "sharding, near-duplicates are only flagged for now."),
    ("h", "Action items"),
    ("p", "Prepare a small demo corpus with a report, a chart and a scanned page. Measure the "
          "throughput of the pipeline against a plain multiprocessing baseline on two cores. "
          "Report the ratio at the next meeting."),
]


def make_scanned(path: Path, dpi: int = 100, seed: int = 1234) -> None:
    # 1. Lay the text out on a throw-away PDF page and render it to greyscale pixels.
    src = pymupdf.open()
    page = src.new_page(width=A4.width, height=A4.height)
    w = Writer(page)
    for kind, content in SCAN_TEXT:
        w.heading(content) if kind == "h" else w.text(content, fontname="tiro", fontsize=12)
    pix = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY)
    img = Image.frombytes("L", (pix.width, pix.height), pix.samples)
    src.close()

    # 2. Make it look scanned: slight blur (toner spread), ~1 degree skew on a grey
    #    paper tone, then seeded sensor noise and a few dust specks.
    img = img.filter(ImageFilter.GaussianBlur(0.6))
    paper = 232
    arr = np.asarray(img, dtype=np.float32) * (paper / 255.0)  # white -> grey paper
    img = Image.fromarray(arr.astype(np.uint8)).rotate(
        1.1, resample=Image.BICUBIC, expand=False, fillcolor=paper - 25)
    rng = np.random.default_rng(seed)
    arr = np.asarray(img, dtype=np.float32)
    arr += rng.normal(0.0, 5.0, arr.shape)
    specks = rng.random(arr.shape) < 0.0004
    arr[specks] = rng.uniform(40, 120, int(specks.sum()))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))

    # 3. JPEG like a real scanner; libjpeg output is deterministic for fixed settings.
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=60, optimize=True)

    # 4. A PDF page holding only that image: no text layer at all.
    doc = pymupdf.open()
    out = doc.new_page(width=A4.width, height=A4.height)
    out.insert_image(out.rect, stream=buf.getvalue())
    save(doc, path, title="Scanned meeting minutes", author="Data Platform Team",
         subject="Image-only page without a text layer")


# --------------------------------------------------------------------------- chart.pdf


def make_chart(path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=A4.width, height=A4.height)
    w = Writer(page)
    w.text("Pages retained after each curation stage", fontname=BOLD, fontsize=18, gap_after=6)
    w.text("The chart below follows a sample of 100 thousand crawled PDF pages through the "
           "filtering stages of the pipeline. Each bar shows how many pages remain after the stage.")

    # Plot area in page coordinates (y grows downwards in PyMuPDF).
    left, right = MARGIN + 50, A4.width - MARGIN - 10
    top, bottom = w.y + 50, w.y + 330
    vmax = 100
    to_y = lambda v: bottom - (bottom - top) * v / vmax  # noqa: E731

    # Horizontal grid lines, y ticks and their labels.
    for v in range(0, vmax + 1, 20):
        y = to_y(v)
        if v:
            page.draw_line((left, y), (right, y), color=(0.85, 0.85, 0.85), width=0.5)
        page.draw_line((left - 4, y), (left, y), width=0.8)
        label = str(v)
        lw = pymupdf.get_text_length(label, fontname=BODY, fontsize=9)
        page.insert_text((left - 8 - lw, y + 3), label, fontname=BODY, fontsize=9)

    # Bars with their value on top and category label under the axis.
    color = (0.22, 0.45, 0.70)
    slot = (right - left) / len(CHART_VALUES)
    for i, (name, value) in enumerate(CHART_VALUES):
        x0 = left + i * slot + slot * 0.2
        x1 = left + (i + 1) * slot - slot * 0.2
        page.draw_rect((x0, to_y(value), x1, bottom), color=None, fill=color)
        for text, y, size in ((str(value), to_y(value) - 4, 9), (name, bottom + 14, 9.5)):
            tw = pymupdf.get_text_length(text, fontname=BODY, fontsize=size)
            page.insert_text(((x0 + x1 - tw) / 2, y), text, fontname=BODY, fontsize=size)

    # Axes last so they sit on top of the bars.
    page.draw_line((left, top - 5), (left, bottom), width=1.0)
    page.draw_line((left, bottom), (right, bottom), width=1.0)
    page.insert_text((left - 38, (top + bottom) / 2 + 60), "Pages (thousands)",
                     fontname=BODY, fontsize=9.5, rotate=90)
    page.insert_text(((left + right) / 2 - 30, bottom + 32), "Curation stage", fontname=BODY, fontsize=9.5)

    # Legend box in the top-right corner of the plot.
    lx, ly = right - 150, top - 2
    page.draw_rect((lx, ly, right - 4, ly + 22), color=(0.5, 0.5, 0.5), fill=(1, 1, 1), width=0.5)
    page.draw_rect((lx + 8, ly + 7, lx + 18, ly + 15), color=None, fill=color)
    page.insert_text((lx + 24, ly + 14.5), "Pages retained (thousands)", fontname=BODY, fontsize=8.5)

    caption = ("Figure 1: Pages retained after each curation stage, in thousands of pages, "
               "starting from 100 thousand crawled pages.")
    w.y = bottom + 44
    w.text(caption, fontname=ITALIC, fontsize=10)
    w.text("Language identification and deduplication remove the most pages. The quality and "
           "safety filters together remove a further fifth of what is left.")
    footer(page, "Curating PDF Pages - figures")
    keywords = ", ".join(f"{n}={v}" for n, v in CHART_VALUES)
    save(doc, path, title="Pages retained after each curation stage", author="Data Platform Team",
         subject="Vector bar chart example", keywords=keywords)


def make_broken(path: Path) -> None:
    """The first kilobyte of report.pdf: a download cut short. The demo shows it as a reject row."""
    report = path.with_name("report.pdf")
    path.write_bytes(report.read_bytes()[:1024])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", type=Path, default=Path(__file__).resolve().parent / "pdfs")
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    makers = (("report.pdf", make_report), ("scanned.pdf", make_scanned), ("chart.pdf", make_chart),
              ("broken.pdf", make_broken))
    for name, make in makers:
        path = args.outdir / name
        make(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        print(f"wrote {path} ({path.stat().st_size // 1024} KB, sha256 {digest})")


if __name__ == "__main__":
    main()
