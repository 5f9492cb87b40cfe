"""Table figures' cells (transforms/sources/pdf/tables.py): ruled tables drawn from known cells,
read back cell by cell through find_tables, alone and as `figure_samples` writes them."""

from __future__ import annotations

import csv
import hashlib
import io

import pymupdf

from fixtures import chart as chart_fixtures
from fixtures import table as table_fixtures
from fixtures.manual_page import TABLE_MARKDOWN
from fixtures.table import SALES, SALES_MERGES, SALES_WIDTHS, draw_table, draw_tex_table
from vlcurate.transforms.sources.pdf.config import FigureConfig, PdfConfig
from vlcurate.transforms.sources.pdf.core import inspect_document, open_pdf
from vlcurate.transforms.sources.pdf.figures import figure_samples
from vlcurate.transforms.sources.pdf.tables import read_table, table_fields


def _page_with(rows, merges=(), widths=SALES_WIDTHS):
    document = pymupdf.open()
    page = document.new_page()
    box = draw_table(page, 72, 100, widths, rows, merges)
    return document, page, box


def test_merged_headers_thousands_separators_and_empty_cells_come_back_cell_by_cell():
    _document, page, box = _page_with(SALES, SALES_MERGES)
    table = read_table(page, box)
    assert table.strategy == "lines"
    assert [list(row) for row in table.rows] == SALES  # the covered half of "Revenue" is ""
    assert list(csv.reader(io.StringIO(table.csv()))) == SALES
    assert table.markdown().splitlines() == TABLE_MARKDOWN
    fields = table_fields(page, box)
    assert fields["table"] == {"rows": 6, "columns": 4, "strategy": "lines"}
    assert fields["data_csv"] == table.csv() and fields["data_markdown"] == table.markdown()


def test_a_cell_spanning_columns_in_a_body_row_and_a_table_box_found_slightly_inside_the_rules():
    rows = [["Year", "Q1", "Q2", "Q3"], ["2023", "10,500", "", "9,999"], ["2024", "n/a", "", ""],
            ["2025", "1,000,000", "2,000,000", "3,000,000"]]
    _document, page, box = _page_with(rows, merges=[(2, 1, 3)], widths=[60, 90, 90, 90])
    table = read_table(page, box + (4, 4, -4, -4))
    assert [list(row) for row in table.rows] == rows


def test_a_tex_table_ruled_only_between_columns_keeps_a_row_per_line():
    """TeX's {l|l} tabular: find_tables sees one body row; each text line is a row of its own."""
    rows = [["IDL type", "Caml type"], ["byte, short", "int"], ["int, long with [int32] attribute", "int32"],
            ["hyper, long long", "int64"], ["", "unit"], ["boolean", "bool"]]
    document = pymupdf.open()
    page = document.new_page()
    box = draw_tex_table(page, 72, 100, [200, 120], rows)
    table = read_table(page, box)
    assert [list(row) for row in table.rows] == rows


def test_a_cell_that_wraps_stays_one_cell():
    document = pymupdf.open()
    page = document.new_page()
    rows = [["Name", "Note", "Units"], ["North", "", "1,250"], ["South", "", "980"]]
    box = draw_table(page, 72, 100, [80, 160, 60], rows, row_height=30)
    page.insert_text((155, 145), "first line of a note", fontsize=9, fontname="helv")
    page.insert_text((155, 156), "and its second line", fontsize=9, fontname="helv")
    table = read_table(page, box)
    assert [list(row) for row in table.rows] == [
        ["Name", "Note", "Units"], ["North", "first line of a note and its second line", "1,250"], ["South", "", "980"]]


def test_no_table_in_the_box_gives_no_fields():
    document = pymupdf.open()
    page = document.new_page()
    page.insert_textbox(pymupdf.Rect(72, 72, 400, 200), "Just a paragraph of prose, no table here.", fontsize=10)
    page.draw_line((72, 220), (400, 220))
    assert read_table(page, page.rect) is None and table_fields(page, page.rect) == {}


def _figures(data: bytes):
    config = PdfConfig(figures=FigureConfig())
    pdf = open_pdf(data)
    tasks = inspect_document(pdf, "mem://tables.pdf", hashlib.sha256(data).hexdigest(), config)
    return pdf, tasks, config


def test_a_table_figure_carries_its_cells_as_csv_and_markdown():
    pdf, tasks, config = _figures(table_fixtures.table_document())
    [sample] = figure_samples(pdf, tasks[0], config)
    chart = sample.meta["chart"]
    assert chart["kind"] == "table" and chart["caption"] == "Table 1: Revenue by region, in euros."
    assert list(csv.reader(io.StringIO(chart["data_csv"]))) == SALES
    assert chart["data_markdown"].splitlines()[0] == "| Region | Revenue |  | Notes |"
    assert chart["table"] == {"rows": 6, "columns": 4, "strategy": "lines"}


def test_the_ruled_table_beside_charts_gets_its_cells_and_the_charts_keep_theirs():
    pdf, tasks, config = _figures(chart_fixtures.document_with_figures())
    charts = [sample.meta["chart"] for sample in figure_samples(pdf, tasks[1], config)]
    table = next(chart for chart in charts if chart["kind"] == "table")
    assert table["data_csv"] == "Rule,Removed\nBroken file,3.1 %\nBlank page,5.4 %\nTiny page,0.7 %\n"
    assert all("table" not in chart for chart in charts if chart["kind"] == "chart")
