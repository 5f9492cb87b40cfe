"""The deterministic WebDataset sink: tar shards and a parquet index per shard (read back by shard_reader.py).

Determinism comes from the data, never from the runner: a sample's shard follows from the hash
of its key and the run's totals; inside a bucket samples are sorted by key and cut into shards
under both caps; shard numbers come from a plan over all buckets; tar headers are fixed. Two runs
over the same inputs and config give byte-identical shards and index files, whatever the runner,
the number of workers or the bundling.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import math
import tarfile
from collections.abc import Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import AsList, AsSingleton

from vlcurate.transforms.io.files import WrittenFile, atomic_write, write_bytes
from vlcurate.transforms.io.manifest import build_manifest, write_manifest
from vlcurate.transforms.data.rejects import RejectRecord
from vlcurate.transforms.data.review import REVIEW_LABEL, REVIEW_STATUS
from vlcurate.transforms.data.sample import Sample
from vlcurate.transforms.runtime.stage import REJECTS
from vlcurate.transforms.io.tables import index_table, parquet_bytes, rejects_table, run_source

TAR_BLOCK = 512
TAR_END = 2 * TAR_BLOCK  # the two zero blocks that close an archive
# Buckets are sized to fill this share of a shard's caps, so that the random spread of a hash
# rarely pushes a bucket over a cap (which would cut it into a full shard and a tiny one).
BUCKET_FILL = 0.9


@dataclasses.dataclass(frozen=True)
class ShardConfig:
    """Where shards go and how big one may get."""

    output: str
    prefix: str = "data"
    max_samples_per_shard: int = 1000
    max_shard_bytes: int = 512 * 1024 * 1024
    manifest: str = "manifest.json"  # where the run's manifest goes, relative to output
    resume: bool = False  # leave finished shards of an interrupted run untouched (same bytes)

    def __post_init__(self):
        if self.max_samples_per_shard < 1 or self.max_shard_bytes < TAR_BLOCK * 4:
            raise ValueError("max_samples_per_shard must be >= 1 and max_shard_bytes >= 2048")
        if not self.prefix or not all(c.isalnum() or c in "-_" for c in self.prefix):
            raise ValueError(f"shard prefix {self.prefix!r} must be letters, digits, - or _")

    def shard_name(self, number: int) -> str:
        return f"{self.prefix}-{number:06d}"


@dataclasses.dataclass(frozen=True)
class EncodedSample:
    """A sample as tar members, with its index row; what travels from the stages to the writer."""

    key: str
    uri: str
    members: tuple[tuple[str, bytes], ...]
    row: dict
    label: str | None = None  # the taxonomy leaf, "(review)" when the labeler was unsure, None: not labelled

    @property
    def size(self) -> int:
        """Bytes this sample takes in a tar: a header block per member plus padded data."""
        return sum(TAR_BLOCK + math.ceil(len(data) / TAR_BLOCK) * TAR_BLOCK for _, data in self.members)


@dataclasses.dataclass(frozen=True)
class ShardRecord:
    """What the manifest says of one written shard."""

    name: str
    samples: int
    tar: WrittenFile
    index: WrittenFile
    categories: tuple[tuple[str, int], ...]
    text_sources: tuple[tuple[str, int], ...] = ()  # "" for samples without text
    labels: tuple[tuple[str, int], ...] = ()  # taxonomy leaf -> samples, of the labelled samples


def encode_sample(sample: Sample) -> EncodedSample:
    members = tuple(sample.members())
    first = sample.images[0] if sample.images else None
    taxonomy = sample.taxonomy or {}
    language = sample.meta.get("language")  # {"id", "confidence"} once the labelling stage ran
    row = {
        "key": sample.key,
        "source": sample.source,
        "category": sample.category,
        "uri": sample.uri,
        "locator": sample.locator,
        "image_count": len(sample.images),
        "image_width": first.width if first else None,
        "image_height": first.height if first else None,
        "image_bytes": sum(len(image.data) for image in sample.images),
        "text_chars": len(sample.text or ""),
        "text_source": sample.text_source,
        "scores": sorted((name, float(value)) for name, value in sample.scores.items()),
        "taxonomy_id": taxonomy.get("id"),
        "taxonomy_confidence": taxonomy.get("confidence"),
        "language": language.get("id") if isinstance(language, dict) else None,
        # The rule of the manifest's label counts: a leaf id is labelled, no id is review.
        "taxonomy_status": "unlabelled" if sample.taxonomy is None else "labelled" if taxonomy.get("id") else REVIEW_STATUS,
    }
    label = None if sample.taxonomy is None else (taxonomy.get("id") or REVIEW_LABEL)
    encoded = EncodedSample(sample.key, sample.uri, members, row, label)
    row["sample_bytes"] = encoded.size
    return encoded


def bucket_count(samples: int, total_bytes: int, config: ShardConfig) -> int:
    """How many key-hash buckets the run's samples are spread over."""
    need = max(samples / config.max_samples_per_shard, total_bytes / config.max_shard_bytes)
    return max(1, math.ceil(need / BUCKET_FILL))


