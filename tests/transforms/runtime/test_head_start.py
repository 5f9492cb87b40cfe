"""The head start: an isolated stage's calls made before its pipeline runs, taken by its DoFn.

Real children render real PDF pages; the DoFns are pickled and unpickled as Beam does, so the call
a DoFn takes is matched by value, as it is in a pipeline.
"""

from __future__ import annotations

import pathlib
import time

import pytest
from apache_beam.internal import pickler

from fixtures import pdf as pdf_fixtures
from vlcurate.transforms.io.blobs import decode
from vlcurate.transforms.io.staging import Staging
from vlcurate.transforms.runtime import head_start
from vlcurate.transforms.runtime.head_start import HeadStart
from vlcurate.transforms.sources.pdf import core as pdf
from vlcurate.transforms.sources.pdf.beam import RenderPdfPage, head_start as pdf_head_start
from vlcurate.transforms.sources.pdf.config import PdfConfig


@pytest.fixture
def pages(tmp_path):
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf_fixtures.text_pdf(3, "ahead"))
    config = PdfConfig(page_size=256)
    tasks = pdf.inspect_uri(str(path), path.stat().st_size, config)
    staging = Staging.of(str(tmp_path / "out"), "pdf", "pdf_pages")
    return config, tasks, staging


def as_beam_has_it(dofn):
    """The DoFn a pipeline runs: a copy made by pickling it, as Beam does."""
    return pickler.loads(pickler.dumps(dofn))


def test_a_stage_takes_the_calls_a_head_start_made_once_and_they_are_the_same_work(pages):
    config, tasks, staging = pages
    render = RenderPdfPage(config, 2).with_staging(staging)
    ahead = HeadStart(in_flight=4)
    made = [ahead.submit(render, task) for task in tasks]
    assert all(future is not None for future in made)

    running = as_beam_has_it(render)
    running.start_bundle()
    taken = [running.submit(task) for task in tasks]
    assert all(mine is theirs for mine, theirs in zip(taken, made))  # the same calls, not new ones
    records = [future.result(timeout=60) for future in taken]
    assert [record.locator for record in records] == ["page=1", "page=2", "page=3"]
    # The stage's progress times each call when it really ran, not when the stage took it.
    time.sleep(0.05)  # the futures' callbacks run just after their results are set
    ran = [head_start.ran(future) for future in taken]
    assert all(started <= finished < time.time() for started, finished in ran)
    # What the head start's child staged is the page the stage renders.
    rendered = pdf.render_page(pdf.open_pdf(pathlib.Path(tasks[1].uri).read_bytes()), tasks[1], config)
    staged = decode(staging.load(records[1]))
    assert staged.images[0].data == rendered.images[0].data
    assert (staged.key, staged.text) == (rendered.key, rendered.text)
    assert staged.provenance == {**rendered.provenance, "pipeline": "pdf_pages"}  # the staging's, as always

    again = running.submit(tasks[0])  # each call is taken once: a second asking makes a new one
    assert again is not made[0]
    assert again.result(timeout=60).sha256 == records[0].sha256


def test_a_stage_with_other_settings_makes_its_own_call_and_the_head_start_stops(pages):
    config, tasks, staging = pages
    ahead = HeadStart(in_flight=4)
    made = ahead.submit(RenderPdfPage(config, 2).with_staging(staging), tasks[0])

    other = as_beam_has_it(RenderPdfPage(PdfConfig(page_size=300), 2).with_staging(staging))
    other.start_bundle()
    own = other.submit(tasks[0])
    assert own is not made
    assert own.result(timeout=60).sha256 != made.result(timeout=60).sha256  # another size, other bytes
    assert ahead.stopped()
    assert ahead.submit(RenderPdfPage(config, 2).with_staging(staging), tasks[1]) is None


def test_the_pdf_feed_inspects_every_document_then_renders_their_pages(pages, tmp_path):
    config, tasks, staging = pages
    from vlcurate.pipelines.launch import input_files
    from vlcurate.transforms.sources.pdf.beam import InspectPdf

    files = input_files(str(tmp_path), "pdf")
    inspect, render = InspectPdf(config, 2), RenderPdfPage(config, 2).with_staging(staging)
    pdf_head_start(files, inspect, render, in_flight=4).join(timeout=120)

    inspecting = as_beam_has_it(inspect)
    inspecting.start_bundle()
    assert inspecting.submit(files[0]).result(timeout=60) == tasks
    rendering = as_beam_has_it(render)
    rendering.start_bundle()
    assert all(head_start.take(render.stage, render.ref(task), rendering.job(task)) is not None for task in tasks)
    assert head_start.take(render.stage, render.ref(tasks[0]), rendering.job(tasks[0])) is None
