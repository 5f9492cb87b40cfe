"""Every kind of chart drawn by matplotlib from known data, each a PDF page with its caption drawn
inside the figure just under the axes (fig.text): the figure is found once, is `kind: chart`, has
that caption (never an axis title), the right chart_type, and every value within 2% of the axis
range. Then the rule behind bar and line charts swept over category counts, sizes and ranges;
tables that are not tables; a chart pasted as a picture; Chinese captions."""

from __future__ import annotations

import csv
import hashlib
import io
import math

import numpy as np
import pymupdf
import pytest

from fixtures import chart as charts
from vlcurate.transforms.sources.pdf.captions import is_caption, names_a_table
from vlcurate.transforms.sources.pdf.config import FigureConfig, PdfConfig
from vlcurate.transforms.sources.pdf.core import inspect_document, open_pdf
from vlcurate.transforms.sources.pdf.figures import figure_samples
from vlcurate.transforms.sources.pdf.table_shape import why_not_a_table

CONFIG = PdfConfig(figures=FigureConfig())


def figures_of(data: bytes) -> list[dict]:
    pdf = open_pdf(data)
    [task] = inspect_document(pdf, "mem://chart.pdf", hashlib.sha256(data).hexdigest(), CONFIG)[:1]
    return [sample.meta["chart"] for sample in figure_samples(pdf, task, CONFIG)]


def the_chart(draw, caption: str, **kwargs) -> dict:
    found = figures_of(charts.captioned_page(draw, caption, **kwargs))
    assert len(found) == 1, [(f["kind"], f["bbox"]) for f in found]
    chart = found[0]
    assert chart["kind"] == "chart" and chart["caption"] == caption
    assert caption not in (chart.get("data_csv") or "") and chart.get("x_label") != caption
    return chart


def table(chart: dict) -> tuple[list[str], dict[str, list[float | None]]]:
    rows = list(csv.reader(io.StringIO(chart["data_csv"])))
    return rows[0], {row[0]: [float(v) if v else None for v in row[1:]] for row in rows[1:]}


def assert_close(got, want, axis_range: float):
    assert len(got) == len(want), (got, want)
    for g, w in zip(got, want):
        assert g is not None and abs(g - w) <= 0.02 * axis_range, (got, want)


# --- one test a kind ---------------------------------------------------------------------------------


def test_bars_of_three_categories_keep_every_bar_even_one_of_value_zero():
    chart = the_chart(charts.draw_bars(["x", "y", "z"], [4.0, 0.0, 7.0]), "Figure 1: three bars.")
    header, rows = table(chart)
    assert chart["chart_type"] == "bar" and list(rows) == ["x", "y", "z"]
    assert_close([rows[c][0] for c in "xyz"], [4.0, 0.0, 7.0], 7.0)


def test_a_line_chart_under_a_caption_inside_the_figure():
    chart = the_chart(charts.draw_line([1, 2, 3, 4], [3.0, 1.0, 2.5, 2.0]), "Fig. 2 - a line.")
    _, rows = table(chart)
    assert chart["chart_type"] == "line"
    assert_close([rows[x][0] for x in "1234"], [3.0, 1.0, 2.5, 2.0], 3.0)


def test_horizontal_bars_are_read_along_x():
    chart = the_chart(charts.draw_hbar, "Chart 3: lying bars.")
    _, rows = table(chart)
    assert chart["chart_type"] == "horizontal_bar" and set(rows) == set(charts.HBAR["categories"])
    assert_close([rows[c][0] for c in charts.HBAR["categories"]], charts.HBAR["values"], 63.0)


def test_stacked_segments_are_values_of_their_series_not_bars_of_their_own():
    chart = the_chart(charts.draw_stacked, "Figure 4: stacked.")
    header, rows = table(chart)
    assert chart["chart_type"] == "stacked_bar" and header[1:] == ["cars", "bikes"]
    assert list(rows) == charts.STACKED["categories"]
    for i, category in enumerate(charts.STACKED["categories"]):
        want = [charts.STACKED["series"]["cars"][i], charts.STACKED["series"]["bikes"][i]]
        assert_close(rows[category], want, 20.0)


