"""`vlcurate sft` end to end on the bundled conversations: shards, rejects, labels, review queue."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile

import pytest

from fixtures.dataflow import translate_for_dataflow
from vlcurate.pipelines import cli, sft
from vlcurate.taxonomy.labeler import read_examples, train
from vlcurate.taxonomy.tree import load_taxonomy
from vlcurate.transforms.label.queue import dataset_queue, queue_files, read_review_queue
from vlcurate.transforms.io.shard_reader import read_shard
from fixtures import EXAMPLES, REPO

CONVERSATIONS = EXAMPLES / "sft" / "conversations"


@pytest.fixture(scope="module")
def labeler(tmp_path_factory):
    taxonomy = load_taxonomy()
    folder = tmp_path_factory.mktemp("labeler")
    train(read_examples(str(EXAMPLES / "sft" / "labelled.jsonl"), taxonomy), taxonomy, str(folder))
    return str(folder)


def run_sft(output, labeler, *extra):
    return sft.run(["--input", str(CONVERSATIONS), "--output", str(output), "--image-root", str(EXAMPLES),
                    "--labeler", labeler, "--runner=FnApiRunner", *extra])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, labeler):
    output = tmp_path_factory.mktemp("sft")
    return output, run_sft(output, labeler, "--target-mix", str(EXAMPLES / "sft" / "target-mix.yaml"))


def test_every_record_is_a_sample_or_a_reject(dataset):
    _, manifest = dataset
    assert manifest["totals"] == {"inputs": 13, "samples": 10, "rejected": 3, "filtered": 0, "balanced": True}
    assert manifest["rejects"]["by_reason"] == {"sft_image_mismatch": 1, "sft_image_missing": 1, "sft_malformed": 1}
    assert manifest["categories"] == {"interleaved": 9, "text_only": 1}
    assert manifest["pipeline"] == "sft" and manifest["config"]["sft"]["label"]["min_confidence"] == 0.5
    assert set(manifest["models"]) == {"langid", "labeler"}


def test_samples_carry_conversation_language_and_label(dataset):
    output, manifest = dataset
    samples = [s for shard in manifest["shards"] for s in read_shard(f"{output}/{shard['name']}")]
    assert len(samples) == 10
    formats = sorted(s.meta["sft"]["format"] for s in samples)
    assert formats == ["deepseek"] * 5 + ["llava"] * 2 + ["sharegpt"] * 3
    for sample in samples:
        assert sample.source == "sft" and sample.conversation[-1]["role"] == "Assistant"
        images = [i for message in sample.conversation for i in message.get("images", [])]
        assert images == list(range(len(sample.images)))
        assert sample.meta["language"]["id"] == "en"
        assert sample.taxonomy["version"] == "1" and sample.taxonomy["status"] in ("labelled", "review")
        assert (sample.taxonomy["id"] is None) == (sample.taxonomy["status"] == "review")
    labelled = sum(s.taxonomy["status"] == "labelled" for s in samples)
    assert sum(n for label, n in manifest["labels"].items() if label != "(review)") == labelled
    assert manifest["labels"].get("(review)", 0) == 10 - labelled == manifest["counts"]["review"]


def test_unsure_samples_are_queued_for_review(dataset):
    output, manifest = dataset
    queue = dataset_queue(str(output))  # one file per shard that holds samples to review, rows by key
    assert len(queue) == manifest["counts"]["review"] == len({row["key"] for row in queue})
    shards = {shard["name"].removeprefix("shards/").removesuffix(".tar") for shard in manifest["shards"]}
    for path in queue_files(str(output)):
        rows = read_review_queue(path)
        assert path.rsplit("/", 1)[-1].removesuffix("-review.jsonl") in shards
        assert rows and [row["key"] for row in rows] == sorted(row["key"] for row in rows)
    assert all(row["label"] is None and row["text"] and len(row["candidates"]) == 3 for row in queue)
    # What an editor decides by: the whole conversation, the images where the dataset holds them, the origin.
    samples = {s.key: s for shard in manifest["shards"] for s in read_shard(f"{output}/{shard['name']}")}
    for row in queue:
        sample = samples[row["key"]]
        assert row["conversation"] == sample.conversation and len(row["conversation"]) >= 2
        assert row["source"] == {"pipeline": "sft", "uri": sample.uri, "locator": sample.locator}
        with tarfile.open(output / "shards" / row["images"]["shard"]) as tar:
            names = set(tar.getnames())
        assert row["images"]["members"] == sample.image_names() and set(sample.image_names()) <= names
    assert any(row["images"]["members"] for row in queue)


def test_a_queue_the_editor_labelled_checks_clean_and_trains_the_labeler(dataset, tmp_path):
    output, _ = dataset
    [path, *_] = queue_files(str(output))
    rows = read_review_queue(path)
    rows[0]["label"] = rows[0]["candidates"][0]["id"]  # the editor's choice; the other rows stay null
    queue = tmp_path / "review.jsonl"
    queue.write_text("".join(json.dumps(row) + "\n" for row in rows))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    checked = subprocess.run([sys.executable, "-m", "vlcurate.pipelines.cli", "taxonomy", "check-labels", str(queue)],
                             capture_output=True, text=True, env=env)
    assert (checked.returncode, checked.stderr) == (0, "")
    assert checked.stdout == (f"{queue}: {len(rows)} lines, 1 labelled with a leaf of taxonomy 1, "
                              f"{len(rows) - 1} unlabelled (null), 0 problems\n")
    trained = subprocess.run([sys.executable, "-m", "vlcurate.pipelines.cli", "taxonomy", "train", "--epoch", "5",
                              "--examples", str(EXAMPLES / "sft" / "labelled.jsonl"), str(queue),
                              "--output", str(tmp_path / "labeler")], capture_output=True, text=True, env=env)
    assert trained.returncode == 0, trained.stderr
    assert trained.stdout.startswith("trained on 891 examples")  # 890 examples and the one labelled row


def test_the_same_input_gives_the_same_shards(tmp_path, dataset, labeler):
    output, manifest = dataset
    again = run_sft(tmp_path, labeler)
    assert [s["sha256"] for s in again["shards"]] == [s["sha256"] for s in manifest["shards"]]
    assert [open(path, "rb").read() for path in queue_files(str(tmp_path))] == [
        open(path, "rb").read() for path in queue_files(str(output))]


def test_without_a_labeler_only_the_language_is_added(tmp_path):
    manifest = sft.run(["--input", str(CONVERSATIONS / "deepseek.jsonl"), "--output", str(tmp_path),
                        "--image-root", str(EXAMPLES), "--runner=FnApiRunner"])
    assert manifest["totals"]["samples"] == 5 and manifest["labels"] == {} and "review" not in manifest["counts"]
    sample = next(read_shard(str(tmp_path / manifest["shards"][0]["name"])))
    assert sample.taxonomy is None and sample.meta["language"]["id"] == "en"


def test_the_cli_prints_the_mix_against_the_target(tmp_path, labeler, capsys):
    assert cli.main(["sft", "--input", str(CONVERSATIONS), "--output", str(tmp_path), "--image-root", str(EXAMPLES),
                     "--labeler", labeler, "--target-mix", "recognition=1,safety=1"]) == 0
    out = capsys.readouterr().out
    assert "totals        inputs 13 = samples 10 + rejected 3 + filtered 0 (balanced)" in out
    assert [line.split()[0] for line in out.splitlines() if line.startswith(("recognition ", "safety "))] == [
        "recognition", "safety"]
    assert "50.0%" in out
    with pytest.raises(SystemExit, match="--target-mix: target mix names 'ocr', not a main category"):
        cli.main(["sft", "--input", str(CONVERSATIONS), "--output", str(tmp_path / "x"), "--target-mix", "ocr=1"])


def test_an_unusable_labeler_stops_the_run_before_it_starts(tmp_path):
    with pytest.raises(SystemExit, match="--labeler .*missing"):
        run_sft(tmp_path / "out", str(tmp_path / "missing"))
    assert not (tmp_path / "out").exists()


def test_the_sft_pipeline_translates_for_dataflow(monkeypatch):
    translate_for_dataflow(sft.run, "gs://vlcurate-test/sft/", "gs://vlcurate-test/sft-out", monkeypatch,
                           ["ListInputs", "SftRecords", "Label"])


def test_help_lists_the_sft_flags(capsys):
    assert cli.main(["sft", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--sft-format", "--image-root", "--labeler", "--min-confidence", "--target-mix", "--max-record-bytes"):
        assert flag in out
