"""Memory benchmark: the peak RSS of the whole process tree of a vlcurate run, against its size.

    .venv/bin/python bench/memory.py [--pages 1000,4000,16000] [--pages-per-file 40]
                                     [--recipe-sizes small,large] [--interval 0.2]
                                     [--cache DIR] [--json out.json]

Runs the CLI as a user does (`.venv/bin/vlcurate`, in a subprocess, the default runner: Beam's
FnApiRunner in-process, rendering in isolated child processes), each run into a fresh temporary
output folder removed afterwards, and while it runs samples every --interval seconds, with psutil,
the resident set size (RSS) of the vlcurate process and of all its descendants (Beam workers,
the isolated PyMuPDF children, anything they start), summed over the tree; the peak of that sum
is the figure. It measures

  (a) `vlcurate pdf` over generated corpora of --pages pages (40-page PDFs by default: a title,
      a few paragraphs of prose and a drawn bar chart on every page; every page's bytes distinct,
      the whole corpus deterministic from --seed), and
  (b) `vlcurate run` over a generated mixed recipe (a pdf source, an sft source whose every other
      conversation shows a photo-like JPEG, and a text source; exact dedup) at --recipe-sizes:
      `small` (500), `large` (4000) or numbers N; size N is N PDF pages, N conversations and
      2N text documents,

and prints, per size: pages (or inputs), samples, wall seconds, pages/s (or samples/s), the peak
RSS of the tree in MB, and its ratio to the smallest size's peak; then the growth per page (the
slope between the smallest and the largest size) and the verdict for the target: the largest
--pages run's peak at most 1.25x the smallest's, and under 3 GB (with the default sizes: 16k pages
against 1k). The corpora are cached under --cache (one pool of PDFs; a corpus of N pages is hard
links to its first files), so a rerun only generates what is missing.

Summing RSS counts a page shared by two processes (a forked child's copy-on-write pages, shared
libraries) twice: the figure is an upper bound of what the tree holds, which is what a machine's
memory has to allow for. A run that fails prints the tail of its stderr and the benchmark exits 1.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from timing import run_main  # bench/timing.py: this script's folder is on sys.path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vlcurate-bench" / "memory"
RECIPE_SIZES = {"small": 500, "large": 4000}
TARGET_RATIO = 1.25  # the largest --pages run's peak over the smallest's
TARGET_MB = 3000  # ... and under 3 GB
MB = 1e6
WORDS = ("data model page image text training curation pipeline vision language shard render quality "
         "filter document layout token caption scan table figure memory worker staging bytes record "
         "manifest sample source recipe").split()
PHOTOS = 64  # distinct photo-like images the conversations show


def vlcurate_command() -> list[str]:
    """The installed `vlcurate` script, as a user runs it (the module if there is no script)."""
    script = REPO_ROOT / ".venv" / "bin" / "vlcurate"
    if script.exists():
        return [str(script)]
    found = shutil.which("vlcurate")
    return [found] if found else [sys.executable, "-m", "vlcurate.pipelines.cli"]


# --------------------------------------------------------------------------- corpora


def make_pdf(path: Path, number: int, pages: int, seed: int) -> None:
    """PDF number `number` of the pool: `pages` pages, each a title, three paragraphs and a bar
    chart drawn with vector shapes; seeded by (seed, number, pages), so the same file every time."""
    import pymupdf

    rng = np.random.default_rng([seed, number, pages])
    doc = pymupdf.open()
    for page_number in range(pages):
        page = doc.new_page()  # A4-ish 595 x 842 points
        w, h = page.rect.width, page.rect.height
        title = f"Report {number}.{page_number}: " + " ".join(rng.choice(WORDS, 4)).title()
        page.insert_text((50, 60), title, fontname="hebo", fontsize=15)
        paragraphs = "\n\n".join(
            ". ".join(" ".join(rng.choice(WORDS, int(rng.integers(8, 16)))).capitalize() for _ in range(6)) + "."
            for _ in range(3))
        page.insert_textbox(pymupdf.Rect(50, 80, w - 50, h * 0.5), paragraphs, fontsize=10)
        # A figure: axes, bars of random heights with their values, and a caption.
        x0, y0, x1, y1 = 80, h * 0.55, w - 80, h - 110
        shape = page.new_shape()
        shape.draw_line((x0, y1), (x1, y1))
        shape.draw_line((x0, y0), (x0, y1))
        shape.finish(color=(0, 0, 0), width=1)
        bars = int(rng.integers(4, 9))
        step = (x1 - x0) / bars
        values = rng.uniform(0.1, 1.0, bars)
        for i, value in enumerate(values):
            left = x0 + i * step + step * 0.15
            shape.draw_rect(pymupdf.Rect(left, y1 - value * (y1 - y0), left + step * 0.7, y1))
            shape.finish(color=None, fill=tuple(rng.uniform(0.1, 0.9, 3)))
        shape.commit()
        for i, value in enumerate(values):
            page.insert_text((x0 + i * step + step * 0.2, y1 - value * (y1 - y0) - 4), f"{value * 100:.0f}", fontsize=7)
        page.insert_text((x0, y1 + 24), f"Figure {page_number + 1}. " + " ".join(rng.choice(WORDS, 6)), fontsize=9)
    tmp = path.with_suffix(".tmp")
    doc.save(tmp, garbage=4, deflate=True, no_new_id=True)  # no random /ID: the same bytes every time
    doc.close()
    os.replace(tmp, path)  # a generation cut short leaves no half file behind


def link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy(source, target)


def pdf_corpus(cache: Path, total: int, per_file: int, seed: int) -> Path:
    """A folder of `total` pages in files of `per_file` pages (the last one shorter): hard links to
    the files of the cached pool, which is generated as far as this corpus needs."""
    pool = cache / f"pool-seed{seed}"
    folder = cache / f"pdf-{total}p-{per_file}pf-seed{seed}"
    lengths = [per_file] * (total // per_file) + ([total % per_file] if total % per_file else [])
    names = [f"doc-{number:05d}-{pages}p.pdf" for number, pages in enumerate(lengths)]
    if folder.is_dir() and sorted(p.name for p in folder.iterdir()) == names:
        return folder
    pool.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    made = 0
    for number, (pages, name) in enumerate(zip(lengths, names)):
        if not (pool / name).exists():
            make_pdf(pool / name, number, pages, seed)
            made += pages
    if made:
        print(f"  generated {made} pages into {pool} in {time.perf_counter() - start:.0f}s", flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in names:
        link_or_copy(pool / name, folder / name)
    return folder


def make_photo(path: Path, number: int, seed: int) -> None:
    """A 640x480 JPEG like a small photo: smooth gradients, a few shapes and noise."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng([seed, 7, number])
    yy, xx = np.mgrid[0:480, 0:640]
    phase = rng.uniform(0, 6.3, 3)
    rgb = np.stack([128 + 100 * np.sin(xx / rng.uniform(40, 120) + phase[c]) * np.cos(yy / rng.uniform(40, 120))
                    for c in range(3)], axis=-1)
    rgb += rng.normal(0, 10, rgb.shape)
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = int(rng.integers(0, 560)), int(rng.integers(0, 400))
        draw.rectangle((x, y, x + int(rng.integers(20, 80)), y + int(rng.integers(20, 80))),
                       fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    path.write_bytes(buffer.getvalue())


def recipe_corpus(cache: Path, size: int, per_file: int, seed: int) -> Path:
    """The mixed recipe's inputs for size N: N PDF pages, N conversations (every other one with a
    photo), 2N text documents. Returns the root folder (pdfs/, photos/, sft/, text/)."""
    root = cache / f"recipe-{size}-{per_file}pf-seed{seed}"
    done = root / ".complete"
    if done.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    shutil.copytree(pdf_corpus(cache, size, per_file, seed), root / "pdfs", copy_function=link_or_copy)
    photos = root / "photos"
    photos.mkdir()
    for number in range(PHOTOS):
        make_photo(photos / f"photo-{number:03d}.jpg", number, seed)
    rng = np.random.default_rng([seed, 11, size])
    (root / "sft").mkdir()
    with (root / "sft" / "conversations.jsonl").open("w") as out:
        for n in range(size):
            question = f"Question {n}: " + " ".join(rng.choice(WORDS, int(rng.integers(8, 20)))) + "?"
            answer = f"Answer {n}. " + ". ".join(" ".join(rng.choice(WORDS, 10)).capitalize() for _ in range(4)) + "."
            user = {"role": "User", "content": question}
            if n % 2 == 0:
                user = {"role": "User", "content": "<image_placeholder>" + question,
                        "images": [f"../photos/photo-{n % PHOTOS:03d}.jpg"]}
            out.write(json.dumps({"conversation": [user, {"role": "Assistant", "content": answer}]}) + "\n")
    (root / "text").mkdir()
    with (root / "text" / "docs.jsonl").open("w") as out:
        for n in range(2 * size):
            out.write(json.dumps({"text": f"Document {n}. " + " ".join(rng.choice(WORDS, int(rng.integers(60, 200))))}) + "\n")
    done.write_text("")
    return root


def recipe_yaml(root: Path, output: Path) -> str:
    return f"""recipe: 1
output: {output}
prefix: mem
sources:
  reports: {{kind: pdf, input: {root / "pdfs"}, options: {{ocr: never}}}}
  chats: {{kind: sft, input: {root / "sft"}, label: false, options: {{image-root: {root}}}}}
  prose: {{kind: text, input: {root / "text"}}}
stages:
  dedup: [exact]
"""


# --------------------------------------------------------------------------- measuring


class TreeSampler(threading.Thread):
    """Samples the summed RSS of a process and all its descendants every `interval` seconds."""

    def __init__(self, pid: int, interval: float):
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = self.peak_root = self.peak_children = 0
        self.peak_processes = self.samples = 0
        self.timeline: list[tuple[float, float]] = []  # (seconds, MB): the peak of each ~2 s window
        self._stop_event = threading.Event()

    def sample(self) -> None:
        try:
            tree = [self.root] + self.root.children(recursive=True)
        except psutil.Error:  # the root has exited
            return
        root_rss = children_rss = 0
        for process in tree:
            try:
                rss = process.memory_info().rss
            except psutil.Error:  # a child that exited between the listing and the read
                continue
            if process.pid == self.root.pid:
                root_rss = rss
            else:
                children_rss += rss
        total = root_rss + children_rss
        self.samples += 1
        self.peak = max(self.peak, total)
        self.peak_root = max(self.peak_root, root_rss)
        self.peak_children = max(self.peak_children, children_rss)
        self.peak_processes = max(self.peak_processes, len(tree))
        now = round(time.perf_counter() - self.start_time, 1)
        if self.timeline and now - self.timeline[-1][0] < 2.0:
            self.timeline[-1] = (self.timeline[-1][0], max(self.timeline[-1][1], round(total / MB, 1)))
        else:
            self.timeline.append((now, round(total / MB, 1)))

    def run(self) -> None:
        self.start_time = time.perf_counter()
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def measure(command: list[str], output: Path, logs: Path, interval: float) -> dict:
    """Run `command`, sampling its tree; then read the manifest it wrote under `output`."""
    with (logs / "stdout.log").open("w") as stdout, (logs / "stderr.log").open("w") as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=REPO_ROOT, stdout=stdout, stderr=stderr)
        sampler = TreeSampler(proc.pid, interval)
        sampler.start()
        code = proc.wait()
        seconds = time.perf_counter() - start
        sampler.stop()
    if code != 0:
        tail = "\n".join((logs / "stderr.log").read_text(errors="replace").strip().splitlines()[-20:])
        raise RuntimeError(f"{' '.join(command[:2])} ... exited with {code}:\n{tail}")
    manifest_path = output / "manifest.json"
    if not manifest_path.exists():
        raise RuntimeError(f"the run succeeded but wrote no manifest at {manifest_path}")
    totals = json.loads(manifest_path.read_text())["totals"]
    shard_bytes = sum(p.stat().st_size for p in output.rglob("*.tar"))
    return {"seconds": seconds, "peak_rss_mb": sampler.peak / MB, "peak_root_mb": sampler.peak_root / MB,
            "peak_children_mb": sampler.peak_children / MB, "peak_processes": sampler.peak_processes,
            "rss_samples": sampler.samples, "inputs": totals.get("inputs"), "samples": totals.get("samples"),
            "rejected": totals.get("rejected"), "shard_bytes": shard_bytes, "timeline_mb": sampler.timeline}


