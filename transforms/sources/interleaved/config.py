"""The interleaved stage's settings and work items, importable without PyMuPDF, lxml or a browser.

The pipeline's own process only plans (a file or a URL becomes a task); documents are read in
isolated children (core.py).
"""

from __future__ import annotations

import dataclasses

from vlcurate.transforms.sources.web.config import WebConfig

# What a folder input is filtered by, and which reader takes each.
FILE_FORMATS = {"epub": "epub", "pdf": "pdf", "html": "html", "htm": "html", "xhtml": "html"}


@dataclasses.dataclass(frozen=True)
class EpubCaps:
    """An EPUB is a zip from a stranger: caps on what its central directory may claim and on what
    its members really inflate to (a header can lie)."""

    max_entries: int = 10_000
    max_entry_bytes: int = 64 * 1024 * 1024
    max_total_bytes: int = 1024 * 1024 * 1024
    max_ratio: float = 200.0  # inflated / compressed, for members over ratio_floor bytes
    ratio_floor: int = 1024 * 1024
    max_chapters: int = 5_000


@dataclasses.dataclass(frozen=True)
class InterleavedConfig:
    """Settings of the interleaved stage; every cap and filter threshold is here with its default."""

    max_tokens: int = 2048  # estimated text tokens (about 4 characters each) a sample holds at most
    max_images: int = 8  # images a sample holds at most
    split_level: int = 2  # headings of this level or higher (h1, h2) start a section
    min_image_side: int = 64  # smaller images (icons, bullets, spacers) are dropped: image_tiny
    max_image_aspect: float = 4.0  # longer/shorter side above this (rules, banners): image_decorative
    max_image_side: int = 1024  # larger images are scaled down to this long side
    min_chars_per_image: int = 100  # a part with less text per image is filtered
    max_image_pixels: int = 40_000_000
    max_file_bytes: int = 256 * 1024 * 1024
    max_pages: int = 2000  # a PDF's pages
    timeout_s: float = 120.0  # one document (a page's own budget is web.page_timeout_s)
    worker_memory_mb: int | None = 4096  # EPUB and PDF children (browsers run uncapped, as in web)
    epub: EpubCaps = EpubCaps()
    web: WebConfig = WebConfig()  # how pages are fetched and rendered (one viewport)

    def __post_init__(self):
        if self.max_tokens < 16 or self.max_images < 1 or not 1 <= self.split_level <= 6:
            raise ValueError("max tokens must be >= 16, max images >= 1, split level 1 to 6")
        if self.min_image_side < 1 or self.max_image_aspect < 1 or self.max_image_side < self.min_image_side:
            raise ValueError("image sizes must be positive, the aspect cap >= 1, the long side >= the least side")
        if min(self.max_image_pixels, self.max_file_bytes, self.max_pages) < 1 or self.timeout_s <= 0:
            raise ValueError("caps and the timeout must be positive")


@dataclasses.dataclass(frozen=True)
class DocumentTask:
    """One EPUB or PDF file to read."""

    uri: str
    format: str  # "epub" or "pdf"
