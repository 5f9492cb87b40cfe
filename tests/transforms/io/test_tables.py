"""The typed parquet tables: the index and rejects schemas, the rows the filters and the sink write
into them (kind, source, score, threshold, line; language and taxonomy status), fixed bytes, and
the report reading the typed columns rather than the English detail."""

from __future__ import annotations

import io
import pathlib
import random

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline

from fixtures.report import write_rich_dataset
from vlcurate.transforms.data.rejects import FILTER_REASONS, REASONS, RejectRecord, is_filtered, sample_reject
from vlcurate.transforms.data.sample import Sample, make_key
from vlcurate.transforms.filters.clip import FilterClip
from vlcurate.transforms.filters.clip_config import ClipConfig
from vlcurate.transforms.io.blobs import encode, index_row
from vlcurate.transforms.io.tables import (
    INDEX_SCHEMA,
    REJECT_SCHEMA,
    index_table,
    parquet_bytes,
    reject_records,
    rejects_table,
    run_source,
)
from vlcurate.transforms.report.build import build_report, clip_rejects

# --- the schemas ------------------------------------------------------------------------------


def test_index_schema_columns_types_and_nullability():
    assert [(f.name, f.type, f.nullable) for f in INDEX_SCHEMA] == [
        ("key", pa.string(), True),
        ("shard", pa.string(), True),
        ("source", pa.string(), True),
        ("category", pa.string(), True),
        ("uri", pa.string(), True),
        ("locator", pa.string(), True),
        ("image_count", pa.int32(), True),
        ("image_width", pa.int32(), True),
        ("image_height", pa.int32(), True),
        ("image_bytes", pa.int64(), True),
        ("text_chars", pa.int64(), True),
        ("sample_bytes", pa.int64(), True),
        ("text_source", pa.string(), True),
        ("scores", pa.map_(pa.string(), pa.float64()), True),
        ("taxonomy_id", pa.string(), True),
        ("taxonomy_confidence", pa.float64(), True),
        ("language", pa.string(), True),
        ("taxonomy_status", pa.string(), True),
    ]


def test_rejects_schema_columns_types_and_nullability():
    assert [(f.name, f.type, f.nullable) for f in REJECT_SCHEMA] == [
        ("stage", pa.string(), True),
        ("reason", pa.string(), True),
        ("uri", pa.string(), True),
        ("locator", pa.string(), True),
        ("detail", pa.string(), True),
        ("key", pa.string(), True),
        ("kind", pa.string(), True),
        ("source", pa.string(), True),
        ("score", pa.float64(), True),
        ("threshold", pa.float64(), True),
        ("line", pa.int64(), True),
    ]


def read_back(table: pa.Table) -> pa.Table:
    """The table through the bytes the sink writes."""
    return pq.read_table(io.BytesIO(parquet_bytes(table)))


# --- the index: language and taxonomy status --------------------------------------------------


def text_sample(n: int, **fields) -> Sample:
    return Sample(key=make_key("sft", "q", n), source="sft", category="text_only", uri="file:///in/q.jsonl",
                  locator=f"line {n}", text=f"question {n}", **fields)


def test_index_row_of_a_review_sample_has_its_status_and_language():
    review = text_sample(1, meta={"language": {"id": "de", "confidence": 0.93}},
                         taxonomy={"id": None, "name": None, "confidence": 0.21, "main": "recognition",
                                   "status": "review", "top": [], "version": "1", "labeler": "x"})
    labelled = text_sample(2, meta={"language": {"id": "en", "confidence": 0.99}},
                           taxonomy={"id": "recognition/ocr", "confidence": 0.8, "status": "labelled"})
    unlabelled = text_sample(3)  # no labelling stage ran: no language either
    rows = read_back(index_table([index_row(s, encode(s)[0].size) for s in (review, labelled, unlabelled)], "t-000000")).to_pylist()
    assert [(r["taxonomy_status"], r["language"]) for r in rows] == [
        ("review", "de"), ("labelled", "en"), ("unlabelled", None)]
    assert rows[0]["taxonomy_id"] is None and rows[0]["taxonomy_confidence"] == 0.21
    # the index says what the manifest counts: review samples under "(review)"
    assert [encode(s)[0].label for s in (review, labelled, unlabelled)] == ["(review)", "recognition/ocr", None]


