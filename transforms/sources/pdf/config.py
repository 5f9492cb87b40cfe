"""The PDF stage's settings and work items, importable without PyMuPDF.

The pipeline's own process only plans and writes; PyMuPDF runs in isolated children. Keeping
these two types apart from pdf.py spares every Beam worker the PyMuPDF import (about half a
second with pymupdf-layout's ONNX sessions).
"""

from __future__ import annotations

import dataclasses

from vlcurate.transforms.ocr.config import OcrConfig

# What the PDF stages' isolated children import as they start: the PDF core, and PyMuPDF with it.
CHILD_MODULES = ("vlcurate.transforms.sources.pdf.core",)


@dataclasses.dataclass(frozen=True)
class FigureConfig:
    """Settings of figure extraction (transforms/sources/pdf/figures.py)."""

    dpi: int = 144  # crops are rendered at least this sharp...
    min_side_px: int = 512  # ...and at least this many pixels on their long side...
    max_side_px: int = 2048  # ...and at most this many
    min_figure_pt: float = 48.0  # smaller boxes (icons, rules, bullets) are not figures
    caption_distance_pt: float = 72.0  # how far from the figure a caption may start

    def __post_init__(self):
        if not (36 <= self.dpi <= 600 and 16 <= self.min_side_px <= self.max_side_px and self.min_figure_pt > 0):
            raise ValueError("figure settings out of range")


@dataclasses.dataclass(frozen=True)
class PdfConfig:
    """Settings of the PDF stage; every cap is here with a safe default."""

    page_size: int = 1024  # pixels on the rendered page's long side
    image_format: str = "png"  # png or jpeg
    jpeg_quality: int = 90
    max_file_bytes: int = 256 * 1024 * 1024
    max_pages: int = 2000
    max_page_pixels: int = 16_000_000
    page_timeout_s: float = 60.0
    worker_memory_mb: int | None = 4096
    ocr: OcrConfig = OcrConfig()  # pages without a text layer are OCRed (mode auto)
    figures: FigureConfig | None = None  # also crop each page's figures (table_chart samples)
    markdown: bool = False  # each page also as markdown (KEY.md): pymupdf4llm, or the OCR text's

    def __post_init__(self):
        if self.image_format not in ("png", "jpeg"):
            raise ValueError(f"image_format must be png or jpeg, not {self.image_format!r}")
        if self.page_size < 16:
            raise ValueError("page_size must be at least 16 pixels")
        if min(self.max_file_bytes, self.max_pages, self.max_page_pixels) < 1 or self.page_timeout_s <= 0:
            raise ValueError("caps and the page timeout must be positive")


@dataclasses.dataclass(frozen=True)
class PageTask:
    """One page to render: where it is, and the document facts every page sample carries."""

    uri: str
    file_sha256: str
    page_index: int  # 0-based
    page_count: int
    metadata: tuple[tuple[str, str], ...]
    repaired: bool

    @property
    def locator(self) -> str:
        return f"page={self.page_index + 1}"
