"""OCR core: both real engines (PP-OCR through rapidocr's ONNX models, Tesseract through tesserocr)
on generated images, reading order, hostile images, the CER measure, and OCR of PDF pages."""

from __future__ import annotations

import hashlib
import os

import pymupdf
import pytest
from PIL import Image as PILImage

from fixtures import ocr as ocr_fixtures
from fixtures.ocr import PARAGRAPHS, PHRASES, encoded, text_image
from vlcurate.transforms.data.images import open_image
from vlcurate.transforms.ocr.core import OcrLine, OcrResult, read_text, reading_order, rows
from vlcurate.transforms.ocr.config import (
    DEBIAN_TESSDATA, ImageTask, OcrConfig, engine_models, ppocr_model_paths,
)
from vlcurate.transforms.ocr.accuracy import character_error_rate, edit_distance
from vlcurate.transforms.sources.pdf.core import PdfConfig, open_pdf, inspect_document, render_page
from vlcurate.transforms.data.rejects import Reject

PPOCR = OcrConfig(engine="ppocr")
TESSERACT = OcrConfig(engine="tesseract")
REFERENCE = " ".join(PHRASES[:3])


# --- the engines ------------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("font_px", [16, 32, 56])
@pytest.mark.parametrize("config", [PPOCR, TESSERACT], ids=["ppocr", "tesseract"])
def test_upright_text_is_read_at_several_sizes(config, font_px):
    result = read_text(text_image(PHRASES[:3], font_px), config)
    assert character_error_rate(result.text, REFERENCE) <= 0.02
    assert result.text.split("\n")[0].startswith("Quarterly")  # reading order: top line first
    assert result.engine == config.engine and 0.5 <= result.confidence <= 1.0


@pytest.mark.parametrize("angle", [5, 12, 90, 180, 270])
def test_ppocr_reads_turned_and_skewed_text_in_reading_order(angle):
    # PP-OCR's direction model alone gets many of these wrong (see PpOcrEngine.read); with the
    # recognition check every line reads upright, and the order follows the text, not the image.
    result = read_text(text_image(PHRASES[:3], 32, angle), PPOCR)
    assert result.text == "\n".join(PHRASES[:3])


@pytest.mark.parametrize("angle", [90, 270])
def test_tesseract_turns_sideways_pages_with_its_orientation_detection(angle):
    # Tesseract (PSM AUTO_OSD) turns quarter-rotated pages; it does not handle skew past a few
    # degrees (measured: nothing read at 12 degrees), which is why ppocr is the default.
    result = read_text(text_image(PHRASES[:3], 32, angle), TESSERACT)
    assert character_error_rate(result.text, REFERENCE) <= 0.02


@pytest.mark.parametrize("config", [PPOCR, TESSERACT], ids=["ppocr", "tesseract"])
def test_lines_have_four_point_boxes_around_their_text(config):
    image = text_image(["LEFT TOP", "", "", "BOTTOM LINE"], 40)
    result = read_text(image, config)
    assert [line.text for line in result.lines] == ["LEFT TOP", "BOTTOM LINE"]
    top, bottom = result.lines
    for line in result.lines:
        assert len(line.box) == 4 and 0 < line.confidence <= 1
        assert all(-2 <= x <= image.width + 2 and -2 <= y <= image.height + 2 for x, y in line.box)
    # drawn at y = 24 and y = 24 + 3 * 60, 40 px high
    assert 10 <= top.top <= 40 and 190 <= bottom.top <= 220 and top.bottom < bottom.top
    described = result.describe()
    assert described["lines"][0]["box"][0] == [round(top.box[0][0], 1), round(top.box[0][1], 1)]
    assert described["empty"] is False and described["engine"] == config.engine


@pytest.mark.parametrize("config", [PPOCR, TESSERACT], ids=["ppocr", "tesseract"])
def test_an_image_without_text_gives_an_empty_result(config):
    result = read_text(PILImage.new("RGB", (320, 200), (230, 230, 230)), config)
    assert result.lines == () and result.text == "" and result.confidence == 0.0
    assert result.describe()["empty"] is True


