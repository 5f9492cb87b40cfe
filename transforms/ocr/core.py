"""OCR: the text in an image, read by PaddleOCR's PP-OCR models or by Tesseract, behind one interface.

``ppocr`` runs PP-OCR's detection, direction and recognition models as ONNX through the rapidocr
3.x wheel, which ships them; ``tesseract`` runs the Tesseract that tesserocr bundles with Debian's
trained data. Both give ``OcrLine``s (text, a 4-point box in image pixels, a confidence in 0..1)
in reading order. The engines run in isolated children (transforms/runtime/isolation.py): ``ocr_image_uri``
is what the `vlcurate ocr` stage sends there, and the PDF and web children call ``read_text`` on
the page they already hold. This module does not import Beam, so that a child starts quickly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import statistics
from typing import Any

from PIL import Image as PILImage

from vlcurate import __version__
from vlcurate.transforms.runtime import native_threads
from vlcurate.transforms.io.files import read_capped
from vlcurate.transforms.data.images import open_image, reencoded, rgb
from vlcurate.transforms.ocr.config import ImageTask, OcrConfig, engine_models, ppocr_model_paths
from vlcurate.transforms.ocr.markdown import ocr_markdown
from vlcurate.transforms.data.rejects import Reject
from vlcurate.transforms.data.sample import Sample, make_key


@dataclasses.dataclass(frozen=True)
class OcrLine:
    text: str
    box: tuple[tuple[float, float], ...]  # 4 corners, clockwise from the top left, image pixels
    confidence: float  # 0..1

    def describe(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "box": [[round(x, 1), round(y, 1)] for x, y in self.box],
            "confidence": round(self.confidence, 4),
        }

    @property
    def top(self) -> float:
        return min(y for _, y in self.box)

    @property
    def bottom(self) -> float:
        return max(y for _, y in self.box)

    @property
    def left(self) -> float:
        return min(x for x, _ in self.box)

    @property
    def right(self) -> float:
        return max(x for x, _ in self.box)


    def scaled(self, factor: float) -> "OcrLine":
        return OcrLine(self.text, tuple((x * factor, y * factor) for x, y in self.box), self.confidence)


@dataclasses.dataclass(frozen=True)
class OcrResult:
    engine: str
    rows: tuple[tuple[OcrLine, ...], ...]  # in reading order; lines side by side share a row

    @property
    def lines(self) -> tuple[OcrLine, ...]:
        return tuple(line for row in self.rows for line in row)

    @property
    def text(self) -> str:
        """Lines of a row joined by a space, rows by a newline."""
        return "\n".join(" ".join(line.text for line in row) for row in self.rows)

    @property
    def confidence(self) -> float:
        """Mean line confidence weighted by characters (0 when nothing was read)."""
        chars = sum(len(line.text) for line in self.lines)
        if not chars:
            return 0.0
        return sum(line.confidence * len(line.text) for line in self.lines) / chars

    def describe(self) -> dict[str, Any]:
        """The sample's json ``ocr`` object."""
        return {
            "engine": self.engine,
            "lines": [line.describe() for line in self.lines],
            "confidence": round(self.confidence, 4),
            "empty": not self.lines,
        }

    def scaled(self, factor: float) -> "OcrResult":
        return OcrResult(self.engine, tuple(tuple(line.scaled(factor) for line in row) for row in self.rows))


def rows(lines) -> list[list[OcrLine]]:
    """Group lines into rows, top to bottom, each left to right.

    A line joins a row when its vertical middle falls within the row's first line, so two text
    boxes side by side on one baseline read as one row, while the next line down starts a new one.
    """
    out: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda item: (item.top, item.left)):
        if out and _same_row(out[-1][0], line):
            out[-1].append(line)
        else:
            out.append([line])
    return [sorted(row, key=lambda item: item.left) for row in out]


def _same_row(first: OcrLine, line: OcrLine) -> bool:
    return first.top <= (line.top + line.bottom) / 2 <= first.bottom


