"""What a user sees while a command runs and when it ends: live progress (a bar on a terminal, plain
lines in a log), stopped before the summary, and exit status 1 for a dataset without samples."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys

import pytest

from fixtures import REPO
from fixtures import pdf as pdf_fixtures

ENV = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
FAST = ["--page-size", "256", "--ocr", "never"]


def vlcurate(*argv) -> subprocess.CompletedProcess:
    """The command as a user runs it, stdout and stderr apart, neither a terminal."""
    return subprocess.run([sys.executable, "-m", "vlcurate.pipelines.cli", *map(str, argv)], capture_output=True,
                          text=True, env=ENV, cwd=REPO, timeout=300)


def merged(*argv) -> tuple[int, str]:
    """The command with stdout and stderr on one pipe, unbuffered: the order a log would show."""
    process = subprocess.run([sys.executable, "-m", "vlcurate.pipelines.cli", *map(str, argv)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV, cwd=REPO,
                             timeout=300)
    return process.returncode, process.stdout


def on_terminal(*argv) -> tuple[int, str]:
    """The command with a pseudo-terminal as its stdout and stderr, as in an interactive shell."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec at once, nothing else
        os.chdir(REPO)
        os.execve(sys.executable, [sys.executable, "-m", "vlcurate.pipelines.cli", *map(str, argv)], ENV)
    output = b""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        output += data
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pdfs")
    (folder / "a.pdf").write_bytes(pdf_fixtures.text_pdf(3, "a"))
    (folder / "b.pdf").write_bytes(pdf_fixtures.text_pdf(2, "b"))
    return folder


@pytest.fixture(scope="module")
def long_pdfs(tmp_path_factory):
    """Two PDFs of 100 pages: a run long enough for a few lines at 0.05 s however fast the machine
    (five pages took under 0.2 s of progress on a fast one, and printed none)."""
    folder = tmp_path_factory.mktemp("long-pdfs")
    (folder / "a.pdf").write_bytes(pdf_fixtures.text_pdf(100, "a"))
    (folder / "b.pdf").write_bytes(pdf_fixtures.text_pdf(100, "b"))
    return folder


@pytest.fixture(scope="module")
def not_pdfs(tmp_path_factory):
    """Three files named .pdf that are not PDFs."""
    folder = tmp_path_factory.mktemp("not-pdfs")
    for name in ("notes", "photo", "table"):
        (folder / f"{name}.pdf").write_text(f"{name}: plain text, not a PDF\n")
    return folder


def test_a_terminal_gets_a_live_bar_closed_before_the_summary(pdfs, tmp_path):
    status, output = on_terminal("pdf", "--input", pdfs, "--output", tmp_path / "out", *FAST)
    assert status == 0, output
    assert "Traceback" not in output
    # tqdm's bar: the pages done of those known, the rate, and the inputs, samples and rejects after it
    bars = re.findall(r"\rvlcurate pdf: +(\d+)%\|[^|]*\| (\d+)/(\d+) \[[^\]]*page/s, inputs (\d)/2 files, "
                      r"(\d+) samples?, (\d+) rejected", output)
    assert bars, output
    assert bars[-1] == ("100", "5", "5", "2", "5", "0")  # 2 PDFs of 3 + 2 pages, all made into samples
    summary = output.index("dataset       ")
    assert output.rindex("\rvlcurate pdf:") < summary  # the bar is closed before the summary prints
    assert "\r" not in output[summary:].replace("\r\n", "\n")  # and never redrawn after it


