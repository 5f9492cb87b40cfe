"""`vlcurate web --alt-text`: the visible images with caption-like alt text become caption samples
beside the page's, fetched through the page's own guard; the rest are left out, counted by reason.

The browser test renders a folder page (offline) whose images come from the folder and from the
local image server (tests/fixtures/image_site.py).
"""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from fixtures.image_site import ImageSite, jpeg
from vlcurate.pipelines import cli
from vlcurate.transforms.io.shard_reader import read_shard
from vlcurate.transforms.sources.web.alt_text import is_caption
from vlcurate.transforms.sources.web.config import WebConfig, folder_tasks
from vlcurate.transforms.sources.web.core import render_web_task


@pytest.mark.parametrize("alt, expected", [
    ("A red boat on a calm sea", True),
    ("Chart of sales by month", True),
    ("logo", False),
    ("company logo", False),
    ("photo image", False),
    ("IMG_2034.JPG", False),
    ("Sunset", False),
    ("", False),
])
def test_is_caption(alt, expected):
    assert is_caption(alt) is expected


PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>Alt text</title></head><body>
<h1>Pictures</h1>
<img src="a.jpg" alt="A soft grey gradient with a coloured square" width="200" height="150">
<img src="a.jpg" alt="logo" width="40" height="40">
<img src="b.jpg" alt="b.jpg" width="40" height="40">
<img src="b.jpg" alt="A hidden picture of a gradient" style="display:none">
<img src="b.jpg" width="40" height="40">
<img src="missing.jpg" alt="A picture that is not there" width="40" height="40">
<img src="{site}/optout/noai.jpg" alt="An opted out gradient picture" width="40" height="40">
<img src="{site}/img/4.jpg" alt="A remote gradient with a square" width="80" height="60">
</body></html>"""


def write_site(folder, site):
    """PAGE in ``folder`` with its two local pictures; its remote ones come from ``site``."""
    folder.mkdir()
    (folder / "a.jpg").write_bytes(jpeg(1, 300, 200))
    (folder / "b.jpg").write_bytes(jpeg(2))
    (folder / "index.html").write_text(PAGE.format(site=f"http://127.0.0.1:{site.port}"))
    return folder


@pytest.mark.browser
def test_alt_text_images_become_caption_samples_beside_the_page(tmp_path):
    with ImageSite() as site:
        folder = write_site(tmp_path / "site", site)
        config = WebConfig(allow_hosts=(site.allow,), offline=True, settle_s=0.2, alt_text=True,
                           viewports=((800, 600), (400, 600)))
        data = (folder / "index.html").read_bytes()
        first, second = folder_tasks(str(folder / "index.html"), str(folder), data, config)
        made = render_web_task(first, config)
        page, *captions = made
        assert page.category == "web_code"
        assert page.meta["alt_text"] == {"images": 6, "captions": 4, "samples": 2,
                                         "skipped": {"http_error": 1, "opt_out": 1}}
        by_uri = {sample.uri: sample for sample in captions}
        assert sorted(by_uri) == ["a.jpg", site.url("/img/4.jpg")]
        local = by_uri["a.jpg"]
        assert (local.source, local.category, local.text_source) == ("web", "caption", "alt-text")
        assert local.text == "A soft grey gradient with a coloured square"
        doc = local.to_json()
        assert doc["original"]["width"] == 300 and doc["alt_text"]["page"] == "index.html"
        assert doc["download"]["final_url"] == "a.jpg"  # the folder server's port is not in the sample
        again = render_web_task(first, config)
        assert [s.members() for s in again[1:]] == [s.members() for s in captions]
        assert not isinstance(render_web_task(second, config), list)  # pairs come from the first viewport only


@pytest.mark.browser
def test_vlcurate_web_alt_text_writes_the_pairs_into_the_dataset(tmp_path):
    # The whole command, as a user runs it: the pairs reach the shards, the index and the
    # manifest's categories beside the page, and the counts still balance.
    with ImageSite() as site:
        folder = write_site(tmp_path / "site", site)
        out = tmp_path / "out"
        assert cli.main(["web", "--offline", "--alt-text", "--input", str(folder), "--output", str(out),
                         "--allow-host", site.allow, "--settle", "0.2"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["categories"] == {"caption": 2, "web_code": 1}
    assert manifest["totals"]["samples"] == 3 and manifest["totals"]["balanced"]
    samples = [sample for shard in manifest["shards"] for sample in read_shard(str(out / shard["name"]))]
    captions = sorted((s for s in samples if s.category == "caption"), key=lambda s: s.text)
    assert [(s.text, s.text_source, s.images[0].format) for s in captions] == [
        ("A remote gradient with a square", "alt-text", "jpeg"),
        ("A soft grey gradient with a coloured square", "alt-text", "jpeg")]
    rows = [row for shard in manifest["shards"] for row in pq.read_table(out / shard["index"]["name"]).to_pylist()]
    assert sorted(row["category"] for row in rows) == ["caption", "caption", "web_code"]
