"""Precision and recall of figure kinds on real documents, against hand labels.

    .venv/bin/python bench/figure_kinds.py PDF... [--labels bench/figure_kinds_labels.json] [--json out.json]

Runs the figure extraction of `vlcurate charts` (figures.figure_samples) over every page of the
PDFs named, matches each figure found to the hand-labelled figure on the same page whose box it
overlaps most (intersection over union 0.5 or more) and prints, per kind (chart, table, photo,
diagram), precision (found as that kind and labelled so / found as that kind) and recall
(labelled that kind and found so / labelled that kind). A figure found where the labels have
none (a contents page boxed as a table) counts against the precision of its kind. The labels
(file name, page, box in PDF points, kind) were made by looking at every page of the manuals,
which are Debian packages' own: see docs/benchmarks.md for where to get them.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import sys
from pathlib import Path

import pymupdf

from vlcurate.transforms.data.rejects import Reject
from vlcurate.transforms.sources.pdf.config import FigureConfig, PdfConfig
from vlcurate.transforms.sources.pdf.core import inspect_document, open_pdf
from vlcurate.transforms.sources.pdf.figures import figure_samples

KINDS = ("chart", "table", "photo", "diagram")


def found_figures(path: Path) -> list[dict]:
    data = path.read_bytes()
    document, config = open_pdf(data), PdfConfig(figures=FigureConfig())
    out = []
    for task in inspect_document(document, str(path), hashlib.sha256(data).hexdigest(), config):
        try:
            samples = figure_samples(document, task, config)
        except Reject:
            continue
        out.extend({"file": path.name, **{k: s.meta["chart"][k] for k in ("page", "bbox", "kind")},
                    "chart_type": s.meta["chart"].get("chart_type")} for s in samples)
    return out


def _iou(a, b) -> float:
    a, b = pymupdf.Rect(a), pymupdf.Rect(b)
    common = (a & b).get_area()
    return common / max((a | b).get_area(), 1e-9)


def score(found: list[dict], labels: list[dict]) -> dict:
    """Per kind: found, labelled, right (found as the kind it is labelled)."""
    counts = {kind: collections.Counter() for kind in KINDS}
    matched = set()
    for figure in found:
        counts[figure["kind"]]["found"] += 1
        same_page = [(i, label) for i, label in enumerate(labels) if (label["file"], label["page"]) ==
                     (figure["file"], figure["page"]) and i not in matched]
        best = max(same_page, key=lambda item: _iou(item[1]["bbox"], figure["bbox"]), default=None)
        if best is not None and _iou(best[1]["bbox"], figure["bbox"]) >= 0.5:
            matched.add(best[0])
            counts[figure["kind"]]["right"] += best[1]["kind"] == figure["kind"]
    for label in labels:
        counts[label["kind"]]["labelled"] += 1
    return {kind: {"found": c["found"], "labelled": c["labelled"], "right": c["right"],
                   "precision": c["right"] / c["found"] if c["found"] else None,
                   "recall": c["right"] / c["labelled"] if c["labelled"] else None}
            for kind, c in counts.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description="Precision and recall of figure kinds against hand labels.")
    ap.add_argument("pdfs", nargs="+", type=Path)
    ap.add_argument("--labels", type=Path, default=Path(__file__).with_name("figure_kinds_labels.json"))
    ap.add_argument("--json", type=Path, help="write the figures found and the scores to this JSON file")
    args = ap.parse_args()
    missing = [str(p) for p in args.pdfs if not p.is_file()]
    if missing:
        print(f"figure_kinds: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    names = {p.name for p in args.pdfs}
    labels = [label for label in json.loads(args.labels.read_text())["figures"] if label["file"] in names]
    found = [figure for path in args.pdfs for figure in found_figures(path)]
    scores = score(found, labels)
    print(f"{len(args.pdfs)} documents, {len(found)} figures found, {len(labels)} labelled\n")
    print(f"{'kind':8s} {'found':>6s} {'labelled':>9s} {'right':>6s} {'precision':>10s} {'recall':>7s}")
    for kind, s in scores.items():
        fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        print(f"{kind:8s} {s['found']:6d} {s['labelled']:9d} {s['right']:6d} {fmt(s['precision']):>10s} {fmt(s['recall']):>7s}")
    if args.json:
        args.json.write_text(json.dumps({"found": found, "scores": scores}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
