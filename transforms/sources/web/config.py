"""The web stage's settings and work items: URL checks, viewports and keys, importable without a browser.

The pipeline's own process only plans (``url_tasks``, ``folder_tasks``); pages are rendered in
isolated children (core.py). Tested without a browser.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import urllib.parse

from vlcurate.transforms.data.rejects import Reject
from vlcurate.transforms.data.sample import make_key
from vlcurate.transforms.ocr.config import OcrConfig

_SCHEMES = ("http", "https")
_MAX_URL_CHARS = 8192
@dataclasses.dataclass(frozen=True)
class WebConfig:
    """Settings of the web stage; every cap is here with a safe default."""

    viewports: tuple[tuple[int, int], ...] = ((1024, 1024),)
    full_page: bool = False
    max_page_height: int = 8192
    page_timeout_s: float = 30.0
    settle_s: float = 2.0  # how long to wait for the network to go quiet after load
    max_page_bytes: int = 20 * 1024 * 1024
    max_html_bytes: int = 5 * 1024 * 1024
    max_elements: int = 2000
    allow_hosts: tuple[str, ...] = ()
    offline: bool = False  # reach only allow_hosts (and the input folder); look no name up
    recycle_pages: int = 200
    url_column: str = "url"  # the URL's column (field) in a .csv, .tsv, .jsonl or .parquet list
    alt_text: bool = False  # also a caption sample per visible image with a caption-like alt text
    ocr: OcrConfig = OcrConfig()  # the viewport screenshot of a page without visible text is OCRed

    def __post_init__(self):
        if not self.viewports or any(w < 16 or h < 16 or w > 8192 or h > 8192 for w, h in self.viewports):
            raise ValueError("viewports must be between 16x16 and 8192x8192")
        if self.page_timeout_s <= 0 or self.max_page_bytes < 1 or self.max_page_height < 16:
            raise ValueError("the page timeout and caps must be positive")
        if not self.url_column:
            raise ValueError("the url column needs a name")


def parse_viewport(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise ValueError(f"viewport {text!r} is not WIDTHxHEIGHT")
    return int(width), int(height)


@dataclasses.dataclass(frozen=True)
class WebTask:
    """One page at one viewport. ``folder`` is set for the folder-of-HTML input mode."""

    uri: str  # what the user gave: a URL, or the HTML file's path
    viewport: tuple[int, int]
    key: str
    metadata: str = "{}"  # the input row's extra columns, as canonical JSON
    folder: str = ""
    relative: str = ""

    @property
    def locator(self) -> str:
        return f"viewport={self.viewport[0]}x{self.viewport[1]}"


def check_url(url: str) -> str:
    """An http(s) URL with a host, or ``Reject("url_blocked")``. Addresses are checked later, on
    every connection, by the guard proxy (a name's address can change between now and then)."""
    if not isinstance(url, str) or not url.strip():
        raise Reject("bad_input", "no url")
    url = url.strip()
    if len(url) > _MAX_URL_CHARS:
        raise Reject("bad_input", f"url longer than {_MAX_URL_CHARS} characters")
    parts = urllib.parse.urlsplit(url)
    if not parts.scheme or " " in url:
        raise Reject("bad_input", f"{url[:200]!r} is not a URL")
    if parts.scheme.lower() not in _SCHEMES:
        raise Reject("url_blocked", f"scheme {parts.scheme or '(none)'!r} is not http or https")
    if not parts.hostname:
        raise Reject("bad_input", f"url {url[:200]!r} has no host")
    return url


def url_tasks(url: str, metadata: dict, config: WebConfig) -> list[WebTask]:
    url = check_url(url)
    extra = json.dumps(metadata, sort_keys=True, default=str)
    return [
        WebTask(url, viewport, make_key("web", url, _viewport_text(viewport)), extra) for viewport in config.viewports
    ]


def folder_tasks(path: str, folder: str, data: bytes, config: WebConfig) -> list[WebTask]:
    """A local HTML file: keys from its place in the folder and its content, not the folder's path."""
    relative = path[len(folder):].lstrip("/")
    digest = hashlib.sha256(data).hexdigest()
    return [
        WebTask(path, viewport, make_key("web", relative, digest, _viewport_text(viewport)), "{}", folder, relative)
        for viewport in config.viewports
    ]


def _viewport_text(viewport: tuple[int, int]) -> str:
    return f"viewport={viewport[0]}x{viewport[1]}"
