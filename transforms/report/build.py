"""The dataset report: report.html beside a dataset's manifest, one self-contained offline page.

It shows the funnel (counts per stage and reason), the CLIP scores against the threshold, the
category mix against a target, samples per source and per language, taxonomy labels, OCR
confidence, image sizes, throughput, a contact sheet of sample thumbnails with their text, and
examples of the rows each reason rejected or filtered (transforms/report/examples.py). The sheet
and the examples are a seeded random sample (``rank``): the same every time, not the smallest
keys. Plain functions, no Beam: the manifest is read whole, the index and rejects files are
streamed in batches, and only the shards that hold the samples shown are opened, each read only as
far as those samples.

The page is static HTML: no scripts, no external URLs (figures and thumbnails are data: URIs),
every dataset string escaped, and a Content-Security-Policy that would block a script or a
fetch even if one slipped through. The same dataset gives the same bytes.
"""

from __future__ import annotations

import base64
import bisect
import collections
import dataclasses
import hashlib
import html
import io
import statistics
from collections.abc import Iterable

from vlcurate.transforms.io.files import atomic_write, open_for_reading
from vlcurate.transforms.io.manifest import read_manifest

REPORT_NAME = "report.html"
SHEET_SAMPLES = 6  # contact-sheet samples per category: a seeded random sample, the same every run
SEED = "vlcurate-report"  # the seed of the sheet's and the examples' random sample
THUMB_SIDE = 256
TEXT_CHARS = 300
TOP_LEAVES = 20
MAX_THUMB_PIXELS = 64_000_000  # a sample image larger than this is not decoded for a thumbnail
INDEX_COLUMNS = ("key", "shard", "source", "category", "uri", "locator", "image_count", "image_width",
                 "image_height", "image_bytes", "scores", "language")


@dataclasses.dataclass
class IndexFacts:
    """What the report needs from the index files: score and size columns, and the sheet's picks."""

    rows: int = 0
    clip: list = dataclasses.field(default_factory=list)
    ocr_confidence: list = dataclasses.field(default_factory=list)
    widths: list = dataclasses.field(default_factory=list)
    heights: list = dataclasses.field(default_factory=list)
    image_bytes: list = dataclasses.field(default_factory=list)
    picks: dict = dataclasses.field(default_factory=dict)  # category -> [(rank, key, row)], by rank
    sources: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    languages: collections.Counter = dataclasses.field(default_factory=collections.Counter)  # None: not run
    shards: dict = dataclasses.field(default_factory=dict)  # of the ``wanted`` keys: key -> its shard


def write_report(dataset: str, target_mix: dict[str, float] | None = None, output: str | None = None,
                 per_category: int = SHEET_SAMPLES) -> str:
    """Write ``{dataset}/report.html`` (or ``output``) atomically; returns its path.

    ``target_mix`` maps categories (pretraining categories or taxonomy main categories) to
    shares; None takes the run's own ``target_mix`` from the manifest's config where it has one.
    """
    page = build_report(dataset, target_mix, per_category).encode("utf-8")
    path = output or join(dataset, REPORT_NAME)
    atomic_write(path, lambda out: out.write(page))
    return path


def join(folder: str, name: str) -> str:
    return folder.rstrip("/") + "/" + name


def dataset_files(dataset: str, listed: Iterable[str], folder: str) -> list[str]:
    """Paths of the files the manifest lists, or (a manifest that lists none) those in ``folder``."""
    names = sorted(set(filter(None, listed)))
    if names:
        return [join(dataset, name) for name in names]
    from apache_beam.io.filesystems import FileSystems

    matched = FileSystems.match([join(dataset, f"{folder}/*.parquet")])[0].metadata_list
    return sorted(meta.path for meta in matched)


def target_of(manifest: dict, given: dict | None) -> dict | None:
    """The target mix: given, else the config's ``target_mix``, else one a stage's config holds."""
    if given is not None:
        return dict(given)
    config = manifest.get("config") or {}
    candidates = [config] + [value for _, value in sorted(config.items()) if isinstance(value, dict)]
    for candidate in candidates:
        if isinstance(candidate.get("target_mix"), dict):
            return candidate["target_mix"]
    return None


# --- reading -----------------------------------------------------------------------------------


def rank(identity: str) -> str:
    """An item's place in the report's seeded random order (sha256 of the seed and the item's key,
    or what names a keyless reject row): independent of the order files are read in."""
    return hashlib.sha256(f"{SEED}\0{identity}".encode("utf-8")).hexdigest()


