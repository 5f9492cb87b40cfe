"""Throughput benchmark of the OCR stage: images/s of `vlcurate ocr` against a plain loop.

    .venv/bin/python bench/ocr.py [--ppocr-images 150] [--tesseract-images 750] [--engines ppocr,tesseract]
                                  [--repeat 1] [--json out.json]

Generates a seeded corpus of scene-text-like images (two to four lines of words on coloured,
noisy backgrounds, some turned; Tesseract gets five times as many, being that much faster) and
measures, for each engine:

  (a) the vlcurate Beam pipeline end to end via its CLI in a subprocess, as a user runs it locally
      (FnApiRunner in-process, OCR in one isolated child per core, shards, index and manifest),
  (b) the raw limit: a multiprocessing.Pool(2) loop calling the same engine (vlcurate's engine
      class, one native thread per process) on every image: read, decode, OCR, nothing written,
  (c) the library's own call alone, in the same Pool(2): rapidocr's RapidOCR()(image) for ppocr
      (no direction check, see PpOcrEngine.read), tesserocr's GetUTF8Text for tesseract,
and prints a/b (target >= 0.85). (a0) and (b0) are the same runs on one image: start-up, model
loading, and for (a) Beam's stages and the manifest; "a/b steady" takes them out of both.
Numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from timing import add_run_flags, best_time, run_main, work_folder  # bench/timing.py: this script's folder is on sys.path

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2
FONTS = [f"/usr/share/fonts/truetype/noto/{name}.ttf" for name in ("NotoSans-Regular", "NotoSans-Bold", "NotoSerif-Regular")]
WORDS = ("open daily exit platform street road coffee books sale notice closed keep door left right "
         "north station market floor office parking tickets only entrance") .split()


# --------------------------------------------------------------------------- corpus


def make_image(rng: np.random.Generator) -> Image.Image:
    lines = [" ".join(rng.choice(WORDS, rng.integers(2, 5))).title() for _ in range(rng.integers(2, 5))]
    face = ImageFont.truetype(str(rng.choice(FONTS)), int(rng.integers(28, 56)))
    width = max(int(face.getlength(line)) for line in lines) + 80
    step = int(face.size * 1.5)
    background = tuple(int(v) for v in rng.integers(0, 256, 3))
    ink = (255, 255, 255) if sum(background) < 380 else (15, 15, 15)
    image = Image.new("RGB", (width, step * len(lines) + 80), background)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((40, 40 + i * step), line, font=face, fill=ink)
    angle = float(rng.choice([0, 0, 0, 4, -6, 180]))
    if angle:
        image = image.rotate(angle, expand=True, fillcolor=background, resample=Image.BICUBIC)
    pixels = np.asarray(image).astype(np.float32) + rng.normal(0, 6, (image.height, image.width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def make_corpus(folder: Path, count: int, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"img_{i:05d}.jpg"
        make_image(rng).save(path, format="JPEG", quality=90)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- (a) Beam pipeline


def run_pipeline(corpus: Path, out: Path, engine: str) -> None:
    command = [sys.executable, "-m", "vlcurate.pipelines.cli", "ocr", "--input", str(corpus),
               "--output", str(out), "--ocr-engine", engine, "--keep-empty"]
    proc = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"pipeline CLI exited with {proc.returncode}:\n{tail}")
    manifest = json.loads((out / "manifest.json").read_text())
    if manifest["totals"]["samples"] != len(list(corpus.iterdir())):
        raise RuntimeError(f"the pipeline kept {manifest['totals']} of the corpus")


# --------------------------------------------------------------------------- (b), (c) plain loops

_STATE = {}


def _start(engine: str, raw: bool) -> None:
    from vlcurate.transforms.ocr.core import engine as load_engine
    from vlcurate.transforms.ocr.config import OcrConfig

    config = OcrConfig(engine=engine, threads=1)
    loaded = load_engine(config)  # also limits native threads, as in the pipeline's children
    if not raw:
        _STATE["read"] = loaded.read
    elif engine == "ppocr":
        _STATE["read"] = loaded._ocr  # rapidocr's own pipeline, same models and threads
    else:
        api = loaded._api

        def tesseract(image):
            api.SetImage(image)
            return api.GetUTF8Text()

        _STATE["read"] = tesseract


def _ocr_file(path: str) -> int:
    with open(path, "rb") as handle:
        image = Image.open(io.BytesIO(handle.read())).convert("RGB")
    _STATE["read"](image)
    return 1


def run_pool(paths: list[Path], engine: str, raw: bool) -> None:
    with Pool(WORKERS, initializer=_start, initargs=(engine, raw)) as pool:
        done = sum(pool.imap_unordered(_ocr_file, [str(p) for p in paths], chunksize=4))
    assert done == len(paths)


# --------------------------------------------------------------------------- driver


def main() -> int:
    ap = argparse.ArgumentParser(description="OCR stage throughput benchmark.")
    ap.add_argument("--ppocr-images", type=int, default=150)
    ap.add_argument("--tesseract-images", type=int, default=750)
    ap.add_argument("--engines", default="ppocr,tesseract")
    add_run_flags(ap)
    args = ap.parse_args()

    work, tmp = work_folder(args, "vlcurate-bench-ocr-")
    one = work / "one-image"
    shutil.rmtree(one, ignore_errors=True)
    one_paths = make_corpus(one, 1, args.seed)
    print(f"cores: {os.cpu_count()}  workers: {WORKERS}")

    figures = {}
    for engine in args.engines.split(","):
        corpus = work / f"corpus-{engine}"
        shutil.rmtree(corpus, ignore_errors=True)
        paths = make_corpus(corpus, getattr(args, f"{engine}_images"), args.seed)
        runs = {
            "(a0) beam, 1 image": lambda out: run_pipeline(one, out, engine),
            "(a) beam, default local": lambda out: run_pipeline(corpus, out, engine),
            "(b0) Pool(2), 1 image": lambda out: run_pool(one_paths, engine, raw=False),
            "(b) Pool(2), same engine": lambda out: run_pool(paths, engine, raw=False),
            "(c) Pool(2), library call": lambda out: run_pool(paths, engine, raw=True),
        }
        times = {name: best_time(fn, work / f"out-{engine}-{i}", args.repeat) for i, (name, fn) in enumerate(runs.items())}
        a0, a, b0, b, c = times.values()
        ratios = {"a/b": b / a, "a/b steady": (b - b0) / (a - a0), "c/b": b / c}
        print(f"\n{engine}: {len(paths)} images at {corpus}")
        print(f"{'measurement':28s} {'images':>7s} {'seconds':>9s} {'images/s':>9s}")
        for name, seconds in times.items():
            count = 1 if "1 image" in name else len(paths)
            rate = f"{count / seconds:9.2f}" if count > 1 else "  (fixed cost)"
            print(f"{name:28s} {count:7d} {seconds:9.2f} {rate}")
        print("throughput ratios: " + "   ".join(f"{k} = {v:.2f}" for k, v in ratios.items())
              + f"   (target a/b >= 0.85: {'MET' if ratios['a/b'] >= 0.85 else 'NOT MET'})")
        figures[engine] = {"images": len(paths), "seconds": times, "ratios": ratios}

    if args.json:
        args.json.write_text(json.dumps({"cores": os.cpu_count(), **figures}, indent=2) + "\n")
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    run_main(main)
