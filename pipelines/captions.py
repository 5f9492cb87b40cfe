"""The captions pipeline: image URL lists (or a folder of images with sidecar captions) -> caption samples.

--input is a .parquet, .csv, .tsv or .jsonl list with a URL column and a caption column (the
other columns are kept in each sample's json under input), as img2dataset reads LAION, DataComp
or CC3M lists; or a folder of images (searched at any depth) with a .txt caption beside each
(cat.jpg and cat.txt). Downloads go through the network guard (public addresses only, unless
--allow-host), many at once per worker process; a server's X-Robots-Tag noai or noimageai is an
opt_out reject. Each image is decoded under the pixel cap, resized (--resize-mode) to
--image-size and re-encoded as JPEG (quality 95); its original size and sha256 stay in the json.

    vlcurate captions --input LIST.parquet|LIST.csv|LIST.tsv|LIST.jsonl|FOLDER --output DATASET
                      [--url-column url] [--caption-column caption] [--image-size 384]
                      [--resize-mode keep_ratio|center_crop|border|no] [--download-threads 32]
                      [--allow-host HOST:PORT ...] [Beam flags]
"""

from __future__ import annotations

import os
import sys

from apache_beam.options.pipeline_options import PipelineOptions

from vlcurate.pipelines.inputs import list_inputs
from vlcurate.pipelines.launch import is_dry_run, launch
from vlcurate.pipelines.options import (
    DatasetOptions, NetworkOptions, UrlListOptions, add_flag, image_pixels, input_path, page_timeout,
    shard_config, whole_number,
)
from vlcurate.pipelines.registry import IMAGE_EXTENSIONS, command
from vlcurate.transforms.data.resize import RESIZE_MODES
from vlcurate.transforms.sources.captions.beam import CaptionPairs, FolderPairs
from vlcurate.transforms.sources.captions.config import CaptionConfig
from vlcurate.transforms.sources.web.inputs import delimiter_of, tables_problem

COMMAND = command("captions")
LISTS = (".parquet", ".csv", ".tsv", ".jsonl")
_DEFAULTS = CaptionConfig()


class CaptionsOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        add_flag(parser, "caption-column", default=_DEFAULTS.caption_column,
                 help="the caption's column in a .csv or .tsv list (its field in .jsonl or .parquet)")
        add_flag(parser, "image-size", type=whole_number(16, 8192), default=_DEFAULTS.image_size,
                 help="pixels the resize mode fits images to")
        add_flag(parser, "resize-mode", choices=RESIZE_MODES, default=_DEFAULTS.resize_mode,
                 help="keep_ratio: shorter side to --image-size; center_crop: then the centre square; border: "
                      "longer side to --image-size, padded black to a square; no: as downloaded")
        add_flag(parser, "resize-only-if-bigger", action="store_true", help="never scale a smaller image up")
        add_flag(parser, "download-threads", type=whole_number(1, 1024), default=_DEFAULTS.threads,
                 help="concurrent downloads per worker process")
        add_flag(parser, "retries", type=whole_number(0, 10), default=_DEFAULTS.retries,
                 help="further tries after a transient failure (timeout, reset, HTTP 429 or 5xx), with backoff")


OPTIONS = (CaptionsOptions, UrlListOptions, NetworkOptions)
# Shared flags captions does nothing with (pipelines/flags.py): no isolated children.
UNUSED_FLAGS = ("render-processes", "worker-memory-mb")


def configure(options: PipelineOptions) -> tuple[CaptionConfig, dict]:
    """The stage config (no models), from the flags (also for `vlcurate run`)."""
    flags = options.view_as(CaptionsOptions)
    network, urls = options.view_as(NetworkOptions), options.view_as(UrlListOptions)
    dataset = options.view_as(DatasetOptions)
    try:
        return CaptionConfig(
            url_column=urls.url_column, caption_column=flags.caption_column, image_size=flags.image_size,
            resize_mode=flags.resize_mode, resize_only_if_bigger=flags.resize_only_if_bigger,
            max_image_pixels=image_pixels(options, _DEFAULTS.max_image_pixels),
            max_file_bytes=dataset.max_file_bytes or _DEFAULTS.max_file_bytes,
            timeout_s=page_timeout(options, _DEFAULTS.timeout_s), retries=flags.retries,
            threads=flags.download_threads, allow_hosts=tuple(network.allow_host or ()), offline=network.offline,
        ), {}
    except ValueError as error:
        raise SystemExit(f"vlcurate captions: {error}") from error


def is_list(source: str) -> bool:
    return source.lower().endswith(LISTS)


def input_problem(source: str, config: CaptionConfig, read_tables: bool = True) -> str | None:
    """Why ``source`` cannot be a captions input, in one line, or None."""
    lowered = source.lower()
    if is_list(lowered):
        if read_tables and delimiter_of(source):
            return tables_problem(source, {config.url_column: "URL", config.caption_column: "caption"})
        return None
    if lowered.endswith((".txt", ".html", ".htm", ".json")):
        return (f"--input {source} is not a form vlcurate captions reads; it takes a .parquet, .csv, .tsv or "
                ".jsonl list with URL and caption columns, or a folder of images with .txt captions beside them")
    return None


def read_records(pipeline, path: str):
    from vlcurate.pipelines.web_screenshots import read_records as list_records

    return list_records(pipeline, path)


def build(pipeline, source: str, config: CaptionConfig, processes: int = 1, staging=None) -> dict:
    """Wire the caption stages onto ``pipeline``; returns their outputs for the sink."""
    if is_list(source):
        return read_records(pipeline, source) | "Captions" >> CaptionPairs(config, staging)
    folder = source.rstrip("/")
    files = list_inputs(pipeline, folder, IMAGE_EXTENSIONS)
    return files | "Captions" >> FolderPairs(folder, config, staging)


def input_units(source: str) -> tuple[int | None, str]:
    """A list's rows (as web counts a URL list's), or a folder's image files."""
    if is_list(source):
        from vlcurate.pipelines.web_screenshots import input_units as list_units

        count, _ = list_units(source)
        return count, "row"
    from vlcurate.pipelines.launch import input_files

    return len(input_files(source.rstrip("/"), IMAGE_EXTENSIONS)), "file"


def run(argv=None) -> dict | None:
    """Run the pipeline; returns the manifest (None for a dry run)."""
    options = PipelineOptions(argv)
    source = input_path(options, COMMAND.word)
    config, models = configure(options)
    problem = input_problem(source, config, read_tables=not is_dry_run(options))
    if problem:  # a usage error: refused before anything starts, naming the input as it was typed
        print(f"vlcurate captions: {problem}", file=sys.stderr)
        raise SystemExit(2)
    if "://" not in source:
        source = os.path.abspath(source)  # a folder's keys come from each file's place in it
    shards = shard_config(options, COMMAND.prefix)
    extensions = source.rsplit(".", 1)[-1].lower() if is_list(source) else IMAGE_EXTENSIONS
    return launch(options, COMMAND.pipeline, source, extensions, "captions", config, shards, build, models,
                  units=input_units)
