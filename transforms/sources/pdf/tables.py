"""A table figure's cells: PyMuPDF's ``find_tables`` inside the figure's box, as CSV and markdown.

The grid comes from ``find_tables`` (ruling lines first; the text-alignment strategy only when no
ruled table is there), but each cell's text is read with ``get_textbox`` over the cell's box:
``Table.extract()`` of PyMuPDF 2.0 drops spaces and moves punctuation onto a line of its own
("1,234,567" came back as "1234567\\n, ,"). A cell that a merged cell covers (the right part of a
header spanning two columns) is empty in both outputs; the merged cell's text stands in its first
cell. Rows with no text at all (ruling artefacts) are dropped. The markdown's header is the first
row: markdown has one header row, so a second header row is the first body row.
"""

from __future__ import annotations

import csv
import dataclasses
import io

import pymupdf

_MARGIN_PT = 6.0  # a figure's box may sit just inside the table's outer rules
_MAX_CELLS = 20_000  # a hostile page can draw a grid of any size; this many cells is a table's worth


@dataclasses.dataclass(frozen=True)
class TableData:
    rows: tuple[tuple[str, ...], ...]  # every row as wide as the table; "" for empty or covered cells
    strategy: str  # how find_tables found the grid: "lines" or "text"

    def csv(self) -> str:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(self.rows)
        return out.getvalue()

    def markdown(self) -> str:
        return markdown_table(self.rows[0], self.rows[1:])

    def fields(self) -> dict:
        """The chart JSON's fields for this table."""
        return {"data_csv": self.csv(), "data_markdown": self.markdown(),
                "table": {"rows": len(self.rows), "columns": len(self.rows[0]), "strategy": self.strategy}}


def markdown_table(header, rows) -> str:
    """A GitHub-flavoured markdown table: pipes escaped, newlines as spaces."""
    def line(cells):
        return "| " + " | ".join(str(cell).replace("|", "\\|").replace("\n", " ") for cell in cells) + " |"
    return "\n".join([line(header), "|" + "---|" * len(header), *(line(row) for row in rows)])


def table_fields(page: pymupdf.Page, bbox: pymupdf.Rect) -> dict:
    """``TableData.fields()`` of the table in ``bbox``, or {} when no table with cells is there
    (or reading it failed: odd drawings must not cost the figure itself)."""
    try:
        table = read_table(page, bbox)
    except Exception:
        return {}
    return table.fields() if table is not None else {}


def read_table(page: pymupdf.Page, bbox: pymupdf.Rect) -> TableData | None:
    """The largest table of at least two rows and two columns inside ``bbox``."""
    clip = (pymupdf.Rect(bbox) + (-_MARGIN_PT, -_MARGIN_PT, _MARGIN_PT, _MARGIN_PT)) & page.rect
    for strategy in ("lines", "text"):
        found = [t for t in page.find_tables(clip=clip, strategy=strategy).tables
                 if t.row_count >= 2 and t.col_count >= 2 and t.row_count * t.col_count <= _MAX_CELLS]
        if found:
            table = max(found, key=lambda t: pymupdf.Rect(t.bbox).get_area())
            rows = _cell_texts(page, table)[0]
            if len(rows) >= 2:
                return TableData(rows, strategy)
    return None


def table_markdown(page: pymupdf.Page, table) -> str:
    """A table ``find_tables`` found on ``page`` as markdown, by the same cell rules as a table
    figure's (what page markdown, transforms/sources/pdf/markdown.py, writes for its tables)."""
    rows, over = _cell_texts(page, table)
    text = markdown_table(rows[0], rows[1:]) + "\n" if rows else ""
    return f"{over}\n\n{text}" if over else text  # the line over it stays on the page


def _cell_texts(page: pymupdf.Page, table) -> tuple[tuple[tuple[str, ...], ...], str]:
    """The table's rows of cell texts, and the text of a line over it that find_tables took for
    an external header but that holds one cell only (a caption or a heading: not a row)."""
    width = table.col_count
    rows = []
    for cells in [row.cells for row in table.rows]:
        cells = (list(cells) + [None] * width)[:width]
        for texts in _line_rows(page, cells) or [[_text(page, cell) for cell in cells]]:
            if any(texts):
                rows.append(tuple(texts))
    over = ""
    if table.header.external:  # a header row find_tables found above the ruled part...
        header = tuple(([_text(page, cell) for cell in table.header.cells] + [""] * width)[:width])
        if sum(1 for text in header if text) >= 2:
            rows.insert(0, header)
        else:  # ...unless it is one line over it
            over = " ".join(text for text in header if text)
    return tuple(rows), over


def _line_rows(page: pymupdf.Page, cells: list) -> list[list[str]] | None:
    """A ruled row that holds several rows of text, one a line, as those rows; None for a row of
    one line, or of cells that wrap. A table ruled only between its columns and under its header
    (TeX's usual tabular) is one row to find_tables: camlidl's manual lost every row of its
    three tables into one cell each. A text line is a row when most lines have text in two cells
    or more; a cell that wraps has lines with text in that cell only."""
    boxes = [pymupdf.Rect(cell) if cell is not None else None for cell in cells]
    present = [box for box in boxes if box is not None]
    if len(present) < 2:
        return None
    words = page.get_text("words", clip=_union(present))
    if not words:
        return None
    words.sort(key=lambda w: ((w[1] + w[3]) / 2, w[0]))
    height = sorted(w[3] - w[1] for w in words)[len(words) // 2]
    lines: list[list] = [[words[0]]]
    for word in words[1:]:
        if (word[1] + word[3]) / 2 - (lines[-1][-1][1] + lines[-1][-1][3]) / 2 > 0.5 * height:
            lines.append([])
        lines[-1].append(word)
    if len(lines) < 2:
        return None
    rows = []
    for line in lines:
        texts = []
        for box in boxes:
            inside = [w for w in line if box is not None and box.contains(pymupdf.Point((w[0] + w[2]) / 2, (w[1] + w[3]) / 2))]
            texts.append(" ".join(w[4] for w in sorted(inside, key=lambda w: w[0])))
        rows.append(texts)
    spread = sum(1 for texts in rows if sum(1 for text in texts if text) >= 2)
    return rows if spread >= 0.8 * len(rows) else None


def _union(boxes) -> pymupdf.Rect:
    out = pymupdf.Rect(boxes[0])
    for box in boxes[1:]:
        out |= box
    return out


def _text(page: pymupdf.Page, cell) -> str:
    if cell is None:  # covered by a merged cell
        return ""
    return " ".join(page.get_textbox(pymupdf.Rect(cell)).split())
