"""A PDF -> a Document: each page's text blocks and images in reading order (PyMuPDF).

PyMuPDF's ``get_text("dict")`` gives a page's blocks, images among them with their bytes; they
are read column by column (pdf/reading_order.py: top to bottom, left to right alternates between
the columns of a two-column page). Headings are told by size: a short block whose text is at
least 1.25 times the document's body size (the size most characters have) is a heading, level 1
from 1.6 times. Opening and its refusals (not_pdf, pdf_corrupt, pdf_encrypted) are the PDF
pipeline's (transforms/sources/pdf/core.py).
"""

from __future__ import annotations

import collections
import hashlib

from vlcurate.transforms.data.rejects import Reject
from vlcurate.transforms.sources.interleaved.document import Document, ImageBlock, text_block
from vlcurate.transforms.sources.pdf.reading_order import reading_order

_HEADING_RATIO, _TITLE_RATIO = 1.25, 1.6
_MAX_HEADING_CHARS = 200
# What the one image decoder takes as it is; other embedded formats (JPX, JBIG2, ...) are turned
# into PNG by MuPDF first, behind the same pixel cap.
_DECODED = ("png", "jpeg", "jpg", "bmp", "tiff", "tif", "gif", "webp")


def read_pdf(data: bytes, uri: str, max_pages: int, max_image_pixels: int) -> Document:
    from vlcurate.transforms.sources.pdf.core import clean_text, open_pdf
    import pymupdf

    document = open_pdf(data)
    if document.page_count == 0:
        raise Reject("pdf_corrupt" if document.is_repaired else "pdf_empty", "no pages")
    if document.page_count > max_pages:
        raise Reject("pdf_too_many_pages", f"{document.page_count} pages, cap {max_pages}")
    pages = []
    sizes: collections.Counter = collections.Counter()
    for page in document:
        try:
            layout = page.get_text("dict", sort=True, flags=pymupdf.TEXTFLAGS_DICT | pymupdf.TEXT_PRESERVE_IMAGES)
        except Exception as error:  # a damaged content stream
            raise Reject("pdf_corrupt", f"page {page.number + 1}: {error}") from error
        blocks = layout["blocks"]
        pages.append([blocks[index] for index in reading_order([block["bbox"] for block in blocks])])
        for block in layout["blocks"]:
            for line in block.get("lines", ()):
                for span in line["spans"]:
                    sizes[round(span["size"], 1)] += len(span["text"].strip())
    body = sizes.most_common(1)[0][0] if sizes else 0.0
    out: list = []
    for number, page_blocks in enumerate(pages, start=1):
        for block in page_blocks:
            if block.get("type") == 1:
                out.append(_image(block, number, max_image_pixels))
                continue
            lines = [" ".join(span["text"] for span in line["spans"]) for line in block.get("lines", ())]
            text = clean_text(" ".join(lines))
            size = max((span["size"] for line in block.get("lines", ()) for span in line["spans"]), default=0)
            level = 0
            if body and len(text) <= _MAX_HEADING_CHARS:
                level = 1 if size >= _TITLE_RATIO * body else 2 if size >= _HEADING_RATIO * body else 0
            made = text_block(text, level)
            if made is not None:
                out.append(made)
    title = clean_text(str((document.metadata or {}).get("title") or ""))
    return Document(uri=uri, format="pdf", identity=(hashlib.sha256(data).hexdigest(),), blocks=tuple(out),
                    title=title, text_source="pdf-text-layer", provenance=(("pymupdf", pymupdf.VersionBind),))


def _image(block: dict, page: int, max_pixels: int) -> ImageBlock:
    src = f"page={page} bbox={','.join(f'{v:.0f}' for v in block['bbox'])}"
    data, ext = block.get("image") or b"", str(block.get("ext") or "").lower()
    width, height = int(block.get("width") or 0), int(block.get("height") or 0)
    if width * height > max_pixels:
        return ImageBlock(None, src, "", ("image_too_large", f"{width}x{height} pixels, cap {max_pixels}"))
    if ext not in _DECODED and data:
        import pymupdf

        try:
            data = pymupdf.Pixmap(data).tobytes("png")
        except Exception as error:
            return ImageBlock(None, src, "", ("image_unreadable", f"{ext}: {error}"))
    return ImageBlock(data, src, "")
