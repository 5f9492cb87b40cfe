"""The deterministic WebDataset sink: tar shards, a parquet index per shard, the rejects files and
the review queue (shards are read back by shard_reader.py).

Bytes stay where they are made: each sample is staged once (io/staging.py) and only its small
record crosses the shuffles, so a run's memory does not grow with the dataset. Determinism comes
from the data, never from the runner: a sample's shard follows from the hash of its key and the
run's totals; inside a bucket samples are sorted by key and cut into shards under both caps; shard
numbers come from a plan over all buckets; tar headers are fixed. Two runs over the same inputs and
config give byte-identical shards and index files, whatever the runner, the number of workers or
the bundling.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import hashlib
import math
from collections.abc import Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import AsList, AsSingleton

from vlcurate.transforms.data.rejects import RejectRecord
from vlcurate.transforms.data.review import REVIEW_LABEL, review_queue_path
from vlcurate.transforms.data.sample import Sample
from vlcurate.transforms.io.files import WrittenFile, atomic_write, write_bytes
from vlcurate.transforms.io.manifest import build_manifest, write_manifest
from vlcurate.transforms.io.blobs import TAR_BLOCK, StagedSample, decode, encode, index_row
from vlcurate.transforms.io.packs import RemotePack
from vlcurate.transforms.io.staging import READ_AHEAD, Staging, StagingLost
from vlcurate.transforms.io.tables import index_table, parquet_bytes, rejects_table, run_source
from vlcurate.transforms.runtime.heap import trim
from vlcurate.transforms.runtime.stage import DONE_BATCH, REJECTS, in_global_window

TAR_END = 2 * TAR_BLOCK  # the two zero blocks that close an archive
# Buckets are sized to fill this share of a shard's caps, so that the random spread of a hash
# rarely pushes a bucket over a cap (which would cut it into a full shard and a tiny one).
BUCKET_FILL = 0.9
# Input units per rejects file (files are written in parallel, one per bucket of rows; an input
# unit becomes a sample or a reject row, so a file holds about this many rows at most).
REJECTS_PER_FILE = 100_000
# Shards one writer (a DoFn instance) writes at once; each holds one sample's bytes at a time.
SHARD_WRITERS = 2
# Samples the sink stages as one object on an object store (as many as a source stage's batch).
PACK_SAMPLES = DONE_BATCH


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
class ShardRecord:
    """What the manifest says of one written shard."""

    name: str
    samples: int
    tar: WrittenFile
    index: WrittenFile
    categories: tuple[tuple[str, int], ...]
    text_sources: tuple[tuple[str, int], ...] = ()  # "" for samples without text
    labels: tuple[tuple[str, int], ...] = ()  # taxonomy leaf -> samples, of the labelled samples


def bucket_count(samples: int, total_bytes: int, config: ShardConfig) -> int:
    """How many key-hash buckets the run's samples are spread over."""
    need = max(samples / config.max_samples_per_shard, total_bytes / config.max_shard_bytes)
    return max(1, math.ceil(need / BUCKET_FILL))


def bucket_of(key: str, buckets: int) -> int:
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:16], 16) % buckets


def dedupe(samples: Iterable[StagedSample]) -> tuple[list[StagedSample], list[RejectRecord]]:
    """Keep one sample per key (the smallest uri, then the smallest bytes' hash), sorted by key.

    The same key twice means the same identity twice (e.g. one PDF at two paths); which copy wins
    must not depend on arrival order.
    """
    by_key: dict[str, list[StagedSample]] = {}
    for sample in samples:
        by_key.setdefault(sample.key, []).append(sample)
    kept, rejects = [], []
    for key in sorted(by_key):
        copies = sorted(by_key[key], key=lambda s: (s.uri, s.sha256))
        kept.append(copies[0])
        for other in copies[1:]:
            rejects.append(
                RejectRecord(
                    stage="sink", reason="duplicate_key", uri=other.uri, locator=other.locator,
                    detail=f"kept {copies[0].uri}", key=key, source=other.source,
                )
            )
    return kept, rejects


def cut_into_shards(samples: list[StagedSample], config: ShardConfig) -> list[list[StagedSample]]:
    """Consecutive runs of the (key-sorted) samples under both caps.

    A single sample over the byte cap gets a shard of its own rather than being dropped.
    """
    shards: list[list[StagedSample]] = []
    current: list[StagedSample] = []
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


def write_tar(out, blobs: Iterable[bytes]) -> None:
    """A USTAR archive of staged samples (each its members, block-exact), in the order given.

    Written block by block rather than through ``tarfile.open(mode="w")``, which pads the
    archive to a 10 KiB record: here the file ends right after the two zero end blocks, so its
    size is exactly the samples' sizes plus ``TAR_END`` and a shard stays under its byte cap.
    """
    for blob in blobs:
        out.write(blob)
    out.write(bytes(TAR_END))


