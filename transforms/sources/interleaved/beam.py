"""The Beam stages of the interleaved pipeline: inputs to tasks, documents read in isolation.

A folder's EPUB and PDF files become DocumentTasks, its HTML files and a URL list's URLs the web
pipeline's WebTasks (one viewport); EPUB and PDF children have a memory cap, browser children do
not (Chromium reserves far more address space than it uses). A document gives its samples and,
beside them, the rows of what was dropped from it (images, filtered parts).
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics

from vlcurate.transforms.data.rejects import RejectRecord
from vlcurate.transforms.io.files import read_capped
from vlcurate.transforms.io.staging import Staging
from vlcurate.transforms.runtime import progress
from vlcurate.transforms.runtime.stage import REJECTS, IsolatedStageDoFn, StageDoFn
from vlcurate.transforms.sources.interleaved.config import FILE_FORMATS, DocumentTask, InterleavedConfig
from vlcurate.transforms.sources.web.beam import MAX_HTML_FILE_BYTES
from vlcurate.transforms.sources.web.config import folder_tasks

_CORE = "vlcurate.transforms.sources.interleaved.core:"
# Seconds a browser child may take beyond the page budget before it is killed as hung.
_HARD_TIMEOUT_MARGIN_S = 30.0
WEB = "web"  # the tagged output of web page tasks


class FileToTask(StageDoFn):
    """A folder's file -> a DocumentTask (EPUB, PDF) or a WebTask on the ``web`` output (HTML)."""

    stage = "interleaved_input"
    counts = progress.INPUTS

    def __init__(self, folder: str, config: InterleavedConfig):
        self._folder, self._config = folder, config

    def ref(self, metadata):
        return metadata.path, ""

    def run(self, metadata):
        kind = FILE_FORMATS[metadata.path.rsplit(".", 1)[-1].lower()]
        if kind != "html":
            return [DocumentTask(metadata.path, kind)]
        data = read_capped(metadata.path, MAX_HTML_FILE_BYTES)
        return [beam.pvalue.TaggedOutput(WEB, task) for task in folder_tasks(metadata.path, self._folder, data,
                                                                             self._config.web)]


class _Interleave(IsolatedStageDoFn):
    counts = progress.ITEMS

    def __init__(self, config: InterleavedConfig, processes: int, timeout_s: float, memory_limit_mb: int | None):
        super().__init__(processes, timeout_s, memory_limit_mb)
        self._config = config

    def ref(self, task):
        return task.uri, ""

    def outputs(self, task, results):
        out = []
        for result in results:
            if isinstance(result, RejectRecord):
                Metrics.counter(result.stage, result.reason).inc()
                out.append(beam.pvalue.TaggedOutput(REJECTS, result))
            else:
                out.append(result)
        return out


class InterleaveFile(_Interleave):
    stage = "interleaved_document"
    preload = ("vlcurate.transforms.sources.interleaved.core",)

    def __init__(self, config: InterleavedConfig, processes: int):
        super().__init__(config, processes, config.timeout_s, config.worker_memory_mb)

    def call(self, task):
        return _CORE + "interleave_file", (task, self._config)


class InterleavePage(_Interleave):
    stage = "interleaved_page"
    preload = ("vlcurate.transforms.sources.interleaved.core",)

    def __init__(self, config: InterleavedConfig, processes: int):
        super().__init__(config, processes, config.web.page_timeout_s + _HARD_TIMEOUT_MARGIN_S, None)

    def call(self, task):
        return _CORE + "interleave_page", (task, self._config)


class InterleavedDocuments(beam.PTransform):
    """(file tasks, web tasks) -> {"samples", "rejects", "inputs"}. An input unit is a sample, or a
    row: a document rejected whole, an image dropped, a part filtered."""

    def __init__(self, config: InterleavedConfig, processes: int = 1, staging: Staging | None = None):
        super().__init__()
        self._config, self._processes, self._staging = config, processes, staging

    def expand(self, tasks):
        files, pages = tasks
        samples, rejects = [], []
        for name, stream, stage in (("Files", files, InterleaveFile), ("Pages", pages, InterleavePage)):
            fn = stage(self._config, self._processes).with_staging(self._staging)
            made = (stream | f"Spread{name}" >> beam.Reshuffle()
                    | f"Read{name}" >> beam.ParDo(fn).with_outputs(REJECTS, main="samples"))
            samples.append(made.samples)
            rejects.append(made[REJECTS])
        merged = tuple(samples) | "Samples" >> beam.Flatten()
        rows = tuple(rejects) | "Rejects" >> beam.Flatten()
        # Counted only: each sample by its key (its bytes stay out of the flatten).
        units = (merged | "SampleUnits" >> beam.Map(lambda sample: sample.key), rows) | "Units" >> beam.Flatten()
        return {"samples": merged, "rejects": rows, "inputs": units}
