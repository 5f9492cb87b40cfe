"""A page's text blocks without PyMuPDF's reference leak (transforms/sources/pdf/blocks.py): the
same blocks as ``get_text("blocks")``, and memory that does not grow with the pages read. The
leak itself is measured too, so that a PyMuPDF release without it fails here and says so."""

from __future__ import annotations

import gc
import sys
import tracemalloc

import pytest

from vlcurate.transforms.sources.pdf.core import pymupdf  # imported as the pipeline imports it
from vlcurate.transforms.sources.pdf.blocks import LEAKING, page_blocks, release_leaked


PAGES = 60
PROSE = " ".join(f"Sentence {n} of the page says what the page is about." for n in range(12))


@pytest.fixture(scope="module")
def document():
    document = pymupdf.open()
    for number in range(PAGES):
        page = document.new_page()
        for rect, text in ((pymupdf.Rect(50, 50, 545, 300), f"Page {number}. " + PROSE),
                           (pymupdf.Rect(50, 320, 295, 780), PROSE), (pymupdf.Rect(300, 320, 545, 780), PROSE[::-1])):
            assert page.insert_textbox(rect, text, fontsize=9) >= 0  # the text fits: one block each
    yield document
    document.close()


def _growth(read) -> int:
    """Bytes still allocated after reading every page's blocks once more (a first pass warms up)."""
    for _ in range(2):
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        read()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    return grown


def test_the_same_blocks_as_pymupdf(document):
    for page in document:
        for sort in (False, True):
            assert page_blocks(page, sort=sort) == page.get_text("blocks", sort=sort)
    blocks = page_blocks(document[0], sort=True)
    assert len(blocks) == 3 and blocks[0][4].startswith("Page 0. Sentence 0")


def test_reading_blocks_keeps_no_memory(document):
    def read():
        for page in document:
            page_blocks(page, sort=True)

    # 60 pages of three blocks, 2 KB of text: the leak keeps about 170 KB (the next test).
    assert _growth(read) < 20_000


def test_the_versions_that_leak_are_the_ones_named(document):
    """The workaround runs for LEAKING alone: there plain get_text("blocks") keeps every block, and
    elsewhere it must not. A PyMuPDF upgrade that fails this says which way: the leak gone (take
    the version out of LEAKING) or still there (put the new version in)."""

    def read():
        for page in document:
            page.get_text("blocks", sort=True)

    grown = _growth(read)
    if pymupdf.VersionBind in LEAKING:
        assert grown > 100_000, f"PyMuPDF {pymupdf.VersionBind} no longer leaks its blocks ({grown} bytes)"
    else:
        assert grown < 20_000, f"PyMuPDF {pymupdf.VersionBind} leaks its blocks too ({grown} bytes)"


def test_tuples_held_only_by_their_list_are_left_alone():
    rows = [tuple([float(n), 0.0, 1.0, 1.0, f"text {n}", n, 0]) for n in range(5)]
    before = [sys.getrefcount(row) for row in rows]
    assert release_leaked(rows) == 0
    assert [sys.getrefcount(row) for row in rows] == before
