"""The Beam stages of the PDF pipelines: inspect documents, fan out pages, then render them and/or
crop their figures, in isolation."""

from __future__ import annotations

import threading

import apache_beam as beam

from vlcurate.transforms.sources.pdf.config import CHILD_MODULES, PdfConfig
from vlcurate.transforms.runtime import progress
from vlcurate.transforms.runtime.head_start import HeadStart
from vlcurate.transforms.runtime.stage import REJECTS, IsolatedStageDoFn
from vlcurate.transforms.io.staging import Staging


# The child imports the PDF core (and PyMuPDF) by name; this process never does.
_PDF = "vlcurate.transforms.sources.pdf.core:"
_CHARTS = "vlcurate.transforms.sources.pdf.figures:"


class _PdfStage(IsolatedStageDoFn):
    preload = CHILD_MODULES

    def __init__(self, config: PdfConfig, processes: int):
        super().__init__(processes, config.page_timeout_s, config.worker_memory_mb, config.ocr.threads)
        self._config = config


class InspectPdf(_PdfStage):
    """File metadata in, one PageTask per page out; a whole-document problem is one reject."""

    stage = "pdf_document"
    counts = progress.INPUTS

    def ref(self, metadata):
        return metadata.path, ""

    def call(self, metadata):
        return _PDF + "inspect_uri", (metadata.path, metadata.size_in_bytes, self._config)

    def outputs(self, metadata, tasks):
        return tasks


class RenderPdfPage(_PdfStage):
    """PageTask in, a document_ocr Sample out."""

    stage = "pdf_page"
    counts = progress.ITEMS

    def ref(self, task):
        return task.uri, task.locator

    def call(self, task):
        return _PDF + "render_page_of_uri", (task, self._config)

    def outputs(self, task, sample):
        return [sample]


class ExtractFigures(_PdfStage):
    """PageTask in, one table_chart Sample per figure out (a page without any: ``no_figures``)."""

    stage = "pdf_figures"
    counts = progress.ITEMS

    def ref(self, task):
        return task.uri, task.locator

    def call(self, task):
        return _CHARTS + "figures_of_uri", (task, self._config)

    def outputs(self, task, samples):
        return samples


# Pages of a document that go to a worker together, in order.
PAGE_RUN = 16


class SpreadPages(beam.PTransform):
    """Page tasks spread over the workers in runs of ``PAGE_RUN`` consecutive pages of one document,
    each run in page order: one big PDF is not pinned to one worker, and a render child still takes
    a document's pages one after another. (A plain Reshuffle hands them out in random order; a child
    then reopened a document for almost every page, 18% more work a page, bench/pdf_pages.py.)"""

    def expand(self, tasks):
        return (
            tasks
            | "ByRun" >> beam.Map(lambda task: ((task.file_sha256, task.uri, task.page_index // PAGE_RUN), task))
            | "GroupRuns" >> beam.GroupByKey()
            | "InOrder" >> beam.FlatMap(lambda run: sorted(run[1], key=lambda task: task.page_index))
        )


class PdfPages(beam.PTransform):
    """File metadata -> {"samples", "rejects", "inputs"}: pages fan out and are spread by a
    reshuffle, then rendered (``pages``) and/or searched for figures (``config.figures``). With
    both, ``samples`` is the pair (pages, figures): two branches, never flattened as samples.

    ``inputs`` holds one element per input unit: each document rejected as a whole, each page
    rendered, and each figure found or page found without one. ``processes`` is how many isolated
    PyMuPDF children each worker process runs at once.
    """

    def __init__(self, config: PdfConfig, processes: int = 1, pages: bool = True, staging: Staging | None = None,
                 ahead: list | None = None):
        super().__init__()
        if not pages and config.figures is None:
            raise ValueError("PdfPages needs pages, figures or both")
        self._config = config
        self._processes = processes
        self._pages = pages
        self._staging = staging  # pages and figures are staged as they are made; a resumed run replays them
        # The input files' metadata (as the pipeline lists them), to start on while the pipeline
        # is built (``head_start``); the caller gives it only where the pipeline runs in this
        # process (``runs_in_this_process``), the one place the stages can take those calls.
        self._ahead = ahead

    def _fresh(self, render: RenderPdfPage) -> bool:
        """Whether no attempt of this run rendered pages yet (a resumed run replays those instead)."""
        return self._staging is None or not self._staging.finished(render.stage)

    def expand(self, files):
        inspect = InspectPdf(self._config, self._processes).warm(files.pipeline)
        documents = files | "Inspect" >> beam.ParDo(inspect).with_outputs(REJECTS, main="tasks")
        tasks = documents.tasks | "SpreadPages" >> SpreadPages()
        samples, rejects, inputs = [], [documents[REJECTS]], [documents[REJECTS]]
        if self._pages:
            render = RenderPdfPage(self._config, self._processes).with_staging(self._staging)
            if self._ahead and self._fresh(render):
                head_start(self._ahead, inspect, render, 2 * self._processes)
            rendered = tasks | "Render" >> beam.ParDo(render).with_outputs(REJECTS, main="samples")
            samples.append(rendered.samples)
            rejects.append(rendered[REJECTS])
            inputs.append(tasks)
        if self._config.figures is not None:
            extract = ExtractFigures(self._config, self._processes).with_staging(self._staging)
            if self._pages:  # the pages' renders count the items; this branch adds samples only
                extract.counts = frozenset({"samples"})
            figures = tasks | "Figures" >> beam.ParDo(extract).with_outputs(REJECTS, main="samples")
            samples.append(figures.samples)
            rejects.append(figures[REJECTS])
            # Counted only: each figure by its key (its bytes stay out of the flatten).
            inputs += [figures.samples | "FigureUnits" >> beam.Map(lambda sample: sample.key), figures[REJECTS]]
        return {
            # Pages and figures stay two branches, staged apart (pipelines/runs.py ``staged``).
            "samples": samples[0] if len(samples) == 1 else tuple(samples),
            "rejects": tuple(rejects) | "PdfRejects" >> beam.Flatten(),
            "inputs": tuple(inputs) | "InputUnits" >> beam.Flatten(),
        }


def head_start(files: list, inspect: InspectPdf, render: RenderPdfPage, in_flight: int) -> threading.Thread:
    """Inspect every document, then render their pages in order, ahead of the pipeline
    (transforms/runtime/head_start.py): the render children work while the pipeline is built and
    the local runner starts (the documents' inspection is cheap; its stage then only collects)."""

    def feed(ahead: HeadStart) -> None:
        inspected = []
        for metadata in files:
            inspected.append(ahead.submit(inspect, metadata))
            if inspected[-1] is None:
                return
        for future in inspected:
            try:
                tasks = future.result()
            except Exception:  # a bad document: its stage makes the reject row
                continue
            for task in tasks:
                if ahead.submit(render, task) is None:
                    return

    return HeadStart(in_flight).run(feed)
