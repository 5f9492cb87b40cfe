"""The PDF core without Beam: opening and checking documents, rendering pages, caps, the child's cache."""

from __future__ import annotations

import hashlib
import io
import json
import math
import subprocess
import sys

import pymupdf
import pytest
from PIL import Image as PILImage

from fixtures import pdf as pdf_fixtures
from vlcurate.transforms.sources.pdf import core as pdf
from vlcurate.transforms.sources.pdf.core import (
    PdfConfig,
    PageTask,
    clean_text,
    inspect_document,
    inspect_uri,
    open_pdf,
    render_page,
    render_page_of_uri,
    render_size,
)
from vlcurate.transforms.ocr.config import OcrConfig
from vlcurate.transforms.data.rejects import Reject
from vlcurate.transforms.data.sample import make_key

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


@pytest.fixture(autouse=True)
def _empty_document_cache():
    """inspect_uri keeps documents open in a module-level cache; no test may see another's."""
    pdf._OPEN_DOCUMENTS.clear()
    yield
    pdf._OPEN_DOCUMENTS.clear()


def tasks_of(data: bytes, config: PdfConfig, uri: str = "mem://doc.pdf") -> tuple[pymupdf.Document, list[PageTask]]:
    document = open_pdf(data)
    return document, inspect_document(document, uri, hashlib.sha256(data).hexdigest(), config)


def render(data: bytes, page_index: int, config: PdfConfig, uri: str = "mem://doc.pdf"):
    document, tasks = tasks_of(data, config, uri)
    return render_page(document, tasks[page_index], config)


def decoded(image) -> PILImage.Image:
    picture = PILImage.open(io.BytesIO(image.data))
    picture.load()
    return picture


def one_page_pdf(width: float, height: float) -> bytes:
    document = pymupdf.open()
    document.new_page(width=width, height=height)
    return document.tobytes(no_new_id=True)


