"""A document's blocks in reading order -> interleaved samples: images judged, sections packed.

Every reader (web.py, epub.py, pdf.py) gives a ``Document``: text blocks (headings marked) and
image blocks in reading order. ``interleave`` then does what is the same for all of them:

- each image goes through the one decoder (transforms/data/images.py) and the filters in the
  spirit of OBELICS (tiny: icons, bullets, spacers; decorative: rules and banners, by aspect
  ratio); a dropped image is one reject row (stage ``interleaved_image``);
- the blocks are cut into sections at headings (``split_level``) and chapter starts, and the
  sections packed, in order, into parts under the token and image budget (a section over the
  budget is cut at block boundaries, a block over it at whitespace);
- each part becomes one sample: its images ``KEY.0.png``, ``KEY.1.png``, ... and a text with
  ``<image_placeholder>`` at each image's place, DeepSeek-VL's interleaved form; a part without
  images, or with too little text per image, is a filtered row instead.
"""

from __future__ import annotations

import dataclasses
import re

from vlcurate import __version__
from vlcurate.transforms.data.images import open_image, reencoded
from vlcurate.transforms.data.rejects import Reject, RejectRecord
from vlcurate.transforms.data.sample import Image, Sample, make_key
from vlcurate.transforms.sources.interleaved.config import InterleavedConfig

PLACEHOLDER = "<image_placeholder>"
CHARS_PER_TOKEN = 4  # the budget's estimate: about four characters a token for English BPE tokenizers
IMAGE_STAGE = "interleaved_image"
_SPACE = re.compile(r"\s+")
_MAX_REF_CHARS = 500


@dataclasses.dataclass(frozen=True)
class TextBlock:
    text: str
    heading: int = 0  # 1-6 for a heading, 0 for body text


@dataclasses.dataclass(frozen=True)
class ImageBlock:
    data: bytes | None  # None: the image could not be had (``problem`` says why)
    src: str
    alt: str = ""
    problem: tuple[str, str] | None = None


@dataclasses.dataclass(frozen=True)
class Boundary:
    """A chapter start (an EPUB spine item): a section starts here whatever the headings say."""


@dataclasses.dataclass(frozen=True)
class Document:
    uri: str
    format: str  # html, epub or pdf
    identity: tuple[str, ...]  # what makes it unique: a content sha256, or a URL
    blocks: tuple
    title: str = ""
    text_source: str = "html"
    provenance: tuple[tuple[str, str], ...] = ()  # the reader's libraries and versions


def text_block(text: str, heading: int = 0, keep_lines: bool = False) -> TextBlock | None:
    """A text block with its whitespace collapsed (line breaks kept for preformatted text), or None
    when nothing is left. A placeholder the document itself spells out is defused, so that the
    placeholders of a sample are exactly its images."""
    text = text.replace(PLACEHOLDER, "<image placeholder>").replace("\x00", "")
    if keep_lines:
        text = "\n".join(line.rstrip() for line in text.strip("\n").splitlines())
    else:
        text = _SPACE.sub(" ", text).strip()
    return TextBlock(text, heading) if text.strip() else None


@dataclasses.dataclass(frozen=True)
class _Picture:
    image: Image
    src: str
    alt: str


def interleave(document: Document, config: InterleavedConfig) -> list:
    """The document's samples and reject rows (dropped images, filtered parts), in order."""
    rejects, blocks, number = [], [], 0
    for block in document.blocks:
        if not isinstance(block, ImageBlock):
            blocks.append(block)
            continue
        number += 1
        try:
            blocks.append(_Picture(_picture(block, config), block.src[:_MAX_REF_CHARS], block.alt[:_MAX_REF_CHARS]))
        except Reject as reject:
            rejects.append(RejectRecord(stage=IMAGE_STAGE, reason=reject.reason, uri=document.uri,
                                        locator=f"image={number}", detail=f"{block.src[:_MAX_REF_CHARS]}: "
                                                                          f"{reject.detail}"[:2000]))
    if not any(isinstance(block, (TextBlock, _Picture)) for block in blocks):
        raise Reject("interleaved_no_content", "no text and no usable image in reading order")
    parts = pack(sections(blocks, config.split_level), config)
    out = []
    for index, part in enumerate(parts):
        out.append(_part_sample(document, part, index, len(parts), config))
    return out + rejects


