"""The Beam stages of the PDF pipeline: inspect documents, fan out pages, render them in isolation."""

from __future__ import annotations

import apache_beam as beam

from vlcurate.transforms.pdf_tasks import PdfConfig
from vlcurate.transforms.stage import REJECTS, IsolatedStageDoFn


# The child imports the PDF core (and PyMuPDF) by name; this process never does.
_PDF = "vlcurate.transforms.pdf:"


class _PdfStage(IsolatedStageDoFn):
    def __init__(self, config: PdfConfig, processes: int):
        super().__init__(processes, config.page_timeout_s, config.worker_memory_mb)
        self._config = config


class InspectPdf(_PdfStage):
    """File metadata in, one PageTask per page out; a whole-document problem is one reject."""

    stage = "pdf_document"

    def ref(self, metadata):
        return metadata.path, ""

    def call(self, metadata):
        return _PDF + "inspect_uri", (metadata.path, metadata.size_in_bytes, self._config)

    def outputs(self, metadata, tasks):
        return tasks


class RenderPdfPage(_PdfStage):
    """PageTask in, a document_ocr Sample out."""

    stage = "pdf_page"

    def ref(self, task):
        return task.uri, task.locator

    def call(self, task):
        return _PDF + "render_page_of_uri", (task, self._config)

    def outputs(self, task, sample):
        return [sample]


class PdfPages(beam.PTransform):
    """File metadata -> {"samples", "rejects", "inputs"}: pages fan out and are spread by a reshuffle.

    ``inputs`` holds one element per input unit: each page, and each document rejected as a whole.
    ``processes`` is how many isolated PyMuPDF children each worker process runs at once.
    """

    def __init__(self, config: PdfConfig, processes: int = 1):
        super().__init__()
        self._config = config
        self._processes = processes

    def expand(self, files):
        inspect = InspectPdf(self._config, self._processes)
        documents = files | "Inspect" >> beam.ParDo(inspect).with_outputs(REJECTS, main="tasks")
        # One big PDF must not pin all its pages to one worker.
        render = RenderPdfPage(self._config, self._processes)
        samples = (
            documents.tasks
            | "SpreadPages" >> beam.Reshuffle()
            | "Render" >> beam.ParDo(render).with_outputs(REJECTS, main="samples")
        )
        rejects = (documents[REJECTS], samples[REJECTS]) | "PdfRejects" >> beam.Flatten()
        inputs = (documents.tasks, documents[REJECTS]) | "InputUnits" >> beam.Flatten()
        return {"samples": samples.samples, "rejects": rejects, "inputs": inputs}
