"""The dead-letter convention: the Reject exception, the fixed set of reason codes, reject rows.

Every input that does not become a sample becomes one reject row with a reason code from
``REASONS``, so a run loses nothing and its totals add up (inputs = samples + rejected + filtered).
"""

from __future__ import annotations

import dataclasses
import re

# The documented reason codes. A stage raising a code that is not here is a bug, caught at once.
REASONS = {
    # reading inputs
    "file_too_large": "the input file (or a downloaded image) is larger than --max-file-bytes",
    "read_error": "the input could not be read",
    "input_changed": "the input's content changed while the run was reading it",
    # PDF documents and pages
    "not_pdf": "the input is not a PDF (no %PDF- header)",
    "pdf_corrupt": "the PDF is truncated or damaged beyond repair",
    "pdf_encrypted": "the PDF needs a password",
    "pdf_empty": "the PDF has zero pages",
    "pdf_too_many_pages": "the PDF has more pages than --max-pages",
    "page_too_large": "the rendered page would have more pixels than --max-page-pixels",
    "page_degenerate": "the page has no area, or renders to less than one pixel on a side",
    # web pages
    "bad_input": "an input record is malformed (not JSON, no url, a URL without a host)",
    "url_blocked": "a URL's scheme is not http(s), or its address is loopback, private, link-local, "
    "multicast or reserved (checked on the resolved address of every connection)",
    "network_error": "the page could not be fetched (no such host, connection refused or reset)",
    "http_error": "the page (or a downloaded image) answered with an HTTP status of 400 or more",
    "too_many_redirects": "the page redirects without end",
    "too_many_bytes": "the page pulled more than --max-page-bytes, or its HTML is over the cap",
    "download_refused": "the URL is a download, not a page",
    "browser_crash": "the browser or the page's renderer crashed on this page",
    # image-caption pairs (vlcurate captions, vlcurate web --alt-text)
    "download_error": "the image could not be downloaded (no such host, connection refused or reset, TLS)",
    "opt_out": "the image's server opts it out of AI training (X-Robots-Tag: noai or noimageai)",
    "caption_empty": "the record has no caption (an empty caption column, or no sidecar .txt beside the image)",
    # images and OCR
    "image_unreadable": "the input is not an image of an accepted format (PNG, JPEG, WebP, BMP, TIFF, GIF), "
    "or it is truncated or damaged",
    "image_too_large": "the image has more pixels than --max-image-pixels (Pillow's decompression-bomb check)",
    "ocr_empty": "OCR found no text in the image (kept with --keep-empty)",
    # figures and charts in PDFs
    "no_figures": "the page holds no figure, chart or table",
    # notebooks
    "notebook_invalid": "the input is not a Jupyter notebook (invalid JSON, or nbformat rejects it)",
    "notebook_no_plots": "the notebook has no image output",
    "plot_several_images": "the cell shows more than one image; a pair keeps exactly one",
    "plot_code_too_short": "the code behind the plot has fewer than 5 lines",
    # instruction (SFT) records
    "sft_malformed": "an instruction record is not JSON, not a known shape (DeepSeek-VL, LLaVA, ShareGPT), has "
    "unknown roles, turns out of order, or no assistant answer",
    "record_too_large": "an instruction record (a JSONL line) is longer than --max-record-bytes",
    "sft_image_mismatch": "a record's image placeholders (<image>, <image_placeholder>) do not match its images",
    "sft_image_missing": "a record names an image that is not there, outside the image root, or remote (not fetched)",
    # interleaved documents (vlcurate interleaved)
    "epub_invalid": "the input is not an EPUB: not a zip, or no container, package document or readable chapter",
    "epub_unsafe": "the EPUB breaks a cap: too many members, a member or the whole too large when inflated, a "
    "compression ratio of a zip bomb, or a path outside the book",
    "interleaved_no_content": "the document has no main content left: no text and no usable image once navigation, "
    "footers and ads are stripped",
    "interleaved_no_images": "a part of a document (a run of sections) has no image left; it would be text-only data",
    "interleaved_too_little_text": "a part of a document has fewer than --min-chars-per-image characters of text per image",
    "image_tiny": "an image of a document is smaller than --min-image-side on a side (icons, bullets, spacers)",
    "image_decorative": "an image of a document is longer than --max-image-aspect times its width or height (rules, "
    "banners)",
    "image_missing": "an image a document names is not there: not in the book, outside it, not loaded by the page, "
    "or remote (an EPUB's remote images are not fetched)",
    # text-only corpora
    "text_empty": "a text document is empty, or shorter than --min-chars",
    # quality and duplicates (vlcurate filter, --clip-*, --dedup)
    "clip_below_threshold": "the image-text pair's CLIP score is under --clip-min-score, or under the run's "
    "--clip-keep-fraction quantile; the row's score and threshold columns hold both",
    "duplicate_exact": "another sample has the same image bytes; the one with the smallest key was kept (named in detail)",
    "duplicate_near": "another sample's image is a near copy (perceptual hash, or CLIP embedding); the smallest key "
    "of the pair was kept (named in detail; score and threshold: the pHash distance and the most allowed, or the "
    "cosine and the least)",
    # isolation of native code
    "timeout": "the stage took longer than its time limit on this input",
    "worker_crashed": "the isolated worker process died on this input (native crash, out of memory)",
    # extending a dataset (vlcurate run --mode extend)
    "already_in_dataset": "an earlier run of the dataset already wrote a sample with this key",
    # the sink
    "duplicate_key": "another input gave a sample with the same key; the one with the smallest uri was kept",
    "staging_lost": "the sample's staged bytes were missing or changed when its shard was written",
    # anything else
    "internal_error": "an unexpected error in a stage (a bug to report); detail names the exception",
}

