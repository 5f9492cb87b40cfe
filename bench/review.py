"""How quickly the review desk answers an editor, on a generated queue.

    .venv/bin/python bench/review.py [--items 10000] [--decisions 200] [--sessions 20] [--json out.json]

Generates a dataset of --items SFT samples, every one under review (a small picture, a
conversation, three candidates, confidences spread over 0..0.5), written by the shard writer's own
code in shards of 1,000; starts `vlcurate review` on it in a child process and measures over HTTP
(one keep-alive connection, as a browser holds):
  - startup: from starting the process to its first answer (loading the queue and the index);
  - first item: a fresh session's page, then its first item (GET / and GET /api/next), per session;
  - next item after a decision: POST /api/decide (saved to the log with fsync) and GET /api/next;
  - the item's picture: GET /image/KEY/0 (read from its shard);
each as median and p95 in milliseconds. Target: first and next item under 150 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from timing import add_run_flags, finish, free_port, run_main, work_folder  # bench/timing.py: this script's folder is on sys.path

from PIL import Image as PILImage

from vlcurate.taxonomy.tree import load_taxonomy
from vlcurate.transforms.data.sample import Sample, encode_image, make_key
from vlcurate.transforms.io.manifest import build_manifest, write_manifest
from vlcurate.transforms.io.shards import rewrite_shard

REPO_ROOT = Path(__file__).resolve().parent.parent
PER_SHARD = 1000


def generate(folder: Path, items: int, seed: int) -> None:
    rng = random.Random(seed)
    leaves = [node.id for node in load_taxonomy().leaves()]
    samples = []
    for number in range(items):
        picture = encode_image(PILImage.new("RGB", (64, 48), (number % 256, (number * 7) % 256, 90)), "png")
        question = f"item {number}: what does the chart in this picture say about {rng.choice(leaves)}?"
        confidence = round(rng.uniform(0.0, 0.5), 4)
        top = rng.sample(leaves, 3)
        samples.append(Sample(
            key=make_key("sft", "bench-review", number), source="sft", category="interleaved",
            uri=f"file:///bench/{number}.jsonl", locator="line:1", images=(picture,), text=question, text_source="sft",
            conversation=[{"role": "User", "content": "<image_placeholder>" + question, "images": [0]},
                          {"role": "Assistant", "content": "An answer of a few words."}],
            taxonomy={"id": None, "name": None, "confidence": confidence, "main": top[0].split("/")[0],
                      "main_confidence": 0.5, "status": "review", "version": "1", "labeler": "0" * 64,
                      "top": [{"id": leaf, "confidence": round(confidence / (i + 1), 4)} for i, leaf in enumerate(top)]},
            provenance={"pipeline": "sft"}, meta={"language": {"id": "en", "confidence": 0.9}}))
    samples.sort(key=lambda sample: sample.key)
    records = [rewrite_shard(samples[start:start + PER_SHARD], f"sft-{start // PER_SHARD:06d}", str(folder))
               for start in range(0, len(samples), PER_SHARD)]
    write_manifest(str(folder), build_manifest({"pipeline": "sft", "config": {}, "models": {}},
                                               {"inputs": len(samples)}, records, [], []))


class Client:
    """One keep-alive HTTP connection with the desk's session cookie and CSRF token."""

    def __init__(self, port: int):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookie = self.token = ""

    def request(self, method: str, path: str, body: dict | None = None) -> bytes:
        headers = {"Cookie": self.cookie} if self.cookie else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers.update({"Content-Type": "application/json", "X-CSRF-Token": self.token})
        self.connection.request(method, path, body=data, headers=headers)
        response = self.connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {payload[:200]!r}")
        cookie = response.getheader("set-cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        return payload

    def open_page(self) -> None:
        page = self.request("GET", "/").decode()
        self.token = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


def milliseconds(times: list[float]) -> dict:
    ordered = sorted(times)
    return {"median": round(statistics.median(ordered) * 1000, 1),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000, 1), "n": len(ordered)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000, help="samples in the generated queue")
    parser.add_argument("--decisions", type=int, default=200, help="decisions to time")
    parser.add_argument("--sessions", type=int, default=20, help="fresh sessions to time the first item of")
    add_run_flags(parser)
    args = parser.parse_args()
    work, tmp = work_folder(args, "vlcurate-bench-review-")
    dataset = work / "dataset"
    started = time.perf_counter()
    generate(dataset, args.items, args.seed)
    print(f"generated {args.items} queued samples in {time.perf_counter() - started:.1f}s")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "vlcurate.pipelines.cli", "review", str(dataset), "--port",
                               str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while True:
            try:
                Client(port).request("GET", "/static/desk.css")
                break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit(f"the desk did not start: {server.stderr.read().decode()}")
                time.sleep(0.05)
        startup = time.perf_counter() - started
        first, following, images = [], [], []
        for _ in range(args.sessions):
            client = Client(port)
            t0 = time.perf_counter()
            client.open_page()
            item = json.loads(client.request("GET", "/api/next"))["item"]
            first.append(time.perf_counter() - t0)
            client.request("POST", "/api/skip", {"key": item["key"]})  # leave it to the next session
        client = Client(port)
        client.open_page()
        item = json.loads(client.request("GET", "/api/next"))["item"]
        for _ in range(args.decisions):
            t0 = time.perf_counter()
            client.request("GET", f"/image/{item['key']}/0")
            images.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            client.request("POST", "/api/decide", {"key": item["key"], "label": item["candidates"][0]["id"],
                                                   "editor": "bench"})
            item = json.loads(client.request("GET", "/api/next"))["item"]
            following.append(time.perf_counter() - t0)
    finally:
        server.terminate()
        server.wait(timeout=30)
    figures = {"items": args.items, "startup_s": round(startup, 2), "first_item_ms": milliseconds(first),
               "next_item_after_decision_ms": milliseconds(following), "image_ms": milliseconds(images)}
    print(f"desk startup (process start to first answer): {figures['startup_s']} s")
    for name in ("first_item_ms", "next_item_after_decision_ms", "image_ms"):
        value = figures[name]
        print(f"{name.replace('_ms', ''):<28} median {value['median']:>7} ms   p95 {value['p95']:>7} ms   (n={value['n']})")
    print("target: first and next item under 150 ms")
    return finish(args, tmp, figures)


if __name__ == "__main__":
    run_main(main)
