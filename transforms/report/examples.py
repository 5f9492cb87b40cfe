"""The report's examples of what a dataset rejected and filtered: a few rows per reason, a seeded
random sample (build.rank), and rows per source.

A reject row holds no bytes (a dropped sample's staged bytes are gone when its run ends), so an
example's picture comes from what is still there, without running anything that made it: the
dataset's own sample with the row's key (the kept copy of a ``duplicate_key``, the sample an
earlier run wrote for ``already_in_dataset``), else the input file itself when it is an image
(local or gs://, read under a byte cap and decoded under the report's pixel cap). Otherwise the
example shows its uri, locator, detail and scores: PDF pages, web pages and records are not
rendered again for a report, which would run a PDF engine or a browser on hostile input.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
from collections.abc import Iterable

from vlcurate.transforms.data.rejects import Reject, reject_kind
from vlcurate.transforms.io.files import open_for_reading, read_capped
from vlcurate.transforms.report.build import escape, rank, thumbnail

EXAMPLES_PER_REASON = 3
MAX_INPUT_BYTES = 32 * 1024 * 1024  # an input image larger than this is not read for a thumbnail
COLUMNS = ("stage", "reason", "uri", "locator", "detail", "key", "source", "score", "threshold")
# The file names of the formats images.open_image decodes.
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")


@dataclasses.dataclass
class RejectFacts:
    examples: dict = dataclasses.field(default_factory=dict)  # reason -> [(rank, row)], by rank
    by_source: dict = dataclasses.field(default_factory=dict)  # source -> Counter of kinds


def scan_rejects(paths: Iterable[str], per_reason: int = EXAMPLES_PER_REASON, batch_rows: int = 16384) -> RejectFacts:
    """Stream the rejects files a batch at a time: the examples of each reason and the rows per source."""
    import pyarrow.parquet as pq

    facts = RejectFacts()
    for path in paths:
        with open_for_reading(path) as handle:
            parquet = pq.ParquetFile(handle)
            columns = [name for name in COLUMNS if name in parquet.schema_arrow.names]
            if "reason" not in columns:
                continue
            for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
                for row in batch.to_pylist():
                    kinds = facts.by_source.setdefault(row.get("source") or "(none)", collections.Counter())
                    kinds[reject_kind(row["reason"])] += 1
                    chosen = facts.examples.setdefault(row["reason"], [])
                    place = rank(row.get("key") or "\0".join(str(row.get(c) or "") for c in COLUMNS[:5]))
                    if len(chosen) < per_reason or place < chosen[-1][0]:
                        bisect.insort(chosen, (place, row), key=lambda pick: pick[0])
                        del chosen[per_reason:]
    return facts


def wanted_keys(facts: RejectFacts) -> frozenset:
    """The keys of the examples: a sample the dataset holds under one of them gives its picture."""
    return frozenset(row["key"] for chosen in facts.examples.values() for _, row in chosen if row.get("key"))


def picture(row: dict, samples: dict) -> tuple[str | None, str]:
    """(a data: URI thumbnail or None, what it shows) for an example row."""
    sample = samples.get(row.get("key") or "")
    if sample is not None and sample.images:
        return thumbnail(sample.images[0].data), "the dataset's sample with this key"
    uri = row.get("uri") or ""
    if uri.lower().endswith(_IMAGE_SUFFIXES) and ("://" not in uri or uri.startswith("gs://")):
        try:
            data = read_capped(uri, MAX_INPUT_BYTES)
        except Reject:  # gone, unreadable or too large: the row's words stand alone
            return None, ""
        return thumbnail(data), "the input file"
    return None, ""


def section(facts: RejectFacts, samples: dict) -> str:
    """The examples section: per reason (linked from the funnel), its examples as cards."""
    from vlcurate.transforms.report import html as page

    if not facts.examples:
        return page.section("examples", "Rejected and filtered examples",
                            "<p>No input was rejected or filtered.</p>")
    parts = [f"<p>Up to {EXAMPLES_PER_REASON} rows per reason, a seeded random sample of the rejects files. "
             "A picture is the dataset's sample with the row's key, or the input file when it is an image; "
             "other inputs (PDF pages, web pages, records) are not rendered again.</p>"]
    for reason, chosen in sorted(facts.examples.items()):
        cards = "\n".join(_card(row, samples) for _, row in chosen)
        parts.append(f"<h3 id=\"{escape(page.anchor_of('examples', reason))}\">{escape(reason)} ({escape(reject_kind(reason))})</h3>\n"
                     f"<div class=\"sheet\" data-reason=\"{escape(reason)}\">\n{cards}\n</div>")
    return page.section("examples", "Rejected and filtered examples", *parts)


def _card(row: dict, samples: dict) -> str:
    uri, shows = picture(row, samples)
    image = (f"<img class=\"thumb\" alt=\"{escape(shows)}\" src=\"{uri}\"><div>{escape(shows)}</div>" if uri else "")
    where = (row.get("uri") or "") + (f" #{row['locator']}" if row.get("locator") else "")
    facts = [f"stage {row.get('stage')}"] + [f"{name} {row[name]:.4g}" for name in ("score", "threshold")
                                             if isinstance(row.get(name), (int, float))]
    key = f"<div class=\"key\">{escape(row['key'])}</div>" if row.get("key") else ""
    return (f"<div class=\"card\">{image}{key}<div class=\"uri\">{escape(where)}</div>"
            f"<div>{escape(', '.join(facts))}</div><div class=\"text\">{escape(row.get('detail') or '')}</div></div>")


def by_source_table(facts: RejectFacts) -> list[list]:
    """Rows of [source, rejected, filtered]: the rejects files' ``source`` column (a recipe source's
    name, or the command's pipeline)."""
    return [[source, kinds.get("rejected", 0), kinds.get("filtered", 0)]
            for source, kinds in sorted(facts.by_source.items())]
