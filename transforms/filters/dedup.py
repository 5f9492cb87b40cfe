"""Deduplication as Beam transforms: exact (same image bytes) and near (perceptual hash, CLIP embedding).

Both transforms take samples (or staged records: io/blobs.py) and give ``{"samples": kept,
"rejects": RejectRecords}``; every input comes out exactly once, kept or as one reject row (stage
``dedup``). What they compare is one function's output, ``evidence``: computed from a sample's
pixels, or read from the ``extras`` of a record that the quality stages staged with it.

Keep rule: a sample is dropped when it has a duplicate partner with a smaller key, and its reject
names the smallest such partner. The rule looks at pairs only, so it needs no clustering and no
order: in a chain a ~ b ~ c (a < b < c) where a and c are not near each other, b and c are both
dropped and only a is kept. Samples that share a key (the sink's ``duplicate_key`` case) share one
decision. A sample without images is never a duplicate, and neither is an instruction sample (one
with a conversation): several questions about one picture are different samples, and the same
conversation with the same pictures already has one key.

Near duplicates are found without comparing all pairs (locality-sensitive hashing by bands): a
64-bit hash cut into d + 1 bands puts any two hashes within Hamming distance d in a common bucket
(pigeonhole: d differing bits spoil at most d bands); only the members of a bucket are compared.
CLIP embeddings get the same treatment through a sign-random-projection hash, confirmed by cosine.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from PIL import Image as PILImage

from vlcurate.transforms.data.images import open_image
from vlcurate.transforms.data.rejects import Reject, sample_reject
from vlcurate.transforms.data.sample import Sample
from vlcurate.transforms.runtime.stage import REJECTS

STAGE = "dedup"

# pHash: the grey image shrunk to 32x32 with a fixed filter, its 2-D DCT, the 8x8 lowest frequencies
# against their median (the DC term included): 64 bits, the first coefficient the highest bit.
HASH_SIZE = 32
LOW_FREQUENCIES = 8
HASH_BITS = LOW_FREQUENCIES**2
RESAMPLE = PILImage.Resampling.LANCZOS
# pHash shrinks the whole frame, so a crop rescales the content: a 4% crop per side moves it by up to
# 14 bits on the test pictures, as far as some distinct pictures are apart. Each image is therefore
# also hashed with these shares cut off each side, and a pair is compared as (one's whole image, the
# other's closest crop). Measured over 200 generated pictures, each copied 9 ways (JPEG q70, 0.5x,
# 1.5x, crops of 1-5% per side, 10% brighter) and stored as PNG or JPEG: every copy within 4 bits,
# but those of one flat grey picture, whose hash is noise (a flat image has no low frequencies).
CROP_SHARES = (0.0, 0.015, 0.03, 0.045, 0.06)

# Sign random projection: bit i says on which side of a fixed random hyperplane the embedding lies;
# two vectors at angle t differ in a bit with probability t/pi. 16 bands of 16 bits put a pair at
# cosine 0.95 in a common bucket with probability 0.96 (0.994 at 0.97, all but certain at 0.99). An
# unrelated pair (CLIP image embeddings sit at cosine 0.3-0.6) shares a given band with probability
# 0.0003-0.004, so a bucket holds up to a few thousandths of the run: past a million samples or so the
# hot-bucket guard below takes over. More bits per band would need more bands for the same recall.
EMBEDDING_BANDS = 16
EMBEDDING_BITS = 16 * EMBEDDING_BANDS

# Hot buckets (many flat or near-blank images, a placeholder picture repeated a million times) must
# not go quadratic: a bucket of more than MAX_GROUP entries is sorted by (hash, key) and each entry
# compared with its next NEIGHBOURS only, so its cost grows linearly. Repeats of one hash sit side by
# side and all go but the first, though a reject may then name a partner that is not the smallest;
# other pairs in it are found through another band, or missed. Counted as dedup/hot_groups and
# dedup/hot_group_entries.
MAX_GROUP = 2000
NEIGHBOURS = 100

DEFAULT_MAX_DISTANCE = 4
DEFAULT_MIN_COSINE = 0.95
DEFAULT_MAX_PIXELS = 40_000_000


def _dct_matrix(size: int) -> np.ndarray:
    """The orthonormal DCT-II matrix: ``matrix @ x`` is the DCT of x, ``m @ grid @ m.T`` the 2-D DCT."""
    k = np.arange(size)
    matrix = np.sqrt(2 / size) * np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * size))
    matrix[0] /= np.sqrt(2)
    return matrix


_DCT = _dct_matrix(HASH_SIZE)


def _bits_to_int(bits: np.ndarray) -> int:
    """Booleans, the first the most significant, as a Python int."""
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def phash(image: PILImage.Image) -> int:
    """The 64-bit DCT perceptual hash of an image (any mode); the same pixels always give the same hash."""
    grey = np.asarray(image.convert("L").resize((HASH_SIZE, HASH_SIZE), RESAMPLE), dtype=np.float64)
    low = (_DCT @ grey @ _DCT.T)[:LOW_FREQUENCIES, :LOW_FREQUENCIES].ravel()
    return _bits_to_int(low > np.median(low))


def crop_hashes(image: PILImage.Image) -> tuple[int, ...]:
    """pHash of the image with each of ``CROP_SHARES`` cut off every side (the first: the whole image)."""
    grey = image.convert("L")
    out = []
    for share in CROP_SHARES:
        dx, dy = round(grey.width * share), round(grey.height * share)
        out.append(phash(grey.crop((dx, dy, grey.width - dx, grey.height - dy))))
    return tuple(out)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def bands(value: int, count: int, bits: int = HASH_BITS) -> list[int]:
    """``value`` (``bits`` wide) cut into ``count`` bands, highest bits first; widths differ by one at most."""
    if not 1 <= count <= bits:
        raise ValueError(f"cannot cut {bits} bits into {count} bands")
    out, shift = [], bits
    for index in range(count):
        width = bits // count + (index < bits % count)
        shift -= width
        out.append((value >> shift) & ((1 << width) - 1))
    return out


def phash_distance(a: tuple[tuple[int, ...], ...], b: tuple[tuple[int, ...], ...]) -> int | None:
    """Distance between two samples' ``crop_hashes`` per image: for each image the closest pair of
    (one's whole image, the other's crop), the largest over the images; None when the image counts
    differ (such samples are never near copies)."""
    if len(a) != len(b):
        return None
    return max(
        min(min(hamming(x[0], other) for other in y) for x, y in ((first, second), (second, first)))
        for first, second in zip(a, b)
    )


@functools.lru_cache(maxsize=4)
def _projection(dimensions: int) -> np.ndarray:
    return np.random.RandomState(0).standard_normal((dimensions, EMBEDDING_BITS))


def embedding_hash(vector: np.ndarray) -> int:
    """The ``EMBEDDING_BITS``-bit sign-random-projection hash of an embedding (fixed seed)."""
    return _bits_to_int(np.asarray(vector, dtype=np.float64) @ _projection(len(vector)) > 0)


def _unit(embedding) -> np.ndarray | None:
    """The embedding scaled to length 1 (so that a dot product is the cosine), None if it has no direction."""
    vector = np.asarray(embedding, dtype=np.float64).ravel()
    norm = np.linalg.norm(vector)
    if not np.isfinite(norm) or norm == 0:
        return None
    return (vector / norm).astype(np.float32)  # float32: the vector travels in every band's bucket


def without_embedding(sample: Sample) -> tuple[Sample, None]:
    """The input pair of a sample that has no CLIP embedding: ``samples | beam.Map(without_embedding)``."""
    return sample, None


def evidence(sample: Sample, embedding=None, near: "NearDuplicates | None" = None) -> dict:
    """What deduplication compares of a sample, small enough to travel in its record: ``images``
    (the images' sha256s) for exact copies; with ``near``, ``crops`` (pHash of each image's crops,
    pictures only; None when an image does not decode) and ``embedding`` (the unit CLIP vector)."""
    if not comparable(sample):
        return {}
    found = {"images": "+".join(image.sha256 for image in sample.images)}
    if near is not None:
        if sample.category in near.phash_categories:
            try:
                found["crops"] = tuple(crop_hashes(open_image(image.data, near.max_pixels)[0])
                                       for image in sample.images)
            except Reject:
                Metrics.counter(STAGE, "undecodable").inc()
                found["crops"] = None
        vector = None if embedding is None else _unit(embedding)
        if vector is not None:
            found["embedding"] = vector
    return found


def _item(element):
    """The sample (or record) of a ``(sample, embedding)`` pair, or the element itself."""
    return element[0] if isinstance(element, tuple) else element


def _view(element, near: "NearDuplicates | None" = None) -> tuple[object, dict]:
    """(the sample or record, its evidence) of what a dedup transform was given: a staged record,
    a ``(sample, embedding)`` pair, or a sample."""
    from vlcurate.transforms.io.blobs import StagedSample

    if isinstance(element, StagedSample):
        return element, element.extras
    sample, embedding = element if isinstance(element, tuple) else (element, None)
    return sample, evidence(sample, embedding, near)


# --- exact duplicates --------------------------------------------------------------------------------


class ExactDuplicates(beam.PTransform):
    """Samples whose images are byte for byte the same (sha256 of each, in order): the smallest key is
    kept, the others become ``duplicate_exact`` rejects naming it."""

    def expand(self, samples):
        samples = samples | "Items" >> beam.Map(_item)
        drops = (
            samples
            | "Fingerprint" >> beam.FlatMap(_fingerprint)
            | "GroupImages" >> beam.GroupByKey()
            | "Repeats" >> beam.FlatMap(_exact_drops)
            | "First" >> beam.CombinePerKey(min)
        )
        return _settle(samples, drops, "duplicate_exact")


def comparable(sample: Sample) -> bool:
    """Whether the sample's images take part in deduplication (see the module's docstring)."""
    return bool(sample.images) and sample.conversation is None


def _fingerprint(element):
    item, found = _view(element)
    if "images" in found:
        yield found["images"], item.key


def _exact_drops(group):
    _, keys = group
    keys = set(keys)
    kept = min(keys)
    for key in sorted(keys - {kept}):
        yield key, _Drop(f"same image as {kept}")


# --- near duplicates ---------------------------------------------------------------------------------


# Categories whose samples are pictures, compared by perceptual hash. Document pages, web
# screenshots, charts and notebook plots share layouts across different content (two report pages
# hash alike), so they are compared by CLIP embedding only.
PHASH_CATEGORIES = frozenset({"caption", "scene_ocr", "interleaved"})


class _Hashed(NamedTuple):
    """A sample in a pHash bucket: ``hash`` is the crop whose band put it there; ``images`` has the
    ``crop_hashes`` of all its images, for the confirmation."""

    key: str
    hash: int
    images: tuple[tuple[int, ...], ...]


class _Embedded(NamedTuple):
    key: str
    hash: int
    vector: np.ndarray


class _Evidence(NamedTuple):
    """Why a pair is near: the measure as the detail words it, its value and the bound it met (the
    pHash distance and the most allowed, or the cosine and the least)."""

    text: str
    score: float
    threshold: float


class _Drop(NamedTuple):
    """What a dropped sample's reject row says: the detail, and the numbers where a measure decided."""

    detail: str
    score: float | None = None
    threshold: float | None = None


