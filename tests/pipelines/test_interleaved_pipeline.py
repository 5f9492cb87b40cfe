"""`vlcurate interleaved` end to end: a folder of a web page, an EPUB and a PDF (and broken ones)
through real Chromium, lxml and PyMuPDF on Beam's FnApiRunner; a URL list from a local server;
the same inputs twice give byte-identical shards; the trainer trains on what it wrote."""

from __future__ import annotations

import functools
import http.server
import json
import pathlib
import threading

import pyarrow.parquet as pq
import pytest

from fixtures import interleaved as fx
from fixtures.dataflow import translate_for_dataflow
from fixtures.training import TINY_MODEL
from vlcurate.pipelines import cli
from vlcurate.transforms.io.shard_reader import read_shard
from vlcurate.transforms.sources.interleaved.document import PLACEHOLDER

pytestmark = [pytest.mark.e2e]


def run_cli(*argv) -> dict:
    assert cli.main(["interleaved", "--offline", "--render-processes", "1", *map(str, argv)]) == 0
    output = pathlib.Path(argv[list(argv).index("--output") + 1])
    return json.loads((output / "manifest.json").read_text())


def outputs(output: pathlib.Path, manifest: dict):
    samples = [s for shard in manifest["shards"] for s in read_shard(str(output / shard["name"]))]
    rejects = pq.read_table(output / "rejects").to_pylist() if (output / "rejects").exists() else []
    return samples, rejects


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    work = tmp_path_factory.mktemp("interleaved") / "in"
    fx.write_html_folder(work)
    (work / "story.epub").write_bytes(fx.story_epub())
    (work / "story.pdf").write_bytes(fx.story_pdf())
    (work / "broken.epub").write_bytes(b"PK\x03\x04 not really a zip")
    (work / "bomb.epub").write_bytes(fx.zip_bytes({"bomb.bin": bytes(8 * 1024 * 1024)}))
    (work / "broken.pdf").write_bytes(b"%PDF-1.7\n" + b"\x00" * 64)
    (work / "notes.txt").write_text("not a document")  # not an input: filtered by extension
    return work


@pytest.fixture(scope="module")
def run(folder, tmp_path_factory):
    output = tmp_path_factory.mktemp("out") / "one"
    manifest = run_cli("--input", folder, "--output", output)
    return manifest, output


@pytest.mark.browser
def test_every_document_is_samples_or_rows_with_reasons(run):
    manifest, output = run
    samples, rejects = outputs(output, manifest)
    assert manifest["totals"] == {"balanced": True, "inputs": 12, "samples": 3, "rejected": 3, "filtered": 6}
    assert {s.meta["document"]["format"]: s.text.count(PLACEHOLDER) for s in samples} == {"html": 2, "epub": 2, "pdf": 2}
    whole = {pathlib.Path(r["uri"]).name: r["reason"] for r in rejects if r["stage"] == "interleaved_document"}
    assert whole == {"broken.epub": "epub_invalid", "bomb.epub": "epub_unsafe", "broken.pdf": "pdf_corrupt"}
    dropped = sorted((pathlib.Path(r["uri"]).name, r["locator"], r["reason"]) for r in rejects
                     if r["stage"] == "interleaved_image")
    assert dropped == sorted((name, locator, reason) for name in ("story.epub", "story.pdf", "tomatoes.html")
                             for locator, reason in (("image=3", "image_tiny"), ("image=4", "image_decorative")))


@pytest.mark.browser
def test_each_sample_is_the_document_in_order(run):
    manifest, output = run
    samples, _ = outputs(output, manifest)
    expected = "\n\n".join([fx.TITLE, fx.PARAGRAPHS[0], PLACEHOLDER, fx.PARAGRAPHS[1], fx.HARVEST,
                            fx.PARAGRAPHS[2], PLACEHOLDER, fx.PARAGRAPHS[3]])
    for sample in samples:
        assert sample.text == expected, sample.uri
        assert [(i.width, i.height, i.format) for i in sample.images] == [(160, 120, "png"), (200, 150, "png")]
        assert sample.category == "interleaved" and sample.conversation is None
    page = next(s for s in samples if s.meta["document"]["format"] == "html")
    # The page's navigation, ad and footer are gone; its image refs name the folder's files.
    assert "About us" not in page.text and "Sponsored" not in page.text and "Copyright" not in page.text
    assert [ref["src"] for ref in page.meta["image_refs"]] == ["images/red.png", "images/blue.png"]
    assert page.provenance["trafilatura"] and page.provenance["browser"]
    index = pq.read_table(output / "index").to_pylist()
    assert {row["category"] for row in index} == {"interleaved"} and {row["image_count"] for row in index} == {2}


@pytest.mark.browser
def test_the_same_inputs_twice_give_identical_shards(folder, run, tmp_path):
    manifest, output = run
    again = run_cli("--input", folder, "--output", tmp_path / "two")
    assert manifest["shards"] == again["shards"]
    for shard in manifest["shards"]:
        assert (output / shard["name"]).read_bytes() == (tmp_path / "two" / shard["name"]).read_bytes()
    first = sorted(json.dumps(r, sort_keys=True) for r in outputs(output, manifest)[1])
    assert first == sorted(json.dumps(r, sort_keys=True) for r in outputs(tmp_path / "two", again)[1])


