"""`vlcurate review apply`: write the editors' decisions into the dataset.

For each decision in force, the sample's ``json.taxonomy`` becomes the editor's leaf with status
``reviewed``, who decided, when, and the label before; its index row's taxonomy columns follow, and
the manifest's label counts (the mix is counted from them). Only shards holding a changed sample
are written again, through the shard writer's own encoding (shards.rewrite_shard), so the result
is deterministic; a shard whose samples already say what the decisions say is left as it is, and a
second run changes nothing.
"""

from __future__ import annotations

import collections
import dataclasses

from vlcurate.taxonomy.desk.decisions import DecisionLog, DecisionsError
from vlcurate.taxonomy.desk.desk import DeskError, index_paths, open_taxonomy, read_dataset_manifest
from vlcurate.taxonomy.tree import Taxonomy
from vlcurate.transforms.data.review import REVIEWED_STATUS
from vlcurate.transforms.io.manifest import MANIFEST, write_manifest
from vlcurate.transforms.io.shard_reader import ShardError, listed_shards, read_shard
from vlcurate.transforms.io.blobs import label_of


@dataclasses.dataclass
class Applied:
    decisions: int = 0
    changed: int = 0  # samples whose taxonomy changed
    shards: list[str] = dataclasses.field(default_factory=list)  # shards written again
    unknown: list[str] = dataclasses.field(default_factory=list)  # decided keys not in the dataset
    damaged: list[str] = dataclasses.field(default_factory=list)  # shards that could not be read, why


def reviewed_taxonomy(old: dict | None, decision: dict, taxonomy: Taxonomy) -> dict:
    """A sample's taxonomy after an editor's decision; the labeler's candidates and its confidence
    stay beside the editor's label."""
    old = dict(old or {})
    node = taxonomy.node(decision["label"])
    return {
        **old,
        "id": node.id,
        "name": node.name,
        "main": taxonomy.main_of(node.id).id,
        "status": REVIEWED_STATUS,
        "confidence": 1.0,  # an editor's label: certain as far as the dataset knows
        "labeler_confidence": old.get("labeler_confidence", old.get("confidence")),
        "editor": decision["editor"],
        "reviewed_at": decision["time"],
        "previous": decision["previous"],
        "version": taxonomy.version,
    }


def apply_decisions(dataset: str, taxonomy_path: str | None = None) -> Applied:
    dataset = dataset.rstrip("/")
    manifest = read_dataset_manifest(dataset)
    taxonomy = open_taxonomy(taxonomy_path)
    try:
        decisions = DecisionLog.of(dataset).labels()
    except DecisionsError as error:
        raise DeskError(str(error)) from None
    if not decisions:
        raise DeskError(f"{dataset}: no decisions to apply (review/decisions.jsonl is missing or empty)")
    bad = sorted({d["label"] for d in decisions.values()
                  if d["label"] not in taxonomy or not taxonomy.node(d["label"]).is_leaf})
    if bad:
        raise DeskError(f"decisions hold labels that are not leaves of taxonomy {taxonomy.version}: "
                        f"{', '.join(map(str, bad))} (--taxonomy names the taxonomy the editors used)")
    shard_of = _shards_of(dataset, manifest, set(decisions))
    result = Applied(len(decisions), unknown=sorted(set(decisions) - set(shard_of)))
    by_shard = collections.defaultdict(dict)
    for key, shard in shard_of.items():
        by_shard[shard][key] = decisions[key]
    records = {record["name"]: record for _, record in listed_shards(dataset, manifest)}
    written: dict[str, tuple] = {}  # shard entry name -> (its new record, its label counts' change)
    for shard in sorted(by_shard):
        try:
            changed = _rewrite(dataset, shard, by_shard[shard], records.get(f"shards/{shard}.tar"), taxonomy, written)
        except ShardError as error:  # a damaged shard stays as it is; the others are applied
            result.damaged.append(str(error))
            continue
        if changed:
            result.changed += changed
            result.shards.append(shard)
    if written:
        # The dataset's manifest, and the manifest of each run that wrote a changed shard: a later
        # `--mode extend` merges the runs' manifests into the dataset's again.
        for name, document in [*_run_manifests(dataset), (MANIFEST, manifest)]:
            if _update(document, written):
                write_manifest(dataset, document, name)
    return result


def _rewrite(dataset: str, shard: str, wanted: dict, expect: dict | None, taxonomy: Taxonomy, written: dict) -> int:
    """Write ``shard`` again with the decisions ``wanted`` (key -> decision) when one changes a
    sample (noted in ``written``); how many samples changed."""
    from vlcurate.transforms.io.shards import rewrite_shard

    path = f"{dataset}/shards/{shard}.tar"
    changed = sum(sample.key in wanted and _edited(sample, wanted[sample.key], taxonomy) != sample
                  for sample in read_shard(path, expect=expect))
    if not changed:
        return 0
    before, after = collections.Counter(), collections.Counter()

    def edited(samples):
        for sample in samples:
            new = _edited(sample, wanted[sample.key], taxonomy) if sample.key in wanted else sample
            before[label_of(sample)] += 1
            after[label_of(new)] += 1
            yield new

    record = rewrite_shard(edited(read_shard(path, expect=expect)), shard, dataset)
    after.subtract(before)
    written[f"shards/{shard}.tar"] = (record, after)
    return changed


def _update(manifest: dict, written: dict) -> bool:
    """Give the shards of ``written`` that ``manifest`` lists their new facts and labels."""
    labels = collections.Counter(manifest.get("labels") or {})
    found = False
    for entry in manifest.get("shards") or []:
        if entry["name"] in written:
            record, change = written[entry["name"]]
            entry.update(bytes=record.tar.bytes, sha256=record.tar.sha256, samples=record.samples,
                         index={"name": f"index/{record.name}.parquet", "bytes": record.index.bytes,
                                "sha256": record.index.sha256})
            labels.update(change)
            found = True
    labels.pop(None, None)
    manifest["labels"] = {label: count for label, count in sorted(labels.items()) if count > 0}
    return found


def _run_manifests(dataset: str) -> list[tuple[str, dict]]:
    from vlcurate.transforms.io.runs import manifest_name, run_manifests, run_state

    numbers = run_state(dataset).finished
    return [(manifest_name(number), document) for number, document in zip(numbers, run_manifests(dataset, numbers))
            if document is not None]


def _edited(sample, decision: dict, taxonomy: Taxonomy):
    return dataclasses.replace(sample, taxonomy=reviewed_taxonomy(sample.taxonomy, decision, taxonomy))


def _shards_of(dataset: str, manifest: dict, keys: set[str]) -> dict[str, str]:
    """key -> its shard's name, for the decided keys, from the index."""
    import pyarrow.parquet as pq

    from vlcurate.transforms.io.files import open_for_reading

    found = {}
    for path in index_paths(dataset, manifest):
        with open_for_reading(path) as handle:
            for row in pq.read_table(handle, columns=["key", "shard"]).to_pylist():
                if row["key"] in keys:
                    found[row["key"]] = row["shard"]
    return found
