"""The Beam stages of the web pipeline: input records to page tasks, pages rendered in isolation."""

from __future__ import annotations

import apache_beam as beam

from vlcurate.transforms.io.files import read_capped
from vlcurate.transforms.runtime import progress
from vlcurate.transforms.runtime.stage import REJECTS, IsolatedStageDoFn, StageDoFn
from vlcurate.transforms.sources.web.config import WebConfig, folder_tasks, url_tasks
from vlcurate.transforms.sources.web.core import render_web_task
from vlcurate.transforms.sources.web.inputs import record_fields, record_ref
from vlcurate.transforms.io.staging import Staging

# Seconds a child may take beyond the page budget (a browser launch, a slow screenshot) before
# it is killed as hung: the page's own budget is enforced inside, this is the backstop.
_HARD_TIMEOUT_MARGIN_S = 30.0
MAX_HTML_FILE_BYTES = 20 * 1024 * 1024


class UrlRecordToTasks(StageDoFn):
    """(input file, record) -> one WebTask per viewport. A record is a text line, a JSON line, a
    parquet row or a table row (inputs.py); anything but the URL (``config.url_column``) in a JSON
    line or a row is kept as the sample's metadata."""

    stage = "web_input"
    counts = progress.INPUTS

    def __init__(self, config: WebConfig):
        self._config = config

    def ref(self, element):
        return record_ref(element)

    def run(self, element):
        _, record = element
        fields = record_fields(record, f"a {self._config.url_column} field")
        if fields is None:
            return url_tasks(record, {}, self._config)  # a .txt line: the URL alone
        url = fields.pop(self._config.url_column, None)
        return url_tasks(url, fields, self._config)


class HtmlFileToTasks(StageDoFn):
    """A local .html file (folder input mode) -> one WebTask per viewport."""

    stage = "web_input"
    counts = progress.INPUTS

    def __init__(self, folder: str, config: WebConfig):
        self._folder = folder
        self._config = config

    def ref(self, metadata):
        return metadata.path, ""

    def run(self, metadata):
        data = read_capped(metadata.path, MAX_HTML_FILE_BYTES)
        return folder_tasks(metadata.path, self._folder, data, self._config)


class RenderWebPage(IsolatedStageDoFn):
    """WebTask in, a web_code Sample out; each child process holds one guarded browser."""

    stage = "web_page"
    preload = ("vlcurate.transforms.sources.web.core",)
    counts = progress.ITEMS

    def __init__(self, config: WebConfig, processes: int):
        # No address-space cap: Chromium reserves far more virtual memory than it uses.
        super().__init__(processes, config.page_timeout_s + _HARD_TIMEOUT_MARGIN_S, memory_limit_mb=None,
                         threads=config.ocr.threads)
        self._config = config

    def ref(self, task):
        return task.uri, task.locator

    def call(self, task):
        return render_web_task, (task, self._config)

    def outputs(self, task, result):
        return result if isinstance(result, list) else [result]  # a page, then its alt-text pairs


class WebPages(beam.PTransform):
    """Tasks -> {"samples", "rejects"}: spread by a reshuffle, rendered in ``processes`` browsers."""

    def __init__(self, config: WebConfig, processes: int = 1, staging: Staging | None = None):
        super().__init__()
        self._config = config
        self._processes = processes
        self._staging = staging  # screenshots are staged as they are made; a resumed run replays them

    def expand(self, tasks):
        rendered = (
            tasks
            | "SpreadPages" >> beam.Reshuffle()
            | "Render" >> beam.ParDo(RenderWebPage(self._config, self._processes).with_staging(self._staging)
                                     .warm(tasks.pipeline)).with_outputs(
                REJECTS, main="samples"
            )
        )
        return {"samples": rendered.samples, "rejects": rendered[REJECTS]}
