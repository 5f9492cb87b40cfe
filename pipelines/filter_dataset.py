"""The filter pipeline: an existing dataset in, a scored, filtered and deduplicated dataset out.

--input is a dataset folder (local or gs://) written by any vlcurate pipeline: its shards are
listed from its manifest. Every sample is read back (plain tarfile, members checked), goes
through the quality stages the flags ask for, and is written again, resharded, with its own
index, rejects and manifest, as DataComp's resharder does. The rejects name each dropped sample
by key, with its score where CLIP dropped it, so that a later run can change its mind.

    vlcurate filter --input DATASET --output DATASET [--clip-model M --clip-checkpoint PATH]
                    [--clip-min-score T | --clip-keep-fraction F [--clip-per-category]]
                    [--dedup exact,near] [Beam flags]
"""

from __future__ import annotations

import hashlib

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from vlcurate.transforms.io.manifest import read_manifest
from vlcurate.pipelines.launch import launch
from vlcurate.pipelines.options import input_path, shard_config
from vlcurate.transforms.io.files import read_capped
from vlcurate.transforms.data.rejects import RejectRecord
from vlcurate.transforms.io.shards import read_shard
from vlcurate.transforms.runtime.stage import REJECTS
from vlcurate.pipelines.registry import command

COMMAND = command("filter")

OPTIONS = ()  # the shared flags, and the quality flags (--clip-*, --dedup), which every command has
_MAX_MANIFEST_BYTES = 64 * 1024 * 1024


class ReadShard(beam.DoFn):
    """A shard path in, its samples out; a shard that cannot be read (missing, truncated, a
    member that is not a small regular file or not a sample) ends in one read_error row, after
    the samples read before the damage."""

    def process(self, path):
        try:
            for sample in read_shard(path):
                yield sample
        except Exception as error:  # a damaged shard costs its rest, not the run
            detail = f"{type(error).__name__}: {error}"[:2000]
            yield beam.pvalue.TaggedOutput(REJECTS, RejectRecord(stage="read", reason="read_error", uri=path,
                                                                 detail=detail))


def shard_paths(dataset: str) -> tuple[list[str], str]:
    """The shard paths a dataset's manifest lists, and the manifest's sha256."""
    data = read_capped(f"{dataset}/manifest.json", _MAX_MANIFEST_BYTES)
    manifest = read_manifest(dataset)
    return [f"{dataset}/{shard['name']}" for shard in manifest["shards"]], hashlib.sha256(data).hexdigest()


def build(pipeline: beam.Pipeline, source: str, config: dict, processes: int = 1) -> dict:
    """Read the dataset's shards back; returns the samples and read errors for the quality stages."""
    read = (
        pipeline
        | "Shards" >> beam.Create(config["shards"])
        | "SpreadShards" >> beam.Reshuffle()
        | "Read" >> beam.ParDo(ReadShard()).with_outputs(REJECTS, main="samples")
    )
    inputs = (read.samples, read[REJECTS]) | "InputUnits" >> beam.Flatten()
    return {"samples": read.samples, "rejects": read[REJECTS], "inputs": inputs}


def run(argv=None) -> dict | None:
    """Run the pipeline; returns the manifest (None for a dry run)."""
    options = PipelineOptions(argv)
    source = input_path(options).rstrip("/")
    try:
        shards, manifest_sha256 = shard_paths(source)
    except Exception as error:
        raise SystemExit(f"vlcurate filter: {source} is not a vlcurate dataset ({error})") from error
    config = {"dataset": source, "manifest_sha256": manifest_sha256, "shards": shards}
    output = shard_config(options, COMMAND.prefix)
    if output.output.rstrip("/") == source:
        raise SystemExit("vlcurate filter: --output must be a new folder, not the input dataset")
    return launch(options, COMMAND.pipeline, source, COMMAND.extensions, "filter", config, output, build)
