"""Resume that saves work: `vlcurate pdf` killed with SIGKILL part way through rendering, then run
again with --mode resume, renders only the pages it had not finished (plus what was in flight), and
its shards equal those of a clean run, with no key missing or doubled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from fixtures import pdf as pdf_fixtures
from vlcurate.pipelines import cli
from vlcurate.transforms.io.shard_reader import read_shard
from vlcurate.transforms.io.staging import STAGING

pytestmark = pytest.mark.e2e

PAGES = 6 * 8

# Test harness only: each page takes a little longer, so that the run can be killed mid-way.
SLOW_RENDER = """
import sys, time
from vlcurate.transforms.sources.pdf import beam as pdf_beam

outputs = pdf_beam.RenderPdfPage.outputs

def slow(self, task, sample):
    time.sleep(0.15)
    return outputs(self, task, sample)

pdf_beam.RenderPdfPage.outputs = slow
from vlcurate.pipelines import cli
sys.exit(cli.main(["pdf", "--input", sys.argv[1], "--output", sys.argv[2], "--page-size", "256",
                   "--max-samples-per-shard", "10"]))
"""


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pdfs")
    for n in range(PAGES // 8):
        (folder / f"doc{n}.pdf").write_bytes(pdf_fixtures.text_pdf(pages=8, label=f"doc{n}"))
    return folder


def pdf_run(pdfs, output, *flags) -> dict:
    return cli.main(["pdf", "--input", str(pdfs), "--output", str(output), "--page-size", "256",
                     "--max-samples-per-shard", "10", *flags])


def finished_pages(output) -> int:
    """Pages the run has recorded as done: a line each in its done files."""
    return sum(len(path.read_bytes().splitlines()) for path in (output / STAGING / "pdf" / "done" / "pdf_page").glob("*.jsonl"))


def test_a_killed_run_renders_again_only_what_it_had_not_finished(tmp_path, pdfs):
    clean = tmp_path / "clean"
    assert pdf_run(pdfs, clean) == 0
    complete = json.loads((clean / "manifest.json").read_text())

    output = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-c", SLOW_RENDER, str(pdfs), str(output)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 240
    while finished_pages(output) < PAGES // 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the run and its render children, as an out-of-memory killer would
    process.communicate()
    done = finished_pages(output)
    assert PAGES // 3 <= done < PAGES, "the kill came too late to test anything"
    assert (output / ".vlcurate.lock").exists()  # left by the killed run; a resume takes it over

    assert pdf_run(pdfs, output, "--mode", "resume") == 0
    run = json.loads((output / "runs" / "run-0001.json").read_text())
    page = next(row for row in run["funnel"] if row["stage"] == "pdf_page")
    rendered = page["in"] - page.get("replayed", 0)
    # every page finished before the kill is replayed from the staging area; only the others
    # (those not started, and those in flight when the run died) are rendered again
    assert page["in"] == PAGES and page["replayed"] == done and rendered == PAGES - done
    manifest = json.loads((output / "manifest.json").read_text())
    assert [s["sha256"] for s in manifest["shards"]] == [s["sha256"] for s in complete["shards"]]
    keys = [s.key for shard in manifest["shards"] for s in read_shard(str(output / shard["name"]))]
    assert len(keys) == len(set(keys)) == complete["totals"]["samples"] == PAGES
    assert manifest["totals"]["balanced"]
    assert not (output / STAGING).exists() and not (output / ".vlcurate.lock").exists()


def test_a_second_run_into_the_same_output_is_refused(tmp_path, pdfs, capsys):
    output = tmp_path / "busy"
    output.mkdir()
    (output / ".vlcurate.lock").write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename,
                                                       "since": "now"}))
    with pytest.raises(SystemExit, match=r"is being written by another run \(pid \d+ .*delete .*\.vlcurate\.lock"):
        pdf_run(pdfs, output)
    assert sorted(p.name for p in output.iterdir()) == [".vlcurate.lock"]  # nothing was touched


def test_a_full_disk_stops_the_run_with_what_to_do(tmp_path, pdfs, monkeypatch):
    """Fault injection (a full disk cannot be made here without privileges): writing the third
    shard fails with ENOSPC. The run stops with one line, and a resume finishes it."""
    import errno

    from vlcurate.transforms.io import shards

    original = shards.atomic_write
    written = []

    def full_after_two(path, write, keep_identical=False):
        if path.endswith(".tar") and len(written) >= 2:
            raise OSError(errno.ENOSPC, "No space left on device", path)
        written.append(path)
        return original(path, write, keep_identical)

    monkeypatch.setattr(shards, "atomic_write", full_after_two)
    output = tmp_path / "full"
    with pytest.raises(SystemExit, match="is full; the shards finished so far are intact.*--mode resume"):
        pdf_run(pdfs, output)
    monkeypatch.setattr(shards, "atomic_write", original)
    assert len(list((output / "shards").glob("*.tar"))) == 2
    assert pdf_run(pdfs, output, "--mode", "resume") == 0
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["totals"]["samples"] == PAGES and manifest["totals"]["balanced"]
