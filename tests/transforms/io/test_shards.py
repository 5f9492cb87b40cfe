"""The deterministic WebDataset sink: sizes, tar headers, cutting, dedupe, buckets, and WriteDataset
end to end in a real Beam pipeline (FnApiRunner). The reader's refusals: test_shard_reader.py."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import random
import tarfile
from collections import Counter, defaultdict

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from PIL import Image as PILImage

from vlcurate.transforms.data.rejects import RejectRecord
from vlcurate.transforms.data.sample import Sample, encode_image, make_key, split_member_name
from vlcurate.transforms.io.shards import (
    TAR_BLOCK,
    ShardConfig,
    WriteDataset,
    bucket_count,
    bucket_of,
    cut_into_shards,
    dedupe,
    write_tar,
)
from vlcurate.transforms.io.blobs import StagedSample, encode, index_row, tar_members
from vlcurate.transforms.io.shard_reader import read_shard
from vlcurate.transforms.io.tables import reject_records


# --- fixtures ---------------------------------------------------------------------------------


def page_image(n: int, size=(8, 6)):
    image = PILImage.new("RGB", size, ((n * 37) % 256, (n * 91) % 256, (n * 13) % 256))
    image.putpixel((n % size[0], 0), (255, 255, 255))
    return encode_image(image, "png")


def page_sample(n: int, *, doc: str | None = None, page: int | None = None, uri: str | None = None,
                category: str = "document_ocr", text_repeat: int = 1, images: int = 1) -> Sample:
    doc = doc or f"doc{n}"
    page = n if page is None else page
    return Sample(
        key=make_key("pdf", hashlib.sha256(doc.encode()).hexdigest(), page),
        source="pdf",
        category=category,
        uri=uri or f"file:///in/{doc}.pdf",
        locator=f"page={page}",
        images=tuple(page_image(n + i, size=(8 + n % 5, 6 + n % 3)) for i in range(images)),
        text=f"text of {doc} page {page}. " * text_repeat,
        text_source="pdf-text-layer",
        scores={"ocr_confidence": (n % 10) / 10},
        provenance={"pipeline": "test"},
    )


@dataclasses.dataclass(frozen=True)
class Encoded:
    """A sample's record with its bytes at hand: what the pure functions read (key, uri, size,
    ...) is the record's, and ``tar_bytes`` writes ``data`` as the writer copies a staged blob."""

    record: StagedSample
    data: bytes

    def __getattr__(self, name):
        return getattr(self.record, name)


def encode_sample(sample: Sample) -> Encoded:
    return Encoded(*encode(sample))


def fake(key: str, size: int, uri: str = "u") -> Encoded:
    """An encoded sample of an exact tar size (one member), for the pure cutting functions."""
    data_bytes = size - TAR_BLOCK
    assert data_bytes >= 0 and data_bytes % TAR_BLOCK == 0
    data = tar_members(((f"{key}.txt", b"x" * data_bytes),))
    record = StagedSample(key, uri, "", hashlib.sha256(data).hexdigest(), len(data), "text_only", "")
    return Encoded(record, data)


def tar_bytes(samples) -> bytes:
    buffer = io.BytesIO()
    write_tar(buffer, [sample.data for sample in samples])
    return buffer.getvalue()


def layout(data: bytes) -> dict[str, tuple[int, int]]:
    """key -> (first header offset, end of its last member's padded data), from tarfile offsets."""
    extents: dict[str, list[int]] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for info in tar.getmembers():
            key, _ = split_member_name(info.name)
            end = info.offset_data + math.ceil(info.size / TAR_BLOCK) * TAR_BLOCK
            if key in extents:
                assert extents[key][1] == info.offset  # a sample's members are contiguous
                extents[key][1] = end
            else:
                extents[key] = [info.offset, end]
    return {key: (start, end) for key, (start, end) in extents.items()}


def sha256_file(path) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


# --- encode_sample and write_tar ----------------------------------------------------------------


