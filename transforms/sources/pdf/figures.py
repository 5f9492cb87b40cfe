"""Figures, charts and tables on PDF pages as table_chart samples: the crop, its caption, its data.

Figures are found three ways and merged: the layout model PyMuPDF 2.x ships (pymupdf-layout's
"picture" and "table" boxes), the page's embedded raster images, and clusters of vector drawings.
Each figure is cropped at a good resolution with the short text around it (axis labels), its
caption is the nearest "Figure 3: ...", "Fig. 2", "Table 1" block above or below (or the layout
model's caption box), a vector chart gets its data table (transforms/sources/pdf/chart_data.py)
and a table its cells (transforms/sources/pdf/tables.py).
``figures_of_uri`` is what the isolated PyMuPDF child runs for one page; like pdf.py this module
does not import Beam.
"""

from __future__ import annotations

import dataclasses
import importlib

import pymupdf
import pymupdf.layout  # noqa: F401  registers page.get_layout()'s model (pdf/core.py leaves it out of PyMuPDF's import)

from vlcurate import __version__
from vlcurate.transforms.sources.pdf.blocks import page_blocks
from vlcurate.transforms.sources.pdf.captions import is_caption, names_a_table
from vlcurate.transforms.sources.pdf.chart_data import ChartData, parse_number, recover
from vlcurate.transforms.sources.pdf.chart_marks import visible
from vlcurate.transforms.sources.pdf.core import clean_text, document_of
from vlcurate.transforms.sources.pdf.tables import table_fields
from vlcurate.transforms.sources.pdf.config import FigureConfig, PageTask, PdfConfig
from vlcurate.transforms.sources.pdf.table_shape import why_not_a_table
from vlcurate.transforms.data.png import pixmap_png
from vlcurate.transforms.data.rejects import Reject
from vlcurate.transforms.data.sample import Image, Sample, make_key

_LAYOUT_FIGURES = {"picture": "picture", "table": "table"}
# A raster covering this much of the page is the page itself (a scan), not a figure on it.
_PAGE_SCAN_SHARE = 0.85
_LABEL_MARGIN_PT = 14.0  # axis labels stand this close to a chart's drawings


@dataclasses.dataclass
class Figure:
    bbox: pymupdf.Rect
    found_by: set[str]
    table: bool = False
    image_area: float = 0.0


def find_figures(page: pymupdf.Page, config: FigureConfig, drawings: list | None = None) -> list[Figure]:
    """The figures on a page, merged across the three finders, top to bottom (``drawings``: the
    page's ``get_drawings()`` when the caller has it already)."""
    area = page.rect
    candidates: list[Figure] = []
    for x0, y0, x1, y1, label in _layout(page):
        if label in _LAYOUT_FIGURES:
            candidates.append(Figure(pymupdf.Rect(x0, y0, x1, y1) & area, {"layout"}, table=label == "table"))
    for info in page.get_image_info():
        rect = pymupdf.Rect(info["bbox"]) & area
        if rect.get_area() >= _PAGE_SCAN_SHARE * area.get_area():
            continue
        candidates.append(Figure(rect, {"image"}, image_area=rect.get_area()))
    for rect in page.cluster_drawings(drawings=visible(drawings if drawings is not None else page.get_drawings())):
        rect = pymupdf.Rect(rect) & area
        if rect.get_area() < _PAGE_SCAN_SHARE * area.get_area():
            candidates.append(Figure(rect, {"drawings"}))
    candidates = [f for f in candidates if min(f.bbox.width, f.bbox.height) >= config.min_figure_pt]
    figures = _merge(_split_layout_boxes(candidates))
    lines = _text_lines(page)
    for figure in figures:
        if "drawings" in figure.found_by and not figure.table:
            figure.bbox = _with_labels(figure.bbox, lines) & area
    figures = _merge(figures)  # labels may have joined two pieces of one chart
    figures = [f for f in figures if _shaped(page, f)]
    return sorted(figures, key=lambda f: (round(f.bbox.y0), f.bbox.x0))


def _shaped(page: pymupdf.Page, figure: Figure) -> bool:
    """A box called a table keeps that name only with rows of cells in it (table_shape.py); a
    box only the layout model found, with no table in it, is text (a contents page, an index,
    code), not a figure, and is dropped."""
    if not figure.table or why_not_a_table(page, figure.bbox) is None:
        return True
    figure.table = False
    return figure.found_by != {"layout"}


def _layout(page: pymupdf.Page) -> list:
    try:
        page.get_layout()
    except Exception:  # a page the model cannot take still has its images and drawings
        return []
    return list(getattr(page, "layout_information", None) or [])


def _overlap(a: pymupdf.Rect, b: pymupdf.Rect) -> bool:
    common = (a & b).get_area()
    return common > 0 and common >= 0.3 * min(a.get_area(), b.get_area())


