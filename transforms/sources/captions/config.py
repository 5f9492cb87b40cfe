"""The caption stage's settings and work items: what a list row or a folder image is, and its key.

Importable without the network or Pillow; the pipeline's own process only plans tasks here, the
downloads and decoding happen in core.py.
"""

from __future__ import annotations

import dataclasses
import json

from vlcurate.transforms.data.rejects import Reject
from vlcurate.transforms.data.resize import RESIZE_MODES
from vlcurate.transforms.data.sample import IMAGE_EXTENSIONS, make_key
from vlcurate.transforms.sources.web.config import check_url
from vlcurate.transforms.sources.web.guard.fetch import FetchLimits

SOURCE = "caption"
MAX_CAPTION_CHARS = 16_384  # a longer "caption" is a document, not a caption


@dataclasses.dataclass(frozen=True)
class CaptionConfig:
    """Settings of the caption stage; every cap is here with a safe default."""

    url_column: str = "url"
    caption_column: str = "caption"
    image_size: int = 384  # DeepSeek-VL's semantic branch (SigLIP) input
    resize_mode: str = "keep_ratio"
    resize_only_if_bigger: bool = False
    image_format: str = "jpeg"
    jpeg_quality: int = 95
    max_image_pixels: int = 40_000_000
    max_file_bytes: int = 16 * 1024 * 1024
    timeout_s: float = 20.0
    retries: int = 2
    backoff_s: float = 0.5
    max_redirects: int = 5
    threads: int = 32  # concurrent downloads per worker process
    allow_hosts: tuple[str, ...] = ()
    offline: bool = False

    def __post_init__(self):
        if not self.url_column or not self.caption_column:
            raise ValueError("the url and caption columns need names")
        if self.url_column == self.caption_column:
            raise ValueError(f"the url and caption columns are both {self.url_column!r}")
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize mode {self.resize_mode!r} is not one of {', '.join(RESIZE_MODES)}")
        if not 16 <= self.image_size <= 8192:
            raise ValueError("the image size must be from 16 to 8192 pixels")
        if self.image_format not in IMAGE_EXTENSIONS:
            raise ValueError(f"image format {self.image_format!r} is not one of {', '.join(IMAGE_EXTENSIONS)}")
        if self.threads < 1:
            raise ValueError("threads must be at least 1")
        self.limits()  # the download caps' own checks

    def limits(self) -> FetchLimits:
        return FetchLimits(max_bytes=self.max_file_bytes, timeout_s=self.timeout_s, max_redirects=self.max_redirects,
                           retries=self.retries, backoff_s=self.backoff_s)


@dataclasses.dataclass(frozen=True)
class CaptionTask:
    """One image URL and its caption; ``metadata``: the row's other columns, as canonical JSON."""

    uri: str
    caption: str
    key: str
    metadata: str = "{}"


def clean_caption(value) -> str:
    """The caption as stored: stripped text; ``Reject("caption_empty")`` when there is none."""
    text = "" if value is None else str(value).strip()
    if not text:
        raise Reject("caption_empty", "the caption is empty")
    if len(text) > MAX_CAPTION_CHARS:
        raise Reject("bad_input", f"the caption is over {MAX_CAPTION_CHARS} characters")
    return text


def row_task(fields: dict, config: CaptionConfig) -> CaptionTask:
    """A list row's task. Its key is the URL and the caption: one image under two captions is two
    pairs (exact dedup can drop the copy), one pair listed twice is one key (``duplicate_key``)."""
    fields = dict(fields)
    url, caption = fields.pop(config.url_column, None), fields.pop(config.caption_column, None)
    url = check_url(url)
    caption = clean_caption(caption)
    return CaptionTask(url, caption, make_key(SOURCE, url, caption),
                       json.dumps(fields, sort_keys=True, ensure_ascii=False, default=str))
