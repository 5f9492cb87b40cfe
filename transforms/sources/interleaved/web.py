"""A web page -> a Document, rendered in the web pipeline's guarded browser.

The page is loaded as `vlcurate web` loads it (transforms/sources/web/core.py ``visit``: the
guard proxy, the byte and time budgets, the same refusals). Lazy images are made eager and the
network let settle; each ``<img>`` is given its absolute URL; then trafilatura keeps the main
content of the rendered HTML and the walker reads it in order. An image's bytes are the body of
the response the browser got for it (so every byte came through the guard); an image the page
never loaded, or one the guard refused, is an ``image_missing`` or ``url_blocked`` row.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse

from vlcurate.transforms.sources.interleaved.document import Document, ImageBlock
from vlcurate.transforms.sources.interleaved.html_blocks import blocks, main_content, parse_html
from vlcurate.transforms.sources.web.config import WebConfig, WebTask

# Lazy images load now; srcset choices are settled; every src is absolute (the page's base).
_EAGER_JS = """() => {
  for (const img of document.images) {
    img.loading = "eager";
    const src = img.currentSrc || img.src;
    img.removeAttribute("srcset");
    if (src) img.setAttribute("src", src);
  }
}"""
_MAX_DATA_URI_CHARS = 16 * 1024 * 1024


def read_page(task: WebTask, config: WebConfig) -> Document:
    from vlcurate.transforms.sources.web.core import visit

    responses: dict = {}

    def watch(page):
        page.on("response", lambda response: _keep(responses, response))

    def read(page, response, session, asked, remaining_ms):
        from vlcurate.transforms.sources.web.core import wait_quiet

        page.evaluate(_EAGER_JS)
        wait_quiet(page, session, config, remaining_ms)
        html = page.content()
        title = page.title()
        final_url = page.url
        content = main_content(html, final_url) if len(html.encode("utf-8")) <= config.max_html_bytes else None
        fetch = _image_fetcher(responses, final_url, _shown(final_url) if task.folder else str)
        found = blocks(parse_html(content.html), fetch, content) if content else []
        return Document(uri=task.uri, format="html", identity=(task.key,), blocks=tuple(found), title=title,
                        text_source="html", provenance=(("browser", page.context.browser.version),
                                                        ("trafilatura", _trafilatura_version())))

    return visit(task, config, read, watch)


def _keep(responses: dict, response) -> None:
    """The final response of each image request, under every URL of its redirect chain."""
    try:
        if response.request.resource_type != "image" or 300 <= response.status < 400:
            return
        request = response.request
        while request is not None:
            responses.setdefault(request.url, response)
            request = request.redirected_from
    except Exception:  # a closing page; the image then counts as not loaded
        return


def _shown(page_url: str):
    """A folder page's image URL as its path in the folder: the local server's port changes from
    run to run, and the samples must not."""
    parts = urllib.parse.urlsplit(page_url)
    origin = f"{parts.scheme}://{parts.netloc}/"
    return lambda url: url[len(origin):] if url.startswith(origin) else url


def _image_fetcher(responses: dict, base: str, shown):
    def fetch(src: str, alt: str) -> ImageBlock:
        url = urllib.parse.urljoin(base, src)
        if url.startswith("data:"):
            return _data_uri(url, src, alt)
        src = shown(url)
        response = responses.get(url)
        if response is None:
            return ImageBlock(None, src, alt, ("image_missing", "the page did not load it"))
        if response.headers.get("x-vlcurate-blocked"):
            return ImageBlock(None, src, alt, ("url_blocked", "the guard refused its address"))
        if response.status >= 400:
            return ImageBlock(None, src, alt, ("image_missing", f"HTTP {response.status}"))
        try:
            return ImageBlock(response.body(), src, alt)
        except Exception as error:  # the body was evicted or the request failed midway
            return ImageBlock(None, src, alt, ("image_missing", f"no body: {str(error)[:200]}"))

    return fetch


def _data_uri(url: str, src: str, alt: str) -> ImageBlock:
    shown = src[:80]
    head, _, payload = url.partition(",")
    if len(payload) > _MAX_DATA_URI_CHARS or not head.endswith(";base64"):
        return ImageBlock(None, shown, alt, ("image_unreadable", "a data: URI over the cap or not base64"))
    try:
        return ImageBlock(base64.b64decode(payload, validate=True), shown, alt)
    except (binascii.Error, ValueError) as error:
        return ImageBlock(None, shown, alt, ("image_unreadable", f"data: URI: {error}"))


def _trafilatura_version() -> str:
    import trafilatura

    return trafilatura.__version__
