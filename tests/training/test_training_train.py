"""`vlcurate train` end to end on shards written by the sink: the loss falls, a resumed run sees
the same samples in the same order as a straight one, stages freeze what the paper freezes,
missing sources are logged, and two gloo processes under torchrun read disjoint data."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from fixtures.training import TINY_MODEL, mixed_samples, pretraining_sample, write_dataset

from vlcurate.training.model import ModelConfig, VisionLanguageModel, set_stage
from vlcurate.training.train import learning_rate, model_config
from vlcurate.training.train import run as train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("mixed"))
    write_dataset(folder, mixed_samples(), per_shard=25)
    return folder


def train_args(shards, output, steps, *extra):
    return ["--shards", *([shards] if isinstance(shards, str) else shards), "--steps", str(steps), "--output",
            str(output), "--model", TINY_MODEL, "--warmup-steps", "20", "--log-every", "10", "--workers", "2",
            "--threads", "1", *extra]


def json_lines(path):
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.mark.e2e
def test_loss_falls_and_the_log_has_its_fields(mixed, tmp_path):
    log = tmp_path / "log.jsonl"
    assert train(train_args(mixed, tmp_path / "ckpt", 80, "--lr", "3e-3", "--log-json", str(log))) == 0
    lines = json_lines(log)
    assert [line["step"] for line in lines] == list(range(10, 81, 10))
    assert {"step", "loss", "lr", "lang_share", "samples_per_s", "data_wait"} <= set(lines[0])
    first, last = lines[0]["loss"], lines[-1]["loss"]
    assert first > 4.5 and last < first - 1.5, (first, last)  # bytes start near ln(264) = 5.6
    assert 0 <= lines[-1]["data_wait"] <= 1 and lines[-1]["samples_per_s"] > 0
    assert lines[0]["lang_share"] > lines[-1]["lang_share"]  # the warm-up starts on language
    state = json.loads((tmp_path / "ckpt" / "state.json").read_text())
    assert state["step"] == 80 and state["model"]["low_size"] == 32
    assert set(load_file(str(tmp_path / "ckpt" / "model.safetensors"))) >= {"embed.weight", "adaptor.out.weight"}


@pytest.mark.e2e
def test_resume_sees_the_same_samples_in_the_same_order(mixed, tmp_path):
    straight, split = tmp_path / "straight.jsonl", tmp_path / "split.jsonl"
    assert train(train_args(mixed, tmp_path / "a", 100, "--log-samples", str(straight))) == 0
    assert train(train_args(mixed, tmp_path / "b", 50, "--schedule-steps", "100", "--log-samples", str(split))) == 0
    assert json.loads((tmp_path / "b" / "state.json").read_text())["step"] == 50
    assert train(["--shards", mixed, "--steps", "100", "--output", str(tmp_path / "b"), "--resume", "--threads", "1",
                  "--log-samples", str(split)]) == 0
    a, b = json_lines(straight), json_lines(split)
    assert [line["step"] for line in b] == list(range(100))
    assert [line["keys"] for line in a] == [line["keys"] for line in b]
    # model, optimiser and data all continue: the losses agree too
    assert [line["loss"] for line in a] == pytest.approx([line["loss"] for line in b], rel=1e-4)


@pytest.mark.e2e
def test_a_dataset_without_text_trains_on_what_it_has(tmp_path, capsys):
    folder = str(tmp_path / "docs")
    write_dataset(folder, [pretraining_sample("document_ocr", n) for n in range(30)], prefix="docs", per_shard=10)
    log = tmp_path / "log.jsonl"
    assert train(train_args(folder, tmp_path / "ckpt", 10, "--mix", "document_ocr=2,web_code=1,text_only=7",
                            "--log-json", str(log))) == 0
    out = capsys.readouterr().out
    assert "no pretrain samples of text_only" in out and "no pretrain samples of web_code" in out
    assert "every batch is multimodal" in out
    assert json_lines(log)[-1]["lang_share"] == 0.0


def test_resume_without_checkpoint_fails_cleanly(mixed, tmp_path):
    assert train(["--shards", mixed, "--steps", "5", "--output", str(tmp_path / "none"), "--resume"]) == 2


def test_stages_train_what_the_paper_trains():
    model = VisionLanguageModel(model_config(TINY_MODEL))

    def trained():
        return {name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad}

    set_stage(model, 1)
    assert trained() == {"adaptor"}
    set_stage(model, 2)
    assert trained() == {"adaptor", "embed", "blocks", "norm", "head"}
    set_stage(model, 3)
    assert trained() == {"adaptor", "embed", "blocks", "norm", "head", "low"}


def test_defaults_are_deepseek_vl_sizes():
    config = ModelConfig()
    assert (config.low_size, config.high_size, config.image_tokens) == (384, 1024, 576)
    model = VisionLanguageModel(model_config("low_size=32,high_size=64,patch=8,high_patch=8,dim=32,heads=2"))
    low = model.low(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    high = model.high(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
    assert low.shape[1] == high.shape[1] == 16  # both branches give the same number of tokens


def test_learning_rate_schedules():
    assert learning_rate(0, 1.0, 10, 100, "cosine") == pytest.approx(0.1)
    assert learning_rate(10, 1.0, 10, 100, "cosine") == pytest.approx(1.0)
    assert learning_rate(100, 1.0, 10, 100, "cosine") == pytest.approx(0.1)
    assert [learning_rate(s, 1.0, 0, 100, "step") for s in (50, 85, 95)] == pytest.approx([1.0, 0.1, 0.01])


@pytest.mark.e2e
def test_torchrun_two_gloo_processes_read_disjoint_data(mixed, tmp_path):
    samples = tmp_path / "samples.jsonl"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [os.path.join(os.path.dirname(sys.executable), "torchrun"), "--standalone", "--nproc_per_node=2",
               "-m", "vlcurate.training.train",
               *train_args(mixed, tmp_path / "ckpt", 12, "--workers", "1", "--warmup-steps", "0",
                           "--log-samples", str(samples))]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "step 12" in done.stdout
    ranks = [json_lines(f"{samples}.rank{rank}") for rank in (0, 1)]
    keys = [{key for line in lines for key in line["keys"]} for lines in ranks]
    assert all(len(lines) == 12 for lines in ranks) and all(len(k) > 20 for k in keys)
    assert not keys[0] & keys[1]
    # both ranks agree on each step's modality (the schedule needs no communication)
    assert [line["language"] for line in ranks[0]] == [line["language"] for line in ranks[1]]
    state = json.loads((tmp_path / "ckpt" / "state.json").read_text())
    assert state["world"] == 2 and state["step"] == 12
    assert (tmp_path / "ckpt" / "data-rank1.json").exists()


def test_check_reads_every_shard_once_through_the_cli(mixed, capsys):
    from vlcurate.pipelines.cli import main

    assert main(["train", "--check", "--shards", mixed, "--model", TINY_MODEL]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {"skipped": {}, "usable": {"document_ocr": 120, "table_chart": 30, "text_only": 200,
                                                "web_code": 60}}
    assert main(["train", "--check", "--stage", "3", "--shards", mixed, "--model", TINY_MODEL]) == 0
    assert json.loads(capsys.readouterr().out)["usable"] == {"caption": 60, "text_only": 20}


def test_a_stage_starts_from_the_previous_stages_weights(mixed, tmp_path):
    assert train(train_args(mixed, tmp_path / "s1", 5, "--stage", "1")) == 0
    assert train(["--shards", mixed, "--stage", "2", "--steps", "5", "--output", str(tmp_path / "s2"), "--init",
                  str(tmp_path / "s1"), "--threads", "1", "--workers", "1", "--lr", "0"]) == 0
    before, after = (load_file(str(tmp_path / name / "model.safetensors")) for name in ("s1", "s2"))
    assert before.keys() == after.keys()
    assert all(torch.equal(before[name], after[name]) for name in before)  # lr 0: nothing moved
    assert json.loads((tmp_path / "s2" / "state.json").read_text())["model"]["low_size"] == 32
