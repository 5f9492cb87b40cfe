"""The web pipeline: URLs (or a folder of .html files) -> web_code samples in shards.

--input is a .txt (a URL a line), .csv or .tsv (a header row, a url column), .jsonl or .parquet (a
url field) file, or a folder of .html files rendered with their assets.

    vlcurate web --input URLS.txt|URLS.csv|URLS.tsv|URLS.jsonl|URLS.parquet|FOLDER --output DATASET
                 [--url-column url] [--viewport 1024x1024 ...] [--full-page] [--allow-host HOST:PORT ...]
                 [--ocr auto|always|never] [--ocr-engine ppocr|tesseract] [Beam flags]

A page without visible text gets the OCR of its viewport screenshot as txt (--ocr auto).
"""

from __future__ import annotations

import argparse
import os
import sys

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.options.pipeline_options import PipelineOptions

from vlcurate.pipelines.inputs import list_inputs
from vlcurate.pipelines.launch import is_dry_run, launch
from vlcurate.pipelines.options import (
    NetworkOptions, OcrOptions, UrlListOptions, add_flag, input_path, number, ocr_config, ocr_models, page_timeout,
    render_processes, shard_config, whole_number,
)
from vlcurate.transforms.runtime.stage import REJECTS
from vlcurate.transforms.sources.web.config import WebConfig, parse_viewport
from vlcurate.transforms.sources.web.beam import HtmlFileToTasks, UrlRecordToTasks, WebPages
from vlcurate.transforms.sources.web.inputs import delimiter_of, input_problem, is_url_list, table_records
from vlcurate.pipelines.registry import command
from vlcurate.transforms.io.staging import Staging

COMMAND = command("web")

_DEFAULTS = WebConfig()


class WebScreenshotsOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        add_flag(parser, "viewport", action="append", default=None, type=viewport_size,
                 help="WIDTHxHEIGHT; repeat for several (default 1024x1024)")
        add_flag(parser, "full-page", action="store_true", help="also a full-page screenshot, up to --max-page-height")
        add_flag(parser, "max-page-height", type=whole_number(16), default=_DEFAULTS.max_page_height,
                 help="--full-page: pixels the whole-page screenshot is cut at")
        add_flag(parser, "settle", type=number(0), default=_DEFAULTS.settle_s,
                 help="seconds to wait for the network to go quiet after load")
        add_flag(parser, "max-page-bytes", type=whole_number(1), default=_DEFAULTS.max_page_bytes,
                 help="bytes a page may pull over the network")
        add_flag(parser, "alt-text", action="store_true",
                 help="also a caption sample per visible image with a caption-like alt text (its image fetched "
                      "through the guard, resized like vlcurate captions' defaults)")
        add_flag(parser, "recycle-pages", type=whole_number(1), default=_DEFAULTS.recycle_pages,
                 help="relaunch each browser after this many pages")


def viewport_size(text: str) -> str:
    """An argparse type: WIDTHxHEIGHT within the sizes WebConfig takes (a bad one is a usage error,
    exit 2, like any other malformed flag value)."""
    try:
        width, height = parse_viewport(text)
    except ValueError:
        width = height = 0
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise argparse.ArgumentTypeError(f"must be WIDTHxHEIGHT, each from 16 to 8192 (e.g. 1024x768), not {text}")
    return text


viewport_size.metavar = "WxH"


OPTIONS = (WebScreenshotsOptions, NetworkOptions, UrlListOptions, OcrOptions)  # what `vlcurate web --help` lists besides DatasetOptions
UNUSED_FLAGS = ("max-file-bytes", "worker-memory-mb")  # shared flags web does nothing with (pipelines/flags.py)


def web_config(options: PipelineOptions) -> WebConfig:
    flags = options.view_as(WebScreenshotsOptions)
    network, urls = options.view_as(NetworkOptions), options.view_as(UrlListOptions)
    try:
        viewports = tuple(parse_viewport(v) for v in (flags.viewport or ["1024x1024"]))
        return WebConfig(
            viewports=viewports,
            full_page=flags.full_page,
            max_page_height=flags.max_page_height,
            page_timeout_s=page_timeout(options, _DEFAULTS.page_timeout_s),
            settle_s=flags.settle,
            max_page_bytes=flags.max_page_bytes,
            allow_hosts=tuple(network.allow_host or ()),
            offline=network.offline,
            recycle_pages=flags.recycle_pages,
            url_column=urls.url_column,
            alt_text=flags.alt_text,
            ocr=ocr_config(options, render_processes(options)),
        )
    except ValueError as error:
        raise SystemExit(f"vlcurate web: {error}") from error


