"""The one console summary of a dataset: printed after every run and by `vlcurate inspect DATASET`."""

from __future__ import annotations

from vlcurate.transforms.data.rejects import is_filtered
from vlcurate.transforms.data.review import REVIEW_LABEL
from vlcurate.transforms.runtime.funnel import annotation

SHOWN_SHARDS = 20


def summary(dataset: str, manifest: dict) -> str:
    """The manifest in a screenful, one fact a line; folders are named only where they hold files."""
    totals = manifest.get("totals") or {}
    balance = {True: "balanced", False: "NOT BALANCED: a bug"}.get(totals.get("balanced"), "balance not recorded")
    shards = manifest.get("shards") or []
    rejects = manifest.get("rejects") or {}
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
    for kind, filtered in (("rejected", False), ("filtered", True)):
        # each kind with its own reasons, then per stage: a filtered reason is never listed as rejected
        reasons = _of_kind(rejects.get("by_reason"), filtered)
        lines.append(f"{kind:<14}{sum(reasons.values())}: {_counts(reasons)}")
        for stage, by_stage in (rejects.get("by_stage") or {}).items():
            if _of_kind(by_stage, filtered):
                lines.append(f"  {stage}: {_counts(_of_kind(by_stage, filtered))}")
    if rejects.get("by_reason"):
        lines.append(f"  rows in {dataset}/rejects/")
    lines.extend(_stages(manifest))
    lines.append(f"manifest      {dataset}/manifest.json")
    return "\n".join(lines)


def empty_reason(dataset: str, manifest: dict) -> str:
    """``no samples: 3 inputs, 3 rejected (not_pdf 3); see DATASET/rejects/``"""
    totals = manifest.get("totals") or {}
    by_reason = (manifest.get("rejects") or {}).get("by_reason") or {}
    parts = [f"{totals.get('inputs', 0)} inputs"]
    for kind, filtered in (("rejected", False), ("filtered", True)):
        reasons = _of_kind(by_reason, filtered)
        if reasons:
            parts.append(f"{sum(reasons.values())} {kind} ({_counts(reasons)})")
    where = f"; see {dataset}/rejects/" if by_reason else ""
    return "no samples: " + ", ".join(parts) + where


def _of_kind(counts, filtered: bool) -> dict:
    return {reason: count for reason, count in (counts or {}).items() if is_filtered(reason) == filtered}


def _stages(manifest: dict) -> list[str]:
    """Each stage in the order it ran (the funnel's), with what it did and its rate."""
    throughput = manifest.get("throughput") or {}
    funnel = [row for row in manifest.get("funnel") or [] if isinstance(row, dict)]
    order = [row.get("stage") for row in funnel] + sorted(set(throughput) - {row.get("stage") for row in funnel})
    if not throughput:
        return []
    rows = {row.get("stage"): row for row in funnel}
    dropped = (manifest.get("rejects") or {}).get("by_stage") or {}
    lines = ["stages        elements in -> outputs, elements/s"]
    for stage in order:
        figures = throughput.get(stage) or {}
        rate = figures.get("per_second")
        elements = figures.get("elements", rows.get(stage, {}).get("in"))
        annotated = annotation(stage, manifest)
        if annotated:  # annotates what it takes: what it did, and the rows it cost, if any
            lost = sum((dropped.get(stage) or {}).values())
            did = f"{elements} {annotated}" + (f", {lost} rejected" if lost else "")
        else:
            did = f"{elements} -> {rows.get(stage, {}).get('out', '?')}"
        lines.append(f"  {stage}: {did}" + (f", {rate:,.1f}/s" if isinstance(rate, (int, float)) else ""))
    return lines


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
