"""The Beam stages of inputs that hold one record per line or item (SFT conversations, text
documents): files in, one record each out, one sample per record. In-process: records are JSON
or text, and the only native code is Pillow's raster decoders behind a pixel cap.

``read(uri, config)`` yields a file's records (raising Reject when the file cannot be read at all);
``make(record, config)`` turns one record into a Sample (raising Reject). Both are module-level
functions, so the stages pickle.
"""

from __future__ import annotations

import apache_beam as beam

from vlcurate.transforms.runtime import progress
from vlcurate.transforms.runtime.stage import REJECTS, StageDoFn


class ReadRecords(StageDoFn):
    """File metadata in, its records out; a file that cannot be read at all is one reject."""

    counts = progress.INPUTS

    def __init__(self, stage: str, read, config):
        self.stage, self._read, self._config = stage, read, config

    def ref(self, metadata):
        return metadata.path, ""

    def run(self, metadata):
        return self._read(metadata.path, self._config)


class MakeSample(StageDoFn):
    """A record in, its Sample out, or a reject row naming the record's file and locator."""

    counts = progress.ITEMS

    def __init__(self, stage: str, make, config):
        self.stage, self._make, self._config = stage, make, config

    def ref(self, record):
        return record.uri, record.locator

    def run(self, record):
        return [self._make(record, self._config)]


class FileRecords(beam.PTransform):
    """File metadata -> {"samples", "rejects", "inputs"}; an input unit is a record, or a file
    rejected as a whole. Stages are named ``file_stage`` (reading) and ``record_stage``."""

    def __init__(self, read, make, config, file_stage: str, record_stage: str):
        super().__init__()
        self._read, self._make, self._config = read, make, config
        self._file_stage, self._record_stage = file_stage, record_stage

    def expand(self, files):
        read = files | "ReadFiles" >> beam.ParDo(
            ReadRecords(self._file_stage, self._read, self._config)).with_outputs(REJECTS, main="records")
        # A file's records arrive together; spread them so that every worker takes a share.
        records = read.records | "SpreadRecords" >> beam.Reshuffle()
        made = records | "Samples" >> beam.ParDo(
            MakeSample(self._record_stage, self._make, self._config)).with_outputs(REJECTS, main="samples")
        rejects = (read[REJECTS], made[REJECTS]) | "Rejects" >> beam.Flatten()
        inputs = (read.records, read[REJECTS]) | "InputUnits" >> beam.Flatten()
        return {"samples": made.samples, "rejects": rejects, "inputs": inputs}