def test_encode_sample_size_is_what_the_tar_takes():
    samples = [
        page_sample(1),
        page_sample(2, images=3, text_repeat=40),
        Sample(key=make_key("text", "empty"), source="text", category="text_only", uri="u", locator="", text=""),
        Sample(key=make_key("text", "block"), source="text", category="text_only", uri="u", locator="",
               text="y" * 1024),  # data exactly two blocks: no padding
    ]
    for sample in samples:
        encoded = encode_sample(sample)
        assert index_row(sample, encoded.size)["sample_bytes"] == encoded.size == len(encoded.data)
        data = tar_bytes([encoded])
        assert layout(data) == {sample.key: (0, encoded.size)}
        # what follows is only the end-of-archive marker and padding: zero bytes, at least two blocks
        assert len(data) >= encoded.size + 2 * TAR_BLOCK
        assert data[encoded.size:] == bytes(len(data) - encoded.size)

    encoded = [encode_sample(s) for s in samples]
    extents = layout(tar_bytes(encoded))
    assert [end - start for start, end in extents.values()] == [e.size for e in encoded]


def test_encode_sample_index_row():
    sample = page_sample(3, images=2, text_repeat=2, category="table_chart")
    row = index_row(sample, encode_sample(sample).size)
    assert row["key"] == sample.key and row["category"] == "table_chart" and row["source"] == "pdf"
    assert (row["image_count"], row["image_width"], row["image_height"]) == (2, 11, 6)
    assert row["image_bytes"] == sum(len(image.data) for image in sample.images)
    assert row["text_chars"] == len(sample.text)
    assert row["scores"] == [("ocr_confidence", 0.3)]


def test_write_tar_fixed_headers_and_bytes():
    samples = [page_sample(n, images=1 + n % 2) for n in range(4)]
    data = tar_bytes([encode_sample(s) for s in samples])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        infos = tar.getmembers()
    assert len(infos) == sum(len(s.members()) for s in samples)
    for info in infos:
        assert info.isreg() and info.type == tarfile.REGTYPE
        assert info.mtime == 0
        assert (info.uid, info.gid) == (0, 0)
        assert (info.uname, info.gname) == ("", "")
        assert info.mode == 0o644
        assert info.linkname == ""
        assert data[info.offset + 257:info.offset + 265] == b"ustar\x0000"  # USTAR, not GNU/PAX
        assert "/" not in info.name
    # the same samples, rebuilt from scratch, give the same bytes
    again = tar_bytes([encode_sample(page_sample(n, images=1 + n % 2)) for n in range(4)])
    assert hashlib.sha256(again).hexdigest() == hashlib.sha256(data).hexdigest()


def test_write_tar_keeps_given_order(tmp_path):
    samples = [page_sample(n) for n in range(5)]
    order = [samples[i] for i in (3, 0, 4, 1, 2)]
    data = tar_bytes([encode_sample(s) for s in order])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
    expected = [name for s in order for name, _ in s.members()]
    assert names == expected
    path = tmp_path / "ordered.tar"
    path.write_bytes(data)
    assert list(read_shard(str(path))) == order


# --- ShardConfig ------------------------------------------------------------------------------


def test_shard_config_validation_and_names():
    assert ShardConfig(output="o", prefix="t").shard_name(12) == "t-000012"
    for bad in (dict(max_samples_per_shard=0), dict(max_shard_bytes=2047), dict(prefix=""), dict(prefix="a/b"),
                dict(prefix="a.b")):
        with pytest.raises(ValueError):
            ShardConfig(output="o", **bad)


# --- cut_into_shards --------------------------------------------------------------------------


def test_cut_respects_max_samples_and_order():
    samples = [fake(f"k{i:02d}", 1024) for i in range(10)]
    shards = cut_into_shards(samples, ShardConfig(output="o", max_samples_per_shard=3))
    assert [len(shard) for shard in shards] == [3, 3, 3, 1]
    assert [s for shard in shards for s in shard] == samples


def test_cut_respects_max_shard_bytes_greedily():
    rng = random.Random(7)
    samples = [fake(f"k{i:03d}", TAR_BLOCK * rng.randint(1, 12)) for i in range(200)]
    cap = 8 * 1024
    shards = cut_into_shards(samples, ShardConfig(output="o", max_shard_bytes=cap))
    assert [s for shard in shards for s in shard] == samples  # nothing lost, order kept
    for i, shard in enumerate(shards):
        assert sum(s.size for s in shard) <= cap
        if i + 1 < len(shards):  # a shard is cut only when the next sample (and the tar trailer) would not fit
            assert sum(s.size for s in shard) + shards[i + 1][0].size + 2 * TAR_BLOCK > cap