def reading_order(lines: list[OcrLine], directions: list[int]) -> list[list[OcrLine]]:
    """Lines in reading order when the text may run in any of four directions (a page scanned
    sideways or upside down) and be skewed: the direction most characters run in is turned to
    left-to-right, the median skew of the lines taken out, and the lines ordered in rows in that
    frame. The lines keep their image coordinates."""
    if not lines:
        return []
    weight = [0] * 4
    for line, direction in zip(lines, directions):
        weight[direction] += len(line.text)
    quarter = max(range(4), key=lambda k: (weight[k], -k))
    turned = [_turn(line, quarter) for line in lines]
    skew = _skew(turned)
    turned = [_rotate(line, -skew) for line in turned]
    index = {id(line): i for i, line in enumerate(turned)}
    unit = statistics.median(line.bottom - line.top for line in turned)
    return [[lines[index[id(line)]] for line in row] for row in _xy_cut(turned, unit)]


def _xy_cut(lines: list[OcrLine], unit: float) -> list[list[OcrLine]]:
    """Rows in reading order, blocks and columns first (recursive XY-cut).

    The widest empty band across all the lines, vertical (a column gutter) or horizontal (a break
    between paragraphs or blocks), splits them in two, each read in turn; a band narrower than a
    line's height (the space between lines or words) does not. A vertical band cuts only between
    columns of prose, whose lines are at least ``_COLUMN_WIDTH`` times as wide as the band: the
    cells of a table are read row by row, as its text layer and most readers have them. What
    cannot be cut is rows.
    """
    if len(lines) < 2:
        return rows(lines)
    for gap, axis, at in sorted(_bands(lines), reverse=True):
        if gap < unit:
            break
        first, second = _split(lines, axis, at)
        if axis == "x" and min(_median_width(first), _median_width(second)) < _COLUMN_WIDTH * gap:
            continue
        return _xy_cut(first, unit) + _xy_cut(second, unit)
    return rows(lines)


def _bands(lines: list[OcrLine]) -> list[tuple[float, str, float]]:
    """(width, axis, middle) of the widest empty band across the lines, along x and along y."""
    across = _widest_gap([(line.left, line.right) for line in lines])
    down = _widest_gap([(line.top, line.bottom) for line in lines])
    return [(across[0], "x", across[1]), (down[0], "y", down[1])]


def _split(lines: list[OcrLine], axis: str, at: float) -> tuple[list[OcrLine], list[OcrLine]]:
    if axis == "x":
        middle = [(line.left + line.right) / 2 for line in lines]
    else:
        middle = [(line.top + line.bottom) / 2 for line in lines]
    return ([line for line, m in zip(lines, middle) if m < at], [line for line, m in zip(lines, middle) if m >= at])


def _median_width(lines: list[OcrLine]) -> float:
    return statistics.median(line.right - line.left for line in lines)


def _widest_gap(spans) -> tuple[float, float]:
    """(width, middle) of the widest stretch that no span covers, between the first and last."""
    widest, at = 0.0, 0.0
    ordered = sorted(spans)
    reach = ordered[0][1]
    for start, end in ordered[1:]:
        if start - reach > widest:
            widest, at = start - reach, (start + reach) / 2
        reach = max(reach, end)
    return widest, at


def _skew(lines: list[OcrLine]) -> float:
    """The median angle (radians) of the long axes of clearly elongated lines, near horizontal."""
    import math

    angles = []
    for line in lines:
        (x0, y0), (x1, y1), _, (x3, y3) = line.box
        along, across = (x1 - x0, y1 - y0), (x3 - x0, y3 - y0)
        if math.hypot(*along) < math.hypot(*across):
            along, across = across, along
        if math.hypot(*along) >= 2 * math.hypot(*across):
            angle = (math.atan2(along[1], along[0]) + math.pi / 2) % math.pi - math.pi / 2  # an axis has no sign
            if abs(angle) < math.pi / 4:
                angles.append(angle)
    return statistics.median(angles) if angles else 0.0


def _rotate(line: OcrLine, angle: float) -> OcrLine:
    import math

    cos, sin = math.cos(angle), math.sin(angle)
    return OcrLine(line.text, tuple((x * cos - y * sin, x * sin + y * cos) for x, y in line.box), line.confidence)


def _turn(line: OcrLine, quarters: int) -> OcrLine:
    """The line's box turned ``quarters`` quarter turns counter-clockwise (image y points down)."""
    corners = line.box
    for _ in range(quarters):
        corners = tuple((y, -x) for x, y in corners)
    return OcrLine(line.text, corners, line.confidence)


# --- engines --------------------------------------------------------------------------------------


