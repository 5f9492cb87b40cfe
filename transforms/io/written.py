"""Which files in an output folder its dataset wrote: all that `--overwrite` may delete.

The dataset's run records name them. Each run's plan (``runs/run-NNNN.plan.json``) gives its shard
prefix, and the sink names every file of a run from it (``shards/PREFIX-NNNNNN.tar``,
``index/PREFIX-NNNNNN.parquet``, ``rejects/PREFIX-rejects-NNNNNN.parquet``,
``review/PREFIX-NNNNNN-review.jsonl``), so the files of an interrupted run are known too; each
finished run's manifest, and ``manifest.json``, list their files by name. Anything else (a user's
``shards/notes.txt``) was not written by the dataset.
"""

from __future__ import annotations

import re

from vlcurate.transforms.io.manifest import MANIFEST
from vlcurate.transforms.io.runs import RUNS, read_json

_RECORD = re.compile(rf"{RUNS}/run-\d{{4}}(\.plan)?\.json")
_TOP = (MANIFEST, "report.html")


def split_written(output: str, paths: list[str]) -> tuple[list[str], list[str]]:
    """(the ``paths`` inside ``output`` that its dataset wrote, the others)."""
    root = output.rstrip("/") + "/"
    relative = {path: path[len(root):] if path.startswith(root) else path for path in paths}
    records = [name for name in relative.values() if _RECORD.fullmatch(name)]
    named, prefixes = set(_TOP) | set(records), set()
    for name in [MANIFEST, *records]:
        doc = _read(root + name)
        if name.endswith(".plan.json"):
            prefixes.add(doc.get("prefix"))
        else:
            named |= _listed(doc)
            prefixes.add(doc.get("config", {}).get("shards", {}).get("prefix"))  # a dataset from before runs/
    pattern = _by_prefix({prefix for prefix in prefixes if isinstance(prefix, str) and prefix})
    written = {path for path, name in relative.items() if name in named or (pattern and pattern.fullmatch(name))}
    return [path for path in paths if path in written], [path for path in paths if path not in written]


def _read(uri: str) -> dict:
    try:
        doc = read_json(uri)
    except ValueError:  # a damaged record names nothing; its files then count as unknown
        return {}
    return doc if isinstance(doc, dict) else {}


def _listed(manifest: dict) -> set[str]:
    """The files a manifest lists: shards with their index and review files, and rejects files."""
    names = set()
    for shard in manifest.get("shards") or []:
        if isinstance(shard, dict) and isinstance(shard.get("name"), str):
            names.add(shard["name"])
            names.add(f"review/{shard['name'].rsplit('/', 1)[-1].removesuffix('.tar')}-review.jsonl")
            names.add(str((shard.get("index") or {}).get("name")))
    for entry in (manifest.get("rejects") or {}).get("files") or []:
        if isinstance(entry, dict):
            names.add(str(entry.get("name")))
    return names


def _by_prefix(prefixes: set[str]):
    if not prefixes:
        return None
    alternatives = "|".join(re.escape(prefix) for prefix in sorted(prefixes))
    return re.compile(rf"shards/(?:{alternatives})-\d{{6}}\.tar|index/(?:{alternatives})-\d{{6}}\.parquet|"
                      rf"rejects/(?:{alternatives})-rejects-\d{{6}}\.parquet|review/(?:{alternatives})-\d{{6}}-review\.jsonl")
