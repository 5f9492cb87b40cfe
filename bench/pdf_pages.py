"""Throughput benchmark: PDF pages -> rendered PNG + text shards.

    .venv/bin/python bench/pdf_pages.py [--pages 240] [--repeat 1] [--json out.json]

Generates a seeded corpus of PDFs (text, vector drawings, some embedded raster
images; several files of different lengths) and measures pages/s for:

  (a) the vlcurate Beam pipeline end to end via its CLI in a subprocess, as a user runs it
      locally (FnApiRunner in-process, rendering in one isolated PyMuPDF child per core);
      --also-multi-process adds a run with --direct_running_mode=multi_processing and 2 workers
      (a2), and one on the one-page corpus (a0m) for its fixed cost,
  (b) a plain multiprocessing.Pool(2) loop doing the same PyMuPDF work per page
      (render at longest side 1024, PNG encode, text blocks, write to tar; no page markdown,
      as the pipeline's default; --also-markdown adds the pipeline run (a3) with --markdown),
  (b2) the same loop with the PNG encoder the pipeline uses (transforms/data/png.py: libdeflate
      instead of MuPDF's zlib writer, the same pixels): a/b2 is the pipeline's own cost, the
      encoder's gain taken out,
  (c) poppler's pdftoppm -png -scale-to 1024, two processes in parallel,
and the throughput ratios a/b, a/b2 and a/c; the target is a/b >= 0.9, and a2 no slower than a. It also times the CLI on a
one-page corpus, the pipeline's fixed cost (interpreter, Beam, child start-up, manifest), and
prints the steady-state ratio: pages / (time(a) - fixed cost) against (b); with (a2), "a2/a steady"
is the same for multi_processing against in-process, each with its own fixed cost out. Each run's CPU-seconds
(its whole process tree: the CLI with its render children and Beam workers, the Pool with its
workers) and how busy it kept the cores are printed too, and "a/b busy", the CPU of (b) over that
of (a): the a/b that keeping every core busy all the time would give. Numbers depend on the
machine.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import time
from multiprocessing import Pool
from multiprocessing.pool import ThreadPool
from pathlib import Path

import numpy as np
import pymupdf
from vlcurate.transforms.data.png import pixmap_png
from timing import add_run_flags, best_times, finish, work_folder  # bench/timing.py: this script's folder is on sys.path

REPO_ROOT = Path(__file__).resolve().parent.parent
PAGE_SIZE = 1024  # longest side of the rendered page, in pixels
WORKERS = 2
TARGET = 0.9  # a/b end to end (pages/s against the Pool loop)
CHUNK = 10  # pages per task in (b) and (c): small enough that both workers stay busy
A, A2 = "(a) beam, default local", "(a2) beam multi_processing"
A0 = "(a0) beam, 1-page corpus"
A0M = "(a0m) multi_proc., 1 page"
A3 = "(a3) beam, --markdown"
B, B2, C = "(b) multiprocessing.Pool", "(b2) Pool, our PNG encoder", "(c) pdftoppm x2"
WORDS = ("data model page image text training curation pipeline vision language shard "
         "render quality filter document layout token caption scan table figure").split()


# --------------------------------------------------------------------------- corpus


def page_lengths(total: int, n_files: int, rng: np.random.Generator) -> list[int]:
    """Split `total` pages over `n_files` files of deliberately uneven length."""
    n_files = min(n_files, total)  # every file gets at least one page
    weights = rng.uniform(0.3, 1.7, n_files)
    lengths = np.maximum(1, np.floor(total * weights / weights.sum())).astype(int)
    lengths[0] += total - lengths.sum()  # put the rounding remainder in the first file
    return [int(n) for n in lengths]


def fill_page(page: pymupdf.Page, rng: np.random.Generator, with_image: bool) -> None:
    """Text paragraphs, a few vector shapes and optionally a raster image."""
    w, h = page.rect.width, page.rect.height
    page.insert_text((50, 60), " ".join(rng.choice(WORDS, 5)).title(), fontname="hebo", fontsize=16)
    prose = ". ".join(" ".join(rng.choice(WORDS, 12)).capitalize() for _ in range(25)) + "."
    page.insert_textbox(pymupdf.Rect(50, 80, w - 50, h * 0.45), prose, fontsize=10)
    shape = page.new_shape()  # vector drawings: boxes, lines and circles
    for _ in range(12):
        x, y = rng.uniform(60, w - 160), rng.uniform(h * 0.5, h - 160)
        shape.draw_rect(pymupdf.Rect(x, y, x + rng.uniform(20, 100), y + rng.uniform(20, 100)))
        shape.draw_line((x, y), (x + rng.uniform(-80, 80), y + rng.uniform(-80, 80)))
        shape.draw_circle((x + 40, y + 40), rng.uniform(5, 30))
        shape.finish(color=tuple(rng.uniform(0, 1, 3)), fill=tuple(rng.uniform(0, 1, 3)), width=0.8)
    shape.commit()
    if with_image:  # a smooth gradient plus noise, like a small photo
        yy, xx = np.mgrid[0:240, 0:320]
        rgb = np.stack([xx * 0.8, yy, (xx + yy) * 0.4], axis=-1) + rng.normal(0, 12, (240, 320, 3))
        samples = np.clip(rgb, 0, 255).astype(np.uint8).tobytes()
        pix = pymupdf.Pixmap(pymupdf.csRGB, 320, 240, samples, False)
        page.insert_image(pymupdf.Rect(w - 250, h - 190, w - 40, h - 32), pixmap=pix)


def make_corpus(corpus_dir: Path, total_pages: int, n_files: int, seed: int) -> list[tuple[Path, int]]:
    rng = np.random.default_rng(seed)
    corpus_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for i, n in enumerate(page_lengths(total_pages, n_files, rng)):
        doc = pymupdf.open()
        for _ in range(n):
            fill_page(doc.new_page(), rng, with_image=rng.random() < 0.25)
        path = corpus_dir / f"doc_{i:03d}.pdf"
        doc.save(path, garbage=4, deflate=True, no_new_id=True)  # no random /ID
        doc.close()
        files.append((path, n))
    return files


def chunks(files: list[tuple[Path, int]]) -> list[tuple[str, int, int]]:
    """(path, first, stop) page ranges of at most CHUNK pages, 0-based, stop exclusive."""
    return [(str(p), s, min(s + CHUNK, n)) for p, n in files for s in range(0, n, CHUNK)]


# --------------------------------------------------------------------------- (a) Beam pipeline


def pipeline_cmd(corpus: Path, out: Path, multi_process: bool, markdown: bool = False) -> list[str]:
    """The CLI invocation being measured (vlcurate installed, as `make bench` does)."""
    cmd = [sys.executable, "-m", "vlcurate.pipelines.cli", "pdf", "--input", str(corpus),
           "--output", str(out), "--page-size", str(PAGE_SIZE), "--image-format", "png"]
    if markdown:
        cmd.append("--markdown")
    if multi_process:
        return cmd + ["--direct_running_mode", "multi_processing", "--direct_num_workers", str(WORKERS)]
    return cmd  # the defaults: FnApiRunner in-process, one rendering child per core


def run_pipeline(corpus: Path, out: Path, multi_process: bool = False, markdown: bool = False) -> None:
    proc = subprocess.run(pipeline_cmd(corpus, out, multi_process, markdown), cwd=REPO_ROOT,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"pipeline CLI exited with {proc.returncode}:\n{tail}")
    if not any(p.is_file() for p in out.rglob("*")):  # a run that writes nothing is not a result
        raise RuntimeError(f"pipeline CLI succeeded but wrote no files under {out}")


# --------------------------------------------------------------------------- (b) multiprocessing


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), 0
    tar.addfile(info, io.BytesIO(data))


def render_chunk(task: tuple[str, int, int, str, bool]) -> int:
    path, first, stop, tar_path, our_png = task
    doc = pymupdf.open(path)  # once per task, as the pipeline does per page range
    with tarfile.open(tar_path, "w") as tar:
        for number in range(first, stop):
            page = doc[number]
            s = PAGE_SIZE / max(page.rect.width, page.rect.height)
            pix = page.get_pixmap(matrix=pymupdf.Matrix(s, s))
            png = pixmap_png(pix) if our_png else pix.tobytes("png")
            blocks = page.get_text("blocks", sort=True)
            text = "\n".join(b[4] for b in blocks if b[6] == 0)  # type 0 = text block
            meta = {"source": Path(path).name, "page": number, "width": pix.width,
                    "height": pix.height, "n_chars": len(text)}
            key = f"{Path(path).stem}_{number:05d}"
            add_member(tar, f"{key}.png", png)
            add_member(tar, f"{key}.txt", text.encode())
            add_member(tar, f"{key}.json", json.dumps(meta).encode())
    doc.close()
    return stop - first


def run_pool(files: list[tuple[Path, int]], out: Path, our_png: bool = False) -> None:
    tasks = [(p, a, b, str(out / f"chunk_{i:05d}.tar"), our_png) for i, (p, a, b) in enumerate(chunks(files))]
    with Pool(WORKERS) as pool:
        done = sum(pool.imap_unordered(render_chunk, tasks))
    assert done == sum(n for _, n in files), (done, files)


# --------------------------------------------------------------------------- (c) pdftoppm


def run_pdftoppm(files: list[tuple[Path, int]], out: Path) -> None:
    # Same page ranges as (b) so neither baseline suffers from the uneven file lengths.
    def one(task: tuple[int, tuple[str, int, int]]) -> None:
        i, (path, first, stop) = task
        subprocess.run(["pdftoppm", "-png", "-scale-to", str(PAGE_SIZE), "-f", str(first + 1),
                        "-l", str(stop), path, str(out / f"c{i:05d}")], check=True)

    with ThreadPool(WORKERS) as pool:  # threads only wait; the two pdftoppm processes do the work
        pool.map(one, list(enumerate(chunks(files))))


# --------------------------------------------------------------------------- driver


def main() -> int:
    ap = argparse.ArgumentParser(description="PDF page rendering throughput benchmark.")
    ap.add_argument("--pages", type=int, default=240, help="total pages in the corpus")
    ap.add_argument("--files", type=int, default=12, help="number of PDFs the pages are spread over")
    add_run_flags(ap)
    ap.add_argument("--also-multi-process", action="store_true",
                    help="also time the pipeline with --direct_running_mode=multi_processing")
    ap.add_argument("--also-markdown", action="store_true",
                    help="also time the pipeline with --markdown (each page's KEY.md too; (b) makes none)")
    ap.add_argument("--skip-pipeline", action="store_true", help="only run the baselines (b) and (c)")
    ap.add_argument("--skip-pdftoppm", action="store_true",
                    help="leave out (c), which takes 5 to 8 times as long as the other runs (e.g. at large --pages)")
    args = ap.parse_args()

    work, tmp = work_folder(args, "vlcurate-bench-")
    corpus = work / "corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    t0 = time.perf_counter()
    files = make_corpus(corpus, args.pages, args.files, args.seed)
    pages, lengths = sum(n for _, n in files), [n for _, n in files]
    print(f"cores: {os.cpu_count()}  workers: {WORKERS}  corpus: {pages} pages in {len(files)} PDFs "
          f"({min(lengths)}-{max(lengths)} pages each, made in {time.perf_counter() - t0:.1f}s) at {corpus}")

    runs = {}
    if not args.skip_pipeline:
        one_page = work / "one-page"
        shutil.rmtree(one_page, ignore_errors=True)
        make_corpus(one_page, 1, 1, args.seed)
        runs[A0] = lambda out: run_pipeline(one_page, out)
        runs[A] = lambda out: run_pipeline(corpus, out)
        if args.also_multi_process:
            runs[A0M] = lambda out: run_pipeline(one_page, out, multi_process=True)
            runs[A2] = lambda out: run_pipeline(corpus, out, multi_process=True)
        if args.also_markdown:
            runs[A3] = lambda out: run_pipeline(corpus, out, markdown=True)
    runs[B] = lambda out: run_pool(files, out)
    runs[B2] = lambda out: run_pool(files, out, our_png=True)
    if not args.skip_pdftoppm:
        runs[C] = lambda out: run_pdftoppm(files, out)

    cpu: dict = {}
    results, errors = best_times(runs, work, args.repeat, cpu)

    # CPU: of the whole process tree in that run; busy: that CPU over (wall time x cores).
    print(f"\n{'measurement':28s} {'pages':>6s} {'seconds':>9s} {'pages/s':>9s} {'CPU-s':>7s} {'busy':>5s}")
    for name in runs:
        usage = f"{cpu[name]:7.1f} {cpu[name] / (results[name] * os.cpu_count()):5.0%}" if name in results else ""
        if name in (A0, A0M) and name in results:
            print(f"{name:28s} {1:6d} {results[name]:9.2f} {'':>9s} {usage}  (fixed cost)")
        elif name in results:
            print(f"{name:28s} {pages:6d} {results[name]:9.2f} {pages / results[name]:9.1f} {usage}")
        else:
            print(f"{name:28s} {pages:6d} {'FAILED':>9s}")
            print(textwrap.indent(errors[name], "    "))

    # Throughput ratios (pages/s), i.e. the inverse ratio of the best times.
    pairs = {"a/b": (A, B), "a/b2": (A, B2), "a/c": (A, C), "a2/b": (A2, B), "a3/b": (A3, B)}
    ratios = {k: results[d] / results[n] for k, (n, d) in pairs.items() if n in results and d in results}
    if A in results and A0 in results and B in results and results[A] > results[A0]:
        # Throughput once running: the fixed cost (measured on one page) taken out of (a).
        ratios["a/b steady"] = results[B] / (results[A] - results[A0])
    if A2 in results and A0M in results and A in results and A0 in results and results[A2] > results[A0M]:
        # The same for multi_processing against in-process: each run's own fixed cost taken out.
        ratios["a2/a steady"] = (results[A] - results[A0]) / (results[A2] - results[A0M])
    if A in cpu and B in cpu:
        # What a/b would be if both kept every core busy from start to end: the ratio of the work.
        ratios["a/b busy"] = cpu[B] / cpu[A]
    if ratios:
        print("\nthroughput ratios: " + "   ".join(f"{k} = {v:.2f}" for k, v in ratios.items()))
    if "a/b" in ratios:
        print(f"target a/b >= {TARGET}: {'MET' if ratios['a/b'] >= TARGET else 'NOT MET'}")
    if A in results and A2 in results:
        steady = f", {ratios['a2/a steady']:.2f} with each one's fixed cost out" if "a2/a steady" in ratios else ""
        print(f"target a2 no slower than a: {'MET' if results[A2] <= results[A] else 'NOT MET'} "
              f"(a2/a = {results[A] / results[A2]:.2f}{steady})")

    finish(args, tmp, {
        "cores": os.cpu_count(), "workers": WORKERS, "pages": pages, "pdfs": len(files),
        "repeat": args.repeat,
        "results": {k: {"seconds": t, "pages_per_s": pages / t, "cpu_seconds": cpu[k]} for k, t in results.items()},
        "errors": errors, "ratios": ratios,
        "target_met": ratios.get("a/b", 0) >= TARGET,
    })
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
