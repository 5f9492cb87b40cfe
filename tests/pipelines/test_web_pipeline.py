"""The web pipeline end to end: real Chromium through Playwright, the guard proxy, a local test site.

One pipeline run over every kind of page (module-scoped: a browser run is the slow part), then
assertions per page. The only server allowed is the test site on 127.0.0.1; the canary listener
on another loopback port must never see a connection.
"""

from __future__ import annotations

import hashlib
import json
import pathlib

import pyarrow.parquet as pq
import pytest

from fixtures.dataflow import translate_for_dataflow
from vlcurate.pipelines import cli
from vlcurate.transforms.io.shard_reader import read_shard
from fixtures.web_site import WebSite, write_html_folder
from fixtures import EXAMPLES

# path -> expected reject reason (None: a sample)
PAGES = {
    "/plain.html": None,
    "/styled.html": None,
    "/redirect/3": None,
    "/sub-private.html": None,
    "/popup.html": None,
    "/alert.html": None,
    "/geo.html": None,
    "/to-metadata": "url_blocked",
    "/to-private": "url_blocked",
    "/to-localhost": "url_blocked",
    "/to-decimal": "url_blocked",
    "/to-mapped": "url_blocked",
    "/download.bin": "download_refused",
    "/infinite-script.html": "timeout",
    "/js-loop-redirect": "timeout",
    "/loop": "too_many_redirects",
    "/404": "http_error",
    "/500": "http_error",
    "/big.html": "too_many_bytes",
}
BAD_LINES = {"ftp://example.com/file": "url_blocked", "not a url": "bad_input"}


def _https_urls(site) -> list[str]:
    """https navigations go to the guard as CONNECT; a refused tunnel must still read as url_blocked."""
    return [f"https://127.0.0.1:{site.canary_port}/secure", "https://10.0.0.1/"]


def run_cli(argv) -> dict:
    # --offline: the browser reaches the test site only, and no name is looked up, so Chromium's
    # own calls home (autofill, updates) go nowhere, not even to a DNS server.
    assert cli.main(["web", "--offline", *argv]) == 0
    output = pathlib.Path(argv[argv.index("--output") + 1])
    return json.loads((output / "manifest.json").read_text())


@pytest.fixture(scope="module")
def site():
    with WebSite() as running:
        yield running


@pytest.fixture(scope="module")
def crawl(site, tmp_path_factory):
    work = tmp_path_factory.mktemp("web")
    urls = [site.url(path) for path in PAGES] + list(BAD_LINES) + _https_urls(site)
    (work / "urls.txt").write_text("# pages of the test site\n" + "\n".join(urls) + "\n\n")
    output = work / "out"
    manifest = run_cli([
        "--input", str(work / "urls.txt"), "--output", str(output), "--allow-host", f"127.0.0.1:{site.port}",
        "--page-timeout", "6", "--max-page-bytes", "1000000", "--settle", "1",
    ])
    samples = {s.uri: s for s in read_shard(str(output / manifest["shards"][0]["name"]))}
    rejects = pq.read_table(output / "rejects" / "web-rejects-000000.parquet").to_pylist()
    return manifest, samples, rejects, output


def test_every_input_is_a_sample_or_a_reject_with_its_reason(site, crawl):
    manifest, samples, rejects, _ = crawl
    expected_samples = {site.url(p) for p, reason in PAGES.items() if reason is None}
    assert set(samples) == expected_samples
    got = {r["uri"]: r["reason"] for r in rejects if r["stage"] == "web_page"}
    expected = {site.url(p): reason for p, reason in PAGES.items() if reason is not None}
    expected.update({url: "url_blocked" for url in _https_urls(site)})
    assert got == expected
    input_rejects = {r["locator"]: r["reason"] for r in rejects if r["stage"] == "web_input"}
    assert input_rejects == BAD_LINES
    inputs = len(PAGES) + len(BAD_LINES) + len(_https_urls(site))
    assert manifest["totals"] == {
        "inputs": inputs, "samples": len(expected_samples),
        "rejected": inputs - len(expected_samples), "filtered": 0, "balanced": True,
    }
    assert manifest["categories"] == {"web_code": len(expected_samples)}


