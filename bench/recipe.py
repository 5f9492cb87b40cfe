"""Throughput of `vlcurate run`: the demo recipe's sources over a larger generated corpus, end to end
and per stage, against each stage's own raw loop.

    .venv/bin/python bench/recipe.py [--pages 60] [--images 16] [--notebooks 12] [--web 16]
                                     [--records 400] [--docs 2000] [--repeat 1] [--json out.json]

Generates, with fixed seeds: PDFs of prose pages (bench/pdf_pages.py's corpus), scene-text images
(bench/ocr.py's), analysis notebooks (bench/notebooks.py's), local HTML pages, SFT conversations
(the project's labelled prompts, with the scene images), and text documents; trains the labeler on
examples/sft/labelled.jsonl. Then measures:

  (a)  `vlcurate run` on a recipe with all six sources (pdf, images with ppocr, notebooks, web with
       Chromium, sft with language id and labels, text), exact and near dedup, through the CLI in a
       subprocess (FnApiRunner in-process, one worker; the isolated stages use both cores);
  (a0) the same recipe on one input per source: start-up, Beam's stages, the sink and the report;
  (b)  each stage's raw loop, one after another, on the same inputs: PyMuPDF rendering pages into
       tars in Pool(2) (bench/pdf_pages.py's loop), the OCR engine in Pool(2) (bench/ocr.py's),
       the notebook stage's core in a loop (bench/notebooks.py's), one warm Chromium screenshotting
       every page, the SFT and text cores in a loop, and language id and the labeler over their
       samples (the run's label stage also identifies the other sources' few samples);
and prints samples/s, (b)/(a) (the whole run against the sum of the raw loops: 1.0 would be no
overhead at all), the steady ratio with (a0) taken out, and per stage the elements/s the run's
manifest recorded against the raw loop's. CLIP is left out here (bench/clip.py measures it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from timing import add_run_flags, best_time, finish, run_main, work_folder  # bench/timing.py: this script's folder is on sys.path

import notebooks as notebook_bench  # bench/notebooks.py
import ocr as ocr_bench  # bench/ocr.py
import pdf_pages as pdf_bench  # bench/pdf_pages.py

REPO_ROOT = Path(__file__).resolve().parent.parent
LABELLED = REPO_ROOT / "examples" / "sft" / "labelled.jsonl"


# --------------------------------------------------------------------------- corpus


def make_web(folder: Path, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    words = "data model image page text layout table chart code screen label review sample shard".split()
    for n in range(count):
        items = "".join(f"<li>{' '.join(rng.choice(words, 6))}</li>" for _ in range(int(rng.integers(4, 10))))
        (folder / f"page_{n:04d}.html").write_text(
            f"<!doctype html><html><head><title>Page {n}</title><style>body{{font:16px sans-serif;margin:40px}}"
            f"</style></head><body><h1>Report {n}</h1><p>{' '.join(rng.choice(words, 40))}</p><ul>{items}</ul>"
            f"<table border=1>{''.join(f'<tr><td>{i}</td><td>{rng.integers(100)}</td></tr>' for i in range(5))}"
            "</table></body></html>")


def make_sft(folder: Path, images: list[Path], count: int) -> None:
    prompts = [json.loads(line)["text"] for line in LABELLED.read_text().splitlines()]
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "conversations.jsonl").open("w") as out:
        for n in range(count):
            user = prompts[n % len(prompts)] + f" (case {n})"
            message = {"role": "User", "content": user}
            if n % 2 == 0:  # every other conversation shows one of the scene images
                message = {"role": "User", "content": "<image_placeholder>" + user,
                           "images": [os.path.relpath(images[n % len(images)], folder)]}
            out.write(json.dumps({"conversation": [message, {"role": "Assistant", "content": f"Answer {n}."}]}) + "\n")


def make_text(folder: Path, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    words = "the a model reads page text and learns layout from data every sample keeps its source".split()
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "docs.jsonl").open("w") as out:
        for n in range(count):
            out.write(json.dumps({"text": f"Document {n}. " + " ".join(rng.choice(words, 80))}) + "\n")


def make_corpus(root: Path, args) -> dict:
    pdfs = pdf_bench.make_corpus(root / "pdfs", args.pages, max(1, args.pages // 10), args.seed)
    images = ocr_bench.make_corpus(root / "images", args.images, args.seed)
    plot_cells = notebook_bench.make_corpus(root / "notebooks", args.notebooks, args.seed)
    make_web(root / "web", args.web, args.seed)
    make_sft(root / "sft", images, args.records)
    make_text(root / "text", args.docs, args.seed)
    return {"pdfs": pdfs, "images": images, "plot_cells": plot_cells}


def recipe_yaml(root: Path, output: Path, labeler: Path) -> str:
    return f"""recipe: 1
