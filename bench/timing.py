"""What the benchmarks share: the best wall time of a few runs, each into a fresh folder."""

from __future__ import annotations

import shutil
import time
from pathlib import Path


def best_time(fn, out: Path, repeat: int) -> float:
    """Best wall time of `repeat` runs of fn(out), each into a fresh, empty output directory."""
    times = []
    for _ in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        t0 = time.perf_counter()
        fn(out)
        times.append(time.perf_counter() - t0)
    return min(times)
