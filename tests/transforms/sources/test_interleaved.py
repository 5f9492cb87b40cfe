"""The interleaved readers and their sections, without Beam or a browser: generated EPUB, PDF and
HTML documents whose order of text and images is known; hostile books; the budget."""

from __future__ import annotations

import time
import zipfile

import pytest

from fixtures import interleaved as fx
from vlcurate.transforms.data.images import open_image, reencoded
from vlcurate.transforms.data.rejects import Reject, RejectRecord
from vlcurate.transforms.data.sample import Sample
from vlcurate.transforms.sources.interleaved.config import EpubCaps, InterleavedConfig
from vlcurate.transforms.sources.interleaved.document import (
    PLACEHOLDER, Document, ImageBlock, TextBlock, interleave,
)
from vlcurate.transforms.sources.interleaved.epub import read_epub, resolve
from vlcurate.transforms.sources.interleaved.html_blocks import blocks, main_content, parse_html
from vlcurate.transforms.sources.interleaved.pdf import read_pdf
from vlcurate.transforms.sources.pdf.reading_order import reading_order

CONFIG = InterleavedConfig()
A, B, C, D = fx.PARAGRAPHS


def stored(data: bytes) -> str:
    """The sha256 of a picture as the sample stores it (the one decoder, then the deterministic encoder)."""
    return reencoded(*open_image(data, 10**8)).sha256


def split(out: list) -> tuple[list[Sample], list[RejectRecord]]:
    return [o for o in out if isinstance(o, Sample)], [o for o in out if isinstance(o, RejectRecord)]


def assert_story(out: list, fmt: str):
    """One sample: the text in order with a placeholder at each kept picture; the icon and the rule
    are rows with their reasons."""
    samples, rows = split(out)
    assert len(samples) == 1
    sample = samples[0]
    assert sample.text == "\n\n".join([fx.TITLE, A, PLACEHOLDER, B, fx.HARVEST, C, PLACEHOLDER, D])
    assert sample.text.count(PLACEHOLDER) == len(sample.images) == 2
    assert [image.sha256 for image in sample.images] == [stored(fx.RED), stored(fx.BLUE)]
    assert [(image.width, image.height) for image in sample.images] == [(160, 120), (200, 150)]
    assert sample.image_names() == [f"{sample.key}.0.png", f"{sample.key}.1.png"]
    assert sample.category == "interleaved" and sample.source == "interleaved" and sample.conversation is None
    assert sample.meta["document"]["format"] == fmt
    assert sample.meta["document"]["headings"] == [fx.TITLE, fx.HARVEST]
    assert [(row.stage, row.reason, row.locator) for row in rows] == [
        ("interleaved_image", "image_tiny", "image=3"), ("interleaved_image", "image_decorative", "image=4")]
    assert all(row.kind == "filtered" for row in rows)
    return sample


def test_epub_text_and_images_in_reading_order():
    sample = assert_story(interleave(read_epub(fx.story_epub(), "book.epub", EpubCaps()), CONFIG), "epub")
    assert sample.meta["image_refs"] == [{"src": "../images/red.png", "alt": "Red seedlings"},
                                         {"src": "../images/blue.png", "alt": "Blue bowl"}]
    assert sample.meta["document"]["title"] == fx.TITLE and sample.text_source == "epub-xhtml"


def test_pdf_text_and_images_in_reading_order():
    sample = assert_story(interleave(read_pdf(fx.story_pdf(), "story.pdf", 100, 10**8), CONFIG), "pdf")
    assert sample.text_source == "pdf-text-layer"
    assert sample.meta["image_refs"][0]["src"].startswith("page=1 ") and sample.meta["image_refs"][1]["src"].startswith("page=2 ")



