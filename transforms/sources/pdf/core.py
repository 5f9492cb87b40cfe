"""PDF pages as document_ocr samples: open and check a document, render each page, read its text.

The core functions work on plain values and a PyMuPDF document and can be called without Beam
(the Beam stages are in pdf_stage.py). ``inspect_uri`` and ``render_page_of_uri`` are what those
stages send to an isolated child process (transforms/runtime/isolation.py), which reads the file itself
and keeps the last documents open, so a PDF's bytes are not copied across the pipe per page.
This module does not import Beam, so that a child starts quickly.
"""

from __future__ import annotations

import collections
import hashlib
from typing import Any

from vlcurate.transforms.sources.pdf.imports import without

# Rendering pages uses neither of the packages PyMuPDF would import with it (imports.py): together
# they were 0.4 of the 0.65 CPU-seconds every child spent starting.
with without("pymupdf.layout", "pymupdf4llm"):
    import pymupdf

# pymupdf4llm switches MuPDF's ascender/descender corrections of character boxes off for the whole
# process when it is imported, and the text blocks' boxes depend on that. Switched off here too,
# so a page's text blocks are the same whether or not this process loaded pymupdf4llm (and the
# same as when PyMuPDF loaded it itself).
pymupdf.TOOLS.unset_quad_corrections(True)

from vlcurate import __version__
from vlcurate.transforms.data.png import pixmap_png
from vlcurate.transforms.io.files import read_capped
from vlcurate.transforms.ocr.core import with_ocr
from vlcurate.transforms.sources.pdf.blocks import page_blocks
from vlcurate.transforms.sources.pdf.config import PageTask, PdfConfig
from vlcurate.transforms.sources.pdf.reading_order import reading_order
from vlcurate.transforms.data.rejects import Reject
from vlcurate.transforms.data.sample import Image, Sample, make_key

# MuPDF prints repair chatter to stderr for every damaged file; the rejects say what matters.
pymupdf.TOOLS.mupdf_display_errors(False)
pymupdf.TOOLS.mupdf_display_warnings(False)

_METADATA_FIELDS = ("title", "author", "subject", "creator", "producer", "format")
_MAX_METADATA_CHARS = 1000
# A PDF header may follow some junk; readers look within the first kilobyte.
_HEADER_WINDOW = 1024


