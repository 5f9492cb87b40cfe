"""`vlcurate run`: a recipe checked before it runs, one dataset from several sources, extend, resume
after a killed run, and translation for Dataflow (dry run: Dataflow itself cannot run here)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from fixtures import EXAMPLES, REPO
from fixtures.dataflow import DATAFLOW_FLAGS, check_job
from vlcurate.pipelines import cli, recipe
from vlcurate.pipelines.recipe_file import RecipeError, load_recipe
from vlcurate.taxonomy.labeler import read_examples, train
from vlcurate.taxonomy.tree import load_taxonomy
from vlcurate.transforms.io.shard_reader import read_shard

DOCS = 40


def write_docs(path: pathlib.Path, first: int, count: int) -> None:
    with path.open("w") as out:
        for n in range(first, first + count):
            out.write(json.dumps({"text": f"Document {n}: a paragraph of plain text, number {n} of the corpus."}) + "\n")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recipe-inputs")
    (folder / "text").mkdir()
    write_docs(folder / "text" / "docs.jsonl", 0, DOCS)
    taxonomy = load_taxonomy()
    examples = read_examples(str(EXAMPLES / "sft" / "labelled.jsonl"), taxonomy)[::5]  # 2 a leaf: quick to train
    train(examples, taxonomy, str(folder / "labeler"))
    return folder


def recipe_text(inputs: pathlib.Path, output: pathlib.Path, max_per_shard: int = 5) -> str:
    return textwrap.dedent(f"""\
        recipe: 1
        output: {output}
        prefix: t
        sources:
          reports:
            kind: pdf
            input: {EXAMPLES / "pdfs"}
            options: {{ocr: never}}
          plots:
            kind: notebooks
            input: {EXAMPLES / "notebooks"}
          chats:
            kind: sft
            input: {EXAMPLES / "sft" / "conversations"}
            options: {{image-root: {EXAMPLES}}}
          prose:
            kind: text
            input: {inputs / "text"}
        stages:
          dedup: [exact, near]
          label: {{labeler: {inputs / "labeler"}, min-confidence: 0.3}}
        target_mix: {{document_ocr: 1, web_code: 1, interleaved: 1, text_only: 2}}
        shards: {{max-samples-per-shard: {max_per_shard}}}
        """)


def write_recipe(folder: pathlib.Path, inputs: pathlib.Path, output: pathlib.Path, **kwargs) -> str:
    path = folder / "recipe.yaml"
    path.write_text(recipe_text(inputs, output, **kwargs))
    return str(path)


def dataset_keys(output) -> list[str]:
    manifest = json.loads((pathlib.Path(output) / "manifest.json").read_text())
    return [s.key for shard in manifest["shards"] for s in read_shard(f"{output}/{shard['name']}")]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, inputs):
    folder = tmp_path_factory.mktemp("recipe")
    output = folder / "out"
    assert recipe.run([write_recipe(folder, inputs, output), "--progress-interval", "0"]) == 0
    return folder, output, json.loads((output / "manifest.json").read_text())


# --- the recipe file -------------------------------------------------------------------------------------


BAD = """\
recipe: 1
output: out/x
colour: blue
sources:
  a:
    kind: pdf
    input: /no/such/folder
    options: {ocr: sometimes, figures: 3, max-pages: 10, output: elsewhere, wings: 2}
  b:
    kind: video
    input: x
  c:
    kind: text
    input: .
    mode: fast
  c:
    kind: text
    input: .
stages:
  clip: {model: ViT-B-32, checkpoint: /no/such/weights.pt}
  dedup: [exact, fuzzy]
