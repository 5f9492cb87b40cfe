"""What a user meets first on the command line: flags checked before anything runs, repeated
--input, --help, --version, bad values, and output piped into `head` (tracker issue 16: 1, 2, 7, 8)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from fixtures import EXAMPLES, REPO
from fixtures import pdf as pdf_fixtures
from vlcurate import __version__
from vlcurate.pipelines import cli, flags, recipe
from vlcurate.pipelines.options import shard_prefix
from vlcurate.pipelines.recipe_file import RecipeError, load_recipe
from vlcurate.pipelines.registry import COMMANDS
from vlcurate.taxonomy.cli import build_parser

PIPELINES = [command.word for command in COMMANDS if command.pipeline and hasattr(command.load(), "OPTIONS")]


def vlcurate(*argv, closed_stdout: bool = False) -> subprocess.CompletedProcess:
    """`vlcurate ARGV` as a user runs it, in its own process."""
    command = [sys.executable, "-m", "vlcurate.pipelines.cli", *map(str, argv)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if not closed_stdout:
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    # A reader that has gone away before the first line (as `| head -1` does, had it read one).
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    process.stdout.close()
    stderr = process.stderr.read()
    return subprocess.CompletedProcess(command, process.wait(timeout=600), "", stderr)


def refused(result: subprocess.CompletedProcess, line: str) -> None:
    """Exit status 2 and ``line`` as the whole of stderr: one line, no traceback, no Beam warnings."""
    assert (result.returncode, result.stderr) == (2, line + "\n")


def help_of(capsys, *argv) -> str:
    try:
        status = cli.main([*argv, "--help"])
    except SystemExit as exit_:  # the argparse tools exit after their help
        status = exit_.code
    assert status == 0
    return capsys.readouterr().out


# --- item 1: unknown flags, and flags of another command ------------------------------------------------


def test_a_typod_flag_stops_the_command_before_anything_runs(tmp_path):
    result = vlcurate("pdf", "--input", EXAMPLES / "pdfs" / "chart.pdf", "--output", tmp_path / "o5", "--pagesize", 512)
    refused(result, "vlcurate pdf: unknown flag --pagesize (did you mean --page-size?)")
    assert not (tmp_path / "o5").exists()


def test_an_unknown_flag_names_the_closest_flag_or_the_help(capsys, tmp_path):
    base = ["--input", str(tmp_path), "--output", str(tmp_path / "out")]
    for argv, line in [
        (["--page_sise", "3"], "vlcurate pdf: unknown flag --page_sise (did you mean --page-size?)"),
        (["--runnr=FnApiRunner"], "vlcurate pdf: unknown flag --runnr (did you mean --runner?)"),
        (["--zzz"], "vlcurate pdf: unknown flag --zzz (vlcurate pdf --help lists the flags)"),
        (["--page-s", "300"], "vlcurate pdf: unknown flag --page-s (did you mean --page-size?)"),  # no abbreviations
        (["extra.pdf"], "vlcurate pdf: unexpected 'extra.pdf': a value follows its flag (--input extra.pdf)"),
    ]:
        assert cli.main(["pdf", *base, *argv]) == 2
        assert capsys.readouterr().err == line + "\n"


def test_a_flag_of_another_command_does_nothing_and_is_refused(tmp_path):
    refused(vlcurate("text", "--input", tmp_path, "--output", tmp_path / "out", "--clip-model", "ViT-B-32"),
            "vlcurate text: --clip-model does nothing for vlcurate text "
            "(it is a flag of vlcurate pdf, web, ocr, charts, notebooks, captions, sft, filter)")
    refused(vlcurate("filter", "--input", tmp_path, "--output", tmp_path / "out", "--page-timeout", 5),
            "vlcurate filter: --page-timeout does nothing for vlcurate filter "
            "(it is a flag of vlcurate pdf, web, ocr, charts, captions, interleaved)")


def test_beams_own_flags_pass_the_check():
    module = next(command for command in COMMANDS if command.word == "pdf").load()
    flags.check("pdf", module, ["--input", "a", "--output", "b", "--runner=FnApiRunner", "--direct_num_workers", "2",
                                "--direct_running_mode=multi_processing", "--project", "p", "--region", "europe-west1",
                                "--temp_location", "gs://b/tmp", "--setup_file", "./setup.py", "--dry_run=True",
                                "--experiments", "a", "--experiments", "b", "--max_num_workers", "4",
                                "--sdk_container_image", "img", "--save_main_session"])


def test_vlcurate_run_takes_its_flags_and_beams_and_refuses_the_rest(tmp_path):
    args, beam_argv = recipe.parse_args(["r.yaml", "--runner=FnApiRunner", "--direct_num_workers", "2", "--no-report"])
    assert args.recipe == "r.yaml" and args.no_report and beam_argv == ["--runner=FnApiRunner", "--direct_num_workers", "2"]
    refused(vlcurate("run", EXAMPLES / "recipes" / "demo.yaml", "--sett", "output=x"),
            "vlcurate run: unknown flag --sett (did you mean --set?)")
    refused(vlcurate("run", EXAMPLES / "recipes" / "demo.yaml", "--page-size", 3),
            "vlcurate run: --page-size does nothing for vlcurate run "
            "(it is a flag of vlcurate pdf; in a recipe, set it in a source's options)")


# --- item 2 (values) and the checks made before anything runs ------------------------------------------


@pytest.mark.parametrize("argv, line", [
    (["--page-size", "-3"], "vlcurate pdf: --page-size must be a whole number >= 16, not -3"),
    (["--jpeg-quality", "0"], "vlcurate pdf: --jpeg-quality must be a whole number from 1 to 100, not 0"),
    (["--page-timeout", "nan"], "vlcurate pdf: --page-timeout must be a number > 0, not nan"),
    (["--max-shard-bytes", "1e9"], "vlcurate pdf: --max-shard-bytes must be a whole number >= 2048, not 1e9"),
    (["--mode", "extnd"], "vlcurate pdf: --mode: invalid choice: 'extnd' (choose from 'new', 'extend', 'resume')"),
    (["--image-format", "gif"], "vlcurate pdf: --image-format: invalid choice: 'gif' (choose from 'png', 'jpeg')"),
    (["--shard-prefix", "my pdfs"], "vlcurate pdf: --shard-prefix must be letters, digits, - or _, not 'my pdfs'"),
    (["--output", "other"], "vlcurate pdf: --output is given more than once; give it once"),
    (["--page-size"], "vlcurate pdf: --page-size: expected one argument"),
    (["--dedup", "exakt"], "vlcurate pdf: --dedup must be a comma list of exact, near, not exakt"),
])
def test_a_bad_value_stops_the_command_with_one_line(tmp_path, argv, line):
    pdfs = EXAMPLES / "pdfs" / "chart.pdf"
    refused(vlcurate("pdf", "--input", pdfs, "--output", tmp_path / "out", *argv), line)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("viewport", ["abc", "1024x", "10x10", "1024x9000"])
def test_a_malformed_viewport_is_a_usage_error(tmp_path, viewport):
    refused(vlcurate("web", "--input", EXAMPLES / "web", "--output", tmp_path / "out", "--offline",
                     "--viewport", viewport),
            f"vlcurate web: --viewport must be WIDTHxHEIGHT, each from 16 to 8192 (e.g. 1024x768), not {viewport}")
    assert not (tmp_path / "out").exists()


def test_every_number_flag_of_every_pipeline_refuses_a_value_out_of_range(capsys, tmp_path):
    # Every flag that converts its value must bound it: -5 is out of every range (counts >= 0 or 1,
    # sizes >= 1, seconds > 0, fractions and scores within 0..1 or -1..1).
    checked = 0
    for word in PIPELINES:
        module = next(command for command in COMMANDS if command.word == word).load()
        for action in flags.command_parser(word, module)._actions:
            if action.type in (None, shard_prefix) or not action.option_strings:  # "-5" is a fine prefix
                continue
            flag = action.option_strings[0]
            status = cli.main([word, "--input", str(tmp_path), "--output", str(tmp_path / "out"), flag, "-5"])
            err = capsys.readouterr().err
            assert status == 2 and re.fullmatch(rf"vlcurate {word}: {flag} must be .*, not -5\n", err), (word, flag, err)
            checked += 1
    assert checked > 40 and not (tmp_path / "out").exists()


def test_a_recipes_clip_values_are_checked_as_the_flags_are_with_their_line(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(f"output: {tmp_path}/o\nsources:\n  d: {{kind: pdf, input: {EXAMPLES / 'pdfs'}}}\n"
                    "stages:\n  clip:\n    model: tiny-clip\n    max-batch: 0\n")
    with pytest.raises(RecipeError) as caught:
        load_recipe(str(path), ["stages.clip.keep-fraction=1.5"])
    assert caught.value.problems == [
        f"{path}:7: stages.clip.max-batch: must be a whole number >= 1, not 0",
        f"{path} (--set): stages.clip.keep-fraction: must be a number > 0 and <= 1, not 1.5",
    ]


def test_input_and_output_are_required(tmp_path):
    refused(vlcurate("pdf", "--output", tmp_path / "out"), "vlcurate pdf: --input is required (vlcurate pdf --help)")
    refused(vlcurate("ocr"), "vlcurate ocr: --input and --output are required (vlcurate ocr --help)")


# --- item 7: --input repeated ---------------------------------------------------------------------------


def test_every_input_given_is_read_and_recorded(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.pdf").write_bytes(pdf_fixtures.text_pdf(2, "alpha"))
    (tmp_path / "b.pdf").write_bytes(pdf_fixtures.text_pdf(1, "beta"))
    output = tmp_path / "out"
    inputs = [str(folder), str(tmp_path / "b.pdf"), str(folder / "a.pdf")]  # a.pdf twice: read once
    result = vlcurate("pdf", *(part for path in inputs for part in ("--input", path)), "--output", output,
                      "--page-size", 256, "--ocr", "never", "--runner=FnApiRunner")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "Discarding unparseable" not in result.stderr
    manifest = json.loads((output / "manifest.json").read_text())
    # every page of both files, a.pdf once (read twice, its pages would come out as duplicates)
    assert manifest["totals"] == {"balanced": True, "inputs": 3, "samples": 3, "rejected": 0, "filtered": 0}
    assert manifest["config"]["input"] == inputs


def test_one_input_is_recorded_as_a_string(tmp_path):
    (tmp_path / "doc.txt").write_text("A document long enough to be kept.\n")
    assert cli.main(["text", "--input", str(tmp_path / "doc.txt"), "--output", str(tmp_path / "out")]) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["config"]["input"] == str(tmp_path / "doc.txt")  # the settings digest of older datasets holds


def test_an_input_that_matches_nothing_stops_the_run_though_others_match(tmp_path):
    result = vlcurate("pdf", "--input", EXAMPLES / "pdfs" / "chart.pdf", "--input", tmp_path / "nowhere.pdf",
                      "--output", tmp_path / "out")
    assert (result.returncode, result.stderr) == (1, f"no input files match {tmp_path / 'nowhere.pdf'}\n")
    assert not (tmp_path / "out").exists()


def test_commands_that_read_one_input_refuse_a_repeat(tmp_path):
    refused(vlcurate("web", "--input", EXAMPLES / "web", "--input", tmp_path, "--output", tmp_path / "out"),
            "vlcurate web: --input is given 2 times, but vlcurate web reads one input: "
            "run it once per input (--mode extend adds a run to the dataset)")
    refused(vlcurate("filter", "--input", tmp_path / "a", "--input", tmp_path / "b", "--output", tmp_path / "out"),
            "vlcurate filter: --input is given 2 times, but vlcurate filter reads one input: "
            "run it once per input (--mode extend adds a run to the dataset)")


# --- item 8: --help and --version -----------------------------------------------------------------------


def test_a_pipelines_help_names_the_command_marks_what_is_required_and_shows_defaults():
    out = vlcurate("pdf", "--help").stdout
    assert out.startswith("usage: vlcurate pdf [flags]\n")
    assert re.search(r"--input PATH\s+required: what to read", out)
    assert re.search(r"--output DATASET\s+required: dataset folder", out)
    assert re.search(r"--page-size N\s+pixels on the rendered page's long side \(default:\s+1024\)", out)
    assert "--page_size" not in out  # one spelling listed; both are taken


def test_every_flag_of_every_command_has_help_text(capsys):
    pending = [[command.word] for command in COMMANDS]
    seen = 0
    while pending:
        argv = pending.pop()
        out = help_of(capsys, *argv)
        assert out.startswith(f"usage: vlcurate {' '.join(argv)} "), out[:80]
        entries, subcommands = _listed(out)
        assert entries, argv
        pending += [[*argv, sub] for sub in subcommands]
        assert [entry for entry, text in entries if not text] == [], argv
        description = out.split("\n\n")[1]
        if not description.startswith(("positional arguments:", "options:")):  # not cut mid-sentence
            assert description.rstrip().endswith("."), (argv, description)
        seen += 1
    assert seen >= len(COMMANDS) + len(build_parser()[1].choices) + 1  # and taxonomy's and models' subcommands


def test_a_pipeline_lists_only_the_flags_it_uses_and_refuses_the_others(capsys, tmp_path):
    listed = {word: set(re.findall(r"^  (--[\w-]+)", help_of(capsys, word), re.M)) for word in PIPELINES}
    assert not {"--clip-model", "--dedup", "--page-timeout", "--render-processes"} & listed["text"]
    assert not {"--page-timeout", "--render-processes", "--max-file-bytes"} & listed["filter"]
    assert not {"--figures", "--page-size"} & listed["charts"]
    assert {"--page-size", "--figures", "--ocr", "--clip-model", "--dedup", "--page-timeout"} <= listed["pdf"]
    for word in PIPELINES:
        for flag in sorted(set().union(*listed.values()) - listed[word]):
            assert cli.main([word, "--input", str(tmp_path), "--output", str(tmp_path / "o"), flag, "1"]) == 2
            assert f"vlcurate {word}: {flag} does nothing for vlcurate {word}" in capsys.readouterr().err


def test_version():
    result = vlcurate("--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"vlcurate {__version__}\n", "")


# --- a reader that goes away: `vlcurate ... | head -1` -----------------------------------------------


def test_output_piped_to_a_reader_that_has_gone_ends_quietly(tmp_path):
    (tmp_path / "doc.txt").write_text("A document long enough to be kept.\n")
    assert cli.main(["text", "--input", str(tmp_path / "doc.txt"), "--output", str(tmp_path / "ds")]) == 0
    for argv in (["--help"], ["pdf", "--help"], ["inspect", tmp_path / "ds"]):
        result = vlcurate(*argv, closed_stdout=True)
        assert (result.returncode, result.stderr) == (1, ""), argv


def _listed(help_text: str) -> tuple[list[tuple[str, bool]], list[str]]:
    """(each flag or argument --help lists, whether it has help text) and the subcommands it lists."""
    lines = help_text.splitlines()
    start = next(number for number, line in enumerate(lines) if line in ("positional arguments:", "options:"))
    entries, subcommands = [], []
    for number, line in enumerate(lines[start:], start):
        entry = re.match(r"^  (\S.*?)(?:\s{2,}(\S.*))?$", line)
        if not entry:
            continue
        following = lines[number + 1] if number + 1 < len(lines) else ""
        described = bool(entry.group(2)) or bool(re.match(r"^ {8,}\S", following))
        if not described and (entry.group(1) == "COMMAND" or entry.group(1).startswith("{")):
            # a subparser: each of its commands is listed below it with its help
            choices = re.findall(r"^    ([\w-]+)\s{2,}\S", "\n".join(lines[number + 1:]), re.M)
            names = entry.group(1).strip("{}").split(",") if entry.group(1).startswith("{") else choices
            subcommands += names
            described = bool(names) and set(names) <= set(choices)
        entries.append((entry.group(1), described))
    return entries, subcommands
