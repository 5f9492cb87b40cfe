"""The PDF pipeline on a real Beam runner (FnApiRunner): stages, sink, manifest, CLI, Dataflow dry run."""

from __future__ import annotations

import ctypes
import hashlib
import json
import pathlib
import time

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
import webdataset as wds
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from fixtures import pdf as pdf_fixtures
from fixtures.dataflow import translate_for_dataflow
from vlcurate.pipelines import cli, pdf_pages
from vlcurate.pipelines.inputs import list_inputs
from vlcurate.transforms.sources.pdf.core import PdfConfig
from vlcurate.transforms.sources.pdf.beam import PdfPages
from vlcurate.transforms.data.sample import make_key
from vlcurate.transforms.io.shard_reader import read_shard
from vlcurate.transforms.runtime.stage import REJECTS, IsolatedStageDoFn
from fixtures import EXAMPLES

FAST = ["--page-size", "256"]


def sha256_of(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write(folder: pathlib.Path, name: str, data: bytes) -> pathlib.Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def mixed_inputs(tmp_path):
    """Good PDFs (one of them twice, under two names) and one of each whole-document failure."""
    folder = tmp_path / "in"
    good = pdf_fixtures.text_pdf(3, "alpha", title="Alpha")
    write(folder, "alpha.pdf", good)
    write(folder, "copies/alpha-again.pdf", good)  # same bytes: same keys, one kept
    write(folder, "nested/deeper/beta.pdf", pdf_fixtures.text_pdf(2, "beta"))
    write(folder, "scan.pdf", pdf_fixtures.scanned_pdf())
    write(folder, "not-really.pdf", pdf_fixtures.NOT_A_PDF)
    write(folder, "truncated.pdf", pdf_fixtures.truncated_pdf())
    write(folder, "locked.pdf", pdf_fixtures.encrypted_pdf())
    write(folder, "empty.pdf", pdf_fixtures.zero_page_pdf())
    write(folder, "notes.txt", b"not listed: a folder input takes *.pdf only")
    return folder


EXPECTED_DOCUMENT_REJECTS = {
    ("not-really.pdf", "not_pdf"),
    ("truncated.pdf", "pdf_corrupt"),
    ("locked.pdf", "pdf_encrypted"),
    ("empty.pdf", "pdf_empty"),
}


def test_pdf_pages_transform_outputs_samples_rejects_and_input_units(mixed_inputs):
    alpha_sha = hashlib.sha256((mixed_inputs / "alpha.pdf").read_bytes()).hexdigest()
    config = PdfConfig(page_size=256)
    with TestPipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as pipeline:
        files = list_inputs(pipeline, str(mixed_inputs), "pdf")
        out = files | PdfPages(config, processes=2)
        keyed = out["samples"] | "Keys" >> beam.Map(lambda s: (pathlib.Path(s.uri).name, s.locator, s.key))
        reasons = out["rejects"] | "Reasons" >> beam.Map(lambda r: (pathlib.Path(r.uri).name, r.reason))
        units = out["inputs"] | "Count" >> beam.combiners.Count.Globally()
        needs_ocr = (
            out["samples"] | "Scan" >> beam.Filter(lambda s: s.meta["needs_ocr"]) | beam.Map(lambda s: s.uri[-8:])
        )
        expected_keys = [("alpha.pdf", f"page={n}", make_key("pdf", alpha_sha, f"page={n}")) for n in (1, 2, 3)]
        assert_that(
            keyed | "Alpha" >> beam.Filter(lambda k: k[0] == "alpha.pdf"), equal_to(expected_keys), label="AlphaKeys"
        )
        names = keyed | "Names" >> beam.Map(lambda k: k[0])
        assert_that(
            names,
            equal_to(["alpha.pdf"] * 3 + ["alpha-again.pdf"] * 3 + ["beta.pdf"] * 2 + ["scan.pdf"]),
            label="PagesPerFile",
        )
        assert_that(reasons, equal_to(sorted(EXPECTED_DOCUMENT_REJECTS)), label="Rejects")
        # 9 pages + 4 documents rejected whole
        assert_that(units, equal_to([13]), label="InputUnits")
        assert_that(needs_ocr, equal_to(["scan.pdf"]), label="NeedsOcr")


def run_cli(argv) -> dict:
    assert cli.main(["pdf", *argv]) == 0
    output = pathlib.Path(argv[argv.index("--output") + 1])
    return json.loads((output / "manifest.json").read_text())


def test_run_writes_a_balanced_dataset_readable_by_webdataset(mixed_inputs, tmp_path, capsys):
    output = tmp_path / "out"
    manifest = run_cli(["--input", str(mixed_inputs), "--output", str(output), *FAST, "--markdown"])
    printed = capsys.readouterr().out
    assert f"shards        {output}/shards/: " in printed
    assert "pdf_encrypted 1" in next(line for line in printed.splitlines() if line.startswith("rejected "))

    totals = manifest["totals"]
    # 9 pages (3 of them duplicates) + 4 whole-document rejects
    assert totals == {"inputs": 13, "samples": 6, "rejected": 4, "filtered": 3, "balanced": True}
    assert manifest["counts"] == {"files": 8, "inputs": 13}
    assert manifest["rejects"]["by_reason"] == {
        "duplicate_key": 3, "not_pdf": 1, "pdf_corrupt": 1, "pdf_empty": 1, "pdf_encrypted": 1,
    }
    assert manifest["rejects"]["by_stage"]["sink"] == {"duplicate_key": 3}
    assert manifest["categories"] == {"document_ocr": 6}
    assert manifest["config"]["pdf"]["page_size"] == 256
    assert manifest["versions"]["pymupdf"] and manifest["versions"]["apache-beam"] == beam.__version__

    [shard] = manifest["shards"]
    tar = output / shard["name"]
    assert shard["sha256"] == sha256_of(tar) and shard["bytes"] == tar.stat().st_size
    assert shard["index"]["sha256"] == sha256_of(output / shard["index"]["name"])
    assert manifest["rejects"]["files"][0]["sha256"] == sha256_of(output / manifest["rejects"]["files"][0]["name"])

    # The duplicate copy lost to the smallest uri; both copies are accounted for.
    samples = list(read_shard(str(tar)))
    assert [s.key for s in samples] == sorted(s.key for s in samples)
    assert sorted(pathlib.Path(s.uri).name for s in samples) == ["alpha.pdf"] * 3 + ["beta.pdf"] * 2 + ["scan.pdf"]
    alpha_page_2 = next(s for s in samples if s.uri.endswith("alpha.pdf") and s.locator == "page=2")
    assert alpha_page_2.text == "alpha heading 2\n\nBody text of alpha page 2."
    assert max(alpha_page_2.images[0].width, alpha_page_2.images[0].height) == 256
    assert alpha_page_2.meta["pdf"]["title"] == "Alpha" and alpha_page_2.meta["pdf"]["page_count"] == 3

    # The webdataset reader sees the same samples, members and bytes.
    read = {s["__key__"]: s for s in wds.WebDataset(str(tar), shardshuffle=False)}
    assert sorted(read) == [s.key for s in samples]
    assert read[alpha_page_2.key]["png"] == alpha_page_2.images[0].data
    assert json.loads(read[alpha_page_2.key]["json"])["locator"] == "page=2"
    assert read[alpha_page_2.key]["md"] == b"# alpha heading 2\n\nBody text of alpha page 2.\n"  # KEY.md

    index = pq.read_table(output / shard["index"]["name"]).to_pylist()
    assert [row["key"] for row in index] == [s.key for s in samples]
    assert {row["shard"] for row in index} == {"pdf-000000"}
    rejects = pq.read_table(output / "rejects" / "pdf-rejects-000000.parquet").to_pylist()
    assert {(pathlib.Path(r["uri"]).name, r["reason"]) for r in rejects if r["stage"] == "pdf_document"} == (
        EXPECTED_DOCUMENT_REJECTS
    )
    duplicates = [r for r in rejects if r["reason"] == "duplicate_key"]
    assert {pathlib.Path(r["uri"]).name for r in duplicates} == {"alpha-again.pdf"}
    assert all(r["detail"] == f"kept {mixed_inputs / 'alpha.pdf'}" for r in duplicates)


def test_multi_process_and_in_process_runs_give_identical_files(tmp_path):
    folder = tmp_path / "in"
    for number in range(4):
        write(folder, f"doc{number}.pdf", pdf_fixtures.text_pdf(3 + number, f"doc{number}"))
    write(folder, "bad.pdf", pdf_fixtures.NOT_A_PDF)
    flags = ["--input", str(folder), *FAST, "--max-samples-per-shard", "4"]
    one = run_cli([*flags, "--output", str(tmp_path / "one")])
    two = run_cli([
        *flags, "--output", str(tmp_path / "two"),
        "--direct_running_mode=multi_processing", "--direct_num_workers=2", "--render-processes", "1",
    ])
    # the dataset's files; its manifests and run records (runs/) hold the times and the Beam flags
    files_one = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.*")
                       if p.name != "manifest.json" and p.parent.name != "runs")
    files_two = sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*.*")
                       if p.name != "manifest.json" and p.parent.name != "runs")
    assert files_one == files_two
    # 18 samples at most 4 a shard: 5 shards at least, numbered without gaps.
    shards = [p for p in files_one if p.parts[0] == "shards"]
    assert len(shards) >= 5
    assert [p.name for p in shards] == [f"pdf-{n:06d}.tar" for n in range(len(shards))]
    assert all(p.name.endswith(".tar") or p.name.endswith(".parquet") for p in files_one)
    for relative in files_one:
        assert sha256_of(tmp_path / "one" / relative) == sha256_of(tmp_path / "two" / relative), relative
    assert one["shards"] == two["shards"]
    assert one["totals"] == two["totals"] == {
        "inputs": 19, "samples": 18, "rejected": 1, "filtered": 0, "balanced": True,
    }
    assert two["config"]["beam"]["direct_num_workers"] == 2


