"""A PDF page as markdown (headings, lists, tables, code blocks): pymupdf4llm's font rules.

pymupdf4llm's own mode runs PyMuPDF's layout model on every page (an ONNX model: seconds a page
on a CPU); its legacy mode (``pymupdf_rag``) reads the text layer's fonts instead: text larger
than the document's body size is a heading (a level per size), monospaced lines are code blocks,
bullets and numbers start list items, and ruled tables (``find_tables``) become markdown tables.
That mode is what runs here, and the layout model is kept out of the import (as pdf/core.py does).

pymupdf4llm changes the document it reads (it bakes annotations and form fields into the pages),
so it reads a second copy of the document, opened from the same bytes and baked before its first
page is read; the same page would otherwise give another txt, and another md, depending on what
this process read first.
Heading sizes are taken over the whole document (at most ``_HEADER_PAGES`` pages, spread evenly),
once per copy, so a level means the same size on every page (``HeadingSizes``).
"""

from __future__ import annotations

import collections
import re

from vlcurate.transforms.sources.pdf.imports import without

with without("pymupdf.layout"):  # pymupdf4llm then takes its legacy mode and loads no model
    import pymupdf
    from pymupdf4llm.helpers import pymupdf_rag  # (the package checks its version is PyMuPDF's)

from vlcurate.transforms.sources.pdf.core import clean_text
from vlcurate.transforms.sources.pdf.tables import table_markdown

_HEADER_PAGES = 200  # pages read to learn the body and heading font sizes
_GRAPHICS_LIMIT = 5000  # a page with more vector paths than this has its graphics ignored (cost cap)
_COPIES_KEPT = 2
_BLANK_RUNS = re.compile(r"\n{3,}")

_HEADING_LINE = re.compile(r"^#{1,6} ")
_HEADING_EMPHASIS = re.compile(r"^(#+ )\*\*(.*)\*\*$", re.MULTILINE)


def _table_string(parms, i, table_output):
    """pymupdf4llm's tables as table figures have them (one rule for a table's cells): its own
    markdown leaves a "|" in a cell unescaped, which splits the cell, names an empty or merged
    header cell "Col3", and repeats a merged cell's text into the cells it covers."""
    table = parms.tabs[i]
    return table_markdown(table.page, table)


pymupdf_rag._table_string = _table_string  # pymupdf4llm==2.0 renders every table through this hook

# file sha256 -> (the copy pymupdf4llm reads, its heading sizes)
_COPIES: collections.OrderedDict[str, tuple[pymupdf.Document, object]] = collections.OrderedDict()


def page_markdown(document: pymupdf.Document, file_sha256: str, page_index: int) -> str:
    """The page as markdown, from the copy of ``document`` this process keeps for it."""
    copy, headers = _copy_of(document, file_sha256)
    page = copy.load_page(page_index)
    tables = "lines_strict" if _ruled(page) else None
    text = pymupdf_rag.to_markdown(copy, pages=[page_index], hdr_info=headers, table_strategy=tables,
                                   ignore_images=True, graphics_limit=_GRAPHICS_LIMIT, show_progress=False)
    if "```" in text:
        text = _headings_out_of_code(text, page, headers)
    text = _HEADING_EMPHASIS.sub(r"\1\2", clean_text(text))  # a heading is bold already
    return _BLANK_RUNS.sub("\n\n", text).strip() + "\n"


def _headings_out_of_code(text: str, page: pymupdf.Page, headers) -> str:
    """pymupdf4llm==2.0 writes a heading that follows code lines in the same text block inside
    the code block (its heading branch skips closing the block). A line in a code block that is
    one of the page's headings (a heading size, not monospaced) is taken out of it: the block is
    closed before it and opened again after it, and code blocks left empty are dropped."""
    headings = None
    out, code = [], False
    for line in text.split("\n"):
        if line.startswith("```"):
            code = not code
        elif code and _HEADING_LINE.match(line):
            if headings is None:
                headings = _heading_texts(page, headers)
            if _HEADING_LINE.sub("", line).replace("**", "").strip() in headings:
                out.extend(["```", line, "```"])
                continue
        out.append(line)
    kept, i = [], 0
    while i < len(out):  # an opening fence with nothing but blank lines before its closing one
        if out[i] == "```":
            j = i + 1
            while j < len(out) and not out[j].strip():
                j += 1
            if j < len(out) and out[j] == "```" and sum(1 for line in kept if line.startswith("```")) % 2 == 0:
                i = j + 1
                continue
        kept.append(out[i])
        i += 1
    return "\n".join(kept)