def scan_index(paths: Iterable[str], per_category: int = SHEET_SAMPLES, batch_rows: int = 16384,
               wanted: frozenset = frozenset()) -> IndexFacts:
    """Stream the index files a batch at a time, keeping only the columns the report plots, and
    the shard of each ``wanted`` key."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    facts = IndexFacts()
    for path in paths:
        with open_for_reading(path) as handle:
            parquet = pq.ParquetFile(handle)
            columns = [name for name in INDEX_COLUMNS if name in parquet.schema_arrow.names]
            for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
                facts.rows += batch.num_rows
                names = batch.schema.names
                if "scores" in names:
                    scores = batch.column("scores")
                    for name, into in (("clip", facts.clip), ("ocr_confidence", facts.ocr_confidence)):
                        values = pc.filter(scores.items, pc.equal(scores.keys, name)).to_pylist()
                        into.extend(v for v in values if v is not None)
                if {"image_count", "image_width", "image_height"} <= set(names):
                    with_image = pc.greater(pc.fill_null(batch.column("image_count"), 0), 0)
                    facts.widths.extend(pc.filter(batch.column("image_width"), with_image).to_pylist())
                    facts.heights.extend(pc.filter(batch.column("image_height"), with_image).to_pylist())
                    if "image_bytes" in names:
                        facts.image_bytes.extend(pc.filter(batch.column("image_bytes"), with_image).to_pylist())
                if "source" in names:
                    facts.sources.update(batch.column("source").to_pylist())
                if "language" in names:
                    facts.languages.update(batch.column("language").to_pylist())
                if wanted and {"key", "shard"} <= set(names):
                    facts.shards.update((key, shard) for key, shard in zip(batch.column("key").to_pylist(),
                                                                           batch.column("shard").to_pylist())
                                        if key in wanted)
                if per_category and {"key", "category", "shard"} <= set(names):
                    _pick(facts.picks, batch, per_category)
    return facts


def _pick(picks: dict, batch, per_category: int) -> None:
    """Keep, per category, the ``per_category`` rows of the smallest ``rank`` seen so far."""
    keys = batch.column("key").to_pylist()
    categories = batch.column("category").to_pylist()
    for i, (key, category) in enumerate(zip(keys, categories)):
        chosen = picks.setdefault(category, [])
        place = rank(key)
        if len(chosen) >= per_category and place >= chosen[-1][0]:
            continue
        row = batch.slice(i, 1).to_pylist()[0]
        row.pop("scores", None)
        bisect.insort(chosen, (place, key, row))
        del chosen[per_category:]


def clip_rejects(paths: Iterable[str]) -> tuple[list[float], list[float]]:
    """(scores, thresholds) of the clip_below_threshold reject rows, from their typed ``score`` and
    ``threshold`` columns (rejects files written before those columns give none)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    scores, thresholds = [], set()
    for path in paths:
        with open_for_reading(path) as handle:
            parquet = pq.ParquetFile(handle)
            if not {"reason", "score", "threshold"} <= set(parquet.schema_arrow.names):
                continue
            for batch in parquet.iter_batches(batch_size=16384, columns=["reason", "score", "threshold"]):
                clip = pc.equal(batch.column("reason"), "clip_below_threshold")
                scores.extend(v for v in pc.filter(batch.column("score"), clip).to_pylist() if v is not None)
                thresholds.update(round(v, 6) for v in pc.filter(batch.column("threshold"), clip).to_pylist()
                                  if v is not None)
    return scores, sorted(thresholds)


def sheet_samples(dataset: str, picks: dict, damaged: list | None = None, found: dict | None = None) -> dict:
    """category -> the picked samples in key order, read from their shards (``found``: key ->
    sample, already read by ``read_samples``)."""
    if found is None:
        found = read_samples(dataset, [(key, row["shard"]) for chosen in picks.values() for _, key, row in chosen],
                             damaged)
    return {category: [found[key] for _, key, _ in sorted(chosen, key=lambda pick: pick[1]) if key in found]
            for category, chosen in sorted(picks.items())}


def read_samples(dataset: str, keys: Iterable[tuple[str, str]], damaged: list | None = None) -> dict:
    """key -> sample for each (key, shard) given, read from their shards; a shard is read only up
    to the last wanted key in it (a shard is sorted by key). A damaged shard gives the samples
    before the damage; its ShardError is appended to ``damaged``."""
    from vlcurate.transforms.io import shard_reader

    wanted: dict[str, set] = {}
    for key, shard in keys:
        wanted.setdefault(shard, set()).add(key)
    found = {}
    for shard, names in sorted(wanted.items()):
        last = max(names)
        try:
            for sample in shard_reader.read_shard(join(dataset, f"shards/{shard}.tar")):
                if sample.key in names:
                    found[sample.key] = sample
                if sample.key >= last:
                    break
        except shard_reader.ShardError as error:
            if damaged is not None:
                damaged.append(error)
    return found


