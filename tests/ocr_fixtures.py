"""Generated OCR inputs: text drawn into images at several sizes and angles, and PDF pages whose
text layer is the reference. Fonts are Debian's Noto (a test dependency in the Makefile)."""

from __future__ import annotations

import io

import pymupdf
from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf"
SERIF = "/usr/share/fonts/truetype/noto/NotoSerif-Regular.ttf"

PHRASES = (
    "Quarterly report 2024",
    "Open daily from 9 to 5",
    "Vision language models",
    "Total revenue: 1,250 units",
    "Please keep this door closed",
    "Platform 3 to Cambridge",
)

PARAGRAPHS = (
    "The curation pipeline renders every page of a document, reads its text layer and writes "
    "each page as one sample. Pages that hold only a picture of their text are sent to OCR.",
    "Results improve when captions are filtered by their similarity to the image. We keep the "
    "pairs above the threshold and report the rest with their scores for a later run.",
    "Section 4 describes the training data: web screenshots, document pages, charts with their "
    "tables, plots from notebooks and scene text from photographs of signs.",
)


def text_image(lines, font_px: int = 32, angle: float = 0, font: str = FONT, background=(255, 255, 255),
               ink=(20, 20, 20), margin: int = 24) -> Image.Image:
    """``lines`` drawn one under another, then turned by ``angle`` degrees (counter-clockwise)."""
    face = ImageFont.truetype(font, font_px)
    lines = [lines] if isinstance(lines, str) else list(lines)
    width = max(int(face.getlength(line)) for line in lines) + 2 * margin
    step = int(font_px * 1.5)
    image = Image.new("RGB", (width, step * len(lines) + 2 * margin), background)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((margin, margin + i * step), line, font=face, fill=ink)
    if angle:
        image = image.rotate(angle, expand=True, fillcolor=background, resample=Image.BICUBIC)
    return image


def encoded(image: Image.Image, image_format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def text_layer_pdf(paragraphs=PARAGRAPHS, fontsize: float = 11, width: float = 420, height: float = 300) -> bytes:
    """One page per paragraph, set as real text: its text layer is the reference for OCR."""
    document = pymupdf.open()
    for paragraph in paragraphs:
        page = document.new_page(width=width, height=height)
        page.insert_textbox(pymupdf.Rect(36, 36, width - 36, height - 36), paragraph, fontsize=fontsize,
                            fontname="helv")
    return document.tobytes(garbage=4, deflate=True, no_new_id=True)


def two_column_pdf(fontsize: float = 10) -> bytes:
    """One page, two columns of prose: the text layer reads the left column, then the right."""
    document = pymupdf.open()
    page = document.new_page(width=595, height=420)
    for column, paragraph in enumerate(PARAGRAPHS[:2]):
        x0 = 40 + column * 270
        page.insert_textbox(pymupdf.Rect(x0, 40, x0 + 245, 380), paragraph, fontsize=fontsize, fontname="helv")
    return document.tobytes(garbage=4, deflate=True, no_new_id=True)


def image_only_pdf(paragraphs=PARAGRAPHS[:1], dpi: int = 200) -> bytes:
    """The pages of ``text_layer_pdf`` as pictures only (a scan without a text layer)."""
    source = pymupdf.open(stream=text_layer_pdf(paragraphs), filetype="pdf")
    document = pymupdf.open()
    for page in source:
        png = page.get_pixmap(dpi=dpi).tobytes("png")
        document.new_page(width=page.rect.width, height=page.rect.height).insert_image(page.rect, stream=png)
    return document.tobytes(garbage=4, deflate=True, no_new_id=True)