def write_shard(samples: list[StagedSample], number: int, config: ShardConfig, staging: Staging
                ) -> tuple[ShardRecord, list[RejectRecord]]:
    """Write one shard from its staged samples, its index file and (where its samples await review)
    its review rows, each atomically; returns what the manifest needs and a reject row for each
    staged file that went missing or changed. Memory: one sample's bytes at a time (on an object
    store, the few read ahead: ``Staging.loads``)."""
    name = config.shard_name(number)
    lost: list[RejectRecord] = []
    written: list[StagedSample] = []
    rows: list[dict] = []
    review: list[Sample] = []

    def blobs():
        for sample, blob in staging.loads(samples):
            if isinstance(blob, StagingLost):
                lost.append(RejectRecord(stage="sink", reason="staging_lost", uri=sample.uri,
                                         locator=sample.locator, detail=str(blob), key=sample.key,
                                         source=sample.source))
                continue
            decoded = decode(blob)  # for its index row: the records that crossed the shuffles are lean
            written.append(sample)
            rows.append(index_row(decoded, sample.size))
            if sample.label == REVIEW_LABEL:
                review.append(decoded)
            yield blob

    tar = atomic_write(f"{config.output}/shards/{name}.tar", lambda out: write_tar(out, blobs()), config.resume)
    index = write_bytes(f"{config.output}/index/{name}.parquet", parquet_bytes(index_table(rows, name)),
                        config.resume)
    if review:
        from vlcurate.transforms.label.queue import queue_bytes

        write_bytes(review_queue_path(config.output, name), queue_bytes(review, f"{name}.tar"), config.resume)
    trim()  # what this shard's samples took, back to the kernel before the next (runtime/heap.py)
    return shard_record(name, written, tar, index), lost


def shard_record(name: str, written: list[StagedSample], tar: WrittenFile, index: WrittenFile) -> ShardRecord:
    """The manifest's facts of a written shard: its files and its samples' counts."""
    categories = collections.Counter(sample.category for sample in written)
    text_sources = collections.Counter(sample.text_source or "" for sample in written)
    labels = collections.Counter(sample.label for sample in written if sample.label is not None)
    return ShardRecord(name, len(written), tar, index, tuple(sorted(categories.items())),
                       tuple(sorted(text_sources.items())), tuple(sorted(labels.items())))


def rewrite_shard(samples: Iterable[Sample], name: str, output: str) -> ShardRecord:
    """Write shard ``name`` of the dataset ``output`` again from decoded samples in key order (a
    dataset edited in place: `vlcurate review apply`): each sample encoded as staging encodes it,
    so the tar is the bytes ``write_shard`` gives for the same samples; then its index file and
    its review rows (the queue file goes when none are left). ``samples`` may stream from the old
    shard: the new one is written beside it and renamed over it at the end."""
    rows: list[dict] = []
    review: list[Sample] = []
    written: list[StagedSample] = []

    def blobs():
        for sample in samples:
            record, blob = encode(sample)
            written.append(record)
            rows.append(index_row(sample, record.size))
            if record.label == REVIEW_LABEL:
                review.append(sample)
            yield blob

    tar = atomic_write(f"{output}/shards/{name}.tar", lambda out: write_tar(out, blobs()))
    index = write_bytes(f"{output}/index/{name}.parquet", parquet_bytes(index_table(rows, name)))
    queue = review_queue_path(output, name)
    from vlcurate.transforms.label.queue import queue_bytes

    if review:
        write_bytes(queue, queue_bytes(review, f"{name}.tar"))
    else:
        _remove(queue)
    return shard_record(name, written, tar, index)


def _remove(path: str) -> None:
    from apache_beam.io.filesystems import FileSystems

    if FileSystems.exists(path):
        FileSystems.delete([path])


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


# The tally's entry of the staged samples (a counter is named by its PCollection, never so).
SAMPLES = ":samples"


class _Tally(beam.CombineFn):
    """``(name, bytes)`` pairs -> ``{name: (count, bytes)}``: every count the sink needs, at once."""

    def create_accumulator(self):
        return {}

    def add_input(self, totals, pair):
        name, size = pair
        count, total = totals.get(name, (0, 0))
        totals[name] = (count + 1, total + size)
        return totals

    def merge_accumulators(self, accumulators):
        merged = {}
        for totals in accumulators:
            for name, (count, size) in totals.items():
                before = merged.get(name, (0, 0))
                merged[name] = (before[0] + count, before[1] + size)
        return merged

    def extract_output(self, totals):
        return totals