def _picture(block: ImageBlock, config: InterleavedConfig) -> Image:
    """The image as the sample stores it, or a Reject naming why it was dropped."""
    if block.problem:
        raise Reject(*block.problem)
    image, source_format = open_image(block.data, config.max_image_pixels)
    width, height = image.size
    if min(width, height) < config.min_image_side:
        raise Reject("image_tiny", f"{width}x{height}, least side {config.min_image_side}")
    if max(width, height) / min(width, height) > config.max_image_aspect:
        raise Reject("image_decorative", f"{width}x{height}, aspect over {config.max_image_aspect:g}")
    if max(width, height) > config.max_image_side:
        from PIL import Image as PILImage

        image.thumbnail((config.max_image_side, config.max_image_side), PILImage.Resampling.LANCZOS)
    return reencoded(image, source_format)


def sections(blocks: list, split_level: int) -> list[list]:
    """Blocks cut before each heading of ``split_level`` or higher and at each chapter start."""
    out: list[list] = [[]]
    for block in blocks:
        starts = isinstance(block, Boundary) or (isinstance(block, TextBlock) and 0 < block.heading <= split_level)
        if starts and out[-1]:
            out.append([])
        if not isinstance(block, Boundary):
            out[-1].append(block)
    return [section for section in out if section]


def _cost(block) -> tuple[int, int]:
    if isinstance(block, TextBlock):
        return -(-len(block.text) // CHARS_PER_TOKEN), 0
    return 0, 1


def _pieces(section: list, config: InterleavedConfig) -> list[list]:
    """A section in pieces within the budget: cut at block boundaries, and a block too long for
    any sample at whitespace."""
    limit = config.max_tokens * CHARS_PER_TOKEN
    blocks = []
    for block in section:
        if isinstance(block, TextBlock) and len(block.text) > limit:
            text = block.text
            while len(text) > limit:
                cut = text.rfind(" ", 0, limit)
                cut = cut if cut > 0 else limit
                blocks.append(TextBlock(text[:cut].strip(), block.heading))
                text = text[cut:].strip()
            if text:
                blocks.append(TextBlock(text, block.heading))
        else:
            blocks.append(block)
    return pack([[block] for block in blocks], config)


def pack(groups: list[list], config: InterleavedConfig) -> list[list]:
    """Groups of blocks packed, in order, into parts of at most ``max_tokens`` and ``max_images``;
    a group over the budget is first cut into pieces (``_pieces``)."""
    parts, current, tokens, images = [], [], 0, 0
    for group in groups:
        costs = [_cost(block) for block in group]
        group_tokens, group_images = sum(c[0] for c in costs), sum(c[1] for c in costs)
        if len(group) > 1 and (group_tokens > config.max_tokens or group_images > config.max_images):
            pieces = _pieces(group, config)
        else:
            pieces = [group]
        for piece in pieces:
            piece_tokens = sum(_cost(block)[0] for block in piece)
            piece_images = sum(_cost(block)[1] for block in piece)
            if current and (tokens + piece_tokens > config.max_tokens or images + piece_images > config.max_images):
                parts.append(current)
                current, tokens, images = [], 0, 0
            current = current + piece
            tokens, images = tokens + piece_tokens, images + piece_images
    if current:
        parts.append(current)
    return parts


def _part_sample(document: Document, part: list, index: int, count: int, config: InterleavedConfig):
    pictures = [block for block in part if isinstance(block, _Picture)]
    text = "\n\n".join(PLACEHOLDER if isinstance(block, _Picture) else block.text for block in part)
    locator = f"part={index + 1}"
    key = make_key("interleaved", document.format, *document.identity, locator)
    words = len(text) - len(PLACEHOLDER) * len(pictures)
    if not pictures:
        return RejectRecord(stage="interleaved_part", reason="interleaved_no_images", uri=document.uri,
                            locator=locator, key=key, detail=f"{words} characters of text and no image")
    if words / len(pictures) < config.min_chars_per_image:
        return RejectRecord(stage="interleaved_part", reason="interleaved_too_little_text", uri=document.uri,
                            locator=locator, key=key,
                            detail=f"{words} characters for {len(pictures)} images, at least "
                                   f"{config.min_chars_per_image} each wanted")
    headings = [block.text[:200] for block in part if isinstance(block, TextBlock) and block.heading]
    return Sample(
        key=key,
        source="interleaved",
        category="interleaved",
        uri=document.uri,
        locator=locator,
        images=tuple(picture.image for picture in pictures),
        text=text,
        text_source=document.text_source,
        provenance={"vlcurate": __version__, **dict(document.provenance)},
        meta={
            "document": {"format": document.format, "title": document.title[:500], "part": index + 1,
                         "parts": count, "headings": headings[:50]},
            "image_refs": [{"src": picture.src, "alt": picture.alt} for picture in pictures],
        },
    )