def test_cut_gives_an_oversized_sample_its_own_shard():
    cap = 4096
    samples = [fake("a", 1024), fake("b", 1024), fake("c", 3 * cap), fake("d", 1024), fake("e", 5 * cap)]
    shards = cut_into_shards(samples, ShardConfig(output="o", max_shard_bytes=cap))
    assert [[s.key for s in shard] for shard in shards] == [["a", "b"], ["c"], ["d"], ["e"]]


def test_cut_empty():
    assert cut_into_shards([], ShardConfig(output="o")) == []


def test_shard_tar_size_stays_within_max_shard_bytes():
    """The cap is on the file: a written shard's tar may not be larger than max_shard_bytes."""
    samples = sorted((page_sample(n, text_repeat=1 + (n * 7) % 60) for n in range(60)), key=lambda s: s.key)
    encoded = [encode_sample(s) for s in samples]
    cap = 16 * 1024
    assert all(e.size < cap for e in encoded)
    shards = cut_into_shards(encoded, ShardConfig(output="o", max_shard_bytes=cap))
    assert len(shards) > 3
    sizes = [len(tar_bytes(shard)) for shard in shards]
    assert max(sizes) <= cap, f"shard tar sizes {sizes} over the cap {cap}"


# --- dedupe -----------------------------------------------------------------------------------


def test_dedupe_keeps_smallest_uri_whatever_the_order():
    kept_copy = encode_sample(page_sample(1, doc="same", page=0, uri="file:///a/same.pdf"))
    other_copy = encode_sample(page_sample(1, doc="same", page=0, uri="file:///b/same.pdf"))
    third_copy = encode_sample(page_sample(1, doc="same", page=0, uri="file:///c/same.pdf"))
    assert kept_copy.key == other_copy.key == third_copy.key
    others = [encode_sample(page_sample(n)) for n in range(2, 7)]
    expected_rejects = [
        RejectRecord(stage="sink", reason="duplicate_key", uri=copy.uri, locator="page=0",
                     detail="kept file:///a/same.pdf", key=kept_copy.key)
        for copy in (other_copy, third_copy)
    ]
    orders = [
        [other_copy, *others, kept_copy, third_copy],
        [third_copy, kept_copy, *reversed(others), other_copy],
        [kept_copy, other_copy, third_copy, *others],
    ]
    for order in orders:
        kept, rejects = dedupe(order)
        assert [s.key for s in kept] == sorted({s.key for s in order})
        assert len(kept) == len(others) + 1
        survivor = next(s for s in kept if s.key == kept_copy.key)
        assert survivor is kept_copy
        assert sorted(rejects) == expected_rejects


def test_dedupe_without_duplicates_only_sorts():
    samples = [encode_sample(page_sample(n)) for n in range(6)]
    kept, rejects = dedupe(reversed(samples))
    assert rejects == []
    assert kept == sorted(samples, key=lambda s: s.key)


# --- buckets ----------------------------------------------------------------------------------


def test_bucket_count():
    config = ShardConfig(output="o", max_samples_per_shard=100, max_shard_bytes=1_000_000)
    assert bucket_count(0, 0, config) == 1
    assert bucket_count(1, 10, config) == 1
    assert bucket_count(1000, 0, config) == 12  # 10 shards' worth at 90% fill
    assert bucket_count(10, 10_000_000, config) == 12  # bytes decide
    assert bucket_count(1000, 10_000_000, config) == bucket_count(1000, 0, config)
    counts = [bucket_count(n, n * 5_000, config) for n in range(0, 20_000, 97)]
    assert counts == sorted(counts) and counts[-1] > 100  # grows with the data
    by_bytes = [bucket_count(10, b, config) for b in range(0, 50_000_000, 999_983)]
    assert by_bytes == sorted(by_bytes) and by_bytes[-1] >= 50
    assert bucket_count(1000, 0, config) == bucket_count(1000, 0, config)


def test_bucket_of_is_deterministic_and_spreads():
    assert bucket_of("pdf-abc", 7) == 5  # pinned: sha256 of the key, not Python's salted hash()
    assert bucket_of("pdf-abc", 1) == 0
    keys = [make_key("pdf", "doc", n) for n in range(2000)]
    first = [bucket_of(key, 8) for key in keys]
    assert first == [bucket_of(key, 8) for key in keys]
    assert all(0 <= b < 8 for b in first)
    spread = Counter(first)
    assert set(spread) == set(range(8))
    assert all(150 <= count <= 350 for count in spread.values()), spread