def _limit_threads(threads: int) -> None:
    """Native libraries use every core unless told; the OCR children share the cores instead.

    OpenMP (Tesseract builds with it) reads its limit once, at load; OpenCV takes setNumThreads;
    onnxruntime its session options (set by the engine, and capped by native_threads in children).
    """
    native_threads.limit(threads)
    import cv2

    cv2.setNumThreads(threads)


# A first reading scoring below this is tried upside down as well (upright print scores about
# 0.99; text read the wrong way up 0.6 to 0.75).
_RETRY_BELOW = 0.9
# Lines shorter than this (characters) follow the page's orientation rather than their own reading.
_SHORT_LINE = 4
# A vertical empty band is a column gutter when the lines beside it are this many times as wide.
_COLUMN_WIDTH = 4


class PpOcrEngine:
    name = "ppocr"

    def __init__(self, config: OcrConfig):
        _limit_threads(config.threads)
        from rapidocr import RapidOCR

        paths = ppocr_model_paths()
        # Explicit model paths: rapidocr never looks for (or downloads) anything else.
        self._ocr = RapidOCR(params={
            "Global.log_level": "error",
            "Det.model_path": paths["det"],
            "Cls.model_path": paths["cls"],
            "Rec.model_path": paths["rec"],
            "EngineConfig.onnxruntime.intra_op_num_threads": config.threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        })
        # rapidocr's own cut: lines recognised with a lower score are noise.
        self._min_score = float(self._ocr.cfg.Global.text_score)
        self._cls_threshold = float(self._ocr.cfg.Cls.cls_thresh)

    def read(self, image: PILImage.Image) -> list[list[OcrLine]]:
        """Rows of lines in reading order: detection, direction and recognition, with the
        direction model's call checked.

        PP-OCR's direction model is unreliable on Latin print: on upright English lines it calls
        many upside down (scores up to 1.0) and on upside-down ones many upright. So each line is
        read as detected, and read turned over too when the direction model says "upside down"
        with at least its own threshold or when the first reading scores below ``_RETRY_BELOW``;
        the reading with the higher recognition score wins. Short lines follow the longer ones.
        """
        import numpy as np
        from rapidocr.main import RapidOCRError
        from rapidocr.utils.process_img import map_boxes_to_original

        ocr = self._ocr
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        height, width = bgr.shape[:2]
        resized, record = ocr.preprocess_img(bgr)
        try:
            crops, detected = ocr.detect_and_crop(resized, record)
        except RapidOCRError:  # rapidocr's way of saying no text was found
            return []
        directions = ocr._load_cls_model()(crops).cls_res
        recognised = ocr.recognize_txt(crops)
        upright = [(text, float(score)) for text, score in zip(recognised.txts, recognised.scores)]
        retry = [
            i for i, ((label, confidence), (_, score)) in enumerate(zip(directions, upright))
            if (label == "180" and confidence >= self._cls_threshold) or score < _RETRY_BELOW
        ]
        turned_over = self._recognise_turned(crops, retry)
        turned = [i in turned_over and turned_over[i][1] > upright[i][1] for i in range(len(crops))]
        # A line of a few characters reads well both ways ("3" upside down is "ε"): it follows
        # the orientation of the longer lines instead.
        votes = [0, 0]
        for i, (text, _) in enumerate(upright):
            if len(text.strip()) >= _SHORT_LINE:
                votes[turned[i]] += len((turned_over[i] if turned[i] else upright[i])[0])
        page_turned = votes[1] > votes[0]
        short = [i for i, (text, _) in enumerate(upright) if len(text.strip()) < _SHORT_LINE]
        if page_turned:
            turned_over.update(self._recognise_turned(crops, [i for i in short if i not in turned_over]))
        for i in short:
            turned[i] = page_turned
        texts, scores = [], []
        for i, flag in enumerate(turned):
            text, score = turned_over[i] if flag else upright[i]
            texts.append(text)
            scores.append(score)
        boxes = map_boxes_to_original(detected.boxes, record, height, width)
        lines, directions = [], []
        for box, text, score, flipped in zip(boxes, texts, scores, turned):
            text = clean_ocr_text(text)
            if text and score >= self._min_score:
                corners = tuple((float(x), float(y)) for x, y in box)
                lines.append(OcrLine(text, corners, score))
                directions.append(_reading_direction(corners, flipped))
        return reading_order(lines, directions)

    def _recognise_turned(self, crops, indexes) -> dict[int, tuple[str, float]]:
        """Readings of the crops at ``indexes`` turned upside down."""
        import numpy as np

        if not indexes:
            return {}
        found = self._ocr.recognize_txt([np.rot90(crops[i], 2) for i in indexes])
        return {i: (text, float(score)) for i, text, score in zip(indexes, found.txts, found.scores)}


