"""The live tally of a run and the line the console prints from it: what each stage's elements count
as, the items known before every input is read, and the counts of worker processes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap

from fixtures import REPO
from vlcurate.pipelines.console_progress import Progress, _Lines
from vlcurate.transforms.runtime import progress

PDF = Progress("vlcurate pdf", 3, "page", "file", interval=10)


def test_inputs_that_fan_out_count_as_their_items_once_read(tmp_path):
    progress.share(str(tmp_path))
    try:
        assert PDF.figures()["known"] == 3  # nothing read: each input counts as one item
        progress.tally("pdf_document", 40, None, progress.INPUTS)  # a PDF of 40 pages
        progress.tally("pdf_document", 0, "not_pdf", progress.INPUTS)
        now = PDF.figures()
        assert (now["known"], now["inputs"], now["rejected"]) == (40 + 1, 2, 1)  # 40 pages, 1 PDF not read yet
        progress.tally("pdf_page", 1, None, progress.ITEMS)
        progress.tally("pdf_page", 0, "page_too_large", progress.ITEMS)
        progress.tally("dedup", 0, "duplicate_exact", frozenset())  # a filter: a row, no item
        now = PDF.figures()
        assert {k: now[k] for k in ("items", "samples", "rejected", "filtered", "stage")} == {
            "items": 2, "samples": 1, "rejected": 2, "filtered": 1, "stage": "dedup"}
    finally:
        progress.share(None)
    assert progress.snapshot()[0] == {}  # each run starts from zero


def test_a_line_says_items_inputs_samples_rejects_rate_and_eta():
    now = {"items": 40, "known": 120, "inputs": 3, "samples": 38, "rejected": 2, "filtered": 0, "stage": "pdf_page"}
    assert _Lines(PDF, io.StringIO()).line(now, 10.0) == (
        "vlcurate pdf: 40/120 pages (33%), inputs 3/3 files, 38 samples, 2 rejected, 4.0 pages/s, ETA 0:20 "
        "[pdf_page], 0:10 elapsed")
    unknown = Progress("vlcurate web", None, "page", "URL")
    assert _Lines(unknown, io.StringIO()).line({**now, "known": None, "filtered": 1, "samples": 1}, 4.0) == (
        "vlcurate web: 40 pages, inputs 3 URLs, 1 sample, 2 rejected, 1 filtered, 10.0 pages/s [pdf_page], 0:04 elapsed")


WORKER = textwrap.dedent("""
    import time
    from vlcurate.transforms.runtime import progress
    for _ in range(3):
        progress.tally("text", 1, None, progress.ITEMS)
    time.sleep(1.5)  # the worker's writer thread puts its counts in the shared folder meanwhile
""")


def test_a_worker_process_counts_are_added_to_the_run(tmp_path):
    progress.share(str(tmp_path))
    try:
        progress.tally("text_file", 3, None, progress.INPUTS)  # this process read the file
        subprocess.run([sys.executable, "-c", WORKER], check=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(REPO)})  # inherits the folder, as Beam's workers do
        tally, _ = progress.snapshot()
        assert (tally["inputs"], tally["items"], tally["samples"]) == (1, 3, 3)
    finally:
        progress.share(None)


def test_a_bundle_of_many_elements_keeps_its_timings():
    # Start and end times are Beam distributions, summed in a signed 64-bit integer: as microseconds
    # since 1970 they overflowed it at about 5,000 elements in one bundle, and the run failed.
    import time

    import apache_beam as beam

    from vlcurate.transforms.runtime.funnel import timing

    def settle(number):
        progress.record("many", time.time(), 1, None)
        return number

    from apache_beam.options.pipeline_options import PipelineOptions

    # Worker processes, as the captions benchmark ran: their bundles' metrics are merged and encoded.
    options = ["--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    pipeline = beam.Pipeline(options=PipelineOptions(options))
    _ = pipeline | beam.Create(range(12_000)) | beam.Map(settle)
    result = pipeline.run()
    result.wait_until_finish()
    throughput, funnel = timing(result.metrics().query())
    assert [row["in"] for row in funnel if row["stage"] == "many"] == [12_000]
    assert 0 < throughput["many"]["seconds"] < 600