# --- WriteDataset end to end ------------------------------------------------------------------

MAX_PER_SHARD = 8
# (index of the original sample, mirror folder): "a-mirror" sorts before "in", "z-mirror" after
DUPLICATES = [(0, "a-mirror"), (5, "z-mirror"), (9, "a-mirror"), (9, "z-mirror"), (17, "z-mirror"), (30, "a-mirror")]
GIVEN_REJECTS = [
    RejectRecord(stage="pdf", reason="pdf_corrupt", uri="file:///in/bad1.pdf", detail="truncated"),
    RejectRecord(stage="pdf", reason="pdf_corrupt", uri="file:///in/bad2.pdf", detail="no xref"),
    RejectRecord(stage="pdf", reason="pdf_encrypted", uri="file:///in/locked.pdf"),
    RejectRecord(stage="pdf", reason="page_too_large", uri="file:///in/huge.pdf", locator="page=2"),
]


def dataset_samples() -> list[Sample]:
    originals = [
        page_sample(i, doc=f"doc{i // 4}", page=i % 4, category="table_chart" if i % 5 == 0 else "document_ocr",
                    text_repeat=1 + i % 7)
        for i in range(44)
    ]
    copies = [
        page_sample(i, doc=f"doc{i // 4}", page=i % 4, uri=f"file:///{mirror}/doc{i // 4}.pdf",
                    category="table_chart" if i % 5 == 0 else "document_ocr", text_repeat=1 + i % 7)
        for i, mirror in DUPLICATES
    ]
    return originals + copies


def expected_outcome():
    samples = dataset_samples()
    by_key = defaultdict(list)
    for sample in samples:
        by_key[sample.key].append(sample)
    kept = {key: min(copies, key=lambda s: s.uri) for key, copies in by_key.items()}
    duplicate_rows = [
        RejectRecord(stage="sink", reason="duplicate_key", uri=s.uri, locator=s.locator,
                     detail=f"kept {kept[key].uri}", key=key)
        for key, copies in by_key.items() for s in copies if s is not kept[key]
    ]
    return samples, kept, duplicate_rows