def _split_layout_boxes(candidates: list[Figure]) -> list[Figure]:
    """A layout box over two or more separate figures found by images or drawings (the model
    sometimes boxes two stacked charts, and the caption between them, as one picture) is not a
    figure of its own: each of those figures is marked as found by the layout model instead."""
    layout = [f for f in candidates if f.found_by == {"layout"}]
    others = [f for f in candidates if f.found_by != {"layout"}]
    kept = []
    for box in layout:
        inside = [f for f in others if _overlap(box.bbox, f.bbox)]
        separate = len(inside) >= 2 and not any(
            _overlap(a.bbox, b.bbox) for i, a in enumerate(inside) for b in inside[i + 1:])
        if separate:
            for figure in inside:
                figure.found_by.add("layout")
                figure.table = figure.table or box.table
        else:
            kept.append(box)
    return others + kept


def _merge(figures: list[Figure]) -> list[Figure]:
    """Figures whose boxes overlap by 30% of the smaller become one (the union of both)."""
    merged: list[Figure] = []
    for figure in figures:
        figure = dataclasses.replace(figure, found_by=set(figure.found_by))
        changed = True
        while changed:
            changed = False
            for other in merged:
                if _overlap(figure.bbox, other.bbox):
                    merged.remove(other)
                    figure.bbox |= other.bbox
                    figure.found_by |= other.found_by
                    figure.table = figure.table or other.table
                    figure.image_area += other.image_area
                    changed = True
                    break
        merged.append(figure)
    return merged


def _text_lines(page: pymupdf.Page) -> list[tuple[pymupdf.Rect, str, bool]]:
    """(box, text, labels) of each line; ``labels``: separate texts PyMuPDF joined into one line
    across wide gaps (a row of tick labels), not words of one text."""
    out = []
    for block in page.get_text("dict").get("blocks", []):
        for line in block.get("lines", []):
            text = " ".join(span["text"] for span in line["spans"]).strip()
            words = [span for span in line["spans"] if span["text"].strip()]
            # Labels stand further apart than words do (a word space is about a third of the size).
            labels = len(words) >= 2 and all(b["bbox"][0] - a["bbox"][2] >= 0.5 * a["size"]
                                             for a, b in zip(words, words[1:]))
            if text:
                out.append((pymupdf.Rect(line["bbox"]), text, labels))
    return out


def _with_labels(bbox: pymupdf.Rect, lines) -> pymupdf.Rect:
    """The box grown by the short text lines touching it (tick labels, axis titles, legend),
    twice, so that a title beyond the tick labels joins too. Captions and prose stay out; a row
    of numbers or of separate labels as wide as the chart (tick labels PyMuPDF joined into one
    line) joins."""
    for _ in range(2):
        reach = pymupdf.Rect(bbox.x0 - _LABEL_MARGIN_PT, bbox.y0 - _LABEL_MARGIN_PT,
                             bbox.x1 + _LABEL_MARGIN_PT, bbox.y1 + _LABEL_MARGIN_PT)
        for rect, text, labels in lines:
            short = rect.width <= 0.6 * max(bbox.width, 1) or labels or all(
                parse_number(w) is not None for w in text.split())
            if rect.intersects(reach) and not is_caption(text) and short:
                bbox = bbox | rect
    return bbox


def find_captions(page: pymupdf.Page, boxes: list[pymupdf.Rect], config: FigureConfig) -> list[str | None]:
    """Each figure's caption: the nearest caption-like block ("Figure 1: ...") over or under it,
    else the layout model's nearest caption box, within ``caption_distance_pt``; a block captions
    one figure only, the nearest (under the figure first, where captions usually are)."""
    layout_captions = [pymupdf.Rect(x0, y0, x1, y1) for x0, y0, x1, y1, label in
                       getattr(page, "layout_information", None) or [] if label == "caption"]
    pairs = []
    for number, (x0, y0, x1, y1, text, _n, block_type) in enumerate(page_blocks(page)):
        rect = pymupdf.Rect(x0, y0, x1, y1)
        text = " ".join(clean_text(text).split())
        if block_type != 0 or not text:
            continue
        named = is_caption(text)
        if not named and not any(_overlap(rect, box) for box in layout_captions):
            continue
        for index, bbox in enumerate(boxes):
            distance, under = _caption_distance(rect, bbox, inside=named)
            limit = config.caption_distance_pt if named else config.caption_distance_pt / 2
            if distance is not None and distance <= limit:
                pairs.append((not named, distance + (0 if under else 6), index, number, text))
    captions: list[str | None] = [None] * len(boxes)
    used = set()
    for _, _, index, number, text in sorted(pairs):
        if captions[index] is None and number not in used:
            captions[index] = text
            used.add(number)
    return captions


