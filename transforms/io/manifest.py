"""manifest.json: the run's config, versions, totals, per-shard files and per-reason rejects."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import platform

from vlcurate import __version__
from vlcurate.transforms.io.files import WrittenFile, read_capped, write_bytes
from vlcurate.transforms.data.rejects import Reject, is_filtered

MANIFEST_SCHEMA = "vlcurate.manifest/1"
MANIFEST = "manifest.json"
# A manifest lists every shard; even a million shards stay well under this (hostile input is capped).
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
_LIBRARIES = ("apache-beam", "pymupdf", "pyarrow", "pillow", "numpy", "webdataset", "rapidocr", "onnxruntime",
              "tesserocr")


def library_versions() -> dict[str, str]:
    versions = {"vlcurate": __version__, "python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def build_manifest(run: dict, counts: dict[str, int], shards, rejects_files: list[WrittenFile], reject_counts,
                   facts: dict | None = None) -> dict:
    """The manifest document.

    ``run`` holds the pipeline name, its config and model pins; ``counts`` the pipeline's own
    counters, of which ``inputs`` is the number of input units (documents that failed as a whole,
    plus pages); ``rejects_files`` the rejects parquet files (one per bucket of rows, written in
    parallel); ``reject_counts`` is ((stage, reason), count) pairs; ``facts`` what the run's
    stages decided that a later run must know (the CLIP cut of a keep fraction).
    """
    shards = sorted(shards, key=lambda record: record.name)
    samples = sum(record.samples for record in shards)
    categories: dict[str, int] = {}
    text_sources: dict[str, int] = {}
    labels: dict[str, int] = {}
    for record in shards:
        for category, count in record.categories:
            categories[category] = categories.get(category, 0) + count
        for source, count in record.text_sources:
            text_sources[source] = text_sources.get(source, 0) + count
        for label, count in record.labels:
            labels[label] = labels.get(label, 0) + count
    by_stage: dict[str, dict[str, int]] = {}
    by_reason: dict[str, int] = {}
    rejected = filtered = 0
    for (stage, reason), count in sorted(reject_counts):
        by_stage.setdefault(stage, {})[reason] = count
        by_reason[reason] = by_reason.get(reason, 0) + count
        if is_filtered(reason):
            filtered += count
        else:
            rejected += count
    inputs = counts.get("inputs", 0)
    return {
        "schema": MANIFEST_SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "pipeline": run.get("pipeline"),
        "config": run.get("config", {}),
        "models": run.get("models", {}),
        "versions": library_versions(),
        "counts": dict(sorted(counts.items())),
        "totals": balance(inputs, samples, rejected, filtered),
        "categories": dict(sorted(categories.items())),
        # Where the samples' text came from (pdf-text-layer, html, ocr:ppocr, ...; "" for none).
        "text_sources": dict(sorted(text_sources.items())),
        # Taxonomy leaves of the labelled samples ("(review)": below --min-confidence, unlabelled).
        "labels": dict(sorted(labels.items())),
        "rejects": {
            "by_reason": dict(sorted(by_reason.items())),
            "by_stage": by_stage,
            "files": [_file_entry("rejects", written) for written in sorted(rejects_files, key=lambda w: w.path)],
        },
        **({"facts": facts} if facts else {}),
        "shards": [
            {
                "name": f"shards/{record.name}.tar",
                "samples": record.samples,
                "bytes": record.tar.bytes,
                "sha256": record.tar.sha256,
                "index": _file_entry("index", record.index),
            }
            for record in shards
        ],
    }


def balance(inputs: int, samples: int, rejected: int, filtered: int, parts_balanced: bool = True) -> dict:
    """The manifest's totals and the balance they must keep: every input is a sample or a reject
    row (rejected or filtered); anything else is a bug in a stage. ``parts_balanced``: for a
    merged manifest, whether every run it merges balanced on its own."""
    return {
        "inputs": inputs,
        "samples": samples,
        "rejected": rejected,
        "filtered": filtered,
        "balanced": parts_balanced and inputs == samples + rejected + filtered,
    }


def _file_entry(folder: str, written: WrittenFile) -> dict:
    """A written file as the manifest names it: relative to the output folder."""
    return {"name": f"{folder}/{written.path.rsplit('/', 1)[-1]}", "bytes": written.bytes, "sha256": written.sha256}


def write_manifest(output: str, manifest: dict, name: str = MANIFEST) -> WrittenFile:
    data = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"
    return write_bytes(f"{output}/{name}", data)


class ManifestError(ValueError):
    """A dataset's manifest that is missing, unreadable or not a vlcurate manifest."""


def read_manifest(dataset: str, name: str = MANIFEST) -> dict:
    """The manifest of the dataset folder ``dataset`` (local or gs://), the one reader every command
    and the trainer use; a missing or malformed one is a ``ManifestError`` that names the file."""
    path = f"{dataset.rstrip('/')}/{name}"
    try:
        data = read_capped(path, MAX_MANIFEST_BYTES)
    except Reject as error:  # missing, unreadable, or over the cap
        raise ManifestError(f"{path}: {error.detail}; is {dataset} a dataset folder?") from error
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ManifestError(f"{path}: not a JSON manifest ({error})") from error
    if not isinstance(manifest, dict) or not isinstance(manifest.get("shards", []), list):
        raise ManifestError(f"{path}: not a vlcurate manifest")
    return manifest
