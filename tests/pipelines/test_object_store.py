"""A dataset on an object store, as a Dataflow run writes it to gs://, on the local runner.

Cloud Storage cannot be reached from here: the output is ``fakegcs://`` (tests/fixtures/
object_store.py), a local folder with Cloud Storage's semantics (no folders, whole objects, a rename
is a copy) that counts the requests a run makes by billing class. The dataset must be the bytes a
local output gets, the staging area must be gone after the run, and staging must cost a fraction
of a class A operation a sample (one object per sample cost two: a write and the rename's copy)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from fixtures import REPO
from fixtures import pdf as pdf_fixtures
from fixtures.object_store import object_store
from fixtures.recipes import every_stage_recipe
from vlcurate.pipelines import cli

pytestmark = pytest.mark.e2e

PAGES = 2 * 60
FLAGS = ["--page-size", "256", "--dedup", "exact", "--progress-interval", "0"]


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("store-pdfs")
    (folder / "a.pdf").write_bytes(pdf_fixtures.text_pdf(PAGES // 2, "a"))
    (folder / "b.pdf").write_bytes(pdf_fixtures.text_pdf(PAGES // 2, "b"))
    (folder / "broken.pdf").write_bytes(pdf_fixtures.truncated_pdf())
    return folder


def digests(root, manifest: dict) -> dict[str, str]:
    """sha256 of every shard, index and rejects file the manifest names."""
    names = [entry[key]["name"] if key != "shard" else entry["name"]
             for entry in manifest["shards"] for key in ("shard", "index")]
    names += [entry["name"] for entry in manifest["rejects"]["files"]]
    names += sorted(path.relative_to(root).as_posix() for path in (root / "review").glob("*.jsonl"))
    return {name: hashlib.sha256((root / name).read_bytes()).hexdigest() for name in names}


def staged_objects(store) -> list:
    return [path for path in store.rglob("*") if ".staging" in path.parts and path.is_file()]


def test_a_dataset_on_an_object_store_is_the_local_one_and_staging_costs_little(pdfs, tmp_path):
    local = tmp_path / "local"
    assert cli.main(["pdf", "--input", str(pdfs), "--output", str(local), *FLAGS]) == 0
    expected = json.loads((local / "manifest.json").read_text())

    store = tmp_path / "store"
    with object_store(store) as operations:
        assert cli.main(["pdf", "--input", str(pdfs), "--output", "fakegcs://bucket/out", *FLAGS]) == 0
    dataset = store / "bucket" / "out"
    manifest = json.loads((dataset / "manifest.json").read_text())

    assert manifest["totals"] == expected["totals"]
    assert manifest["totals"]["samples"] == PAGES and manifest["totals"]["rejected"] == 1
    assert digests(dataset, manifest) == digests(local, expected)
    assert not staged_objects(store)  # removed by its prefix
    class_a = sum(count for kind, count in operations.items() if kind.startswith("A "))
    # Staged in objects of up to a batch of samples, by the render stage and again by the sink
    # (after dedup's annotations), plus the dataset's own files: one object per sample was >= 2 a sample.
    assert class_a < 0.5 * PAGES, dict(operations)


def test_a_dataset_on_an_object_store_filters_into_another(pdfs, tmp_path):
    """`vlcurate filter --input gs://...`: a dataset there is a prefix, not a folder to look at."""
    store = tmp_path / "store"
    with object_store(store):
        assert cli.main(["pdf", "--input", str(pdfs), "--output", "fakegcs://bucket/out", *FLAGS]) == 0
        assert cli.main(["filter", "--input", "fakegcs://bucket/out", "--output", "fakegcs://bucket/filtered",
                         "--dedup", "exact", "--progress-interval", "0"]) == 0
    filtered = json.loads((store / "bucket" / "filtered" / "manifest.json").read_text())
    assert filtered["totals"]["samples"] == PAGES and filtered["totals"]["balanced"]
    assert not staged_objects(store)


def test_extending_a_dataset_on_an_object_store_over_the_same_inputs_adds_nothing(pdfs, tmp_path):
    store = tmp_path / "store"
    with object_store(store):
        assert cli.main(["pdf", "--input", str(pdfs), "--output", "fakegcs://bucket/out", *FLAGS]) == 0
        assert cli.main(["pdf", "--input", str(pdfs), "--output", "fakegcs://bucket/out", *FLAGS,
                         "--mode", "extend"]) == 0
    dataset = store / "bucket" / "out"
    second = json.loads((dataset / "runs" / "run-0002.json").read_text())
    assert second["totals"]["samples"] == 0 and second["totals"]["balanced"]
    assert second["rejects"]["by_reason"]["already_in_dataset"] == PAGES
    assert not staged_objects(store)


def test_a_recipe_with_every_quality_stage_on_an_object_store_is_the_local_one(tmp_path):
    """PDF pages, OCR of photos, SFT conversations and text, through exact and near dedup, CLIP
    with a keep fraction and the labeler (its review queue): the stages that read staged blobs
    back (Load) right behind the sources that staged them, and the sink staging again."""
    path = every_stage_recipe(tmp_path)
    assert cli.main(["run", str(path), "--no-report", "--progress-interval", "0"]) == 0
    expected = json.loads((tmp_path / "out" / "manifest.json").read_text())

    remote = tmp_path / "remote.yaml"
    remote.write_text(path.read_text().replace(f"output: {tmp_path / 'out'}", "output: fakegcs://bucket/recipe"))
    store = tmp_path / "store"
    with object_store(store):
        assert cli.main(["run", str(remote), "--no-report", "--progress-interval", "0"]) == 0
    dataset = store / "bucket" / "recipe"
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert manifest["totals"] == expected["totals"] and manifest["totals"]["filtered"] > 0
    assert manifest["facts"]["clip_cut"] == expected["facts"]["clip_cut"]
    assert (dataset / "review").is_dir()
    assert digests(dataset, manifest) == digests(tmp_path / "out", expected)
    assert not staged_objects(store)


# Test harness only: each page takes a little longer and a batch is 8 pages, so that the run,
# writing to the fake object store, can be killed with some batches written and some not.
SLOW_RUN_ON_THE_STORE = """
import pathlib, sys, time
sys.path.insert(0, sys.argv[4])
from fixtures.object_store import object_store
from vlcurate.transforms.runtime import stage
from vlcurate.transforms.sources.pdf import beam as pdf_beam