def test_side_by_side_boxes_share_a_row_and_stacked_ones_do_not():
    def line(text, x0, y0, x1, y1):
        return OcrLine(text, ((x0, y0), (x1, y0), (x1, y1), (x0, y1)), 0.9)

    right = line("world", 120, 12, 200, 38)
    left = line("hello", 10, 10, 100, 40)
    below = line("next", 10, 50, 90, 80)
    grouped = rows([below, right, left])
    assert [[item.text for item in row] for row in grouped] == [["hello", "world"], ["next"]]
    result = OcrResult("ppocr", tuple(tuple(row) for row in grouped))
    assert result.text == "hello world\nnext"
    # Text running downwards (a page turned a quarter clockwise) reads right to left in columns.
    down = [OcrLine("first", ((200, 10), (200, 100), (170, 100), (170, 10)), 0.9),
            OcrLine("second", ((150, 10), (150, 100), (120, 100), (120, 10)), 0.9)]
    ordered = reading_order(list(reversed(down)), [1, 1])
    assert [[item.text for item in row] for row in ordered] == [["first"], ["second"]]


def test_columns_of_prose_are_read_one_after_the_other_and_tables_by_rows():
    def line(text, x0, y0, x1, y1):
        return OcrLine(text, ((x0, y0), (x1, y0), (x1, y1), (x0, y1)), 0.9)

    def read(lines):
        ordered = reading_order(lines[::-1], [0] * len(lines))
        return [item.text for row in ordered for item in row]

    # A heading across the page, then two columns whose lines stand level with each other.
    page = [line("Heading across", 10, 0, 650, 20)]
    for row in range(3):
        y = 50 + 25 * row
        page += [line(f"left {row}", 10, y, 310, y + 20), line(f"right {row}", 350, y, 650, y + 20)]
    assert read(page) == ["Heading across", "left 0", "left 1", "left 2", "right 0", "right 1", "right 2"]
    # A table: short cells with wide gaps between them are read a row at a time.
    table = []
    for row in range(3):
        y = 50 + 25 * row
        table += [line(f"name {row}", 10, y, 90, y + 20), line(f"value {row}", 200, y, 260, y + 20)]
    assert read(table) == ["name 0", "value 0", "name 1", "value 1", "name 2", "value 2"]


def test_confidence_is_weighted_by_characters():
    def line(text, confidence):
        return OcrLine(text, ((0, 0), (1, 0), (1, 1), (0, 1)), confidence)

    result = OcrResult("ppocr", ((line("abcdefghi", 1.0),), (line("x", 0.0),)))
    assert result.confidence == pytest.approx(0.9)


# --- models and config ------------------------------------------------------------------------------


def test_model_files_are_named_with_their_sha256():
    models = engine_models(PPOCR)
    assert set(models) == {"det", "cls", "rec"}
    det = ppocr_model_paths()["det"]
    with open(det, "rb") as handle:
        assert models["det"]["sha256"] == hashlib.sha256(handle.read()).hexdigest()
    tesseract = engine_models(TESSERACT)
    assert set(tesseract) == {"eng", "osd"} and tesseract["eng"]["file"] == "eng.traineddata"


def test_missing_tesseract_data_is_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="eng.traineddata.*tesseract-ocr"):
        engine_models(OcrConfig(engine="tesseract", tessdata=str(tmp_path)))
    assert OcrConfig(engine="tesseract").tessdata_dir in (os.environ.get("TESSDATA_PREFIX"), DEBIAN_TESSDATA)


@pytest.mark.parametrize("bad", [{"engine": "easyocr"}, {"mode": "sometimes"}, {"dpi": 10}, {"threads": 0}])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        OcrConfig(**bad)


def test_modes_decide_which_pages_are_read():
    assert OcrConfig(mode="auto").wanted(has_text=False) and not OcrConfig(mode="auto").wanted(has_text=True)
    assert OcrConfig(mode="always").wanted(has_text=True)
    assert not OcrConfig(mode="never").wanted(has_text=False)


