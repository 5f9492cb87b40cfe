"""Figures and charts from PDFs: matplotlib charts drawn from known data, found on real pages with
PyMuPDF (its layout model, images, drawings), their captions, crops and recovered data; the
`vlcurate charts` pipeline and `vlcurate pdf --figures` on a real Beam runner."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import pathlib

import pymupdf
import pytest

from fixtures import chart as chart_fixtures
from fixtures.chart import BAR, LINE
from fixtures.dataflow import translate_for_dataflow
from vlcurate.pipelines import cli
from vlcurate.transforms.sources.pdf.chart_data import parse_number, recover
from vlcurate.transforms.sources.pdf.figures import figure_samples
from vlcurate.transforms.sources.pdf.core import inspect_document, open_pdf
from vlcurate.transforms.sources.pdf.config import FigureConfig, PdfConfig
from vlcurate.transforms.data.rejects import Reject
from vlcurate.transforms.io.shard_reader import read_shard
from fixtures import EXAMPLES

PDFS = EXAMPLES / "pdfs"


def rows_of(data) -> dict[str, list[float]]:
    table = list(csv.reader(io.StringIO(data.csv())))
    return {row[0]: [float(v) for v in row[1:]] for row in table[1:]}


def assert_within(recovered: dict[str, list[float]], expected: dict[str, list[float]], axis_range: float):
    assert set(recovered) == set(expected)
    for x, values in expected.items():
        for got, want in zip(recovered[x], values, strict=True):
            assert abs(got - want) <= 0.02 * axis_range, (x, got, want)


# --- recovering the data -------------------------------------------------------------------------


def test_a_grouped_bar_chart_gives_back_its_table():
    page = pymupdf.open(stream=chart_fixtures.bar_chart(), filetype="pdf")[0]
    data = recover(page, page.rect)
    assert data.kind == "bar" and data.series == ("2023", "2024")
    assert (data.x_label, data.y_label) == ("Stage", "Pages (thousands)")
    expected = {c: [BAR["series"]["2023"][i], BAR["series"]["2024"][i]] for i, c in enumerate(BAR["categories"])}
    assert_within(rows_of(data), expected, axis_range=100)
    assert [x for x, _ in data.rows] == BAR["categories"]  # in the chart's own order
    assert data.csv().splitlines()[0] == "Stage,2023,2024"
    assert data.markdown().splitlines()[:2] == ["| Stage | 2023 | 2024 |", "|---|---|---|"]


def test_a_line_chart_gives_back_its_points():
    page = pymupdf.open(stream=chart_fixtures.line_chart(), filetype="pdf")[0]
    data = recover(page, page.rect)
    assert data.kind == "line" and data.series == ("train loss", "val loss")
    assert (data.x_label, data.y_label) == ("Epoch", "Loss")
    expected = {str(x): [LINE["series"]["train loss"][i], LINE["series"]["val loss"][i]] for i, x in enumerate(LINE["x"])}
    assert_within(rows_of(data), expected, axis_range=2.4 - 0.97)


def test_a_scatter_chart_gives_back_its_points_per_series():
    page = pymupdf.open(stream=chart_fixtures.scatter_chart(), filetype="pdf")[0]
    data = recover(page, page.rect)
    assert data.kind == "scatter" and data.series == ("runs", "baseline")
    found = {x: values for x, values in data.rows}
    for column, (xs, ys) in enumerate(chart_fixtures.SCATTER.values()):
        for x, y in zip(xs, ys):
            assert abs(found[f"{x:g}"][column] - y) <= 0.02 * 45
    assert found["1.5"][0] is None  # a point only one series has


@pytest.mark.parametrize("values", [[3.0, -2.5, 7.25, 0.5], [1200.0, 350.0, 980.0, 40.0]])
def test_single_series_bars_with_negative_values_and_large_numbers(values):
    data_spec = {**BAR, "categories": ["a", "b", "c", "d"], "series": {"sales": values}}
    page = pymupdf.open(stream=chart_fixtures.bar_chart(data=data_spec), filetype="pdf")[0]
    data = recover(page, page.rect)
    axis_range = max(values) - min(0, min(values))
    assert_within(rows_of(data), {c: [v] for c, v in zip("abcd", values)}, axis_range)


def test_a_page_without_a_chart_gives_no_data():
    document = pymupdf.open()
    page = document.new_page()
    page.insert_text((72, 72), "Just text, 1 2 3 4 5", fontsize=11)
    page.draw_rect(pymupdf.Rect(72, 100, 300, 300), color=(0, 0, 0))
    assert recover(page, page.rect) is None


@pytest.mark.parametrize(("text", "value"), [
    ("1,250", 1250.0), ("−3.5", -3.5), ("45%", 45.0), ("(12)", -12.0), ("0.05", 0.05), (".5", 0.5),
    ("Crawl", None), ("2024a", None), ("", None),
])
def test_tick_labels_are_read_as_numbers(text, value):
    assert parse_number(text) == value


# --- finding figures on document pages -----------------------------------------------------------------


@pytest.fixture(scope="module")
def document():
    data = chart_fixtures.document_with_figures()
    config = PdfConfig(figures=FigureConfig())
    pdf = open_pdf(data)
    tasks = inspect_document(pdf, "mem://figures.pdf", hashlib.sha256(data).hexdigest(), config)
    return pdf, tasks, config


def test_figures_are_found_with_their_captions_and_kinds(document):
    pdf, tasks, config = document
    first, second = figure_samples(pdf, tasks[0], config), figure_samples(pdf, tasks[1], config)
    charts = [s.meta["chart"] for s in first + second]
    assert [c["kind"] for c in charts] == ["chart", "photo", "chart", "table"]
    assert [c["caption"] for c in charts] == [
        "Figure 1: Pages kept per stage, in thousands.",
        "Figure 2: A photograph of the reading room.",
        "Fig. 3 - Training and validation loss per epoch.",  # above its figure
        "Table 1: Filters and the pages they removed.",
    ]
    assert "layout" in charts[0]["found_by"] and "drawings" in charts[0]["found_by"]
    assert charts[1]["found_by"] == ["image"]
    # The bar chart was placed at (96, 120, 456, 365) on the page, its axes' right edge at 420 (the
    # figure's white margin beyond it shows nothing); the photo at (150, 430, 390, 595).
    assert charts[0]["bbox"][0] == pytest.approx(96, abs=3) and charts[0]["bbox"][2] == pytest.approx(420, abs=3)
    assert charts[1]["bbox"] == pytest.approx([150, 430, 390, 595], abs=1)
    sample = first[0]
    assert (sample.source, sample.category, sample.text) == ("chart", "table_chart", charts[0]["caption"])
    assert sample.locator == "page=1;figure=1" and sample.text_source == "pdf-caption"
    assert rows_of_csv(charts[0]["data_csv"])["Quality"] == pytest.approx([44.0, 30.4], abs=2)
    assert charts[2]["chart_type"] == "line" and charts[2]["series"] == ["train loss", "val loss"]
    assert "data_csv" not in charts[1] and charts[3]["data_csv"].startswith("Rule,Removed\n")  # a table's cells


def rows_of_csv(text: str) -> dict[str, list[float]]:
    table = list(csv.reader(io.StringIO(text)))
    return {row[0]: [float(v) for v in row[1:]] for row in table[1:]}


def test_crops_are_sharp_enough_and_capped(document):
    pdf, tasks, config = document
    [sample] = figure_samples(pdf, tasks[0], config)[:1]
    image, (x0, _, x1, _) = sample.images[0], sample.meta["chart"]["bbox"]
    # The box (324 pt wide) and 4 pt of margin each side at 144 dpi: two pixels a point.
    assert 2 * (x1 - x0) <= image.width <= 2 * (x1 - x0 + 8) + 1 and image.width >= 640
    assert image.data.startswith(b"\x89PNG")
    small = PdfConfig(figures=FigureConfig(dpi=72, min_side_px=64, max_side_px=300))
    capped = figure_samples(pdf, tasks[0], small)[0].images[0]
    assert max(capped.width, capped.height) <= 300


def test_a_page_without_figures_is_filtered(document):
    pdf, tasks, config = document
    with pytest.raises(Reject) as caught:
        figure_samples(pdf, tasks[2], config)
    assert caught.value.reason == "no_figures"


# --- the pipelines -------------------------------------------------------------------------------------


def run_cli(command, argv) -> dict:
    assert cli.main([command, *argv]) == 0
    output = pathlib.Path(argv[argv.index("--output") + 1])
    return json.loads((output / "manifest.json").read_text())


@pytest.mark.e2e
def test_vlcurate_charts_over_a_folder(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "figures.pdf").write_bytes(chart_fixtures.document_with_figures())
    (folder / "chart.pdf").write_bytes((PDFS / "chart.pdf").read_bytes())
    (folder / "broken.pdf").write_bytes((PDFS / "broken.pdf").read_bytes())
    output = tmp_path / "out"
    manifest = run_cli("charts", ["--input", str(folder), "--output", str(output)])
    # 5 figures, 1 page without one, 1 broken document
    assert manifest["totals"] == {"inputs": 7, "samples": 5, "rejected": 1, "filtered": 1, "balanced": True}
    assert manifest["rejects"]["by_reason"] == {"no_figures": 1, "pdf_corrupt": 1}
    assert manifest["categories"] == {"table_chart": 5} and manifest["text_sources"] == {"pdf-caption": 5}
    samples = {(pathlib.Path(s.uri).name, s.locator): s for s in read_shard(str(output / manifest["shards"][0]["name"]))}
    example = samples[("chart.pdf", "page=1;figure=1")].meta["chart"]
    assert example["kind"] == "chart" and example["data_csv"].splitlines() == [
        "Curation stage,Pages retained (thousands)", "Crawl,100", "Lang-ID,82", "Dedup,61", "Quality,44", "Safety,39"]
    again = run_cli("charts", ["--input", str(folder), "--output", str(tmp_path / "again")])
    assert again["shards"] == manifest["shards"]  # byte-identical, by sha256


@pytest.mark.e2e
def test_vlcurate_pdf_figures_adds_figure_samples_to_page_samples(tmp_path):
    manifest = run_cli("pdf", ["--input", str(PDFS), "--output", str(tmp_path / "out"), "--page-size", "256",
                               "--figures"])
    # 5 pages + 1 broken document + per page: the chart page's figure, the report's table, 3 pages without
    assert manifest["categories"] == {"document_ocr": 5, "table_chart": 2}
    assert manifest["rejects"]["by_reason"] == {"no_figures": 3, "pdf_corrupt": 1}
    assert manifest["totals"]["balanced"] and manifest["config"]["pdf"]["figures"]["dpi"] == 144


@pytest.mark.e2e
def test_the_charts_pipeline_translates_for_dataflow(monkeypatch):
    from vlcurate.pipelines import pdf_charts

    translate_for_dataflow(pdf_charts.run, "gs://vlcurate-test/pdfs/", "gs://vlcurate-test/charts", monkeypatch,
                           ["ListInputs", "PdfFigures"])


@pytest.mark.e2e
def test_the_demo_report_gives_two_charts_with_data_a_picture_and_a_table(tmp_path):
    # The layout model boxes page 1's two stacked charts (and the caption between them) as one
    # picture; the drawings tell them apart, and each caption goes to its own chart.
    examples = EXAMPLES / "charts"
    output = tmp_path / "demo"
    manifest = run_cli("charts", ["--input", str(examples), "--output", str(output)])
    assert manifest["totals"] == {"inputs": 4, "samples": 4, "rejected": 0, "filtered": 0, "balanced": True}
    charts = {s.locator: s.meta["chart"] for s in read_shard(str(output / manifest["shards"][0]["name"]))}
    bars, lines = charts["page=1;figure=1"], charts["page=1;figure=2"]
    assert bars["caption"].startswith("Figure 1:") and lines["caption"].startswith("Figure 2:")
    assert bars["data_csv"].splitlines() == [
        "Curation stage,2023,2024", "Crawl,100,120", "Lang-ID,82,96", "Dedup,61,70", "Quality,44,52", "Safety,39,47"]
    assert lines["data_csv"].splitlines()[:2] == ["Epoch,train,validation", "1,2.3,2.4"]
    picture, table = charts["page=2;figure=1"], charts["page=2;figure=2"]
    assert (picture["kind"], picture["found_by"]) == ("photo", ["image"]) and "data_csv" not in picture
    assert table["kind"] == "table" and table["caption"].startswith("Table 1:")


def test_a_chart_pasted_as_png_is_a_picture_without_data():
    document = pymupdf.open()
    page = document.new_page()
    page.insert_image(pymupdf.Rect(100, 100, 460, 345), stream=chart_fixtures.bar_chart("png"))
    page.insert_text((100, 365), "Figure 7: The same chart as a picture.", fontsize=10)
    data = document.tobytes()
    pdf = open_pdf(data)
    config = PdfConfig(figures=FigureConfig())
    [task] = inspect_document(pdf, "mem://png.pdf", hashlib.sha256(data).hexdigest(), config)
    [sample] = figure_samples(pdf, task, config)
    chart = sample.meta["chart"]
    assert chart["kind"] == "photo" and "image" in chart["found_by"] and "data_csv" not in chart
    assert chart["caption"] == "Figure 7: The same chart as a picture."
