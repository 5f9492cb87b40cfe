"""An EPUB file -> a Document: its spine's chapters in reading order, with their images.

An EPUB is a zip written by a stranger, so it is read like one: the central directory is checked
before anything is inflated (member count, declared sizes, compression ratio, names), and every
member is read with a cap on what it really inflates to, since a header can lie. Paths are
resolved inside the book; one that climbs out of it, or an absolute one, is never read. The
package documents (container.xml, the OPF) are parsed as XML without DTDs, entities or network;
chapters with the HTML parser (html_blocks.py). EbookLib is not used: it reads every member whole.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import urllib.parse
import zipfile

from vlcurate.transforms.data.rejects import Reject
from vlcurate.transforms.sources.interleaved.config import EpubCaps
from vlcurate.transforms.sources.interleaved.document import Boundary, Document, ImageBlock
from vlcurate.transforms.sources.interleaved.html_blocks import blocks, page_title, parse_html

_XHTML_TYPES = ("application/xhtml+xml", "text/html")
_CONTAINER = "META-INF/container.xml"
_NS = {"c": "urn:oasis:names:tc:opendocument:xmlns:container", "opf": "http://www.idpf.org/2007/opf",
       "dc": "http://purl.org/dc/elements/1.1/"}


class Book:
    """The zip's members by name, read under the caps."""

    def __init__(self, data: bytes, caps: EpubCaps):
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as error:
            raise Reject("epub_invalid", f"not a zip: {error}") from error
        if len(infos) > caps.max_entries:
            raise Reject("epub_unsafe", f"{len(infos)} members, cap {caps.max_entries}")
        total = 0
        self._infos = {}
        for info in infos:
            name = info.filename
            if not _safe_name(name):
                raise Reject("epub_unsafe", f"member name {name[:200]!r} leaves the book")
            if info.file_size > caps.max_entry_bytes:
                raise Reject("epub_unsafe", f"{name[:200]} inflates to {info.file_size} bytes, cap {caps.max_entry_bytes}")
            if info.file_size > caps.ratio_floor and info.file_size > caps.max_ratio * max(1, info.compress_size):
                raise Reject("epub_unsafe", f"{name[:200]} compressed {info.file_size / max(1, info.compress_size):.0f}:1")
            total += info.file_size
            self._infos.setdefault(name, info)
        if total > caps.max_total_bytes:
            raise Reject("epub_unsafe", f"members inflate to {total} bytes, cap {caps.max_total_bytes}")
        self._caps = caps
        self._read = 0

    def has(self, name: str) -> bool:
        return name in self._infos

    def read(self, name: str) -> bytes:
        """A member's bytes, refusing one that inflates past its cap (whatever its header says)."""
        info = self._infos[name]
        left = self._caps.max_total_bytes - self._read
        cap = min(self._caps.max_entry_bytes, info.file_size, left)
        try:
            with self._zip.open(info) as handle:
                data = handle.read(cap + 1)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError, ValueError) as error:
            # NotImplementedError: an unknown compression; RuntimeError: an encrypted member.
            raise Reject("epub_invalid", f"{name[:200]}: {type(error).__name__}: {error}") from error
        if len(data) > cap:
            raise Reject("epub_unsafe", f"{name[:200]} inflates past its declared {info.file_size} bytes or the cap")
        self._read += len(data)
        return data


def _safe_name(name: str) -> bool:
    if not name or "\x00" in name or "\\" in name or name.startswith("/"):
        return False
    return ".." not in name.split("/")


def resolve(base: str, href: str) -> str | None:
    """``href`` (relative to the member ``base``) as a member name, or None for a remote, absolute
    or escaping reference."""
    parts = urllib.parse.urlsplit(href)
    if parts.scheme or parts.netloc or not parts.path:
        return None
    path = urllib.parse.unquote(parts.path)
    if path.startswith("/"):
        return None
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(base), path))
    if joined.startswith("../") or joined in ("..", ".") or joined.startswith("/"):
        return None
    return joined


def _xml(data: bytes, what: str):
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                             remove_comments=True, remove_pis=True)
    try:
        return etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as error:
        raise Reject("epub_invalid", f"{what}: {error}") from error


def spine(book: Book) -> tuple[str, list[str]]:
    """(title, the spine's chapter member names in reading order)."""
    if not book.has(_CONTAINER):
        raise Reject("epub_invalid", f"no {_CONTAINER}")
    container = _xml(book.read(_CONTAINER), _CONTAINER)
    rootfiles = container.xpath("//c:rootfile/@full-path", namespaces=_NS)
    opf_name = resolve("", str(rootfiles[0])) if rootfiles else None
    if not opf_name or not book.has(opf_name):
        raise Reject("epub_invalid", "the container names no package document in the book")
    opf = _xml(book.read(opf_name), opf_name)
    items = {}
    for item in opf.xpath("//opf:manifest/opf:item", namespaces=_NS):
        properties = (item.get("properties") or "").split()
        if item.get("id") and item.get("href") and "nav" not in properties:
            items[item.get("id")] = (item.get("href"), item.get("media-type") or "")
    chapters = []
    for ref in opf.xpath("//opf:spine/opf:itemref/@idref", namespaces=_NS):
        href, media_type = items.get(str(ref), ("", ""))
        name = resolve(opf_name, href) if href else None
        if name and media_type in _XHTML_TYPES and book.has(name) and name not in chapters:
            chapters.append(name)
    titles = opf.xpath("//dc:title/text()", namespaces=_NS)
    title = " ".join(str(titles[0]).split())[:500] if titles else ""
    return title, chapters


def read_epub(data: bytes, uri: str, caps: EpubCaps) -> Document:
    """The EPUB's chapters as one Document: a Boundary at each chapter start, images from the book."""
    import lxml

    book = Book(data, caps)
    title, chapters = spine(book)
    if not chapters:
        raise Reject("epub_invalid", "the spine names no XHTML chapter in the book")
    if len(chapters) > caps.max_chapters:
        raise Reject("epub_unsafe", f"{len(chapters)} chapters, cap {caps.max_chapters}")
    out: list = []
    for chapter in chapters:
        data = book.read(chapter)
        try:
            root = parse_html(data)
        except Exception as error:  # lxml's parser errors on bytes it cannot read at all
            raise Reject("epub_invalid", f"{chapter[:200]}: {type(error).__name__}: {error}") from error
        if root is None:
            continue
        title = title or page_title(root)
        body = root.find("body")
        out.append(Boundary())
        out.extend(blocks(body if body is not None else root, _image_reader(book, chapter)))
    return Document(uri=uri, format="epub", identity=(hashlib.sha256(data).hexdigest(),), blocks=tuple(out),
                    title=title, text_source="epub-xhtml", provenance=(("lxml", lxml.__version__),))


def _image_reader(book: Book, chapter: str):
    def fetch(src: str, alt: str) -> ImageBlock:
        name = resolve(chapter, src)
        if name is None:
            return ImageBlock(None, src, alt, ("image_missing", "remote, absolute or outside the book"))
        if not book.has(name):
            return ImageBlock(None, src, alt, ("image_missing", f"{name[:200]} is not in the book"))
        return ImageBlock(book.read(name), src, alt)

    return fetch
