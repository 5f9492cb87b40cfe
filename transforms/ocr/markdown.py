"""OCR text as markdown, in the reading order the engine's rows are in: headings by line size,
paragraphs by the space between rows, list items by their bullets or numbers.

An OCR engine gives lines with boxes, not fonts, so a line's size is its box's short side. The
body size is the median size of the rows that hold some text; a short row at least ``_H2`` times
that is a heading (``#`` from ``_H1`` times). A row starts a new paragraph when the gap above it is
more than ``_PARAGRAPH_GAP`` body sizes, or when it stands above the row before it (the next column
in reading order). Rows are never reordered or merged, so the markdown reads as the txt does.
"""

from __future__ import annotations

import re
import statistics

_H1, _H2 = 1.8, 1.3  # a heading's size against the body's
_HEADING_MAX_CHARS = 120  # longer rows are prose, however large
_PARAGRAPH_GAP = 0.8  # in body sizes
_BULLET = re.compile(r"^[•·▪◦●‣∙*\-–]\s+")
_NUMBERED = re.compile(r"^(\d{1,3}|[a-zA-Z])[.)]\s+")
_MARKUP_START = re.compile(r"^([#>]|[-+*]\s|\d+[.)]\s)")  # text that markdown would read as markup


def ocr_markdown(rows) -> str:
    """Markdown of OCR ``rows`` (lists of lines with ``text`` and box edges), in their order."""
    rows = [[line for line in row if line.text.strip()] for row in rows]
    rows = [row for row in rows if row]
    if not rows:
        return ""
    sizes = [_size(row) for row in rows]
    texty = [size for size, row in zip(sizes, rows) if sum(len(line.text) for line in row) >= 8]
    body = statistics.median(texty or sizes)
    out: list[str] = []
    previous = None
    for row, size in zip(rows, sizes):
        text = " ".join(" ".join(line.text.split()) for line in row)
        top, bottom = min(line.top for line in row), max(line.bottom for line in row)
        heading = body > 0 and size >= _H2 * body and len(text) <= _HEADING_MAX_CHARS
        if heading:
            out.extend(["", ("# " if size >= _H1 * body else "## ") + text, ""])
        else:
            if previous is not None and (top - previous > _PARAGRAPH_GAP * body or bottom <= previous):
                out.append("")
            out.append(_body_line(text))
        previous = bottom
    return "\n".join(_squeeze(out)) + "\n"


def _size(row) -> float:
    return statistics.median(min(line.bottom - line.top, line.right - line.left) for line in row)


def _body_line(text: str) -> str:
    """A bulleted row as a markdown list item, a numbered one as is; other text that markdown would
    take for markup (a leading #, >, or a bullet without its space) is escaped."""
    if _BULLET.match(text):
        return "- " + _BULLET.sub("", text)
    if _NUMBERED.match(text):
        return text
    return "\\" + text if _MARKUP_START.match(text) else text


def _squeeze(lines: list[str]) -> list[str]:
    """No blank line at either end, nor two in a row."""
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return out
