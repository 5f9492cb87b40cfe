"""Stage timings for the manifest: ``throughput`` and ``funnel`` from a run's Beam metrics (each
stage DoFn times every element it settles: transforms/runtime/progress.py ``record``), and the
sum of several runs' for a dataset made by runs."""

from __future__ import annotations

import collections
import dataclasses

# Stages that annotate the samples they take rather than make or drop them: summaries show what
# they did ("label: 36 labelled"), not an in -> out. The label stage identifies the language of
# every sample it takes, and labels them where a labeler ran (the manifest then counts labels).
ANNOTATING = {"label": ("labelled", "language-identified")}


def annotation(stage: str, manifest: dict) -> str | None:
    """What an annotating stage did to the elements it took ("labelled"), or None: a stage that
    makes or drops."""
    if stage not in ANNOTATING:
        return None
    labelled, otherwise = ANNOTATING[stage]
    return labelled if manifest.get("labels") else otherwise


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
    the mean seconds per element; the funnel lists each stage's elements in and outputs out, in
    the order the stages ran (by their first element's start)."""
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
    timed = {stage: values for stage, values in spans.items() if {"start_ms", "end_ms", "latency_us"} <= set(values)}
    throughput, funnel = {}, []
    for stage in sorted(timed, key=lambda name: (timed[name]["start_ms"].min, name)):
        values = timed[stage]
        elements = values["latency_us"].count
        seconds = max((values["end_ms"].max - values["start_ms"].min) / 1e3, 1e-3)
        throughput[stage] = _rates(elements, seconds, values["latency_us"].sum / 1e6)
        funnel.append({"stage": stage, "in": elements, "out": outputs.get(stage, 0),
                       # elements a resumed run took from its interrupted attempt instead of computing
                       **({"replayed": replayed[stage]} if replayed.get(stage) else {})})
    return throughput, funnel


def _rates(elements: int, seconds: float, busy_seconds: float) -> dict:
    return {
        "elements": elements,
        "seconds": round(seconds, 6),
        "per_second": round(elements / seconds, 2) if seconds else 0.0,
        "mean_element_s": round(busy_seconds / elements, 6) if elements else 0.0,
    }


def add_up(runs: list[tuple[dict, list]]) -> tuple[dict, list]:
    """The (throughput, funnel) of several runs of a dataset, oldest first, as one: per stage the
    elements, seconds and counts summed (elements/s = all elements / all seconds), stages in the
    order they first ran."""
    order: list[str] = []
    rows: dict[str, dict] = {}
    spent: dict[str, list] = {}  # stage -> [elements, seconds, busy seconds]
    for throughput, funnel in runs:
        for step in funnel or []:
            stage = step.get("stage")
            if stage not in rows:
                order.append(stage)
                rows[stage] = {"stage": stage}
            for field in ("in", "out", "replayed"):
                if isinstance(step.get(field), int):
                    rows[stage][field] = rows[stage].get(field, 0) + step[field]
        for stage, figures in (throughput or {}).items():
            if stage not in rows:
                order.append(stage)
                rows[stage] = {"stage": stage}
            elements, seconds = figures.get("elements") or 0, figures.get("seconds") or 0.0
            total = spent.setdefault(stage, [0, 0.0, 0.0])
            total[0] += elements
            total[1] += seconds
            total[2] += (figures.get("mean_element_s") or 0.0) * elements
    throughput = {stage: _rates(e, round(s, 6), busy) for stage, (e, s, busy) in spent.items()}
    funnel = [rows[stage] for stage in order if len(rows[stage]) > 1]
    return throughput, funnel