def buckets_of(totals: dict, config: ShardConfig) -> int:
    """The run's number of key-hash buckets, from its tally."""
    samples, total_bytes = totals.get(SAMPLES, (0, 0))
    return bucket_count(samples, total_bytes, config)


def rejects_files(totals: dict) -> int:
    """How many files the run's reject rows are spread over: one a ``REJECTS_PER_FILE`` input units
    (an input unit is a sample or a reject row, so no file holds many more rows than that)."""
    return max(1, math.ceil(totals.get("inputs", (0, 0))[0] / REJECTS_PER_FILE))


def _shard_numbers(plan: Iterable[tuple[int, int]]) -> dict[int, int]:
    """bucket -> number of its first shard: buckets in order, each taking as many as it cut."""
    first, numbers = 0, {}
    for bucket, count in sorted(plan):
        numbers[bucket] = first
        first += count
    return numbers


class _WriteShards(beam.DoFn):
    """Each planned shard written from its staged samples, a few at once: a shard's writing is
    mostly reading, hashing and writing bytes, which release the GIL, so on the local runner (one
    bundle holds every shard) the cores share the work the render children have just finished."""

    def __init__(self, config: ShardConfig, staging: Staging):
        self._config = config
        self._staging = staging
        self._threads = None
        self._pending = collections.deque()
        self._first_numbers = None

    def setup(self):
        self._threads = concurrent.futures.ThreadPoolExecutor(SHARD_WRITERS, thread_name_prefix="vlcurate-shards")

    def teardown(self):
        if self._threads is not None:
            self._threads.shutdown(wait=True)

    def start_bundle(self):
        self._pending = collections.deque()
        self._first_numbers = None
        trim()  # what the shuffles before had alive, back to the kernel before the shards' reads

    def process(self, item, plan):
        if self._first_numbers is None:  # the plan is the same for the whole bundle
            self._first_numbers = _shard_numbers(plan)
        (bucket, position), samples = item
        number = self._first_numbers[bucket] + position
        self._pending.append(self._threads.submit(write_shard, samples, number, self._config, self._staging))
        while self._pending and (len(self._pending) >= SHARD_WRITERS or self._pending[0].done()):
            yield from _shard_outputs(self._pending.popleft().result())

    def finish_bundle(self):
        while self._pending:
            yield from map(in_global_window, _shard_outputs(self._pending.popleft().result()))


def _shard_outputs(written):
    record, lost = written
    for reject in lost:
        Metrics.counter("sink", reject.reason).inc()
        yield beam.pvalue.TaggedOutput(REJECTS, reject)
    yield record


def _reject_identity(record: RejectRecord) -> str:
    """What spreads reject rows over files: the key where there is one, else the input."""
    return record.key or "\x1f".join((record.stage, record.uri, record.locator))


def _write_rejects(bucket_and_records, output: str, prefix: str, source: str | None = None):
    """One rejects file of one bucket of rows (written in parallel with the others)."""
    bucket, records = bucket_and_records
    records = list(records)
    written = write_bytes(f"{output}/rejects/{prefix}-rejects-{bucket:06d}.parquet",
                          parquet_bytes(rejects_table(records, source)))
    counts = collections.Counter((record.stage, record.reason) for record in records)
    return written, sorted(counts.items())


class StageSamples(beam.DoFn):
    """Sample (or ``(sample, extras)``) in, its ``StagedSample`` out: the sample's members go to the
    staging area here and only the record goes on to the shuffles; a record passes as it is. The
    staging names the pipeline that ran in the sample's provenance (a stage never hard-codes it)."""

    def __init__(self, staging: Staging):
        self._staging = staging
        self._pack = None

    def start_bundle(self):
        # On an object store a batch of samples is one object, and its records wait for it.
        self._pack = RemotePack(self._staging) if self._staging.remote else None

    def process(self, element):
        if isinstance(element, StagedSample):
            yield element
            return
        sample, extras = element if isinstance(element, tuple) else (element, None)
        Metrics.counter("sink", "staged").inc()
        staged = self._staging.stage(sample, extras)
        if self._pack is None:
            yield staged
            return
        self._pack.hold(staged)
        if len(self._pack.held) >= PACK_SAMPLES or self._pack.full:
            yield from self._pack.write()

    def finish_bundle(self):
        if self._pack is not None:
            yield from map(in_global_window, self._pack.write())