# --- hostile images ---------------------------------------------------------------------------------


def test_images_are_decoded_upright_in_rgb_over_white():
    # Dark text on a transparent background must not turn into dark text on black.
    rgba = PILImage.new("RGBA", (40, 20), (0, 0, 0, 0))
    rgba.putpixel((5, 5), (0, 0, 0, 255))
    image, image_format = open_image(encoded(rgba), 10_000)
    assert image_format == "PNG" and image.mode == "RGB"
    assert image.getpixel((0, 0)) == (255, 255, 255) and image.getpixel((5, 5)) == (0, 0, 0)
    # EXIF orientation 6 (turn 90 degrees clockwise to view): a 40x20 JPEG is a 20x40 picture.
    exif = PILImage.Exif()
    exif[0x0112] = 6
    jpeg = encoded(PILImage.new("RGB", (40, 20), "red"), "JPEG", exif=exif.tobytes())
    image, image_format = open_image(jpeg, 10_000)
    assert (image_format, image.size) == ("JPEG", (20, 40))


def test_a_header_claiming_too_many_pixels_is_rejected_before_decoding():
    # 20000 x 20000 one-bit pixels compress to a few kilobytes: a decompression bomb.
    bomb = encoded(PILImage.new("1", (20_000, 20_000)))
    assert len(bomb) < 100_000
    with pytest.raises(Reject) as caught:
        open_image(bomb, 40_000_000)
    assert caught.value.reason == "image_too_large"
    with pytest.raises(Reject) as caught:
        open_image(encoded(PILImage.new("RGB", (300, 200))), 300 * 200 - 1)
    assert caught.value.reason == "image_too_large"
    assert open_image(encoded(PILImage.new("RGB", (300, 200))), 300 * 200)[0].size == (300, 200)


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"


@pytest.mark.parametrize(
    "data",
    [b"", b"plain text, not an image", encoded(text_image("cut short"))[:200], EPS, b"GIF89a" + b"\x00" * 10],
    ids=["empty", "text", "truncated-png", "eps-not-accepted", "bad-gif"],
)
def test_unreadable_images_are_rejected(data):
    with pytest.raises(Reject) as caught:
        open_image(data, 40_000_000)
    assert caught.value.reason == "image_unreadable"


@pytest.mark.e2e
def test_ocr_image_uri_makes_a_scene_ocr_sample_without_the_input_metadata(tmp_path):
    from vlcurate.transforms.ocr.core import ocr_image_uri

    exif = PILImage.Exif()
    exif[0x010F] = "Camera maker"  # metadata that must not reach the dataset
    path = tmp_path / "sign.jpg"
    path.write_bytes(encoded(text_image("Platform 3 to Cambridge", 40), "JPEG", quality=95, exif=exif.tobytes()))
    sample = ocr_image_uri(ImageTask(str(path), path.stat().st_size), PPOCR)
    assert (sample.source, sample.category, sample.text_source) == ("ocr", "scene_ocr", "ocr:ppocr")
    # JPEG edges blur "Platform 3" (the "3" box takes a stroke of the "m"): a bound, not equality.
    assert character_error_rate(sample.text, "Platform 3 to Cambridge") <= 0.1 and "Cambridge" in sample.text
    assert sample.images[0].format == "jpeg" and b"Camera maker" not in sample.images[0].data
    assert sample.markdown == sample.text + "\n"  # KEY.md: one line of body text is one paragraph
    assert sample.meta["file"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert sample.scores["ocr_confidence"] > 0.8
    assert sample.provenance["ocr_models"]["rec"]["sha256"] == engine_models(PPOCR)["rec"]["sha256"]
    with pytest.raises(Reject) as caught:
        ocr_image_uri(ImageTask(str(path), path.stat().st_size), OcrConfig(max_file_bytes=100))
    assert caught.value.reason == "file_too_large"


# --- accuracy: CER against a text layer ---------------------------------------------------------------


def test_edit_distance_matches_the_textbook_definition():
    def textbook(a, b):
        row = list(range(len(b) + 1))
        for i, char_a in enumerate(a, 1):
            previous, row[0] = row[:], i
            for j, char_b in enumerate(b, 1):
                row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (char_a != char_b))
        return row[-1]

    pairs = [("kitten", "sitting"), ("", "abc"), ("abc", ""), ("数据 é", "数据e"), ("flaw", "lawn"), ("ab", "ba")]
    for a, b in pairs:
        assert edit_distance(a, b) == textbook(a, b)
    assert character_error_rate("a  b\nc", "a b c") == 0.0
    assert character_error_rate("abcd", "abce") == 0.25