def test_a_two_column_pdf_page_is_read_column_by_column():
    samples, _ = split(interleave(read_pdf(fx.two_column_pdf(), "columns.pdf", 100, 10**8), CONFIG))
    [sample] = samples
    assert sample.text == "\n\n".join([fx.TITLE, A, PLACEHOLDER, B, C, PLACEHOLDER, D])
    assert [image.sha256 for image in sample.images] == [stored(fx.RED), stored(fx.BLUE)]


@pytest.mark.parametrize("boxes, expected", [
    # one column: top to bottom
    ([(50, 300, 500, 400), (50, 100, 500, 200)], [1, 0]),
    # two columns under a title, a centred page number below them
    ([(300, 100, 540, 200), (50, 40, 540, 80), (50, 100, 290, 200), (50, 210, 290, 300),
      (300, 210, 540, 300), (280, 800, 310, 815)], [1, 2, 3, 0, 4, 5]),
    # a picture beside a paragraph, then a paragraph across the page
    ([(50, 300, 540, 400), (400, 100, 540, 200), (50, 100, 380, 280)], [2, 1, 0]),
    # a title over a row of authors over the text (ACM's sample-sigconf.pdf, page 1): the title first
    ([(110, 109, 174, 122), (189, 84, 422, 100), (264, 111, 348, 134), (420, 111, 522, 134), (50, 200, 540, 300)],
     [1, 0, 2, 3, 4]),
])
def test_reading_order(boxes, expected):
    assert reading_order(boxes) == expected


