"""Whether a box the layout model calls a table has the shape of one: rows and columns of
content. Contents and index pages (entries joined to page numbers by dot leaders) and code
listings are boxed as tables by the model, and are not; figures.py drops such boxes."""

from __future__ import annotations

import re

import pymupdf

_LEADER = re.compile(r"(?:\.\s?){4,}|…{2,}")  # "Preface . . . . . 1", "cbind..........26"
_CODE = re.compile(r"<-|[{};=#]|\w\(|\)$|^>\s")  # R/Python/C punctuation, a prompt
_ROW_PT = 2.5  # lines whose centres are this close are one row
_CELL_GAP_PT = 8.0  # a gap this wide between two lines of one row separates two cells


def rows_of(page: pymupdf.Page, bbox: pymupdf.Rect) -> list[list[tuple[pymupdf.Rect, str]]]:
    """The text lines in ``bbox`` grouped into rows, each row left to right."""
    lines = []
    for block in page.get_text("dict", clip=bbox).get("blocks", []):
        for line in block.get("lines", []):
            text = " ".join(span["text"].strip() for span in line["spans"] if span["text"].strip())
            if text:
                lines.append((pymupdf.Rect(line["bbox"]), text))
    rows: list[list[tuple[pymupdf.Rect, str]]] = []
    for rect, text in sorted(lines, key=lambda item: ((item[0].y0 + item[0].y1) / 2, item[0].x0)):
        middle = (rect.y0 + rect.y1) / 2
        if rows and abs((rows[-1][0][0].y0 + rows[-1][0][0].y1) / 2 - middle) < _ROW_PT:
            rows[-1].append((rect, text))
        else:
            rows.append([(rect, text)])
    return [sorted(row, key=lambda item: item[0].x0) for row in rows]


def why_not_a_table(page: pymupdf.Page, bbox: pymupdf.Rect) -> str | None:
    """None when the box holds rows of two cells or more; else what it is instead."""
    rows = rows_of(page, bbox)
    if not rows:
        return "no text"
    texts = [" ".join(text for _, text in row) for row in rows]
    if sum(bool(_LEADER.search(text)) for text in texts) >= 0.3 * len(rows):
        return "dot leaders: a contents or index list"
    if sum(bool(_CODE.search(text)) for text in texts) >= 0.5 * len(rows):
        return "a code listing"
    celled = sum(_cells(row) >= 2 for row in rows)
    if celled < 2 or celled < 0.5 * len(rows):
        return "no rows of two cells or more"
    return None


def _cells(row) -> int:
    count, right = 0, None
    for rect, _ in row:
        if right is None or rect.x0 - right >= _CELL_GAP_PT:
            count += 1
        right = rect.x1 if right is None else max(right, rect.x1)
    return count