class LoadSamples(beam.DoFn):
    """``StagedSample`` in, the sample its staged blob holds out (for the stages that need its
    content: labels, CLIP, dedup's hashes); anything else passes as it is. On an object store
    READ_AHEAD records are read at once (``Staging.loads``): each read there is a round trip. A
    blob lost this soon after it was staged is a fault of the run, and fails it."""

    def __init__(self, staging: Staging):
        self._staging = staging
        self._waiting: list = []

    def start_bundle(self):
        self._waiting = []

    def process(self, element):
        if not isinstance(element, StagedSample):
            yield element
        elif not self._staging.remote:
            yield self._staging.sample(element)
        else:
            self._waiting.append(element)
            if len(self._waiting) >= READ_AHEAD:
                yield from self._read()

    def finish_bundle(self):
        yield from map(in_global_window, self._read())

    def _read(self):
        waiting, self._waiting = self._waiting, []
        for _, blob in self._staging.loads(waiting):
            if isinstance(blob, StagingLost):
                raise blob
            yield decode(blob)


class WriteDataset(beam.PTransform):
    """Write ``{"samples", "rejects", and counters}`` as a dataset folder; yields the manifest.

    Samples are staged as they arrive (``StageSamples``); the buckets, the shard plan and the
    rejects travel as small records; each shard is then written from its staged samples. Every
    PCollection in the input dict other than samples, rejects and ``FACTS`` is counted into the
    manifest's ``counts`` under its name; ``inputs`` (the input units) must be among them. A fact
    (one element) is recorded in the manifest's ``facts``. The staging area is removed once the
    manifest is written.
    """

    FACTS = ("clip_cut",)

    def __init__(self, config: ShardConfig, run: dict):
        super().__init__()
        self._config = config
        self._run = run

    def expand(self, pcolls):
        config = self._config
        staging = Staging.of(config.output, config.prefix, self._run.get("pipeline") or "")
        samples, rejects = pcolls["samples"], pcolls["rejects"]
        facts = {name: pcoll for name, pcoll in pcolls.items() if name in self.FACTS}
        counters = {name: pcoll for name, pcoll in pcolls.items()
                    if name not in ("samples", "rejects") and name not in facts}
        if "inputs" not in counters:
            raise ValueError("WriteDataset needs an 'inputs' PCollection to balance the totals")
        if SAMPLES in counters:
            raise ValueError(f"{SAMPLES!r} names the sink's own count of samples, not a counter")

        staged = samples | "Stage" >> beam.ParDo(StageSamples(staging))
        # One combine counts all the sink needs to know before it writes: the samples and their
        # bytes (how many buckets), and every counter (the manifest's counts; the input units also
        # size the rejects files). A combine for each count made two to four more runner stages
        # each, 10 to 20 ms apiece on the local runner after the last page (bench/pdf_pages.py).
        tallies = [staged | "TallySamples" >> beam.Map(lambda sample: (SAMPLES, sample.size))]
        tallies += [pcoll | f"Tally{name.title()}" >> beam.Map(lambda _, name: (name, 0), name)
                    for name, pcoll in sorted(counters.items())]
        tally = AsSingleton(
            tuple(tallies) | "Tallies" >> beam.Flatten() | "Tally" >> beam.CombineGlobally(_Tally()).without_defaults(),
            default_value={})
        cut = (
            staged
            | "ToBucket" >> beam.Map(lambda s, totals: (bucket_of(s.key, buckets_of(totals, config)), s), tally)
            | "GroupBuckets" >> beam.GroupByKey()
            | "Cut" >> beam.ParDo(_CutBuckets(config)).with_outputs("plan", REJECTS, main="shards")
        )
        written = cut.shards | "WriteShards" >> beam.ParDo(
            _WriteShards(config, staging), AsList(cut.plan)).with_outputs(REJECTS, main="shards")
        all_rejects = (rejects, cut[REJECTS], written[REJECTS]) | "AllRejects" >> beam.Flatten()
        rejects_written = (
            all_rejects
            | "RejectBucket" >> beam.Map(lambda r, totals: (bucket_of(_reject_identity(r), rejects_files(totals)), r),
                                         tally)
            | "GroupRejects" >> beam.GroupByKey()
            | "WriteRejects" >> beam.Map(_write_rejects, config.output, config.prefix, run_source(self._run))
        )
        known = {name: AsList(pcoll) for name, pcoll in sorted(facts.items())}
        run, names = self._run, sorted(counters)

        def finish(_, shards, rejected, totals, **told):
            reject_counts = collections.Counter()
            for _, pairs in rejected:
                reject_counts.update(dict(pairs))
            counts = {name: totals.get(name, (0, 0))[0] for name in names}
            recorded = {name: values[0] for name, values in told.items() if values}
            manifest = build_manifest(run, counts, shards, [file for file, _ in rejected],
                                      sorted(reject_counts.items()), recorded)
            write_manifest(config.output, manifest, config.manifest)
            staging.remove()  # every shard is written: the staged bytes have served
            return manifest

        return (
            samples.pipeline
            | "Once" >> beam.Create([None])
            | "WriteManifest" >> beam.Map(finish, AsList(written.shards), AsList(rejects_written), tally, **known)
        )
