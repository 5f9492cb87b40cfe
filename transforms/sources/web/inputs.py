"""What `vlcurate web --input` reads, and URL tables (.csv, .tsv).

The forms: a URL list file (``URL_LISTS``), a folder of .html files (a local folder, or a prefix
ending in /), an .html file, or a glob of them. Anything else is refused before the run starts
(``input_problem``), so a list in a form we do not read is never opened as a web page.

A URL table has a header row naming its columns; each row is one input: its ``url_column`` is the
URL and its other columns are kept as the sample's input metadata, as img2dataset's ``url_col``
and ``save_additional_columns`` do. Rows are read with the csv module from the whole file (a
quoted field may hold a newline, so a table is not split by lines). A row that cannot be used
travels on as a ``TableRow`` with its problem and becomes a ``bad_input`` reject row in the input
stage, so every row is counted.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import json
import os
from collections.abc import Iterator

from vlcurate.transforms.data.rejects import Reject

URL_LISTS = (".txt", ".jsonl", ".parquet", ".csv", ".tsv")
DELIMITERS = {".csv": ",", ".tsv": "\t"}
_HTML = (".html", ".htm")
_GLOB = "*?["
FORMS = ("a URL list (.txt: a URL a line; .csv or .tsv with a header row and a url column; .jsonl or "
         ".parquet with a url field), a folder of .html files, or an .html file")


@dataclasses.dataclass(frozen=True)
class TableRow:
    """One row of a URL table: its line (where it ends, 1-based), its fields by column, or a problem."""

    line: int
    fields: dict = dataclasses.field(default_factory=dict)
    problem: str = ""


def delimiter_of(path: str) -> str | None:
    """The column separator of a URL table, or None for any other input."""
    return next((sep for suffix, sep in DELIMITERS.items() if path.lower().endswith(suffix)), None)


def is_url_list(path: str) -> bool:
    return path.lower().endswith(URL_LISTS)


def input_problem(source: str, url_column: str = "url", read_tables: bool = True) -> str | None:
    """Why ``source`` cannot be a web input, in one line, or None. With ``read_tables`` the header of
    every table it matches is read (a dry run reads nothing); a missing file is not a problem here:
    the launch says that no input matches."""
    lowered = source.lower()
    folder = source.endswith("/") or ("://" not in source and os.path.isdir(source))
    if not (folder or is_url_list(lowered) or lowered.endswith(_HTML) or any(c in source for c in _GLOB)):
        if "://" not in source and not os.path.exists(source) and "." not in os.path.basename(source):
            return None  # meant as a folder, but not there: the launch says that no input matches it
        hint = "; to render one URL, put it in a .txt file" if "://" in source else ""
        return f"--input {source} is not a form vlcurate web reads; it takes {FORMS}{hint}"
    if not read_tables or not delimiter_of(source):
        return None
    return tables_problem(source, {url_column: "URL"})


def tables_problem(source: str, columns: dict[str, str]) -> str | None:
    """Why the header of a table ``source`` matches lacks one of ``columns`` (name -> what it
    holds: "URL" for --url-column, "caption" for --caption-column), in one line, or None."""
    from apache_beam.io.filesystems import FileSystems

    try:
        paths = [meta.path for meta in FileSystems.match([source])[0].metadata_list]
    except Exception:  # nothing matches: the launch's own check says so
        return None
    for path in sorted(paths):
        try:
            with open_table(path) as binary:
                header = next(csv.reader(_Lines(binary), delimiter=delimiter_of(path)), None)
        except (OSError, csv.Error) as error:
            return f"cannot read the header of {path}: {error}"
        for column, what in columns.items():
            problem = header_problem(header, column, what)
            if problem:
                return f"{path}: {problem}"
    return None


def header_problem(header: list[str] | None, url_column: str, what: str = "URL") -> str | None:
    if not header:
        return "no header row: a URL table starts with a row naming its columns (url, then any others)"
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        return f"column {repeated[0]!r} appears twice in the header: each column needs its own name"
    if url_column not in header:
        columns = ", ".join(repr(name) for name in header)
        return f"no {url_column!r} column (its columns: {columns}): name the {what} column with --{what.lower()}-column"
    return None


def open_table(path: str):
    """A table's bytes (local or gs://): lines are decoded one by one (``_Lines``)."""
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.open(path)


class _Lines:
    """A binary file's lines as text for csv, each decoded alone: a line that is not UTF-8 costs
    its row, not the rest of the file (a byte-order mark from a spreadsheet is skipped). The
    numbers of such lines are kept in ``bad``. A UTF-8 character never holds the byte of \\n."""

    def __init__(self, binary):
        self._binary = binary
        self.bad: set[int] = set()

    def __iter__(self) -> Iterator[str]:
        for number, raw in enumerate(iter(self._binary.readline, b""), 1):
            if number == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                self.bad.add(number)
                yield raw.decode("utf-8", "replace")


def table_rows(binary, delimiter: str) -> Iterator[TableRow]:
    """The rows after the header, blank lines skipped. A row with another number of fields than the
    header, with a line that is not UTF-8, or one csv cannot parse, is a row with a problem."""
    lines = _Lines(binary)
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = next(reader, None) or []
    except csv.Error as error:
        yield TableRow(1, problem=f"cannot read the header: {error}")
        return
    while True:
        first = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield TableRow(reader.line_num, problem=f"not CSV: {error}")
            continue
        if not row or not any(field.strip() for field in row):
            continue
        if lines.bad & set(range(first, reader.line_num + 1)):
            yield TableRow(reader.line_num, problem="not UTF-8 text")
        elif len(row) != len(header):
            yield TableRow(reader.line_num, problem=f"{len(row)} fields, the header has {len(header)}")
        else:
            yield TableRow(reader.line_num, dict(zip(header, row)))


def table_records(path: str) -> Iterator[tuple[str, TableRow]]:
    """(table file, row) for every row of one URL table; a file that cannot be opened is one row
    with its problem (it was there when the run started)."""
    try:
        binary = open_table(path)
    except OSError as error:
        yield path, TableRow(0, problem=f"cannot read: {error}")
        return
    with binary:
        for row in table_rows(binary, delimiter_of(path) or ","):
            yield path, row


def record_fields(record, what: str = "a url field") -> dict | None:
    """The fields of one list record (a table row, a parquet row, a JSON line) as a new dict, or
    None for a plain text line (a URL alone). A row with a problem, or a JSON line that is not an
    object (it should have ``what``), is ``Reject("bad_input")``."""
    if isinstance(record, TableRow):
        if record.problem:
            raise Reject("bad_input", record.problem)
        return dict(record.fields)
    if isinstance(record, dict):
        return dict(record)
    if not record.lstrip().startswith("{"):
        return None
    try:
        fields = json.loads(record)
    except ValueError as error:
        raise Reject("bad_input", f"not JSON: {error}") from error
    if not isinstance(fields, dict):
        raise Reject("bad_input", f"a JSON line must be an object with {what}")
    return fields


def record_ref(element) -> tuple[str, str]:
    """(input file, where in it) of a (file, record) element, for reject rows."""
    source, record = element
    if isinstance(record, TableRow):
        return source, f"line {record.line}"
    text = json.dumps(record, sort_keys=True, default=str) if isinstance(record, dict) else str(record)
    return source, text[:500]
