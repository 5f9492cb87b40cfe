"""Reading staged blobs back from an object store: one at a time against a few ahead.

    .venv/bin/python bench/staged_reads.py [--blobs 200] [--latency-ms 10,30]

Cloud Storage cannot be reached from here, so this is a model: the tests' fake object store
(tests/fixtures/object_store.py) with a delay put into every read (``slow_reads``), standing for a
request's round trip. It stages --blobs text samples in packs as a stage does on gs:// (RemotePack), then
times reading them all back (a) one at a time, as the shard writer did, and (b) with
``Staging.loads``, which keeps READ_AHEAD reads in flight, and prints a/b for each delay.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))  # the fake object store

from fixtures.object_store import object_store, slow_reads  # noqa: E402
from vlcurate.transforms.data.sample import Sample, make_key  # noqa: E402
from vlcurate.transforms.io.packs import RemotePack  # noqa: E402
from vlcurate.transforms.io.staging import READ_AHEAD, Staging  # noqa: E402


def sample(number: int) -> Sample:
    return Sample(key=make_key("text", str(number)), source="text", category="text_only", uri=f"file:///{number}",
                  locator=str(number), text=f"paragraph {number} " * 200)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blobs", type=int, default=200)
    parser.add_argument("--latency-ms", default="10,30", help="comma list: the delay of every open, in ms")
    args = parser.parse_args(argv)
    try:
        delays = [float(value) / 1000 for value in args.latency_ms.split(",")]
    except ValueError:
        parser.error(f"--latency-ms takes numbers separated by commas, not {args.latency_ms!r}")
    with tempfile.TemporaryDirectory() as folder, object_store(pathlib.Path(folder)):
        staging = Staging.of("fakegcs://bucket/out", "bench", "text")
        pack = RemotePack(staging)
        records = [pack.hold(staging.stage(sample(number))) for number in range(args.blobs)]
        pack.write()
        print(f"{args.blobs} blobs, {READ_AHEAD} read ahead")
        for delay in delays:
            slow_reads(delay)
            started = time.perf_counter()
            for record in records:
                staging.load(record)
            one_at_a_time = time.perf_counter() - started
            started = time.perf_counter()
            assert sum(1 for _ in staging.loads(records)) == len(records)
            ahead = time.perf_counter() - started
            print(f"  {delay * 1000:5.0f} ms a round trip: (a) one at a time {one_at_a_time:6.2f} s, "
                  f"(b) read ahead {ahead:6.2f} s, a/b {one_at_a_time / ahead:4.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
