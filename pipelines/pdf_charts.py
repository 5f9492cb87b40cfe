"""The charts pipeline: PDFs -> one table_chart sample per figure, chart or table on their pages.

--input is a PDF, a folder of PDFs (searched at any depth), a glob, or a gs:// prefix ending in /.
Each figure becomes one sample: the crop as the image, its caption as txt, and in json a `chart`
object (page, bbox in PDF points, kind: chart/table/photo/diagram, found_by, caption; for a vector
chart also data_csv and data_markdown, or data_reason when its values cannot be read; for a photo
data_reason). A page without figures is filtered (no_figures).

    vlcurate charts --input PDFS --output DATASET [--figure-dpi 144] [--figure-min-pt 48]
                    [--max-pages N] [--max-page-pixels N] [--page-timeout S] [Beam flags]
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from vlcurate.pipelines.inputs import list_inputs
from vlcurate.pipelines.launch import launch
from vlcurate.pipelines.options import input_path, shard_config
from vlcurate.pipelines.pdf_pages import FigureOptions, PdfPagesOptions, pdf_config
from vlcurate.transforms.sources.pdf.beam import PdfPages
from vlcurate.pipelines.registry import command
from vlcurate.transforms.io.staging import Staging

COMMAND = command("charts")

OPTIONS = (FigureOptions, PdfPagesOptions)  # what `vlcurate charts --help` lists besides DatasetOptions
# Flags charts does nothing with (pipelines/flags.py): figures are always cropped, as PNG at --figure-dpi.
UNUSED_FLAGS = ("figures", "page-size", "image-format", "jpeg-quality")


def build(pipeline: beam.Pipeline, source: str, config, processes: int = 1, staging: Staging | None = None) -> dict:
    """Wire the figure stages onto ``pipeline``; returns their outputs for the sink."""
    files = list_inputs(pipeline, source, "pdf")
    figures = files | "PdfFigures" >> PdfPages(config, processes, pages=False, staging=staging)
    return {**figures, "files": files}


def configure(options: PipelineOptions) -> tuple:
    """The stage config and the model files it uses, from the flags (also for `vlcurate run`)."""
    return pdf_config(options, figures=True), {}


def run(argv=None) -> dict | None:
    """Run the pipeline; returns the manifest (None for a dry run)."""
    options = PipelineOptions(argv)
    source = input_path(options)
    config, models = configure(options)
    shards = shard_config(options, COMMAND.prefix)
    return launch(options, COMMAND.pipeline, source, COMMAND.extensions, "pdf", config, shards, build, models)
