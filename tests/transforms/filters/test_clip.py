"""CLIP scoring and filtering with a real open_clip model: a tiny architecture registered from
examples/models/tiny-clip.json with random, seeded weights saved as a checkpoint by the test (no
package ships CLIP weights, and nothing may be downloaded here). Scores from the Beam stage must
equal open_clip's own on the same inputs; the filters keep exactly the expected keys."""

from __future__ import annotations

import io
import json
import logging
import pathlib
import sys

import apache_beam as beam
import numpy as np
import pytest
import pyarrow.parquet as pq
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from PIL import Image as PILImage

from fixtures import EXAMPLES
from vlcurate.pipelines import cli
from vlcurate.transforms.filters.clip import FilterClip, ScoreClip, load_model
from vlcurate.transforms.filters.clip_config import ClipConfig, resolve
from vlcurate.transforms.data.sample import Sample, encode_image, make_key
from vlcurate.transforms.io.shard_reader import read_shard

sys.path.insert(0, str(EXAMPLES))
import make_tiny_clip  # noqa: E402

MODEL_CONFIG = str(make_tiny_clip.CONFIG)
FNAPI = ["--runner=FnApiRunner"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return str(make_tiny_clip.write(tmp_path_factory.mktemp("clip") / "tiny-clip.pt"))


@pytest.fixture(scope="module")
def config(checkpoint):
    return resolve(ClipConfig(model="tiny-clip", model_config=MODEL_CONFIG, checkpoint=checkpoint,
                              min_batch=2, max_batch=4))


def make_samples(count: int = 10) -> list[Sample]:
    rng = np.random.default_rng(7)
    samples = []
    for i in range(count):
        pixels = rng.integers(0, 255, (48 + 3 * i, 64, 3), dtype=np.uint8)
        category = "scene_ocr" if i % 2 else "caption"
        samples.append(Sample(key=make_key("ocr", f"image {i}"), source="ocr", category=category, uri=f"mem://{i}",
                              locator="", images=(encode_image(PILImage.fromarray(pixels), "png"),),
                              text=f"a photo of thing number {i} " + "word " * (i * 7)))
    return samples


def direct_scores(config: ClipConfig, samples) -> dict[str, float]:
    """open_clip alone, one pair at a time: the reference the pipeline must match."""
    import torch

    loaded = load_model(config)
    out = {}
    with torch.no_grad():
        for sample in samples:
            image = loaded.preprocess(PILImage.open(io.BytesIO(sample.images[0].data)).convert("RGB")).unsqueeze(0)
            image_features = torch.nn.functional.normalize(loaded.model.encode_image(image), dim=-1)
            text_features = torch.nn.functional.normalize(loaded.model.encode_text(loaded.tokenizer([sample.text])), dim=-1)
            out[sample.key] = float((image_features * text_features).sum())
    return out


# What a pipeline's elements were, by label: the in-process runner calls _keep in this process,
# through this module (a list passed into a lambda would be pickled, and filled as a copy).
_COLLECTED: dict[str, list] = {}


def _keep(element, label):
    _COLLECTED.setdefault(label, []).append(element)


def collect(pcoll, label: str) -> list:
    _COLLECTED[label] = []
    pcoll | f"Collect{label}" >> beam.Map(_keep, label)
    return _COLLECTED[label]


def run_stage(config: ClipConfig, samples):
    """Kept {key: score} and rejected (key, reason, detail) of ScoreClip + FilterClip."""
    with TestPipeline(options=PipelineOptions(FNAPI)) as pipeline:
        judged = pipeline | beam.Create(samples) | ScoreClip(config) | FilterClip(config)
        kept, rejected = collect(judged["samples"], "kept"), collect(judged["rejects"], "rejected")
    return ({pair[0].key: pair[0].scores.get("clip") for pair in kept},
            [(row.key, row.reason, row.detail) for row in rejected])


def test_scores_equal_open_clip_on_the_same_inputs(config):
    samples = make_samples()
    expected = direct_scores(config, samples)
    with TestPipeline(options=PipelineOptions(FNAPI)) as pipeline:
        scored = collect(pipeline | beam.Create(samples) | ScoreClip(config), "scored")
    assert len(scored) == len(samples)
    for sample, embedding in scored:
        assert sample.scores["clip"] == pytest.approx(expected[sample.key], abs=1e-5)
        assert len(embedding) == 32 and np.linalg.norm(embedding) == pytest.approx(1, abs=1e-4)
        assert sample.provenance["clip"] == {"model": "tiny-clip", "pretrained": "",
                                             "checkpoint_sha256": config.checkpoint_sha256}


@pytest.mark.e2e
def test_min_score_and_keep_fraction_keep_exactly_the_expected_keys(config):
    samples = make_samples()
    scores = direct_scores(config, samples)
    ranked = sorted(scores, key=scores.get, reverse=True)
    floor = scores[ranked[4]]  # keeps the top five
    kept, rejected = run_stage(ClipConfig(**{**config.__dict__, "min_score": floor}), samples)
    assert set(kept) == set(ranked[:5])
    assert {key for key, reason, _ in rejected} == set(ranked[5:]) and {r for _, r, _ in rejected} == {"clip_below_threshold"}
    assert all(f"clip={scores[key]:.6f}" in detail for key, _, detail in rejected)  # the score, for a later run
    kept, _ = run_stage(ClipConfig(**{**config.__dict__, "keep_fraction": 0.3}), samples)
    assert set(kept) == set(ranked[:3])


@pytest.mark.e2e
def test_keep_fraction_per_category(config):
    samples = make_samples()
    scores = direct_scores(config, samples)
    kept, _ = run_stage(ClipConfig(**{**config.__dict__, "keep_fraction": 0.4, "per_category": True}), samples)
    expected = set()
    for category in ("caption", "scene_ocr"):
        members = sorted((s.key for s in samples if s.category == category), key=scores.get, reverse=True)
        expected |= set(members[:2])  # 40% of five
    assert set(kept) == expected


def test_samples_without_text_or_image_pass_unscored(config):
    no_text = Sample(key=make_key("ocr", "silent"), source="ocr", category="scene_ocr", uri="mem://silent", locator="",
                     images=make_samples(1)[0].images, text="")
    no_image = Sample(key=make_key("text", "words"), source="text", category="text_only", uri="mem://words",
                      locator="", text="only words")
    kept, rejected = run_stage(ClipConfig(**{**config.__dict__, "min_score": 0.99}), [no_text, no_image])
    assert set(kept) == {no_text.key, no_image.key} and rejected == []


def run_cli(command: str, argv) -> dict:
    assert cli.main([command, *argv]) == 0
    output = pathlib.Path(argv[argv.index("--output") + 1])
    return json.loads((output / "manifest.json").read_text())


def clip_flags(checkpoint: str) -> list[str]:
    return ["--clip-model", "tiny-clip", "--clip-model-config", MODEL_CONFIG, "--clip-checkpoint", checkpoint]


@pytest.mark.e2e
def test_every_pipeline_takes_the_clip_flags_and_counts_what_they_filter(checkpoint, tmp_path):
    output = tmp_path / "notebooks"
    manifest = run_cli("notebooks", ["--input", str(EXAMPLES / "notebooks"), "--output", str(output),
                                     *clip_flags(checkpoint), "--clip-keep-fraction", "0.5"])
    # the demo notebooks: 4 pairs (and 2 filtered cells); the top half of the pairs is kept
    assert manifest["totals"] == {"inputs": 6, "samples": 2, "rejected": 0, "filtered": 4, "balanced": True}
    assert manifest["rejects"]["by_reason"]["clip_below_threshold"] == 2
    assert manifest["models"]["clip"]["checkpoint_sha256"] == resolve(
        ClipConfig(model="tiny-clip", model_config=MODEL_CONFIG, checkpoint=checkpoint)).checkpoint_sha256
    assert manifest["config"]["quality"]["clip"]["keep_fraction"] == 0.5
    kept = list(read_shard(str(output / manifest["shards"][0]["name"])))
    assert all("clip" in sample.scores for sample in kept)
    [rejects_file] = (output / "rejects").iterdir()
    rows = [row for row in pq.read_table(rejects_file).to_pylist() if row["reason"] == "clip_below_threshold"]
    assert all(row["key"] and row["detail"].startswith("clip=") for row in rows)


@pytest.mark.e2e
def test_vlcurate_filter_rescores_an_existing_dataset(checkpoint, tmp_path):
    first = tmp_path / "first"
    run_cli("notebooks", ["--input", str(EXAMPLES / "notebooks"), "--output", str(first)])
    manifest = run_cli("filter", ["--input", str(first), "--output", str(tmp_path / "second"),
                                  *clip_flags(checkpoint), "--clip-min-score", "-1"])
    assert manifest["totals"] == {"inputs": 4, "samples": 4, "rejected": 0, "filtered": 0, "balanced": True}
    assert manifest["config"]["filter"]["dataset"] == str(first)
    again = run_cli("filter", ["--input", str(first), "--output", str(tmp_path / "third"), *clip_flags(checkpoint),
                               "--clip-min-score", "1.0", "--allow-empty"])  # an empty dataset is refused without
    assert again["totals"]["samples"] == 0 and again["rejects"]["by_reason"] == {"clip_below_threshold": 4}


def test_missing_weights_stop_the_run_with_one_message(checkpoint, tmp_path):
    base = ["notebooks", "--input", str(EXAMPLES / "notebooks"), "--output", str(tmp_path / "out"),
            "--clip-model", "tiny-clip", "--clip-model-config", MODEL_CONFIG]
    with pytest.raises(SystemExit, match="has no weights; pass --clip-checkpoint PATH"):
        cli.main(base)
    with pytest.raises(SystemExit, match="no CLIP checkpoint at /nowhere.pt"):
        cli.main([*base, "--clip-checkpoint", "/nowhere.pt"])
    with pytest.raises(SystemExit, match="vlcurate models fetch clip"):
        cli.main([*base, "--clip-pretrained", "openai"])  # no such tag for it, and no network anyway
    with pytest.raises(SystemExit, match="unknown CLIP model"):
        cli.main(["notebooks", "--input", str(EXAMPLES / "notebooks"), "--output", str(tmp_path / "out"),
                  "--clip-model", "no-such-model", "--clip-checkpoint", checkpoint])
    assert not (tmp_path / "out").exists()


def test_models_fetch_fails_with_one_clear_message(tmp_path):
    # The download itself needs network (a connected machine); an unknown tag fails before it.
    with pytest.raises(SystemExit, match="cannot fetch ViT-B-32/no-such-tag"):
        cli.main(["models", "fetch", "clip", "--model", "ViT-B-32", "--pretrained", "no-such-tag",
                  "--output", str(tmp_path / "weights.pt")])
    assert not (tmp_path / "weights.pt").exists()


@pytest.mark.e2e
def test_vlcurate_filter_turns_a_damaged_shard_into_a_read_error_row(tmp_path):
    first = tmp_path / "first"
    source = run_cli("notebooks", ["--input", str(EXAMPLES / "notebooks"), "--output", str(first),
                                   "--max-samples-per-shard", "2"])
    shards = [first / shard["name"] for shard in source["shards"]]
    assert len(shards) >= 2
    cut, gone = shards[0], shards[-1]
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])  # a copy cut short
    gone.unlink()
    manifest = run_cli("filter", ["--input", str(first), "--output", str(tmp_path / "second"), "--dedup", "exact"])
    assert manifest["rejects"]["by_reason"] == {"read_error": 2}
    totals = manifest["totals"]
    assert totals["balanced"] and totals["rejected"] == 2 and totals["samples"] < 4
    assert totals["inputs"] == totals["samples"] + 2


def test_loading_a_checkpoint_says_nothing_of_random_weights_and_loads_them(config, caplog):
    """open_clip warns that a model made without a pretrained tag is random; ours gets the
    checkpoint's weights right after, so that warning would be false and is not shown."""
    import torch

    caplog.set_level(logging.WARNING)
    loaded = load_model(config)
    assert not [record for record in caplog.records if "random" in record.getMessage()]
    saved = torch.load(config.checkpoint, map_location="cpu", weights_only=True)
    saved = saved.get("state_dict", saved)
    state = loaded.model.state_dict()
    assert saved.keys() == state.keys()
    assert all(torch.equal(saved[name], state[name]) for name in saved)
    logging.warning("open_clip's other warnings still show")  # the filter is gone again
    assert caplog.records[-1].getMessage() == "open_clip's other warnings still show"