# Reasons that drop a valid sample by policy (quality, duplicates) rather than for bad input.
# The manifest counts them as "filtered", the rest as "rejected".
FILTER_REASONS = frozenset({
    "duplicate_key", "ocr_empty", "no_figures", "notebook_no_plots", "plot_several_images", "plot_code_too_short",
    "clip_below_threshold", "duplicate_exact", "duplicate_near", "text_empty", "already_in_dataset",
    "interleaved_no_content", "interleaved_no_images", "interleaved_too_little_text", "image_tiny", "image_decorative",
})


class Reject(Exception):
    """Raised by a stage's core function for expected bad input."""

    def __init__(self, reason: str, detail: str = ""):
        if reason not in REASONS:
            raise ValueError(f"unknown reject reason {reason!r}; add it to transforms/data/rejects.REASONS")
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# A reject row's ``kind``: a valid input dropped by policy, or an input that was bad or failed.
FILTERED, REJECTED = "filtered", "rejected"


def reject_kind(reason: str) -> str:
    """``filtered`` for the ``FILTER_REASONS``, else ``rejected``: the rule the manifest's totals use."""
    return FILTERED if reason in FILTER_REASONS else REJECTED


def is_filtered(reason: str) -> bool:
    return reject_kind(reason) == FILTERED


_LINE_LOCATOR = re.compile(r"line ([0-9]+)")


def locator_line(locator: str) -> int | None:
    """The input line of a list input's locator ("line N", 1-based, as JSON-lines inputs name their
    records), else None."""
    match = _LINE_LOCATOR.fullmatch(locator or "")
    return int(match.group(1)) if match else None


@dataclasses.dataclass(frozen=True)
class RejectRecord:
    """One row of rejects/*.parquet: which input, which stage, why.

    ``source`` is the recipe source the input came from, or the command's pipeline (the sink fills
    it in for rows that name none); ``score`` and ``threshold`` are the numbers a scored filter judged
    by; ``line`` is the input line of a list input (taken from a "line N" locator when not given).
    ``kind`` follows from the reason. Records sort by every field, an unset one first.
    """

    stage: str
    reason: str
    uri: str
    locator: str = ""
    detail: str = ""
    key: str = ""
    source: str | None = None
    score: float | None = None
    threshold: float | None = None
    line: int | None = None

    def __post_init__(self):
        if self.line is None:
            object.__setattr__(self, "line", locator_line(self.locator))

    @property
    def kind(self) -> str:
        return reject_kind(self.reason)

    def _order(self) -> tuple:
        return tuple((value is not None, value) for value in (getattr(self, f.name) for f in dataclasses.fields(self)))

    def __lt__(self, other: RejectRecord) -> bool:
        if not isinstance(other, RejectRecord):
            return NotImplemented
        return self._order() < other._order()

    def with_source(self, source: str | None) -> RejectRecord:
        """This row, naming ``source`` unless it names one already."""
        return self if self.source or not source else dataclasses.replace(self, source=source)


def sample_reject(sample, stage: str, reason: str, detail: str = "", score: float | None = None,
                  threshold: float | None = None) -> RejectRecord:
    """The reject row of a sample a filter dropped: its uri, locator and key, and the recipe source
    it came from (``provenance.recipe_source``; None outside a recipe run, where the sink names the
    pipeline)."""
    return RejectRecord(stage=stage, reason=reason, uri=sample.uri, locator=sample.locator, detail=detail,
                        key=sample.key, source=sample.provenance.get("recipe_source"),
                        score=None if score is None else float(score),
                        threshold=None if threshold is None else float(threshold))