def write(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


# --- text pages ---------------------------------------------------------------------------------


def test_text_page_sample_has_key_image_text_and_pdf_facts():
    data = pdf_fixtures.text_pdf(3, "doc", title="A Title")
    sha = hashlib.sha256(data).hexdigest()
    config = PdfConfig(page_size=400, markdown=True)
    sample = render(data, 1, config, uri="file:///in/doc.pdf")

    assert sample.source == "pdf"
    assert sample.category == "document_ocr"
    assert sample.uri == "file:///in/doc.pdf"
    assert sample.locator == "page=2"
    assert sample.key == make_key("pdf", sha, "page=2")
    assert sample.key != make_key("pdf", sha, "page=1")

    # The image: one PNG, long side = page_size, the declared size is the decoded size.
    assert len(sample.images) == 1
    image = sample.images[0]
    assert image.format == "png"
    assert image.data.startswith(PNG_MAGIC)
    picture = decoded(image)
    assert picture.format == "PNG"
    assert picture.size == (image.width, image.height)
    assert image.height == 400  # a portrait Letter page: the height is the long side
    assert abs(image.width - 612 * 400 / 792) <= 1  # the aspect ratio is kept

    # The text: both lines of the page, heading before body.
    assert sample.text == "doc heading 2\n\nBody text of doc page 2."
    assert sample.text_source == "pdf-text-layer"
    assert sample.meta["needs_ocr"] is False

    blocks = sample.meta["text_blocks"]
    assert [block["text"] for block in blocks] == ["doc heading 2", "Body text of doc page 2."]
    for block in blocks:
        x0, y0, x1, y1 = block["bbox"]
        assert 0 <= x0 < x1 <= image.width
        assert 0 <= y0 < y1 <= image.height
    assert blocks[0]["bbox"][1] < blocks[1]["bbox"][1]
    # Boxes are in the image's pixels, not in points: the heading sits at 72 pt from the left.
    assert blocks[0]["bbox"][0] == pytest.approx(72 * 400 / 792, abs=1.5)

    facts = sample.meta["pdf"]
    assert facts["page_number"] == 2
    assert facts["page_count"] == 3
    assert facts["file_sha256"] == sha
    assert facts["title"] == "A Title"
    assert facts["author"] == "vlcurate tests"
    assert facts["page_width_pt"] == 612
    assert facts["page_height_pt"] == 792
    assert facts["repaired"] is False

    doc = sample.to_json()
    assert doc["image"] == {"width": image.width, "height": image.height, "sha256": image.sha256, "format": "png"}
    assert doc["provenance"]["pymupdf"] == pymupdf.VersionBind
    assert [name for name, _ in sample.members()] == [
        f"{sample.key}.json",
        f"{sample.key}.md",
        f"{sample.key}.png",
        f"{sample.key}.txt",
    ]
    assert sample.markdown == "# doc heading 2\n\nBody text of doc page 2.\n"


def test_every_page_has_its_own_text_and_key():
    data = pdf_fixtures.text_pdf(3, "multi")
    config = PdfConfig(page_size=128)
    document, tasks = tasks_of(data, config)
    samples = [render_page(document, task, config) for task in tasks]
    assert [s.locator for s in samples] == ["page=1", "page=2", "page=3"]
    assert [s.text.split("\n\n")[0] for s in samples] == [f"multi heading {n}" for n in (1, 2, 3)]
    assert len({s.key for s in samples}) == 3


def test_default_page_size_is_the_long_side():
    sample = render(pdf_fixtures.text_pdf(1), 0, PdfConfig())
    assert max(sample.images[0].width, sample.images[0].height) == 1024
    assert decoded(sample.images[0]).size == (sample.images[0].width, sample.images[0].height)


def test_landscape_page_puts_page_size_on_the_width():
    sample = render(pdf_fixtures.text_pdf(1, "wide", width=792, height=612), 0, PdfConfig(page_size=500))
    image = sample.images[0]
    assert image.width == 500
    assert abs(image.height - 612 * 500 / 792) <= 1
    assert decoded(image).size == (image.width, image.height)
    assert sample.text == "wide heading 1\n\nBody text of wide page 1."


def test_jpeg_mode_writes_a_jpeg():
    sample = render(pdf_fixtures.text_pdf(1), 0, PdfConfig(page_size=300, image_format="jpeg", jpeg_quality=80))
    image = sample.images[0]
    assert image.format == "jpeg"
    assert image.data.startswith(JPEG_MAGIC)
    picture = decoded(image)
    assert picture.format == "JPEG"
    assert picture.size == (image.width, image.height)
    assert max(picture.size) == 300
    assert sample.to_json()["image"]["format"] == "jpeg"
    assert f"{sample.key}.jpg" in [name for name, _ in sample.members()]


@pytest.mark.parametrize("image_format", ["png", "jpeg"])
def test_rendering_is_deterministic_across_fresh_opens(image_format):
    data = pdf_fixtures.text_pdf(2, "same", title="Same")
    config = PdfConfig(page_size=300, image_format=image_format)
    first = render(data, 1, config)
    second = render(data, 1, config)  # a second, independent open of the same bytes
    assert first.members() == second.members()
    other_page = render(data, 0, config)
    assert other_page.members() != first.members()


def test_scanned_page_needs_ocr():
    # OCR off: the page is flagged for it (tests/test_ocr.py covers the page with OCR on).
    sample = render(pdf_fixtures.scanned_pdf(), 0, PdfConfig(page_size=300, ocr=OcrConfig(mode="never")))
    assert sample.meta["needs_ocr"] is True
    assert sample.text == ""
    assert sample.text_source is None
    assert sample.meta["text_blocks"] == []
    # The page is still rendered: the picture of the words is what OCR will read.
    assert (sample.images[0].width, sample.images[0].height) == (300, 120)
    assert decoded(sample.images[0]).getextrema() != ((255, 255), (255, 255), (255, 255))


# --- bad inputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: pdf_fixtures.NOT_A_PDF, "not_pdf"),
        (pdf_fixtures.truncated_pdf, "pdf_corrupt"),
        (pdf_fixtures.encrypted_pdf, "pdf_encrypted"),
        (pdf_fixtures.zero_page_pdf, "pdf_empty"),
    ],
    ids=["not_pdf", "truncated", "encrypted", "zero_pages"],
)
def test_bad_documents_are_rejected_with_their_reason(tmp_path, make, reason):
    data = make()
    path = write(tmp_path, "bad.pdf", data)
    with pytest.raises(Reject) as caught:
        inspect_uri(path, len(data), PdfConfig())
    assert caught.value.reason == reason
    assert pdf._OPEN_DOCUMENTS == {}