def thumbnail(data: bytes, side: int = THUMB_SIDE) -> str | None:
    """A data: URI of a JPEG with the long side at most ``side``; None when it does not decode."""
    from PIL import Image as PILImage

    from vlcurate.transforms.data.images import open_image
    from vlcurate.transforms.data.rejects import Reject

    try:
        image, _ = open_image(data, MAX_THUMB_PIXELS)
    except Reject:
        return None
    image.thumbnail((side, side), PILImage.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def excerpt(sample, limit: int = TEXT_CHARS) -> str:
    """The start of a sample's text, or of its conversation's first user turn."""
    text = sample.text or ""
    if not text.strip() and sample.conversation:
        for turn in sample.conversation:
            if isinstance(turn, dict) and str(turn.get("role", "")).lower() == "user":
                text = str(turn.get("content", ""))
                break
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rstrip() + " ..."


# --- the page ----------------------------------------------------------------------------------


def build_report(dataset: str, target_mix: dict | None = None, per_category: int = SHEET_SAMPLES) -> str:
    """The report page of one dataset folder, as an HTML string."""
    from vlcurate.transforms.report import examples
    from vlcurate.transforms.report import html as page

    manifest = read_manifest(dataset)
    shards = manifest.get("shards") or []
    rejects = manifest.get("rejects") or {}
    rejects_names = [(entry or {}).get("name") for entry in rejects.get("files") or [rejects.get("file")]]
    rejects_files = dataset_files(dataset, rejects_names, "rejects")
    rejected_clip, thresholds = clip_rejects(rejects_files)
    dropped = examples.scan_rejects(rejects_files)
    facts = scan_index(dataset_files(dataset, [(s.get("index") or {}).get("name") for s in shards], "index"),
                       per_category, wanted=examples.wanted_keys(dropped))
    damaged: list = []
    picked = [(key, row["shard"]) for chosen in facts.picks.values() for _, key, row in chosen] if per_category else []
    found = read_samples(dataset, [*picked, *facts.shards.items()], damaged)  # one pass over each shard
    sheet = sheet_samples(dataset, facts.picks, found=found) if per_category else {}
    sections = [
        page.summary(dataset, manifest),
        page.funnel(manifest),
        page.clip(facts.clip, rejected_clip, _clip_lines(manifest, thresholds)),
        page.mix(manifest, target_of(manifest, target_mix)),
        page.sources(facts, examples.by_source_table(dropped)),
        page.languages(facts),
        page.labels(manifest),
        page.ocr(facts.ocr_confidence),
        page.sizes(facts),
        page.throughput(manifest),
        page.contact_sheet(sheet, per_category),
        examples.section(dropped, found),
    ]
    if damaged:  # the sheet shows what was read before the damage; say which shards it cut short
        rows = [[error.path, error.reason, error.offset, error.detail] for error in damaged]
        sections.append(page.section("damaged", "Damaged shards",
                                     "<p>These shards could not be read whole (vlcurate inspect DATASET --verify "
                                     "checks them all); the samples above come from before the damage.</p>",
                                     page.table(["shard", "problem", "byte", "detail"], rows, {2})))
    return page.document(f"vlcurate report: {dataset}", sections)


def _clip_lines(manifest: dict, applied: list[float]) -> list[tuple[float, str]]:
    """The thresholds to draw: those the rejects' ``threshold`` column holds (the ones applied),
    else the run's recorded one(s), else the config's --clip-min-score."""
    if applied:
        return [(value, f"threshold {value:.4g}") for value in applied[:6]]
    recorded = (manifest.get("quality") or {}).get("clip_threshold")
    if isinstance(recorded, (int, float)):
        return [(float(recorded), f"threshold {recorded:.4g}")]
    if isinstance(recorded, dict):
        numbers = {k: v for k, v in sorted(recorded.items()) if isinstance(v, (int, float))}
        return [(float(v), f"threshold {k} {v:.4g}") for k, v in numbers.items()]
    floor = (((manifest.get("config") or {}).get("quality") or {}).get("clip") or {}).get("min_score")
    return [(float(floor), f"min score {floor:.4g}")] if isinstance(floor, (int, float)) else []


def svg_uri(svg: bytes) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


def median(values) -> str:
    if not values:
        return "-"
    middle = statistics.median(values)
    return f"{middle:,.0f}" if float(middle).is_integer() or abs(middle) >= 1000 else f"{middle:,.4g}"


def escape(value) -> str:
    return html.escape(str(value), quote=True)