def test_a_log_gets_plain_lines_that_stop_before_the_summary(long_pdfs, tmp_path):
    status, output = merged("pdf", "--input", long_pdfs, "--output", tmp_path / "out", *FAST,
                            "--progress-interval", "0.05")
    assert status == 0, output
    assert "Traceback" not in output and "\r" not in output  # no bar in a log
    lines = output.splitlines()
    shown = [n for n, line in enumerate(lines) if line.startswith("vlcurate pdf: ")]
    assert len(shown) >= 2, output
    pattern = (r"vlcurate pdf: \d+/\d+ pages( \(\d+%\))?, inputs \d/2 files, \d+ samples?, \d+ rejected, "
               r"[\d.]+ pages/s(, ETA \d+:\d\d)?( \[\w+\])?, \d+:\d\d elapsed")
    assert all(re.fullmatch(pattern, lines[n]) for n in shown), [lines[n] for n in shown]
    # the last line, printed when the run ends, has every page and sample; then the summary, and no more progress
    assert lines[shown[-1]].startswith("vlcurate pdf: 200/200 pages (100%), inputs 2/2 files, 200 samples, 0 rejected")
    assert shown[-1] < lines.index(f"dataset       {tmp_path / 'out'}")


def test_progress_interval_0_shows_no_progress(pdfs, tmp_path):
    done = vlcurate("pdf", "--input", pdfs, "--output", tmp_path / "out", *FAST, "--progress-interval", "0")
    assert done.returncode == 0, done.stderr
    assert "vlcurate pdf:" not in done.stderr and "Traceback" not in done.stderr


def test_no_samples_is_status_1_with_one_line_unless_allow_empty(not_pdfs, tmp_path):
    output = tmp_path / "empty"
    done = vlcurate("pdf", "--input", not_pdfs, "--output", output, "--progress-interval", "0")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"vlcurate pdf: no samples: 3 inputs, 3 rejected (not_pdf 3); see {output}/rejects/ "
        "(pass --allow-empty to accept an empty dataset)")
    # the summary still prints, and names no shards folder, which the run never made
    assert "shards        none" in done.stdout and f"{output}/shards" not in done.stdout
    assert not (output / "shards").exists()
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["totals"] == {"inputs": 3, "samples": 0, "rejected": 3, "filtered": 0, "balanced": True}

    accepted = vlcurate("pdf", "--input", not_pdfs, "--output", tmp_path / "accepted", "--allow-empty",
                        "--progress-interval", "0")
    assert accepted.returncode == 0, accepted.stderr
    assert "no samples" not in accepted.stderr and "shards        none" in accepted.stdout


def test_a_recipe_without_samples_is_status_1_and_shows_progress(tmp_path):
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "blank.jsonl").write_text(json.dumps({"text": ""}) + "\n" + json.dumps({"text": "  "}) + "\n")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"output: {tmp_path / 'out'}\nprefix: t\nsources:\n  prose: {{kind: text, input: {texts}}}\n")
    status, output = merged("run", recipe, "--no-report", "--progress-interval", "0.1")
    assert status == 1, output
    assert "Traceback" not in output
    assert re.search(r"^vlcurate run: \d+/\d+ items", output, re.MULTILINE), output
    assert output.rstrip().splitlines()[-1] == (
        f"vlcurate run: no samples: 2 inputs, 2 filtered (text_empty 2); see {tmp_path / 'out'}/rejects/ "
        "(pass --allow-empty to accept an empty dataset)")
    again = vlcurate("run", recipe, "--no-report", "--overwrite", "--allow-empty", "--progress-interval", "0")
    assert again.returncode == 0, again.stderr


def test_worker_processes_report_their_counts(tmp_path):
    """With several Beam worker processes the stages run outside the command's process: each writes
    its counts to the run's progress folder, and the lines add them up."""
    texts = tmp_path / "texts"
    texts.mkdir()
    for name in ("a", "b"):
        (texts / f"{name}.jsonl").write_text("".join(
            json.dumps({"text": f"Paragraph {n} of {name}, long enough to be kept as a document."}) + "\n"
            for n in range(3)))
    status, output = merged("text", "--input", texts, "--output", tmp_path / "out", "--progress-interval", "0.2",
                            "--direct_running_mode=multi_processing", "--direct_num_workers=2")
    assert status == 0, output
    shown = [line for line in output.splitlines() if line.startswith("vlcurate text: ")]
    assert shown and shown[-1].startswith("vlcurate text: 6/6 documents (100%), inputs 2/2 files, 6 samples"), shown
