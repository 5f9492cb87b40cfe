"""The interleaved pipeline: web pages, EPUB books and PDFs -> interleaved samples in shards.

--input is a folder (searched at any depth) of .html/.htm/.xhtml pages (rendered with their
assets, as `vlcurate web` renders a folder), .epub books and .pdf documents, or a URL list as
`vlcurate web` reads one (.txt, .csv, .tsv, .jsonl, .parquet).

    vlcurate interleaved --input FOLDER|URLS --output DATASET [--max-tokens 2048] [--max-images 8]
                         [--split-level 2] [--min-image-side 64] [--max-image-aspect 4]
                         [--min-chars-per-image 100] [--allow-host HOST:PORT ...] [--offline] [Beam flags]

A document's text blocks and images, in reading order, become samples whose text holds an
<image_placeholder> at each image's place and whose images are KEY.0.png, KEY.1.png, ... (a JPEG
input stays JPEG: KEY.0.jpg). A web page keeps its main content only (trafilatura drops
navigation, footers and ads). Long documents are cut at headings and chapter starts into parts
under --max-tokens and --max-images. Tiny and decorative images, and parts with too little text
per image, are filtered with their reasons.
"""

from __future__ import annotations

import dataclasses
import os
import sys

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from vlcurate.pipelines.inputs import list_inputs
from vlcurate.pipelines.launch import is_dry_run, launch
from vlcurate.pipelines.options import (
    DatasetOptions, NetworkOptions, UrlListOptions, add_flag, image_pixels, input_path, isolation_caps, number, shard_config, whole_number,
)
from vlcurate.pipelines.pdf_pages import PdfPagesOptions
from vlcurate.pipelines.registry import command
from vlcurate.pipelines.web_screenshots import WebScreenshotsOptions, read_records, web_config
from vlcurate.pipelines.web_screenshots import input_units as url_list_units
from vlcurate.transforms.io.staging import Staging
from vlcurate.transforms.runtime.stage import REJECTS
from vlcurate.transforms.sources.interleaved.beam import WEB, FileToTask, InterleavedDocuments
from vlcurate.transforms.sources.interleaved.config import InterleavedConfig
from vlcurate.transforms.sources.web.beam import UrlRecordToTasks
from vlcurate.transforms.sources.web.inputs import input_problem, is_url_list

COMMAND = command("interleaved")

_DEFAULTS = InterleavedConfig()


class InterleavedOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        add_flag(parser, "max-tokens", type=whole_number(16), default=_DEFAULTS.max_tokens,
                 help="estimated text tokens (4 characters each) a sample holds at most")
        add_flag(parser, "max-images", type=whole_number(1), default=_DEFAULTS.max_images,
                 help="images a sample holds at most")
        add_flag(parser, "split-level", type=whole_number(1, 6), default=_DEFAULTS.split_level,
                 help="headings of this level or higher (1: h1 only) start a section; parts are cut between sections")
        add_flag(parser, "min-image-side", type=whole_number(1), default=_DEFAULTS.min_image_side,
                 help="images with a smaller side are dropped (image_tiny)")
        add_flag(parser, "max-image-aspect", type=number(1), default=_DEFAULTS.max_image_aspect,
                 help="images longer than this many times their other side are dropped (image_decorative)")
        add_flag(parser, "max-image-side", type=whole_number(16), default=_DEFAULTS.max_image_side,
                 help="larger images are scaled down to this long side")
        add_flag(parser, "min-chars-per-image", type=whole_number(0), default=_DEFAULTS.min_chars_per_image,
                 help="parts with fewer characters of text per image are filtered (interleaved_too_little_text)")


# What `vlcurate interleaved --help` lists besides DatasetOptions: its own flags, the web
# pipeline's page flags (a page is fetched as `vlcurate web` fetches it) and the PDF pipeline's
# --max-pages (Beam parses every options class into one parser: a flag is defined once).
OPTIONS = (InterleavedOptions, WebScreenshotsOptions, NetworkOptions, UrlListOptions, PdfPagesOptions)
# Flags it does nothing with (pipelines/flags.py): screenshots and page renders, CLIP (a
# document's images are not one image-text pair) and deduplication.
UNUSED_FLAGS = ("viewport", "full-page", "max-page-height", "page-size", "image-format", "jpeg-quality",
                "max-page-pixels", "clip-*", "dedup")


