"""Throughput benchmark: an image URL list -> caption samples, vlcurate captions against img2dataset.

    .venv/bin/python bench/captions.py [--images 10000] [--repeat 1] [--workdir DIR] [--json out.json]
                                       [--img2dataset-venv out/bench/img2dataset-venv]

Generates a seeded set of JPEGs (sizes from 320x240 to 1024x768, gradients with shapes and a little
noise, like small photos), serves them from a local `python -m http.server` on 127.0.0.1, writes
one parquet list (url, caption) and measures images/s end to end, as a user runs each tool:

  (a) `vlcurate captions` in a subprocess, FnApiRunner with --direct_running_mode=multi_processing
      and 2 workers, 32 download threads per worker; the server is allowed with --allow-host,
  (b) img2dataset (its own virtualenv, created here on the first run: `pip install
      img2dataset==1.47.0`, never the project's), 2 processes, 32 threads each, webdataset output,

both at --image-size 256 with resize mode border and JPEG quality 95, no retries. It prints the
ratio a/b (target >= 0.8) and what vlcurate's address checks cost: the policy's check of one URL
(resolve a literal, judge it), timed alone, against the time per image of (a). img2dataset makes
no such check. Numbers depend on the machine, and the server shares its cores with the tools.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw
from timing import add_run_flags, best_times, finish, free_port, work_folder  # bench/timing.py: this script's folder is on sys.path

REPO_ROOT = Path(__file__).resolve().parent.parent
IMG2DATASET = "img2dataset==1.47.0"
WORKERS, THREADS, SIZE = 2, 32, 256
A, B = "(a) vlcurate captions", "(b) img2dataset"


def make_images(folder: Path, count: int, seed: int) -> None:
    """``count`` JPEGs in ``folder`` (kept between runs: the same seed gives the same files)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for number in range(count):
        path = folder / f"{number}.jpg"
        width, height = int(rng.integers(320, 1025)), int(rng.integers(240, 769))
        colour, shade = tuple(int(c) for c in rng.integers(0, 256, 3)), int(rng.integers(0, 256))
        if path.exists():
            continue
        image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
        draw = ImageDraw.Draw(image)
        draw.rectangle((width // 5, height // 5, width // 2, height // 2), fill=colour)
        draw.ellipse((width // 2, height // 3, width - 10, height - 10), fill=(shade, 255 - shade, 128))
        noise = rng.normal(0, 6, (height, width, 3))
        pixels = np.clip(np.asarray(image, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=85)
        path.write_bytes(buffer.getvalue())


def serve(folder: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "--directory", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, port
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("the image server did not start")


def img2dataset_venv(path: Path) -> Path:
    """The benchmark's own environment for img2dataset (created once), never the project's."""
    binary = path / "bin" / "img2dataset"
    if not binary.exists():
        print(f"creating {path} with {IMG2DATASET} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(path / "bin" / "pip"), "install", "--quiet", IMG2DATASET], check=True)
    return binary


def run_vlcurate(listing: Path, port: int, out: Path) -> int:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-m", "vlcurate.pipelines.cli", "captions", "--input", str(listing),
                           "--output", str(out / "dataset"), "--allow-host", f"127.0.0.1:{port}",
                           "--image-size", str(SIZE), "--resize-mode", "border", "--retries", "0",
                           "--download-threads", str(THREADS), "--progress-interval", "0",
                           "--direct_running_mode=multi_processing", f"--direct_num_workers={WORKERS}"],
                          env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads((out / "dataset" / "manifest.json").read_text())["totals"]["samples"]


def run_img2dataset(binary: Path, listing: Path, images: int, out: Path) -> int:
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    done = subprocess.run([str(binary), "--url_list", str(listing), "--input_format", "parquet",
                           "--url_col", "url", "--caption_col", "caption", "--output_format", "webdataset",
                           "--output_folder", str(out / "dataset"), "--processes_count", str(WORKERS),
                           "--thread_count", str(THREADS), "--image_size", str(SIZE), "--resize_mode", "border",
                           "--retries", "0", "--number_sample_per_shard", str(max(10, images // 10)),
                           "--enable_wandb", "False"], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    stats = [json.loads(p.read_text()) for p in (out / "dataset").glob("*_stats.json")]
    return sum(stat["successes"] for stat in stats)


def check_cost(port: int, calls: int = 20000) -> float:
    """Seconds one address check takes: the policy resolving and judging a URL's literal host."""
    sys.path.insert(0, str(REPO_ROOT))
    from vlcurate.transforms.sources.web.guard.policy import AddressPolicy

    policy = AddressPolicy.from_strings([f"127.0.0.1:{port}"])
    started = time.perf_counter()
    for _ in range(calls):
        policy.resolve("127.0.0.1", port)
    return (time.perf_counter() - started) / calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--img2dataset-venv", type=Path, default=REPO_ROOT / "out" / "bench" / "img2dataset-venv")
    add_run_flags(parser)
    args = parser.parse_args()
    work, tmp = work_folder(args, "vlcurate-bench-captions-")
    binary = img2dataset_venv(args.img2dataset_venv)
    print(f"generating {args.images} images in {work / 'images'}", flush=True)
    make_images(work / "images", args.images, args.seed)
    server, port = serve(work / "images")
    try:
        listing = work / "list.parquet"
        pq.write_table(pa.table({"url": [f"http://127.0.0.1:{port}/{n}.jpg" for n in range(args.images)],
                                 "caption": [f"generated picture number {n}" for n in range(args.images)]}), listing)
        made: dict = {}

        def measured(name, fn):
            return lambda out: made.__setitem__(name, fn(out))

        runs = {A: measured(A, lambda out: run_vlcurate(listing, port, out)),
                B: measured(B, lambda out: run_img2dataset(binary, listing, args.images, out))}
        results, errors = best_times(runs, work, args.repeat)
        per_check = check_cost(port)
    finally:
        server.terminate()
        server.wait()
    print(f"\n{'measurement':24s} {'images':>7s} {'made':>6s} {'seconds':>9s} {'images/s':>9s}")
    for name in runs:
        if name in results:
            print(f"{name:24s} {args.images:7d} {made[name]:6d} {results[name]:9.2f} {args.images / results[name]:9.1f}")
        else:
            print(f"{name:24s} {args.images:7d} {'':>6s} {'FAILED':>9s}\n    {errors[name]}")
    ratio = results[B] / results[A] if A in results and B in results else None
    if ratio is not None:
        print(f"\nthroughput ratio a/b = {ratio:.2f}   target >= 0.8: {'MET' if ratio >= 0.8 else 'NOT MET'}")
    share = per_check / (results[A] / args.images) if A in results else None
    print(f"address check: {per_check * 1e6:.1f} us per URL" +
          (f", {share:.2%} of (a)'s time per image (a redirect adds one more)" if share is not None else ""))
    finish(args, tmp, {
        "cores": os.cpu_count(), "workers": WORKERS, "threads": THREADS, "images": args.images,
        "image_size": SIZE, "repeat": args.repeat, "made": made,
        "results": {k: {"seconds": t, "images_per_s": args.images / t} for k, t in results.items()},
        "errors": errors, "ratio": ratio, "check_seconds_per_url": per_check,
        "target_met": (ratio or 0) >= 0.8,
    })
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
