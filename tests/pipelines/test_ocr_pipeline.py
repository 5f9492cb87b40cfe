"""OCR in pipelines on a real Beam runner (FnApiRunner): `vlcurate ocr` over a folder of images,
`--ocr` on the PDF and web pipelines, the manifest's model pins, and the Dataflow dry run."""

from __future__ import annotations

import hashlib
import json
import pathlib

import pyarrow.parquet as pq
import pytest
from PIL import Image as PILImage

from fixtures import ocr as ocr_fixtures
from fixtures.dataflow import translate_for_dataflow
from fixtures import pdf as pdf_fixtures
from fixtures.ocr import PHRASES, encoded, text_image
from vlcurate.pipelines import cli
from vlcurate.transforms.ocr.config import OcrConfig, engine_models
from vlcurate.transforms.ocr.accuracy import character_error_rate
from vlcurate.transforms.data.sample import make_key
from vlcurate.transforms.io.shard_reader import read_shard
from fixtures import EXAMPLES


def run_cli(command: str, argv) -> dict:
    assert cli.main([command, *argv]) == 0
    output = pathlib.Path(argv[argv.index("--output") + 1])
    return json.loads((output / "manifest.json").read_text())


def samples_of(output: pathlib.Path, manifest: dict) -> dict:
    return {
        pathlib.Path(sample.uri).name: sample
        for shard in manifest["shards"]
        for sample in read_shard(str(output / shard["name"]))
    }


def rejects_of(output: pathlib.Path) -> dict:
    [path] = (output / "rejects").iterdir()
    return {pathlib.Path(row["uri"]).name: row["reason"] for row in pq.read_table(path).to_pylist()}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    sign = encoded(text_image(PHRASES[4], 36, background=(30, 60, 120), ink=(250, 250, 250)))
    (folder / "sign.png").write_bytes(sign)
    (folder / "twins").mkdir()
    (folder / "twins" / "sign-again.png").write_bytes(sign)  # same bytes, same key: the smaller uri is kept
    (folder / "skewed.JPG").write_bytes(encoded(text_image(PHRASES[:2], 34, angle=8), "JPEG", quality=92))
    (folder / "nested" / "deeper").mkdir(parents=True)
    (folder / "nested" / "deeper" / "upside-down.webp").write_bytes(
        encoded(text_image(PHRASES[3], 36, angle=180), "WEBP", lossless=True))
    (folder / "blank.png").write_bytes(encoded(PILImage.new("RGB", (300, 200), (240, 240, 240))))
    (folder / "broken.png").write_bytes(encoded(text_image("cut short"))[:300])
    (folder / "bomb.png").write_bytes(encoded(PILImage.new("1", (20_000, 20_000))))
    (folder / "notes.txt").write_text("not listed: a folder input takes image files only")
    return folder


@pytest.fixture(scope="module")
def ocr_run(images, tmp_path_factory):
    output = tmp_path_factory.mktemp("ocr") / "out"
    manifest = run_cli("ocr", ["--input", str(images), "--output", str(output)])
    return output, manifest


def test_every_image_is_a_sample_or_a_reject_with_its_reason(ocr_run):
    output, manifest = ocr_run
    assert manifest["totals"] == {"inputs": 7, "samples": 3, "rejected": 2, "filtered": 2, "balanced": True}
    assert manifest["rejects"]["by_reason"] == {
        "duplicate_key": 1, "image_too_large": 1, "image_unreadable": 1, "ocr_empty": 1,
    }
    assert rejects_of(output) == {
        "sign-again.png": "duplicate_key", "bomb.png": "image_too_large", "broken.png": "image_unreadable",
        "blank.png": "ocr_empty",
    }
    assert manifest["categories"] == {"scene_ocr": 3} and manifest["text_sources"] == {"ocr:ppocr": 3}
    assert manifest["config"]["ocr"]["engine"] == "ppocr"


def test_samples_hold_the_text_lines_and_the_engine(ocr_run, images):
    output, manifest = ocr_run
    samples = samples_of(output, manifest)
    assert set(samples) == {"sign.png", "skewed.JPG", "upside-down.webp"}
    assert samples["sign.png"].text == PHRASES[4]
    # Upside down, and read upright; the detector's overlapping boxes may repeat a letter
    # ("Total r revenue", also in rapidocr's own output), hence a bound.
    upside_down = samples["upside-down.webp"].text
    assert upside_down.startswith("Total") and character_error_rate(upside_down, PHRASES[3]) <= 0.1
    assert character_error_rate(samples["skewed.JPG"].text, " ".join(PHRASES[:2])) <= 0.05
    sign = samples["sign.png"]
    assert sign.key == make_key("ocr", hashlib.sha256((images / "sign.png").read_bytes()).hexdigest())
    assert (sign.source, sign.category, sign.text_source) == ("ocr", "scene_ocr", "ocr:ppocr")
    assert sign.images[0].format == "png" and samples["skewed.JPG"].images[0].format == "jpeg"
    lines = sign.meta["ocr"]["lines"]
    assert " ".join(line["text"] for line in lines) == PHRASES[4]  # one row, maybe several boxes
    assert all(len(line["box"]) == 4 and line["confidence"] > 0.9 for line in lines)
    assert sign.scores["ocr_confidence"] == sign.meta["ocr"]["confidence"] > 0.9
    # The manifest pins the model files by sha256, as the samples' provenance does.
    pinned = manifest["models"]["ocr"]
    assert pinned == {"engine": "ppocr", "files": engine_models(OcrConfig())}
    assert sign.provenance["ocr_models"] == pinned["files"]
    assert manifest["versions"]["rapidocr"] == "3.10.0"


