"""A user's mistakes with the pipeline commands and recipes, run as a user runs them: `--overwrite`
deletes only the files the dataset wrote and refuses, deleting nothing, while the output holds
others; a recipe value its command would refuse is named as RECIPE:LINE, with exit status 2."""

from __future__ import annotations

import json
import pathlib
import textwrap

import pytest

from fixtures import EXAMPLES
from fixtures.command import one_line_error, vlcurate


def files(folder: pathlib.Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def text_dataset(output: pathlib.Path, *flags):
    done = vlcurate("text", "--input", EXAMPLES / "text", "--output", output, *flags)
    assert done.returncode == 0, done.stderr
    return done


def test_overwrite_refuses_while_the_output_holds_files_the_dataset_did_not_write(tmp_path):
    output = tmp_path / "out"
    text_dataset(output)
    for name in ("shards/mine.tar.txt", "index/old.parquet", "review/mine.jsonl", "runs/notes.json"):
        (output / name).parent.mkdir(exist_ok=True)
        (output / name).write_text("the user's")
    before = files(output)

    done = vlcurate("text", "--input", EXAMPLES / "text", "--output", output, "--overwrite")
    assert done.returncode == 2
    assert one_line_error(done) == (
        f"vlcurate: {output} holds files its dataset did not write (shards/mine.tar.txt, index/old.parquet, "
        "review/mine.jsonl and 1 more): move them elsewhere, or choose another --output; --overwrite deleted nothing")
    assert files(output) == before


def test_overwrite_deletes_the_files_of_every_run_and_nothing_else(tmp_path):
    output = tmp_path / "out"
    text_dataset(output)
    (output / "notes.md").write_text("beside the dataset, not in it")
    # Run 2, killed part way: its plan names its prefix; no manifest lists its files yet.
    plan = json.loads((output / "runs" / "run-0001.plan.json").read_text())
    (output / "runs" / "run-0002.plan.json").write_text(json.dumps({**plan, "number": 2, "prefix": "text-r2"}))
    (output / "shards" / "text-r2-000000.tar").write_bytes(b"\0" * 1024)
    (output / "index" / "text-r2-000000.parquet").write_bytes(b"PAR1")

    text_dataset(output, "--overwrite", "--shard-prefix", "prose")
    assert sorted(files(output)) == ["index/prose-000000.parquet", "manifest.json", "notes.md",
                                     "rejects/prose-rejects-000000.parquet", "runs/run-0001.json",
                                     "runs/run-0001.plan.json", "shards/prose-000000.tar"]
    assert (output / "notes.md").read_text() == "beside the dataset, not in it"


def test_recipe_values_are_checked_as_their_commands_check_them(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(textwrap.dedent(f"""\
        output: {tmp_path / "out"}
        sources:
          docs:
            kind: pdf
            input: {EXAMPLES / "pdfs" / "chart.pdf"}
            options:
              ocr: never
              ocr-dpi: 0
          prose: {{kind: text, input: {EXAMPLES / "text"}}}
        stages:
          clip:
            model: tiny-clip
            keep-fraction: 1.5
        shards:
          max-samples-per-shard: twenty
        """))
    done = vlcurate("run", path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"vlcurate run: {path}:8: source docs: option 'ocr-dpi': must be a whole number from 36 to 600, not 0",
        f"vlcurate run: {path}:13: stages.clip.keep-fraction: must be a number > 0 and <= 1, not 1.5",
        f"vlcurate run: {path}:15: shards.max-samples-per-shard: must be a whole number >= 1, not twenty",
    ]
    assert not (tmp_path / "out").exists()

    done = vlcurate("run", path, "--set", "sources.docs.options.ocr-dpi=200", "--set", "stages.clip.keep-fraction=0.5",
                    "--set", "shards.max-samples-per-shard=-5", "--dry_run=True")
    assert done.returncode == 2
    assert one_line_error(done) == (f"vlcurate run: {path} (--set): shards.max-samples-per-shard: "
                                    "must be a whole number >= 1, not -5")


@pytest.mark.parametrize("argv, line", [
    (["run"], "vlcurate run: the following arguments are required: recipe (vlcurate run --help)"),
    (["report"], "vlcurate report: the following arguments are required: dataset (vlcurate report --help)"),
    (["inspect"], "vlcurate inspect: the following arguments are required: path (vlcurate inspect --help)"),
    (["models", "fetch"], "vlcurate models fetch: the following arguments are required: kind, --model, --pretrained, "
                          "--output (vlcurate models fetch --help)"),
    (["train", "--shards", "x", "--shard", "y"], "vlcurate train: unrecognized arguments: --shard y (vlcurate train --help)"),
    (["chat-format"], "vlcurate chat-format: the following arguments are required: file (vlcurate chat-format --help)"),
    (["taxonomy", "shw"], "vlcurate taxonomy: argument COMMAND: invalid choice: 'shw' (choose from 'validate', "),
    (["taxonomy", "show", "--bogus"], "vlcurate taxonomy: unrecognized arguments: --bogus (vlcurate taxonomy --help)"),
])
def test_a_tool_commands_usage_mistake_is_one_line_with_status_2(argv, line):
    # The tools (not pipelines) parse with argparse too: one line naming the command and its --help,
    # never argparse's usage block above the error.
    done = vlcurate(*argv)
    assert done.returncode == 2
    assert one_line_error(done).startswith(line)
