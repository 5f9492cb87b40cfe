"""Dataflow cannot run here: these tests translate a pipeline with --dry_run=True, which builds
the job without credentials and stops before submitting it. The gs:// paths are never touched."""

from __future__ import annotations

import pathlib

REPO = pathlib.Path(__file__).parents[1]


def translate_for_dataflow(run, input_path: str, output: str, monkeypatch) -> None:
    """``run`` (a pipeline module's run) translates for Dataflow, staging ./setup.py."""
    monkeypatch.chdir(REPO)  # --setup_file is relative to the repository
    result = run([
        "--input", input_path, "--output", output,
        "--runner=DataflowRunner", "--dry_run=True", "--project=vlcurate-test", "--region=us-central1",
        "--temp_location=gs://vlcurate-test/tmp", "--setup_file=./setup.py",
    ])
    assert result is None  # a dry run writes nothing and returns no manifest
