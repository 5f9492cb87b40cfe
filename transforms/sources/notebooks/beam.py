"""The Beam stages of `vlcurate notebooks`: notebook files in, web_code samples out, in-process.

No isolation: nothing is executed, and the only native code is Pillow's PNG and JPEG decoders
behind a pixel cap, as in every stage that opens an image.
"""

from __future__ import annotations

import apache_beam as beam

from vlcurate.transforms.io.files import read_capped
from vlcurate.transforms.sources.notebooks.core import NotebookConfig, pair_plot, plot_tasks
from vlcurate.transforms.runtime import progress
from vlcurate.transforms.runtime.stage import REJECTS, StageDoFn


class ReadNotebook(StageDoFn):
    """File metadata in, one PlotTask per code cell with an image out; a notebook that is invalid,
    too large or without plots is one reject."""

    stage = "notebook"
    counts = progress.INPUTS

    def __init__(self, config: NotebookConfig):
        self._config = config

    def ref(self, metadata):
        return metadata.path, ""

    def run(self, metadata):
        return plot_tasks(read_capped(metadata.path, self._config.max_file_bytes), metadata.path)


class PairPlot(StageDoFn):
    """PlotTask in, a web_code Sample out, or a reject row with the cell as its locator."""

    stage = "notebook_plot"
    counts = progress.ITEMS

    def __init__(self, config: NotebookConfig):
        self._config = config

    def ref(self, task):
        return task.uri, task.locator

    def run(self, task):
        return [pair_plot(task, self._config)]


class NotebookPlots(beam.PTransform):
    """File metadata -> {"samples", "rejects", "inputs"}.

    ``inputs`` holds one element per input unit: each plot cell, and each notebook rejected or
    filtered as a whole, so the manifest's totals balance.
    """

    def __init__(self, config: NotebookConfig):
        super().__init__()
        self._config = config

    def expand(self, files):
        # A listing arrives as one bundle; spread it so that every worker takes a share.
        spread = files | "SpreadFiles" >> beam.Reshuffle()
        notebooks = spread | "Read" >> beam.ParDo(ReadNotebook(self._config)).with_outputs(REJECTS, main="tasks")
        plots = notebooks.tasks | "Pair" >> beam.ParDo(PairPlot(self._config)).with_outputs(REJECTS, main="samples")
        rejects = (notebooks[REJECTS], plots[REJECTS]) | "NotebookRejects" >> beam.Flatten()
        inputs = (notebooks.tasks, notebooks[REJECTS]) | "InputUnits" >> beam.Flatten()
        return {"samples": plots.samples, "rejects": rejects, "inputs": inputs}
