"""Throughput benchmark of CLIP scoring: pairs/s of the Beam stage against a plain open_clip loop.

    .venv/bin/python bench/clip.py [--pairs 512] [--model ViT-B-32] [--batch 16] [--repeat 1] [--json out.json]

The model is a real open_clip architecture with random weights (nothing may be downloaded here;
the cost of a forward pass does not depend on the weights), saved as a checkpoint. On the same
generated image-text pairs (images 256-640 px, PNG) it measures:

  (a) `vlcurate filter --clip-model ... --clip-checkpoint ...` end to end via its CLI over a
      dataset of those pairs: reading the shards, the Beam stage (RunInference with
      OpenClipHandler: BatchElements up to --batch, decoding, the model's preprocessing,
      tokenising, encoding; torch on both cores), writing the new dataset; (a0) the same on one pair;
  (b) the raw limit: a plain batched loop over the same inputs already preprocessed and
      tokenised, encoding only, torch on both cores;
and prints pairs/s, a/b (target 0.85) and the steady ratio with (a0) taken out. Numbers depend
on the machine.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from timing import add_run_flags, run_main, work_folder  # bench/timing.py

import apache_beam as beam  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from vlcurate.transforms.filters.clip import load_model  # noqa: E402
from vlcurate.transforms.filters.clip_config import ClipConfig, resolve  # noqa: E402
from vlcurate.transforms.data.sample import Sample, encode_image, make_key  # noqa: E402
from vlcurate.transforms.io.shards import ShardConfig, WriteDataset  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent

WORDS = "a photo of the red blue small large dog cat street sign chart page table people car tree".split()


def make_pair(i: int, seed: int) -> Sample:
    rng = np.random.default_rng([seed, i])
    height, width = (int(v) for v in rng.integers(256, 640, 2))
    yy, xx = np.mgrid[0:height, 0:width]
    pixels = np.stack([xx % 256, yy % 256, (xx + yy + i) % 256], axis=-1) + rng.normal(0, 8, (height, width, 3))
    image = encode_image(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), "png")
    text = " ".join(rng.choice(WORDS, int(rng.integers(5, 20))))
    return Sample(key=make_key("ocr", str(seed), str(i)), source="ocr", category="caption", uri=f"mem://{i}",
                  locator="", images=(image,), text=text)


def make_dataset(output: Path, count: int, seed: int) -> None:
    """A dataset of ``count`` generated pairs, written by the project's own sink."""
    shards = ShardConfig(output=str(output), prefix="pairs")
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as pipeline:
        samples = pipeline | beam.Create(range(count)) | beam.Map(make_pair, seed)
        _ = {"samples": samples, "rejects": pipeline | "NoRejects" >> beam.Create([]), "inputs": samples} | WriteDataset(
            shards, {"pipeline": "bench"})


def make_pairs(count: int, seed: int) -> list[Sample]:
    return [make_pair(i, seed) for i in range(count)]


def random_checkpoint(model: str, path: Path) -> str:
    import open_clip
    import torch

    torch.manual_seed(0)
    torch.save(open_clip.create_model(model, pretrained=None).state_dict(), path)
    return str(path)


def run_filter(dataset: Path, out: Path, model: str, checkpoint: str, batch: int) -> float:
    command = [sys.executable, "-m", "vlcurate.pipelines.cli", "filter", "--input", str(dataset), "--output",
               str(out), "--overwrite", "--clip-model", model, "--clip-checkpoint", checkpoint,
               "--clip-max-batch", str(batch)]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("\n".join(proc.stderr.strip().splitlines()[-15:]))
    return time.perf_counter() - start


def run_plain(config: ClipConfig, samples, batch: int) -> None:
    """Encode only: the inputs are decoded, preprocessed and tokenised before the clock starts."""
    import torch

    loaded = load_model(config)
    images = torch.stack([loaded.preprocess(Image.open(io.BytesIO(s.images[0].data)).convert("RGB")) for s in samples])
    texts = loaded.tokenizer([s.text for s in samples])
    start = time.perf_counter()
    with torch.no_grad():
        for first in range(0, len(samples), batch):
            a = torch.nn.functional.normalize(loaded.model.encode_image(images[first:first + batch]), dim=-1)
            b = torch.nn.functional.normalize(loaded.model.encode_text(texts[first:first + batch]), dim=-1)
            (a * b).sum(dim=-1)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description="CLIP scoring throughput benchmark.")
    ap.add_argument("--pairs", type=int, default=512)
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--batch", type=int, default=16)
    add_run_flags(ap)
    args = ap.parse_args()

    import torch

    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    work, tmp = work_folder(args, "vlcurate-bench-clip-")
    work.mkdir(parents=True, exist_ok=True)
    checkpoint = random_checkpoint(args.model, work / "random.pt")
    config = resolve(ClipConfig(model=args.model, checkpoint=checkpoint, min_batch=min(8, args.batch),
                                max_batch=args.batch, threads=threads))
    samples = make_pairs(args.pairs, args.seed)
    make_dataset(work / "pairs", args.pairs, args.seed)
    make_dataset(work / "one-pair", 1, args.seed)
    print(f"cores: {os.cpu_count()}  model: {args.model} (random weights)  pairs: {len(samples)}  batch: {args.batch}")

    runs = {"a0": [], "a": [], "b": []}
    for _ in range(args.repeat):
        runs["a0"].append(run_filter(work / "one-pair", work / "out-one", args.model, checkpoint, args.batch))
        runs["a"].append(run_filter(work / "pairs", work / "out", args.model, checkpoint, args.batch))
        runs["b"].append(run_plain(config, samples, args.batch))
    a0, a, b = (min(runs[name]) for name in ("a0", "a", "b"))
    print(f"\n{'measurement':44s} {'seconds':>8s} {'pairs/s':>8s}")
    print(f"{'(a0) vlcurate filter, 1 pair':44s} {a0:8.2f}   (fixed cost)")
    print(f"{'(a) vlcurate filter (read, score, write)':44s} {a:8.2f} {len(samples) / a:8.1f}")
    print(f"{'(b) plain batched encode only':44s} {b:8.2f} {len(samples) / b:8.1f}")
    ratios = {"a/b": b / a, "a/b steady": b / (a - a0)}
    print("\nthroughput ratios: " + "   ".join(f"{k} = {v:.2f}" for k, v in ratios.items())
          + f"   (target a/b >= 0.85: {'MET' if ratios['a/b'] >= 0.85 else 'NOT MET'})")
    if args.json:
        args.json.write_text(json.dumps({"cores": os.cpu_count(), "pairs": len(samples), "model": args.model,
                                         "seconds": {"a0": a0, "a": a, "b": b}, "ratios": ratios}, indent=2) + "\n")
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    run_main(main)
