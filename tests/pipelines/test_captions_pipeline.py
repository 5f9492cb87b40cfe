"""`vlcurate captions` as a user runs it, against the local image server: every failure kind ends
as its reason, refused redirects never connect, the other columns are kept, a folder takes its
sidecar captions, the same list twice gives byte-identical shards, and mistakes are one line with
exit status 2.
"""

from __future__ import annotations

import glob
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fixtures.command import one_line_error, vlcurate
from fixtures.image_site import ImageSite, jpeg
from vlcurate.transforms.io.shard_reader import read_shard

# path on the image server -> the reason its row ends with (None: a sample)
ROWS = {
    "/img/1.jpg": None, "/redirect/ok.jpg": None, "/optout/other-agent.jpg": None, "/flaky/2.jpg": None,
    "/optout/noai.jpg": "opt_out", "/optout/noimageai.jpg": "opt_out",
    "/missing.jpg": "http_error", "/broken.jpg": "http_error", "/hangup.jpg": "download_error",
    "/not-an-image.jpg": "image_unreadable", "/bomb.png": "image_too_large", "/huge.jpg": "file_too_large",
    "/huge-unannounced.jpg": "file_too_large",
    "/slow.jpg": "timeout", "/loop.jpg": "too_many_redirects",
    "/redirect/loopback.jpg": "url_blocked", "/redirect/localhost.jpg": "url_blocked",
    "/redirect/mapped.jpg": "url_blocked", "/redirect/decimal.jpg": "url_blocked",
    "/redirect/metadata.jpg": "url_blocked", "/redirect/file.jpg": "url_blocked",
}


@pytest.fixture(scope="module")
def site():
    with ImageSite(slow_s=10.0) as running:
        yield running


def run(site, source, output, *flags, timeout: float = 30):
    """The command against the image server; ``timeout``: seconds a download may take (a loaded
    machine can take seconds over a small image, so only the test of timeouts sets it low)."""
    return vlcurate("captions", "--input", source, "--output", output, "--allow-host", site.allow,
                    "--allow-host", f"127.0.0.1:{site.closed_port}", "--page-timeout", str(timeout),
                    "--max-file-bytes", "1000000", "--progress-interval", "0", "--retries", "1", *flags)


def rejects(output) -> list[dict]:
    return pq.read_table(glob.glob(f"{output}/rejects/*.parquet")).to_pylist()


def samples(output) -> list:
    return [sample for path in sorted(glob.glob(f"{output}/shards/*.tar")) for sample in read_shard(path)]


@pytest.mark.e2e
def test_every_failure_kind_ends_as_its_reason(site, tmp_path):
    lines = ["url,caption,rank"] + [f"{site.url(path)},a photo {n},{n}" for n, path in enumerate(ROWS)]
    lines += [f"{site.url('/img/3.jpg')},,98", f"http://127.0.0.1:{site.closed_port}/x.jpg,refused,99",
              "ftp://example.org/a.jpg,a file,100", "not a url,text,101", "only,two"]
    (tmp_path / "list.csv").write_text("\n".join(lines) + "\n")
    done = run(site, tmp_path / "list.csv", tmp_path / "out", timeout=5)  # /slow.jpg answers after 10 s
    assert done.returncode == 0, done.stderr
    rows = rejects(tmp_path / "out")
    by_uri = {row["uri"]: row for row in rows if row["stage"] == "caption_download"}
    for path, reason in ROWS.items():
        assert (by_uri[site.url(path)]["reason"] if site.url(path) in by_uri else None) == reason, path
    assert by_uri[f"http://127.0.0.1:{site.closed_port}/x.jpg"]["reason"] == "download_error"
    table_rows = {row["line"]: row["reason"] for row in rows if row["stage"] == "caption_input"}
    assert table_rows == {len(ROWS) + 2: "caption_empty", len(ROWS) + 4: "url_blocked", len(ROWS) + 5: "bad_input",
                          len(ROWS) + 6: "bad_input"}
    assert site.canary_connections == 0
    made = samples(tmp_path / "out")
    assert sorted(sample.uri for sample in made) == sorted(site.url(p) for p, r in ROWS.items() if r is None)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["totals"]["inputs"] == len(lines) - 1
    assert manifest["totals"]["samples"] == 4 and manifest["categories"] == {"caption": 4}