def test_page_caps_and_timeouts_reject_single_pages_and_the_run_goes_on(tmp_path):
    folder = tmp_path / "in"
    write(folder, "slow.pdf", pdf_fixtures.slow_pdf(width=300, height=150))
    write(folder, "wide.pdf", pdf_fixtures.text_pdf(1, "wide", width=2000, height=200))
    write(folder, "square.pdf", pdf_fixtures.text_pdf(2, "square", width=600, height=600))
    write(folder, "long.pdf", pdf_fixtures.text_pdf(5, "long"))
    started = time.monotonic()
    manifest = run_cli([
        "--input", str(folder), "--output", str(tmp_path / "out"), "--page-size", "1000",
        "--max-page-pixels", "600000", "--max-pages", "4", "--page-timeout", "2",
    ])
    assert time.monotonic() - started < 60  # the slow page (about 10 s of rendering) was cut off
    assert manifest["rejects"]["by_reason"] == {"page_too_large": 2, "pdf_too_many_pages": 1, "timeout": 1}
    assert manifest["totals"] == {"inputs": 5, "samples": 1, "rejected": 4, "filtered": 0, "balanced": True}
    rejects = pq.read_table(tmp_path / "out" / "rejects" / "pdf-rejects-000000.parquet").to_pylist()
    timeout = next(r for r in rejects if r["reason"] == "timeout")
    assert timeout["uri"].endswith("slow.pdf") and timeout["locator"] == "page=1" and timeout["stage"] == "pdf_page"
    too_large = sorted(r["locator"] for r in rejects if r["reason"] == "page_too_large")
    # The square pages: 1000x1000 > 600000; the slow page is 1000x500 and the wide one 1000x100.
    assert too_large == ["page=1", "page=2"]