def test_a_pdf_header_after_junk_is_still_a_pdf(tmp_path):
    data = b"junk before the header\n" + pdf_fixtures.text_pdf(1)
    path = write(tmp_path, "junk.pdf", data)
    tasks = inspect_uri(path, len(data), PdfConfig())
    assert len(tasks) == 1


def test_too_many_pages(tmp_path):
    data = pdf_fixtures.text_pdf(5)
    path = write(tmp_path, "five.pdf", data)
    with pytest.raises(Reject) as caught:
        inspect_uri(path, len(data), PdfConfig(max_pages=3))
    assert caught.value.reason == "pdf_too_many_pages"
    assert len(inspect_uri(path, len(data), PdfConfig(max_pages=5))) == 5


def test_inspect_uri_lists_the_pages(tmp_path):
    data = pdf_fixtures.text_pdf(4, title="Listed")
    path = write(tmp_path, "four.pdf", data)
    tasks = inspect_uri(path, len(data), PdfConfig())
    sha = hashlib.sha256(data).hexdigest()
    assert [task.page_index for task in tasks] == [0, 1, 2, 3]
    assert {(task.uri, task.file_sha256, task.page_count, task.repaired) for task in tasks} == {(path, sha, 4, False)}
    assert dict(tasks[0].metadata)["title"] == "Listed"
    assert [task.locator for task in tasks] == ["page=1", "page=2", "page=3", "page=4"]


def test_file_too_large_by_its_listed_size(tmp_path):
    data = pdf_fixtures.text_pdf(1)
    path = write(tmp_path, "big.pdf", data)
    with pytest.raises(Reject) as caught:
        inspect_uri(path, len(data), PdfConfig(max_file_bytes=len(data) - 1))
    assert caught.value.reason == "file_too_large"
    assert len(inspect_uri(path, len(data), PdfConfig(max_file_bytes=len(data)))) == 1


def test_file_too_large_when_the_listed_size_lies(tmp_path):
    data = pdf_fixtures.text_pdf(1)
    path = write(tmp_path, "grown.pdf", data)
    with pytest.raises(Reject) as caught:
        inspect_uri(path, 100, PdfConfig(max_file_bytes=len(data) - 1))
    assert caught.value.reason == "file_too_large"
    assert caught.value.detail.startswith("over ")  # read_capped caught it, not the listed size


def test_missing_file_is_a_read_error(tmp_path):
    with pytest.raises(Reject) as caught:
        inspect_uri(str(tmp_path / "gone.pdf"), 1000, PdfConfig())
    assert caught.value.reason == "read_error"
    assert "FileNotFoundError" in caught.value.detail


# --- page caps ----------------------------------------------------------------------------------

BIG_PAGES = PdfConfig(page_size=4096, max_page_pixels=4_000_000)


def test_square_page_over_the_pixel_cap_is_too_large():
    with pytest.raises(Reject) as caught:
        render(pdf_fixtures.text_pdf(1, width=612, height=612), 0, BIG_PAGES)
    assert caught.value.reason == "page_too_large"


def test_narrow_page_under_the_pixel_cap_renders():
    sample = render(pdf_fixtures.text_pdf(1, "narrow", width=4096, height=512), 0, BIG_PAGES)
    image = sample.images[0]
    assert (image.width, image.height) == (4096, 512)
    assert image.width * image.height <= BIG_PAGES.max_page_pixels
    assert decoded(image).size == (4096, 512)
    assert sample.text == "narrow heading 1\n\nBody text of narrow page 1."