def test_no_blocked_attempt_reached_the_canary(site, crawl):
    _, samples, rejects, _ = crawl
    assert site.canary_connections == 0
    blocked = {r["uri"]: r["detail"] for r in rejects if r["reason"] == "url_blocked" and r["stage"] == "web_page"}
    assert "169.254.169.254" in blocked[site.url("/to-metadata")]
    assert "10.0.0.1" in blocked[site.url("/to-private")]
    assert "localhost" in blocked[site.url("/to-localhost")]
    assert "127.0.0.1" in blocked[site.url("/to-decimal")]  # 2130706433 is 127.0.0.1
    assert "::ffff:" in blocked[site.url("/to-mapped")]
    https_canary, https_private = _https_urls(site)
    assert f"127.0.0.1:{site.canary_port}" in blocked[https_canary] and "10.0.0.1:443" in blocked[https_private]
    # The page that reaches for private addresses still renders; what it tried is recorded.
    page = samples[site.url("/sub-private.html")]
    assert "This page tries private addresses" in page.text
    assert set(page.meta["web"]["blocked_requests"]) >= {
        "169.254.169.254:80", "10.0.0.1:80", f"localhost:{site.canary_port}", f"127.0.0.1:{site.canary_port}",
    }


def test_a_sample_holds_screenshot_html_text_and_element_boxes(site, crawl):
    _, samples, _, _ = crawl
    plain = samples[site.url("/plain.html")]
    assert plain.source == "web" and plain.category == "web_code" and plain.locator == "viewport=1024x1024"
    [shot] = plain.images
    assert (shot.format, shot.width, shot.height) == ("png", 1024, 1024) and shot.data.startswith(b"\x89PNG")
    assert "数据" in plain.text and "café" in plain.text and plain.text_source == "html"
    assert plain.html.startswith("<!DOCTYPE html>") and "<h1>" in plain.html
    web = plain.meta["web"]
    assert web["status"] == 200 and web["title"] == "Plain page" and web["blocked_requests"] == []
    heading = next(e for e in plain.meta["elements"] if e["tag"] == "h1")
    assert heading["role"] == "heading" and heading["text"] == "A plain page for the renderer"
    x, y, width, height = heading["bbox"]
    assert 0 <= x < 100 and 0 <= y < 100 and width > 200 and 20 < height < 80
    roles = {e["role"] for e in plain.meta["elements"]}
    assert {"link", "button", "textbox", "listitem"} <= roles

    # The redirect chain ends on the plain page, whose URL the sample records.
    chained = samples[site.url("/redirect/3")]
    assert chained.meta["web"]["final_url"] == site.url("/plain.html")
    assert chained.images[0].data == shot.data  # the same page renders to the same pixels

    styled = samples[site.url("/styled.html")]
    assert site.count("/static/site.css") >= 1 and site.count("/static/logo.png") >= 1
    assert any(e["tag"] == "img" for e in styled.meta["elements"])


def test_dialogs_popups_and_permissions_do_not_stop_a_page(site, crawl):
    _, samples, _, _ = crawl
    assert "after dialogs" in samples[site.url("/alert.html")].text
    assert "geolocation denied" in samples[site.url("/geo.html")].text
    assert "notifications denied" in samples[site.url("/geo.html")].text
    popup = samples[site.url("/popup.html")]
    assert popup.meta["web"]["final_url"] == site.url("/popup.html")


def test_rejects_name_what_went_wrong(site, crawl):
    _, _, rejects, _ = crawl
    detail = {r["uri"]: r["detail"] for r in rejects}
    assert detail[site.url("/404")] == "HTTP 404" and detail[site.url("/500")] == "HTTP 500"
    assert "ERR_TOO_MANY_REDIRECTS" in detail[site.url("/loop")]
    assert "6s" in detail[site.url("/infinite-script.html")]


def test_jsonl_metadata_several_viewports_and_a_capped_full_page(site, tmp_path):
    rows = [
        {"url": site.url("/endless.html"), "source_id": 7, "lang": "en"},
        {"url": site.url("/plain.html"), "source_id": 8},
        {"nourl": True},
        "[1, 2]",
    ]
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    (tmp_path / "urls.jsonl").write_text("\n".join(lines) + "\n{broken json\n")
    manifest = run_cli([
        "--input", str(tmp_path / "urls.jsonl"), "--output", str(tmp_path / "out"),
        "--allow-host", f"127.0.0.1:{site.port}", "--viewport", "800x600", "--viewport", "400x900",
        "--full-page", "--max-page-height", "3000", "--settle", "0.5",
    ])
    assert manifest["totals"] == {"inputs": 7, "samples": 4, "rejected": 3, "filtered": 0, "balanced": True}
    assert manifest["rejects"]["by_reason"] == {"bad_input": 3}
    samples = list(read_shard(str(tmp_path / "out" / manifest["shards"][0]["name"])))
    endless = [s for s in samples if s.uri.endswith("/endless.html")]
    assert sorted(s.locator for s in endless) == ["viewport=400x900", "viewport=800x600"]
    for sample in endless:
        viewport, full = sample.images
        width, height = map(int, sample.locator.split("=")[1].split("x"))
        assert (viewport.width, viewport.height) == (width, height)
        # The endless page grows while it renders: the full shot is the page as tall as it was
        # then, cut at the cap (the cap itself is pinned on a page of fixed height below).
        page_height = sample.meta["web"]["page_height"]
        assert page_height > height and (full.width, full.height) == (width, min(page_height, 3000))
        assert sample.meta["input"] == {"lang": "en", "source_id": 7}
    keys = {s.key for s in samples}
    assert len(keys) == 4  # one key per (url, viewport)