class _CrashOnSecret(IsolatedStageDoFn):
    """A stage that segfaults its child (a real native crash) on one element."""

    stage = "crash_test"

    def ref(self, element):
        return element, ""

    def call(self, element):
        if element == "secret":
            return ctypes.string_at, (0,)
        return str.upper, (element,)

    def outputs(self, element, result):
        return [result]


def test_a_native_crash_costs_one_element_not_the_run():
    with TestPipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as pipeline:
        out = (
            pipeline
            | beam.Create(["a", "b", "secret", "c", "d"])
            | beam.ParDo(_CrashOnSecret(processes=2, timeout_s=30, memory_limit_mb=None)).with_outputs(
                REJECTS, main="ok"
            )
        )
        assert_that(out.ok, equal_to(["A", "B", "C", "D"]), label="Survivors")
        assert_that(
            out[REJECTS] | beam.Map(lambda r: (r.uri, r.stage, r.reason)),
            equal_to([("secret", "crash_test", "worker_crashed")]),
            label="Crash",
        )


def test_existing_output_is_refused_without_overwrite(tmp_path):
    write(tmp_path / "in", "a.pdf", pdf_fixtures.text_pdf(1, "a"))
    flags = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), *FAST]
    run_cli(flags)
    with pytest.raises(SystemExit, match="already holds a dataset"):
        cli.main(["pdf", *flags])
    write(tmp_path / "in", "b.pdf", pdf_fixtures.text_pdf(1, "b"))
    manifest = run_cli([*flags, "--overwrite"])
    assert manifest["totals"]["samples"] == 2


def test_missing_inputs_and_flags_fail_with_one_clear_message(tmp_path, capsys):
    with pytest.raises(SystemExit, match="no input files match"):
        cli.main(["pdf", "--input", str(tmp_path / "nowhere"), "--output", str(tmp_path / "out")])
    assert cli.main(["pdf", "--output", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == "vlcurate pdf: --input is required (vlcurate pdf --help)\n"
    assert cli.main(["nonsense"]) == 2


def test_the_pipeline_translates_for_dataflow_without_credentials(monkeypatch):
    translate_for_dataflow(pdf_pages.run, "gs://vlcurate-test/pdfs/", "gs://vlcurate-test/out", monkeypatch,
                           ["ListInputs", "PdfPages"])


def test_the_demo_examples_give_five_pages_one_scan_and_one_reject(tmp_path):
    examples = EXAMPLES / "pdfs"
    manifest = run_cli(["--input", str(examples), "--output", str(tmp_path / "demo"), *FAST])
    assert manifest["totals"] == {"inputs": 6, "samples": 5, "rejected": 1, "filtered": 0, "balanced": True}
    assert manifest["rejects"]["by_reason"] == {"pdf_corrupt": 1}
    assert manifest["text_sources"] == {"ocr:ppocr": 1, "pdf-text-layer": 4}
    samples = list(read_shard(str(tmp_path / "demo" / manifest["shards"][0]["name"])))
    scans = [s for s in samples if s.meta["needs_ocr"]]
    assert [pathlib.Path(s.uri).name for s in scans] == ["scanned.pdf"]
    # --ocr auto: the scan's text comes from OCR (at --ocr-dpi, whatever the --page-size).
    assert scans[0].text_source == "ocr:ppocr" and scans[0].text.startswith("Minutes of the Data Review Meeting")
    chart = next(s for s in samples if s.uri.endswith("chart.pdf"))
    assert "Figure 1:" in chart.text and chart.text_source == "pdf-text-layer"
