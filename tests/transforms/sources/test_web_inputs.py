"""What `vlcurate web --input` takes, and URL tables (.csv, .tsv): read without a browser."""

from __future__ import annotations

import io
import json

import pytest

from vlcurate.transforms.data.rejects import Reject
from vlcurate.transforms.data.sample import make_key
from vlcurate.transforms.sources.web.beam import UrlRecordToTasks
from vlcurate.transforms.sources.web.config import WebConfig
from vlcurate.transforms.sources.web.inputs import (
    TableRow, header_problem, input_problem, table_records, table_rows,
)

FORMS = ("a URL list (.txt: a URL a line; .csv or .tsv with a header row and a url column; .jsonl or "
         ".parquet with a url field), a folder of .html files, or an .html file")


def test_rows_keep_their_columns_quoted_newlines_and_line_numbers():
    text = ('url,caption,rank\n'
            'https://a.example/,"two, lines\nof caption",1\n'
            '\n'
            ',no url here,2\n'
            'https://b.example/,too,many,fields\n'
            'https://c.example/,short\n'
            '  ,  ,  \n'
            'https://d.example/,d,4\n')
    rows = list(table_rows(io.BytesIO(text.encode()), ","))
    assert rows == [
        TableRow(3, {"url": "https://a.example/", "caption": "two, lines\nof caption", "rank": "1"}),
        TableRow(5, {"url": "", "caption": "no url here", "rank": "2"}),
        TableRow(6, problem="4 fields, the header has 3"),
        TableRow(7, problem="2 fields, the header has 3"),
        TableRow(9, {"url": "https://d.example/", "caption": "d", "rank": "4"}),
    ]


def test_a_tsv_file_with_a_byte_order_mark_and_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "urls.tsv"
    path.write_bytes("\ufefflink\tnote\r\nhttps://a.example/\tcafé\r\n".encode() + b"https://b.example/\t\xff\xfe\r\n"
                     + b"https://c.example/\tc\r\n")
    rows = [row for _, row in table_records(str(path))]
    assert rows == [TableRow(2, {"link": "https://a.example/", "note": "café"}), TableRow(3, problem="not UTF-8 text"),
                    TableRow(4, {"link": "https://c.example/", "note": "c"})]
    assert [source for source, _ in table_records(str(path))] == [str(path)] * 3
    [gone] = table_records(str(tmp_path / "gone.csv"))
    assert gone[1].line == 0 and gone[1].problem.startswith("cannot read: ")


@pytest.mark.parametrize("header, problem", [
    (None, "no header row: a URL table starts with a row naming its columns (url, then any others)"),
    (["url", "a", "a"], "column 'a' appears twice in the header: each column needs its own name"),
    (["link", "caption"], "no 'url' column (its columns: 'link', 'caption'): name the URL column with --url-column"),
    (["caption", "url"], None),
])
def test_the_header_must_name_the_url_column_once(header, problem):
    assert header_problem(header, "url") == problem


def test_input_forms_other_than_lists_folders_and_html_are_refused(tmp_path):
    (tmp_path / "urls").write_text("https://example.com/\n")
    for name in ("urls.json", "urls.xlsx", "urls"):
        assert input_problem(str(tmp_path / name)) == f"--input {tmp_path / name} is not a form vlcurate web reads; " \
                                                      f"it takes {FORMS}"
    assert input_problem("https://example.com/") is None  # a prefix ending in / is a folder (gs://bucket/site/)
    assert input_problem("https://example.com") == (f"--input https://example.com is not a form vlcurate web reads; "
                                                    f"it takes {FORMS}; to render one URL, put it in a .txt file")
    assert input_problem(str(tmp_path / "no-such-folder")) is None  # the launch: no input files match
    for fine in ("urls.txt", "urls.jsonl", "urls.parquet", "page.html", "site/*.htm", str(tmp_path), "gs://b/site/"):
        assert input_problem(fine) is None, fine


def test_a_table_without_the_url_column_is_refused_unless_named(tmp_path):
    (tmp_path / "urls.csv").write_text("link,caption\nhttps://a.example/,a\n")
    path = str(tmp_path / "urls.csv")
    assert input_problem(path) == f"{path}: no 'url' column (its columns: 'link', 'caption'): " \
                                  "name the URL column with --url-column"
    assert input_problem(path, "link") is None
    assert input_problem(path, read_tables=False) is None  # a dry run reads no file
    assert input_problem(str(tmp_path / "missing.csv")) is None  # the launch says no input matches
    (tmp_path / "empty.csv").write_text("")
    assert input_problem(str(tmp_path / "empty.csv")).endswith(": no header row: a URL table starts with a row "
                                                               "naming its columns (url, then any others)")


def _tasks(record, **config):
    stage = UrlRecordToTasks(WebConfig(**config))
    return stage.ref(("urls.csv", record)), stage.run(("urls.csv", record))


def test_a_table_row_gives_the_keys_of_a_txt_line_and_keeps_its_other_columns():
    ref, [task] = _tasks(TableRow(4, {"link": " https://a.example/x ", "caption": "a cat", "rank": "2"}),
                         url_column="link")
    _, [from_txt] = _tasks("https://a.example/x")
    assert ref == ("urls.csv", "line 4")
    assert task.key == from_txt.key == make_key("web", "https://a.example/x", "viewport=1024x1024")
    assert json.loads(task.metadata) == {"caption": "a cat", "rank": "2"} and from_txt.metadata == "{}"


@pytest.mark.parametrize("row, reason, detail", [
    (TableRow(5, {"url": "", "caption": "x"}), "bad_input", "no url"),
    (TableRow(6, {"url": "not a url"}), "bad_input", "'not a url' is not a URL"),
    (TableRow(7, {"url": "ftp://a.example/f"}), "url_blocked", "scheme 'ftp' is not http or https"),
    (TableRow(8, problem="4 fields, the header has 3"), "bad_input", "4 fields, the header has 3"),
])
def test_a_row_without_a_usable_url_is_a_reject(row, reason, detail):
    with pytest.raises(Reject) as caught:
        _tasks(row)
    assert (caught.value.reason, caught.value.detail) == (reason, detail)


def test_the_url_column_names_the_field_of_a_json_line_too():
    _, [task] = _tasks('{"href": "https://a.example/", "lang": "en"}', url_column="href")
    assert task.uri == "https://a.example/" and json.loads(task.metadata) == {"lang": "en"}
