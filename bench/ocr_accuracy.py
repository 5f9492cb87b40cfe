"""OCR accuracy: character error rate of both engines against PDF text layers, and ms per page.

    .venv/bin/python bench/ocr_accuracy.py [--pages-per-kind 3] [--dpi 200] [--engines ppocr,tesseract]
                                           [--json out.json]

Renders pages that have a text layer (generated: prose in Helvetica, Times and Courier at
several sizes, a two-column page, a page of numbers; pages made to look scanned (grey, turned
about a degree, blurred, noisy, JPEG at quality 60); and the demo's report.pdf),
runs each engine on the rendered image (one native thread, as in the pipeline's children) and
prints, per kind of page and overall, CER = edits / reference characters after whitespace is
normalised (transforms/ocr/accuracy.py), against the page's text layer in its own reading order.
Also prints the rendering time and the OCR time per page. Numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import pymupdf
from PIL import Image, ImageFilter

from vlcurate.transforms.ocr.core import read_text
from vlcurate.transforms.ocr.config import OcrConfig
from vlcurate.transforms.ocr.accuracy import character_error_rate, normalise

REPO_ROOT = Path(__file__).resolve().parent.parent
WORDS = ("the of a model data image text page vision language training curation pipeline shard sample "
         "score filter table chart figure caption code render browser document scanned report results "
         "method evaluation benchmark accuracy section quality dataset language tokens").split()
# kind -> (font, size, columns); a "scanned" kind's image is degraded after rendering
KINDS = {
    "helvetica-11": ("helv", 11, 1),
    "times-10": ("tiro", 10, 1),
    "courier-9": ("cour", 9, 1),
    "helvetica-7": ("helv", 7, 1),
    "two-columns-9": ("helv", 9, 2),
    "scanned-times-10": ("tiro", 10, 1),
}


def prose(rng: np.random.Generator, sentences: int) -> str:
    out = []
    for _ in range(sentences):
        words = list(rng.choice(WORDS, rng.integers(6, 14)))
        if rng.random() < 0.3:
            words.insert(int(rng.integers(0, len(words))), f"{rng.integers(1, 2000)}")
        if rng.random() < 0.2:
            words.insert(int(rng.integers(0, len(words))), f"({rng.choice(['a', 'b', 'c'])})")
        out.append(" ".join(words).capitalize() + rng.choice([".", ".", ",", ";", ":", "?"]))
    return " ".join(out)


def fill(page: pymupdf.Page, rect: pymupdf.Rect, rng: np.random.Generator, font: str, size: float) -> None:
    """As much prose as fits the box (insert_textbox writes nothing when the text overflows)."""
    sentences = 80
    while page.insert_textbox(rect, prose(rng, sentences), fontname=font, fontsize=size) < 0:
        sentences -= 4
        if sentences <= 0:
            raise ValueError("no text fits the box")


def generated_pages(per_kind: int, seed: int):
    """(kind, page) pairs; each page's text layer is the reference."""
    rng = np.random.default_rng(seed)
    document = pymupdf.open()
    for kind, (font, size, columns) in KINDS.items():
        for _ in range(per_kind):
            page = document.new_page()  # A4-ish letter, 612 x 792 pt
            width = (612 - 72 * 2 - 24 * (columns - 1)) / columns
            for column in range(columns):
                x0 = 72 + column * (width + 24)
                fill(page, pymupdf.Rect(x0, 72, x0 + width, 720), rng, font, size)
            yield kind, page
    numbers = document.new_page()
    rows = [" ".join(f"{v:,.2f}" for v in rng.uniform(-5000, 5000, 6)) for _ in range(30)]
    numbers.insert_textbox(pymupdf.Rect(72, 72, 540, 720), "\n".join(rows), fontname="helv", fontsize=10)
    yield "numbers-10", numbers
    report = pymupdf.open(REPO_ROOT / "examples" / "pdfs" / "report.pdf")
    for page in report:
        yield "demo-report", page


def render(page: pymupdf.Page, dpi: int) -> Image.Image:
    pixmap = page.get_pixmap(dpi=dpi, alpha=False)
    return Image.frombytes("RGB", (pixmap.width, pixmap.height), pixmap.samples)


def scanned(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A scan of the page: grey, turned about a degree, toner blur, sensor noise, JPEG at 60."""
    grey = image.convert("L").rotate(float(rng.uniform(-1.5, 1.5)), resample=Image.BICUBIC, fillcolor=255)
    grey = grey.filter(ImageFilter.GaussianBlur(0.9))
    pixels = np.asarray(grey).astype(np.float32) * 0.9 + 20 + rng.normal(0, 12, (grey.height, grey.width))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=60)
    return Image.open(buffer).convert("RGB")


def main() -> int:
    ap = argparse.ArgumentParser(description="OCR accuracy against PDF text layers.")
    ap.add_argument("--pages-per-kind", type=int, default=3)
    ap.add_argument("--dpi", type=int, default=OcrConfig().dpi)
    ap.add_argument("--engines", default="ppocr,tesseract")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    engines = args.engines.split(",")
    configs = {engine: OcrConfig(engine=engine, threads=1) for engine in engines}
    for config in configs.values():  # load the models before timing
        read_text(Image.new("RGB", (64, 64), "white"), config)
    # kind -> engine -> [edits, reference characters, OCR seconds, pages]
    tally: dict[str, dict[str, list[float]]] = {}
    render_seconds = pages = 0
    noise = np.random.default_rng(args.seed + 1)
    for kind, page in generated_pages(args.pages_per_kind, args.seed):
        reference = normalise(page.get_text())
        if not reference:
            raise RuntimeError(f"a {kind} page has no text layer: the corpus is wrong")
        start = time.perf_counter()
        image = render(page, args.dpi)
        render_seconds += time.perf_counter() - start
        if kind.startswith("scanned"):
            image = scanned(image, noise)
        pages += 1
        for engine, config in configs.items():
            start = time.perf_counter()
            hypothesis = read_text(image, config).text
            seconds = time.perf_counter() - start
            entry = tally.setdefault(kind, {}).setdefault(engine, [0, 0, 0, 0])
            entry[0] += character_error_rate(hypothesis, reference) * len(reference)
            entry[1] += len(reference)
            entry[2] += seconds
            entry[3] += 1

    header = f"{'pages':18s} {'n':>3s}" + "".join(f" {engine + ' CER':>14s} {'ms/page':>8s}" for engine in engines)
    print(f"dpi {args.dpi}; rendering {1000 * render_seconds / pages:.0f} ms/page; one native thread per engine\n")
    print(header)
    overall = {engine: [0, 0, 0, 0] for engine in engines}
    figures = {}
    for kind, by_engine in tally.items():
        row = f"{kind:18s} {int(next(iter(by_engine.values()))[3]):3d}"
        for engine in engines:
            edits, chars, seconds, count = by_engine[engine]
            overall[engine] = [a + b for a, b in zip(overall[engine], by_engine[engine])]
            row += f" {edits / chars:14.4f} {1000 * seconds / count:8.0f}"
            figures.setdefault(kind, {})[engine] = {"cer": edits / chars, "ms_per_page": 1000 * seconds / count}
        print(row)
    row = f"{'all':18s} {pages:3d}"
    for engine in engines:
        edits, chars, seconds, count = overall[engine]
        row += f" {edits / chars:14.4f} {1000 * seconds / count:8.0f}"
        figures.setdefault("all", {})[engine] = {"cer": edits / chars, "ms_per_page": 1000 * seconds / count}
    print(row)
    if args.json:
        args.json.write_text(json.dumps({"dpi": args.dpi, "pages": pages, "figures": figures}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
