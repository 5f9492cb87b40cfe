"""`vlcurate train` and `vlcurate chat-format` refuse a user's mistakes with one line and an exit
status (2: the command line, 1: the data), never a traceback; a checkpoint folder is not replaced
without --resume or --overwrite."""

from __future__ import annotations

import hashlib
import json

import pytest
from fixtures.command import one_line_error, parser_error, vlcurate
from fixtures.training import TINY_MODEL, pretraining_sample, sft_sample, write_dataset

pytestmark = pytest.mark.e2e  # every test runs the command in its own process (torch's import alone takes seconds)

BUILD_FIRST = "build a dataset first with `vlcurate pdf` (or another pipeline command) or `vlcurate run RECIPE`"


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """A pretraining dataset (document_ocr) and an SFT one, and a shard that is not a tar at all."""
    folder = tmp_path_factory.mktemp("train-errors")
    write_dataset(str(folder / "docs"), [pretraining_sample("document_ocr", n) for n in range(12)], prefix="docs")
    write_dataset(str(folder / "sft"), [sft_sample(n, n % 2 == 0) for n in range(8)], prefix="sft")
    (folder / "junk").mkdir()
    (folder / "junk" / "a.tar").write_bytes(b"this is not a tar file at all" * 40)
    return folder


def train(*argv):
    """`vlcurate train` on the tiny model (flags in ``argv`` come last, so they win)."""
    return vlcurate("train", "--model", TINY_MODEL, "--workers", "0", "--threads", "1", *argv)


def report(done) -> dict:
    """What --check printed (after its notes)."""
    return json.loads(done.stdout[done.stdout.index("{"):])


# --- shards that give nothing to train on --------------------------------------------------------------------


@pytest.mark.parametrize("check", [False, True])
def test_a_missing_shards_path_is_a_usage_error(tmp_path, check):
    done = train("--shards", tmp_path / "nowhere", *(["--check"] if check else ["--steps", 2, "--output", tmp_path / "ck"]))
    assert done.returncode == 2
    assert one_line_error(done) == f"vlcurate train: no shards in {tmp_path / 'nowhere'}: no such file or folder; {BUILD_FIRST}"
    assert not (tmp_path / "ck").exists()


@pytest.mark.parametrize("check", [False, True])
def test_a_folder_without_shards_fails_saying_what_it_expected(tmp_path, check):
    empty = tmp_path / "empty"
    empty.mkdir()
    done = train("--shards", empty, *(["--check"] if check else ["--steps", 2, "--output", tmp_path / "ck"]))
    assert done.returncode == 1
    assert one_line_error(done) == (f"vlcurate train: no shards in {empty} (expected {empty}/shards/*.tar or "
                                    f"{empty}/*.tar); {BUILD_FIRST}")


def test_a_folder_of_tars_without_a_manifest_is_read(datasets):
    done = train("--check", "--shards", datasets / "docs" / "shards")
    assert done.returncode == 0, done.stderr
    assert report(done)["usable"] == {"document_ocr": 12}


def test_check_fails_when_nothing_is_usable(datasets):
    done = train("--check", "--shards", datasets / "junk")
    assert done.returncode == 1
    assert report(done) == {"skipped": {"shard_unreadable": 1}, "usable": {
        route: 0 for route in ("caption", "document_ocr", "interleaved", "scene_ocr", "table_chart", "text_only",
                               "web_code")}}
    assert one_line_error(done) == f"vlcurate train: no usable samples in {datasets / 'junk'} (skipped: shard_unreadable 1)"


def test_training_on_shards_that_are_all_unusable_stops_with_one_line(datasets, tmp_path):
    # In a DataLoader worker: the trainer sees the worker's exception rebuilt from its traceback.
    done = train("--shards", datasets / "junk", "--steps", 2, "--output", tmp_path / "ck", "--workers", 1)
    assert done.returncode == 1
    assert one_line_error(done) == (
        "vlcurate train: no usable samples left in the shards: every shard or sample was skipped "
        f"(`vlcurate train --check --shards {datasets / 'junk'}` counts them by reason)")
    assert not (tmp_path / "ck" / "state.json").exists()


