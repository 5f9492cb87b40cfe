"""Text-only corpora -> ``text_only`` samples: the language data DeepSeek-VL keeps in the mix.

A ``.txt`` or ``.md`` file is one document; a ``.jsonl`` file holds one document per line as
``{"text": ...}`` (other fields are ignored). The key is the text's sha256, so a document that
appears twice is one sample. Plain Python; the Beam stages are transforms/sources/records.py's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator

from vlcurate import __version__
from vlcurate.transforms.io.files import jsonl_lines, read_capped
from vlcurate.transforms.data.rejects import Reject
from vlcurate.transforms.data.sample import Sample, make_key



@dataclasses.dataclass(frozen=True)
class TextConfig:
    max_file_bytes: int = 64 * 1024 * 1024  # a .txt/.md document, read whole
    max_record_bytes: int = 4 * 1024 * 1024  # a .jsonl line
    min_chars: int = 1  # shorter documents (after stripping) are filtered as text_empty


@dataclasses.dataclass(frozen=True)
class TextRecord:
    uri: str
    locator: str  # "" for a whole file, "line N" in a .jsonl file
    data: bytes
    problem: tuple[str, str] | None = None


def read_text_records(uri: str, config: TextConfig) -> Iterator[TextRecord]:
    if not uri.lower().endswith(".jsonl"):
        yield TextRecord(uri, "", read_capped(uri, config.max_file_bytes))
        return
    for locator, line in jsonl_lines(uri, config.max_record_bytes):
        if line is None:
            yield TextRecord(uri, locator, b"", ("record_too_large", f"over {config.max_record_bytes} bytes"))
        else:
            yield TextRecord(uri, locator, line)


def text_sample(record: TextRecord, config: TextConfig) -> Sample:
    if record.problem:
        raise Reject(*record.problem)
    try:
        text = record.data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Reject("bad_input", f"not UTF-8: {error}") from error
    if record.locator:  # a JSONL line
        try:
            doc = json.loads(text)
        except ValueError as error:
            raise Reject("bad_input", f"not JSON: {error}") from error
        if not isinstance(doc, dict) or not isinstance(doc.get("text"), str):
            raise Reject("bad_input", "a line needs a string field text")
        text = doc["text"]
    text = text.strip()
    if len(text) < config.min_chars:
        raise Reject("text_empty", f"{len(text)} characters, at least {config.min_chars} wanted")
    return Sample(
        key=make_key("text", hashlib.sha256(text.encode("utf-8")).hexdigest()),
        source="text",
        category="text_only",
        uri=record.uri,
        locator=record.locator,
        text=text,
        text_source="text",
        provenance={"vlcurate": __version__},
    )