def test_keep_empty_and_the_tesseract_engine(images, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("sign.png", "blank.png"):
        (folder / name).write_bytes((images / name).read_bytes())
    output = tmp_path / "out"
    manifest = run_cli("ocr", ["--input", str(folder), "--output", str(output), "--ocr-engine", "tesseract",
                               "--keep-empty"])
    assert manifest["totals"]["samples"] == 2 and manifest["totals"]["balanced"]
    samples = samples_of(output, manifest)
    assert samples["sign.png"].text == PHRASES[4] and samples["sign.png"].text_source == "ocr:tesseract"
    blank = samples["blank.png"]
    assert blank.text == "" and blank.meta["ocr"]["empty"] is True and blank.scores["ocr_confidence"] == 0
    assert set(manifest["models"]["ocr"]["files"]) == {"eng", "osd"}


def test_in_process_and_multi_process_runs_give_identical_files(images, tmp_path):
    argv = ["--input", str(images)]
    one = run_cli("ocr", [*argv, "--output", str(tmp_path / "one")])
    two = run_cli("ocr", [*argv, "--output", str(tmp_path / "two"), "--direct_running_mode=multi_processing",
                          "--direct_num_workers=2", "--render-processes", "1"])
    assert one["shards"] == two["shards"] and one["totals"] == two["totals"]
    for name in ("shards/ocr-000000.tar", "index/ocr-000000.parquet"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_missing_tesseract_data_stops_the_run_before_it_starts(images, tmp_path):
    with pytest.raises(SystemExit, match="eng.traineddata"):
        cli.main(["ocr", "--input", str(images), "--output", str(tmp_path / "out"), "--ocr-engine", "tesseract",
                  "--tessdata", str(tmp_path)])
    assert not (tmp_path / "out").exists()


def test_pdf_pages_without_a_text_layer_are_ocred(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "scan.pdf").write_bytes(ocr_fixtures.image_only_pdf())
    (folder / "text.pdf").write_bytes(pdf_fixtures.text_pdf(1, "layer"))
    output = tmp_path / "out"
    manifest = run_cli("pdf", ["--input", str(folder), "--output", str(output), "--page-size", "512"])
    samples = samples_of(output, manifest)
    scan, text = samples["scan.pdf"], samples["text.pdf"]
    assert scan.text_source == "ocr:ppocr" and scan.meta["needs_ocr"] is True
    assert character_error_rate(scan.text, ocr_fixtures.PARAGRAPHS[0]) <= 0.01
    assert text.text_source == "pdf-text-layer" and "ocr" not in text.meta
    assert manifest["models"]["ocr"]["engine"] == "ppocr" and manifest["config"]["pdf"]["ocr"]["mode"] == "auto"

    never = run_cli("pdf", ["--input", str(folder), "--output", str(tmp_path / "never"), "--page-size", "512",
                            "--ocr", "never"])
    assert never["models"] == {}
    assert samples_of(tmp_path / "never", never)["scan.pdf"].text == ""


CANVAS_PAGE = """<!DOCTYPE html><title>canvas</title><body style="margin:0;background:#fff">
<canvas id="c" width="900" height="200"></canvas>
<script>const g = document.getElementById("c").getContext("2d");
g.font = "48px sans-serif"; g.fillStyle = "#111"; g.fillText("Drawn, not typed", 40, 110);</script></body>"""


def test_a_web_page_without_visible_text_gets_the_ocr_of_its_screenshot(tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "canvas.html").write_text(CANVAS_PAGE)
    (folder / "typed.html").write_text("<!DOCTYPE html><title>typed</title><p>Typed text</p>")
    output = tmp_path / "out"
    manifest = run_cli("web", ["--offline", "--input", str(folder), "--output", str(output), "--settle", "0.2",
                               "--viewport", "1000x300"])
    samples = samples_of(output, manifest)
    canvas, typed = samples["canvas.html"], samples["typed.html"]
    assert canvas.text == "Drawn, not typed" and canvas.text_source == "ocr:ppocr"
    [line] = canvas.meta["ocr"]["lines"]
    assert 20 <= line["box"][0][0] <= 60 and 50 <= line["box"][0][1] <= 90  # where the canvas drew it
    assert typed.text == "Typed text" and typed.text_source == "html" and "ocr" not in typed.meta


DEMO_TEXTS = {
    "shop-sign.jpg": "OPEN 7 DAYS\nCoffee·Bakery·Books",
    "street-sign.jpg": "Harbour Road",
    "notice.jpg": "NOTICE\nThe reading room closes\nat 6 pm on Fridays.\nPlease return books\nto the front desk.",
    "label-upside-down.png": "Keep away from heat\nStore below 25 C",
}


def test_the_demo_images_read_as_drawn(tmp_path):
    examples = EXAMPLES / "images"
    manifest = run_cli("ocr", ["--input", str(examples), "--output", str(tmp_path / "demo")])
    assert manifest["totals"] == {"inputs": 4, "samples": 4, "rejected": 0, "filtered": 0, "balanced": True}
    texts = {name: sample.text for name, sample in samples_of(tmp_path / "demo", manifest).items()}
    assert texts == DEMO_TEXTS


def test_the_ocr_pipeline_translates_for_dataflow(monkeypatch):
    from vlcurate.pipelines import ocr_images

    translate_for_dataflow(ocr_images.run, "gs://vlcurate-test/images/", "gs://vlcurate-test/ocr", monkeypatch,
                           ["ListInputs", "OcrImages"])