def test_an_unreadable_shard_list_is_named(tmp_path):
    done = train("--check", "--shards", f"@{tmp_path / 'list.txt'}")
    assert done.returncode == 2
    assert one_line_error(done) == f"vlcurate train: cannot read the shard list {tmp_path / 'list.txt'}: No such file or directory"


# --- data that does not fit the stage or the mix -----------------------------------------------------------


def test_sft_data_needs_stage_3(datasets, tmp_path):
    done = train("--shards", datasets / "sft", "--steps", 2, "--output", tmp_path / "ck")
    assert done.returncode == 2
    assert one_line_error(done) == ("vlcurate train: these shards hold SFT conversations (caption, text_only), not "
                                    "pretraining samples: pass --stage 3 to train on them (stage 2 trains on "
                                    "pretraining data)")
    assert not (tmp_path / "ck").exists()


def test_pretraining_data_needs_stage_1_or_2(datasets):
    done = train("--check", "--stage", 3, "--shards", datasets / "docs")
    assert done.returncode == 2
    assert one_line_error(done) == ("vlcurate train: these shards hold pretraining samples (document_ocr), not SFT "
                                    "conversations: pass --stage 1 or 2 to train on them (stage 3 trains on "
                                    "`vlcurate sft` data)")


def test_a_mix_of_routes_the_data_lacks_is_refused(datasets):
    done = train("--check", "--shards", datasets / "docs", "--mix", "web_code=1")
    assert done.returncode == 2
    assert one_line_error(done) == ("vlcurate train: --mix gives no weight to what these shards hold (document_ocr); "
                                    "weigh at least one of them, e.g. --mix document_ocr=1")


@pytest.mark.parametrize("flags, message", [
    (["--mix", "documnt_ocr=1"], "--mix: 'documnt_ocr' is not a route (routes: caption, document_ocr, interleaved, "
                                 "scene_ocr, table_chart, web_code, text_only)"),
    (["--mix", "document_ocr:1"], "--mix: 'document_ocr:1' is not NAME=WEIGHT (e.g. document_ocr=2,text_only=7)"),
    (["--model", "dim=wide"], "--model: dim='wide' is not a number"),
    (["--model", "dim=30"], "--model: dim 30 must be heads (4) x an even head width"),
    (["--steps", "0"], "argument --steps: must be at least 1, not 0"),
    (["--lang-share", "1.5"], "argument --lang-share: must be between 0 and 1, not 1.5"),
    (["--resume", "--overwrite"], "--resume continues the checkpoint in --output, --overwrite replaces it: pass one "
                                  "of them"),
])
def test_bad_flag_values_are_usage_errors(datasets, tmp_path, flags, message):
    done = train("--shards", datasets / "docs", "--steps", 2, "--output", tmp_path / "ck", *flags)
    assert done.returncode == 2
    assert parser_error(done) == f"vlcurate train: error: {message}"


def test_a_mix_file_that_is_not_yaml_is_a_usage_error(datasets, tmp_path):
    mix = tmp_path / "mix.yaml"
    mix.write_text("document_ocr: [1\n")
    done = train("--check", "--shards", datasets / "docs", "--mix", mix)
    assert done.returncode == 2
    assert parser_error(done).startswith(f"vlcurate train: error: --mix: cannot read {mix}: YAML syntax at line 2")