def run_write_dataset(output: str, samples, rejects, inputs, extra_args=(), check=True):
    options = PipelineOptions(["--runner=FnApiRunner", *extra_args])
    with BeamTestPipeline(options=options) as p:
        manifest = {
            "samples": p | "Samples" >> beam.Create(samples),
            "rejects": p | "Rejects" >> beam.Create(rejects),
            "inputs": p | "Inputs" >> beam.Create(inputs),
        } | WriteDataset(
            ShardConfig(output=output, prefix="t", max_samples_per_shard=MAX_PER_SHARD),
            run={"pipeline": "test", "config": {}},
        )
        if check:
            totals = manifest | "Totals" >> beam.Map(lambda m: (m["totals"], m["rejects"]["by_reason"]))
            assert_that(
                totals,
                equal_to([(
                    {"inputs": 54, "samples": 44, "rejected": 4, "filtered": 6, "balanced": True},
                    {"duplicate_key": 6, "page_too_large": 1, "pdf_corrupt": 2, "pdf_encrypted": 1},
                )]),
            )


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """The same inputs written twice: in order, in-process; shuffled, with two worker processes."""
    samples = dataset_samples()
    inputs = [f"{s.uri}#{s.locator}" for s in samples] + [f"{r.uri}#{r.locator}" for r in GIVEN_REJECTS]
    first = tmp_path_factory.mktemp("run1")
    run_write_dataset(str(first), samples, GIVEN_REJECTS, inputs)

    rng = random.Random(1234)
    shuffled_samples, shuffled_rejects, shuffled_inputs = list(samples), list(GIVEN_REJECTS), list(inputs)
    for items in (shuffled_samples, shuffled_rejects, shuffled_inputs):
        rng.shuffle(items)
    second = tmp_path_factory.mktemp("run2")
    run_write_dataset(
        str(second), shuffled_samples, shuffled_rejects, shuffled_inputs,
        extra_args=["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
    )
    return first, second


def shard_files(folder):
    return sorted(os.listdir(folder / "shards")), sorted(os.listdir(folder / "index"))


@pytest.mark.e2e
def test_write_dataset_files_numbered_from_zero(datasets):
    first, _ = datasets
    tars, indexes = shard_files(first)
    assert len(tars) >= math.ceil(44 / MAX_PER_SHARD)
    assert tars == [f"t-{n:06d}.tar" for n in range(len(tars))]
    assert indexes == [f"t-{n:06d}.parquet" for n in range(len(tars))]
    assert sorted(os.listdir(first / "rejects")) == ["t-rejects-000000.parquet"]
    assert sorted(os.listdir(first)) == ["index", "manifest.json", "rejects", "shards"]  # no temporary files


def test_write_dataset_shards_hold_every_kept_sample_once(datasets):
    first, _ = datasets
    _, kept, _ = expected_outcome()
    tars, _ = shard_files(first)
    seen = []
    for name in tars:
        samples = list(read_shard(str(first / "shards" / name)))
        keys = [s.key for s in samples]
        assert 1 <= len(samples) <= MAX_PER_SHARD
        assert keys == sorted(keys)
        for sample in samples:
            assert sample == kept[sample.key]  # the copy with the smallest uri, bytes intact
        seen.extend(keys)
    assert len(seen) == len(set(seen)) == 44
    assert set(seen) == set(kept)
    # some duplicates were won by the copy, some by the original
    assert {kept[page_sample(i, doc=f"doc{i // 4}", page=i % 4).key].uri.split("/")[3] for i, _ in DUPLICATES} == {
        "a-mirror", "in"
    }


def test_write_dataset_index_matches_shards(datasets):
    first, _ = datasets
    _, kept, _ = expected_outcome()
    tars, _ = shard_files(first)
    for name in tars:
        shard = name.removesuffix(".tar")
        with open(first / "shards" / name, "rb") as handle:
            extents = layout(handle.read())
        rows = pq.read_table(first / "index" / f"{shard}.parquet").to_pylist()
        assert [row["key"] for row in rows] == list(extents)
        for row in rows:
            sample = kept[row["key"]]
            start, end = extents[row["key"]]
            assert row["shard"] == shard
            assert row["category"] == sample.category
            assert row["uri"] == sample.uri and row["locator"] == sample.locator
            assert row["sample_bytes"] == end - start == encode_sample(sample).size
            assert row["image_count"] == 1 and row["image_width"] == sample.images[0].width
            assert row["text_chars"] == len(sample.text)


def test_write_dataset_rejects_file(datasets):
    first, _ = datasets
    _, _, duplicate_rows = expected_outcome()
    rows = reject_records(pq.read_table(first / "rejects" / "t-rejects-000000.parquet"))
    # the sink names the run's pipeline as the source of rows that name none
    assert rows == sorted(row.with_source("test") for row in GIVEN_REJECTS + duplicate_rows)
    assert len(rows) == 10


def test_write_dataset_manifest(datasets):
    first, _ = datasets
    _, kept, _ = expected_outcome()
    manifest = json.loads((first / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["schema"] == "vlcurate.manifest/1" and manifest["pipeline"] == "test"
    assert manifest["totals"] == {"inputs": 54, "samples": 44, "rejected": 4, "filtered": 6, "balanced": True}
    assert manifest["counts"] == {"inputs": 54}
    assert manifest["categories"] == dict(sorted(Counter(s.category for s in kept.values()).items()))
    assert manifest["categories"] == {"document_ocr": 35, "table_chart": 9}
    assert manifest["rejects"]["by_reason"] == {
        "duplicate_key": 6, "page_too_large": 1, "pdf_corrupt": 2, "pdf_encrypted": 1,
    }
    assert manifest["rejects"]["by_stage"] == {
        "pdf": {"page_too_large": 1, "pdf_corrupt": 2, "pdf_encrypted": 1}, "sink": {"duplicate_key": 6},
    }
    rejects_path = first / "rejects" / "t-rejects-000000.parquet"
    assert manifest["rejects"]["files"][0] == {
        "name": "rejects/t-rejects-000000.parquet", "bytes": rejects_path.stat().st_size, "sha256": sha256_file(rejects_path),
    }
    tars, _ = shard_files(first)
    assert [entry["name"] for entry in manifest["shards"]] == [f"shards/{name}" for name in tars]
    for entry in manifest["shards"]:
        path = first / entry["name"]
        assert entry["bytes"] == path.stat().st_size
        assert entry["sha256"] == sha256_file(path)
        assert entry["samples"] == len(list(read_shard(str(path))))
        index = first / entry["index"]["name"]
        assert entry["index"]["name"] == entry["name"].replace("shards/", "index/").replace(".tar", ".parquet")
        assert entry["index"]["bytes"] == index.stat().st_size
        assert entry["index"]["sha256"] == sha256_file(index)
    assert sum(entry["samples"] for entry in manifest["shards"]) == 44


def test_write_dataset_is_deterministic(datasets):
    first, second = datasets
    assert shard_files(first) == shard_files(second)
    tars, indexes = shard_files(first)
    files = [f"shards/{n}" for n in tars] + [f"index/{n}" for n in indexes] + ["rejects/t-rejects-000000.parquet"]
    assert {f: sha256_file(first / f) for f in files} == {f: sha256_file(second / f) for f in files}
    one, two = (json.loads((folder / "manifest.json").read_text()) for folder in datasets)
    for part in ("totals", "categories", "rejects", "shards", "counts"):
        assert one[part] == two[part]


@pytest.mark.e2e
def test_write_dataset_with_every_input_rejected(tmp_path):
    rejects = GIVEN_REJECTS[:3]
    with BeamTestPipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        manifest = {
            "samples": p | "Samples" >> beam.Create([]),
            "rejects": p | "Rejects" >> beam.Create(rejects),
            "inputs": p | "Inputs" >> beam.Create([r.uri for r in rejects]),
        } | WriteDataset(ShardConfig(output=str(tmp_path), prefix="t"), run={"pipeline": "test"})
        assert_that(manifest | beam.Map(lambda m: (m["totals"], len(m["shards"]))), equal_to([(
            {"inputs": 3, "samples": 0, "rejected": 3, "filtered": 0, "balanced": True}, 0,
        )]))
    assert not (tmp_path / "shards").exists() or os.listdir(tmp_path / "shards") == []
    rows = reject_records(pq.read_table(tmp_path / "rejects" / "t-rejects-000000.parquet"))
    assert rows == sorted(row.with_source("test") for row in rejects)


def test_a_staged_blob_reads_back_member_by_member():
    # The reader parses only the fields tar_header writes; tarfile itself must agree with it.
    from vlcurate.transforms.io.blobs import members_of, tar_members

    long_name = "d" * 120 + "/" + "k" * 90 + ".png"  # over 100 bytes: USTAR splits it into prefix and name
    members = [("key.json", b"{}"), (long_name, b"x" * 1000), ("key.txt", b""), ("ключ.md", b"y" * 513)]
    blob = tar_members(members)
    assert members_of(blob) == {"json": b"{}", "png": b"x" * 1000, "txt": b"", "md": b"y" * 513}
    with tarfile.open(fileobj=io.BytesIO(blob + bytes(1024))) as tar:
        assert [(info.name, info.size) for info in tar] == [(name, len(data)) for name, data in members]


def test_reject_rows_are_spread_over_one_file_a_share_of_the_input_units(tmp_path, monkeypatch):
    from vlcurate.transforms.io import shards

    monkeypatch.setattr(shards, "REJECTS_PER_FILE", 20)  # 54 input units: three files' worth
    samples = dataset_samples()
    inputs = [f"{s.uri}#{s.locator}" for s in samples] + [f"{r.uri}#{r.locator}" for r in GIVEN_REJECTS]
    run_write_dataset(str(tmp_path), samples, GIVEN_REJECTS, inputs)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    names = sorted(os.listdir(tmp_path / "rejects"))
    assert 2 <= len(names) <= 3  # the 10 rows' keys hash to buckets; an empty one writes no file
    assert all(name.startswith("t-rejects-00000") for name in names)
    assert [entry["name"] for entry in manifest["rejects"]["files"]] == [f"rejects/{name}" for name in names]
    rows = [row for name in names for row in reject_records(pq.read_table(tmp_path / "rejects" / name))]
    assert Counter(row.reason for row in rows) == {"duplicate_key": 6, "pdf_corrupt": 2, "page_too_large": 1,
                                                   "pdf_encrypted": 1}
    assert manifest["counts"] == {"inputs": 54}