# --- the rejects: kind, source, score, threshold, line -----------------------------------------


def scored(n: int, score: float, **provenance) -> tuple[Sample, None]:
    sample = Sample(key=make_key("pdf", "doc", n), source="pdf", category="document_ocr", uri=f"file:///in/{n}.pdf",
                    locator=f"page={n}", text="a caption", scores={"clip": score}, provenance=provenance)
    return sample, None


# The in-process runner calls _keep in this process, through this module (a list passed into a
# lambda would be pickled, and filled as a copy).
_FOUND: list = []


def _keep(record) -> None:
    _FOUND.append(record)


def filter_clip(config: ClipConfig, pairs) -> list[RejectRecord]:
    """The reject rows FilterClip gives for ``pairs`` on FnApiRunner."""
    _FOUND.clear()
    with TestPipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as pipeline:
        out = pipeline | beam.Create(pairs, reshuffle=False) | FilterClip(config)
        out["rejects"] | "Keep" >> beam.Map(_keep)
    return list(_FOUND)


def test_a_clip_filtered_row_carries_its_score_and_threshold_as_numbers():
    floor = ClipConfig(model="tiny", min_score=0.3)
    pairs = [scored(1, 0.125), scored(2, 0.5), scored(3, -0.25, recipe_source="papers")]
    records = filter_clip(floor, pairs)
    rows = read_back(rejects_table(records, source="pdf_pages")).to_pylist()
    assert sorted((r["key"], r["score"], r["threshold"]) for r in rows) == sorted(
        [(pairs[0][0].key, 0.125, 0.3), (pairs[2][0].key, -0.25, 0.3)])
    by_key = {r["key"]: r for r in rows}
    assert by_key[pairs[0][0].key]["source"] == "pdf_pages"  # the run's pipeline, filled in by the sink
    assert by_key[pairs[2][0].key]["source"] == "papers"  # a recipe source, from the sample's provenance
    assert {(r["kind"], r["stage"], r["reason"]) for r in rows} == {("filtered", "clip", "clip_below_threshold")}
    assert all(isinstance(r["score"], float) and isinstance(r["threshold"], float) for r in rows)


def test_a_keep_fraction_row_carries_the_run_quantile_it_missed():
    pairs = [scored(n, n / 10) for n in range(1, 11)]
    records = filter_clip(ClipConfig(model="tiny", keep_fraction=0.5), pairs)
    assert sorted(r.score for r in records) == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert {r.threshold for r in records} == {0.6}  # the least score kept


def test_rejects_table_kind_follows_the_manifest_rule_and_line_the_locator():
    records = [RejectRecord(stage="s", reason=reason, uri=f"file:///in/{reason}") for reason in sorted(REASONS)]
    records.append(RejectRecord(stage="sft_record", reason="sft_malformed", uri="file:///in/a.jsonl",
                                locator="line 7", source="chat"))
    rows = read_back(rejects_table(records, source="sft")).to_pylist()
    assert {r["reason"] for r in rows if r["kind"] == "filtered"} == set(FILTER_REASONS)
    assert all(r["kind"] == ("filtered" if is_filtered(r["reason"]) else "rejected") for r in rows)
    line = next(r for r in rows if r["locator"] == "line 7")
    assert (line["line"], line["source"]) == (7, "chat")  # a source already named is kept
    assert {r["line"] for r in rows if r is not line} == {None}
    assert {r["source"] for r in rows if r is not line} == {"sft"}