def _heading_texts(page: pymupdf.Page, headers) -> set[str]:
    """The text of the page's lines that pymupdf4llm takes for headings, whitespace collapsed."""
    found = set()
    for block in page.get_text("dict").get("blocks", ()):
        for line in block.get("lines", ()):
            spans = [span for span in line["spans"] if span["text"].strip()]
            if spans and not all(span["flags"] & pymupdf.TEXT_FONT_MONOSPACED for span in spans) \
                    and any(headers.get_header_id(span, page=page) for span in spans):
                found.add(" ".join(" ".join(span["text"] for span in spans).split()))
    return found


def _ruled(page: pymupdf.Page) -> bool:
    """Whether the page has the rules a ruled table needs: two horizontal and two vertical edges
    (a rectangle has both). find_tables is most of a page's cost (measured: 1.1 of 1.3 s on a page
    of the DocBook XSL reference, whose only paths are the header's and footer's rules), and its
    "lines_strict" strategy finds no table without them."""
    across = down = 0
    for path in page.get_cdrawings():
        for item in path.get("items", ()):
            if item[0] in ("re", "qu"):
                across, down = across + 2, down + 2
            elif item[0] == "l":
                (x0, y0), (x1, y1) = item[1], item[2]
                across += abs(y1 - y0) < 1
                down += abs(x1 - x0) < 1
            if across >= 2 and down >= 2:
                return True
    return False


class HeadingSizes:
    """Which font sizes are headings, at which level: pymupdf4llm's ``IdentifyHeaders`` with
    three changes, each from a Debian manual whose outline (TOC) headings it missed.

    - The body is the size with the most characters; pymupdf4llm takes at least 12 pt, so a
      10 pt TeX manual's 12 pt sections were body text (gnuplot.pdf: 8 of 48 outline entries found).
    - Every size above the body is a heading; past the sixth the level stays ``######``
      (asymptote.pdf: six sizes from its cover and figures left its 17 pt chapters and 14 pt
      sections as body text: 0 of 6 found).
    - Levels go to the sizes that recur over the pages first, largest first, then to sizes seen on
      one page only (a cover's title, one figure's lettering), so those do not push the
      document's own headings down.
    """

    def __init__(self, document: pymupdf.Document, pages: list[int]):
        chars: collections.Counter = collections.Counter()
        seen_on: dict[int, set] = collections.defaultdict(set)
        for number in pages:
            for block in document.load_page(number).get_text("dict", flags=pymupdf.TEXTFLAGS_TEXT)["blocks"]:
                for line in block.get("lines", ()):
                    for span in line["spans"]:
                        if span["text"].strip():
                            size = round(span["size"])
                            chars[size] += len(span["text"].strip())
                            seen_on[size].add(number)
        self.body_limit = max(chars, key=lambda size: (chars[size], size)) if chars else 12
        sizes = sorted((size for size in chars if size > self.body_limit),
                       key=lambda size: (len(seen_on[size]) < 2, -size))
        self.header_id = {size: "#" * min(level, 6) + " " for level, size in enumerate(sizes, start=1)}

    def get_header_id(self, span: dict, page=None) -> str:
        """The markdown heading prefix of a text span ("" for body text), as pymupdf4llm asks it."""
        return self.header_id.get(round(span["size"]), "")


def _copy_of(document: pymupdf.Document, file_sha256: str):
    kept = _COPIES.get(file_sha256)
    if kept is not None:
        _COPIES.move_to_end(file_sha256)
        return kept
    copy = pymupdf.open(stream=document.stream, filetype="pdf") if document.stream is not None \
        else pymupdf.open(document.name, filetype="pdf")
    if copy.is_form_pdf or copy.has_annots():
        copy.bake()  # what pymupdf4llm does on its first call: done first, every page reads the same copy
    count = copy.page_count
    pages = list(range(count)) if count <= _HEADER_PAGES else \
        sorted({i * (count - 1) // (_HEADER_PAGES - 1) for i in range(_HEADER_PAGES)})
    kept = _COPIES[file_sha256] = (copy, HeadingSizes(copy, pages))
    while len(_COPIES) > _COPIES_KEPT:
        _COPIES.popitem(last=False)[1][0].close()
    return kept
