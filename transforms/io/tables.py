"""The parquet files of a dataset: the index and rejects schemas, written with fixed settings."""

from __future__ import annotations

import dataclasses
import io

import pyarrow as pa
import pyarrow.parquet as pq

from vlcurate.transforms.data.rejects import RejectRecord

INDEX_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("shard", pa.string()),
        ("source", pa.string()),
        ("category", pa.string()),
        ("uri", pa.string()),
        ("locator", pa.string()),
        ("image_count", pa.int32()),
        ("image_width", pa.int32()),
        ("image_height", pa.int32()),
        ("image_bytes", pa.int64()),
        ("text_chars", pa.int64()),
        ("sample_bytes", pa.int64()),
        ("text_source", pa.string()),
        ("scores", pa.map_(pa.string(), pa.float64())),
        ("taxonomy_id", pa.string()),
        ("taxonomy_confidence", pa.float64()),
        # Typed facts of the sample's json: the language id ("en", "und" for no text; null: not
        # identified) and the taxonomy status (labelled | review | reviewed: an
        # editor's label, `vlcurate review apply` | unlabelled).
        ("language", pa.string()),
        ("taxonomy_status", pa.string()),
    ]
)


REJECT_SCHEMA = pa.schema(
    [
        ("stage", pa.string()),
        ("reason", pa.string()),
        ("uri", pa.string()),
        ("locator", pa.string()),
        ("detail", pa.string()),
        ("key", pa.string()),
        # Typed columns beside the English detail: filtered | rejected (from the reason), the recipe
        # source or command pipeline, the score and threshold a scored filter judged by, the input line.
        ("kind", pa.string()),
        ("source", pa.string()),
        ("score", pa.float64()),
        ("threshold", pa.float64()),
        ("line", pa.int64()),
    ]
)


def index_table(rows, shard: str) -> pa.Table:
    """The index of one shard from its samples' rows (io/blobs.py ``index_row``)."""
    return pa.Table.from_pylist([dict(row, shard=shard) for row in rows], schema=INDEX_SCHEMA)


def rejects_table(records, source: str | None = None) -> pa.Table:
    """The rows sorted by every field, so the same rejects always give the same file; rows that
    name no source get ``source`` (the run's, see ``run_source``)."""
    rows = sorted(record.with_source(source) for record in records)
    columns = {name: [getattr(row, name) for row in rows] for name in REJECT_SCHEMA.names}
    return pa.Table.from_pydict(columns, schema=REJECT_SCHEMA)


def run_source(run: dict) -> str | None:
    """The source a run's reject rows name when their stage named none: a command's pipeline name;
    for a recipe, its only source (with several, each row names its own or none)."""
    if run.get("pipeline") != "recipe":
        return run.get("pipeline")
    sources = (run.get("config") or {}).get("sources") or {}
    return next(iter(sources)) if len(sources) == 1 else None


def reject_records(table: pa.Table) -> list[RejectRecord]:
    """The rows of a rejects table (of any version: missing columns take their defaults)."""
    fields = {field.name for field in dataclasses.fields(RejectRecord)}
    return [RejectRecord(**{name: value for name, value in row.items() if name in fields})
            for row in table.to_pylist()]


# Every writer setting that shapes the bytes, pinned rather than left to pyarrow's defaults.
PARQUET_SETTINGS = {
    "version": "2.6",
    "compression": "zstd",
    "compression_level": 1,
    "use_dictionary": True,
    "write_statistics": True,
    "data_page_version": "1.0",
    "store_schema": True,
    "write_page_index": False,
    "write_page_checksum": False,
    "row_group_size": 1 << 20,  # rows
}


def parquet_bytes(table: pa.Table) -> bytes:
    """Parquet with fixed settings (``PARQUET_SETTINGS``, no pandas metadata) so equal tables give
    equal bytes."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer, **PARQUET_SETTINGS)
    return buffer.getvalue()
