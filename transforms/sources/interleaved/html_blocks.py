"""HTML to blocks in reading order: the walker that web pages and EPUB chapters share.

A web page first goes through trafilatura (``main_content``), which keeps the main content and
drops navigation, footers, comments and ads, images included; an EPUB chapter is walked as it is
(a book has no boilerplate around its chapters). ``blocks`` walks the tree in document order:
headings and paragraph-like elements become text blocks, each ``<img>`` an image block whose
bytes ``fetch(src)`` gives (an ImageBlock with a problem when it cannot).
"""

from __future__ import annotations

from vlcurate.transforms.sources.interleaved.document import ImageBlock, text_block

_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
# Elements that end a run of text: a new block starts after them.
_BLOCKS = frozenset({
    "p", "div", "li", "ul", "ol", "dl", "dt", "dd", "pre", "blockquote", "table", "tr", "td", "th", "caption",
    "figure", "figcaption", "section", "article", "main", "header", "footer", "aside", "body", "hr", "br",
    "address", "details", "summary", "center", *_HEADINGS,
})
# Never text: code, styles, embedded objects, and an EPUB's own navigation.
_SKIP = frozenset({"script", "style", "noscript", "template", "head", "title", "svg", "math", "nav", "iframe",
                   "object", "embed", "video", "audio", "canvas", "button", "select", "textarea", "form"})
MAX_BLOCKS = 100_000  # a document's blocks; the rest of a pathological page is cut


def main_content(html: str, url: str | None = None) -> str | None:
    """The page's main content as simple HTML (headings, paragraphs, lists, tables, images in
    order), or None when trafilatura finds none."""
    import trafilatura

    return trafilatura.extract(html, url=url, output_format="html", include_images=True, include_tables=True,
                               include_comments=False, include_links=False, deduplicate=False, favor_recall=True)


def parse_html(data: bytes | str):
    """An lxml tree of untrusted (X)HTML: the HTML parser (no DTDs, no entities fetched, no
    network), which also reads XHTML with its namespaces dropped."""
    import lxml.html

    parser = lxml.html.HTMLParser(no_network=True, remove_comments=True, remove_pis=True, huge_tree=False)
    if isinstance(data, str):
        data = data.encode("utf-8")
    return lxml.html.document_fromstring(data, parser=parser) if data.strip() else None


def blocks(root, fetch) -> list:
    """Text and image blocks of the tree under ``root``, in document order."""
    out: list = []
    if root is not None:
        _Walker(out, fetch).walk(root)
    return out[:MAX_BLOCKS]


class _Walker:
    def __init__(self, out: list, fetch):
        self.out, self.fetch = out, fetch
        self.buffer: list[str] = []
        self.heading = 0
        self.pre = 0

    def flush(self):
        if self.buffer:
            block = text_block("".join(self.buffer), self.heading, keep_lines=self.pre > 0)
            if block is not None:
                self.out.append(block)
            self.buffer = []

    def walk(self, element):
        stack = [(element, False)]
        # An explicit stack, not recursion: a hostile page nests elements thousands deep.
        while stack and len(self.out) < MAX_BLOCKS:
            node, leaving = stack.pop()
            if leaving:
                self._leave(node)
                continue
            tag = _tag(node)
            if tag is None:  # a comment or processing instruction: only its tail is text
                if node.tail:
                    self.buffer.append(node.tail)
                continue
            if tag in _SKIP:
                if node.tail:
                    self.buffer.append(node.tail)
                continue
            if tag == "img":
                self.flush()
                self.out.append(self._image(node))
                if node.tail:
                    self.buffer.append(node.tail)
                continue
            if tag in _BLOCKS:
                self.flush()
                if tag in _HEADINGS:
                    self.heading = _HEADINGS[tag]
                if tag == "pre":
                    self.pre += 1
            if node.text:
                self.buffer.append(node.text)
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(list(node)))

    def _leave(self, node):
        tag = _tag(node)
        if tag in _BLOCKS:
            self.flush()
            if tag in _HEADINGS:
                self.heading = 0
            if tag == "pre":
                self.pre -= 1
        elif tag in ("td", "th"):
            self.buffer.append(" ")
        if node.tail:
            self.buffer.append(node.tail)

    def _image(self, node) -> ImageBlock:
        src = (node.get("src") or "").strip()
        alt = " ".join((node.get("alt") or "").split())
        if not src:
            return ImageBlock(None, "", alt, ("image_missing", "an <img> without src"))
        return self.fetch(src, alt)


def _tag(node) -> str | None:
    tag = node.tag
    if not isinstance(tag, str):
        return None
    return tag.rsplit("}", 1)[-1].lower()


def page_title(root) -> str:
    """The document's title element, if any."""
    if root is None:
        return ""
    for node in root.iter("title"):
        return " ".join((node.text_content() or "").split())[:500]
    return ""

