"""Pages as markdown (KEY.md): a manual's page drawn from known headings, list, code and table
through `render_page` (pymupdf4llm on the text layer), and OCR text as markdown."""

from __future__ import annotations

import hashlib

import pytest

from fixtures import ocr as ocr_fixtures
from fixtures.manual_page import CAPTION, CODE, ITEMS, SECTIONS, TABLE_MARKDOWN, TITLE, manual_pdf
from vlcurate.transforms.data.sample import sample_from_members, split_member_name
from vlcurate.transforms.ocr.config import OcrConfig
from vlcurate.transforms.ocr.core import OcrLine, with_ocr
from vlcurate.transforms.ocr.markdown import ocr_markdown
from vlcurate.transforms.sources.pdf import markdown as pdf_markdown
from vlcurate.transforms.sources.pdf.config import PdfConfig
from vlcurate.transforms.sources.pdf.core import inspect_document, open_pdf, render_page

NO_OCR = OcrConfig(mode="never")


def _pages(data: bytes, **settings):
    config = PdfConfig(ocr=NO_OCR, **{"markdown": True, **settings})
    pdf = open_pdf(data)
    return pdf, inspect_document(pdf, "mem://manual.pdf", hashlib.sha256(data).hexdigest(), config), config


def test_headings_lists_code_and_tables_come_out_as_markdown():
    pdf, tasks, config = _pages(manual_pdf())
    markdown = render_page(pdf, tasks[0], config).markdown
    lines = markdown.splitlines()
    assert [line for line in lines if line.startswith("#")] == [f"# {TITLE}", *(f"## {s}" for s in SECTIONS)]
    assert [line.strip() for line in lines if line.strip().startswith("- ")] == [f"- {item}" for item in ITEMS]
    fence = [i for i, line in enumerate(lines) if line.startswith("```")]
    assert len(fence) == 2 and [line.strip() for line in lines[fence[0] + 1:fence[1]] if line.strip()] == list(CODE)
    start = lines.index(TABLE_MARKDOWN[0])
    assert lines[start:start + len(TABLE_MARKDOWN)] == TABLE_MARKDOWN  # cell by cell, "|" escaped
    assert lines[start - 2:start] == [CAPTION, ""]  # the caption over the table is no table row
    assert lines.index(f"# {TITLE}") < lines.index(f"## {SECTIONS[0]}") < fence[0] < start  # reading order
    assert markdown.endswith("\n") and "\n\n\n" not in markdown


def test_a_body_page_has_no_headings_and_its_level_sizes_come_from_the_document():
    pdf, tasks, config = _pages(manual_pdf())
    markdown = render_page(pdf, tasks[1], config).markdown
    assert "#" not in markdown and "installs from its package" in markdown


def test_markdown_leaves_the_document_and_the_text_layer_as_they_were():
    """pymupdf4llm bakes annotations into the pages it reads: it reads its own copy, so the txt of
    a page, and its md, do not depend on what the process read before."""
    data = manual_pdf(annotated=True)
    pdf, tasks, config = _pages(data)
    first = [render_page(pdf, task, config) for task in tasks]
    again = [render_page(pdf, task, config) for task in reversed(tasks)][::-1]
    fresh_pdf, fresh_tasks, plain = _pages(data, markdown=False)
    plain_pages = [render_page(fresh_pdf, task, plain) for task in fresh_tasks]
    assert [s.text for s in first] == [s.text for s in again] == [s.text for s in plain_pages]
    assert [s.markdown for s in first] == [s.markdown for s in again]
    assert all(s.markdown is None for s in plain_pages)
    assert [s.members() for s in first] == [s.members() for s in again]


def test_the_md_member_goes_into_the_tar_and_back():
    pdf, tasks, config = _pages(manual_pdf())
    sample = render_page(pdf, tasks[0], config)
    members = dict(sample.members())
    assert members[f"{sample.key}.md"] == sample.markdown.encode("utf-8")
    assert [name.split(".", 1)[1] for name, _ in sample.members()] == ["json", "md", "png", "txt"]
    back = sample_from_members({split_member_name(name)[1]: data for name, data in sample.members()})
    assert back == sample


def test_a_page_without_text_has_no_markdown():
    pdf, tasks, config = _pages(ocr_fixtures.image_only_pdf())
    sample = render_page(pdf, tasks[0], config)
    assert sample.meta["needs_ocr"] and sample.markdown is None


