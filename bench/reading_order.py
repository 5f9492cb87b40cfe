"""Reading order on real PDFs: how often a page's text, block after block, jumps between columns.

    .venv/bin/python bench/reading_order.py PDF [PDF ...] [--json out.json]

For each page, its text blocks (PyMuPDF's ``get_text("blocks")``) are put in order twice: (a)
PyMuPDF's ``sort=True`` (top to bottom, then left to right), (b) vlcurate's column-by-column order
(transforms/sources/pdf/reading_order.py). A block lying in the left half of the page is L, in the
right half R, across the middle neither; the count is of neighbours in the order that are L then
R or R then L. A two-column page read column by column switches about once (more around figures
and a title block); read line across line, at almost every block. One-column documents should
give the same count both ways. Prints pages and the two counts per document.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pymupdf

from vlcurate.transforms.sources.pdf.reading_order import reading_order

SLACK_PT = 5.0  # a block this far over the middle still counts as its side


def switches(blocks, middle: float) -> int:
    sides = ["L" if b[2] <= middle + SLACK_PT else "R" if b[0] >= middle - SLACK_PT else "" for b in blocks]
    sides = [side for side in sides if side]
    return sum(a != b for a, b in zip(sides, sides[1:]))


def measure(path: Path) -> dict:
    before = after = 0
    with pymupdf.open(path) as document:
        for page in document:
            blocks = [b for b in page.get_text("blocks", sort=True) if b[6] == 0 and b[4].strip()]
            ordered = [blocks[i] for i in reading_order([b[:4] for b in blocks])]
            middle = page.rect.width / 2
            before += switches(blocks, middle)
            after += switches(ordered, middle)
        return {"pages": document.page_count, "switches_sort_true": before, "switches_reading_order": after}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pdfs", nargs="+", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {}
    print(f"{'document':32s} {'pages':>5s} {'sort=True':>10s} {'columns':>8s}")
    for path in args.pdfs:
        results[path.name] = figures = measure(path)
        print(f"{path.name:32s} {figures['pages']:5d} {figures['switches_sort_true']:10d} "
              f"{figures['switches_reading_order']:8d}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