@pytest.mark.e2e
@pytest.mark.parametrize("config", [PPOCR, TESSERACT], ids=["ppocr", "tesseract"])
def test_ocr_of_rendered_text_pages_is_within_the_cer_bound(config):
    # The bound on a small generated set; bench/ocr_accuracy.py measures the larger corpus.
    pages = [*pymupdf.open(stream=ocr_fixtures.text_layer_pdf(), filetype="pdf"),
             *pymupdf.open(stream=ocr_fixtures.two_column_pdf(), filetype="pdf")]
    errors = characters = 0
    for page in pages:
        reference = page.get_text()
        pixmap = page.get_pixmap(dpi=200)
        image = PILImage.frombytes("RGB", (pixmap.width, pixmap.height), pixmap.samples)
        hypothesis = read_text(image, config).text
        characters += len(" ".join(reference.split()))
        errors += character_error_rate(hypothesis, reference) * len(" ".join(reference.split()))
    assert errors / characters <= 0.01


# --- OCR of PDF pages ------------------------------------------------------------------------------------


def render_first_page(data: bytes, config: PdfConfig):
    document = open_pdf(data)
    [task, *_] = inspect_document(document, "mem://doc.pdf", hashlib.sha256(data).hexdigest(), config)
    return render_page(document, task, config)


def test_a_page_without_text_layer_gets_ocr_text_with_boxes_in_sample_pixels():
    config = PdfConfig(page_size=512, ocr=OcrConfig(mode="auto"))
    sample = render_first_page(ocr_fixtures.image_only_pdf(), config)
    assert sample.meta["needs_ocr"] is True and sample.meta["text_blocks"] == []
    assert sample.text_source == "ocr:ppocr"
    assert character_error_rate(sample.text, PARAGRAPHS[0]) <= 0.01
    width, height = sample.images[0].width, sample.images[0].height
    for line in sample.meta["ocr"]["lines"]:
        assert all(-2 <= x <= width + 2 and -2 <= y <= height + 2 for x, y in line["box"])
    # The first line starts at the text box's corner (36 pt of 420 pt, in 512-pixel image units).
    first = sample.meta["ocr"]["lines"][0]["box"][0]
    assert abs(first[0] - 36 * 512 / 420) < 8 and abs(first[1] - 36 * 512 / 420) < 8
    assert sample.provenance["ocr_engine"] == "ppocr" and "rec" in sample.provenance["ocr_models"]


def test_modes_on_pages_with_and_without_a_text_layer():
    text_page = ocr_fixtures.text_layer_pdf(PARAGRAPHS[1:2])
    kept = render_first_page(text_page, PdfConfig(page_size=512))  # auto: the text layer stands
    assert kept.text_source == "pdf-text-layer" and "ocr" not in kept.meta
    always = render_first_page(text_page, PdfConfig(page_size=512, ocr=OcrConfig(mode="always", engine="tesseract")))
    assert always.text_source == "ocr:tesseract" and always.meta["ocr"]["engine"] == "tesseract"
    assert len(always.meta["ocr"]["lines"]) == 3 and always.scores["ocr_confidence"] > 0.8
    assert character_error_rate(always.text, kept.text) <= 0.01
    assert always.meta["text_blocks"] == kept.meta["text_blocks"]  # the layer's text is still there
    never = render_first_page(ocr_fixtures.image_only_pdf(), PdfConfig(page_size=512, ocr=OcrConfig(mode="never")))
    assert never.text == "" and never.text_source is None and never.meta["needs_ocr"] is True