# --- the checkpoint folder --------------------------------------------------------------------------------


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_checkpoint_is_replaced_only_with_overwrite_and_continued_with_resume(datasets, tmp_path):
    ck = tmp_path / "ck"
    assert train("--shards", datasets / "docs", "--steps", 2, "--output", ck).returncode == 0
    (ck / "notes.txt").write_text("mine")
    before = digest(ck / "model.safetensors")

    done = train("--shards", datasets / "docs", "--steps", 3, "--output", ck)
    assert done.returncode == 2
    assert one_line_error(done) == (f"vlcurate train: {ck} holds a checkpoint (step 2): pass --resume to continue it, "
                                    "or --overwrite to start over and replace it")
    assert digest(ck / "model.safetensors") == before
    assert json.loads((ck / "state.json").read_text())["step"] == 2

    done = train("--shards", datasets / "docs", "--steps", 3, "--output", ck, "--overwrite", "--seed", 1)
    assert done.returncode == 0, done.stderr
    assert "resuming" not in done.stdout and json.loads((ck / "state.json").read_text())["step"] == 3
    assert digest(ck / "model.safetensors") != before
    assert (ck / "notes.txt").read_text() == "mine"  # not the checkpoint's: left alone

    done = vlcurate("train", "--shards", datasets / "docs", "--steps", 4, "--output", ck, "--resume")
    assert done.returncode == 0, done.stderr
    assert "resuming from step 3" in done.stdout and json.loads((ck / "state.json").read_text())["step"] == 4


def test_a_damaged_checkpoint_is_named(datasets, tmp_path):
    ck = tmp_path / "ck"
    assert train("--shards", datasets / "docs", "--steps", 1, "--output", ck).returncode == 0
    (ck / "model.safetensors").write_bytes(b"\x10\x00")
    done = vlcurate("train", "--shards", datasets / "docs", "--steps", 2, "--output", ck, "--resume")
    assert done.returncode == 1
    assert one_line_error(done).startswith(f"vlcurate train: unreadable checkpoint: {ck / 'model.safetensors'}: ")
    done = train("--shards", datasets / "docs", "--steps", 2, "--output", tmp_path / "next", "--init", ck)
    assert done.returncode == 1 and "unreadable checkpoint" in one_line_error(done)
    (ck / "state.json").write_text("{")
    done = vlcurate("train", "--shards", datasets / "docs", "--steps", 2, "--output", ck, "--resume")
    assert done.returncode == 1
    assert one_line_error(done).startswith(f"vlcurate train: unreadable checkpoint: {ck / 'state.json'}: Expecting")


@pytest.mark.parametrize("flag", ["--resume", "--init"])
def test_a_folder_without_a_checkpoint_is_refused(datasets, tmp_path, flag):
    where = ["--output", tmp_path, "--resume"] if flag == "--resume" else ["--output", tmp_path / "ck", "--init", tmp_path]
    done = train("--shards", datasets / "docs", "--steps", 2, *where)
    assert done.returncode == 2
    assert one_line_error(done) == (f"vlcurate train: {flag}: no checkpoint in {tmp_path} (no state.json); pass the "
                                    "folder a `vlcurate train` run wrote")


def test_outputs_that_cannot_be_written_are_refused_before_training(datasets, tmp_path):
    (tmp_path / "file").write_text("")
    done = train("--shards", datasets / "docs", "--steps", 2, "--output", tmp_path / "file")
    assert done.returncode == 2
    assert one_line_error(done) == f"vlcurate train: --output {tmp_path / 'file'} is a file; name a folder for the checkpoint"
    log = tmp_path / "no" / "log.jsonl"
    done = train("--shards", datasets / "docs", "--steps", 2, "--output", tmp_path / "ck", "--log-json", log)
    assert done.returncode == 2
    assert one_line_error(done) == f"vlcurate train: --log-json {log}: cannot write it (No such file or directory)"
    assert not (tmp_path / "ck").exists()


# --- chat-format ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, status, message", [
    ('[{"role": "User", "content": "hi", "images": 3}]', 1, "conversation 0: message 0 has bad images 3 (not a list)"),
    ("[]", 1, "{file} holds no conversation (an empty list)"),
    ("{", 2, "{file}: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
])
def test_chat_format_refuses_what_it_cannot_render(tmp_path, text, status, message):
    path = tmp_path / "c.json"
    path.write_text(text)
    done = vlcurate("chat-format", path)
    assert done.returncode == status
    assert one_line_error(done) == "vlcurate chat-format: " + message.format(file=path)
