"""The one console summary of a dataset: printed after every run and by `vlcurate inspect DATASET`."""

from __future__ import annotations

from vlcurate.transforms.data.rejects import is_filtered
from vlcurate.transforms.data.review import REVIEW_LABEL

SHOWN_SHARDS = 20


def summary(dataset: str, manifest: dict) -> str:
    """The manifest in a screenful, one fact a line; folders are named only where they hold files."""
    totals = manifest.get("totals") or {}
    balance = {True: "balanced", False: "NOT BALANCED: a bug"}.get(totals.get("balanced"), "balance not recorded")
    shards = manifest.get("shards") or []
    by_reason = (manifest.get("rejects") or {}).get("by_reason") or {}
    rejected = {reason: count for reason, count in by_reason.items() if not is_filtered(reason)}
    filtered = {reason: count for reason, count in by_reason.items() if is_filtered(reason)}
    lines = [
        f"dataset       {dataset}",
        f"pipeline      {manifest.get('pipeline')}  created {manifest.get('created')}",
        f"totals        inputs {totals.get('inputs')} = samples {totals.get('samples')} + rejected "
        f"{totals.get('rejected')} + filtered {totals.get('filtered')} ({balance})",
        f"categories    {_counts(manifest.get('categories'))}",
        f"text sources  {_counts(manifest.get('text_sources'))}",
        _labels(manifest.get("labels") or {}),
    ]
    if shards:
        lines.append(f"shards        {dataset}/shards/: {len(shards)} shard{'' if len(shards) == 1 else 's'}, "
                     f"{sum(s.get('samples', 0) for s in shards)} samples, {sum(s.get('bytes', 0) for s in shards):,} bytes")
        lines.extend(f"  {shard.get('name')}  {shard.get('samples')} samples  {shard.get('bytes', 0):,} bytes"
                     for shard in shards[:SHOWN_SHARDS])
        if len(shards) > SHOWN_SHARDS:
            lines.append(f"  ... {len(shards) - SHOWN_SHARDS} more")
    else:
        lines.append("shards        none")
    lines.append(f"rejected      {sum(rejected.values())}: {_counts(rejected)}")
    lines.append(f"filtered      {sum(filtered.values())}: {_counts(filtered)}")
    for stage, reasons in ((manifest.get("rejects") or {}).get("by_stage") or {}).items():
        lines.append(f"  {stage}: {_counts(reasons)}")
    if by_reason:
        lines.append(f"  rows in {dataset}/rejects/")
    throughput = manifest.get("throughput") or {}
    outputs = {row.get("stage"): row.get("out") for row in manifest.get("funnel") or []}
    if throughput:
        lines.append("stages        elements in -> outputs, elements/s")
    for stage, figures in sorted(throughput.items()):
        rate = figures.get("per_second")
        lines.append(f"  {stage}: {figures.get('elements')} -> {outputs.get(stage, '?')}"
                     + (f", {rate:,.1f}/s" if isinstance(rate, (int, float)) else ""))
    lines.append(f"manifest      {dataset}/manifest.json")
    return "\n".join(lines)


def _labels(labels: dict) -> str:
    if not labels:
        return "labels        none"
    mains: dict[str, int] = {}
    for leaf, count in labels.items():
        if leaf != REVIEW_LABEL:
            mains[leaf.split("/", 1)[0]] = mains.get(leaf.split("/", 1)[0], 0) + count
    return (f"labels        {sum(mains.values())} labelled ({_counts(dict(sorted(mains.items())))}), "
            f"{labels.get(REVIEW_LABEL, 0)} for review")


def _counts(counts) -> str:
    return ", ".join(f"{name or '(none)'} {count}" for name, count in (counts or {}).items()) or "none"
