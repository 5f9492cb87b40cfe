"""The Sample record and its WebDataset encoding: the contract every stage writes.

One sample is one training example. In a shard all of its members share a key:
``KEY.png``/``KEY.jpg`` (or ``KEY.0.png``, ``KEY.1.png``, ... for several images), ``KEY.txt``,
``KEY.md`` (a page as markdown), ``KEY.html`` and ``KEY.json`` (everything else, UTF-8, sorted
keys). docs/dataset-format.md describes every field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
from collections.abc import Mapping
from typing import Any

SCHEMA = "vlcurate.sample/1"
SOURCES = frozenset({"pdf", "web", "chart", "notebook", "ocr", "caption", "sft", "text", "interleaved"})
CATEGORIES = frozenset(
    {"interleaved", "caption", "table_chart", "web_code", "scene_ocr", "document_ocr", "text_only"}
)
# Image format -> tar member extension. JPEG is written as .jpg, as WebDataset decoders expect.
IMAGE_EXTENSIONS = {"png": "png", "jpeg": "jpg"}

# At most 80 characters: a member name (key, dot, suffix) must fit a USTAR header's 100.
_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
_SOURCE_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
KEY_HASH_DIGITS = 24

# Fields that KEY.json carries for every sample; stage metadata may not reuse these names.
_CORE_FIELDS = (
    "schema", "key", "source", "category", "uri", "locator", "image", "images",
    "text_source", "scores", "taxonomy", "conversation", "provenance",
)


def make_key(source: str, *identity: object) -> str:
    """The sample key: the source name and 24 hex digits of sha256 over its identity.

    ``identity`` is what makes the sample unique within the source (a content hash or URI, and a
    locator such as the page number). Parts are joined with a separator byte that cannot occur in
    them, so ("a", "bc") and ("ab", "c") give different keys.
    """
    if not _SOURCE_RE.match(source):
        raise ValueError(f"source {source!r} must be lowercase [a-z0-9-]")
    parts = [source, *(str(part) for part in identity)]
    if any("\x1f" in part for part in parts):
        raise ValueError("identity parts may not contain the unit separator")
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return f"{source}-{digest[:KEY_HASH_DIGITS]}"


@dataclasses.dataclass(frozen=True)
class Image:
    """One encoded image of a sample: the bytes that go into the shard, and their facts."""

    data: bytes
    format: str
    width: int
    height: int

    def __post_init__(self):
        if self.format not in IMAGE_EXTENSIONS:
            raise ValueError(f"image format {self.format!r} not in {sorted(IMAGE_EXTENSIONS)}")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size {self.width}x{self.height} must be positive")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def extension(self) -> str:
        return IMAGE_EXTENSIONS[self.format]

    def describe(self) -> dict[str, Any]:
        return {"width": self.width, "height": self.height, "sha256": self.sha256, "format": self.format}


def encode_image(pil_image, image_format: str, jpeg_quality: int = 90) -> Image:
    """Encode a PIL image with fixed settings, so the same pixels always give the same bytes.

    No metadata (EXIF, ICC, timestamps) is written; PNG uses a fixed zlib level and no optimiser
    search, JPEG a fixed quality and 4:2:0 subsampling, baseline (not progressive).
    """
    buffer = io.BytesIO()
    if image_format == "png":
        if pil_image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"):
            pil_image = pil_image.convert("RGB")
        # icc_profile=None: Pillow would otherwise copy the source file's profile over.
        pil_image.save(buffer, format="PNG", compress_level=6, optimize=False, icc_profile=None)
    elif image_format == "jpeg":
        if pil_image.mode not in ("L", "RGB"):
            pil_image = pil_image.convert("RGB")
        pil_image.save(
            buffer, format="JPEG", quality=jpeg_quality, subsampling=2, optimize=False, progressive=False,
            icc_profile=None, comment=None, exif=b"",
        )
    else:
        raise ValueError(f"image format {image_format!r} not in {sorted(IMAGE_EXTENSIONS)}")
    return Image(buffer.getvalue(), image_format, pil_image.width, pil_image.height)


@dataclasses.dataclass(frozen=True)
class Sample:
    """One training example, as every stage produces it and the shard sink writes it.

    ``meta`` holds the stage's own fields (text blocks, page facts, ...); they are written at the
    top level of KEY.json beside the core fields and may not reuse a core field's name.
    """

    key: str
    source: str
    category: str
    uri: str
    locator: str
    images: tuple[Image, ...] = ()
    text: str | None = None
    html: str | None = None
    markdown: str | None = None  # a document page's structure: headings, lists, tables, code
    text_source: str | None = None
    scores: Mapping[str, float] = dataclasses.field(default_factory=dict)
    taxonomy: Mapping[str, Any] | None = None
    conversation: list[dict[str, Any]] | None = None
    provenance: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not _KEY_RE.match(self.key):
            raise ValueError(f"key {self.key!r} must be lowercase [a-z0-9-], no dots, at most 80 characters")
        if self.source not in SOURCES:
            raise ValueError(f"source {self.source!r} not in {sorted(SOURCES)}")
        if self.category not in CATEGORIES:
            raise ValueError(f"category {self.category!r} not in {sorted(CATEGORIES)}")
        clash = sorted(set(self.meta) & set(_CORE_FIELDS))
        if clash:
            raise ValueError(f"meta fields {clash} clash with core sample fields")
        object.__setattr__(self, "images", tuple(self.images))

    def to_json(self) -> dict[str, Any]:
        """The KEY.json document (before serialisation)."""
        doc: dict[str, Any] = dict(self.meta)
        doc.update(
            schema=SCHEMA,
            key=self.key,
            source=self.source,
            category=self.category,
            uri=self.uri,
            locator=self.locator,
            text_source=self.text_source,
            scores=dict(self.scores),
            provenance=dict(self.provenance),
        )
        if len(self.images) == 1:
            doc["image"] = self.images[0].describe()
        elif self.images:
            doc["images"] = [image.describe() for image in self.images]
        if self.taxonomy is not None:
            doc["taxonomy"] = dict(self.taxonomy)
        if self.conversation is not None:
            doc["conversation"] = self.conversation
        return doc

    def image_names(self) -> list[str]:
        """The tar member names of the images, in order: ``KEY.png``, or ``KEY.0.png``, ``KEY.1.jpg`` ..."""
        if len(self.images) == 1:
            return [f"{self.key}.{self.images[0].extension}"]
        return [f"{self.key}.{i}.{image.extension}" for i, image in enumerate(self.images)]

    def members(self) -> list[tuple[str, bytes]]:
        """The tar members of this sample, as (name, bytes), in name order."""
        out = [(name, image.data) for name, image in zip(self.image_names(), self.images)]
        if self.text is not None:
            out.append((f"{self.key}.txt", self.text.encode("utf-8")))
        if self.html is not None:
            out.append((f"{self.key}.html", self.html.encode("utf-8")))
        if self.markdown is not None:
            out.append((f"{self.key}.md", self.markdown.encode("utf-8")))
        out.append((f"{self.key}.json", dumps_json(self.to_json())))
        return sorted(out)


def dumps_json(doc: Mapping[str, Any]) -> bytes:
    """Canonical JSON: sorted keys, UTF-8, no NaN (which is not JSON), compact separators."""
    return json.dumps(doc, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode(
        "utf-8"
    )


def sample_from_members(members: Mapping[str, bytes], check_images: bool = True) -> Sample:
    """Decode one sample from its members, keyed by suffix ("png", "0.png", "txt", "json", ...).

    This is the shape webdataset's reader yields (without its ``__key__``/``__url__`` entries) and
    what grouping a tar's members by key gives. ``check_images=False`` skips comparing each image
    with the sha256 its JSON names, for bytes already checked as a whole (a staged blob).
    """
    if "json" not in members:
        raise ValueError("sample has no json member")
    doc = json.loads(members["json"].decode("utf-8"))
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"unknown sample schema {doc.get('schema')!r}")
    described = [doc["image"]] if "image" in doc else doc.get("images", [])
    images = []
    for i, facts in enumerate(described):
        ext = IMAGE_EXTENSIONS[facts["format"]]
        name = ext if "image" in doc else f"{i}.{ext}"
        data = members[name]
        if check_images and hashlib.sha256(data).hexdigest() != facts["sha256"]:
            raise ValueError(f"image member {name} does not match its sha256")
        images.append(Image(data, facts["format"], facts["width"], facts["height"]))
    text = members.get("txt")
    html = members.get("html")
    markdown = members.get("md")
    return Sample(
        key=doc["key"],
        source=doc["source"],
        category=doc["category"],
        uri=doc["uri"],
        locator=doc["locator"],
        images=tuple(images),
        text=None if text is None else text.decode("utf-8"),
        html=None if html is None else html.decode("utf-8"),
        markdown=None if markdown is None else markdown.decode("utf-8"),
        text_source=doc.get("text_source"),
        scores=doc.get("scores", {}),
        taxonomy=doc.get("taxonomy"),
        conversation=doc.get("conversation"),
        provenance=doc.get("provenance", {}),
        meta={name: value for name, value in doc.items() if name not in _CORE_FIELDS},
    )


def split_member_name(name: str) -> tuple[str, str]:
    """'KEY.0.png' -> ('KEY', '0.png'): WebDataset splits a member name at its first dot."""
    key, dot, suffix = name.partition(".")
    if not dot or not key:
        raise ValueError(f"member name {name!r} has no key.suffix form")
    return key, suffix
