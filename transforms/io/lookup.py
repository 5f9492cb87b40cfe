"""One sample by key: in a shard (read up to it), or in a dataset (its shard found in the index).

`vlcurate inspect` and `vlcurate chat-format` both show one sample of a dataset or a shard; this is
where either finds it.
"""

from __future__ import annotations

from vlcurate.transforms.data.sample import Sample
from vlcurate.transforms.io.files import open_for_reading
from vlcurate.transforms.io.manifest import read_manifest
from vlcurate.transforms.io.shard_reader import read_shard
from vlcurate.transforms.report.build import dataset_files, join


def find_sample(path: str, key: str | None) -> tuple[Sample | None, str | None]:
    """(the sample, the shard it is in): ``path`` a shard (``.tar``; no ``key``: its first sample)
    or a dataset folder. (None, None) when the key is in neither; a missing or unreadable dataset
    or shard raises (OSError, ValueError) as its reader does."""
    if path.endswith(".tar"):
        return find_in_shard(path, key), path
    shard = shard_of(path, key)
    where = join(path, f"shards/{shard}.tar") if shard else None
    return (find_in_shard(where, key) if where else None), where


def shard_of(dataset: str, key: str) -> str | None:
    """The shard that holds ``key``, looked up in the index files (streamed, two columns)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    manifest = read_manifest(dataset)
    listed = [(s.get("index") or {}).get("name") for s in manifest.get("shards") or []]
    for path in dataset_files(dataset, listed, "index"):
        with open_for_reading(path) as handle:
            for batch in pq.ParquetFile(handle).iter_batches(columns=["key", "shard"]):
                hits = pc.filter(batch.column("shard"), pc.equal(batch.column("key"), key)).to_pylist()
                if hits:
                    return hits[0]
    return None


def find_in_shard(path: str, key: str | None) -> Sample | None:
    """The sample ``key`` of a shard (read up to it: a shard is sorted by key), or its first."""
    for sample in read_shard(path):
        if key is None or sample.key == key:
            return sample
        if sample.key > key:
            break
    return None
