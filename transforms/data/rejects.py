"""The dead-letter convention: the Reject exception, the fixed set of reason codes, reject rows.

Every input that does not become a sample becomes one reject row with a reason code from
``REASONS``, so a run loses nothing and its totals add up (inputs = samples + rejected + filtered).
"""

from __future__ import annotations

import dataclasses

# The documented reason codes. A stage raising a code that is not here is a bug, caught at once.
REASONS = {
    # reading inputs
    "file_too_large": "the input file is larger than --max-file-bytes",
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
    "http_error": "the page answered with an HTTP status of 400 or more",
    "too_many_redirects": "the page redirects without end",
    "too_many_bytes": "the page pulled more than --max-page-bytes, or its HTML is over the cap",
    "download_refused": "the URL is a download, not a page",
    "browser_crash": "the browser or the page's renderer crashed on this page",
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
    # text-only corpora
    "text_empty": "a text document is empty, or shorter than --min-chars",
    # quality and duplicates (vlcurate filter, --clip-*, --dedup)
    "clip_below_threshold": "the image-text pair's CLIP score is under --clip-min-score, or under the run's "
    "--clip-keep-fraction quantile; detail has the score",
    "duplicate_exact": "another sample has the same image bytes; the one with the smallest key was kept (named in detail)",
    "duplicate_near": "another sample's image is a near copy (perceptual hash, or CLIP embedding); the smallest key "
    "of the pair was kept (named in detail)",
    # isolation of native code
    "timeout": "the stage took longer than its time limit on this input",
    "worker_crashed": "the isolated worker process died on this input (native crash, out of memory)",
    # extending a dataset (vlcurate run --mode extend)
    "already_in_dataset": "an earlier run of the dataset already wrote a sample with this key",
    # the sink
    "duplicate_key": "another input gave a sample with the same key; the one with the smallest uri was kept",
    # anything else
    "internal_error": "an unexpected error in a stage (a bug to report); detail names the exception",
}

# Reasons that drop a valid sample by policy (quality, duplicates) rather than for bad input.
# The manifest counts them as "filtered", the rest as "rejected".
FILTER_REASONS = frozenset({
    "duplicate_key", "ocr_empty", "no_figures", "notebook_no_plots", "plot_several_images", "plot_code_too_short",
    "clip_below_threshold", "duplicate_exact", "duplicate_near", "text_empty", "already_in_dataset",
})


class Reject(Exception):
    """Raised by a stage's core function for expected bad input."""

    def __init__(self, reason: str, detail: str = ""):
        if reason not in REASONS:
            raise ValueError(f"unknown reject reason {reason!r}; add it to transforms/data/rejects.REASONS")
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclasses.dataclass(frozen=True, order=True)
class RejectRecord:
    """One row of rejects/*.parquet: which input, which stage, why."""

    stage: str
    reason: str
    uri: str
    locator: str = ""
    detail: str = ""
    key: str = ""


def is_filtered(reason: str) -> bool:
    return reason in FILTER_REASONS
