"""The Beam stages of `vlcurate sft`: instruction files in, sft samples out, in-process.

No isolation: records are JSON, and the only native code is Pillow's raster decoders behind a
pixel cap, as in every stage that opens an image.
"""

from __future__ import annotations

import apache_beam as beam

from vlcurate.transforms.sft import SftConfig, read_records, sft_sample
from vlcurate.transforms.stage import REJECTS, StageDoFn


class ReadSftFile(StageDoFn):
    """File metadata in, one SftRecord per line (or array item) out; a file that cannot be read
    at all is one reject."""

    stage = "sft_file"

    def __init__(self, config: SftConfig):
        self._config = config

    def ref(self, metadata):
        return metadata.path, ""

    def run(self, metadata):
        return read_records(metadata.path, self._config)


class ConvertRecord(StageDoFn):
    """SftRecord in, a Sample in DeepSeek-VL's conversation form out, or a reject row."""

    stage = "sft"

    def __init__(self, config: SftConfig):
        self._config = config

    def ref(self, record):
        return record.uri, record.locator

    def run(self, record):
        return [sft_sample(record, self._config)]


class SftRecords(beam.PTransform):
    """File metadata -> {"samples", "rejects", "inputs"}; an input unit is a record, or a file
    rejected as a whole."""

    def __init__(self, config: SftConfig):
        super().__init__()
        self._config = config

    def expand(self, files):
        read = files | "ReadFiles" >> beam.ParDo(ReadSftFile(self._config)).with_outputs(REJECTS, main="records")
        # A file's records arrive together; spread them so that every worker converts a share.
        records = read.records | "SpreadRecords" >> beam.Reshuffle()
        converted = records | "Convert" >> beam.ParDo(ConvertRecord(self._config)).with_outputs(REJECTS, main="samples")
        rejects = (read[REJECTS], converted[REJECTS]) | "SftRejects" >> beam.Flatten()
        inputs = (read.records, read[REJECTS]) | "InputUnits" >> beam.Flatten()
        return {"samples": converted.samples, "rejects": rejects, "inputs": inputs}
