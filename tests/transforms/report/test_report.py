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

SECTIONS = ("summary", "funnel", "clip", "mix", "sources", "languages", "labels", "ocr", "sizes", "throughput",
            "samples", "examples")


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
def test_scan_index_reads_scores_sizes_and_picks_a_seeded_random_sample(rich):
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
    picked = {c: sorted(k for _, k, _ in chosen) for c, chosen in facts.picks.items()}
    # the two keys of each category with the smallest seeded rank, whatever order the files come in
    assert picked == {c: sorted(sorted(keys, key=report.rank)[:2]) for c, keys in all_keys.items()}
    assert picked["scene_ocr"] != sorted(all_keys["scene_ocr"])[:2]  # not the smallest keys
    assert facts.sources == {"pdf": 8, "ocr": 3, "text": 2}
    assert scan_index(reversed(paths), per_category=2).picks == facts.picks


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
    ids = {attrs["id"] for _, attrs in parser.tags if "id" in attrs}
    links = [attrs["href"] for _, attrs in parser.tags if "href" in attrs]
    for tag, attrs in parser.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)  # no event handlers
        assert attrs.get("src", "data:").startswith("data:"), (tag, attrs)  # nothing to fetch
    # links only inside the page, each to an anchor it has: every category and reason to its examples
    assert all(href.startswith("#") and href[1:] in ids for href in links), links
    assert {"#samples-document_ocr", "#samples-scene_ocr", "#samples-text_only", "#examples-clip_below_threshold",
            "#examples-pdf_corrupt"} <= set(links)
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
        # a reason leads to its examples, a category to its samples, inside the page
        page.click("#funnel-reasons a[href='#examples-pdf_corrupt']")
        assert page.evaluate("location.hash") == "#examples-pdf_corrupt"
        assert "/in/bad.pdf" in page.inner_text(".sheet[data-reason='pdf_corrupt']")
        page.click("#mix-categories a[href='#samples-text_only']")
        assert page.evaluate("location.hash") == "#samples-text_only"
        assert facts == {"blocked": [], "dialogs": [], "errors": []}
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


# --- examples of rejects, sources, languages ----------------------------------------------------------


def write_dropping_dataset(folder: pathlib.Path) -> tuple[str, dict]:
    """Two OCR samples (one with a language), one text sample, and reject rows of four kinds: an input
    image (its file is there), a duplicate whose key the dataset holds, a PDF, and five blocked URLs."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
    from PIL import Image as PILImage

    from vlcurate.transforms.data.rejects import RejectRecord
    from vlcurate.transforms.data.sample import encode_image, make_key
    from vlcurate.transforms.io.shards import ShardConfig, WriteDataset

    picture = folder / "blank-sign.png"
    PILImage.new("RGB", (120, 60), (200, 40, 40)).save(picture)
    signs = [Sample(key=make_key("ocr", "sign", n), source="ocr", category="scene_ocr", uri=f"/in/sign{n}.png",
                    locator="", images=(encode_image(PILImage.new("RGB", (50, 30), (0, 90 * n, 200)), "png"),),
                    text=f"SIGN {n}", meta={"language": {"id": "en", "confidence": 0.9}} if n else {})
             for n in range(2)]
    prose = Sample(key=make_key("text", "t", 0), source="text", category="text_only", uri="/in/t.txt", locator="",
                   text="plain words", meta={"language": {"id": "de", "confidence": 0.8}})
    rejects = [
        RejectRecord(stage="ocr_image", reason="ocr_empty", uri=str(picture), detail="no text found"),
        RejectRecord(stage="sink", reason="duplicate_key", uri="/in/copy-of-sign1.png", key=signs[1].key,
                     detail="kept /in/sign1.png"),
        RejectRecord(stage="pdf_document", reason="pdf_corrupt", uri="/in/bad.pdf", detail="not a PDF"),
        *[RejectRecord(stage="web_page", reason="url_blocked", uri=f"http://10.0.0.{n}/", detail="private address")
          for n in range(5)],
    ]
    output = str(folder / "out")
    with BeamTestPipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        _ = {
            "samples": p | "Samples" >> beam.Create([*signs, prose]),
            "rejects": p | "Rejects" >> beam.Create(rejects),
            "inputs": p | "Inputs" >> beam.Create([s.key for s in [*signs, prose]] + [r.uri for r in rejects]),
        } | WriteDataset(ShardConfig(output=output, prefix="d"), run={"pipeline": "ocr_images"})
    return output, {"signs": signs, "rejects": rejects}


@pytest.mark.e2e
def test_report_shows_examples_per_reason_sources_and_languages(tmp_path):
    from vlcurate.transforms.report import examples

    dataset, made = write_dropping_dataset(tmp_path)
    page = build_report(dataset)
    assert build_report(dataset) == page  # the examples are a seeded sample: the same page every time
    parser = _Tags()
    parser.feed(page)
    sections = {}  # reason -> its example cards' images and texts
    for reason in ("ocr_empty", "duplicate_key", "pdf_corrupt", "url_blocked"):
        start = page.index(f'<h3 id="examples-{reason}">')
        block = page[start:page.index("</div>\n</div>", start)]
        sections[reason] = block
        assert f'href="#examples-{reason}"' in page  # the funnel's reason links to its examples
    # the input image is shown from its file; the duplicate by the dataset's sample with its key
    assert sections["ocr_empty"].count("<img ") == 1 and "the input file" in sections["ocr_empty"]
    assert sections["duplicate_key"].count("<img ") == 1 and "the dataset&#x27;s sample with this key" in sections["duplicate_key"]
    assert made["signs"][1].key in sections["duplicate_key"]
    # a PDF and URLs are not rendered or fetched: their words only
    assert "<img " not in sections["pdf_corrupt"] and "/in/bad.pdf" in sections["pdf_corrupt"]
    assert "not a PDF" in sections["pdf_corrupt"]
    assert "<img " not in sections["url_blocked"]
    shown = re.findall(r"http://10\.0\.0\.(\d)/", sections["url_blocked"])
    expected = sorted(range(5), key=lambda n: report.rank("\0".join(["web_page", "url_blocked", f"http://10.0.0.{n}/",
                                                                        "", "private address"])))
    assert sorted(shown) == sorted(str(n) for n in expected[:examples.EXAMPLES_PER_REASON])  # 3 of the 5
    # samples per source and per language, rows per source
    sources = page[page.index('<table id="sources-samples">'):]
    assert "<td>ocr</td><td class=n>2</td><td class=n>66.7%</td>" in sources
    assert "<td>ocr_images</td><td class=n>6</td><td class=n>2</td>" in page  # rejected, filtered
    languages = page[page.index('<table id="languages-table">'):]
    assert ("<td>de</td><td class=n>1</td>" in languages and "<td>en</td><td class=n>1</td>" in languages
            and "<td>(not identified)</td><td class=n>1</td>" in languages)
    # every category of the mix links to its samples in the contact sheet
    assert 'href="#samples-scene_ocr"' in page and '<h3 id="samples-scene_ocr">' in page


def test_languages_are_not_recorded_without_language_id(rich):
    assert "Languages (language id did not run): not recorded." in build_report(rich)
