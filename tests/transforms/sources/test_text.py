"""Text-only corpora: every document a text_only sample, every bad one a reject with its reason."""

from __future__ import annotations

import json

import pytest

from fixtures.dataflow import translate_for_dataflow
from vlcurate.pipelines import cli, filter_dataset, text_corpus
from vlcurate.transforms.data.rejects import Reject
from vlcurate.transforms.io.shard_reader import read_shard
from vlcurate.transforms.sources.text import TextConfig, read_text_records, text_sample

LINES = [
    json.dumps({"text": "  A first document.  "}).encode(),
    b"",
    json.dumps({"text": "x" * 300}).encode(),  # over the record cap below
    b"\xff\xfe not utf-8",
    b"{not json",
    json.dumps({"title": "no text field"}).encode(),
    json.dumps({"text": "   "}).encode(),
    json.dumps({"text": "A first document."}).encode(),  # the same text as line 1
]


def outcomes(path, config):
    out = []
    for record in read_text_records(str(path), config):
        try:
            out.append((record.locator, text_sample(record, config).text))
        except Reject as reject:
            out.append((record.locator, reject.reason))
    return out


def test_each_jsonl_line_is_a_document_or_a_reason(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_bytes(b"\n".join(LINES) + b"\n")
    assert outcomes(path, TextConfig(max_record_bytes=200)) == [
        ("line 1", "A first document."),
        ("line 3", "record_too_large"),
        ("line 4", "bad_input"),
        ("line 5", "bad_input"),
        ("line 6", "bad_input"),
        ("line 7", "text_empty"),
        ("line 8", "A first document."),
    ]


def test_a_text_file_is_one_document_keyed_by_its_text(tmp_path):
    (tmp_path / "a.md").write_text("# Notes\n\nSome prose.\n")
    (tmp_path / "b.txt").write_text("# Notes\n\nSome prose.")
    samples = [text_sample(r, TextConfig()) for name in ("a.md", "b.txt")
               for r in read_text_records(str(tmp_path / name), TextConfig())]
    assert [(s.source, s.category, s.locator, s.text) for s in samples] == [("text", "text_only", "", "# Notes\n\nSome prose.")] * 2
    assert samples[0].key == samples[1].key
    (tmp_path / "big.txt").write_text("y" * 100)
    with pytest.raises(Reject) as caught:
        list(read_text_records(str(tmp_path / "big.txt"), TextConfig(max_file_bytes=50)))
    assert caught.value.reason == "file_too_large"


def test_the_text_pipeline_balances_its_totals(tmp_path):
    corpus = tmp_path / "in"
    corpus.mkdir()
    (corpus / "docs.jsonl").write_bytes(b"\n".join(LINES) + b"\n")
    (corpus / "notes.md").write_text("A note on its own.")
    manifest = text_corpus.run(["--input", str(corpus), "--output", str(tmp_path / "out"), "--runner=FnApiRunner"])
    assert manifest["totals"] == {"inputs": 8, "samples": 3, "rejected": 3, "filtered": 2, "balanced": True}
    assert manifest["rejects"]["by_reason"] == {"bad_input": 3, "duplicate_key": 1, "text_empty": 1}
    texts = sorted(s.text for shard in manifest["shards"] for s in read_shard(f"{tmp_path}/out/{shard['name']}"))
    assert texts == ["A first document.", "A note on its own.", "x" * 300]


@pytest.mark.e2e
def test_the_text_pipeline_translates_for_dataflow(monkeypatch):
    translate_for_dataflow(text_corpus.run, "gs://vlcurate-test/text/", "gs://vlcurate-test/text-out", monkeypatch,
                           ["ListInputs", "TextDocuments"])


@pytest.mark.e2e
def test_the_filter_pipeline_translates_for_dataflow(tmp_path, monkeypatch):
    """`vlcurate filter` reads a dataset's manifest before it starts: a local dataset, a gs:// output."""
    dataset = tmp_path / "text"
    (tmp_path / "docs.txt").write_text("One document for the filter's dry run.\n")
    assert cli.main(["text", "--input", str(tmp_path / "docs.txt"), "--output", str(dataset)]) == 0
    translate_for_dataflow(filter_dataset.run, str(dataset), "gs://vlcurate-test/filtered", monkeypatch,
                           ["Shards"])
