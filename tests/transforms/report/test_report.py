"""The dataset report: what it reads, what the page holds, and the page itself in headless Chromium
with the network shut (figures render, thumbnails decode, hostile text stays text, no script runs)."""

from __future__ import annotations

import json
import pathlib
import re
from html.parser import HTMLParser

import pytest

from fixtures.report import CLIP_THRESHOLD, HOSTILE, LEAF, PER_CATEGORY, TARGET, write_rich_dataset, write_sft_dataset
from vlcurate.pipelines.tools import report as report_cli
from vlcurate.transforms.report import build as report
from vlcurate.transforms.report.build import (
    REPORT_NAME,
    SHEET_SAMPLES,
    build_report,
    clip_rejects,
    dataset_files,
    excerpt,
    read_manifest,
    scan_index,
    target_of,
    write_report,
)
from vlcurate.transforms.data.sample import Sample

SECTIONS = ("summary", "funnel", "clip", "mix", "labels", "ocr", "sizes", "throughput", "samples")


@pytest.fixture(scope="module")
def rich(tmp_path_factory):
    return write_rich_dataset(str(tmp_path_factory.mktemp("rich")))


@pytest.fixture(scope="module")
def sft_dataset(tmp_path_factory):
    return write_sft_dataset(str(tmp_path_factory.mktemp("sft")))


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    from vlcurate.transforms.sources.web.browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        yield chromium
        chromium.close()


def open_offline(browser, path: str):
    """Open the page with every request but the page itself refused; returns (page, facts)."""
    url = pathlib.Path(path).resolve().as_uri()
    facts = {"blocked": [], "dialogs": [], "errors": []}
    page = browser.new_page()
    page.set_default_timeout(5000)

    def route(request_route):
        if request_route.request.url == url:
            request_route.continue_()
        else:
            facts["blocked"].append(request_route.request.url)
            request_route.abort()

    page.route("**/*", route)
    page.on("dialog", lambda dialog: (facts["dialogs"].append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: facts["errors"].append(str(error)))
    page.goto(url, wait_until="load")
    return page, facts


def image_facts(page) -> list[dict]:
    return page.eval_on_selector_all(
        "img", "images => images.map(i => ({src: i.src.slice(0, 30), complete: i.complete, width: i.naturalWidth}))")


# --- the pieces ---------------------------------------------------------------------------------


@pytest.mark.e2e
def test_scan_index_reads_scores_sizes_and_picks_the_smallest_keys(rich):
    manifest = read_manifest(rich)
    paths = dataset_files(rich, [s["index"]["name"] for s in manifest["shards"]], "index")
    assert len(paths) == len(manifest["shards"]) >= 3  # shards of at most 4 samples
    facts = scan_index(paths, per_category=2, batch_rows=3)  # batches smaller than a file: picks carry over
    assert facts.rows == sum(PER_CATEGORY.values())
    assert len(facts.clip) == PER_CATEGORY["document_ocr"]
    assert len(facts.ocr_confidence) == PER_CATEGORY["document_ocr"] + PER_CATEGORY["scene_ocr"]
    assert len(facts.widths) == len(facts.heights) == len(facts.image_bytes) == 11  # text_only has no image
    all_keys = {}
    for path in paths:
        import pyarrow.parquet as pq

        for row in pq.read_table(path, columns=["key", "category"]).to_pylist():
            all_keys.setdefault(row["category"], []).append(row["key"])
    assert {c: [k for k, _ in chosen] for c, chosen in facts.picks.items()} == {
        c: sorted(keys)[:2] for c, keys in all_keys.items()}


def test_clip_rejects_parse_score_and_threshold(rich):
    scores, thresholds = clip_rejects(dataset_files(rich, ["rejects/t-rejects-000000.parquet"], "rejects"))
    assert sorted(scores) == [-0.4, -0.35]
    assert thresholds == [CLIP_THRESHOLD]


def test_target_mix_comes_from_the_argument_or_the_config():
    assert target_of({"config": {"target_mix": {"a": 1.0}}}, None) == {"a": 1.0}
    assert target_of({"config": {"sft": {"target_mix": {"b": 1.0}}}}, None) == {"b": 1.0}
    assert target_of({"config": {"target_mix": {"a": 1.0}}}, {"c": 1.0}) == {"c": 1.0}
    assert target_of({}, None) is None


def test_excerpt_is_the_text_or_the_first_user_turn():
    talk = Sample(key="sft-1", source="sft", category="interleaved", uri="u", locator="", text="",
                  conversation=[{"role": "User", "content": "what is  this?\n"}, {"role": "Assistant", "content": "x"}])
    assert excerpt(talk) == "what is this?"
    long = Sample(key="t-1", source="text", category="text_only", uri="u", locator="", text="a " * 400)
    assert len(excerpt(long, 20)) <= 24 and excerpt(long, 20).endswith("...")


def test_only_the_needed_shards_are_read_and_only_up_to_the_picks(rich, monkeypatch):
    from vlcurate.transforms.io import shard_reader

    read = []
    real = shard_reader.read_shard

    def counting(path, *args, **kwargs):
        for sample in real(path, *args, **kwargs):
            read.append(sample.key)
            yield sample

    monkeypatch.setattr(shard_reader, "read_shard", counting)
    manifest = read_manifest(rich)
    facts = scan_index(dataset_files(rich, [s["index"]["name"] for s in manifest["shards"]], "index"), per_category=1)
    sheet = report.sheet_samples(rich, facts.picks)
    assert {c: len(s) for c, s in sheet.items()} == {"document_ocr": 1, "scene_ocr": 1, "text_only": 1}
    assert len(read) < sum(PER_CATEGORY.values())


# --- the page -----------------------------------------------------------------------------------


class _Tags(HTMLParser):
    """Every tag of a page with its attributes."""

    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


@pytest.mark.e2e
def test_report_is_deterministic_escaped_and_self_contained(rich):
    first = build_report(rich)
    assert build_report(rich) == first
    parser = _Tags()
    parser.feed(first)
    names = [tag for tag, _ in parser.tags]
    assert "script" not in names and names.count("img") == len(re.findall("<img ", first))
    for tag, attrs in parser.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)  # no event handlers
        for name in ("src", "href"):
            assert attrs.get(name, "data:").startswith("data:"), (tag, attrs)  # nothing to fetch
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in first
    assert "http://" not in first and "https://" not in first