class NearDuplicates(beam.PTransform):
    """Near copies among ``(Sample, embedding or None)`` pairs; see the module doc for the keep rule.

    A pair of samples is a near copy when their images are within ``max_distance`` bits of pHash
    (``phash_distance``), or when both have embeddings (L2-normalised CLIP image embeddings, any
    dimension) at cosine ``embedding_min_cosine`` or more. The dropped sample becomes a
    ``duplicate_near`` reject: "near copy of KEY (phash distance N)" or "(cosine 0.973)", with the
    distance and ``max_distance`` (or the cosine and ``embedding_min_cosine``) as its score and
    threshold. Images are
    decoded with ``open_image`` under ``max_pixels``; a sample whose image does not decode is never
    a duplicate (kept, counted as dedup/undecodable). Plain samples: ``beam.Map(without_embedding)``.

    The default ``max_distance`` 4 holds every copy measured (see ``CROP_SHARES``) while distinct
    photo-like pictures are 14 bits or more apart. pHash sees the layout, not the words: text images
    of one layout (signs, pages, slides) with different words can hash alike, down to 0 bits (see
    tests/test_dedup.py), so only samples of ``phash_categories`` (pictures: captions, scene text)
    are compared by pHash; pages, screenshots, charts and plots only by their embeddings. A larger
    distance also costs time: d + 1 bands of 64 bits are narrower,
    so buckets grow (5 bands of 12-13 bits at 4; 9 of 7-8 bits at 8). ``max_group`` and
    ``neighbours`` guard hot buckets (see ``MAX_GROUP``).
    """

    def __init__(self, max_distance: int = DEFAULT_MAX_DISTANCE, embedding_min_cosine: float = DEFAULT_MIN_COSINE,
                 max_pixels: int = DEFAULT_MAX_PIXELS, max_group: int = MAX_GROUP, neighbours: int = NEIGHBOURS,
                 phash_categories=PHASH_CATEGORIES):
        super().__init__()
        if not 0 <= max_distance < HASH_BITS:
            raise ValueError(f"max_distance {max_distance} must be in 0..{HASH_BITS - 1}")
        if not -1 <= embedding_min_cosine <= 1:
            raise ValueError(f"embedding_min_cosine {embedding_min_cosine} must be in -1..1")
        if min(max_pixels, max_group, neighbours) < 1:
            raise ValueError("max_pixels, max_group and neighbours must be positive")
        self._max_distance = max_distance
        self._min_cosine = embedding_min_cosine
        self._max_pixels = max_pixels
        self._max_group = max_group
        self._neighbours = neighbours
        self._phash_categories = frozenset(phash_categories)

    @property
    def phash_categories(self) -> frozenset[str]:
        return self._phash_categories

    @property
    def max_pixels(self) -> int:
        return self._max_pixels

    def expand(self, pairs):
        samples = pairs | "Samples" >> beam.Map(_item)
        compare = _CompareBucket(self._max_distance, self._min_cosine, self._max_group, self._neighbours)
        drops = (
            pairs
            | "Hash" >> beam.ParDo(_BandEntries(self._max_distance + 1, self))
            | "GroupBands" >> beam.GroupByKey()
            | "Compare" >> beam.ParDo(compare)
            | "Smallest" >> beam.CombinePerKey(min)
            | "Describe" >> beam.MapTuple(lambda key, found: (key, _Drop(
                f"near copy of {found[0]} ({found[1].text})", found[1].score, found[1].threshold)))
        )
        return _settle(samples, drops, "duplicate_near")