def test_a_log_axis_is_read_as_one():
    chart = the_chart(charts.draw_log_bars, "Figure 5: on a log axis.")
    _, rows = table(chart)
    got = [math.log10(rows[c][0]) for c in charts.LOG_BARS["categories"]]
    want = [math.log10(v) for v in charts.LOG_BARS["values"]]
    assert_close(got, want, want[-1] - want[0])  # 2% of the axis range, in decades


def test_a_histogram_gives_bin_edges_and_heights():
    chart = the_chart(charts.draw_histogram, "Figure 6: a histogram.")
    header, rows = table(chart)
    counts, edges = np.histogram(charts.sample_data(), bins=charts.HISTOGRAM_EDGES)
    assert chart["chart_type"] == "histogram" and header == ["bin start", "bin end", "height"]
    assert_close([float(x) for x in rows], list(edges[:-1]), 8.0)
    assert_close([r[0] for r in rows.values()], list(edges[1:]), 8.0)
    assert_close([r[1] for r in rows.values()], list(counts), float(max(counts)))


def test_a_step_plot_gives_where_each_level_starts():
    chart = the_chart(charts.draw_step, "Figure 7: an ECDF.")
    _, rows = table(chart)
    assert chart["chart_type"] == "step"
    assert_close([float(x) for x in rows], charts.STEP["x"], 7.0)
    assert_close([r[0] for r in rows.values()], charts.STEP["y"], 0.9)


def test_a_qq_plot_gives_its_points():
    chart = the_chart(charts.draw_qq, "Figure 8: normal Q-Q plot.")
    _, rows = table(chart)
    sample = np.sort(charts.sample_data(20))
    theoretical = charts.qq_quantiles(20)
    assert chart["chart_type"] == "scatter" and len(rows) == 20
    assert_close([float(x) for x in rows], list(theoretical), theoretical[-1] - theoretical[0])
    assert_close([r[0] for r in rows.values()], list(sample), sample[-1] - sample[0])


def test_a_box_plot_gives_quartiles_and_whiskers():
    chart = the_chart(charts.draw_boxes, "Figure 9: two boxes.")
    header, rows = table(chart)
    assert chart["chart_type"] == "box" and header[1:] == ["whisker low", "q1", "median", "q3", "whisker high"]
    assert list(rows) == list(charts.BOX_GROUPS)
    for name, values in charts.BOX_GROUPS.items():
        want = [min(values), *np.percentile(values, [25, 50, 75]), max(values)]
        assert_close(rows[name], want, 8.0)


def test_a_chart_without_numeric_ticks_is_a_chart_without_data_and_says_why():
    chart = the_chart(charts.draw_without_values, "Figure 10: no scale.")
    assert "data_csv" not in chart and chart["data_reason"] == "the plot's axes have no numeric tick labels"


def test_a_chart_pasted_as_a_picture_is_a_photo_whose_data_is_not_recoverable():
    document = pymupdf.open()
    page = document.new_page()
    page.insert_image(pymupdf.Rect(100, 100, 460, 345), stream=charts.bar_chart("png"))
    page.insert_text((100, 365), "Figure 11: a chart as a picture.", fontsize=10)
    [chart] = figures_of(document.tobytes())
    assert chart["kind"] == "photo" and "data_csv" not in chart
    assert chart["data_reason"] == "a raster picture: its data is not recoverable"