def test_rejects_bytes_are_fixed_whatever_the_order_and_read_back_whole():
    records = [
        sample_reject(scored(n, -n / 7)[0], "clip", "clip_below_threshold", f"clip={-n / 7:.6f}", -n / 7, -0.1)
        for n in range(1, 6)
    ] + [RejectRecord(stage="pdf_document", reason="pdf_corrupt", uri="file:///in/bad.pdf", detail="truncated"),
         RejectRecord(stage="text_record", reason="text_empty", uri="file:///in/t.jsonl", locator="line 3")]
    shuffled = list(records)
    random.Random(3).shuffle(shuffled)
    assert parquet_bytes(rejects_table(records, "x")) == parquet_bytes(rejects_table(shuffled, "x"))
    assert reject_records(read_back(rejects_table(shuffled, "x"))) == sorted(r.with_source("x") for r in records)


def test_reject_records_read_files_written_before_the_typed_columns():
    old = pa.table({"stage": ["pdf"], "reason": ["pdf_corrupt"], "uri": ["u"], "locator": [""], "detail": ["d"],
                    "key": [""]})
    assert reject_records(old) == [RejectRecord(stage="pdf", reason="pdf_corrupt", uri="u", detail="d")]


def test_run_source_is_the_pipeline_or_a_recipe_single_source():
    assert run_source({"pipeline": "pdf_pages"}) == "pdf_pages"
    assert run_source({"pipeline": "recipe", "config": {"sources": {"papers": {}}}}) == "papers"
    assert run_source({"pipeline": "recipe", "config": {"sources": {"papers": {}, "chat": {}}}}) is None


# --- the report reads the typed columns ---------------------------------------------------------

# A detail that lies: an English parser would read 0.99 below 0.5.
MISLEADING = "clip=0.990000 below 0.500000, the run's top 0.8"


def misleading_rejects(path) -> None:
    records = [RejectRecord(stage="clip", reason="clip_below_threshold", uri="file:///in/low.pdf", locator="page=1",
                            detail=MISLEADING, score=-0.42, threshold=-0.3),
               RejectRecord(stage="pdf_document", reason="pdf_corrupt", uri="file:///in/bad.pdf",
                            detail="clip=0.7 below 0.6")]
    with open(path, "wb") as handle:
        handle.write(parquet_bytes(rejects_table(records, "test")))


def test_clip_rejects_come_from_the_score_and_threshold_columns(tmp_path):
    path = tmp_path / "rejects.parquet"
    misleading_rejects(path)
    assert clip_rejects([str(path)]) == ([-0.42], [-0.3])
    old = tmp_path / "old.parquet"  # the English detail alone is not read
    pq.write_table(pa.table({"reason": ["clip_below_threshold"], "detail": [MISLEADING]}), old)
    assert clip_rejects([str(old)]) == ([], [])


@pytest.fixture(scope="module")
def rich(tmp_path_factory):
    return write_rich_dataset(str(tmp_path_factory.mktemp("rich")), extras=False)


@pytest.mark.e2e
def test_the_report_clip_histogram_uses_the_typed_columns(rich):
    misleading_rejects(f"{rich}/rejects/t-rejects-000000.parquet")
    page = build_report(rich, per_category=0)
    clip = page[page.index("<section id=\"clip\">"):]
    clip = clip[:clip.index("</section>")]
    assert "<td>rejected</td><td class=n>1</td><td class=n>-0.42</td><td class=n>-0.42</td><td class=n>-0.42</td>" in clip
    assert "<p>threshold -0.3</p>" in clip
    assert "0.99" not in clip and "threshold 0.5" not in clip
    assert build_report(rich, per_category=0) == page


# --- the documented format ----------------------------------------------------------------------


def test_the_format_page_lists_every_column_and_reason_code():
    page = (pathlib.Path(__file__).parents[3] / "docs" / "dataset-format.md").read_text(encoding="utf-8")
    for name in (*INDEX_SCHEMA.names, *REJECT_SCHEMA.names):
        assert f"| `{name}` |" in page, name
    for reason in REASONS:
        kind = "filtered" if is_filtered(reason) else "rejected"
        assert f"| `{reason}` | {kind} |" in page, reason
