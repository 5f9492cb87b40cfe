"""Deduplication: pHash and its bands, how far copies and distinct images are apart (measured on
generated pictures), and ExactDuplicates / NearDuplicates on Beam's FnApiRunner: which sample is
kept, what the reject rows say, embeddings, undecodable images, hot buckets, determinism."""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
import random

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from PIL import Image as PILImage

from fixtures import dedup as fixtures
from vlcurate.pipelines import cli
from vlcurate.transforms.filters.dedup import (
    DEFAULT_MAX_DISTANCE, DEFAULT_MAX_PIXELS, DEFAULT_MIN_COSINE, STAGE, ExactDuplicates, NearDuplicates, bands, crop_hashes, hamming,
    phash, phash_distance, without_embedding,
)
from vlcurate.transforms.data.images import open_image
from vlcurate.transforms.data.rejects import RejectRecord
from vlcurate.transforms.data.sample import Image, Sample, encode_image, make_key
from fixtures import EXAMPLES


def sample(key: str, *images: Image) -> Sample:
    return Sample(key=key, source="ocr", category="scene_ocr", uri=f"file:///in/{key}", locator="",
                  images=images, text="a sign")


def png(pil) -> Image:
    return encode_image(pil, "png")


def jpeg(pil, quality: int = 95) -> Image:
    return encode_image(pil, "jpeg", quality)


def key_after(floor: str, *identity) -> str:
    """The first ``make_key("ocr", *identity, n)`` that sorts after ``floor``: a copy keyed so gets
    its original kept, which makes the expected rows exact."""
    return next(key for n in itertools.count() if (key := make_key("ocr", *identity, n)) > floor)


def signature(item: Sample) -> tuple:
    return tuple(crop_hashes(open_image(image.data, DEFAULT_MAX_PIXELS)[0]) for image in item.images)


def near(item: Sample, kept: Sample, evidence: str, score, threshold: float) -> RejectRecord:
    """The row of a near copy: the evidence in words, and as numbers (distance or cosine, and its bound)."""
    return RejectRecord(stage="dedup", reason="duplicate_near", uri=item.uri, locator="",
                        detail=f"near copy of {kept.key} ({evidence})", key=item.key, score=score, threshold=threshold)


def reasons_are(expected: list[str]):
    """A matcher for assert_that: the reject rows' reasons, in order."""
    def check(rows):
        assert [row.reason for row in rows] == expected, rows
    return check


def run(transform, elements, kept, rejects) -> dict[str, int]:
    """``transform`` over ``elements`` on FnApiRunner; ``kept`` matches the kept keys, ``rejects`` the
    reject rows. Returns the dedup counters."""
    pipeline = TestPipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    out = pipeline | beam.Create(elements) | transform
    assert_that(out["samples"] | beam.Map(lambda item: item.key), kept, label="Kept")
    assert_that(out["rejects"], rejects, label="Rejects")
    result = pipeline.run()
    result.wait_until_finish()
    counters = collections.Counter()
    for counter in result.metrics().query(MetricsFilter().with_namespace(STAGE))["counters"]:
        counters[counter.key.metric.name] += counter.committed
    return dict(counters)


# --- the hash ----------------------------------------------------------------------------------------


def test_phash_is_a_64_bit_int_that_depends_on_the_pixels_only():
    picture = fixtures.scene(0)
    value = phash(picture)
    assert 0 <= value < 2**64 and value.bit_count() == 32  # the median splits 64 distinct coefficients
    assert phash(picture.copy()) == value == phash(picture.convert("L")) == phash(picture.convert("RGBA"))
    assert phash(fixtures.scene(1)) != value
    assert hamming(0b1011, 0b0110) == 3 and hamming(value, value) == 0


def test_bands_cut_the_bits_highest_first():
    assert bands(0x0123456789ABCDEF, 4) == [0x0123, 0x4567, 0x89AB, 0xCDEF]
    assert bands(2**64 - 1, 5) == [2**13 - 1] * 4 + [2**12 - 1]
    assert bands(2**256 - 1, 16, bits=256) == [2**16 - 1] * 16
    for count in (0, 65):
        with pytest.raises(ValueError):
            bands(1, count)