def test_a_page_whose_markdown_fails_keeps_its_sample(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("odd page")

    monkeypatch.setattr(pdf_markdown, "page_markdown", broken)
    pdf, tasks, config = _pages(manual_pdf())
    sample = render_page(pdf, tasks[0], config)
    assert sample.markdown is None and TITLE in sample.text


# --- OCR text as markdown -----------------------------------------------------------------------


def _line(text: str, left: float, top: float, height: float, width: float | None = None) -> OcrLine:
    right = left + (width if width is not None else 0.5 * height * len(text))
    return OcrLine(text, ((left, top), (right, top), (right, top + height), (left, top + height)), 0.9)


def test_ocr_rows_give_headings_by_size_paragraphs_by_gaps_and_list_items():
    rows = [
        [_line("Quarterly report", 40, 20, 40)],  # twice the body's height: #
        [_line("Sales grew in every region this year.", 40, 80, 20)],
        [_line("The north led, the south followed.", 40, 104, 20)],
        [_line("Regions", 40, 150, 28)],  # 1.4 times: ##
        [_line("• North: 1,250 units", 40, 200, 20)],
        [_line("• South: 980 units", 40, 224, 20)],
        [_line("# not a heading, a hash sign", 40, 270, 20)],
        [_line("Second column, top.", 400, 80, 20)],  # reading order went up to the next column
    ]
    assert ocr_markdown(rows) == (
        "# Quarterly report\n\n"
        "Sales grew in every region this year.\nThe north led, the south followed.\n\n"
        "## Regions\n\n"
        "- North: 1,250 units\n- South: 980 units\n\n"
        "\\# not a heading, a hash sign\n\n"
        "Second column, top.\n"
    )


def test_ocr_markdown_of_nothing_is_empty_and_lines_side_by_side_stay_one_row():
    assert ocr_markdown([]) == ""
    row = [_line("Total", 40, 40, 20), _line("1,250", 300, 40, 20)]
    assert ocr_markdown([row, [_line("more text on the next line", 40, 64, 20)]]) == \
        "Total 1,250\nmore text on the next line\n"


@pytest.mark.parametrize("engine", ["ppocr", "tesseract"])
def test_an_ocred_page_gets_the_markdown_of_its_ocr_text(engine):
    """Real OCR on a rendered page with a large title over body lines."""
    from vlcurate.transforms.data.sample import Sample, encode_image

    title = ocr_fixtures.text_image("Opening hours", font_px=64)
    body = ocr_fixtures.text_image(["Open daily from 9 to 5", "Closed on public holidays"], font_px=28)
    from PIL import Image

    page = Image.new("RGB", (max(title.width, body.width), title.height + body.height), "white")
    page.paste(title, (0, 0))
    page.paste(body, (0, title.height))
    sample = Sample(key="pdf-0", source="pdf", category="document_ocr", uri="mem://x", locator="page=1",
                    images=(encode_image(page, "png"),), text="")
    read = with_ocr(sample, OcrConfig(engine=engine), markdown=True)
    lines = read.markdown.splitlines()
    assert lines[0] == "# Opening hours"
    assert [line for line in lines[1:] if line] == ["Open daily from 9 to 5", "Closed on public holidays"]
    assert with_ocr(sample, OcrConfig(engine=engine)).markdown is None  # web screenshots: no md


def _tex_like_manual() -> bytes:
    """A cover in six large sizes, then chapters (17 pt) and sections (12 pt) over a 10 pt body."""
    import pymupdf

    document = pymupdf.open()
    cover = document.new_page()
    for i, size in enumerate((40, 34, 30, 26, 23, 21)):
        cover.insert_text((72, 100 + 60 * i), f"Cover line {i}", fontsize=size)
    for chapter in (1, 2):
        page = document.new_page()
        page.insert_text((72, 80), f"{chapter} Chapter {chapter}", fontsize=17, fontname="hebo")
        page.insert_textbox(pymupdf.Rect(72, 95, 540, 200), "Body text of the chapter. " * 12, fontsize=10)
        page.insert_text((72, 230), f"{chapter}.1 A section", fontsize=12, fontname="hebo")
        page.insert_textbox(pymupdf.Rect(72, 240, 540, 400), "More body text in the section. " * 12, fontsize=10)
    return document.tobytes(garbage=4, deflate=True, no_new_id=True)


def test_a_10_pt_manual_keeps_its_12_pt_sections_and_a_cover_takes_no_level_from_them():
    pdf, tasks, config = _pages(_tex_like_manual())
    headings = [[line for line in render_page(pdf, task, config).markdown.splitlines() if line.startswith("#")]
                for task in tasks[1:]]
    assert headings == [["# 1 Chapter 1", "## 1.1 A section"], ["# 2 Chapter 2", "## 2.1 A section"]]