def test_folder_of_html_files_renders_with_its_assets_and_stays_inside(tmp_path):
    folder = write_html_folder(tmp_path / "site")
    (folder / "tall.html").write_text('<!DOCTYPE html><title>tall</title><div style="height:5000px">tall</div>')
    manifest = run_cli([
        "--input", str(folder), "--output", str(tmp_path / "out"), "--settle", "0.5",
        "--full-page", "--max-page-height", "3000",
    ])
    assert manifest["totals"] == {"inputs": 4, "samples": 4, "rejected": 0, "filtered": 0, "balanced": True}
    samples = {pathlib.Path(s.uri).name: s for s in read_shard(str(tmp_path / "out" / manifest["shards"][0]["name"]))}
    index = samples["index.html"]
    assert index.meta["web"]["final_url"] == "index.html"
    assert "Folder index" in index.text
    logo = next(e for e in index.meta["elements"] if e["tag"] == "img")
    assert logo["bbox"][2] > 1 and logo["bbox"][3] > 1  # the relative image loaded
    assert samples["page.html"].meta["web"]["final_url"] == "sub/page.html"
    tall_viewport, tall_full = samples["tall.html"].images
    assert (tall_viewport.height, tall_full.height) == (1024, 3000)  # 5016 px of page, cut at the cap
    short_full = index.images[1]
    assert short_full.height == index.meta["web"]["page_height"] < 3000
    # Keys follow the file's place in the folder and its bytes, not where the folder lies.
    data = (folder / "index.html").read_bytes()
    from vlcurate.transforms.data.sample import make_key

    assert index.key == make_key("web", "index.html", hashlib.sha256(data).hexdigest(), "viewport=1024x1024")
    escape = samples["escape.html"]
    assert "passwd" not in escape.html.split("<body", 1)[1].replace("../../etc/passwd", "")


def test_the_example_site_gives_identical_shards_in_process_and_multi_process(tmp_path):
    examples = EXAMPLES / "web"
    one = run_cli(["--input", str(examples), "--output", str(tmp_path / "one"), "--settle", "0.5"])
    two = run_cli([
        "--input", str(examples), "--output", str(tmp_path / "two"), "--settle", "0.5",
        "--direct_running_mode=multi_processing", "--direct_num_workers=2", "--render-processes", "1",
    ])
    assert one["totals"]["samples"] == 3 and one["shards"] == two["shards"]
    for name in ("shards/web-000000.tar", "index/web-000000.parquet"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_the_web_pipeline_translates_for_dataflow(monkeypatch):
    from vlcurate.pipelines import web_screenshots

    translate_for_dataflow(web_screenshots.run, "gs://vlcurate-test/urls.jsonl", "gs://vlcurate-test/web", monkeypatch,
                           ["ReadLines", "ToTasks", "WebPages", "WebRejects"])


def test_parquet_input_keeps_its_extra_columns(site, tmp_path):
    import pyarrow as pa

    table = pa.table({"url": [site.url("/plain.html"), "gopher://old.example/"], "rank": [1, 2]})
    pq.write_table(table, tmp_path / "urls.parquet")
    manifest = run_cli([
        "--input", str(tmp_path / "urls.parquet"), "--output", str(tmp_path / "out"),
        "--allow-host", f"127.0.0.1:{site.port}", "--settle", "0.2",
    ])
    assert manifest["totals"] == {"inputs": 2, "samples": 1, "rejected": 1, "filtered": 0, "balanced": True}
    [sample] = read_shard(str(tmp_path / "out" / manifest["shards"][0]["name"]))
    assert sample.meta["input"] == {"rank": 1}
    assert manifest["rejects"]["by_reason"] == {"url_blocked": 1}
