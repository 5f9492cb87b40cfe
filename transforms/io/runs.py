"""A dataset made by several runs: each run's plan and manifest under runs/, the merged manifest,
and the stage that keeps an extending run from writing keys the dataset already has.

``runs/run-NNNN.plan.json`` is written before run N starts (its recipe, settings and shard
prefix); ``runs/run-NNNN.json`` is the manifest the sink writes when the run finishes. A plan
without its manifest is a run that was interrupted: ``--mode resume`` runs it again with the same
plan, leaving its finished shards untouched. ``manifest.json`` is the merge of every finished run.
"""

from __future__ import annotations

import dataclasses
import json

import apache_beam as beam

from vlcurate.transforms.io.files import open_for_reading, write_bytes
from vlcurate.transforms.io.manifest import balance, write_manifest
from vlcurate.transforms.data.rejects import sample_reject

RUNS = "runs"


def plan_name(number: int) -> str:
    return f"{RUNS}/run-{number:04d}.plan.json"


def manifest_name(number: int) -> str:
    return f"{RUNS}/run-{number:04d}.json"


def read_json(uri: str) -> dict | None:
    """The JSON file at ``uri``, or None when it is not there (FileSystems' errors are OSErrors)."""
    try:
        with open_for_reading(uri) as handle:
            return json.loads(handle.read().decode("utf-8"))
    except OSError:
        return None


@dataclasses.dataclass(frozen=True)
class RunState:
    """What an output folder holds: its finished runs (numbers, in order) and an interrupted one."""

    finished: tuple[int, ...]
    interrupted: int | None

    @property
    def next(self) -> int:
        return max((*self.finished, self.interrupted or 0), default=0) + 1


def run_state(output: str) -> RunState:
    from apache_beam.io.filesystems import FileSystems

    try:
        names = [meta.path.rsplit("/", 1)[-1] for meta in FileSystems.match([f"{output}/{RUNS}/run-*.json"])[0].metadata_list]
    except Exception:  # no runs/ folder yet
        names = []
    plans = {int(name[4:8]) for name in names if name.endswith(".plan.json")}
    finished = {int(name[4:8]) for name in names if not name.endswith(".plan.json")}
    interrupted = sorted(plans - finished)
    return RunState(tuple(sorted(finished)), interrupted[-1] if interrupted else None)


def write_plan(output: str, number: int, plan: dict) -> None:
    write_bytes(f"{output}/{plan_name(number)}", json.dumps(plan, indent=2, sort_keys=True).encode("utf-8") + b"\n")


def run_manifests(output: str, numbers) -> list[dict]:
    return [read_json(f"{output}/{manifest_name(number)}") for number in numbers]


def merge(runs: list[tuple[int, dict, dict]]) -> dict:
    """The dataset's manifest from its finished runs' (number, plan, manifest), oldest first:
    shards and rejects files of every run, counts, funnel and throughput summed, settings of the
    latest run."""
    from vlcurate.transforms.runtime.funnel import add_up

    latest = runs[-1][2]
    merged = {key: value for key, value in latest.items() if key not in ("runs",)}
    totals = {"inputs": 0, "samples": 0, "rejected": 0, "filtered": 0}
    summed = {"categories": {}, "text_sources": {}, "labels": {}, "counts": {}}
    by_reason, by_stage, shards, reject_files, listed = {}, {}, [], [], []
    for number, plan, manifest in runs:
        for key in totals:
            totals[key] += manifest["totals"][key]
        for field, counts in summed.items():
            for name, count in manifest.get(field, {}).items():
                counts[name] = counts.get(name, 0) + count
        for reason, count in manifest["rejects"]["by_reason"].items():
            by_reason[reason] = by_reason.get(reason, 0) + count
        for stage, reasons in manifest["rejects"]["by_stage"].items():
            for reason, count in reasons.items():
                by_stage.setdefault(stage, {})[reason] = by_stage.get(stage, {}).get(reason, 0) + count
        shards.extend(manifest["shards"])
        reject_files.extend(manifest["rejects"]["files"])
        listed.append({
            "run": number,
            "mode": plan.get("mode"),
            "prefix": plan.get("prefix"),
            "created": manifest["created"],
            "manifest": manifest_name(number),
            "totals": manifest["totals"],
            "shards": len(manifest["shards"]),
        })
    merged.update(summed)
    merged.update(
        totals=balance(totals["inputs"], totals["samples"], totals["rejected"], totals["filtered"],
                       all(manifest["totals"]["balanced"] for _, _, manifest in runs)),
        rejects={"by_reason": dict(sorted(by_reason.items())), "by_stage": by_stage,
                 "files": reject_files},
        shards=shards,
        runs=listed,
    )
    for field in ("categories", "text_sources", "labels", "counts"):
        merged[field] = dict(sorted(merged[field].items()))
    throughput, funnel = add_up([(manifest.get("throughput"), manifest.get("funnel")) for _, _, manifest in runs])
    if throughput or funnel:  # the same sums as the totals': every run's elements and seconds
        merged.update(throughput=throughput, funnel=funnel)
    return merged


def write_merged(output: str, numbers) -> dict:
    runs = [(n, read_json(f"{output}/{plan_name(n)}") or {}, read_json(f"{output}/{manifest_name(n)}"))
            for n in numbers]
    manifest = merge(runs)
    write_manifest(output, manifest)
    return manifest


def _keys(parquet_file: str):
    """(key, what the dataset did with it) for each keyed row of an index or rejects file."""
    import io

    import pyarrow.parquet as pq

    with open_for_reading(parquet_file) as handle:
        table = pq.read_table(io.BytesIO(handle.read()))
    keys = table.column("key").to_pylist()
    reasons = table.column("reason").to_pylist() if "reason" in table.column_names else [None] * len(keys)
    return [(key, f"an earlier run of this dataset dropped this key ({reason})" if reason else
             "an earlier run of this dataset wrote this key") for key, reason in zip(keys, reasons) if key]


class SkipExisting(beam.PTransform):
    """Samples (or staged records) whose key a finished run already wrote (its index files), or
    rejected or filtered (its rejects files, where given), leave as ``already_in_dataset`` rows
    (filtered: the dataset has judged them); the rest go on."""

    def __init__(self, index_files: list[str], rejects_files: list[str] = ()):
        super().__init__()
        self._files = [*index_files, *rejects_files]

    def expand(self, samples):
        existing = (
            samples.pipeline
            | "KeyFiles" >> beam.Create(self._files)
            | "ExistingKeys" >> beam.FlatMap(_keys)
        )
        keyed = samples | "ByKey" >> beam.Map(lambda sample: (sample.key, sample))
        return (
            {"existing": existing, "new": keyed}
            | "Join" >> beam.CoGroupByKey()
            | "Split" >> beam.FlatMap(_split).with_outputs("rejects", main="samples")
        )


def _split(joined):
    _, groups = joined
    told = sorted(groups["existing"])
    if told:
        for sample in groups["new"]:
            yield beam.pvalue.TaggedOutput("rejects", sample_reject(sample, "extend", "already_in_dataset", told[-1]))
    else:
        yield from groups["new"]