@pytest.mark.parametrize("distance", [0, 1, 4, 8])
def test_two_hashes_within_distance_d_share_one_of_d_plus_1_bands(distance):
    rng = random.Random(distance)
    for _ in range(300):
        value = rng.getrandbits(64)
        other = value
        for bit in rng.sample(range(64), distance):
            other ^= 1 << bit
        assert any(a == b for a, b in zip(bands(value, distance + 1), bands(other, distance + 1)))


def test_copies_are_within_the_default_distance_and_distinct_pictures_far_apart():
    originals = fixtures.originals()
    hashes = {name: (crop_hashes(picture),) for name, picture in originals.items()}
    measured = {
        kind: max(phash_distance(hashes[name], (crop_hashes(copy(picture)),)) for name, picture in originals.items())
        for kind, copy in fixtures.COPIES.items()
    }
    assert max(measured.values()) <= DEFAULT_MAX_DISTANCE, measured
    closest = min(phash_distance(hashes[a], hashes[b]) for a, b in itertools.combinations(hashes, 2))
    assert closest > 12


def test_plain_phash_misses_crops_that_the_crop_hashes_catch():
    originals = fixtures.originals().values()
    plain = max(hamming(phash(picture), phash(fixtures.cropped(picture, 0.04))) for picture in originals)
    assert plain > 2 * DEFAULT_MAX_DISTANCE
    for kind in ("jpeg-q70", "half-size", "one-and-a-half-size", "brighter-10%"):
        copy = fixtures.COPIES[kind]
        assert max(hamming(phash(picture), phash(copy(picture))) for picture in originals) <= DEFAULT_MAX_DISTANCE


def test_phash_sees_the_layout_not_the_words():
    """A known limit, why pHash alone should not judge pages or slides: two one-line signs of about
    the same width hash alike, however different their words."""
    park, sale = fixtures.sign(("Park road",)), fixtures.sign(("Sale today",))
    assert phash_distance((crop_hashes(park),), (crop_hashes(sale),)) <= DEFAULT_MAX_DISTANCE


@pytest.mark.e2e
def test_pages_of_one_layout_are_compared_by_embedding_only():
    """Why phash_categories: the two signs above, as document pages, are not near copies by pHash;
    as scene text they are."""
    park, sale = png(fixtures.sign(("Park road",))), png(fixtures.sign(("Sale today",)))
    pages = [dataclasses.replace(sample(make_key("pdf", name), image), source="pdf", category="document_ocr")
             for name, image in (("park", park), ("sale", sale))]
    run(beam.Map(without_embedding) | NearDuplicates(), pages, equal_to([p.key for p in pages]), equal_to([]))
    signs = sorted([sample(make_key("ocr", "park"), park), sample(make_key("ocr", "sale"), sale)], key=lambda s: s.key)
    run(beam.Map(without_embedding) | NearDuplicates(), signs, equal_to([signs[0].key]), reasons_are(["duplicate_near"]))


def test_samples_with_different_image_counts_are_never_near():
    hashes = crop_hashes(fixtures.scene(0))
    assert phash_distance((hashes,), (hashes, hashes)) is None
    assert phash_distance((hashes, hashes), (hashes, hashes)) == 0


