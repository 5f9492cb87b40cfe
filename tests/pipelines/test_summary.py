"""The console summary and the manifest's funnel: stages in the order they ran, annotating stages as
what they did, reasons under their own kind, and a dataset of several runs summed like its totals."""

from __future__ import annotations

import json

from vlcurate.pipelines import cli
from vlcurate.pipelines.summary import summary
from vlcurate.transforms.runtime.funnel import add_up

MANIFEST = {
    "pipeline": "sft", "created": "2026-12-03T00:00:00+00:00",
    "totals": {"inputs": 40, "samples": 35, "rejected": 3, "filtered": 2, "balanced": True},
    "labels": {"recognition/ocr": 30, "(review)": 5},
    "rejects": {"by_reason": {"duplicate_exact": 2, "internal_error": 1, "sft_malformed": 2},
                "by_stage": {"sft": {"sft_malformed": 2}, "label": {"internal_error": 1},
                             "dedup": {"duplicate_exact": 2}}},
    # in the order the stages ran: reading files, then records, then labels
    "funnel": [{"stage": "sft_file", "in": 3, "out": 40}, {"stage": "sft", "in": 40, "out": 38},
               {"stage": "label", "in": 38, "out": 37}],
    "throughput": {"label": {"elements": 38, "per_second": 30.0}, "sft": {"elements": 40, "per_second": 40.0},
                   "sft_file": {"elements": 3, "per_second": 900.0}},
}


def test_summary_lists_stages_as_they_ran_and_labels_as_what_they_did():
    lines = summary("out/sft", MANIFEST).splitlines()
    stages = lines[lines.index("stages        elements in -> outputs, elements/s") + 1:-1]
    assert stages == ["  sft_file: 3 -> 40, 900.0/s", "  sft: 40 -> 38, 40.0/s", "  label: 38 labelled, 1 rejected, 30.0/s"]
    unlabelled = summary("out/sft", {**MANIFEST, "labels": {}})  # language id only: no labeler ran
    assert "  label: 38 language-identified, 1 rejected, 30.0/s" in unlabelled.splitlines()


def test_summary_puts_each_reason_under_its_own_kind():
    lines = summary("out/sft", MANIFEST).splitlines()
    start = lines.index("rejected      3: internal_error 1, sft_malformed 2")
    assert lines[start:start + 5] == ["rejected      3: internal_error 1, sft_malformed 2",
                                      "  sft: sft_malformed 2", "  label: internal_error 1",
                                      "filtered      2: duplicate_exact 2", "  dedup: duplicate_exact 2"]


def test_runs_add_up_stage_by_stage():
    first = ({"a": {"elements": 10, "seconds": 2.0, "mean_element_s": 0.1}},
             [{"stage": "a", "in": 10, "out": 10}])
    second = ({"b": {"elements": 4, "seconds": 1.0, "mean_element_s": 0.2},
               "a": {"elements": 20, "seconds": 2.0, "mean_element_s": 0.4}},
              [{"stage": "b", "in": 4, "out": 4, "replayed": 1}, {"stage": "a", "in": 20, "out": 18}])
    throughput, funnel = add_up([first, second])
    assert funnel == [{"stage": "a", "in": 30, "out": 28}, {"stage": "b", "in": 4, "out": 4, "replayed": 1}]
    assert throughput["a"] == {"elements": 30, "seconds": 4.0, "per_second": 7.5, "mean_element_s": 0.3}
    assert throughput["b"]["per_second"] == 4.0


def documents(path, *texts):
    path.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts))


def test_an_extended_dataset_sums_the_funnel_and_throughput_of_its_runs(tmp_path, capsys):
    texts, output = tmp_path / "texts", tmp_path / "out"
    texts.mkdir()
    documents(texts / "a.jsonl", "First document, with words enough.", "Second document, also with words.")
    common = ["--input", str(texts), "--output", str(output), "--progress-interval", "0"]
    assert cli.main(["text", *common]) == 0
    documents(texts / "b.jsonl", "A third document, added later.", "", "A fourth one.")
    assert cli.main(["text", *common, "--mode", "extend"]) == 0
    runs = [json.loads((output / "runs" / f"run-000{n}.json").read_text()) for n in (1, 2)]
    merged = json.loads((output / "manifest.json").read_text())
    # the stages in the order they ran, reading the files before the documents (not alphabetical)
    assert [row["stage"] for row in runs[0]["funnel"]] == ["text_file", "text"]
    assert [row["stage"] for row in merged["funnel"]] == ["text_file", "text"]
    for row in merged["funnel"]:
        for field in ("in", "out"):
            assert row[field] == sum(next(r[field] for r in run["funnel"] if r["stage"] == row["stage"]) for run in runs)
    text = merged["throughput"]["text"]
    assert text["elements"] == sum(run["throughput"]["text"]["elements"] for run in runs) == 2 + 5
    assert text["seconds"] == round(sum(run["throughput"]["text"]["seconds"] for run in runs), 6)
    assert text["per_second"] == round(text["elements"] / text["seconds"], 2)
    assert merged["totals"]["inputs"] == 2 + 5  # the funnel counts what the summed totals count
    printed = capsys.readouterr().out.split("dataset       ")[-1]  # the second run's summary
    assert f"  text_file: 3 -> {2 + 5}" in printed and f"  text: {2 + 5} -> {2 + 4}" in printed
