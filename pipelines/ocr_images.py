"""The OCR pipeline: a folder, glob or gs:// prefix of images -> scene_ocr samples in shards.

--input is an image (PNG, JPEG, WebP, BMP, TIFF, GIF), a folder of them (searched at any depth),
a glob, or a gs:// prefix ending in /. Each image becomes one sample: the image (re-encoded
without its metadata), the text read from it as txt, and in json the lines with their boxes and
confidences. An image in which no text is found is filtered (ocr_empty) unless --keep-empty.

    vlcurate ocr --input IMAGES --output DATASET [--ocr-engine ppocr|tesseract]
                 [--max-image-pixels N] [--keep-empty] [Beam flags]
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from vlcurate.pipelines.inputs import list_inputs
from vlcurate.pipelines.launch import launch
from vlcurate.pipelines.options import (
    OcrOptions, add_flag, image_pixels, input_path, isolation_caps, ocr_config, ocr_models, page_timeout, render_processes, shard_config,
)
from vlcurate.transforms.ocr.config import OcrConfig
from vlcurate.transforms.ocr.beam import OcrImages
from vlcurate.pipelines.registry import command
from vlcurate.transforms.io.staging import Staging

COMMAND = command("ocr")

_DEFAULTS = OcrConfig()

class OcrImagesOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        add_flag(parser, "keep-empty", action="store_true",
                 help="keep images in which no text was found (empty txt, ocr.empty true)")


OPTIONS = (OcrImagesOptions, OcrOptions)  # what `vlcurate ocr --help` lists besides DatasetOptions


def images_config(options: PipelineOptions) -> OcrConfig:
    flags = options.view_as(OcrImagesOptions)
    return ocr_config(
        options,
        render_processes(options),
        mode="always",
        max_image_pixels=image_pixels(options, _DEFAULTS.max_image_pixels),
        keep_empty=flags.keep_empty,
        timeout_s=page_timeout(options, _DEFAULTS.timeout_s),
        **isolation_caps(options, _DEFAULTS.max_file_bytes, _DEFAULTS.worker_memory_mb),
    )


def build(pipeline: beam.Pipeline, source: str, config: OcrConfig, processes: int = 1,
          staging: Staging | None = None) -> dict:
    """Wire the OCR stage onto ``pipeline``; returns its outputs for the sink."""
    files = list_inputs(pipeline, source, COMMAND.extensions)
    return files | "OcrImages" >> OcrImages(config, processes, staging=staging)


def configure(options: PipelineOptions) -> tuple[OcrConfig, dict]:
    """The stage config and the model files it uses, from the flags (also for `vlcurate run`)."""
    config = images_config(options)
    return config, ocr_models(config)


def run(argv=None) -> dict | None:
    """Run the pipeline; returns the manifest (None for a dry run)."""
    options = PipelineOptions(argv)
    source = input_path(options)
    config, models = configure(options)
    shards = shard_config(options, COMMAND.prefix)
    return launch(options, COMMAND.pipeline, source, COMMAND.extensions, "ocr", config, shards, build, models)
