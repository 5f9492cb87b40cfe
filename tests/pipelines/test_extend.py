"""Extend is idempotent: a dataset extended over inputs it has already seen gains nothing (the keys
it wrote, rejected or filtered stay out, and a CLIP keep fraction judges by the cut the first run
recorded), and extended with a few new inputs gains exactly those."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap

import pytest

from fixtures import EXAMPLES
from fixtures import ocr as ocr_fixtures
from vlcurate.pipelines import cli
from vlcurate.taxonomy.labeler import read_examples, train
from vlcurate.taxonomy.tree import load_taxonomy
from vlcurate.transforms.io.shard_reader import read_shard

sys.path.insert(0, str(EXAMPLES))
import make_tiny_clip  # noqa: E402

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """A recipe over copies of the examples, with every stage that judges: exact and near dedup,
    CLIP with a keep fraction, labels."""
    folder = tmp_path_factory.mktemp("extend")
    for name in ("pdfs", "images", "text"):
        shutil.copytree(EXAMPLES / name, folder / name)
    taxonomy = load_taxonomy()
    train(read_examples(str(EXAMPLES / "sft" / "labelled.jsonl"), taxonomy)[::5], taxonomy, str(folder / "labeler"))
    checkpoint = make_tiny_clip.write(folder / "tiny-clip.pt")
    path = folder / "recipe.yaml"
    path.write_text(textwrap.dedent(f"""\
        output: {folder / "out"}
        prefix: x
        sources:
          reports: {{kind: pdf, input: {folder / "pdfs"}, options: {{ocr: never}}}}
          signs: {{kind: images, input: {folder / "images"}}}
          chats: {{kind: sft, input: {EXAMPLES / "sft" / "conversations"}, options: {{image-root: {EXAMPLES}}}}}
          prose: {{kind: text, input: {folder / "text"}}}
        stages:
          dedup: [exact, near]
          clip: {{model: tiny-clip, model-config: {make_tiny_clip.CONFIG}, checkpoint: {checkpoint},
                  keep-fraction: 0.6}}
          label: {{labeler: {folder / "labeler"}}}
        """))
    return folder, path


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