@pytest.mark.parametrize(
    ("width", "height"), [(0, 792), (612, 0), (0, 0), (-10, 500), (math.nan, 100), (1, 14400), (14400, 1)]
)
def test_degenerate_page_sizes(width, height):
    with pytest.raises(Reject) as caught:
        render_size(width, height, 1024)
    assert caught.value.reason == "page_degenerate"


def test_extreme_sliver_page_is_rejected_when_rendered():
    with pytest.raises(Reject) as caught:
        render(one_page_pdf(1, 14400), 0, PdfConfig())
    assert caught.value.reason == "page_degenerate"


def test_render_size_scales_the_long_side():
    scale, width_px, height_px = render_size(612, 792, 1024)
    assert scale == pytest.approx(1024 / 792)
    assert height_px == 1024
    assert abs(width_px - 612 * 1024 / 792) <= 1
    _, width_px, height_px = render_size(792, 612, 1024)
    assert width_px == 1024
    assert abs(height_px - 612 * 1024 / 792) <= 1


def test_pixel_cap_and_render_size_agree_with_the_rendered_image():
    """render_size gives MuPDF's own pixmap size (the scaled page rounded outwards: an A4 page at
    1024 is 725x1024, not 724x1024), so the cap bounds the image really rendered, to the pixel."""
    data = one_page_pdf(595.28, 841.89)  # A4
    assert render_size(595.28, 841.89, 1024)[1:] == (725, 1024)
    sample = render(data, 0, PdfConfig(page_size=1024, max_page_pixels=725 * 1024))
    assert (sample.images[0].width, sample.images[0].height) == (725, 1024)
    assert decoded(sample.images[0]).size == (725, 1024)
    with pytest.raises(Reject) as caught:
        render(data, 0, PdfConfig(page_size=1024, max_page_pixels=725 * 1024 - 1))
    assert caught.value.reason == "page_too_large"


def test_text_boxes_of_a_rotated_page_sit_on_the_rendered_text():
    document = pymupdf.open()
    page = document.new_page(width=600, height=300)
    page.insert_text((50, 50), "TOPLEFT", fontsize=20)
    page.set_rotation(90)
    data = document.tobytes()
    sample = render(data, 0, PdfConfig(page_size=600))
    image = decoded(sample.images[0]).convert("L")
    assert image.size == (300, 600)  # rotated: the page now stands upright
    [block] = sample.meta["text_blocks"]
    x0, y0, x1, y1 = block["bbox"]
    ink = image.point(lambda value: 255 if value < 128 else 0).getbbox()  # dark pixels
    assert ink is not None
    # The box holds the ink (to a pixel or two of rounding) and is not much larger than it.
    assert x0 - 2 <= ink[0] and ink[2] <= x1 + 2 and y0 - 2 <= ink[1] and ink[3] <= y1 + 2
    assert (x1 - x0) < 3 * (ink[2] - ink[0]) and (y1 - y0) < 3 * (ink[3] - ink[1])


# --- the child's document cache -----------------------------------------------------------------


def test_render_page_of_uri_uses_the_cached_document_and_detects_a_changed_file(tmp_path):
    data = pdf_fixtures.text_pdf(2, "first")
    path = tmp_path / "doc.pdf"
    path.write_bytes(data)
    config = PdfConfig(page_size=200)
    tasks = inspect_uri(str(path), len(data), config)
    assert list(pdf._OPEN_DOCUMENTS) == [tasks[0].file_sha256]

    # Cached: the file's bytes are not read again, so a page renders even with the file gone.
    path.unlink()
    sample = render_page_of_uri(tasks[1], config)
    assert sample.text == "first heading 2\n\nBody text of first page 2."
    assert sample.key == make_key("pdf", hashlib.sha256(data).hexdigest(), "page=2")

    # Not cached and the file replaced: the listed sha256 no longer holds.
    path.write_bytes(pdf_fixtures.text_pdf(2, "second"))
    pdf._OPEN_DOCUMENTS.clear()
    with pytest.raises(Reject) as caught:
        render_page_of_uri(tasks[1], config)
    assert caught.value.reason == "input_changed"

    # Not cached, file unchanged: it is reopened and rendered the same as before.
    path.write_bytes(data)
    again = render_page_of_uri(tasks[1], config)
    assert again.members() == sample.members()
    assert list(pdf._OPEN_DOCUMENTS) == [tasks[0].file_sha256]