def bucket_of(key: str, buckets: int) -> int:
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:16], 16) % buckets


def dedupe(samples: Iterable[EncodedSample]) -> tuple[list[EncodedSample], list[RejectRecord]]:
    """Keep one sample per key (the smallest uri, then the smallest bytes), sorted by key.

    The same key twice means the same identity twice (e.g. one PDF at two paths); which copy wins
    must not depend on arrival order.
    """
    by_key: dict[str, list[EncodedSample]] = {}
    for sample in samples:
        by_key.setdefault(sample.key, []).append(sample)
    kept, rejects = [], []
    for key in sorted(by_key):
        copies = sorted(by_key[key], key=lambda s: (s.uri, s.members))
        kept.append(copies[0])
        for other in copies[1:]:
            rejects.append(
                RejectRecord(
                    stage="sink", reason="duplicate_key", uri=other.uri, locator=other.row["locator"],
                    detail=f"kept {copies[0].uri}", key=key,
                )
            )
    return kept, rejects


def cut_into_shards(samples: list[EncodedSample], config: ShardConfig) -> list[list[EncodedSample]]:
    """Consecutive runs of the (key-sorted) samples under both caps.

    A single sample over the byte cap gets a shard of its own rather than being dropped.
    """
    shards: list[list[EncodedSample]] = []
    current: list[EncodedSample] = []
    current_bytes = 0
    for sample in samples:
        size = sample.size
        full = (
            len(current) >= config.max_samples_per_shard
            or current_bytes + size + TAR_END > config.max_shard_bytes
        )
        if current and full:
            shards.append(current)
            current, current_bytes = [], 0
        current.append(sample)
        current_bytes += size
    if current:
        shards.append(current)
    return shards


def _tar_info(name: str, size: int) -> tarfile.TarInfo:
    # Fixed header fields: the same member always gets the same 512 header bytes.
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def write_tar(out, samples: Iterable[EncodedSample]) -> None:
    """A USTAR archive of the samples' members, in the order given.

    Written block by block rather than through ``tarfile.open(mode="w")``, which pads the
    archive to a 10 KiB record: here the file ends right after the two zero end blocks, so its
    size is exactly the samples' sizes plus ``TAR_END`` and a shard stays under its byte cap.
    """
    for sample in samples:
        for name, data in sample.members:
            out.write(_tar_info(name, len(data)).tobuf(format=tarfile.USTAR_FORMAT))
            out.write(data)
            padding = -len(data) % TAR_BLOCK
            if padding:
                out.write(bytes(padding))
    out.write(bytes(TAR_END))


def write_shard(samples: list[EncodedSample], number: int, config: ShardConfig) -> ShardRecord:
    """Write one shard and its index file, each atomically; returns what the manifest needs."""
    name = config.shard_name(number)
    tar = atomic_write(f"{config.output}/shards/{name}.tar", lambda out: write_tar(out, samples), config.resume)
    index = write_bytes(f"{config.output}/index/{name}.parquet", parquet_bytes(index_table(samples, name)),
                        config.resume)
    categories = collections.Counter(sample.row["category"] for sample in samples)
    text_sources = collections.Counter(sample.row["text_source"] or "" for sample in samples)
    labels = collections.Counter(sample.label for sample in samples if sample.label is not None)
    return ShardRecord(name, len(samples), tar, index, tuple(sorted(categories.items())),
                       tuple(sorted(text_sources.items())), tuple(sorted(labels.items())))


# --- the Beam sink ----------------------------------------------------------------------------


