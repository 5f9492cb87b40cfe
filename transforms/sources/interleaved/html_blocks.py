"""HTML to blocks in reading order: the walker that web pages and EPUB chapters share.

A web page first goes through trafilatura (``main_content``), which keeps the main content and
drops navigation, footers, comments and ads, images included; an EPUB chapter is walked as it is
(a book has no boilerplate around its chapters). ``blocks`` walks the tree in document order:
headings and paragraph-like elements become text blocks, each ``<img>`` (or a page's image
marker) an image block whose bytes ``fetch(src, alt)`` gives (an ImageBlock with a problem when
it cannot).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re

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


@dataclasses.dataclass(frozen=True)
class MainContent:
    """A page's main content as simple HTML, each of its images standing as a text marker."""

    html: str
    images: tuple[tuple[str, str], ...]  # (src, alt) of each marker, by number
    marker: str  # the markers' pattern: a number between a prefix and "z"


def main_content(html: str, url: str | None = None) -> MainContent | None:
    """The page's main content (headings, paragraphs, lists, tables and images in order), or None
    when trafilatura finds none.

    trafilatura keeps an image only where it expects one and drops the rest with the layout
    around it: every figure of a manual set as ``<div class="float"><div align="center"><img>``
    (Texinfo's HTML, Debian's octave-doc) was lost, and so is an image inside a link. So each
    image is replaced by a text marker first, and the markers in the main content stand for its
    images: an image is kept exactly when the text around it is. The marker's prefix comes from
    the page's sha256, so a page cannot spell out one of its own."""
    import lxml.html
    import trafilatura

    root = parse_html(html)
    if root is None:
        return None
    _drop_navigation(root)
    prefix = "vlcimg" + hashlib.sha256(html.encode("utf-8", errors="replace")).hexdigest()[:16] + "n"
    for node in list(root.iter("figure", "figcaption", "picture")):
        node.tag = {"figure": "div", "figcaption": "p", "picture": "span"}[node.tag]  # trafilatura drops a figure's text
    for node in list(root.iter("code", "kbd", "samp", "tt", "var")):
        # Inline code stays in its sentence (trafilatura writes it as <pre>, which ends a paragraph).
        if node.getparent() is not None and any(parent.tag in ("p", "li", "td", "th", "dd")
                                                for parent in node.iterancestors()):
            node.drop_tag()
    images = []
    for image in list(root.iter("img")):
        target = image
        link = next(image.iterancestors("a"), None)
        if link is not None and not (link.text_content() or "").strip() and len(link.findall(".//img")) == 1:
            target = link  # an image-only link: the link goes with it (trafilatura drops link-dense text)
        if target.getparent() is None:
            continue
        # A paragraph of its own where the image stood between blocks (trafilatura drops a lone
        # inline element in a div), an inline span inside a paragraph's text.
        inline = any(parent.tag in ("p", "li", "td", "th", "dd") for parent in target.iterancestors())
        marker = lxml.html.Element("span" if inline else "p")
        marker.text = f" {prefix}{len(images)}z "
        marker.tail = target.tail
        target.getparent().replace(target, marker)
        images.append(((image.get("src") or "").strip(), " ".join((image.get("alt") or "").split())))
    extracted = trafilatura.extract(lxml.html.tostring(root, encoding="unicode"), url=url, output_format="html",
                                    include_images=False, include_tables=True, include_comments=False,
                                    include_links=False, deduplicate=False, favor_recall=True)
    return None if extracted is None else MainContent(extracted, tuple(images), re.escape(prefix) + r"(\d+)z")


# What marks an element as navigation where trafilatura's own rules miss it (Texinfo's
# "nav-panel" with Next/Previous/Up links, breadcrumbs, skip links, ARIA landmarks).
_NAVIGATION_CLASSES = frozenset({"nav", "navbar", "nav-panel", "navigation", "navheader", "navfooter", "breadcrumb",
                                 "breadcrumbs", "skip-link", "menu"})
_NAVIGATION_ROLES = frozenset({"navigation", "banner", "contentinfo", "menubar", "menu"})
_PAGE_LINKS = frozenset({"next", "prev", "previous", "up", "contents", "index", "start"})


def _drop_navigation(root) -> None:
    """Remove navigation (``<nav>`` and elements marked as navigation by class or role), keeping
    the text that follows them."""
    doomed = [node for node in root.iter() if isinstance(node.tag, str) and (
        node.tag == "nav" or (node.get("role") or "").lower() in _NAVIGATION_ROLES
        or _NAVIGATION_CLASSES & set((node.get("class") or "").lower().split()))]
    # A block of mostly links to the next, previous or parent page (Texinfo's, Sphinx's and
    # DocBook's headers and footers: "Next: ..., Previous: ..., Up: ...").
    for link in root.iter("a"):
        if _PAGE_LINKS & set((link.get("rel") or "").lower().split()):
            block = next(link.iterancestors("p", "div", "ul", "ol", "table", "td"), None)
            if block is not None and block not in doomed and _link_share(block) >= 0.5:
                doomed.append(block)
    for node in doomed:
        if node.getparent() is not None and node.getroottree().getroot() is root:
            node.drop_tree()  # lxml.html: the node and its children go, its tail text stays


def _link_share(node) -> float:
    text = len("".join((node.text_content() or "").split()))
    links = sum(len("".join((link.text_content() or "").split())) for link in node.iter("a"))
    return links / text if text else 1.0


def parse_html(data: bytes | str):
    """An lxml tree of untrusted (X)HTML: the HTML parser (no DTDs, no entities fetched, no
    network), which also reads XHTML with its namespaces dropped.

    Text is read as UTF-8 (an EPUB's XHTML is UTF-8 or, with its byte-order mark, UTF-16; a
    rendered page comes as a str): left to guess, libxml2 takes bytes without a charset meta as
    Latin-1, and a manual's ¶ became Â¶."""
    import lxml.html

    if isinstance(data, bytes) and data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        data = data.decode("utf-16", errors="replace")
    if isinstance(data, str):
        data = data.encode("utf-8", errors="replace")
    parser = lxml.html.HTMLParser(encoding="utf-8", no_network=True, remove_comments=True, remove_pis=True,
                                  huge_tree=False)
    return lxml.html.document_fromstring(data, parser=parser) if data.strip() else None


def blocks(root, fetch, content: MainContent | None = None) -> list:
    """Text and image blocks of the tree under ``root``, in document order: ``<img>`` elements,
    or the markers of ``content`` (a page's main content) where its images were."""
    out: list = []
    if root is not None:
        _Walker(out, fetch, content).walk(root)
    return out[:MAX_BLOCKS]


class _Walker:
    def __init__(self, out: list, fetch, content: MainContent | None):
        self.out, self.fetch, self.content = out, fetch, content
        self.marker = re.compile(content.marker) if content else None
        self.buffer: list[str] = []
        self.heading = 0
        self.pre = 0

    def flush(self):
        if not self.buffer:
            return
        text, self.buffer = "".join(self.buffer), []
        pieces = self.marker.split(text) if self.marker else [text]
        # split() alternates text and a marker's number: text, number, text, ...
        for index, piece in enumerate(pieces):
            if index % 2:
                number = int(piece)
                if number < len(self.content.images):
                    self.out.append(self.fetch(*self.content.images[number]) if self.content.images[number][0]
                                    else ImageBlock(None, "", self.content.images[number][1],
                                                    ("image_missing", "an <img> without src")))
                continue
            block = text_block(piece, self.heading, keep_lines=self.pre > 0)
            if block is not None:
                self.out.append(block)

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

