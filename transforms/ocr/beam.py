"""The Beam stage of `vlcurate ocr`: image files in, scene_ocr samples out, OCR in isolated children."""

from __future__ import annotations

import apache_beam as beam

from vlcurate.transforms.ocr.config import ImageTask, OcrConfig
from vlcurate.transforms.runtime import progress
from vlcurate.transforms.runtime.stage import REJECTS, IsolatedStageDoFn
from vlcurate.transforms.io.staging import Staging

# The child imports the OCR core (and the engine) by name; this process never does.
_OCR = "vlcurate.transforms.ocr.core:"


class OcrImage(IsolatedStageDoFn):
    """File metadata in, a scene_ocr Sample (or a reject row) out."""

    stage = "ocr_image"
    preload = ("vlcurate.transforms.ocr.core",)
    counts = progress.INPUT_ITEMS

    def __init__(self, config: OcrConfig, processes: int):
        super().__init__(processes, config.timeout_s, config.worker_memory_mb, config.threads)
        self._config = config

    def ref(self, metadata):
        return metadata.path, ""

    def call(self, metadata):
        return _OCR + "ocr_image_uri", (ImageTask(metadata.path, metadata.size_in_bytes), self._config)

    def outputs(self, metadata, sample):
        return [sample]


class OcrImages(beam.PTransform):
    """File metadata -> {"samples", "rejects", "inputs"}; each file is one input unit."""

    def __init__(self, config: OcrConfig, processes: int = 1, staging: Staging | None = None):
        super().__init__()
        self._config = config
        self._processes = processes
        self._staging = staging  # read images are staged as they are made; a resumed run replays them

    def expand(self, files):
        # A listing arrives as one bundle; spread it so that every worker takes a share.
        spread = files | "SpreadFiles" >> beam.Reshuffle()
        ocr = OcrImage(self._config, self._processes).with_staging(self._staging).warm(files.pipeline)
        read = spread | "Read" >> beam.ParDo(ocr).with_outputs(REJECTS, main="samples")
        return {"samples": read.samples, "rejects": read[REJECTS], "inputs": files}