def _caption_distance(rect: pymupdf.Rect, bbox: pymupdf.Rect, inside: bool = True) -> tuple[float | None, bool]:
    """(gap, under) from a figure to a text block over or under it, sharing some of its width.
    Line boxes are generous, so a block may overlap the figure by half its own height."""
    if min(rect.x1, bbox.x1) <= max(rect.x0, bbox.x0):
        return None, False
    slack = rect.height / 2
    if rect.y0 >= bbox.y1 - slack:
        return max(0.0, rect.y0 - bbox.y1), True
    if rect.y1 <= bbox.y0 + slack:
        return max(0.0, bbox.y0 - rect.y1), False
    # A caption drawn inside the figure (matplotlib's fig.text under the axes): in its lower or
    # upper fifth, it is as near as can be. Only a named one ("Figure 2: ..."): an unnamed line
    # there is the x title the layout model took for a caption.
    if not inside:
        return None, False
    band = bbox.height / 5
    if rect.y0 >= bbox.y1 - band:
        return 0.0, True
    if rect.y1 <= bbox.y0 + band:
        return 0.0, False
    return None, False


def crop(page: pymupdf.Page, bbox: pymupdf.Rect, config: FigureConfig, max_pixels: int) -> Image:
    """The figure rendered at ``dpi`` or sharper, long side between the configured bounds."""
    clip = (bbox + (-4, -4, 4, 4)) & page.rect
    long_side = max(clip.width, clip.height)
    scale = max(config.dpi / 72, config.min_side_px / long_side)
    scale = min(scale, (config.max_side_px - 1) / long_side,  # - 1: the pixmap rounds its box out
                (max_pixels / max(clip.get_area(), 1e-9)) ** 0.5)
    pixmap = page.get_pixmap(matrix=pymupdf.Matrix(scale, scale), clip=clip, alpha=False)
    return Image(pixmap_png(pixmap), "png", pixmap.width, pixmap.height)


def figure_samples(document: pymupdf.Document, task: PageTask, config: PdfConfig) -> list[Sample]:
    """One table_chart sample per figure on the page; ``Reject("no_figures")`` when there is none."""
    figures_config = config.figures or FigureConfig()
    layout = importlib.import_module("pymupdf.layout")  # loaded by `import pymupdf` already
    try:
        page = document.load_page(task.page_index)
        drawings = page.get_drawings()  # once a page: the clusters and every chart's data read them
        figures = find_figures(page, figures_config, drawings)
    except Exception as error:
        raise Reject("pdf_corrupt", f"cannot read the page's figures: {error}") from error
    if not figures:
        raise Reject("no_figures", "no picture, table or drawing cluster on the page")
    samples = []
    captions = find_captions(page, [figure.bbox for figure in figures], figures_config)
    for number, (figure, caption) in enumerate(zip(figures, captions), start=1):
        data = None if figure.table else _chart_data(page, figure.bbox, drawings)
        chart = {
            "page": task.page_index + 1,
            "bbox": [round(v, 1) for v in figure.bbox],
            "kind": _kind(figure, data, caption),
            "found_by": sorted(figure.found_by),
            "caption": caption,
        }
        if data is not None and data.rows:
            chart.update(data_csv=data.csv(), data_markdown=data.markdown(), chart_type=data.kind,
                         series=list(data.series), x_label=data.x_label, y_label=data.y_label)
        elif chart["kind"] == "table":
            chart.update(table_fields(page, figure.bbox))  # its cells (transforms/sources/pdf/tables.py)
        elif data is not None:
            chart.update(data_reason=data.reason)
        elif chart["kind"] == "photo":
            chart.update(data_reason="a raster picture: its data is not recoverable")
        locator = f"{task.locator};figure={number}"
        samples.append(Sample(
            key=make_key("chart", task.file_sha256, locator),
            source="chart",
            category="table_chart",
            uri=task.uri,
            locator=locator,
            images=(crop(page, figure.bbox, figures_config, config.max_page_pixels),),
            text=caption or "",
            text_source="pdf-caption" if caption else None,
            provenance={"vlcurate": __version__, "pymupdf": pymupdf.VersionBind,
                        "layout": layout.version},
            meta={"chart": chart, "pdf": {"file_sha256": task.file_sha256, "page_number": task.page_index + 1,
                                          "page_count": task.page_count}},
        ))
    return samples


def _chart_data(page: pymupdf.Page, bbox: pymupdf.Rect, drawings: list) -> ChartData | None:
    try:
        return recover(page, bbox, drawings)
    except Exception:  # odd drawings must not cost the figure itself
        return None


def _kind(figure: Figure, data: ChartData | None, caption: str | None) -> str:
    if figure.table or names_a_table(caption):
        return "table"
    if data is not None:
        return "chart"
    if figure.image_area >= 0.5 * figure.bbox.get_area():
        return "photo"
    return "diagram"


def figures_of_uri(task: PageTask, config: PdfConfig) -> list[Sample]:
    """What the isolated child runs for one page."""
    return figure_samples(document_of(task, config), task, config)
