"""`vlcurate web --input urls.csv|urls.tsv` as a user runs it: a row a page, the other columns kept,
bad rows as reject rows; lists in other forms and tables without their URL column refused with one
line and exit 2 before anything starts.

The runs that render drive Chromium through the guard, against the local test site on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from fixtures import REPO
from fixtures.web_site import WebSite
from vlcurate.transforms.data.sample import make_key
from vlcurate.transforms.io.shard_reader import read_shard


def vlcurate(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "vlcurate.pipelines.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def site():
    with WebSite() as running:
        yield running


@pytest.mark.browser
def test_a_csv_list_renders_each_row_keeps_its_columns_and_rejects_bad_rows(site, tmp_path):
    page = site.url("/plain.html")
    (tmp_path / "urls.csv").write_text(
        "url,caption,rank\n"
        f'{page},"a plain page, with a comma\nand a newline",1\n'
        ",a row without a url,2\n"
        "not a url,x,3\n"
        "ftp://example.com/file,y,4\n"
        f"{page}#again,too,many,fields\n"
        "\n")
    done = vlcurate("web", "--offline", "--input", "urls.csv", "--output", "out", "--settle", "0.2",
                    "--allow-host", f"127.0.0.1:{site.port}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["totals"] == {"inputs": 5, "samples": 1, "rejected": 4, "filtered": 0, "balanced": True}
    [sample] = read_shard(str(tmp_path / "out" / "shards" / "web-000000.tar"))
    assert sample.key == make_key("web", page, "viewport=1024x1024")  # the key a .txt list gives the URL
    assert sample.meta["input"] == {"caption": "a plain page, with a comma\nand a newline", "rank": "1"}
    rejects = pq.read_table(tmp_path / "out" / "rejects" / "web-rejects-000000.parquet").to_pylist()
    assert sorted((r["locator"], r["reason"], r["detail"]) for r in rejects) == [
        ("line 4", "bad_input", "no url"),
        ("line 5", "bad_input", "'not a url' is not a URL"),
        ("line 6", "url_blocked", "scheme 'ftp' is not http or https"),
        ("line 7", "bad_input", "4 fields, the header has 3"),
    ]
    assert {r["uri"] for r in rejects} == {str(tmp_path / "urls.csv")}


@pytest.mark.browser
def test_a_tsv_list_with_its_own_url_column(site, tmp_path):
    page = site.url("/styled.html")
    (tmp_path / "urls.tsv").write_text(f"id\tlink\n7\t{page}\n")
    done = vlcurate("web", "--offline", "--input", tmp_path / "urls.tsv", "--url-column", "link",
                    "--output", tmp_path / "out", "--settle", "0.2", "--allow-host", f"127.0.0.1:{site.port}")
    assert done.returncode == 0, done.stderr
    [sample] = read_shard(str(tmp_path / "out" / "shards" / "web-000000.tar"))
    assert (sample.uri, sample.meta["input"]) == (page, {"id": "7"})


FORMS = ("a URL list (.txt: a URL a line; .csv or .tsv with a header row and a url column; .jsonl or "
         ".parquet with a url field), a folder of .html files, or an .html file")


@pytest.mark.parametrize("name", ["urls.json", "urls.xlsx"])
def test_a_list_in_another_form_is_refused_before_anything_starts(tmp_path, name):
    (tmp_path / name).write_text('["https://example.com/"]\n')
    done = vlcurate("web", "--input", name, "--output", "out", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"vlcurate web: --input {name} is not a form vlcurate web reads; it takes {FORMS}\n"
    assert not (tmp_path / "out").exists()


def test_a_table_without_its_url_column_is_refused_naming_the_columns(tmp_path):
    (tmp_path / "urls.csv").write_text("link,caption\nhttps://example.com/,a\n")
    done = vlcurate("web", "--input", "urls.csv", "--output", "out", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == ("vlcurate web: urls.csv: no 'url' column (its columns: 'link', 'caption'): "
                           "name the URL column with --url-column\n")
    assert not (tmp_path / "out").exists()


def test_a_recipe_web_source_is_checked_the_same_way_with_its_line(tmp_path):
    (tmp_path / "urls.json").write_text("[]\n")
    (tmp_path / "urls.csv").write_text("link\nhttps://example.com/\n")
    (tmp_path / "r.yaml").write_text(
        "output: out\n"
        "sources:\n"
        "  a: {kind: web, input: urls.json}\n"
        "  b: {kind: web, input: urls.csv}\n"
        "  c: {kind: web, input: urls.csv, options: {url-column: link}}\n")
    done = vlcurate("run", "r.yaml", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr  # a recipe's problems are usage errors
    assert done.stderr.splitlines() == [
        f"vlcurate run: r.yaml:3: source a: --input urls.json is not a form vlcurate web reads; it takes {FORMS}",
        "vlcurate run: r.yaml:4: source b: urls.csv: no 'url' column (its columns: 'link'): name the URL column "
        "with --url-column",
    ]
    assert not (tmp_path / "out").exists()


def test_a_csv_list_translates_for_dataflow_without_reading_it(monkeypatch):
    from fixtures.dataflow import translate_for_dataflow
    from vlcurate.pipelines import web_screenshots

    translate_for_dataflow(web_screenshots.run, "gs://vlcurate-test/urls.csv", "gs://vlcurate-test/web", monkeypatch,
                           ["ListTables", "ReadRows", "ToTasks", "WebPages", "WebRejects"])
