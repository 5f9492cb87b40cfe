"""Throughput benchmark of the training loader: samples/s of vlcurate's loader against a plain
webdataset loop, on the same shards, and the data-wait share of a real training run.

    .venv/bin/python bench/loader.py [--pages 240] [--texts 160] [--batches 0] [--train-steps 30]
                                     [--repeat 1] [--workdir DIR] [--json out.json]

Generates a seeded corpus with the project's own sink: document pages (PNG, text drawn on them,
600-1400 px) and screenshot-like images (JPEG), each with its text; and a text-only dataset.
On the image dataset it measures, each with a DataLoader of 2 worker processes:

  (a) vlcurate's training loader (vlcurate.training.data): shard reading, mixing, the chat/plain
      template and byte tokens, each image checked from its header, decoded, resized and padded
      to 384 and to 1024, batches of 4, all multimodal;
  (b) the raw limit: ``webdataset.WebDataset(shards).decode("pil")``, which only decodes the
      images (and the text members), one sample at a time;
and prints samples/s and a/b. Then (c) runs ``vlcurate train`` (stage 2, default model: 384/1024
branches, 576 image tokens) on both datasets for --train-steps steps and reports its
samples/s and the share of its time spent waiting for data. Numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from timing import add_run_flags, finish, run_main, work_folder  # bench/timing.py: this script's folder is on sys.path

import apache_beam as beam  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from vlcurate.transforms.data.sample import Sample, encode_image, make_key  # noqa: E402
from vlcurate.transforms.io.shards import ShardConfig, WriteDataset  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2
BATCH = 4
WORDS = ("the results of each quarter are shown in the table below with totals per region and year "
         "revenue grew while costs fell open the settings page to change your account").split()


# --------------------------------------------------------------------------- corpus


def make_page(i: int, seed: int) -> Sample:
    rng = np.random.default_rng([seed, i])
    screenshot = i % 3 == 2
    width, height = (int(v) for v in rng.integers(600, 1400, 2))
    image = Image.new("RGB", (width, height), (250, 250, 245) if not screenshot else (235, 240, 250))
    draw = ImageDraw.Draw(image)
    lines = [" ".join(rng.choice(WORDS, int(rng.integers(5, 12)))) for _ in range(int(rng.integers(8, 30)))]
    for row, line in enumerate(lines):
        draw.text((30, 30 + 22 * row), line, fill=(20, 20, 20))
    if screenshot:
        draw.rectangle((0, 0, width, 60), fill=(40, 90, 160))
    category = "web_code" if screenshot else "document_ocr"
    return Sample(key=make_key("web" if screenshot else "pdf", str(seed), str(i)), source="web" if screenshot else "pdf",
                  category=category, uri=f"mem://{i}", locator="",
                  images=(encode_image(image, "jpeg" if screenshot else "png"),), text="\n".join(lines))


def make_text(i: int, seed: int) -> Sample:
    rng = np.random.default_rng([seed, 10**6 + i])
    text = " ".join(rng.choice(WORDS, int(rng.integers(50, 200))))
    return Sample(key=make_key("text", str(seed), str(i)), source="text", category="text_only", uri=f"mem://t{i}",
                  locator="", text=text)


def write(output: Path, make, count: int, seed: int, prefix: str) -> None:
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as pipeline:
        samples = pipeline | beam.Create(range(count)) | beam.Map(make, seed)
        _ = {"samples": samples, "rejects": pipeline | "NoRejects" >> beam.Create([]), "inputs": samples} | WriteDataset(
            ShardConfig(output=str(output), prefix=prefix, max_samples_per_shard=40), {"pipeline": "bench"})


# --------------------------------------------------------------------------- measurements


def run_ours(dataset: Path, samples: int) -> tuple[float, float]:
    """(seconds for `samples` samples, seconds for the first batch) through the training loader."""
    from vlcurate.training.data import DataConfig, make_loader, make_plan

    config = DataConfig(stage=2, batch_size=BATCH, workers=WORKERS, lang_share=0.0)
    plan = make_plan(str(dataset), config)
    start = time.perf_counter()
    first = None
    for i, batch in enumerate(make_loader(plan, config)):
        assert batch["high"].shape[-1] == 1024 and batch["low"].shape[-1] == 384
        first = first or time.perf_counter() - start
        if (i + 1) * BATCH >= samples:
            break
    return time.perf_counter() - start, first


def run_plain(dataset: Path, samples: int) -> tuple[float, float]:
    import webdataset as wds
    from torch.utils.data import DataLoader

    urls = sorted(str(p) for p in (dataset / "shards").glob("*.tar"))
    pipeline = wds.WebDataset(urls, shardshuffle=False, empty_check=False).decode("pil")
    loader = DataLoader(pipeline, batch_size=None, num_workers=WORKERS, collate_fn=lambda sample: sample)
    start, first, seen = time.perf_counter(), None, 0
    while seen < samples:  # repeat the shards if the corpus is smaller than asked
        for sample in loader:
            image = sample.get("png") or sample.get("jpg")
            assert image.size[0] > 0
            first = first or time.perf_counter() - start
            seen += 1
            if seen >= samples:
                break
    return time.perf_counter() - start, first


def run_training(datasets, steps: int, workdir: Path) -> dict:
    log = workdir / "train-log.jsonl"
    log.unlink(missing_ok=True)
    command = [sys.executable, "-m", "vlcurate.pipelines.cli", "train", "--shards", *map(str, datasets), "--stage",
               "2", "--steps", str(steps), "--output", str(workdir / "ckpt"), "--log-every", str(max(1, steps // 3)),
               "--log-json", str(log), "--workers", str(WORKERS), "--warmup-steps", "0", "--overwrite"]  # a fresh run
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    steady = lines[1:] or lines  # the first window holds worker and model start-up
    return {"seconds": time.perf_counter() - start, "steps_per_s": float(np.mean([l["samples_per_s"] for l in steady])) / BATCH,
            "samples_per_s": float(np.mean([l["samples_per_s"] for l in steady])),
            "data_wait": float(np.mean([l["data_wait"] for l in steady])),
            "data_wait_first_window": lines[0]["data_wait"], "lang_share": lines[-1]["lang_share_total"],
            "loss_first": lines[0]["loss"], "loss_last": lines[-1]["loss"]}


def main() -> int:
    ap = argparse.ArgumentParser(description="Training loader throughput benchmark.")
    ap.add_argument("--pages", type=int, default=240, help="image samples in the corpus")
    ap.add_argument("--texts", type=int, default=160, help="text-only samples (for the training run)")
    ap.add_argument("--samples", type=int, default=0, help="samples per loader measurement (default: --pages)")
    ap.add_argument("--train-steps", type=int, default=30, help="steps of the training run (0: skip it)")
    add_run_flags(ap)
    args = ap.parse_args()
    work, tmp = work_folder(args, "vlcurate-bench-loader-")
    work.mkdir(parents=True, exist_ok=True)
    pages, texts = work / "pages", work / "texts"
    if not (pages / "manifest.json").exists():
        write(pages, make_page, args.pages, args.seed, "pages")
    if not (texts / "manifest.json").exists():
        write(texts, make_text, args.texts, args.seed, "texts")
    samples = args.samples or args.pages
    shards = len(list((pages / "shards").glob("*.tar")))
    print(f"cores: {os.cpu_count()}  image samples: {args.pages} in {shards} shards  measured: {samples} samples  "
          f"workers: {WORKERS}  batch: {BATCH}")

    runs = {"a": [], "b": []}
    for _ in range(args.repeat):
        runs["b"].append(run_plain(pages, samples))
        runs["a"].append(run_ours(pages, samples))
    (a, a_first), (b, b_first) = min(runs["a"]), min(runs["b"])
    print(f"\n{'measurement':58s} {'seconds':>8s} {'samples/s':>10s} {'first':>7s}")
    print(f"{'(a) vlcurate loader: decode, 384+1024 squares, format':58s} {a:8.2f} {samples / a:10.1f} {a_first:7.2f}")
    print(f"{'(b) plain webdataset loop: decode only':58s} {b:8.2f} {samples / b:10.1f} {b_first:7.2f}")
    ratio = b / a
    print(f"\nthroughput ratio a/b = {ratio:.2f}")
    figures = {"samples": samples, "seconds": {"a": a, "b": b}, "first_batch_s": {"a": a_first, "b": b_first},
               "ratio": ratio}
    if args.train_steps:
        train = run_training([pages, texts], args.train_steps, work)
        print(f"\n(c) vlcurate train, stage 2, default model, {args.train_steps} steps of {BATCH}: "
              f"{train['steps_per_s']:.2f} steps/s ({train['samples_per_s']:.1f} samples/s), "
              f"waiting for data {100 * train['data_wait']:.0f}% of the time "
              f"(first window, with start-up: {100 * train['data_wait_first_window']:.0f}%), "
              f"language share {train['lang_share']:.2f}, loss {train['loss_first']:.2f} -> {train['loss_last']:.2f}")
        figures["train"] = train
    return finish(args, tmp, figures)


if __name__ == "__main__":
    run_main(main)
