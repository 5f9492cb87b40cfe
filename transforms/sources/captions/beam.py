"""The Beam stages of `vlcurate captions`: list rows to tasks, then downloads on a thread pool per
worker process (or folder images read beside their captions)."""

from __future__ import annotations

import apache_beam as beam

from vlcurate.transforms.runtime import progress
from vlcurate.transforms.runtime.stage import REJECTS, StageDoFn, ThreadedStageDoFn
from vlcurate.transforms.sources.captions.config import CaptionConfig, row_task
from vlcurate.transforms.sources.captions.core import download_pair, folder_pair
from vlcurate.transforms.sources.web.inputs import record_fields, record_ref


class CaptionRowToTask(StageDoFn):
    """(input file, record) -> one CaptionTask; a row without URL or caption is its reject."""

    stage = "caption_input"
    counts = progress.INPUTS

    def __init__(self, config: CaptionConfig):
        self._config = config

    def ref(self, element):
        return record_ref(element)

    def run(self, element):
        what = f"{self._config.url_column} and {self._config.caption_column} fields"
        fields = record_fields(element[1], what)
        if fields is None:  # a bare line: a URL without a caption
            fields = {self._config.url_column: element[1]}
        return [row_task(fields, self._config)]


class DownloadPair(ThreadedStageDoFn):
    """A CaptionTask in, its caption sample out (or the reject row of why not)."""

    stage = "caption_download"
    counts = progress.ITEMS

    def __init__(self, config: CaptionConfig):
        super().__init__(config.threads)
        self._config = config

    def ref(self, task):
        return task.uri, task.key  # one URL may be listed under several captions: the key tells them apart

    def run(self, task):
        return [download_pair(task, self._config)]


class ReadFolderPair(ThreadedStageDoFn):
    """An image file's metadata in, its caption sample (caption from the sidecar .txt) out."""

    stage = "caption_file"
    counts = progress.INPUT_ITEMS

    def __init__(self, folder: str, config: CaptionConfig):
        super().__init__(config.threads)
        self._folder = folder
        self._config = config

    def ref(self, metadata):
        return metadata.path, ""

    def run(self, metadata):
        return [folder_pair(metadata.path, self._folder, self._config)]


class CaptionPairs(beam.PTransform):
    """List records -> {"samples", "rejects", "inputs"}: each row is one input unit."""

    def __init__(self, config: CaptionConfig, staging=None):
        super().__init__()
        self._config = config
        self._staging = staging  # downloaded pairs are staged as they are made; a resumed run replays them

    def expand(self, records):
        tasks = records | "ToTasks" >> beam.ParDo(CaptionRowToTask(self._config)).with_outputs(REJECTS, main="tasks")
        made = (
            tasks.tasks
            | "SpreadTasks" >> beam.Reshuffle()
            | "Download" >> beam.ParDo(DownloadPair(self._config).with_staging(self._staging)).with_outputs(
                REJECTS, main="samples")
        )
        rejects = (tasks[REJECTS], made[REJECTS]) | "CaptionRejects" >> beam.Flatten()
        inputs = (tasks.tasks, tasks[REJECTS]) | "InputUnits" >> beam.Flatten()
        return {"samples": made.samples, "rejects": rejects, "inputs": inputs}


class FolderPairs(beam.PTransform):
    """Image files -> {"samples", "rejects", "inputs"}: each file is one input unit."""

    def __init__(self, folder: str, config: CaptionConfig, staging=None):
        super().__init__()
        self._folder, self._config, self._staging = folder, config, staging

    def expand(self, files):
        made = (
            files
            | "SpreadFiles" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(ReadFolderPair(self._folder, self._config).with_staging(self._staging)).with_outputs(
                REJECTS, main="samples")
        )
        return {"samples": made.samples, "rejects": made[REJECTS], "inputs": files}