def configure(options: PipelineOptions) -> tuple[InterleavedConfig, dict]:
    """The stage config (no models), from the flags (also for `vlcurate run`)."""
    flags = options.view_as(InterleavedOptions)
    caps = isolation_caps(options, _DEFAULTS.max_file_bytes, _DEFAULTS.worker_memory_mb)
    web = web_config(options)
    timeout = options.view_as(DatasetOptions).page_timeout
    try:
        config = InterleavedConfig(
            max_tokens=flags.max_tokens, max_images=flags.max_images, split_level=flags.split_level,
            min_image_side=flags.min_image_side, max_image_aspect=flags.max_image_aspect,
            max_image_side=flags.max_image_side, min_chars_per_image=flags.min_chars_per_image,
            max_image_pixels=image_pixels(options, _DEFAULTS.max_image_pixels), max_pages=options.view_as(PdfPagesOptions).max_pages,
            timeout_s=_DEFAULTS.timeout_s if timeout is None else timeout,
            web=dataclasses.replace(web, viewports=web.viewports[:1]), **caps,
        )
    except ValueError as error:
        raise SystemExit(f"vlcurate interleaved: {error}") from error
    return config, {}


def build(pipeline: beam.Pipeline, source: str, config: InterleavedConfig, processes: int = 1,
          staging: Staging | None = None) -> dict:
    """Wire the interleaved stages onto ``pipeline``; returns their outputs for the sink."""
    if is_url_list(source):
        records = read_records(pipeline, source)
        planned = records | "ToTasks" >> beam.ParDo(UrlRecordToTasks(config.web)).with_outputs(REJECTS, main=WEB)
        files = pipeline | "NoFiles" >> beam.Create([])
        pages = planned[WEB]
    else:
        folder = source.rstrip("/")
        listed = list_inputs(pipeline, folder, COMMAND.extensions)
        planned = listed | "ToTasks" >> beam.ParDo(FileToTask(folder, config)).with_outputs(REJECTS, WEB, main="files")
        files, pages = planned.files, planned[WEB]
    made = (files, pages) | "Documents" >> InterleavedDocuments(config, processes, staging=staging)
    rejects = (planned[REJECTS], made["rejects"]) | "AllRejects" >> beam.Flatten()
    inputs = (planned[REJECTS], made["inputs"]) | "InputUnits" >> beam.Flatten()
    return {"samples": made["samples"], "rejects": rejects, "inputs": inputs}


def run(argv=None) -> dict | None:
    """Run the pipeline; returns the manifest (None for a dry run)."""
    options = PipelineOptions(argv)
    source = input_path(options, COMMAND.word)
    config, models = configure(options)
    if is_url_list(source):
        problem = input_problem(source, config.web.url_column, read_tables=not is_dry_run(options))
        if problem:  # a usage error: refused before anything starts, naming the input as it was typed
            print(f"vlcurate interleaved: {problem}", file=sys.stderr)
            raise SystemExit(2)
    elif "://" not in source:
        source = os.path.abspath(source)  # a folder's pages are served by their place in it
    shards = shard_config(options, COMMAND.prefix)
    extensions = source.rsplit(".", 1)[-1].lower() if is_url_list(source) else COMMAND.extensions
    return launch(options, COMMAND.pipeline, source, extensions, "interleaved", config, shards, build, models,
                  units=input_units)


def input_units(source: str) -> tuple[int | None, str]:
    """Progress counts a URL list's URLs, or a folder's documents (also in a recipe, which looks
    this function up by its name: launch.py ``input_units``)."""
    if is_url_list(source):
        return url_list_units(source)
    from vlcurate.pipelines.launch import input_files

    return len(input_files(source.rstrip("/"), COMMAND.extensions)), "document"