def clean_text(text: str) -> str:
    """Text safe for UTF-8 JSON and tar members: no NULs, no lone surrogates."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def open_pdf(data: bytes) -> pymupdf.Document:
    """Open bytes as a PDF, and only as a PDF (MuPDF would also open images, XPS, EPUB)."""
    if b"%PDF-" not in data[:_HEADER_WINDOW]:
        raise Reject("not_pdf", "no %PDF- header in the first kilobyte")
    try:
        document = pymupdf.open(stream=data, filetype="pdf")
    except Exception as error:  # MuPDF raises FileDataError, RuntimeError, ValueError...
        raise Reject("pdf_corrupt", f"cannot open: {error}") from error
    if document.needs_pass:
        raise Reject("pdf_encrypted", "the document needs a password")
    return document


def inspect_document(document: pymupdf.Document, uri: str, file_sha256: str, config: PdfConfig) -> list[PageTask]:
    """Check a whole document against the caps and list its pages."""
    try:
        page_count = document.page_count
    except Exception as error:
        raise Reject("pdf_corrupt", f"cannot count pages: {error}") from error
    repaired = bool(document.is_repaired)
    if page_count == 0:
        # A repaired file with no pages left is a damaged one, not an empty one.
        raise Reject("pdf_corrupt" if repaired else "pdf_empty", "no pages" + (" after repair" if repaired else ""))
    if page_count > config.max_pages:
        raise Reject("pdf_too_many_pages", f"{page_count} pages, cap {config.max_pages}")
    raw = document.metadata or {}
    metadata = tuple(
        (name, clean_text(str(raw.get(name) or ""))[:_MAX_METADATA_CHARS]) for name in _METADATA_FIELDS
    )
    return [PageTask(uri, file_sha256, index, page_count, metadata, repaired) for index in range(page_count)]


def render_size(width_pt: float, height_pt: float, page_size: int) -> tuple[float, int, int]:
    """Scale and pixel size that put ``page_size`` pixels on the page's long side.

    The pixel size is MuPDF's own: the scaled page rounded outwards to whole pixels, which is
    what ``get_pixmap`` allocates, so the pixel cap is checked against the real image.
    """
    if not (width_pt > 0 and height_pt > 0):
        raise Reject("page_degenerate", f"page is {width_pt}x{height_pt} points")
    scale = page_size / max(width_pt, height_pt)
    pixels = (pymupdf.Rect(0, 0, width_pt, height_pt) * pymupdf.Matrix(scale, scale)).irect
    if pixels.width < 1 or pixels.height < 1 or width_pt * scale < 0.5 or height_pt * scale < 0.5:
        raise Reject("page_degenerate", f"renders to {width_pt * scale:.2f}x{height_pt * scale:.2f} pixels")
    return scale, pixels.width, pixels.height


def render_page(document: pymupdf.Document, task: PageTask, config: PdfConfig) -> Sample:
    """Render one page to an image and read its text layer in reading order."""
    try:
        page = document.load_page(task.page_index)
        rect = page.rect
    except Exception as error:
        raise Reject("pdf_corrupt", f"cannot load page: {error}") from error
    scale, width_px, height_px = render_size(rect.width, rect.height, config.page_size)
    if width_px * height_px > config.max_page_pixels:
        raise Reject("page_too_large", f"{width_px}x{height_px} pixels, cap {config.max_page_pixels}")
    try:
        pixmap = page.get_pixmap(matrix=pymupdf.Matrix(scale, scale), alpha=False)
        if config.image_format == "png":
            data = pixmap_png(pixmap)  # libdeflate: MuPDF's own writer was 3/4 of a page's CPU
        else:
            data = pixmap.tobytes("jpeg", jpg_quality=config.jpeg_quality)
        blocks = page_blocks(page, sort=True)
    except Exception as error:
        raise Reject("pdf_corrupt", f"cannot render page: {error}") from error
    blocks = [blocks[index] for index in reading_order([block[:4] for block in blocks])]  # columns one by one
    image = Image(data, config.image_format, pixmap.width, pixmap.height)
    # Text boxes come in the unrotated page's space; the image shows the page as rotated.
    text_blocks = _text_blocks(blocks, page.rotation_matrix * pymupdf.Matrix(scale, scale))
    text = "\n\n".join(block["text"] for block in text_blocks)
    needs_ocr = not text.strip()
    ocr = config.ocr.wanted(has_text=not needs_ocr)
    markdown = _markdown(document, task) if config.markdown and not needs_ocr and not ocr else None
    sample = Sample(
        key=make_key("pdf", task.file_sha256, task.locator),
        source="pdf",
        category="document_ocr",
        uri=task.uri,
        locator=task.locator,
        images=(image,),
        text=text,
        markdown=markdown,
        text_source=None if needs_ocr else "pdf-text-layer",
        provenance={"vlcurate": __version__, "pymupdf": pymupdf.VersionBind},
        meta={
            "needs_ocr": needs_ocr,
            "text_blocks": text_blocks,
            "pdf": {
                **dict(task.metadata),
                "file_sha256": task.file_sha256,
                "page_number": task.page_index + 1,
                "page_count": task.page_count,
                "page_width_pt": round(rect.width, 2),
                "page_height_pt": round(rect.height, 2),
                "repaired": task.repaired,
            },
        },
    )
    if ocr:
        image, to_sample = _ocr_image(page, pixmap, scale, config)
        sample = with_ocr(sample, config.ocr, image, to_sample, markdown=config.markdown)
    return sample


def _markdown(document: pymupdf.Document, task: PageTask) -> str | None:
    """The page as markdown (transforms/sources/pdf/markdown.py, imported on first use: it loads
    pymupdf4llm); None when it cannot be made, which must not cost the page itself."""
    from vlcurate.transforms.sources.pdf.markdown import page_markdown

    try:
        return page_markdown(document, task.file_sha256, task.page_index)
    except Exception:
        return None


def _ocr_image(page: pymupdf.Page, pixmap: pymupdf.Pixmap, scale: float, config: PdfConfig):
    """The page as an RGB image at the OCR resolution, and the factor from its pixels to the
    sample image's. The sample's own pixmap serves when it is at least as sharp; the OCR
    resolution is lowered to stay under the pixel cap."""
    from PIL import Image as PILImage

    rect = page.rect
    ocr_scale = config.ocr.dpi / 72
    cap = min(config.max_page_pixels, config.ocr.max_image_pixels)
    ocr_scale = min(ocr_scale, (cap / max(rect.width * rect.height, 1e-9)) ** 0.5)
    if ocr_scale > scale:
        try:
            pixmap_for_ocr = page.get_pixmap(matrix=pymupdf.Matrix(ocr_scale, ocr_scale), alpha=False)
        except Exception as error:
            raise Reject("pdf_corrupt", f"cannot render page for OCR: {error}") from error
    else:
        pixmap_for_ocr = pixmap
    image = PILImage.frombytes("RGB", (pixmap_for_ocr.width, pixmap_for_ocr.height), pixmap_for_ocr.samples)
    return image, pixmap.width / pixmap_for_ocr.width


def _text_blocks(blocks, to_image: pymupdf.Matrix) -> list[dict[str, Any]]:
    """Text blocks (not image blocks) with boxes in the rendered image's pixels."""
    out = []
    for x0, y0, x1, y1, text, _number, block_type in blocks:
        text = clean_text(text).strip()
        if block_type != 0 or not text:
            continue
        box = pymupdf.Rect(x0, y0, x1, y1) * to_image
        out.append({"bbox": [round(value, 1) for value in box], "text": text})
    return out


