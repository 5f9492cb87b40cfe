"""The text pipeline: text-only corpora -> text_only samples (the language share of the mix).

--input is a .txt/.md file (one document), a .jsonl file (one {"text": ...} per line), a folder of
them (searched at any depth), a glob, or a gs:// prefix ending in /.

    vlcurate text --input FILES --output DATASET [--max-file-bytes N] [Beam flags]
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from vlcurate.pipelines.inputs import list_inputs
from vlcurate.pipelines.launch import launch
from vlcurate.pipelines.options import DatasetOptions, add_flag, input_path, shard_config, whole_number
from vlcurate.transforms.sources.records import FileRecords
from vlcurate.transforms.sources.text import TextConfig, read_text_records, text_sample
from vlcurate.pipelines.registry import command

COMMAND = command("text")

_DEFAULTS = TextConfig()


class TextOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        add_flag(parser, "min-chars", type=whole_number(0), default=_DEFAULTS.min_chars,
                 help="shorter documents are filtered (text_empty)")


OPTIONS = (TextOptions,)
# Shared flags text does nothing with (pipelines/flags.py): no images (so nothing for CLIP or
# deduplication to judge) and no isolated children.
UNUSED_FLAGS = ("clip-*", "dedup", "max-image-pixels", "page-timeout", "render-processes", "worker-memory-mb")


def configure(options: PipelineOptions) -> tuple[TextConfig, dict]:
    """The stage config (no models), from the flags (also for `vlcurate run`)."""
    dataset = options.view_as(DatasetOptions)
    return TextConfig(max_file_bytes=dataset.max_file_bytes or _DEFAULTS.max_file_bytes,
                      min_chars=options.view_as(TextOptions).min_chars), {}


def build(pipeline: beam.Pipeline, source: str, config: TextConfig, processes: int = 1,
          staging=None) -> dict:
    """Wire the text stages onto ``pipeline``. Nothing is staged early (``staging`` unused):
    documents are cheap to read again on resume."""
    files = list_inputs(pipeline, source, COMMAND.extensions)
    return files | "TextDocuments" >> FileRecords(read_text_records, text_sample, config, "text_file", "text")


def run(argv=None) -> dict | None:
    options = PipelineOptions(argv)
    source = input_path(options)
    config, models = configure(options)
    shards = shard_config(options, COMMAND.prefix)
    return launch(options, COMMAND.pipeline, source, COMMAND.extensions, "text", config, shards, build, models)