# --- exact duplicates --------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("order", ["as made", "reversed"])
def test_exact_duplicates_keep_the_smallest_key(order):
    first, second = png(fixtures.scene(0)), png(fixtures.scene(1))
    same = [sample(make_key("ocr", "same", n), first) for n in range(3)]
    pairs = [sample(make_key("ocr", "pair", n), first, second) for n in range(2)]
    swapped = sample(make_key("ocr", "swapped"), second, first)  # the same images in another order
    other = sample(make_key("ocr", "other"), second)
    reencoded = sample(make_key("ocr", "jpeg"), encode_image(fixtures.scene(0), "jpeg", 70))  # near, not exact
    texts = [Sample(key=make_key("text", n), source="text", category="text_only", uri="file:///in/t.txt",
                    locator=f"line={n}", text="the same text") for n in range(2)]
    elements = [*same, *pairs, swapped, other, reencoded, *texts]
    if order == "reversed":
        elements.reverse()

    kept_same = min(same, key=lambda item: item.key)
    kept_pair = min(pairs, key=lambda item: item.key)
    expected = [
        RejectRecord(stage="dedup", reason="duplicate_exact", uri=item.uri, locator="",
                     detail=f"same image as {kept.key}", key=item.key)
        for group, kept in ((same, kept_same), (pairs, kept_pair)) for item in group if item is not kept
    ]
    kept = [kept_same.key, kept_pair.key, swapped.key, other.key, reencoded.key, *(text.key for text in texts)]
    counters = run(ExactDuplicates(), elements, equal_to(kept), equal_to(expected))
    assert counters == {"duplicate_exact": 3}


# --- near duplicates ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def copies():
    """Each original picture and every kind of copy of it as samples, stored as JPEG; a copy's key
    sorts after its original's. Returns (samples, original keys, expected reject rows)."""
    items, originals, rejects = [], [], []
    for name, picture in fixtures.originals().items():
        original = sample(make_key("ocr", name), jpeg(picture))
        items.append(original)
        originals.append(original.key)
        for kind, copy in fixtures.COPIES.items():
            image = jpeg(picture, 70) if kind == "jpeg-q70" else jpeg(copy(picture))
            item = sample(key_after(original.key, name, kind), image)
            items.append(item)
            distance = phash_distance(signature(item), signature(original))
            rejects.append(near(item, original, f"phash distance {distance}", distance, DEFAULT_MAX_DISTANCE))
    return items, originals, rejects