def test_cache_keeps_the_last_documents_and_reopens_an_evicted_one(tmp_path):
    config = PdfConfig(page_size=100)
    listed = []
    for label in ("a", "b", "c"):
        data = pdf_fixtures.text_pdf(1, label)
        listed.append(inspect_uri(write(tmp_path, f"{label}.pdf", data), len(data), config)[0])
    assert list(pdf._OPEN_DOCUMENTS) == [listed[1].file_sha256, listed[2].file_sha256]
    sample = render_page_of_uri(listed[0], config)  # evicted: read again from disk
    assert sample.text.startswith("a heading 1")
    assert list(pdf._OPEN_DOCUMENTS) == [listed[2].file_sha256, listed[0].file_sha256]


# --- config and text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"image_format": "gif"},
        {"image_format": "JPEG"},
        {"page_size": 15},
        {"page_size": 0},
        {"max_file_bytes": 0},
        {"max_pages": 0},
        {"max_page_pixels": -1},
        {"page_timeout_s": 0},
        {"page_timeout_s": -1.0},
    ],
)
def test_config_validation(settings):
    with pytest.raises(ValueError):
        PdfConfig(**settings)


def test_config_accepts_its_limits():
    config = PdfConfig(image_format="jpeg", page_size=16, max_file_bytes=1, max_pages=1, max_page_pixels=1)
    assert (config.page_size, config.image_format) == (16, "jpeg")


def test_clean_text_removes_nuls_and_lone_surrogates():
    dirty = "a\x00b\ud800c\udfffd"
    clean = clean_text(dirty)
    assert "\x00" not in clean
    clean.encode("utf-8")  # strict: would raise on a surrogate
    assert clean == "ab?c?d"
    assert clean_text("Größe — 数学 🙂") == "Größe — 数学 🙂"


# --- what the render child imports ----------------------------------------------------------------

_TEXT_BLOCKS_IN_A_FRESH_PROCESS = """
import json, sys
{first}
from vlcurate.transforms.sources.pdf import core
from vlcurate.transforms.sources.pdf.config import PdfConfig
import pymupdf
document = pymupdf.open()
page = document.new_page()
# ZapfDingbats: a font whose character boxes MuPDF's ascender/descender corrections change.
page.insert_text((50, 100), "Hello World gjpqy 123", fontname="zadb", fontsize=14)
data = document.tobytes(no_new_id=True)
config = PdfConfig()
opened = core.open_pdf(data)
tasks = core.inspect_document(opened, "mem://zadb.pdf", "0" * 64, config)
sample = core.render_page(opened, tasks[0], config)
print(json.dumps({{"blocks": sample.meta["text_blocks"],
                  "loaded": sorted(name for name in ("pymupdf4llm", "pymupdf.layout") if name in sys.modules)}}))
"""


def _text_blocks_in_a_fresh_process(first: str) -> dict:
    script = _TEXT_BLOCKS_IN_A_FRESH_PROCESS.format(first=first)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout)


def test_the_core_leaves_pymupdf4llm_and_the_layout_model_out_and_its_text_boxes_do_not_depend_on_it():
    """A render child imports only the core (0.25 s instead of 0.65 s of CPU); pymupdf4llm, which
    PyMuPDF would import itself, switches character-box corrections off for the whole process, and
    the core does the same, so the text blocks are those of a process where PyMuPDF loaded it."""
    alone = _text_blocks_in_a_fresh_process("")
    with_pymupdf4llm = _text_blocks_in_a_fresh_process("import pymupdf")  # PyMuPDF's own import loads it
    assert alone["loaded"] == []
    assert with_pymupdf4llm["loaded"] == ["pymupdf.layout", "pymupdf4llm"]
    assert alone["blocks"] == with_pymupdf4llm["blocks"]
    assert alone["blocks"][0]["text"].startswith("Hello")
