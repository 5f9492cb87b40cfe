"""The PDF pipeline: a folder, glob or gs:// prefix of PDFs -> document_ocr samples in shards.

--input is a PDF, a folder of PDFs (searched at any depth), a glob, or a gs:// prefix ending in /.

    vlcurate pdf --input PDFS --output DATASET [--page-size 1024] [--image-format png|jpeg]
                 [--max-pages N] [--max-page-pixels N] [--page-timeout S]
                 [--ocr auto|always|never] [--ocr-engine ppocr|tesseract] [--figures] [--markdown]
                 [Beam flags]

Pages without a text layer are OCRed (--ocr auto): their txt is the OCR text. With --markdown,
each page's md is the page as markdown (headings, lists, tables, code blocks), from the text layer
by pymupdf4llm or from the OCR text; it is off by default because it makes a page take 4 to 7
times as long (docs/benchmarks.md). With --figures, every figure, chart and table is
also cropped into a table_chart sample (as `vlcurate charts`).
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from vlcurate.pipelines.inputs import list_inputs
from vlcurate.pipelines.launch import input_files, launch
from vlcurate.pipelines.options import (
    OcrOptions, add_flag, input_path, isolation_caps, number, ocr_config, ocr_models, page_timeout, render_processes,
    shard_config, whole_number,
)
from vlcurate.transforms.sources.pdf.config import FigureConfig, PdfConfig
from vlcurate.transforms.sources.pdf.beam import PdfPages
from vlcurate.pipelines.registry import command
from vlcurate.transforms.io.staging import Staging
from vlcurate.transforms.runtime.stage import runs_in_this_process

COMMAND = command("pdf")

_DEFAULTS = PdfConfig()


class PdfPagesOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        add_flag(parser, "page-size", type=whole_number(16), default=_DEFAULTS.page_size,
                 help="pixels on the rendered page's long side")
        add_flag(parser, "image-format", choices=("png", "jpeg"), default=_DEFAULTS.image_format,
                 help="how page images are encoded")
        add_flag(parser, "jpeg-quality", type=whole_number(1, 100), default=_DEFAULTS.jpeg_quality,
                 help="--image-format jpeg: the encoder's quality")
        add_flag(parser, "max-pages", type=whole_number(1), default=_DEFAULTS.max_pages,
                 help="documents with more pages are rejected whole")
        add_flag(parser, "max-page-pixels", type=whole_number(1), default=_DEFAULTS.max_page_pixels,
                 help="a page that would render larger is rejected")
        add_flag(parser, "markdown", action="store_true",
                 help="also each page as markdown, KEY.md (a page then takes 4-7 times as long)")


_FIGURE_DEFAULTS = FigureConfig()


class FigureOptions(PipelineOptions):
    """Figure extraction: `vlcurate charts`, and `vlcurate pdf --figures`."""

    @classmethod
    def _add_argparse_args(cls, parser):
        add_flag(parser, "figures", action="store_true",
                 help="pdf: also crop every figure, chart and table into a table_chart sample")
        add_flag(parser, "figure-dpi", type=whole_number(36, 600), default=_FIGURE_DEFAULTS.dpi,
                 help="least resolution of a crop")
        add_flag(parser, "figure-min-pt", type=number(0, above=True), default=_FIGURE_DEFAULTS.min_figure_pt,
                 help="boxes narrower or lower than this (points) are not figures")


def figure_config(options: PipelineOptions) -> FigureConfig:
    flags = options.view_as(FigureOptions)
    try:
        return FigureConfig(dpi=flags.figure_dpi, min_figure_pt=flags.figure_min_pt)
    except ValueError as error:
        raise SystemExit(f"vlcurate: {error}") from error


OPTIONS = (PdfPagesOptions, FigureOptions, OcrOptions)  # what `vlcurate pdf --help` lists besides DatasetOptions


def pdf_config(options: PipelineOptions, figures: bool | None = None) -> PdfConfig:
    """The PDF settings from the flags; figures are extracted when ``figures`` (or --figures) says."""
    flags = options.view_as(PdfPagesOptions)
    wanted = options.view_as(FigureOptions).figures if figures is None else figures
    return PdfConfig(
        page_size=flags.page_size,
        image_format=flags.image_format,
        jpeg_quality=flags.jpeg_quality,
        max_pages=flags.max_pages,
        max_page_pixels=flags.max_page_pixels,
        markdown=flags.markdown,
        page_timeout_s=page_timeout(options, _DEFAULTS.page_timeout_s),
        ocr=ocr_config(options, render_processes(options)),
        figures=figure_config(options) if wanted else None,
        **isolation_caps(options, _DEFAULTS.max_file_bytes, _DEFAULTS.worker_memory_mb),
    )


def build(pipeline: beam.Pipeline, source: str, config: PdfConfig, processes: int = 1,
          staging: Staging | None = None) -> dict:
    """Wire the PDF stages onto ``pipeline``; returns their outputs for the sink."""
    files = list_inputs(pipeline, source, "pdf")
    ahead = input_files(source, "pdf") if runs_in_this_process(pipeline.options) else None
    pages = files | "PdfPages" >> PdfPages(config, processes, staging=staging, ahead=ahead)
    return {**pages, "files": files}


def configure(options: PipelineOptions) -> tuple[PdfConfig, dict]:
    """The stage config and the model files it uses, from the flags (also for `vlcurate run`)."""
    config = pdf_config(options)
    return config, ocr_models(config.ocr)


def run(argv=None) -> dict | None:
    """Run the pipeline; returns the manifest (None for a dry run)."""
    options = PipelineOptions(argv)
    source = input_path(options)
    config, models = configure(options)
    shards = shard_config(options, COMMAND.prefix)
    return launch(options, COMMAND.pipeline, source, COMMAND.extensions, "pdf", config, shards, build, models)
