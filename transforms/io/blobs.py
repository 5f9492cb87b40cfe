"""A sample as a staged blob, and the record that travels for it.

A blob is the sample's tar members exactly as a shard holds them (each a header block and its
padded data), so a shard is its samples' blobs in key order and two zero blocks: the writer copies
bytes and never re-encodes. ``StagedSample`` is what Beam carries in the blob's place; the index
row is made from the sample when its shard is written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import tarfile

from vlcurate.transforms.data.review import REVIEW_LABEL, REVIEW_STATUS, REVIEWED_STATUS
from vlcurate.transforms.data.sample import Sample, sample_from_members, split_member_name

TAR_BLOCK = 512


def tar_header(name: str, size: int) -> bytes:
    """A USTAR header with fixed fields: the same member always gets the same 512 bytes."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def tar_members(members) -> bytes:
    """``(name, data)`` pairs as tar members, block-exact (no end blocks)."""
    out = bytearray()
    for name, data in members:
        out += tar_header(name, len(data))
        out += data
        out += bytes(-len(data) % TAR_BLOCK)
    return bytes(out)


def decode(blob: bytes) -> Sample:
    """The sample a staged blob holds; the blob's sha256 was checked against its record (``load``),
    so its images are not hashed again."""
    return sample_from_members(members_of(blob), check_images=False)


def members_of(blob: bytes) -> dict[str, bytes]:
    """A staged blob's members by suffix ("png", "json", ...); the blob's hash was checked first.

    The headers are ``tar_header``'s own USTAR headers, so only their name, prefix and octal size
    fields are read (``TarInfo.frombuf`` parses and checks every field: a fifth of the CPU of
    writing a shard)."""
    members, offset = {}, 0
    while offset < len(blob):
        header = blob[offset:offset + TAR_BLOCK]
        name = _field(header, 0, 100)
        prefix = _field(header, 345, 500)
        size = int(_field(header, 124, 136).strip() or "0", 8)
        start = offset + TAR_BLOCK
        members[split_member_name(f"{prefix}/{name}" if prefix else name)[1]] = blob[start:start + size]
        offset = start + math.ceil(size / TAR_BLOCK) * TAR_BLOCK
    return members


def _field(header: bytes, start: int, end: int) -> str:
    """A NUL-terminated text field of a tar header."""
    return header[start:end].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


@dataclasses.dataclass(frozen=True, slots=True)
class StagedSample:
    """What crosses Beam's shuffles for one sample: its identity, what the filters, the shard plan
    and the manifest need, and where its bytes are; nothing of the pixels. It is kept lean (a local
    run holds one per sample at its shuffles): the index row is made when the shard is written."""

    key: str
    uri: str
    blob: str  # the staged members' path
    sha256: str  # of the blob: a staged file that changed or went missing is caught at write time
    size: int  # bytes in a tar: the blob's length
    category: str
    locator: str
    text_source: str | None = None
    scored: tuple[tuple[str, float], ...] = ()  # the sample's scores, sorted
    label: str | None = None  # the taxonomy leaf, REVIEW_LABEL when unsure, None: not labelled
    source: str | None = None  # the recipe source it came from, for the reject rows that name it
    extras: dict = dataclasses.field(default_factory=dict)  # what dedup compares (hashes, an embedding)
    offset: int = -1  # where the blob starts in its file, a pack (-1: the blob is the whole file)

    # The metadata a filter reads, named as on a Sample: filters judge records and samples alike.
    @property
    def scores(self) -> dict:
        return dict(self.scored)

    @property
    def provenance(self) -> dict:
        return {"recipe_source": self.source} if self.source else {}


def encode(sample: Sample, extras: dict | None = None) -> tuple[StagedSample, bytes]:
    """The sample's record (its blob not yet placed) and the bytes it takes in a shard."""
    blob = tar_members(sample.members())
    record = StagedSample(sample.key, sample.uri, "", hashlib.sha256(blob).hexdigest(), len(blob), sample.category,
                          sample.locator, sample.text_source,
                          tuple(sorted((name, float(value)) for name, value in sample.scores.items())),
                          label_of(sample), sample.provenance.get("recipe_source"), dict(extras or {}))
    return record, blob


def index_row(sample: Sample, size: int) -> dict:
    """The sample's row in the index parquet."""
    first = sample.images[0] if sample.images else None
    taxonomy = sample.taxonomy or {}
    language = sample.meta.get("language")  # {"id", "confidence"} once the labelling stage ran
    return {
        "key": sample.key,
        "source": sample.source,
        "category": sample.category,
        "uri": sample.uri,
        "locator": sample.locator,
        "image_count": len(sample.images),
        "image_width": first.width if first else None,
        "image_height": first.height if first else None,
        "image_bytes": sum(len(image.data) for image in sample.images),
        "text_chars": len(sample.text or ""),
        "text_source": sample.text_source,
        "scores": sorted((name, float(value)) for name, value in sample.scores.items()),
        "taxonomy_id": taxonomy.get("id"),
        "taxonomy_confidence": taxonomy.get("confidence"),
        "language": language.get("id") if isinstance(language, dict) else None,
        # The rule of the manifest's label counts: a leaf id is labelled, no id is review.
        "taxonomy_status": "unlabelled" if sample.taxonomy is None else REVIEWED_STATUS
        if taxonomy.get("status") == REVIEWED_STATUS else "labelled" if taxonomy.get("id") else REVIEW_STATUS,
        "sample_bytes": size,
    }


def label_of(sample: Sample) -> str | None:
    return None if sample.taxonomy is None else (sample.taxonomy.get("id") or REVIEW_LABEL)