# --- what the isolated child runs -------------------------------------------------------------

# sha256 -> open document; a child keeps the last few, since consecutive pages often share one.
_OPEN_DOCUMENTS: collections.OrderedDict[str, pymupdf.Document] = collections.OrderedDict()
_OPEN_DOCUMENTS_KEPT = 2


def _remember(file_sha256: str, document: pymupdf.Document) -> None:
    previous = _OPEN_DOCUMENTS.pop(file_sha256, None)
    if previous is not None and previous is not document:
        previous.close()
    _OPEN_DOCUMENTS[file_sha256] = document
    while len(_OPEN_DOCUMENTS) > _OPEN_DOCUMENTS_KEPT:
        _OPEN_DOCUMENTS.popitem(last=False)[1].close()


def inspect_uri(uri: str, size_in_bytes: int, config: PdfConfig) -> list[PageTask]:
    """Read, open and check one input file; its pages, or a Reject."""
    if size_in_bytes > config.max_file_bytes:
        raise Reject("file_too_large", f"{size_in_bytes} bytes, cap {config.max_file_bytes}")
    data = read_capped(uri, config.max_file_bytes)
    file_sha256 = hashlib.sha256(data).hexdigest()
    document = open_pdf(data)
    try:
        tasks = inspect_document(document, uri, file_sha256, config)
    except Reject:
        document.close()
        raise
    _remember(file_sha256, document)
    return tasks


def document_of(task: PageTask, config: PdfConfig) -> pymupdf.Document:
    """The task's document, reopened from its file unless this child has it open already."""
    document = _OPEN_DOCUMENTS.get(task.file_sha256)
    if document is None:
        data = read_capped(task.uri, config.max_file_bytes)
        if hashlib.sha256(data).hexdigest() != task.file_sha256:
            raise Reject("input_changed", "the file's sha256 differs from when it was listed")
        document = open_pdf(data)
        _remember(task.file_sha256, document)
    else:
        _OPEN_DOCUMENTS.move_to_end(task.file_sha256)
    return document


def render_page_of_uri(task: PageTask, config: PdfConfig) -> Sample:
    """Render one page (what the PDF pipeline's child runs)."""
    return render_page(document_of(task, config), task, config)
