"""The data plane: bytes stay where they are made. Every element that crosses a GroupByKey (and so a
CoGroupByKey or a Reshuffle) or becomes a side input, in the PDF, web, OCR and recipe pipelines, is
measured as Beam encodes it, with a Beam distribution metric: none is over 4 KB. A pixel that
travelled through a shuffle would be tens of kilobytes."""

from __future__ import annotations

import itertools

import apache_beam as beam
import pytest
from apache_beam.coders import FastPrimitivesCoder
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter

from fixtures import EXAMPLES
from fixtures.recipes import every_stage_recipe
from vlcurate.pipelines import cli, launch

MAX_ELEMENT_BYTES = 4096
_CODER = FastPrimitivesCoder()  # what the runner encodes an untyped PCollection's elements with


def _measure(element, where: str):
    Metrics.distribution("shuffle", where).update(len(_CODER.encode(element)))
    return element


@pytest.fixture
def measured(monkeypatch):
    """Every GroupByKey and side input of the pipelines built meanwhile gets a measuring step in
    front; returns the {step: largest element in bytes} of the runs, filled as they finish."""
    original_apply = beam.Pipeline.apply
    original_side = beam.pvalue.AsSideInput.__init__
    counter = itertools.count()

    def measure(pipeline, pcoll, where: str):
        return original_apply(pipeline, beam.Map(_measure, where), pcoll, label=f"Measure{next(counter)}[{where}]")

    def apply(self, transform, pvalueish=None, label=None):
        if type(transform) is beam.GroupByKey and isinstance(pvalueish, beam.pvalue.PCollection):
            pvalueish = measure(self, pvalueish, f"gbk:{label or transform.label}")
        return original_apply(self, transform, pvalueish, label)

    def side_input(self, pcoll, *args, **kwargs):
        original_side(self, measure(pcoll.pipeline, pcoll, f"side:{pcoll.producer.full_label}"), *args, **kwargs)

    largest: dict[str, int] = {}
    original_run = launch.run_to_end

    def run_to_end(pipeline):
        result = original_run(pipeline)
        for found in result.metrics().query(MetricsFilter().with_namespace("shuffle"))["distributions"]:
            value = found.committed or found.attempted
            if value is not None and value.count:
                largest[found.key.metric.name] = max(largest.get(found.key.metric.name, 0), value.max)
        return result

    monkeypatch.setattr(beam.Pipeline, "apply", apply)
    monkeypatch.setattr(beam.pvalue.AsSideInput, "__init__", side_input)
    monkeypatch.setattr(launch, "run_to_end", run_to_end)
    return largest


def assert_small(largest: dict[str, int], *expected_steps: str):
    assert largest, "nothing was measured"
    for step in expected_steps:  # the measuring reached the shuffles that matter
        assert any(step in name for name in largest), f"no {step} among {sorted(largest)}"
    too_big = {name: size for name, size in largest.items() if size > MAX_ELEMENT_BYTES}
    assert not too_big, f"elements over {MAX_ELEMENT_BYTES} bytes crossed: {too_big}"


def test_the_pdf_pipeline_shuffles_records_only(measured, tmp_path):
    # Pages of 1024 pixels (PNG of 30+ KB each) with OCR of the scanned one; figures too.
    assert cli.main(["pdf", "--input", str(EXAMPLES / "pdfs"), "--output", str(tmp_path / "pdf"), "--figures",
                     "--dedup", "exact"]) == 0
    assert_small(measured, "GroupBuckets", "GroupRejects", "side:")


def test_the_ocr_pipeline_shuffles_records_only(measured, tmp_path):
    assert cli.main(["ocr", "--input", str(EXAMPLES / "images"), "--output", str(tmp_path / "ocr"),
                     "--dedup", "exact,near"]) == 0
    assert_small(measured, "GroupBuckets", "GroupBands")


@pytest.mark.browser
def test_the_web_pipeline_shuffles_records_only(measured, tmp_path):
    assert cli.main(["web", "--input", str(EXAMPLES / "web"), "--output", str(tmp_path / "web"), "--offline"]) == 0
    assert_small(measured, "GroupBuckets")


def test_a_recipe_with_every_stage_shuffles_records_only(measured, tmp_path):
    recipe = every_stage_recipe(tmp_path)
    assert cli.main(["run", str(recipe), "--no-report", "--progress-interval", "0"]) == 0
    assert_small(measured, "GroupBuckets", "GroupRejects", "GroupBands", "GroupImages", "side:")