def read_records(pipeline, path: str):
    """(input file, record) pairs: a text or JSON line, a parquet row as a dict, or a table row.

    validate=False: the launch has already checked the input exists (prepare), and a dry run for
    Dataflow must not reach for gs:// at construction.
    """
    if delimiter_of(path):  # read whole: a quoted CSV field may hold a newline
        tables = pipeline | "ListTables" >> fileio.MatchFiles(path)
        return tables | "ReadRows" >> beam.FlatMap(lambda meta: table_records(meta.path))
    if path.lower().endswith(".parquet"):
        rows = pipeline | "ReadRows" >> beam.io.ReadFromParquet(path, validate=False)
        return rows | "Tag" >> beam.Map(lambda row: (path, row))
    return (
        pipeline
        | "ReadLines" >> beam.io.ReadFromText(path, validate=False)
        | "SkipBlank" >> beam.Filter(lambda line: line.strip() and not line.lstrip().startswith("#"))
        | "Tag" >> beam.Map(lambda line: (path, line.strip()))
    )


def input_units(source: str) -> tuple[int | None, str]:
    """(how many, what) input units progress counts: a URL list's records, counted as
    ``read_records`` reads them (None when the list cannot be read here), or a folder's .html files."""
    if not is_url_list(source):
        from vlcurate.pipelines.launch import input_files

        return len(input_files(source.rstrip("/"), "html")), "file"
    from vlcurate.transforms.io.files import open_for_reading

    try:
        if delimiter_of(source):  # a table's rows, each an input (a quoted field may hold a newline)
            return sum(1 for _ in table_records(source)), "URL"
        with open_for_reading(source) as handle:
            if source.lower().endswith(".parquet"):
                import pyarrow.parquet as pq

                return pq.ParquetFile(handle).metadata.num_rows, "URL"
            return sum(1 for line in handle if line.strip() and not line.lstrip().startswith(b"#")), "URL"
    except Exception:  # unreadable here: the run itself reports it
        return None, "URL"


def build(pipeline, source: str, config: WebConfig, processes: int = 1, staging: Staging | None = None) -> dict:
    """Wire the web stages onto ``pipeline``; returns their outputs for the sink."""
    if is_url_list(source):
        records = read_records(pipeline, source)
        tasks = records | "ToTasks" >> beam.ParDo(UrlRecordToTasks(config)).with_outputs(REJECTS, main="tasks")
    else:
        folder = source.rstrip("/")
        files = list_inputs(pipeline, folder, "html")
        tasks = files | "ToTasks" >> beam.ParDo(HtmlFileToTasks(folder, config)).with_outputs(REJECTS, main="tasks")
    pages = tasks.tasks | "WebPages" >> WebPages(config, processes, staging=staging)
    rejects = (tasks[REJECTS], pages["rejects"]) | "WebRejects" >> beam.Flatten()
    units = [tasks.tasks, tasks[REJECTS]]
    if config.alt_text:  # each image-caption pair beside its page is an input unit of its own, as a PDF's figures are
        units.append(pages["samples"] | "AltTextUnits" >> beam.FlatMap(
            lambda sample: [sample.key] if sample.category == "caption" else []))
    inputs = tuple(units) | "InputUnits" >> beam.Flatten()
    return {"samples": pages["samples"], "rejects": rejects, "inputs": inputs}


def run(argv=None) -> dict | None:
    """Run the pipeline; returns the manifest (None for a dry run)."""
    options = PipelineOptions(argv)
    source = input_path(options, COMMAND.word)
    config, models = configure(options)
    problem = input_problem(source, config.url_column, read_tables=not is_dry_run(options))
    if problem:  # a usage error: refused before anything starts, naming the input as it was typed
        print(f"vlcurate web: {problem}", file=sys.stderr)
        raise SystemExit(2)
    if "://" not in source:
        source = os.path.abspath(source)  # the folder mode serves files by their place in it
    shards = shard_config(options, COMMAND.prefix)
    return launch(options, COMMAND.pipeline, source, extensions(source), "web", config, shards, build, models,
                  units=input_units)


def configure(options: PipelineOptions) -> tuple[WebConfig, dict]:
    """The stage config and the model files it uses, from the flags (also for `vlcurate run`)."""
    config = web_config(options)
    return config, ocr_models(config.ocr)


def extensions(source: str) -> str:
    """What a folder input is filtered by: a URL list names its own kind, a folder holds HTML."""
    return source.rsplit(".", 1)[-1].lower() if is_url_list(source) else "html"
