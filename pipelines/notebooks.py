"""The notebooks pipeline: Jupyter notebooks -> web_code samples pairing each plot with its code.

--input is a notebook (.ipynb), a folder of them (searched at any depth), a glob, or a gs://
prefix ending in /. Nothing is executed: the plots are the image outputs saved in the notebook.
Each code cell that shows one PNG or JPEG image becomes one sample: the image (re-encoded as PNG,
without metadata) and as txt the cell's code, preceded by the earlier cells that define the names
it uses (magic and shell lines left out). Cells showing several images, and pairs with fewer than
5 lines of code, are filtered; notebooks without plots are filtered as a whole.

    vlcurate notebooks --input NOTEBOOKS --output DATASET [--max-image-pixels N]
                       [--max-file-bytes N] [Beam flags]

--max-image-pixels defaults to 40,000,000 and --max-file-bytes to 64 MiB here.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from vlcurate.pipelines.inputs import list_inputs
from vlcurate.pipelines.launch import launch
from vlcurate.pipelines.options import image_pixels, input_path, isolation_caps, shard_config
from vlcurate.transforms.sources.notebooks.beam import NotebookPlots
from vlcurate.transforms.sources.notebooks.core import NotebookConfig
from vlcurate.pipelines.registry import command

COMMAND = command("notebooks")

_DEFAULTS = NotebookConfig()
OPTIONS = ()  # only the shared flags (DatasetOptions, QualityOptions) apply, less these (no isolated children):
UNUSED_FLAGS = ("page-timeout", "render-processes", "worker-memory-mb")


def notebooks_config(options: PipelineOptions) -> NotebookConfig:
    caps = isolation_caps(options, _DEFAULTS.max_file_bytes, None)  # no isolated children: no memory cap
    try:
        return NotebookConfig(
            max_file_bytes=caps["max_file_bytes"],
            max_image_pixels=image_pixels(options, _DEFAULTS.max_image_pixels),
        )
    except ValueError as error:
        raise SystemExit(f"vlcurate: {error}") from error


def build(pipeline: beam.Pipeline, source: str, config: NotebookConfig, processes: int = 1,
          staging=None) -> dict:
    """Wire the notebook stages onto ``pipeline``; returns their outputs for the sink. Nothing is
    staged early (``staging`` unused): pairing a plot with its code is cheap to do again on resume."""
    files = list_inputs(pipeline, source, "ipynb")
    plots = files | "NotebookPlots" >> NotebookPlots(config)
    return {**plots, "files": files}


def configure(options: PipelineOptions) -> tuple[NotebookConfig, dict]:
    """The stage config and the model files it uses, from the flags (also for `vlcurate run`)."""
    return notebooks_config(options), {}


def run(argv=None) -> dict | None:
    """Run the pipeline; returns the manifest (None for a dry run)."""
    options = PipelineOptions(argv)
    source = input_path(options)
    config, models = configure(options)
    shards = shard_config(options, COMMAND.prefix)
    return launch(options, COMMAND.pipeline, source, COMMAND.extensions, "notebooks", config, shards, build, models)
