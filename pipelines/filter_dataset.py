"""The filter pipeline: an existing dataset in, a scored, filtered and deduplicated dataset out.

--input is a dataset folder (local or gs://) written by any vlcurate pipeline: its shards are
listed from its manifest. Every sample is read back by the one shard reader (the tar's blocks,
its members and the manifest's bytes and sha256 checked; a damaged shard keeps the samples
before the damage and becomes one read_error row naming it), goes through the quality stages
the flags ask for, and is written again, resharded, with its own index, rejects and manifest, as
DataComp's resharder does. The rejects name each dropped sample by key, with its score where
CLIP dropped it, so that a later run can change its mind.

    vlcurate filter --input DATASET --output DATASET [--clip-model M --clip-checkpoint PATH]
                    [--clip-min-score T | --clip-keep-fraction F [--clip-per-category]]
                    [--dedup exact,near] [Beam flags]
"""

from __future__ import annotations

import functools
import hashlib

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from vlcurate.transforms.io.manifest import read_manifest
from vlcurate.pipelines.launch import launch
from vlcurate.pipelines.options import input_path, shard_config
from vlcurate.transforms.io.files import read_capped
from vlcurate.transforms.data.rejects import RejectRecord
from vlcurate.transforms.io.shard_reader import ShardError, listed_shards, read_shard
from vlcurate.transforms.runtime import progress
from vlcurate.transforms.runtime.stage import REJECTS
from vlcurate.pipelines.registry import command

COMMAND = command("filter")

OPTIONS = ()  # the shared flags, and the quality flags (--clip-*, --dedup), which every command has
# Shared flags filter does nothing with (pipelines/flags.py): it reads shards, in no isolated child.
UNUSED_FLAGS = ("page-timeout", "render-processes", "worker-memory-mb", "max-file-bytes")
_MAX_MANIFEST_BYTES = 64 * 1024 * 1024


class ReadShard(beam.DoFn):
    """A (shard path, manifest record) in, its samples out, read by the one shard reader, which
    checks the tar's structure, its members and the manifest's bytes and sha256. A shard that cannot
    be read whole (missing, cut, corrupt) ends in one read_error row naming it and the problem, after
    the samples read before the damage, so the totals still balance."""

    def process(self, shard):
        path, record = shard
        read = 0
        try:
            for sample in read_shard(path, expect=record):
                read += 1
                yield sample
        except ShardError as error:  # a damaged shard costs its rest, not the run
            detail = f"{error}; {read} of its {record.get('samples', '?')} samples read before it"
            progress.tally("read", read, "read_error", progress.INPUT_ITEMS)
            yield beam.pvalue.TaggedOutput(REJECTS, RejectRecord(stage="read", reason="read_error", uri=path,
                                                                 locator=f"byte {error.offset}", detail=detail[:2000]))
            return
        progress.tally("read", read, None, progress.INPUT_ITEMS)  # a shard is an input and an item

    def finish_bundle(self):
        progress.flush()  # a worker process's last counts, before the command shows its total


def shard_paths(dataset: str) -> tuple[list[tuple[str, dict]], str]:
    """(path, manifest record) of each shard the dataset's manifest lists, and the manifest's sha256."""
    data = read_capped(f"{dataset}/manifest.json", _MAX_MANIFEST_BYTES)
    manifest = read_manifest(dataset)
    if "shards" not in manifest:
        raise ValueError("its manifest lists no shards")
    return listed_shards(dataset, manifest), hashlib.sha256(data).hexdigest()


def build(pipeline: beam.Pipeline, source: str, config: dict, processes: int = 1,
          records: dict | None = None, staging=None) -> dict:
    """Read the dataset's shards back; returns the samples and read errors for the quality stages.
    ``records``: path -> the manifest's record of that shard, checked as it is read. Nothing is
    staged early (``staging`` unused): shards are cheap to read again on resume."""
    records = records or {}
    read = (
        pipeline
        | "Shards" >> beam.Create([(path, records.get(path, {})) for path in config["shards"]])
        | "SpreadShards" >> beam.Reshuffle()
        | "Read" >> beam.ParDo(ReadShard()).with_outputs(REJECTS, main="samples")
    )
    # Counted only: each sample by its key (its bytes stay out of the flatten).
    units = read.samples | "SampleUnits" >> beam.Map(lambda sample: sample.key)
    inputs = (units, read[REJECTS]) | "InputUnits" >> beam.Flatten()
    return {"samples": read.samples, "rejects": read[REJECTS], "inputs": inputs}


def run(argv=None) -> dict | None:
    """Run the pipeline; returns the manifest (None for a dry run)."""
    options = PipelineOptions(argv)
    source = input_path(options, COMMAND.word).rstrip("/")
    try:
        shards, manifest_sha256 = shard_paths(source)
    except Exception as error:
        raise SystemExit(f"vlcurate filter: {source} is not a vlcurate dataset ({error})") from error
    config = {"dataset": source, "manifest_sha256": manifest_sha256, "shards": [path for path, _ in shards]}
    output = shard_config(options, COMMAND.prefix)
    if output.output.rstrip("/") == source:
        raise SystemExit("vlcurate filter: --output must be a new folder, not the input dataset")
    # A dataset is a folder; on an object store a folder is a prefix, listed as one only with its
    # slash (pipelines/inputs.input_pattern: a local path is looked at, a gs:// one cannot be).
    listed = f"{source}/" if "://" in source else source
    return launch(options, COMMAND.pipeline, listed, COMMAND.extensions, "filter", config, output,
                  functools.partial(build, records=dict(shards)))