target_mix: {document_ocr: 1, selfies: 2}
"""


def test_every_problem_of_a_recipe_is_named_with_its_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    with pytest.raises(RecipeError) as caught:
        load_recipe(str(path))
    assert caught.value.problems == [
        f"{path}:16: duplicate key 'c' (first at line 12)",
        f"{path}:3: unknown key 'colour' in the recipe (allowed: output, prefix, recipe, shards, sources, stages, target_mix)",
        f"{path}:7: source a: input /no/such/folder does not exist",
        f"{path}:8: source a: option 'ocr': invalid choice: 'sometimes' (choose from 'auto', 'always', 'never')",
        f"{path}:8: source a: option 'figures' is a switch: true or false",
        f"{path}:8: source a: option 'output' is set by the recipe itself",
        f"{path}:8: source a: option 'wings' is not a flag of `vlcurate pdf`",
        f"{path}:10: source b: kind 'video' is not one of pdf, web, images, charts, notebooks, captions, sft, text, "
        "interleaved",
        f"{path}:15: unknown key 'mode' in source c (allowed: clip, input, kind, label, language, options)",
        f"{path}:21: dedup is a list of exact, near",
        f"{path}:20: stages.clip.checkpoint: /no/such/weights.pt is missing (a CLIP model file)",
        f"{path}:22: target_mix: 'selfies' is not a category "
        "(caption, document_ocr, interleaved, scene_ocr, table_chart, text_only, web_code)",
    ]


def test_a_labelled_source_needs_a_labeler_and_it_must_exist(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(f"output: {tmp_path}/o\nsources:\n  s: {{kind: sft, input: {tmp_path}}}\n")
    with pytest.raises(RecipeError, match="stages.label.labeler is required"):
        load_recipe(str(path))
    path.write_text(f"output: {tmp_path}/o\nsources:\n  s: {{kind: sft, input: {tmp_path}}}\n"
                    f"stages:\n  label: {{labeler: {tmp_path}/nope}}\n")
    with pytest.raises(RecipeError, match=r"r.yaml:5: stages.label.labeler: .*nope is not a labeler folder"):
        load_recipe(str(path))
    assert cli.main(["run", str(path)]) == 2  # the CLI prints the problems and runs nothing
    assert not (tmp_path / "o").exists()


def test_stage_and_shard_values_are_checked_as_their_flags(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(f"output: {tmp_path}/o\nsources:\n  s: {{kind: text, input: {tmp_path}}}\n"
                    "stages:\n  label:\n    min-confidence: high\n    top-k: 0\n"
                    "  clip: {model: tiny-clip, per-category: 3, max-batch: 0}\n"
                    "shards:\n  max-shard-bytes: 100\n")
    with pytest.raises(RecipeError) as caught:
        load_recipe(str(path))
    assert caught.value.problems == [
        f"{path}:8: stages.clip.per-category must be true or false",
        f"{path}:8: stages.clip.max-batch: must be a whole number >= 1, not 0",
        f"{path}:6: stages.label.min-confidence: must be a number >= 0 and <= 1, not high",
        f"{path}:7: stages.label.top-k: must be a whole number >= 1, not 0",
        f"{path}:10: shards.max-shard-bytes: must be a whole number >= 2048, not 100",
    ]
    # once each value is right, what they mean together: on the line of the key that alone is refused
    path.write_text(f"output: {tmp_path}/o\nsources:\n  s: {{kind: text, input: {tmp_path}}}\n"
                    "stages:\n  clip: {keep-fraction: 0.5}\n")
    with pytest.raises(RecipeError) as caught:
        load_recipe(str(path))
    assert caught.value.problems == [
        f"{path}:5: stages.clip needs a model (an open_clip architecture)",
        f"{path}:5: stages.clip.keep-fraction: --clip-min-score and --clip-keep-fraction need --clip-model"]


def test_set_overrides_recipe_values(tmp_path, inputs):
    path = write_recipe(tmp_path, inputs, tmp_path / "out")
    loaded = load_recipe(path, ["output=elsewhere", "sources.prose.options.min-chars=50", "stages.dedup=[exact]",
                                "sources.reports.clip=false"])
    assert loaded.output == "elsewhere" and loaded.dedup == ("exact",)
    prose = next(s for s in loaded.sources if s.name == "prose")
    assert prose.flags == ("--min-chars", "50")
    assert not next(s for s in loaded.sources if s.name == "reports").clip
    with pytest.raises(RecipeError, match=r"\(--set\): source prose: option 'min-chars': "
                                          r"must be a whole number >= 0, not many"):
        load_recipe(path, ["sources.prose.options.min-chars=many"])
    with pytest.raises(RecipeError, match="--set output: not key.path=value"):
        load_recipe(path, ["output"])


# --- a run -------------------------------------------------------------------------------------------------


def test_all_sources_meet_in_one_balanced_dataset(dataset):
    _, output, manifest = dataset
    assert manifest["totals"]["balanced"]
    assert set(manifest["categories"]) == {"document_ocr", "interleaved", "text_only", "web_code"}
    assert manifest["categories"]["text_only"] == DOCS + 1  # the 40 documents and one text-only conversation
    assert set(manifest["config"]["sources"]) == {"reports", "plots", "chats", "prose"}
    assert manifest["runs"] == [{"run": 1, "mode": "new", "prefix": "t-r1", "created": manifest["created"],
                                 "manifest": "runs/run-0001.json", "totals": manifest["totals"],
                                 "shards": len(manifest["shards"])}]
    assert all(shard["name"].startswith("shards/t-r1-") for shard in manifest["shards"])
    samples = [s for shard in manifest["shards"] for s in read_shard(f"{output}/{shard['name']}")]
    by_source = {}
    for sample in samples:
        by_source.setdefault(sample.provenance["recipe_source"], []).append(sample)
    # Labels and language only where the recipe asks: sft is labelled, every source gets a language.
    assert all(s.taxonomy is not None for s in by_source["chats"])
    assert all(s.taxonomy is None and "language" in s.meta for s in by_source["prose"])
    assert manifest["counts"]["review"] == sum(s.taxonomy["status"] == "review" for s in by_source["chats"])
    # Per-stage timings, and the report beside the manifest.
    assert manifest["throughput"]["text"]["elements"] == DOCS and manifest["throughput"]["pdf_page"]["elements"] == 5
    assert {"stage": "sft", "in": 13, "out": 10} in manifest["funnel"]
    page = (output / "report.html").read_text()
    for section in ("Funnel", "CLIP scores", "Category mix", "Taxonomy labels", "Throughput", "Samples"):
        assert f"<h2>{section}</h2>" in page


def test_the_same_recipe_gives_the_same_shards_in_two_worker_processes(tmp_path, dataset, inputs):
    _, _, manifest = dataset
    assert recipe.run([write_recipe(tmp_path, inputs, tmp_path / "out"), "--progress-interval", "0", "--no-report",
                       "--direct_running_mode=multi_processing", "--direct_num_workers=2"]) == 0
    again = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [s["sha256"] for s in again["shards"]] == [s["sha256"] for s in manifest["shards"]]


def test_a_new_run_refuses_an_existing_dataset(dataset):
    folder, _, _ = dataset
    with pytest.raises(SystemExit, match="already holds a dataset"):
        recipe.run([str(folder / "recipe.yaml")])
    with pytest.raises(SystemExit, match="no interrupted run to resume"):
        recipe.run([str(folder / "recipe.yaml"), "--mode", "resume"])


def file_facts(folder: pathlib.Path) -> dict:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted((folder / "shards").glob("*.tar"))}


def test_extend_adds_a_run_with_only_the_new_keys(tmp_path, inputs, dataset):
    _, first_output, first = dataset
    corpus = tmp_path / "in"
    (corpus / "text").mkdir(parents=True)
    write_docs(corpus / "text" / "docs.jsonl", 0, DOCS)
    (corpus / "labeler").symlink_to(inputs / "labeler")
    output = tmp_path / "out"
    path = write_recipe(tmp_path, corpus, output)
    with pytest.raises(SystemExit, match="no finished run to extend"):
        recipe.run([path, "--mode", "extend"])
    assert recipe.run([path, "--progress-interval", "0", "--no-report"]) == 0
    before = file_facts(output)
    write_docs(corpus / "text" / "more.jsonl", DOCS - 5, 10)  # 5 documents it has, 5 new ones
    assert recipe.run([path, "--mode", "extend", "--progress-interval", "0"]) == 0
    manifest = json.loads((output / "manifest.json").read_text())
    assert [run["run"] for run in manifest["runs"]] == [1, 2] and manifest["runs"][1]["mode"] == "extend"
    second = manifest["runs"][1]["totals"]
    assert second["samples"] == 5 and second["balanced"]
    run2 = json.loads((output / "runs" / "run-0002.json").read_text())
    assert run2["rejects"]["by_reason"]["already_in_dataset"] == first["totals"]["samples"] + 5
    assert manifest["totals"]["samples"] == first["totals"]["samples"] + 5 and manifest["totals"]["balanced"]
    assert {name: facts for name, facts in file_facts(output).items() if name in before} == before
    assert all(s["name"].startswith("shards/t-r2-") for s in manifest["shards"][len(before):])
    keys = dataset_keys(output)
    assert len(keys) == len(set(keys)) == first["totals"]["samples"] + 5


KILLER = """
import sys, time
import vlcurate.transforms.io.shards as shards

