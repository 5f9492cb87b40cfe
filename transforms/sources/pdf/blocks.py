"""A page's text blocks, as PyMuPDF's ``Page.get_text("blocks")`` gives them, without its leak.

PyMuPDF 2.0 and 2.1 (the newest on PyPI on 2026-12-04) return every block tuple with one
reference too many, so each tuple, its four coordinates and its text stay alive for good: about
4 KB a page on a page of prose, which a render child kept until it was replaced every
``RECYCLE_AFTER`` calls (transforms/runtime/isolation.py), and what made `bench/memory.py`'s
peak at 16k pages depend on where the children were in that cycle. Upstream has reported and
fixed a reference leak in the same C function, for the block's text (pymupdf/PyMuPDF#5067); the
tuple's is still there in 2.1.

``page_blocks`` drops that one reference from each tuple that has it, telling it by the tuple's
reference count, and only for the PyMuPDF versions measured to leak (``LEAKING``): a release
without the leak, or one that keeps the tuples somewhere for a reason of its own, is left alone
(tests/transforms/sources/test_pdf_blocks.py then says the leak is back, or gone).
"""

from __future__ import annotations

import ctypes
import sys

# The bindings measured to leak every block tuple (pymupdf.VersionBind).
LEAKING = frozenset({"2.0", "2.1"})


def _references(items: list) -> list[int]:
    """Each item's reference count as seen here: the list's, this loop's and the call's own."""
    return [sys.getrefcount(item) for item in items]


# What a block tuple that nothing else holds counts here (the same loop over a list of tuples).
_HELD_BY_THE_LIST = _references([tuple(range(7))])[0]


def page_blocks(page, sort: bool = False) -> list[tuple]:
    """``page.get_text("blocks", sort=sort)``: (x0, y0, x1, y1, text, block number, block type),
    each tuple freed with the list once nothing else uses it."""
    import pymupdf  # the caller has imported it (core.py imports it without its optional packages)

    blocks = page.get_text("blocks", sort=sort)
    if pymupdf.VersionBind in LEAKING:
        release_leaked(blocks)
    return blocks


def release_leaked(blocks: list) -> int:
    """Drop the one reference too many from each tuple of ``blocks`` that has exactly that one
    more than the list holds; how many were dropped. Only for a list PyMuPDF has just returned:
    nothing of ours holds its tuples yet, so the one more is the leak (in any other list it could
    be a holder of ours, and dropping it would free a tuple in use)."""
    dropped = 0
    for block, count in zip(blocks, _references(blocks)):
        if count == _HELD_BY_THE_LIST + 1:
            ctypes.pythonapi.Py_DecRef(ctypes.py_object(block))
            dropped += 1
    return dropped
