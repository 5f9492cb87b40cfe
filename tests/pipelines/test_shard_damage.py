"""A dataset with a cut shard, used as a user would: `vlcurate filter` keeps the samples before the
cut and books the shard's loss as one read_error row (totals balanced, the console summary says
so); `vlcurate inspect` names the damaged shard and exits non-zero; `vlcurate report` still writes
its page and notes the shard; `vlcurate train --check` skips it, counted, its name logged. Real
shards from `vlcurate text`, real readers, no mocks."""

from __future__ import annotations

import io
import json
import tarfile

import pyarrow.parquet as pq
import pytest

from vlcurate.pipelines import cli
from vlcurate.transforms.io.manifest import read_manifest
from vlcurate.transforms.io.shard_reader import BLOCK, read_shard

DOCUMENTS = 12


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    """A text dataset of several shards, its biggest one cut inside its third sample's data:
    (dataset folder, the cut shard's manifest entry, the keys before the cut, every other key)."""
    root = tmp_path_factory.mktemp("damage")
    corpus = root / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"text": f"Document number {n} of the damaged dataset, "
                                                  f"long enough to keep. " * 3}) + "\n" for n in range(DOCUMENTS)))
    dataset = root / "text"
    assert cli.main(["text", "--input", str(corpus), "--output", str(dataset), "--max-samples-per-shard", "4"]) == 0
    manifest = read_manifest(str(dataset))
    assert len(manifest["shards"]) >= 2 and manifest["totals"]["samples"] == DOCUMENTS
    victim = max(manifest["shards"], key=lambda shard: shard["samples"])
    assert victim["samples"] >= 3
    path = dataset / victim["name"]
    data = path.read_bytes()
    keys, starts = [], []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for info in tar.getmembers():
            key = info.name.partition(".")[0]
            if not keys or keys[-1] != key:
                keys.append(key)
                starts.append(info.offset)
    path.write_bytes(data[:starts[2] + BLOCK + 10])  # inside the third sample's first member
    others = [s.key for shard in manifest["shards"] if shard is not victim
              for s in read_shard(f"{dataset}/{shard['name']}")]
    return dataset, victim, keys[:2], others


def test_filter_keeps_the_samples_before_the_cut_and_books_the_loss(damaged, tmp_path, capsys):
    dataset, victim, before, others = damaged
    output = tmp_path / "filtered"
    assert cli.main(["filter", "--input", str(dataset), "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    manifest = read_manifest(str(output))
    kept = sorted(s.key for shard in manifest["shards"] for s in read_shard(f"{output}/{shard['name']}"))
    assert kept == sorted(others + before)
    assert manifest["totals"] == {"inputs": len(kept) + 1, "samples": len(kept), "rejected": 1, "filtered": 0,
                                  "balanced": True}
    assert manifest["rejects"]["by_reason"] == {"read_error": 1}
    assert manifest["rejects"]["by_stage"] == {"read": {"read_error": 1}}
    [row] = pq.read_table(str(output / manifest["rejects"]["files"][0]["name"])).to_pylist()
    assert row["reason"] == "read_error" and row["stage"] == "read"
    assert row["uri"] == f"{dataset}/{victim['name']}"
    assert victim["name"] in row["detail"] and "truncated" in row["detail"]
    assert f"2 of its {victim['samples']} samples read before it" in row["detail"]
    assert "rejected      1: read_error 1" in printed and "  read: read_error 1" in printed


def test_inspect_names_the_damaged_shard_and_fails(damaged, capsys):
    dataset, victim, _, _ = damaged
    assert cli.main(["inspect", str(dataset)]) == 1
    captured = capsys.readouterr()
    assert "totals        inputs" in captured.out  # the summary is still printed
    damage = [line for line in captured.err.splitlines() if "damaged shard" in line]
    assert len(damage) == 1 and victim["name"] in damage[0] and "truncated" in damage[0]
    assert "1 of " in captured.err


def test_inspect_verify_reads_every_shard_and_finds_same_size_damage(damaged, tmp_path, capsys):
    dataset, victim, _, _ = damaged
    copy = tmp_path / "copy"
    manifest = read_manifest(str(dataset))
    for name in ["manifest.json"] + [shard["name"] for shard in manifest["shards"]]:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes((dataset / name).read_bytes())
    other = next(shard for shard in manifest["shards"] if shard is not victim and shard["name"] != victim["name"])
    flipped = bytearray((copy / other["name"]).read_bytes())
    flipped[BLOCK + 5] ^= 0x20  # a letter of the first sample's json: same size, other bytes
    (copy / other["name"]).write_bytes(bytes(flipped))
    assert cli.main(["inspect", str(copy)]) == 1  # sizes only: the cut shard
    assert other["name"] not in capsys.readouterr().err
    assert cli.main(["inspect", str(copy), "--verify"]) == 1
    err = capsys.readouterr().err
    assert victim["name"] in err and other["name"] in err and "2 of " in err


def test_report_still_writes_its_page_and_notes_the_shard(damaged, tmp_path, capsys):
    dataset, victim, _, _ = damaged
    page = tmp_path / "report.html"
    assert cli.main(["report", str(dataset), "--output", str(page), "--samples-per-category", "100"]) == 0
    html = page.read_text(encoding="utf-8")
    assert 'id="damaged"' in html and victim["name"] in html and "truncated" in html


def test_a_whole_dataset_inspects_clean(damaged, tmp_path, capsys):
    dataset, _, _, _ = damaged
    output = tmp_path / "filtered"
    assert cli.main(["filter", "--input", str(dataset), "--output", str(output)]) == 0
    capsys.readouterr()
    assert cli.main(["inspect", str(output), "--verify"]) == 0
    assert "damaged" not in capsys.readouterr().err


def test_the_trainer_skips_the_shard_counts_it_and_logs_its_name(damaged, capsys):
    dataset, victim, before, others = damaged
    assert cli.main(["train", "--shards", str(dataset), "--check", "--mix", "text_only=1", "--workers", "0"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out[out.index("{"):])
    assert report == {"skipped": {"truncated_shard": 1}, "usable": {"text_only": len(others) + len(before)}}
    logged = [line for line in out.splitlines() if "bad shard" in line]
    assert len(logged) == 1 and victim["name"] in logged[0] and "truncated" in logged[0]
