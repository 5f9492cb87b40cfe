"""Page markdown (KEY.md) on real documents: its cost against the text layer, and what it found.

    .venv/bin/python bench/page_markdown.py PDF [PDF ...] [--pages 20] [--json out.json]

For each PDF, on up to --pages pages spread evenly over it, the page work of `vlcurate pdf`
(render_page, no OCR) is timed without and with the markdown (pages/s each, best of --repeat,
interleaved), and the markdown is checked against what the document says of itself:

  headings   the document's outline (its TOC) entries on those pages, and how many of them came
             out as a markdown heading line on their page (the TOC is the author's own list of
             headings; a document without one reports only the headings found)
  tables     ruled tables on those pages (find_tables, lines_strict, 2x2 cells or more) and the
             markdown tables written for them
  code       code blocks (``` fences) written

Without PDFs on the command line it makes a generated manual page (tests/fixtures/manual_page.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))  # the generated manual page, when no PDF is named

from vlcurate.transforms.ocr.config import OcrConfig  # noqa: E402
from vlcurate.transforms.sources.pdf.config import PdfConfig  # noqa: E402
from vlcurate.transforms.sources.pdf.core import inspect_document, open_pdf, render_page  # noqa: E402


def _words(text: str) -> str:
    return " ".join(re.sub(r"[*_`#]", " ", text).lower().split())


def measure(name: str, data: bytes, pages: int, repeat: int) -> dict:
    pdf = open_pdf(data)
    sha = hashlib.sha256(data).hexdigest()
    tasks = inspect_document(pdf, name, sha, PdfConfig())
    step = max(1, len(tasks) // pages)
    tasks = tasks[::step][:pages]
    rates, samples = {}, {}
    for _ in range(repeat):
        for markdown in (False, True):
            config = PdfConfig(markdown=markdown, ocr=OcrConfig(mode="never"))
            start = time.perf_counter()
            samples[markdown] = [render_page(pdf, task, config) for task in tasks]
            rate = len(tasks) / (time.perf_counter() - start)
            rates[markdown] = max(rate, rates.get(markdown, 0.0))
    toc = [(level, title, page) for level, title, page in pdf.get_toc(simple=True)]
    wanted = {task.page_index + 1 for task in tasks}
    listed = found = ruled = tables = code = headings = 0
    for task, sample in zip(tasks, samples[True]):
        lines = (sample.markdown or "").splitlines()
        heading_lines = [_words(line) for line in lines if line.startswith("#")]
        headings += len(heading_lines)
        tables += sum(1 for line in lines if line.startswith("|---"))
        code += sum(1 for line in lines if line.startswith("```")) // 2
        for _level, title, page in toc:
            if page == task.page_index + 1 and _words(title):
                listed += 1
                found += any(_words(title) in line for line in heading_lines)
        page = pdf.load_page(task.page_index)
        ruled += sum(1 for t in page.find_tables(strategy="lines_strict").tables if t.row_count >= 2 and t.col_count >= 2)
    return {
        "document": name, "pages": len(tasks), "page_count": len(pdf),
        "pages_per_s_text_layer": round(rates[False], 1), "pages_per_s_markdown": round(rates[True], 1),
        "slowdown": round(rates[False] / rates[True], 1),
        "toc_headings_on_pages": listed if toc else None, "toc_headings_found": found if toc else None,
        "heading_lines": headings, "ruled_tables": ruled, "markdown_tables": tables, "code_blocks": code,
        "pages_with_toc": len(wanted & {page for _, _, page in toc}),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description="Page markdown on real PDFs: cost and what it found.")
    ap.add_argument("pdfs", nargs="*", type=Path, help="PDF files (none: a generated manual page)")
    ap.add_argument("--pages", type=int, default=20, help="pages per document, spread evenly")
    ap.add_argument("--repeat", type=int, default=1, help="timed runs; the best is reported")
    ap.add_argument("--json", type=Path, help="write the figures to this JSON file")
    args = ap.parse_args()
    if args.pdfs:
        inputs = [(path.name, path.read_bytes()) for path in args.pdfs]
    else:
        from fixtures.manual_page import manual_pdf

        inputs = [("generated manual page", manual_pdf())]
    results = [measure(name, data, args.pages, args.repeat) for name, data in inputs]
    head = f"{'document':30s} {'pages':>5s} {'text p/s':>9s} {'md p/s':>7s} {'x':>5s} {'TOC hd':>7s} " \
           f"{'found':>6s} {'# lines':>7s} {'ruled':>6s} {'md tbl':>6s} {'code':>5s}"
    print(head)
    for r in results:
        toc = "-" if r["toc_headings_on_pages"] is None else str(r["toc_headings_on_pages"])
        found = "-" if r["toc_headings_found"] is None else str(r["toc_headings_found"])
        print(f"{r['document'][:30]:30s} {r['pages']:5d} {r['pages_per_s_text_layer']:9.1f} "
              f"{r['pages_per_s_markdown']:7.1f} {r['slowdown']:5.1f} {toc:>7s} {found:>6s} {r['heading_lines']:7d} "
              f"{r['ruled_tables']:6d} {r['markdown_tables']:6d} {r['code_blocks']:5d}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