def test_a_page_of_very_many_blocks_keeps_top_to_bottom_order():
    # Eight columns of 2,500 lines: over the cap, read across as PyMuPDF sorts them.
    boxes = [(50 + 60 * (n % 8), 10 * (n // 8), 100 + 60 * (n % 8), 10 * (n // 8) + 8) for n in range(20000)][::-1]
    assert reading_order(boxes) == sorted(range(len(boxes)), key=lambda n: (boxes[n][1], boxes[n][0]))
    several = boxes[-400:]  # at the cap: eight columns of fifty lines, read column by column
    assert [several[n][0] for n in reading_order(several)[:50]] == [50] * 50

def test_web_page_keeps_main_content_without_navigation_footer_or_ads():
    content = main_content(fx.html_page(), "http://example.test/tomatoes.html")
    fetched = []

    def fetch(src, alt):
        fetched.append(src)
        return ImageBlock(fx.IMAGES[src.rsplit("/", 1)[-1]], src, alt)

    document = Document("http://example.test/tomatoes.html", "html", ("x",),
                        tuple(blocks(parse_html(content.html), fetch, content)))
    sample = assert_story(interleave(document, CONFIG), "html")
    for boilerplate in ("About us", "Sponsored", "Copyright", "Privacy"):
        assert boilerplate not in sample.text
    # Not the navigation's icon (the browser has made every src absolute by then: web.py).
    assert fetched == [f"images/{name}.png" for name in ("red", "blue", "icon", "rule")]


def test_same_document_twice_gives_identical_members():
    first = [s.members() for s in split(interleave(read_epub(fx.story_epub(), "b.epub", EpubCaps()), CONFIG))[0]]
    again = [s.members() for s in split(interleave(read_epub(fx.story_epub(), "b.epub", EpubCaps()), CONFIG))[0]]
    assert first == again and first


def test_budget_cuts_at_sections_and_counts_images():
    document = read_epub(fx.story_epub(), "book.epub", EpubCaps())
    samples, rows = split(interleave(document, InterleavedConfig(max_images=1)))
    # Two chapters, one picture each: one part per chapter, cut where the second chapter starts.
    assert [s.text for s in samples] == ["\n\n".join([fx.TITLE, A, PLACEHOLDER, B]),
                                         "\n\n".join([fx.HARVEST, C, PLACEHOLDER, D])]
    assert [s.locator for s in samples] == ["part=1", "part=2"]
    assert [s.meta["document"]["parts"] for s in samples] == [2, 2]
    assert len({s.key for s in samples}) == 2
    # A token budget of one paragraph: parts of a paragraph each; those without a picture are filtered.
    samples, rows = split(interleave(document, InterleavedConfig(max_tokens=60, min_chars_per_image=10)))
    assert all(len(s.text) - len(PLACEHOLDER) * s.text.count(PLACEHOLDER) <= 60 * 4 for s in samples)
    assert [s.text.count(PLACEHOLDER) for s in samples] == [1, 1]
    assert sorted({row.reason for row in rows}) == ["image_decorative", "image_tiny", "interleaved_no_images"]


def test_a_paragraph_over_the_budget_is_cut_at_whitespace():
    words = " ".join(f"word{n}" for n in range(400))
    document = Document("m", "html", ("x",), (TextBlock(words), ImageBlock(fx.RED, "r.png"), TextBlock(words)))
    samples, rows = split(interleave(document, InterleavedConfig(max_tokens=100, min_chars_per_image=10)))
    pieces = [s.text for s in samples] + [row.detail for row in rows]
    assert len(samples) == 1 and samples[0].text.count(PLACEHOLDER) == 1
    assert all(row.reason == "interleaved_no_images" for row in rows) and len(rows) >= 4
    assert all(len(s.text) <= 100 * 4 + len(PLACEHOLDER) + 4 for s in samples), pieces


def test_too_little_text_per_image_is_filtered():
    document = Document("m", "html", ("x",), (TextBlock("Short."), ImageBlock(fx.RED, "r.png"),
                                              ImageBlock(fx.BLUE, "b.png")))
    samples, rows = split(interleave(document, CONFIG))
    assert samples == [] and [row.reason for row in rows] == ["interleaved_too_little_text"]
    assert rows[0].key.startswith("interleaved-") and rows[0].locator == "part=1"


def test_a_placeholder_written_in_the_document_is_not_an_image():
    chapter = f"<p>{A} &lt;image_placeholder&gt; is how DeepSeek-VL marks images.</p><img src=\"../images/red.png\"/>"
    samples, _ = split(interleave(read_epub(fx.epub((chapter,)), "b.epub", EpubCaps()), CONFIG))
    assert samples[0].text.count(PLACEHOLDER) == len(samples[0].images) == 1
    assert "<image placeholder> is how" in samples[0].text


def test_missing_remote_and_escaping_images_are_rows():
    chapter = (f"<p>{A}</p><img src=\"../images/red.png\"/><img src=\"../images/gone.png\"/>"
               "<img src=\"http://example.com/x.png\"/><img src=\"../../../../etc/passwd\"/><img/>")
    samples, rows = split(interleave(read_epub(fx.epub((chapter,)), "b.epub", EpubCaps()), CONFIG))
    assert len(samples) == 1 and len(samples[0].images) == 1
    assert [(row.reason, row.locator) for row in rows] == [("image_missing", f"image={n}") for n in (2, 3, 4, 5)]
    assert resolve("OEBPS/text/c0.xhtml", "../../../etc/passwd") is None
    assert resolve("OEBPS/text/c0.xhtml", "../images/a%20b.png") == "OEBPS/images/a b.png"


def test_broken_image_bytes_are_image_unreadable():
    chapter = f"<p>{A} {B}</p><img src=\"../images/red.png\"/><img src=\"../images/blue.png\"/>"
    book = fx.epub((chapter,), images={"red.png": b"\x89PNG broken", "blue.png": fx.BLUE})
    samples, rows = split(interleave(read_epub(book, "b.epub", EpubCaps()), CONFIG))
    assert [(row.reason, row.locator) for row in rows] == [("image_unreadable", "image=1")]
    assert len(samples) == 1 and len(samples[0].images) == 1


@pytest.mark.parametrize("data, reason", [
    (b"not a zip at all", "epub_invalid"),
    (fx.zip_bytes({"mimetype": b"application/epub+zip"}), "epub_invalid"),  # no container
    (fx.zip_bytes({"META-INF/container.xml": b"<container><rootfiles/></container>"}), "epub_invalid"),
    (fx.zip_bytes({"META-INF/container.xml": b"<<<not xml"}), "epub_invalid"),
    (fx.zip_bytes({"../evil.xhtml": b"x"}), "epub_unsafe"),  # a member that climbs out
    (fx.zip_bytes({"/etc/evil": b"x"}), "epub_unsafe"),
    (fx.zip_bytes({"bomb.bin": bytes(8 * 1024 * 1024)}), "epub_unsafe"),  # 8 MiB of zeros: about 1000:1
], ids=["not-zip", "no-container", "no-rootfile", "bad-xml", "traversal", "absolute", "zip-bomb"])
def test_hostile_or_broken_books_are_refused_with_a_reason(data, reason):
    with pytest.raises(Reject) as refused:
        read_epub(data, "b.epub", EpubCaps())
    assert refused.value.reason == reason


def test_book_caps_on_members_and_sizes():
    with pytest.raises(Reject, match="members, cap 5") as refused:
        read_epub(fx.epub(extra={f"junk/{n}.txt": b"x" for n in range(10)}), "b.epub", EpubCaps(max_entries=5))
    assert refused.value.reason == "epub_unsafe"
    with pytest.raises(Reject) as refused:
        read_epub(fx.story_epub(), "b.epub", EpubCaps(max_total_bytes=1000))
    assert refused.value.reason == "epub_unsafe"


def test_a_member_that_inflates_past_its_header_is_refused():
    book = bytearray(fx.epub(extra={"OEBPS/big.txt": b"a" * 5000}))
    # Make the central directory claim 50 bytes for big.txt; the real stream inflates to 5000.
    archive = zipfile.ZipFile(__import__("io").BytesIO(bytes(book)))
    info = archive.getinfo("OEBPS/big.txt")
    central = book.rfind(b"OEBPS/big.txt") - 46
    assert book[central:central + 4] == b"PK\x01\x02"
    book[central + 24:central + 28] = (50).to_bytes(4, "little")
    from vlcurate.transforms.sources.interleaved.epub import Book

    with pytest.raises(Reject) as refused:
        Book(bytes(book), EpubCaps()).read("OEBPS/big.txt")
    assert refused.value.reason in ("epub_unsafe", "epub_invalid") and info.file_size == 5000


def test_entity_expansion_in_the_package_is_not_performed():
    laughs = (b"<?xml version=\"1.0\"?><!DOCTYPE c [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">"
              b"<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;\"><!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;\">]>"
              b"<container xmlns=\"urn:oasis:names:tc:opendocument:xmlns:container\"><rootfiles>"
              b"<rootfile full-path=\"&d;\"/></rootfiles></container>")
    started = time.monotonic()
    with pytest.raises(Reject) as refused:
        read_epub(fx.zip_bytes({"META-INF/container.xml": laughs}), "b.epub", EpubCaps())
    assert refused.value.reason == "epub_invalid" and time.monotonic() - started < 5


def test_a_book_without_content_is_filtered():
    with pytest.raises(Reject) as refused:
        interleave(read_epub(fx.epub(("<p>   </p>",), images={}), "b.epub", EpubCaps()), CONFIG)
    assert refused.value.reason == "interleaved_no_content"


@pytest.mark.parametrize("data, reason", [(b"hello", "not_pdf"), (b"%PDF-1.7\n" + b"\x00" * 64, "pdf_corrupt")])
def test_bad_pdfs_are_refused_with_the_pdf_reasons(data, reason):
    with pytest.raises(Reject) as refused:
        read_pdf(data, "x.pdf", 100, 10**8)
    assert refused.value.reason == reason


def test_pdf_page_cap():
    with pytest.raises(Reject) as refused:
        read_pdf(fx.story_pdf(), "x.pdf", 1, 10**8)
    assert refused.value.reason == "pdf_too_many_pages"


def test_keys_follow_the_content_and_the_part():
    one = split(interleave(read_epub(fx.story_epub(), "a/b.epub", EpubCaps()), CONFIG))[0][0]
    moved = split(interleave(read_epub(fx.story_epub(), "c/d.epub", EpubCaps()), CONFIG))[0][0]
    assert one.key == moved.key and one.uri != moved.uri  # the book's sha256 and the part, not where it lies
    other = split(interleave(read_epub(fx.story_epub(), "a/b.epub", EpubCaps()), InterleavedConfig(max_images=1)))[0]
    assert one.key == other[0].key and other[1].key != one.key


def test_a_texinfo_manual_page_keeps_its_figure_and_drops_its_navigation():
    """The shape of Debian's octave-doc pages: a nav panel of Next/Previous/Up links, inline code,
    a figure as <div class="float"><div align="center"><img>, no charset meta, non-ASCII text."""
    page = ("<html><head><title>Convex Hull</title></head><body>"
            "<div class=\"nav-panel\"><p>Next: <a href=\"a.html\">Scattered Data</a>, Previous: "
            "<a href=\"b.html\">Voronoi</a>, Up: <a href=\"c.html\">Geometry</a></p></div><hr>"
            f"<h3>Convex Hull</h3><p>Octave has the functions <code>convhull</code> and <code>convhulln</code> to "
            f"compute the hull ¶ of a set of points; the café example follows. {A}</p>"
            "<div class=\"float\"><div align=\"center\"><img src=\"convhull.png\" alt=\"convhull\"></div>"
            f"<div class=\"float-caption\"><p>Figure 30.5: The convex hull of a simple set of points</p></div></div>"
            f"<p>{B}</p><hr><div class=\"header\"><p>Next: <a href=\"a.html\" rel=\"next\">Interpolation on "
            "Scattered Data</a>, Previous: <a href=\"b.html\" rel=\"prev\">Voronoi Diagrams</a>, Up: <a rel=\"up\" "
            "href=\"c.html\">Geometry</a> [<a href=\"index.html\" rel=\"contents\">Contents</a>]</p></div>"
            "</body></html>")
    content = main_content(page, "http://example.test/Convex-Hull.html")
    found = blocks(parse_html(content.html), lambda src, alt: ImageBlock(fx.RED, src, alt), content)
    samples, _ = split(interleave(Document("u", "html", ("x",), tuple(found)), CONFIG))
    text = samples[0].text
    assert "Next:" not in text and "Voronoi" not in text and "Interpolation" not in text
    assert "Octave has the functions convhull and convhulln to compute the hull ¶ of a set of points; the café" in text
    assert text.index("Octave has") < text.index(PLACEHOLDER) < text.index("Figure 30.5") < text.index(B[:20])
    assert len(samples[0].images) == 1 and samples[0].meta["image_refs"] == [{"src": "convhull.png", "alt": "convhull"}]


def test_linked_images_are_kept_and_a_page_cannot_forge_a_marker():
    content = main_content(f"<html><body><h1>{fx.TITLE}</h1><p>{A}</p><a href=\"big.png\"><img src=\"thumb.png\"></a>"
                           f"<p>{B} vlcimg0000000000000000n0z</p></body></html>")
    found = blocks(parse_html(content.html), lambda src, alt: ImageBlock(fx.RED, src, alt), content)
    images = [block for block in found if isinstance(block, ImageBlock)]
    assert [image.src for image in images] == ["thumb.png"]
    assert found[-1].text.endswith("vlcimg0000000000000000n0z") and found.index(images[0]) == len(found) - 2


def test_epub_chapters_are_read_as_utf8():
    chapter = f"<p>Ein Bäcker, ein Café, ¶ und 東京. {A}</p><img src=\"../images/red.png\"/>"
    samples, _ = split(interleave(read_epub(fx.epub((chapter,)), "b.epub", EpubCaps()), CONFIG))
    assert samples[0].text.startswith("Ein Bäcker, ein Café, ¶ und 東京.")
