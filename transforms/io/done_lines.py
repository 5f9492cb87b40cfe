"""What the inputs of a source stage became: the done lines a resumed run replays.

``done/STAGE/BATCH.jsonl`` holds a line per input (its ref, its samples' records and its reject
rows), written after their samples are staged, a batch of inputs a file (a file an input cost more
than the pipeline's own work per page). A kill loses at most the batch being gathered.
"""

from __future__ import annotations

import dataclasses
import json
import os

from vlcurate.transforms.data.rejects import RejectRecord
from vlcurate.transforms.io.blobs import StagedSample
from vlcurate.transforms.io.files import open_for_reading


def done_lines(done: list[tuple[tuple[str, str], list[StagedSample], list[RejectRecord]]]) -> bytes:
    """Each ``(ref, samples' records, reject rows)`` as a line of a done file."""
    lines = (json.dumps({"ref": list(ref), "samples": [_fields(record) for record in staged],
                         "rejects": [_fields(record) for record in rejects]},
                        sort_keys=True, separators=(",", ":")) for ref, staged, rejects in done)
    return "\n".join(lines).encode("utf-8") + b"\n"


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _fields(record) -> dict:
    """A flat record's fields by name, as they are: ``dataclasses.asdict`` deep-copies every value
    (about 0.1 ms a page in the pipeline's main process, where each page's done line is written)."""
    names = _FIELD_NAMES.get(type(record))
    if names is None:
        names = _FIELD_NAMES[type(record)] = tuple(field.name for field in dataclasses.fields(record))
    return {name: getattr(record, name) for name in names}


class Finished:
    """The done files of one stage, as an index from an input's ref to its line. Built when a stage
    starts (a resumed run's replay); a fresh run's is empty, so its lookups cost a dict miss."""

    def __init__(self, lines: dict[str, bytes]):
        self._lines = lines

    @classmethod
    def read(cls, folder: str) -> "Finished":
        lines: dict[str, bytes] = {}
        for path in _listed(folder, ".jsonl"):
            try:
                with open_for_reading(path) as handle:
                    data = handle.read()
            except OSError:  # gone since it was listed: its inputs are done again
                continue
            for line in data.splitlines():
                try:
                    ref = json.loads(line)["ref"]
                except (ValueError, KeyError, TypeError):  # not ours, or cut: its input is done again
                    continue
                lines[_ref_key(ref)] = line
        return cls(lines)

    def __len__(self) -> int:
        return len(self._lines)

    def get(self, ref: tuple[str, str]) -> tuple[list[StagedSample], list[RejectRecord]] | None:
        line = self._lines.get(_ref_key(ref))
        if line is None:
            return None
        doc = json.loads(line)
        return ([StagedSample(**record) for record in doc["samples"]],
                [RejectRecord(**record) for record in doc["rejects"]])


def _ref_key(ref) -> str:
    return "\x1f".join(ref)


def _listed(folder: str, suffix: str) -> list[str]:
    """The files directly in ``folder`` ending in ``suffix`` (none when it does not exist)."""
    if "://" not in folder:
        try:
            return sorted(os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(suffix))
        except OSError:
            return []
    from apache_beam.io.filesystems import FileSystems

    try:
        return sorted(meta.path for meta in FileSystems.match([f"{folder}/*{suffix}"])[0].metadata_list)
    except Exception:  # a folder that does not exist matches nothing
        return []