# --- the rule, swept ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["bar", "line", "horizontal_bar"])
@pytest.mark.parametrize(("count", "figsize", "scale"), [
    (2, (4.0, 3.0), 1.0), (3, (6.4, 4.8), 37.0), (3, (3.4, 2.8), 5000.0), (5, (4.0, 3.0), 2e6),
    (8, (6.4, 4.8), 0.01), (12, (5.0, 3.6), 250.0), (12, (4.0, 3.0), 37.0),  # the last: labels overlap
    (5, (3.2, 2.6), 0.01),  # the last: labels cut by the page's side, one line of joined ticks
])
def test_bars_and_lines_of_2_to_12_categories_at_several_sizes_and_ranges(kind, count, figsize, scale):
    values = list(np.round(np.random.default_rng(count).uniform(0.1, 1.0, count) * scale, 6))
    labels = [f"c{i}" for i in range(count)]
    draw = {"bar": charts.draw_bars(labels, values), "line": charts.draw_line(list(range(count)), values),
            "horizontal_bar": lambda ax: ax.barh(labels, values)}[kind]
    chart = the_chart(draw, f"Figure {count}: {kind}s.", figsize=figsize)
    _, rows = table(chart)
    assert chart["chart_type"] == kind and len(rows) == count
    keys = [str(i) for i in range(count)] if kind == "line" else labels
    assert_close([rows[k][0] for k in keys], values, max(values))


# --- tables that are not, and captions -------------------------------------------------------------


def _page_of_lines(lines: list[tuple[float, str]]) -> pymupdf.Page:
    document = pymupdf.open()
    page = document.new_page()
    for number, (x, text) in enumerate(lines):
        page.insert_text((x, 100 + 14 * (number // 2 if x > 200 else number)), text, fontsize=10, fontname="cour")
    return page


def test_dot_leader_lists_and_code_are_not_tables_and_rows_of_cells_are():
    contents = _page_of_lines([(72, f"{i}.{i} Section {i} " + ". " * 20 + f"{i * 3}") for i in range(1, 9)])
    assert why_not_a_table(contents, contents.rect) == "dot leaders: a contents or index list"
    code = _page_of_lines([(72, "> x <- c(1, 2, 3)"), (72, "> plot(x, y)"), (72, "fit <- lm(y ~ x)"), (72, "summary(fit)")])
    assert why_not_a_table(code, code.rect) == "a code listing"
    cells = _page_of_lines([(72, "Family"), (300, "Link"), (72, "binomial"), (300, "logit, probit"),
                            (72, "poisson"), (300, "log, sqrt")])
    assert why_not_a_table(cells, cells.rect) is None


def test_a_contents_page_gives_no_table_figure():
    document = pymupdf.open()
    page = document.new_page()
    for i in range(1, 30):
        page.insert_text((72, 80 + 20 * i), f"{i}  Chapter number {i} " + ". " * 30 + f"{i * 4}", fontsize=10)
    data = document.tobytes()
    pdf = open_pdf(data)
    [task] = inspect_document(pdf, "mem://toc.pdf", hashlib.sha256(data).hexdigest(), CONFIG)
    try:
        found = [s.meta["chart"]["kind"] for s in figure_samples(pdf, task, CONFIG)]
    except Exception as error:  # no figure at all is the right answer too
        assert getattr(error, "reason", None) == "no_figures"
        found = []
    assert "table" not in found


@pytest.mark.parametrize(("text", "caption", "table_caption"), [
    ("Figure 2: Sales", True, False), ("Fig. 3 - x", True, False), ("Table 1: Rules", True, True),
    ("Chart 4", True, False), ("图 5 销售额", True, False), ("表6 数据", True, True), ("Tab. 2", True, True),
    ("Figures show", False, False), ("Tablet 3", False, False), ("图表", False, False),
])
def test_what_a_caption_looks_like(text, caption, table_caption):
    assert is_caption(text) == caption and names_a_table(text) == table_caption


def test_a_chinese_caption_under_a_chart_is_paired_and_never_an_axis_title():
    document = pymupdf.open()
    page = document.new_page()
    chart = pymupdf.open(stream=charts.bar_chart(), filetype="pdf")
    page.show_pdf_page(pymupdf.Rect(96, 120, 456, 365), chart, 0)
    page.insert_text((120, 380), "图 3：各阶段保留的页面", fontsize=10, fontname="china-s")
    [found] = figures_of(document.tobytes())
    assert found["kind"] == "chart" and found["caption"] == "图 3：各阶段保留的页面"
    assert found["x_label"] == "Stage"