def run_one(command: list[str], output_name: str, interval: float) -> dict:
    """One measured run into a fresh temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="vlcurate-bench-memory-") as tmp:
        tmp = Path(tmp)
        output = tmp / output_name
        final = [part.replace("{OUT}", str(output)).replace("{TMP}", str(tmp)) for part in command]
        return measure(final, output, tmp, interval)


def pdf_command(corpus: Path) -> list[str]:
    return vlcurate_command() + ["pdf", "--input", str(corpus), "--output", "{OUT}"]


def recipe_run(root: Path, interval: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="vlcurate-bench-memory-") as tmp:
        tmp = Path(tmp)
        recipe = tmp / "recipe.yaml"
        recipe.write_text(recipe_yaml(root, tmp / "out"))
        command = vlcurate_command() + ["run", str(recipe), "--progress-interval", "0", "--no-report"]
        return measure(command, tmp / "out", tmp, interval)


# --------------------------------------------------------------------------- driver


def sizes(text: str, named: dict[str, int] | None = None) -> list[int]:
    values = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        values.append(named[part] if named and part in named else int(part))
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"sizes must be positive: {text}")
    return values


def print_table(title: str, unit: str, rows: list[dict], count_key: str, rate_key: str) -> None:
    """One row per size; the rate is `rate_key` (pages or inputs) per second."""
    print(f"\n{title}")
    print(f"{unit:>8s} {'inputs':>7s} {'samples':>8s} {'seconds':>8s} {rate_key + '/s':>9s} "
          f"{'peak MB':>8s} {'(root':>7s} {'+ kids)':>7s} {'procs':>5s} {'x smallest':>10s}")
    base = rows[0]["peak_rss_mb"] if rows else 1.0
    for row in rows:
        print(f"{row[count_key]:8d} {row['inputs'] or 0:7d} {row['samples'] or 0:8d} {row['seconds']:8.1f} "
              f"{(row[rate_key] or 0) / row['seconds']:9.1f} {row['peak_rss_mb']:8.0f} {row['peak_root_mb']:7.0f} "
              f"{row['peak_children_mb']:7.0f} {row['peak_processes']:5d} {row['peak_rss_mb'] / base:10.2f}")


def growth(rows: list[dict], count_key: str) -> float | None:
    """MB of peak RSS per page (or unit of size), between the smallest and the largest run."""
    if len(rows) < 2:
        return None
    small, large = rows[0], rows[-1]
    return (large["peak_rss_mb"] - small["peak_rss_mb"]) / (large[count_key] - small[count_key])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", default="1000,4000,16000", help="PDF corpus sizes in pages, comma-separated ('' skips)")
    ap.add_argument("--pages-per-file", type=int, default=40)
    ap.add_argument("--recipe-sizes", default="small,large",
                    help=f"mixed recipe sizes: small ({RECIPE_SIZES['small']}), large ({RECIPE_SIZES['large']}) "
                         "or numbers, comma-separated ('' skips)")
    ap.add_argument("--interval", type=float, default=0.2, help="seconds between RSS samples")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the generated corpora are kept")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the figures to this JSON file")
    args = ap.parse_args()
    page_sizes = sorted(sizes(args.pages))
    recipe_sizes = sorted(sizes(args.recipe_sizes, RECIPE_SIZES))

    print(f"cores: {os.cpu_count()}  memory: {psutil.virtual_memory().total / 1e9:.1f} GB  "
          f"command: {' '.join(vlcurate_command())}  cache: {args.cache}  sampling every {args.interval}s", flush=True)
    pdf_rows, recipe_rows, errors = [], [], {}
    for pages in page_sizes:
        name = f"pdf {pages} pages"
        try:
            corpus = pdf_corpus(args.cache, pages, args.pages_per_file, args.seed)
            print(f"{name}: running vlcurate pdf on {corpus}", flush=True)
            row = {"pages": pages, **run_one(pdf_command(corpus), "out", args.interval)}
            print(f"  {row['seconds']:.1f}s, peak {row['peak_rss_mb']:.0f} MB", flush=True)
            pdf_rows.append(row)
        except Exception as exc:  # report it and carry on with the other sizes
            errors[name] = str(exc)
            print(f"  FAILED: {exc}", flush=True)
    for size in recipe_sizes:
        name = f"recipe size {size}"
        try:
            root = recipe_corpus(args.cache, size, args.pages_per_file, args.seed)
            print(f"{name}: running vlcurate run on {root}", flush=True)
            row = {"size": size, **recipe_run(root, args.interval)}
            print(f"  {row['seconds']:.1f}s, peak {row['peak_rss_mb']:.0f} MB", flush=True)
            recipe_rows.append(row)
        except Exception as exc:
            errors[name] = str(exc)
            print(f"  FAILED: {exc}", flush=True)

    figures = {"cores": os.cpu_count(), "memory_gb": psutil.virtual_memory().total / 1e9,
               "interval_s": args.interval, "pages_per_file": args.pages_per_file, "seed": args.seed,
               "pdf": pdf_rows, "recipe": recipe_rows, "errors": errors}
    if pdf_rows:
        print_table("(a) vlcurate pdf", "pages", pdf_rows, "pages", "pages")
        for row in pdf_rows:
            row["pages_per_s"] = row["pages"] / row["seconds"]
            row["ratio_to_smallest"] = row["peak_rss_mb"] / pdf_rows[0]["peak_rss_mb"]
        per_page = growth(pdf_rows, "pages")
        figures["pdf_growth_mb_per_page"] = per_page
        if per_page is not None:
            print(f"growth: {per_page * 1000:+.1f} MB per 1000 pages ({per_page:+.4f} MB a page), "
                  f"{pdf_rows[0]['pages']} -> {pdf_rows[-1]['pages']} pages")
    if recipe_rows:
        print_table("(b) vlcurate run (pdf + sft with photos + text; exact dedup)", "size", recipe_rows, "size", "inputs")
        for row in recipe_rows:
            row["inputs_per_s"] = (row["inputs"] or 0) / row["seconds"]
            row["samples_per_s"] = (row["samples"] or 0) / row["seconds"]
            row["ratio_to_smallest"] = row["peak_rss_mb"] / recipe_rows[0]["peak_rss_mb"]
        per_unit = growth(recipe_rows, "size")
        figures["recipe_growth_mb_per_size_unit"] = per_unit
        if per_unit is not None:
            print(f"growth: {per_unit * 1000:+.1f} MB per 1000 of size (1000 pages + 1000 conversations "
                  f"+ 2000 documents)")
    if len(pdf_rows) >= 2:
        small, large = pdf_rows[0], pdf_rows[-1]
        ratio = large["peak_rss_mb"] / small["peak_rss_mb"]
        met = ratio <= TARGET_RATIO and large["peak_rss_mb"] < TARGET_MB
        figures["target"] = {"ratio": ratio, "max_ratio": TARGET_RATIO, "peak_mb": large["peak_rss_mb"],
                             "max_mb": TARGET_MB, "met": met, "sizes": [small["pages"], large["pages"]]}
        print(f"\ntarget: peak at {large['pages']} pages <= {TARGET_RATIO}x the peak at {small['pages']} pages "
              f"and < {TARGET_MB / 1000:.0f} GB: {ratio:.2f}x, {large['peak_rss_mb']:.0f} MB -> "
              f"{'MET' if met else 'NOT MET'}")
    if errors:
        print("\nfailed runs: " + ", ".join(errors))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    run_main(main)