class _CutBuckets(beam.DoFn):
    """One key-hash bucket in, its shards out (main), how many (tag "plan"), duplicates (rejects)."""

    def __init__(self, config: ShardConfig):
        self._config = config

    def process(self, bucket_and_samples):
        bucket, samples = bucket_and_samples
        kept, duplicates = dedupe(samples)
        for record in duplicates:
            Metrics.counter("sink", "duplicate_key").inc()
            yield beam.pvalue.TaggedOutput(REJECTS, record)
        shards = cut_into_shards(kept, self._config)
        yield beam.pvalue.TaggedOutput("plan", (bucket, len(shards)))
        for position, samples_of_shard in enumerate(shards):
            yield (bucket, position), samples_of_shard


def _add_pairs(pairs) -> tuple[int, int]:
    samples = total_bytes = 0
    for count, size in pairs:
        samples += count
        total_bytes += size
    return samples, total_bytes


def _shard_numbers(plan: Iterable[tuple[int, int]]) -> dict[int, int]:
    """bucket -> number of its first shard: buckets in order, each taking as many as it cut."""
    first, numbers = 0, {}
    for bucket, count in sorted(plan):
        numbers[bucket] = first
        first += count
    return numbers


def _write_numbered(item, first_numbers: dict[int, int], config: ShardConfig) -> ShardRecord:
    (bucket, position), samples = item
    return write_shard(samples, first_numbers[bucket] + position, config)


def _write_rejects(records, output: str, prefix: str, source: str | None = None):
    records = list(records)
    written = write_bytes(f"{output}/rejects/{prefix}-rejects.parquet", parquet_bytes(rejects_table(records, source)))
    counts: dict[tuple[str, str], int] = {}
    for record in records:
        counts[(record.stage, record.reason)] = counts.get((record.stage, record.reason), 0) + 1
    return written, sorted(counts.items())


class WriteDataset(beam.PTransform):
    """Write ``{"samples", "rejects", and counters}`` as a dataset folder; yields the manifest.

    Every PCollection in the input dict other than samples and rejects is counted into the
    manifest's ``counts`` under its name; ``inputs`` (the input units) must be among them.
    """

    def __init__(self, config: ShardConfig, run: dict):
        super().__init__()
        self._config = config
        self._run = run

    def expand(self, pcolls):
        config = self._config
        samples, rejects = pcolls["samples"], pcolls["rejects"]
        counters = {name: pcoll for name, pcoll in pcolls.items() if name not in ("samples", "rejects")}
        if "inputs" not in counters:
            raise ValueError("WriteDataset needs an 'inputs' PCollection to balance the totals")

        encoded = samples | "Encode" >> beam.Map(encode_sample)
        totals = (
            encoded
            | "Sizes" >> beam.Map(lambda sample: (1, sample.size))
            | "Total" >> beam.CombineGlobally(_add_pairs)
        )
        buckets = totals | "Buckets" >> beam.Map(lambda total: bucket_count(total[0], total[1], config))
        cut = (
            encoded
            | "ToBucket" >> beam.Map(lambda s, n: (bucket_of(s.key, n), s), n=AsSingleton(buckets))
            | "GroupBuckets" >> beam.GroupByKey()
            | "Cut" >> beam.ParDo(_CutBuckets(config)).with_outputs("plan", REJECTS, main="shards")
        )
        numbers = cut.plan | "Plan" >> beam.combiners.ToList() | "Number" >> beam.Map(_shard_numbers)
        written = cut.shards | "WriteShards" >> beam.Map(_write_numbered, AsSingleton(numbers), config)
        all_rejects = (rejects, cut[REJECTS]) | "AllRejects" >> beam.Flatten()
        rejects_written = (
            all_rejects
            | "CollectRejects" >> beam.combiners.ToList()
            | "WriteRejects" >> beam.Map(_write_rejects, config.output, config.prefix, run_source(self._run))
        )
        counts = {
            name: AsSingleton(pcoll | f"Count{name.title()}" >> beam.combiners.Count.Globally())
            for name, pcoll in sorted(counters.items())
        }
        run = self._run

        def finish(_, shards, rejected, **counted):
            manifest = build_manifest(run, counted, shards, rejected[0], rejected[1])
            write_manifest(config.output, manifest, config.manifest)
            return manifest

        return (
            samples.pipeline
            | "Once" >> beam.Create([None])
            | "WriteManifest" >> beam.Map(finish, AsList(written), AsSingleton(rejects_written), **counts)
        )
