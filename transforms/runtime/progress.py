"""Stage counts as a run goes: printed to the console every few seconds, and timed for the manifest.

Every stage DoFn (transforms/runtime/stage.py) calls ``record`` once per element it settles. Counts live
in the worker process; a daemon thread in each process prints them when ``VLCURATE_PROGRESS``
holds an interval in seconds (``vlcurate run`` sets it; worker processes inherit it). The same
elements are also counted and timed as Beam metrics (``timing``), which the pipeline gathers after
the run into the manifest's ``throughput`` and ``funnel``.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import os
import sys
import threading
import time

from apache_beam.metrics import Metrics

ENV = "VLCURATE_PROGRESS"
_counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
_lock = threading.Lock()
_reporter: threading.Thread | None = None
_started = time.monotonic()


def record(stage: str, started: float, outputs: int, reason: str | None) -> None:
    """One element settled by ``stage``: ``outputs`` results, or a reject with ``reason``."""
    finished = time.time()
    start, end, latency = _distributions(stage)
    start.update(int(started * 1e6))
    end.update(int(finished * 1e6))
    latency.update(int((finished - started) * 1e6))
    with _lock:
        counts = _counts[stage]
        counts["in"] += 1
        counts["out"] += outputs
        if reason:
            counts["rejected"] += 1
    _ensure_reporter()


@functools.lru_cache(maxsize=None)
def _distributions(stage: str):
    """The stage's three metric handles, made once: each element updates them."""
    return tuple(Metrics.distribution(stage, name) for name in ("start_us", "end_us", "latency_us"))


def _ensure_reporter() -> None:
    global _reporter
    interval = os.environ.get(ENV)
    if _reporter is not None or not interval:
        return
    _reporter = threading.Thread(target=_report_every, args=(float(interval),), daemon=True, name="vlcurate-progress")
    _reporter.start()


def _report_every(interval: float) -> None:
    while True:
        time.sleep(interval)
        print(line(), file=sys.stderr, flush=True)


def line() -> str:
    """``progress 12s [pid 123]: pdf_page 40 in -> 38 out, 2 rejected | ...``"""
    with _lock:
        parts = [f"{stage} {c['in']} in -> {c['out']} out" + (f", {c['rejected']} rejected" if c["rejected"] else "")
                 for stage, c in sorted(_counts.items())]
    return f"progress {time.monotonic() - _started:.0f}s [pid {os.getpid()}]: " + (" | ".join(parts) or "starting")


@dataclasses.dataclass(frozen=True)
class _Span:
    count: int
    sum: int
    min: int
    max: int

    @staticmethod
    def of(value) -> "_Span":
        return _Span(value.count, value.sum, value.min, value.max)

    def plus(self, other: "_Span") -> "_Span":
        return _Span(self.count + other.count, self.sum + other.sum, min(self.min, other.min), max(self.max, other.max))


def timing(metrics_result) -> tuple[dict, list]:
    """(throughput, funnel) from a finished pipeline's metrics: per stage, the elements it took,
    the seconds from its first element's start to its last one's end (all workers together), and
    the mean seconds per element; the funnel lists each stage's elements in and outputs out."""
    spans: dict[str, dict] = collections.defaultdict(dict)
    for result in metrics_result.get("distributions", []):
        value = result.committed if result.committed is not None else result.attempted
        if value is not None and value.count:
            # A stage used in several steps (the label stage of two source groups) reports per step.
            names = spans[result.key.metric.namespace]
            name = result.key.metric.name
            names[name] = _Span.of(value) if name not in names else names[name].plus(_Span.of(value))
    outputs, replayed = {}, {}
    for result in metrics_result.get("counters", []):
        found = {"outputs": outputs, "replayed": replayed}.get(result.key.metric.name)
        if found is not None:
            value = result.committed if result.committed is not None else result.attempted
            found[result.key.metric.namespace] = found.get(result.key.metric.namespace, 0) + (value or 0)
    throughput, funnel = {}, []
    for stage, values in sorted(spans.items()):
        if not {"start_us", "end_us", "latency_us"} <= set(values):
            continue
        elements = values["latency_us"].count
        seconds = max((values["end_us"].max - values["start_us"].min) / 1e6, 1e-6)
        throughput[stage] = {
            "elements": elements,
            "seconds": round(seconds, 6),
            "per_second": round(elements / seconds, 2),
            "mean_element_s": round(values["latency_us"].sum / elements / 1e6, 6),
        }
        funnel.append({"stage": stage, "in": elements, "out": outputs.get(stage, 0),
                       # elements a resumed run took from its interrupted attempt instead of computing
                       **({"replayed": replayed[stage]} if replayed.get(stage) else {})})
    return throughput, funnel
