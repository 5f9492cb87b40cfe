"""Static checks over the source tree: no unused imports, undefined names or shadowed code."""

from __future__ import annotations

import pathlib

from pyflakes.api import checkPath
from pyflakes.reporter import Reporter

ROOT = pathlib.Path(__file__).parents[1]
FOLDERS = ("vlcurate", "pipelines", "transforms", "taxonomy", "training", "tests", "bench", "examples")


class _Collect:
    def __init__(self):
        self.lines = []

    def write(self, text):
        self.lines.append(text)

    def flush(self):
        pass


def test_pyflakes_finds_nothing():
    found = _Collect()
    reporter = Reporter(found, found)
    files = sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))
    assert len(files) > 20
    problems = sum(checkPath(str(path), reporter) for path in files)
    assert problems == 0, "".join(found.lines)
