"""`vlcurate inspect`: a dataset's summary, one sample by key or a shard's first, its images saved."""

from __future__ import annotations

import json

import pytest

from fixtures.report import HOSTILE, LEAF, PER_CATEGORY, png_size, write_rich_dataset
from vlcurate.pipelines import cli
from vlcurate.pipelines.tools import inspect as inspect_cli
from vlcurate.transforms.io.manifest import read_manifest
from vlcurate.transforms.io.shard_reader import read_shard


@pytest.fixture(scope="module")
def rich(tmp_path_factory):
    return write_rich_dataset(str(tmp_path_factory.mktemp("rich")))


def inspect(capsys, *argv) -> tuple[int, str, str]:
    status = inspect_cli.run(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_summary_lists_totals_categories_shards_and_rejects(rich, capsys):
    status, out, _ = inspect(capsys, rich)
    assert status == 0
    lines = out.splitlines()
    manifest = read_manifest(rich)
    assert "totals        inputs 16 = samples 13 + rejected 1 + filtered 2 (balanced)" in lines
    assert "categories    document_ocr 8, scene_ocr 3, text_only 2" in lines
    assert "labels        2 labelled (recognition 2), 1 for review" in lines
    shards = manifest["shards"]
    assert f"shards        {rich}/shards/: {len(shards)} shards, 13 samples, {sum(s['bytes'] for s in shards):,} bytes" in lines
    for shard in shards:
        assert f"  {shard['name']}  {shard['samples']} samples  {shard['bytes']:,} bytes" in lines
    assert "rejected      1: pdf_corrupt 1" in lines and "filtered      2: clip_below_threshold 2" in lines
    # each reason under its own kind: the filtered clip rows never under "rejected"
    at = {line: number for number, line in enumerate(lines)}
    assert (at["rejected      1: pdf_corrupt 1"] < at["  pdf_document: pdf_corrupt 1"]
            < at["filtered      2: clip_below_threshold 2"] < at["  clip: clip_below_threshold 2"])
    assert "stages        elements in -> outputs, elements/s" in lines
    # the stages in the order they ran (the funnel's), not alphabetical
    assert at["  render: 300 -> 15"] < at["  clip: 15 -> 13"]


def test_sample_by_key_shows_json_text_and_images_and_saves_them(rich, capsys, tmp_path):
    last_shard = f"{rich}/{read_manifest(rich)['shards'][-1]['name']}"
    wanted = [s for s in read_shard(last_shard) if s.images][-1]  # the last of a later shard: a lookup
    status, out, _ = inspect(capsys, rich, "--key", wanted.key, "--save-images", str(tmp_path / "images"),
                             "--text-chars", "40")
    assert status == 0
    assert out.startswith(f"sample {wanted.key} in {last_shard}\njson:\n{{\n")
    body = out.split("json:\n", 1)[1].split("\ntext (", 1)[0]
    doc = json.loads(body)  # the pretty json is the sample's KEY.json
    assert doc["key"] == wanted.key and doc["category"] == wanted.category and doc["scores"] == dict(wanted.scores)
    assert f"text ({len(wanted.text)} chars):\n  {wanted.text[:40]} ..." in out  # hostile text printed as is
    image = wanted.images[0]
    assert (f"images (1):\n  0: {image.format} {image.width}x{image.height}, {len(image.data):,} bytes, "
            f"sha256 {image.sha256}") in out
    saved = tmp_path / "images" / f"{wanted.key}.{image.extension}"
    assert f"saved {saved}" in out
    assert saved.read_bytes() == image.data and png_size(image.data) == (image.width, image.height)


def test_shard_path_shows_its_first_sample(rich, capsys):
    shard = f"{rich}/{read_manifest(rich)['shards'][0]['name']}"
    first = next(read_shard(shard))
    status, out, _ = inspect(capsys, shard)
    assert status == 0 and out.startswith(f"sample {first.key} in {shard}\n")
    labelled = [s for s in read_shard(shard) if s.taxonomy and s.taxonomy.get("id")]
    if labelled:  # a labelled sample shows its taxonomy in the json
        status, out, _ = inspect(capsys, shard, "--key", labelled[0].key)
        assert status == 0 and LEAF in out


def test_text_only_sample_and_hostile_text(rich, capsys):
    manifest = read_manifest(rich)
    samples = [s for shard in manifest["shards"] for s in read_shard(f"{rich}/{shard['name']}")]
    assert len(samples) == sum(PER_CATEGORY.values())
    text_only = next(s for s in samples if s.category == "text_only")
    status, out, _ = inspect(capsys, rich, "--key", text_only.key)
    assert status == 0 and "images (0):" in out and f"text ({len(text_only.text)} chars):\n  {text_only.text}\n" in out
    hostile = next(s for s in samples if s.category == "document_ocr")
    status, out, _ = inspect(capsys, rich, "--key", hostile.key, "--text-chars", str(len(HOSTILE)))
    assert f"  {HOSTILE} ..." in out  # a terminal shows text as it is: no escaping needed or done


def test_missing_key_or_dataset_is_an_error(rich, capsys, tmp_path):
    status, out, err = inspect(capsys, rich, "--key", "pdf-000000000000000000000000")
    assert status == 1 and out == "" and "no sample pdf-000000000000000000000000" in err
    status, _, err = inspect(capsys, str(tmp_path / "nothing"))
    assert status == 1 and "manifest.json" in err


def test_routed_from_the_vlcurate_command(rich, capsys):
    assert cli.main(["inspect", rich]) == 0
    assert "categories    document_ocr 8, scene_ocr 3, text_only 2" in capsys.readouterr().out
