"""Test-wide set-up: the `e2e` and `browser` markers by where a test lives and what it uses.

Tests under tests/pipelines/ run whole commands on real runners: e2e, and so is any test taking a
fixture that builds a dataset with a real Beam runner (``_DATASET_FIXTURES``). Tests that drive
Chromium (the web renderer's modules, and any test taking the `browser` fixture) are browser.
Other modules mark their own tests that run a command or a Beam pipeline with ``@pytest.mark.e2e``.
So ``pytest -m "not e2e and not browser"`` is the quick unit run.
"""

from __future__ import annotations

import pathlib

import pytest

_HERE = pathlib.Path(__file__).parent
_BROWSER_MODULES = {"test_web.py", "test_web_pipeline.py"}
_DATASET_FIXTURES = {"datasets", "rich", "sft_dataset", "dataset"}


def pytest_collection_modifyitems(items):
    for item in items:
        path = pathlib.Path(str(item.fspath))
        if _HERE / "pipelines" in path.parents or _DATASET_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)
        if path.name in _BROWSER_MODULES or "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