def _reading_direction(corners, turned: bool) -> int:
    """Which way a line's text runs in the image, in quarter turns clockwise from left-to-right.

    rapidocr crops a line from corner 0 towards corner 1, and turns a crop at least 1.5 times
    taller than wide a quarter counter-clockwise, so that its text runs from corner 0 to corner 3.
    """
    import math

    (x0, y0), (x1, y1), _, (x3, y3) = corners
    tall = math.dist((x0, y0), (x3, y3)) >= 1.5 * math.dist((x0, y0), (x1, y1))
    dx, dy = (x3 - x0, y3 - y0) if tall else (x1 - x0, y1 - y0)
    if turned:
        dx, dy = -dx, -dy
    return round(math.degrees(math.atan2(dy, dx)) / 90) % 4


class TesseractEngine:
    name = "tesseract"

    def __init__(self, config: OcrConfig):
        _limit_threads(config.threads)
        import tesserocr

        self._tesserocr = tesserocr
        # The folder must end with a separator: Tesseract appends the file name to it as is.
        path = os.path.join(config.tessdata_dir, "")
        # AUTO_OSD: layout analysis with orientation detection (osd.traineddata), so a page
        # scanned sideways or upside down reads upright.
        self._api = tesserocr.PyTessBaseAPI(path=path, lang=config.tesseract_lang, psm=tesserocr.PSM.AUTO_OSD)

    def read(self, image: PILImage.Image) -> list[list[OcrLine]]:
        """Rows of lines in reading order: Tesseract's own, unless a line crosses a column gutter.

        Tesseract's layout analysis reads skewed and turned pages well, but runs its text lines
        across a narrow gutter (measured: two columns 25 pt apart read as one, CER 0.56). So its
        lines are cut where two words stand further apart than the line is high, and when any
        line was cut, the pieces are ordered by the same reading order as PP-OCR's lines.
        """
        tesserocr = self._tesserocr
        word_level, line_level = tesserocr.RIL.WORD, tesserocr.RIL.TEXTLINE
        self._api.SetImage(image)
        self._api.Recognize()
        lines: list[list[OcrLine]] = []  # Tesseract's lines, as their words
        directions: list[int] = []
        iterator = self._api.GetIterator()
        for item in tesserocr.iterate_level(iterator, word_level) if iterator is not None else ():
            try:
                text = clean_ocr_text(item.GetUTF8Text(word_level) or "")
            except RuntimeError:  # tesserocr's way of saying the word is empty
                continue
            box = item.BoundingBox(word_level)
            if not text or box is None:
                continue
            word = OcrLine(text, _corners(*box), max(0.0, min(1.0, item.Confidence(word_level) / 100.0)))
            if not lines or item.IsAtBeginningOf(line_level):
                lines.append([])
                # The block's orientation: 0 upright, then quarter turns of its text clockwise
                # in the image, as reading_order counts them (checked in the tests).
                directions.append(int(item.Orientation()[0]) % 4)
            lines[-1].append(word)
        self._api.Clear()
        pieces, piece_directions = [], []
        for words, direction in zip(lines, directions):
            for piece in _cut_at_gutters(words, direction):
                pieces.append(_join(piece))
                piece_directions.append(direction)
        if len(pieces) == len(lines):
            return [[line] for line in pieces]
        return reading_order(pieces, piece_directions)


def _cut_at_gutters(words: list[OcrLine], direction: int) -> list[list[OcrLine]]:
    """A line's words, cut where the gap to the next word is wider than the line is high."""
    upright = [_turn(word, direction) for word in words]
    height = max(word.bottom for word in upright) - min(word.top for word in upright)
    pieces = [[words[0]]]
    for previous, word, original in zip(upright, upright[1:], words[1:]):
        if word.left - previous.right > height:
            pieces.append([])
        pieces[-1].append(original)
    return pieces


def _corners(x0, y0, x1, y1) -> tuple[tuple[float, float], ...]:
    return ((float(x0), float(y0)), (float(x1), float(y0)), (float(x1), float(y1)), (float(x0), float(y1)))