write_shard = shards.write_shard

def slow_write_shard(*args, **kwargs):  # test harness only: room to kill the run between shards
    record = write_shard(*args, **kwargs)
    time.sleep(0.4)
    return record

shards.write_shard = slow_write_shard
from vlcurate.pipelines import cli
sys.exit(cli.main(["run", sys.argv[1], "--progress-interval", "0.5"]))
"""


def test_a_killed_run_resumes_without_touching_finished_shards(tmp_path, inputs, dataset):
    _, _, complete = dataset
    output = tmp_path / "out"
    path = write_recipe(tmp_path, inputs, output)
    process = subprocess.Popen([sys.executable, "-c", KILLER, path], stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 240
    while len(list((output / "shards").glob("*.tar"))) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # the run is killed as an out-of-memory killer would
    _, stderr = process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert "vlcurate run: " in stderr and " items (" in stderr  # progress lines on the console
    assert (output / "runs" / "run-0001.plan.json").exists() and not (output / "runs" / "run-0001.json").exists()
    finished = file_facts(output)
    assert 2 <= len(finished) < len(complete["shards"])
    with pytest.raises(SystemExit, match="run 1 .* was interrupted: --mode resume first"):
        recipe.run([path, "--mode", "extend"])
    assert recipe.run([path, "--mode", "resume", "--progress-interval", "0", "--no-report"]) == 0
    manifest = json.loads((output / "manifest.json").read_text())
    assert {name: facts for name, facts in file_facts(output).items() if name in finished} == finished
    assert [s["sha256"] for s in manifest["shards"]] == [s["sha256"] for s in complete["shards"]]
    keys = dataset_keys(output)
    assert len(keys) == len(set(keys)) == complete["totals"]["samples"] and manifest["totals"]["balanced"]


def test_a_recipe_translates_for_dataflow(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # --setup_file is relative to the repository
    path = tmp_path / "cloud.yaml"
    path.write_text(textwrap.dedent("""\
        output: gs://vlcurate-test/datasets/mix
        prefix: mix
        sources:
          docs: {kind: pdf, input: "gs://vlcurate-test/pdfs/", options: {ocr: auto}}
          chats: {kind: sft, input: "gs://vlcurate-test/sft/"}
          prose: {kind: text, input: "gs://vlcurate-test/text/"}
        stages:
          dedup: [exact]
          label: {labeler: "gs://vlcurate-test/labeler", lid-model: "gs://vlcurate-test/lid.176.ftz"}
        """))
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert recipe.run([str(path), *DATAFLOW_FLAGS]) == 0
    check_job(printed.getvalue(), ["Source[docs]", "Source[chats]", "Source[prose]", "Quality"])
