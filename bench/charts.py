"""Throughput benchmark of figure extraction: pages/s of `vlcurate charts`, and notebooks/s.

    .venv/bin/python bench/charts.py [--pages 120] [--notebooks 200] [--repeat 1] [--json out.json]

Generates a seeded corpus of document pages (prose, matplotlib bar and line charts placed as
vector drawings, raster photos, ruled tables, pages of prose only) and measures on both cores:

  (a) `vlcurate charts` end to end via its CLI in a subprocess (FnApiRunner in-process, PyMuPDF
      in one isolated child per core, shards, index and manifest),
  (b) the raw limit named by the issue: PyMuPDF's own layout pass alone (page.get_layout(), the
      pymupdf-layout ONNX model) over the same pages in a multiprocessing.Pool(2),
  (c) the same figure extraction as (a) (vlcurate.transforms.sources.pdf.figures.figure_samples: layout,
      images, drawing clusters, captions, crops, chart data) in a plain Pool(2), nothing written,
and prints pages/s with a/b and a/c. Then bench/notebooks.py measures the notebook stage.
Numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from vlcurate.transforms.runtime import native_threads

# One native thread per process in the baselines too, as in the pipeline's children: set before
# PyMuPDF loads (it loads pymupdf-layout's ONNX model); the pool's forked workers inherit it.
native_threads.limit(1)
import pymupdf  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))  # the tests' chart fixtures (matplotlib, known data)

from fixtures import chart as chart_fixtures  # noqa: E402
from timing import add_run_flags, best_time, work_folder  # noqa: E402  (bench/timing.py)

WORKERS = 2
A, B, C = "(a) vlcurate charts", "(b) Pool(2), layout pass only", "(c) Pool(2), same extraction"


def make_corpus(folder: Path, pages: int, seed: int) -> list[Path]:
    """PDFs of ten pages each; every page holds prose and, by turns, a chart, a photo or a table."""
    rng = np.random.default_rng(seed)
    charts = [pymupdf.open(stream=chart_fixtures.bar_chart(), filetype="pdf"),
              pymupdf.open(stream=chart_fixtures.line_chart(), filetype="pdf")]
    photo = chart_fixtures.photo_png()
    folder.mkdir(parents=True, exist_ok=True)
    paths, made = [], 0
    while made < pages:
        document = pymupdf.open()
        for _ in range(min(10, pages - made)):
            page = document.new_page()
            page.insert_textbox(pymupdf.Rect(72, 60, 540, 160), chart_fixtures.PROSE * 2, fontsize=10)
            kind = int(rng.integers(0, 4))
            if kind < 2:
                page.show_pdf_page(pymupdf.Rect(96, 180, 456, 425), charts[kind], 0)
            elif kind == 2:
                page.insert_image(pymupdf.Rect(150, 180, 390, 345), stream=photo)
            if kind < 3:
                page.insert_textbox(pymupdf.Rect(72, 440, 540, 470), f"Figure {made + 1}: a figure.", fontsize=10)
            page.insert_textbox(pymupdf.Rect(72, 490, 540, 720), chart_fixtures.PROSE * 4, fontsize=10)
            made += 1
        path = folder / f"doc_{len(paths):03d}.pdf"
        document.save(path, garbage=4, deflate=True, no_new_id=True)
        paths.append(path)
    return paths


def run_pipeline(corpus: Path, out: Path) -> None:
    command = [sys.executable, "-m", "vlcurate.pipelines.cli", "charts", "--input", str(corpus), "--output", str(out)]
    proc = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("\n".join(proc.stderr.strip().splitlines()[-15:]))


def _layout_pass(path: str) -> int:
    import pymupdf.layout  # noqa: F401  (activates get_layout)

    document = pymupdf.open(path)
    for page in document:
        page.get_layout()
    return document.page_count


def _extract(path: str) -> int:
    from vlcurate.transforms.sources.pdf.figures import figure_samples
    from vlcurate.transforms.sources.pdf.core import inspect_document
    from vlcurate.transforms.sources.pdf.config import FigureConfig, PdfConfig
    from vlcurate.transforms.data.rejects import Reject

    data = Path(path).read_bytes()
    document = pymupdf.open(stream=data, filetype="pdf")
    config = PdfConfig(figures=FigureConfig())
    for task in inspect_document(document, path, hashlib.sha256(data).hexdigest(), config):
        try:
            figure_samples(document, task, config)
        except Reject:
            pass
    return document.page_count


def run_pool(paths: list[Path], work) -> None:
    with Pool(WORKERS) as pool:
        sum(pool.imap_unordered(work, [str(p) for p in paths]))


def main() -> int:
    ap = argparse.ArgumentParser(description="Figure extraction throughput benchmark.")
    ap.add_argument("--pages", type=int, default=120)
    ap.add_argument("--notebooks", type=int, default=200, help="for bench/notebooks.py (0: skip it)")
    add_run_flags(ap)
    args = ap.parse_args()

    work, tmp = work_folder(args, "vlcurate-bench-charts-")
    corpus = work / "corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    paths = make_corpus(corpus, args.pages, args.seed)
    print(f"cores: {os.cpu_count()}  workers: {WORKERS}  corpus: {args.pages} pages in {len(paths)} PDFs at {corpus}")
    runs = {A: lambda out: run_pipeline(corpus, out), B: lambda out: run_pool(paths, _layout_pass),
            C: lambda out: run_pool(paths, _extract)}
    times = {name: best_time(fn, work / f"out-{i}", args.repeat) for i, (name, fn) in enumerate(runs.items())}
    print(f"\n{'measurement':32s} {'pages':>6s} {'seconds':>9s} {'pages/s':>8s}")
    for name, seconds in times.items():
        print(f"{name:32s} {args.pages:6d} {seconds:9.2f} {args.pages / seconds:8.1f}")
    ratios = {"a/b": times[B] / times[A], "a/c": times[C] / times[A]}
    print("\nthroughput ratios: " + "   ".join(f"{k} = {v:.2f}" for k, v in ratios.items()))
    if args.json:
        args.json.write_text(json.dumps({"cores": os.cpu_count(), "pages": args.pages, "seconds": times,
                                         "ratios": ratios}, indent=2) + "\n")
    if tmp:
        tmp.cleanup()
    if args.notebooks:
        print()
        return subprocess.run([sys.executable, str(Path(__file__).with_name("notebooks.py")),
                               "--notebooks", str(args.notebooks)]).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