output: {output}
prefix: bench
sources:
  reports: {{kind: pdf, input: {root / "pdfs"}, options: {{ocr: never}}}}
  signs: {{kind: images, input: {root / "images"}, options: {{keep-empty: true}}}}
  plots: {{kind: notebooks, input: {root / "notebooks"}}}
  pages: {{kind: web, input: {root / "web"}, options: {{offline: true}}}}
  chats: {{kind: sft, input: {root / "sft"}, options: {{image-root: {root}}}}}
  prose: {{kind: text, input: {root / "text"}}}
stages:
  dedup: [exact, near]
  label: {{labeler: {labeler}}}
"""


def tiny_corpus(root: Path, tiny: Path) -> None:
    """One input of each source (the first file, record or document)."""
    for name in ("pdfs", "images", "notebooks", "web"):
        (tiny / name).mkdir(parents=True, exist_ok=True)
        first = sorted((root / name).iterdir())[0]
        shutil.copy(first, tiny / name / first.name)
    for name, file in (("sft", "conversations.jsonl"), ("text", "docs.jsonl")):
        (tiny / name).mkdir(parents=True, exist_ok=True)
        (tiny / name / file).write_text((root / name / file).read_text().splitlines()[0] + "\n")
    shutil.copytree(root / "images", tiny / "images", dirs_exist_ok=True)  # the conversation's image


# --------------------------------------------------------------------------- (a) the recipe


def run_recipe(recipe: Path) -> dict:
    command = [str(REPO_ROOT / ".venv" / "bin" / "vlcurate"), "run", str(recipe), "--overwrite",
               "--progress-interval", "0", "--no-report"]
    proc = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("vlcurate run failed:\n" + "\n".join(proc.stderr.strip().splitlines()[-15:]))
    output = Path(next(line.split(": ", 1)[1] for line in recipe.read_text().splitlines() if line.startswith("output")))
    manifest = json.loads((output / "manifest.json").read_text())
    if not manifest["totals"]["balanced"]:
        raise RuntimeError(f"unbalanced totals: {manifest['totals']}")
    return manifest


# --------------------------------------------------------------------------- (b) the raw loops


def web_loop(folder: Path) -> int:
    from playwright.sync_api import sync_playwright

    pages = sorted(folder.glob("*.html"))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1024, "height": 768})
        for path in pages:
            page.goto(path.as_uri(), wait_until="load")
            page.content()
            page.screenshot(type="png")
        browser.close()
    return len(pages)


def sft_records(folder: Path, root: Path) -> tuple[list, object]:
    from vlcurate.transforms.sources.sft import SftConfig, read_records

    config = SftConfig(image_root=str(root))
    return list(read_records(str(folder / "conversations.jsonl"), config)), config


def text_records(folder: Path) -> list:
    from vlcurate.transforms.sources.text import TextConfig, read_text_records

    return list(read_text_records(str(folder / "docs.jsonl"), TextConfig()))


def label_loop(samples: list, labeler: Path, label_text) -> int:
    """Language id on every sample, and the labeler on the conversations, as the label stage does
    (the models load inside the clock, as they do in the stage; the modules are imported before)."""
    from vlcurate.taxonomy.labeler import Labeler
    from vlcurate.taxonomy.langid import LanguageId
    from vlcurate.taxonomy.tree import load_taxonomy

    lid, model = LanguageId(), Labeler(str(labeler), load_taxonomy())
    for sample in samples:
        text = label_text(sample)
        lid.predict(text)
        if sample.conversation:
            model.predict(text)
    return len(samples)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=60)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--notebooks", type=int, default=12)
    parser.add_argument("--web", type=int, default=16)
    parser.add_argument("--records", type=int, default=400)
    parser.add_argument("--docs", type=int, default=2000)
    add_run_flags(parser)
    args = parser.parse_args()
    work, tmp = work_folder(args, "vlcurate-bench-recipe-")
    root = work / "corpus"
    corpus = make_corpus(root, args)
    labeler = work / "labeler"
    subprocess.run([str(REPO_ROOT / ".venv" / "bin" / "vlcurate"), "taxonomy", "train", "--examples", str(LABELLED),
                    "--output", str(labeler)], check=True, stdout=subprocess.DEVNULL)
    recipe = work / "recipe.yaml"
    recipe.write_text(recipe_yaml(root, work / "out", labeler))
    tiny_root = work / "tiny"
    tiny_corpus(root, tiny_root)
    tiny_recipe = work / "tiny.yaml"
    tiny_recipe.write_text(recipe_yaml(tiny_root, work / "tiny-out", labeler))

    manifests = []
    a = best_time(lambda _: manifests.append(run_recipe(recipe)), work / "scratch-a", args.repeat)
    a0 = best_time(lambda _: run_recipe(tiny_recipe), work / "scratch-a0", args.repeat)
    manifest = manifests[-1]

    raw = {}
    # The in-process loops first: after the pools and Chromium below, this process's native
    # libraries measured 3x slower on the label loop. Records are read before the clock starts:
    # the run times reading files as stages of their own.
    from vlcurate.transforms.label.beam import label_text  # imports Beam, which is no part of any loop
    from vlcurate.transforms.sources.sft import sft_sample
    from vlcurate.transforms.sources.text import TextConfig, text_sample

    made = {}
    records, sft_config = sft_records(root / "sft", root)
    documents = text_records(root / "text")
    raw["sft"] = (args.records, timed(lambda: made.update(sft=[sft_sample(r, sft_config) for r in records])))
    raw["text"] = (args.docs, timed(lambda: made.update(text=[text_sample(r, TextConfig()) for r in documents])))
    raw["label"] = (args.records + args.docs,
                    timed(lambda: label_loop(made["sft"] + made["text"], labeler, label_text)))
    out = work / "raw-pdf"
    out.mkdir(exist_ok=True)
    raw["pdf_page"] = (args.pages, timed(lambda: pdf_bench.run_pool(corpus["pdfs"], out)))
    raw["ocr_image"] = (args.images, timed(lambda: ocr_bench.run_pool(corpus["images"], "ppocr", raw=False)))
    raw["notebook_plot"] = (corpus["plot_cells"],
                            timed(lambda: notebook_bench.run_loop(root / "notebooks", corpus["plot_cells"])))
    raw["web_page"] = (args.web, timed(lambda: web_loop(root / "web")))
    b = sum(seconds for _, seconds in raw.values())

    totals = manifest["totals"]
    print(f"corpus: {args.pages} PDF pages, {args.images} scene images, {args.notebooks} notebooks "
          f"({corpus['plot_cells']} plot cells), {args.web} web pages, {args.records} SFT records, "
          f"{args.docs} text documents -> {totals['inputs']} inputs, {totals['samples']} samples")
    print(f"(a)  vlcurate run, end to end      {a:7.1f} s   {totals['samples'] / a:7.1f} samples/s")
    print(f"(a0) the same on one input each    {a0:7.1f} s   (start-up, stages, sink)")
    print(f"(b)  the raw loops, one by one     {b:7.1f} s")
    print(f"\nb/a = {b / a:.2f}    steady (a - a0): {b / (a - a0):.2f}")
    print(f"\n{'stage':<16}{'elements':>9}{'run el/s':>10}{'raw el/s':>10}{'ratio':>8}")
    throughput = manifest.get("throughput", {})
    for stage, (elements, seconds) in raw.items():
        recorded = throughput.get(stage, {})
        run_rate = recorded.get("per_second", 0.0)
        raw_rate = elements / seconds
        print(f"{stage:<16}{recorded.get('elements', 0):>9}{run_rate:>10.1f}{raw_rate:>10.1f}{run_rate / raw_rate:>8.2f}")
    print("\n(run el/s: the stage's elements over the time from its first element's start to its last one's end,"
          "\n while the other stages run beside it; the raw loops run alone)")
    return finish(args, tmp, {"a_s": a, "a0_s": a0, "b_s": b, "raw": raw, "throughput": throughput, "totals": totals})


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    run_main(main)
