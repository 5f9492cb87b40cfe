"""Extend is idempotent: a dataset extended over inputs it has already seen gains nothing (the keys
it wrote, rejected or filtered stay out, and a CLIP keep fraction judges by the cut the first run
recorded), and extended with a few new inputs gains exactly those."""

from __future__ import annotations

import json
import shutil

import pytest

from fixtures import EXAMPLES
from fixtures import ocr as ocr_fixtures
from fixtures.recipes import every_stage_recipe
from vlcurate.pipelines import cli
from vlcurate.transforms.io.shard_reader import read_shard

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """A recipe over copies of the examples, with every stage that judges: exact and near dedup,
    CLIP with a keep fraction, labels."""
    folder = tmp_path_factory.mktemp("extend")
    for name in ("pdfs", "images", "text"):
        shutil.copytree(EXAMPLES / name, folder / name)
    return folder, every_stage_recipe(folder, inputs=folder, keep_fraction=0.6, prefix="x")


def run(path, *flags):
    assert cli.main(["run", str(path), "--no-report", "--progress-interval", "0", *flags]) == 0
    output = path.parent / "out"
    return json.loads((output / "manifest.json").read_text())


def run_manifest(folder, number):
    return json.loads((folder / "out" / "runs" / f"run-{number:04d}.json").read_text())


def keys(folder, manifest):
    return [s.key for shard in manifest["shards"] for s in read_shard(str(folder / "out" / shard["name"]))]


def test_extend_over_the_same_inputs_adds_nothing_and_new_inputs_add_exactly_themselves(recipe):
    folder, path = recipe
    first = run(path)
    assert first["totals"]["filtered"] > 0 and first["facts"]["clip_cut"]  # the keep fraction cut something
    before = keys(folder, first)

    again = run(path, "--mode", "extend")
    second = run_manifest(folder, 2)
    assert second["totals"]["samples"] == 0 and second["totals"]["balanced"]
    # every sample the first run wrote or filtered is judged already; only inputs that never made a
    # key (a broken file) are rejected again
    assert second["rejects"]["by_reason"]["already_in_dataset"] >= first["totals"]["samples"]
    assert keys(folder, again) == before

    (folder / "text" / "new.jsonl").write_text(
        "".join(json.dumps({"text": f"A new paragraph, number {n}, added after the first run."}) + "\n"
                for n in range(3)))
    (folder / "images" / "new-sign.png").write_bytes(ocr_fixtures.encoded(ocr_fixtures.text_image("OPEN LATE"), "png"))
    third = run(path, "--mode", "extend")
    added = run_manifest(folder, 3)
    new_keys = set(keys(folder, third)) - set(before)
    assert added["totals"]["samples"] == len(new_keys) and added["totals"]["balanced"]
    sources = {s.provenance["recipe_source"] for shard in added["shards"]
               for s in read_shard(str(folder / "out" / shard["name"]))}
    assert 3 <= len(new_keys) <= 4 and sources <= {"prose", "signs"}
    # the new samples were judged by the first run's cut, not a new one over themselves
    assert added["facts"]["clip_cut"] == first["facts"]["clip_cut"]
    assert third["totals"]["balanced"] and len(keys(folder, third)) == len(set(keys(folder, third)))