@pytest.fixture()
def server(folder):
    handler = functools.partial(_Quiet, directory=str(folder))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        yield httpd.server_address[1]
        httpd.shutdown()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.browser
def test_a_url_list_is_fetched_through_the_guard(server, tmp_path):
    base = f"http://127.0.0.1:{server}"
    (tmp_path / "urls.txt").write_text(f"{base}/tomatoes.html\n{base}/missing.html\nhttp://10.0.0.1/page.html\n"
                                       "ftp://example.com/x\n")
    manifest = run_cli("--input", tmp_path / "urls.txt", "--output", tmp_path / "out", "--allow-host",
                       f"127.0.0.1:{server}", "--page-timeout", "10", "--settle", "0.5")
    samples, rejects = outputs(tmp_path / "out", manifest)
    assert [s.uri for s in samples] == [f"{base}/tomatoes.html"] and len(samples[0].images) == 2
    assert samples[0].meta["image_refs"][0]["src"] == f"{base}/images/red.png"
    # A refused line names the list as its uri and the line as its locator.
    refused = {r["locator"] if r["stage"] == "web_input" else r["uri"]: r["reason"] for r in rejects
               if r["stage"] != "interleaved_image"}
    assert refused == {f"{base}/missing.html": "http_error", "http://10.0.0.1/page.html": "url_blocked",
                       "ftp://example.com/x": "url_blocked"}


def test_usage_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["interleaved", "--input", str(tmp_path), "--output", str(tmp_path / "o"),
                     "--max-images", "0"]) == 2
    assert cli.main(["interleaved", "--input", str(tmp_path), "--output", str(tmp_path / "o"), "--viewport",
                     "800x600"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--max-images" in err[0] and "--viewport" in err[1] and "Traceback" not in "".join(err)


def test_the_interleaved_pipeline_translates_for_dataflow(monkeypatch):
    from vlcurate.pipelines import interleaved

    translate_for_dataflow(interleaved.run, "gs://vlcurate-test/docs/", "gs://vlcurate-test/interleaved", monkeypatch,
                           ["ListInputs", "ToTasks", "Documents", "AllRejects"])


def test_the_trainer_formats_and_trains_on_interleaved_samples(tmp_path):
    """Books cut into parts of one picture each, written by the pipeline (EPUB: no browser), then
    `vlcurate train` on them: every sample formats (images at their placeholders) and the loss falls."""
    from vlcurate.training.data import format_record
    from vlcurate.training.sources import parse
    from vlcurate.training.tokenizer import ByteTokenizer
    from vlcurate.training.train import run as train
    from vlcurate.training.data import DataConfig

    books = tmp_path / "books"
    books.mkdir()
    for n in range(6):
        chapters = tuple(f"<h1>Chapter {n}.{c}</h1><p>{fx.PARAGRAPHS[(n + c) % 4][:150]}</p>"
                         f"<img src=\"../images/{('red', 'blue')[c % 2]}.png\"/>" for c in range(4))
        (books / f"book{n}.epub").write_bytes(fx.epub(chapters))
    manifest = run_cli("--input", books, "--output", tmp_path / "data", "--max-images", "1", "--max-tokens", "64")
    assert manifest["totals"]["samples"] == 24
    samples, _ = outputs(tmp_path / "data", manifest)
    config = DataConfig(image_tokens=16, max_len=384)
    tokenizer = ByteTokenizer()
    for sample in samples:
        record = parse(sample.key, dict((name.split(".", 1)[1], data) for name, data in sample.members()))
        ids, labels, low, high = format_record(record, config, tokenizer)
        # The picture's 16 tokens sit where its placeholder was: after the heading and paragraph.
        start = ids.index(tokenizer.image_id)
        assert tokenizer.decode(ids[1:start]) == sample.text.split(PLACEHOLDER)[0]
        assert ids[start:start + 16] == [tokenizer.image_id] * 16 and all(l == -100 for l in labels[start:start + 16])
        assert len(low) == len(high) == 1
    log = tmp_path / "log.jsonl"
    assert train(["--shards", str(tmp_path / "data"), "--steps", "30", "--output", str(tmp_path / "ckpt"),
                  "--model", TINY_MODEL, "--warmup-steps", "5", "--log-every", "10", "--workers", "1",
                  "--threads", "1", "--lr", "3e-3", "--mix", "interleaved=1", "--log-json", str(log)]) == 0
    losses = [json.loads(line)["loss"] for line in log.read_text().splitlines()]
    assert len(losses) == 3 and losses[-1] < losses[0]


def test_progress_counts_a_folders_documents_alone_and_in_a_recipe(folder):
    """A recipe counts a source's inputs with the function its command uses (launch.input_units):
    the interleaved folder's documents of every kind, not only its .html pages as a web folder."""
    from vlcurate.pipelines import interleaved
    from vlcurate.pipelines.launch import input_units

    documents = [p for p in folder.rglob("*") if p.is_file() and p.suffix[1:] in interleaved.COMMAND.extensions]
    assert {p.suffix for p in documents} == {".html", ".epub", ".pdf"}
    expected = (len(documents), "document")
    assert interleaved.input_units(str(folder)) == expected
    assert input_units(interleaved, str(folder), interleaved.COMMAND.extensions) == expected