stage.DONE_BATCH = 8
outputs = pdf_beam.RenderPdfPage.outputs

def slow(self, task, sample):
    time.sleep(0.15)
    return outputs(self, task, sample)

pdf_beam.RenderPdfPage.outputs = slow
from vlcurate.pipelines import cli
with object_store(pathlib.Path(sys.argv[3])):
    sys.exit(cli.main(["pdf", "--input", sys.argv[1], "--output", sys.argv[2], "--page-size", "256",
                       "--progress-interval", "0"]))
"""


def finished_pages(dataset) -> int:
    return sum(len(path.read_bytes().splitlines())
               for path in (dataset / ".staging" / "pdf" / "done" / "pdf_page").glob("*.jsonl"))


def test_a_run_on_an_object_store_killed_part_way_resumes_from_its_packs(pdfs, tmp_path):
    local = tmp_path / "local"
    assert cli.main(["pdf", "--input", str(pdfs), "--output", str(local), "--page-size", "256",
                     "--progress-interval", "0"]) == 0
    expected = json.loads((local / "manifest.json").read_text())

    store = tmp_path / "store"
    dataset = store / "bucket" / "out"
    process = subprocess.Popen([sys.executable, "-c", SLOW_RUN_ON_THE_STORE, str(pdfs), "fakegcs://bucket/out",
                                str(store), str(REPO / "tests")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 240
    while finished_pages(dataset) < PAGES // 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    done = finished_pages(dataset)
    assert PAGES // 3 <= done < PAGES, "the kill came too late to test anything"
    assert list(dataset.glob(".staging/pdf/samples/packs/*.pack"))  # done lines name packs, written first

    resume = ["pdf", "--input", str(pdfs), "--output", "fakegcs://bucket/out", "--page-size", "256",
              "--progress-interval", "0", "--mode", "resume"]
    with object_store(store):
        # On an object store a lock is not taken over: a Dataflow job can outlive the process
        # that launched it, so the user is told which lock to delete once that run is gone.
        with pytest.raises(SystemExit, match="delete fakegcs://bucket/out/.vlcurate.lock if that run is gone"):
            cli.main(resume)
        (dataset / ".vlcurate.lock").unlink()
        assert cli.main(resume) == 0
    run = json.loads((dataset / "runs" / "run-0001.json").read_text())
    page = next(row for row in run["funnel"] if row["stage"] == "pdf_page")
    assert page["in"] == PAGES and page["replayed"] == done
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert manifest["totals"] == expected["totals"]
    assert digests(dataset, manifest) == digests(local, expected)
    assert not staged_objects(store) and not (dataset / ".vlcurate.lock").exists()
