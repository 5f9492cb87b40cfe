"""The parquet files of a dataset: the index and rejects schemas, written with fixed settings."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

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
    ]
)


def index_table(samples, shard: str) -> pa.Table:
    rows = [dict(sample.row, shard=shard) for sample in samples]
    return pa.Table.from_pylist(rows, schema=INDEX_SCHEMA)


def rejects_table(records) -> pa.Table:
    """The rows sorted by every field, so the same rejects always give the same file."""
    rows = sorted(records)
    columns = {name: [getattr(row, name) for row in rows] for name in REJECT_SCHEMA.names}
    return pa.Table.from_pydict(columns, schema=REJECT_SCHEMA)


def parquet_bytes(table: pa.Table) -> bytes:
    """Parquet with fixed settings (zstd, no pandas metadata) so equal tables give equal bytes."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()
