"""Staging on an object store (a Dataflow run's gs:// output), on the fake of Cloud Storage in
tests/fixtures/object_store.py (Cloud Storage cannot be reached here): samples of a batch become
one object, their records wait for it, done lines name it, blobs are read back a few ahead, and
the area is removed by prefix."""

from __future__ import annotations

import dataclasses

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from fixtures.object_store import object_store, slow_reads
from vlcurate.transforms.data.sample import Sample, make_key
from vlcurate.transforms.io.blobs import StagedSample, decode
from vlcurate.transforms.io.packs import Pending, RemotePack
from vlcurate.transforms.io.staging import READ_AHEAD, Staging, StagingLost
from vlcurate.transforms.runtime.stage import DONE_BATCH, REJECTS, StageDoFn


def page(number: int) -> Sample:
    return Sample(key=make_key("text", str(number)), source="text", category="text_only", uri=f"file:///doc/{number}",
                  locator=str(number), text=f"page {number} " * (number + 1))


def test_on_an_object_store_a_sample_is_pending_until_its_pack_is_written(tmp_path):
    with object_store(tmp_path) as operations:
        staging = Staging.of("fakegcs://bucket/out", "run", "text")
        assert staging.remote
        pending = [staging.stage(page(number)) for number in range(3)]
        assert all(isinstance(item, Pending) for item in pending)
        assert not list(tmp_path.rglob("*"))  # staging wrote nothing itself

        pack = RemotePack(staging)
        records = [pack.hold(item) for item in pending]
        assert len({record.blob for record in records}) == 1
        assert [record.offset for record in records] == [0, len(pending[0].blob), len(pending[0].blob) + len(pending[1].blob)]
        assert not list(tmp_path.rglob("*.pack"))  # held: no object yet
        assert pack.write() == records
        [written] = tmp_path.rglob("*.pack")
        assert written.read_bytes() == b"".join(item.blob for item in pending)
        # One object for the three: written under a temporary name and copied into place.
        assert operations["A write"] == 1 and operations["A copy"] == 1
        assert [staging.sample(record).text for record in records] == [page(number).text for number in range(3)]
        assert pack.write() == []  # an empty pack writes nothing

        staging.remove()
        assert not [path for path in tmp_path.rglob("*") if path.is_file()]


def test_a_local_staging_area_is_unchanged(tmp_path):
    staging = Staging.of(str(tmp_path), "run", "text")
    assert not staging.remote
    record = staging.stage(page(1))
    assert isinstance(record, StagedSample) and staging.sample(record).text == page(1).text


class _Pages(StageDoFn):
    stage = "pages"

    def run(self, number):
        if number % 10 == 9:
            from vlcurate.transforms.data.rejects import Reject

            raise Reject("read_error", f"page {number}")
        return [page(number)]

    def ref(self, number):
        return (f"file:///doc/{number}", str(number))


class _LoadEach(beam.DoFn):
    """Reads every record's blob as it arrives: fused behind the stage in the same bundle, as the
    quality stages' Load is, so a record that left before its object exists fails here."""

    def __init__(self, staging):
        self._staging = staging

    def process(self, record):
        yield self._staging.sample(record).text


@pytest.mark.e2e
def test_a_stage_on_an_object_store_writes_one_object_a_batch_and_releases_records_after_it(tmp_path):
    count = 2 * DONE_BATCH + 5
    with object_store(tmp_path) as operations:
        staging = Staging.of("fakegcs://bucket/out", "run", "text")
        with TestPipeline(runner="FnApiRunner") as pipeline:
            outputs = (pipeline | beam.Create(range(count), reshuffle=False)
                       | beam.ParDo(_Pages().with_staging(staging)).with_outputs(REJECTS, main="samples"))
            texts = outputs.samples | beam.ParDo(_LoadEach(staging))
            assert_that(texts, equal_to([page(n).text for n in range(count) if n % 10 != 9]))
        packs = list(tmp_path.rglob("samples/packs/*.pack"))
        done = list(tmp_path.rglob("done/pages/*.jsonl"))
        # A batch of DONE_BATCH inputs is one object (the bundle's rest one more), and its done lines one.
        assert 3 <= len(packs) == len(done) <= 4
        assert operations["A write"] == operations["A copy"] == len(packs) + len(done)

        finished = staging.finished("pages")
        assert len(finished) == count
        samples, rejects = finished.get(("file:///doc/3", "3"))
        assert not rejects and staging.sample(samples[0]).text == page(3).text
        samples, rejects = finished.get(("file:///doc/9", "9"))
        assert not samples and rejects[0].reason == "read_error"


def test_blobs_on_an_object_store_are_read_a_few_ahead_in_order(tmp_path):
    """Each read from a bucket is a round trip: a shard's samples are read READ_AHEAD at a time,
    and come back in their order, a lost one as its StagingLost."""
    with object_store(tmp_path):
        staging = Staging.of("fakegcs://bucket/out", "run", "text")
        pack = RemotePack(staging)
        records = [pack.hold(staging.stage(page(number))) for number in range(40)]
        pack.write()
        records[7] = dataclasses.replace(records[7], sha256="0" * 64)  # its bytes are not these
        reads = slow_reads(0.02)  # a round trip of 20 ms
        loaded = list(staging.loads(records))
    assert [record for record, _ in loaded] == records
    assert isinstance(loaded[7][1], StagingLost)
    assert [staging_text(blob) for _, blob in loaded if not isinstance(blob, StagingLost)] == \
        [page(number).text for number in range(40) if number != 7]
    assert 1 < reads["most"] <= READ_AHEAD


def staging_text(blob: bytes) -> str:
    return decode(blob).text


def test_a_local_staging_area_loads_in_order(tmp_path):
    staging = Staging.of(str(tmp_path), "run", "text")
    records = [staging.stage(page(number)) for number in range(3)]
    assert [staging_text(blob) for _, blob in staging.loads(records)] == [page(number).text for number in range(3)]


@pytest.mark.e2e
def test_the_quality_stages_load_blobs_from_an_object_store_a_few_at_once(tmp_path):
    """pipelines/runs.loaded (LoadSamples): the records of a source stage come back as samples,
    every one, with several reads in flight on an object store."""
    from vlcurate.pipelines.runs import loaded

    count = 3 * READ_AHEAD + 2
    with object_store(tmp_path):
        staging = Staging.of("fakegcs://bucket/out", "run", "text")
        pack = RemotePack(staging)
        records = [pack.hold(staging.stage(page(number))) for number in range(count)]
        pack.write()
        reads = slow_reads(0.02)  # a round trip of 20 ms
        with TestPipeline(runner="FnApiRunner") as pipeline:
            samples = loaded(pipeline | beam.Create(records, reshuffle=False), staging)
            assert_that(samples | beam.Map(lambda sample: sample.text), equal_to([page(n).text for n in range(count)]))
    assert 1 < reads["most"] <= READ_AHEAD