class _BandEntries(beam.DoFn):
    """(bucket, entry) for every band of every crop hash of a sample's first image (categories of
    pictures only), and of its embedding."""

    def __init__(self, phash_bands: int, near: "NearDuplicates"):
        self._phash_bands = phash_bands
        self._near = near

    def process(self, element):
        item, found = _view(element, self._near)
        images = found.get("crops")
        if images:
            for value in sorted(set(images[0])):
                for index, band in enumerate(bands(value, self._phash_bands)):
                    yield ("phash", index, band), _Hashed(item.key, value, images)
        vector = found.get("embedding")
        if vector is not None:
            value = embedding_hash(vector)
            for index, band in enumerate(bands(value, EMBEDDING_BANDS, EMBEDDING_BITS)):
                yield ("embedding", index, band), _Embedded(item.key, value, vector)


class _CompareBucket(beam.DoFn):
    """(later key, (earlier key, evidence)) for the near pairs in one bucket, the smallest earlier key
    per later key. Entries are sorted by (hash, key, ...) so that the result never depends on the
    order the runner delivers them in."""

    def __init__(self, max_distance: int, min_cosine: float, max_group: int, neighbours: int):
        self._max_distance = max_distance
        self._min_cosine = min_cosine
        self._max_group = max_group
        self._neighbours = neighbours

    def process(self, bucket):
        (kind, _, _), entries = bucket
        if kind == "phash":
            entries = sorted(entries, key=lambda e: (e.hash, e.key, e.images))
            values = np.array([e.hash for e in entries], dtype=np.uint64)
            close = self._close_hashes
            confirm = self._confirm_phash
        else:
            entries = sorted(entries, key=lambda e: (e.hash, e.key, e.vector.tobytes()))
            values = np.stack([e.vector for e in entries]).astype(np.float64)
            close = self._close_vectors
            confirm = self._confirm_embedding
        window = len(entries) - 1
        if len(entries) > self._max_group:
            window = min(window, self._neighbours)
            Metrics.counter(STAGE, "hot_groups").inc()
            Metrics.counter(STAGE, "hot_group_entries").inc(len(entries))
        found: dict[str, tuple[str, str]] = {}
        for offset in range(1, window + 1):
            for i in np.flatnonzero(close(values[:-offset], values[offset:])):
                first, second = entries[i], entries[i + offset]
                evidence = None if first.key == second.key else confirm(first, second)
                if evidence is not None:
                    earlier, later = sorted((first.key, second.key))
                    found[later] = min(found.get(later, (earlier, evidence)), (earlier, evidence))
        yield from found.items()

    def _close_hashes(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.bitwise_count(a ^ b) <= self._max_distance

    def _close_vectors(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", a, b) >= self._min_cosine

    def _confirm_phash(self, a: _Hashed, b: _Hashed) -> _Evidence | None:
        distance = phash_distance(a.images, b.images)
        if distance is None or distance > self._max_distance:
            return None
        return _Evidence(f"phash distance {distance}", float(distance), float(self._max_distance))

    def _confirm_embedding(self, a: _Embedded, b: _Embedded) -> _Evidence | None:
        cosine = float(np.dot(a.vector.astype(np.float64), b.vector.astype(np.float64)))
        if cosine < self._min_cosine:
            return None
        return _Evidence(f"cosine {cosine:.3f}", round(cosine, 6), float(self._min_cosine))


# --- both --------------------------------------------------------------------------------------------


def _settle(samples, drops, reason: str) -> dict:
    """Samples whose key has a drop (key, _Drop) become ``reason`` rejects; the others pass unchanged."""
    keyed = samples | "ByKey" >> beam.Map(lambda sample: (sample.key, sample))
    settled = (
        {"sample": keyed, "drop": drops}
        | "Join" >> beam.CoGroupByKey()
        | "Settle" >> beam.ParDo(_Settle(reason)).with_outputs(REJECTS, main="samples")
    )
    return {"samples": settled.samples, "rejects": settled[REJECTS]}


class _Settle(beam.DoFn):
    def __init__(self, reason: str):
        self._reason = reason

    def process(self, joined):
        _, grouped = joined
        drops = list(grouped["drop"])
        for sample in grouped["sample"]:
            if not drops:
                yield sample
                continue
            Metrics.counter(STAGE, self._reason).inc()
            drop = drops[0]
            yield beam.pvalue.TaggedOutput(REJECTS, sample_reject(
                sample, STAGE, self._reason, drop.detail, drop.score, drop.threshold))