def test_rich_report_in_chromium(rich, browser):
    path = write_report(rich)
    assert path == f"{rich}/{REPORT_NAME}"
    page, facts = open_offline(browser, path)
    try:
        for anchor in SECTIONS:
            assert page.locator(f"#{anchor}").count() == 1, anchor
        for anchor in ("fig-funnel", "fig-funnel-stages", "fig-clip", "fig-mix", "fig-categories", "fig-labels", "fig-ocr", "fig-sizes"):
            assert page.locator(f"#{anchor} img").count() == 1, anchor
        images = image_facts(page)
        assert images and all(i["complete"] and i["width"] > 0 for i in images), images
        assert all(i["src"].startswith("data:image/") for i in images)
        thumbs = {c: page.locator(f".sheet[data-category='{c}'] img.thumb").count() for c in PER_CATEGORY}
        assert thumbs == {"document_ocr": SHEET_SAMPLES, "scene_ocr": 3, "text_only": 0}
        assert page.locator(".sheet[data-category='text_only'] .card").count() == 2
        # the hostile text is shown as text; nothing ran, nothing was fetched
        texts = page.locator(".sheet[data-category='document_ocr'] .text").all_inner_texts()
        assert len(texts) == SHEET_SAMPLES and all(t.startswith(HOSTILE) for t in texts)
        assert page.evaluate("document.scripts.length") == 0
        assert facts == {"blocked": [], "dialogs": [], "errors": []}
        body = page.inner_text("body")
        assert "inputs = samples + rejected + filtered: 16 = 13 + 1 + 2" in body and "balanced" in body
        assert f"threshold {CLIP_THRESHOLD:.4g}" in page.inner_text("#clip")
        mix = page.inner_text("#mix-categories")
        assert f"document_ocr\t8\t61.5%\t{TARGET['document_ocr']:.1%}\t+11.5 points" in mix
        assert f"{LEAF}\t2" in page.inner_text("#labels-leaves")
        assert "(review)\t1" in page.inner_text("#labels-main")
        throughput = page.inner_text("#throughput-table")
        assert "render\t300\t1.5\t200.00\t-" in throughput and "clip\t15\t0\t-\t-" in throughput
        assert page.locator("#funnel-stages tbody tr").count() == 2
        assert "clip\tclip_below_threshold\tfiltered\t2" in page.inner_text("#funnel-reasons")
    finally:
        page.close()


def test_sft_report_says_what_was_not_recorded(sft_dataset, browser, capsys):
    manifest_path = f"{sft_dataset}/manifest.json"
    manifest = read_manifest(sft_dataset)
    for recent in ("throughput", "funnel", "quality"):  # as a dataset written before runs recorded them
        manifest.pop(recent, None)
    with open(manifest_path, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle)
    assert report_cli.run([sft_dataset, "--target-mix", "interleaved=3,text_only=1"]) == 0
    assert capsys.readouterr().out.strip() == f"{sft_dataset}/{REPORT_NAME}"
    page, facts = open_offline(browser, f"{sft_dataset}/{REPORT_NAME}")
    try:
        for anchor, phrase in (("clip", "CLIP scores: not recorded"), ("ocr", "OCR confidences: not recorded"),
                               ("labels", "Taxonomy labels: not recorded"), ("throughput", "Throughput: not recorded")):
            assert phrase in page.inner_text(f"#{anchor}"), anchor
            assert page.locator(f"#{anchor} img").count() == 0
        assert "interleaved\t9\t90.0%\t75.0%\t+15.0 points" in page.inner_text("#mix-categories")
        images = image_facts(page)
        assert all(i["complete"] and i["width"] > 0 for i in images), images
        assert page.locator(".sheet[data-category='interleaved'] img.thumb").count() == SHEET_SAMPLES
        assert page.locator(".sheet[data-category='text_only'] .card").count() == 1
        assert facts == {"blocked": [], "dialogs": [], "errors": []}
    finally:
        page.close()


def test_report_cli_errors(tmp_path, capsys):
    assert report_cli.run([str(tmp_path / "missing")]) == 1
    assert "manifest.json" in capsys.readouterr().err
    assert report_cli.run([str(tmp_path), "--target-mix", "a=x"]) == 2
