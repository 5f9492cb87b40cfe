"""The Beam stages of text-only corpora: files in, text_only samples out, in-process."""

from __future__ import annotations

import apache_beam as beam

from vlcurate.transforms.stage import REJECTS, StageDoFn
from vlcurate.transforms.text import TextConfig, read_text_records, text_sample


class ReadTextFile(StageDoFn):
    stage = "text_file"

    def __init__(self, config: TextConfig):
        self._config = config

    def ref(self, metadata):
        return metadata.path, ""

    def run(self, metadata):
        return read_text_records(metadata.path, self._config)


class TextDocument(StageDoFn):
    stage = "text"

    def __init__(self, config: TextConfig):
        self._config = config

    def ref(self, record):
        return record.uri, record.locator

    def run(self, record):
        return [text_sample(record, self._config)]


class TextDocuments(beam.PTransform):
    """File metadata -> {"samples", "rejects", "inputs"}; an input unit is a document, or a file
    rejected as a whole."""

    def __init__(self, config: TextConfig):
        super().__init__()
        self._config = config

    def expand(self, files):
        read = files | "ReadFiles" >> beam.ParDo(ReadTextFile(self._config)).with_outputs(REJECTS, main="records")
        records = read.records | "SpreadRecords" >> beam.Reshuffle()
        made = records | "Documents" >> beam.ParDo(TextDocument(self._config)).with_outputs(REJECTS, main="samples")
        rejects = (read[REJECTS], made[REJECTS]) | "TextRejects" >> beam.Flatten()
        inputs = (read.records, read[REJECTS]) | "InputUnits" >> beam.Flatten()
        return {"samples": made.samples, "rejects": rejects, "inputs": inputs}