@pytest.mark.e2e
def test_the_same_parquet_list_twice_gives_byte_identical_shards_and_keeps_its_columns(site, tmp_path):
    urls = [site.url(f"/img/{n}.jpg") for n in range(12)]
    table = pa.table({"URL": urls, "TEXT": [f"gradient number {n}" for n in range(12)],
                      "similarity": [n / 10 for n in range(12)]})
    pq.write_table(table, tmp_path / "list.parquet")
    outputs = []
    for name in ("a", "b"):
        done = run(site, tmp_path / "list.parquet", tmp_path / name, "--url-column", "URL", "--caption-column", "TEXT",
                   "--image-size", "64", "--resize-mode", "border", "--max-samples-per-shard", "5",
                   "--download-threads", "4" if name == "a" else "16")
        assert done.returncode == 0, done.stderr
        outputs.append({path.rsplit("/", 1)[1]: open(path, "rb").read()
                        for path in sorted(glob.glob(f"{tmp_path / name}/shards/*.tar"))})
    assert len(outputs[0]) >= 3 and outputs[0] == outputs[1]  # keys hash to shards: how many depends on the port
    made = {sample.uri: sample for sample in samples(tmp_path / "a")}
    assert len(made) == 12
    sample = made[urls[5]]
    doc = sample.to_json()
    assert sample.text == "gradient number 5" and doc["input"] == {"similarity": 0.5}
    assert (doc["image"]["width"], doc["image"]["height"]) == (64, 64)
    assert doc["original"]["bytes"] == len(site.image(5)) and doc["source"] == "caption"


@pytest.mark.e2e
def test_a_jsonl_list_with_exact_dedup(site, tmp_path):
    rows = [{"url": site.url("/img/20.jpg"), "caption": "one", "id": 1},
            {"url": site.url("/redirect/ok.jpg"), "caption": "two", "id": 2},
            {"url": site.url("/img/1.jpg"), "caption": "the same image as two", "id": 3}]
    (tmp_path / "list.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows) + "[1, 2]\n")
    done = run(site, tmp_path / "list.jsonl", tmp_path / "out", "--dedup", "exact")
    assert done.returncode == 0, done.stderr
    reasons = sorted(row["reason"] for row in rejects(tmp_path / "out"))
    assert reasons == ["bad_input", "duplicate_exact"]
    assert len(samples(tmp_path / "out")) == 2


@pytest.mark.e2e
def test_a_folder_of_images_with_sidecar_captions(tmp_path):
    folder = tmp_path / "photos"
    (folder / "more").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(jpeg(1))
    (folder / "a.txt").write_text("a soft gradient")
    (folder / "more" / "b.jpg").write_bytes(jpeg(2))
    (folder / "more" / "b.txt").write_text("another gradient")
    (folder / "c.jpg").write_bytes(jpeg(3))  # no caption beside it
    (folder / "d.png").write_bytes(b"not a png")
    (folder / "d.txt").write_text("broken")
    done = vlcurate("captions", "--input", folder, "--output", tmp_path / "out", "--progress-interval", "0")
    assert done.returncode == 0, done.stderr
    assert sorted(sample.text for sample in samples(tmp_path / "out")) == ["a soft gradient", "another gradient"]
    assert sorted((row["uri"].rsplit("/", 1)[1], row["reason"]) for row in rejects(tmp_path / "out")) == [
        ("c.jpg", "caption_empty"), ("d.png", "image_unreadable")]


@pytest.mark.e2e
def test_mistakes_are_one_line_and_status_2(tmp_path):
    (tmp_path / "list.csv").write_text("url,text\nhttp://example.org/a.jpg,a\n")
    done = vlcurate("captions", "--input", tmp_path / "list.csv", "--output", tmp_path / "out")
    assert done.returncode == 2
    assert one_line_error(done).endswith("no 'caption' column (its columns: 'url', 'text'): "
                                         "name the caption column with --caption-column")
    (tmp_path / "urls.txt").write_text("http://example.org/a.jpg\n")
    done = vlcurate("captions", "--input", tmp_path / "urls.txt", "--output", tmp_path / "out")
    assert done.returncode == 2 and "is not a form vlcurate captions reads" in one_line_error(done)
    done = vlcurate("captions", "--input", tmp_path / "list.csv", "--output", tmp_path / "out",
                    "--resize-mode", "stretch")
    assert done.returncode == 2 and "--resize-mode" in one_line_error(done)


@pytest.mark.e2e
def test_a_parquet_list_translates_for_dataflow_without_reading_it(monkeypatch):
    from fixtures.dataflow import translate_for_dataflow
    from vlcurate.pipelines import captions

    translate_for_dataflow(captions.run, "gs://vlcurate-test/pairs.parquet", "gs://vlcurate-test/captions",
                           monkeypatch, ["ReadRows", "Captions"])


@pytest.mark.e2e
def test_one_image_under_two_captions_is_two_pairs_and_a_run_again_adds_nothing(site, tmp_path):
    url = site.url("/img/30.jpg")
    rows = [{"url": url, "caption": "a gradient"}, {"url": url, "caption": "a gradient, in other words"},
            {"url": url, "caption": "a gradient"}]
    (tmp_path / "list.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    done = run(site, tmp_path / "list.jsonl", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert sorted(sample.text for sample in samples(tmp_path / "out")) == ["a gradient", "a gradient, in other words"]
    assert [row["reason"] for row in rejects(tmp_path / "out")] == ["duplicate_key"]
    done = run(site, tmp_path / "list.jsonl", tmp_path / "out", "--mode", "extend", "--allow-empty")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["totals"]["samples"] == 2
    second = pq.read_table(glob.glob(f"{tmp_path / 'out'}/rejects/caption-r2-*.parquet")).to_pylist()
    assert [row["reason"] for row in second] == ["already_in_dataset"] * 3