def _join(words: list[OcrLine]) -> OcrLine:
    """The words of one row as a line: their text, their union box, their mean confidence."""
    xs = [x for word in words for x, _ in word.box]
    ys = [y for word in words for _, y in word.box]
    chars = sum(len(word.text) for word in words)
    confidence = sum(word.confidence * len(word.text) for word in words) / chars
    return OcrLine(" ".join(word.text for word in words), _corners(min(xs), min(ys), max(xs), max(ys)), confidence)


_ENGINES = {"ppocr": PpOcrEngine, "tesseract": TesseractEngine}
_LOADED: dict[tuple, Any] = {}


def engine(config: OcrConfig):
    """This process's engine for ``config``, loaded once (model loading takes about a second)."""
    key = (config.engine, config.threads, config.tesseract_lang, config.tessdata_dir)
    if key not in _LOADED:
        _LOADED[key] = _ENGINES[config.engine](config)
    return _LOADED[key]


def clean_ocr_text(text: str) -> str:
    """One line of recognised text: whitespace runs as single spaces, no control characters."""
    text = "".join(char if char.isprintable() else " " for char in text)
    return " ".join(text.split())


def read_text(image: PILImage.Image, config: OcrConfig) -> OcrResult:
    """OCR of an RGB image with the configured engine."""
    return OcrResult(config.engine, tuple(tuple(row) for row in engine(config).read(image)))


def ocr_image_uri(task: ImageTask, config: OcrConfig) -> Sample:
    """Read one image file and OCR it into a scene_ocr sample (what the `vlcurate ocr` child runs)."""
    if task.size_in_bytes > config.max_file_bytes:
        raise Reject("file_too_large", f"{task.size_in_bytes} bytes, cap {config.max_file_bytes}")
    data = read_capped(task.uri, config.max_file_bytes)
    file_sha256 = hashlib.sha256(data).hexdigest()
    image, source_format = open_image(data, config.max_image_pixels)
    result = read_text(image, config)
    if not result.lines and not config.keep_empty:
        raise Reject("ocr_empty", f"{config.engine} found no text")
    encoded = reencoded(image, source_format)
    text, text_source, scores, meta = ocr_fields(result, config)
    return Sample(
        key=make_key("ocr", file_sha256),
        source="ocr",
        category="scene_ocr",
        uri=task.uri,
        locator="",
        images=(encoded,),
        text=text,
        markdown=ocr_markdown(result.rows),
        text_source=text_source,
        scores=scores,
        provenance={"vlcurate": __version__, **ocr_provenance(config)},
        meta={**meta, "file": {"sha256": file_sha256, "format": source_format, "bytes": len(data)}},
    )


def with_ocr(sample: Sample, config: OcrConfig, image: PILImage.Image | None = None, scale: float = 1.0,
             markdown: bool = False) -> Sample:
    """``sample`` with OCR text as its txt (``text_source`` ``ocr:<engine>``), the lines in its
    json ``ocr`` and ``scores.ocr_confidence`` (and with ``markdown``, the OCR text as its md).
    ``image`` defaults to the sample's first image (our own encoding, trusted); ``scale`` maps the
    OCR image's pixels onto that image's pixels."""
    if image is None:
        image = rgb(PILImage.open(io.BytesIO(sample.images[0].data), formats=("PNG", "JPEG")))
    result = read_text(image, config)
    if scale != 1.0:
        result = result.scaled(scale)
    text, text_source, scores, meta = ocr_fields(result, config)
    return dataclasses.replace(
        sample,
        text=text,
        markdown=ocr_markdown(result.rows) if markdown else sample.markdown,
        text_source=text_source,
        scores={**sample.scores, **scores},
        provenance={**sample.provenance, **ocr_provenance(config)},
        meta={**sample.meta, **meta},
    )


def ocr_fields(result: OcrResult, config: OcrConfig) -> tuple[str, str, dict, dict]:
    """(txt, text_source, scores, json fields) of a sample whose text is this OCR result."""
    return (
        result.text,
        f"ocr:{config.engine}",
        {"ocr_confidence": round(result.confidence, 4)},
        {"ocr": result.describe()},
    )


def ocr_provenance(config: OcrConfig) -> dict[str, Any]:
    """Which engine and model files (by sha256) read the text."""
    return {"ocr_engine": config.engine, "ocr_models": engine_models(config)}