@pytest.mark.e2e
@pytest.mark.parametrize("order", ["as made", "shuffled"])
def test_near_duplicates_drop_every_copy_and_keep_every_distinct_picture(copies, order):
    items, originals, rejects = copies
    items = list(items)
    if order == "shuffled":
        random.Random(7).shuffle(items)
    counters = run(beam.Map(without_embedding) | NearDuplicates(), items, equal_to(originals), equal_to(rejects))
    assert counters == {"duplicate_near": len(rejects)}


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def embeddings_at(cosine: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors of 512 dimensions (a CLIP ViT-B size) at the given cosine."""
    rng = np.random.RandomState(seed)
    first, noise = unit(rng.standard_normal(512)), rng.standard_normal(512)
    across = unit(noise - (noise @ first) * first)
    return first, cosine * first + np.sqrt(1 - cosine**2) * across


@pytest.mark.e2e
def test_embeddings_join_pairs_that_phash_keeps_apart():
    pictures = [fixtures.scene(seed) for seed in (20, 21, 22, 23, 24)]
    close, close_too = (sample(make_key("ocr", "close", n), png(pictures[n])) for n in range(2))
    far, far_too = (sample(make_key("ocr", "far", n), png(pictures[2 + n])) for n in range(2))
    plain = sample(make_key("ocr", "plain"), png(pictures[4]))
    brighter = sample(make_key("ocr", "brighter"), png(fixtures.brightened(pictures[4])))
    everything = [close, close_too, far, far_too, plain, brighter]
    for a, b in itertools.combinations(everything[:5], 2):
        assert phash_distance(signature(a), signature(b)) > DEFAULT_MAX_DISTANCE

    e_close, e_close_too = embeddings_at(0.99, seed=1)
    e_far, e_far_too = embeddings_at(0.5, seed=2)
    elements = [
        (close, list(e_close)), (close_too, e_close_too), (far, e_far), (far_too, e_far_too),
        (plain, embeddings_at(0.99, seed=3)[0]), (brighter, None),  # only one side has an embedding: pHash decides
    ]
    earlier, later = sorted([close, close_too], key=lambda item: item.key)
    kept_copy, dropped_copy = sorted([plain, brighter], key=lambda item: item.key)
    distance = phash_distance(signature(plain), signature(brighter))
    expected = [near(later, earlier, "cosine 0.990", pytest.approx(0.99, abs=1e-6), DEFAULT_MIN_COSINE),
                near(dropped_copy, kept_copy, f"phash distance {distance}", distance, DEFAULT_MAX_DISTANCE)]
    kept = [earlier.key, far.key, far_too.key, kept_copy.key]
    run(NearDuplicates(), elements, equal_to(kept), equal_to(expected))


@pytest.mark.e2e
def test_a_sample_whose_image_does_not_decode_is_kept():
    picture = fixtures.scene(3)  # 240x180: over the 30,000 pixels allowed below
    broken = Image(b"not an image at all", "png", 10, 10)
    truncated = Image(png(picture).data[:300], "png", 320, 240)
    elements = [
        sample(make_key("ocr", "broken", n), broken) for n in range(2)
    ] + [
        sample(make_key("ocr", "truncated"), truncated),
        sample(make_key("ocr", "large"), png(picture)),
        sample(make_key("ocr", "small"), png(fixtures.resized(picture, 0.5))),
        Sample(key=make_key("text", 0), source="text", category="text_only", uri="file:///t.txt", locator="",
               text="no image"),
    ]
    counters = run(beam.Map(without_embedding) | NearDuplicates(max_pixels=30_000), elements,
                   equal_to([item.key for item in elements]), equal_to([]))
    assert counters == {"undecodable": 4}


@pytest.mark.e2e
def test_a_hot_bucket_is_compared_with_neighbours_only():
    image = png(fixtures.scene(4, size=(64, 48)))
    items = [sample(make_key("ocr", "placeholder", n), image) for n in range(40)]
    first = min(item.key for item in items)
    elements = [without_embedding(item) for item in items]

    def partners(smallest_only: bool):
        def check(rows):
            named = {row.detail.split()[3] for row in rows}
            assert len(rows) == 39 and (named == {first}) == smallest_only, named
        return check

    counters = run(NearDuplicates(), elements, equal_to([first]), partners(smallest_only=True))
    assert "hot_groups" not in counters
    # Over max_group each entry meets its next 5 neighbours only: the repeats still all go but the
    # first, though most name a partner within reach instead of the smallest key.
    counters = run(NearDuplicates(max_group=20, neighbours=5), elements, equal_to([first]),
                   partners(smallest_only=False))
    assert counters["hot_groups"] > 0 and counters["hot_group_entries"] >= 40 * counters["hot_groups"]


@pytest.mark.parametrize("arguments", [
    {"max_distance": -1}, {"max_distance": 64}, {"embedding_min_cosine": 1.5}, {"max_pixels": 0}, {"max_group": 0},
    {"neighbours": 0},
])
def test_near_duplicates_refuse_bad_settings(arguments):
    with pytest.raises(ValueError):
        NearDuplicates(**arguments)


@pytest.mark.e2e
def test_a_command_with_dedup_drops_the_resized_and_reencoded_copies(tmp_path):
    examples = EXAMPLES / "images"
    folder = tmp_path / "in"
    folder.mkdir()
    for path in examples.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    shop = PILImage.open(examples / "shop-sign.jpg")
    shop.resize((shop.width // 2, shop.height // 2)).save(folder / "z-shop-small.png")
    PILImage.open(examples / "notice.jpg").save(folder / "z-notice-again.jpg", quality=70)
    assert cli.main(["ocr", "--input", str(folder), "--output", str(tmp_path / "out"), "--dedup", "exact,near"]) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["totals"] == {"inputs": 6, "samples": 4, "rejected": 0, "filtered": 2, "balanced": True}
    assert manifest["rejects"]["by_reason"] == {"duplicate_near": 2}
    assert manifest["config"]["quality"]["dedup"] == ["exact", "near"]
