"""Throughput benchmark of the notebooks stage: notebooks/s and plots/s of `vlcurate notebooks`
against a plain loop over the same core.

    .venv/bin/python bench/notebooks.py [--notebooks 200] [--repeat 1] [--json out.json]

Generates a seeded corpus of analysis notebooks (imports, a data cell, three or four plot cells
of 400x300 PNGs drawn by matplotlib; one notebook in ten has a cell with two plots, one in five a
plot cell too short to keep) and measures:

  (a) the vlcurate Beam pipeline end to end via its CLI in a subprocess, as a user runs it locally
      (FnApiRunner in-process, one worker; shards, index and manifest written),
  (b) the raw limit: one process looping over the files, calling the stage's core
      (plot_tasks, then pair_plot for each plot cell) on each, nothing written,
and prints a/b. (a0) is (a) on one notebook: start-up, Beam's stages and the manifest; "a/b
steady" takes it out. Numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
from matplotlib.figure import Figure
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from timing import add_run_flags, best_time, finish, run_main, work_folder  # bench/timing.py: this script's folder is on sys.path

from vlcurate.transforms.sources.notebooks.core import NotebookConfig, pair_plot, plot_tasks
from vlcurate.transforms.data.rejects import Reject

REPO_ROOT = Path(__file__).resolve().parent.parent
DISTINCT_PLOTS = 24
IMPORTS = "%matplotlib inline\nimport numpy as np\nimport matplotlib.pyplot as plt"
KINDS = ("plot", "scatter", "bar", "hist")


# --------------------------------------------------------------------------- corpus


def draw(kind: str, seed: int) -> bytes:
    """One 400x300 PNG, as a notebook's inline backend saves it."""
    rng = np.random.default_rng(seed)
    figure = Figure(figsize=(5, 3.75), dpi=80)
    axes = figure.subplots()
    values = rng.normal(0, 1, 60).cumsum()
    if kind == "plot":
        axes.plot(values, label="series")
        axes.legend()
    elif kind == "scatter":
        axes.scatter(values[:-1], values[1:], s=10, c=np.arange(59))
    elif kind == "bar":
        axes.bar(np.arange(12), np.abs(values[:12]), color="tab:green")
    else:
        axes.hist(values, bins=12)
    axes.set_title(f"{kind} {seed}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def figure_output(png: bytes):
    data = {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": "<Figure size 400x300 with 1 Axes>"}
    return new_output("display_data", data=data)


def plot_cell(kind: str, seed: int, count: int, png: bytes, figures: int = 1):
    """Six lines of plotting code per figure (kept with the import and data cells: 10 lines)."""
    source = "\n".join([
        f"subset = data[{seed % 7}:{seed % 7 + 50}]",
        "fig, ax = plt.subplots()",
        f"ax.{kind}(subset)" if kind in ("plot", "hist") else f"ax.{kind}(np.arange(len(subset)), subset)",
        f'ax.set_title("{kind} {seed}")',
        'ax.set_xlabel("step")',
        "plt.show()",
    ] * figures)
    return new_code_cell(source, outputs=[figure_output(png)] * figures, execution_count=count)


def make_corpus(folder: Path, count: int, seed: int) -> int:
    """Writes ``count`` notebooks; returns how many plot cells they hold."""
    rng = np.random.default_rng(seed)
    plots = [draw(KINDS[i % len(KINDS)], i) for i in range(DISTINCT_PLOTS)]
    folder.mkdir(parents=True, exist_ok=True)
    plot_cells = 0
    for n in range(count):
        cells = [
            new_markdown_cell(f"# Experiment {n}"),
            new_code_cell(IMPORTS, execution_count=1),
            new_code_cell(f"rng = np.random.default_rng({n})\ndata = rng.normal(0, 1, 500).cumsum()",
                          execution_count=2),
        ]
        for i in range(int(rng.integers(3, 5))):
            pick = int(rng.integers(DISTINCT_PLOTS))
            figures = 2 if n % 10 == 0 and i == 0 else 1
            cells.append(plot_cell(KINDS[pick % len(KINDS)], pick, len(cells), plots[pick], figures))
        if n % 5 == 0:
            cells.append(new_code_cell("plt.plot([1, 4, 9])", execution_count=len(cells),
                                       outputs=[figure_output(plots[n % DISTINCT_PLOTS])]))
        plot_cells += sum(1 for cell in cells if cell.get("outputs"))
        document = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                      "language": "python"}})
        for i, cell in enumerate(document.cells):
            cell.id = f"cell-{i}"
        nbformat.write(document, str(folder / f"experiment_{n:05d}.ipynb"))
    return plot_cells


# --------------------------------------------------------------------------- (a) Beam pipeline


def run_pipeline(corpus: Path, out: Path, plot_cells: int) -> None:
    command = [sys.executable, "-m", "vlcurate.pipelines.cli", "notebooks", "--input", str(corpus),
               "--output", str(out)]
    proc = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"pipeline CLI exited with {proc.returncode}:\n{tail}")
    totals = json.loads((out / "manifest.json").read_text())["totals"]
    if totals["inputs"] != plot_cells or not totals["balanced"]:
        raise RuntimeError(f"the pipeline counted {totals}, not {plot_cells} plot cells")


# --------------------------------------------------------------------------- (b) plain loop


def run_loop(corpus: Path, plot_cells: int) -> None:
    config = NotebookConfig()
    seen = 0
    for path in sorted(corpus.glob("*.ipynb")):
        for task in plot_tasks(path.read_bytes(), str(path)):
            seen += 1
            try:
                pair_plot(task, config)
            except Reject:
                pass
    assert seen == plot_cells


# --------------------------------------------------------------------------- driver


def main() -> int:
    ap = argparse.ArgumentParser(description="Notebooks stage throughput benchmark.")
    ap.add_argument("--notebooks", type=int, default=200)
    add_run_flags(ap)
    args = ap.parse_args()

    work, tmp = work_folder(args, "vlcurate-bench-notebooks-")
    one, corpus = work / "one-notebook", work / "corpus"
    for folder in (one, corpus):
        shutil.rmtree(folder, ignore_errors=True)
    one_cells = make_corpus(one, 1, args.seed + 1)
    plot_cells = make_corpus(corpus, args.notebooks, args.seed)
    print(f"cores: {os.cpu_count()}  corpus: {args.notebooks} notebooks, {plot_cells} plot cells at {corpus}")

    runs = {
        "(a0) beam, 1 notebook": lambda out: run_pipeline(one, out, one_cells),
        "(a) beam, default local": lambda out: run_pipeline(corpus, out, plot_cells),
        "(b) plain loop, 1 process": lambda out: run_loop(corpus, plot_cells),
    }
    times = {name: best_time(fn, work / f"out-{i}", args.repeat) for i, (name, fn) in enumerate(runs.items())}
    a0, a, b = times.values()
    ratios = {"a/b": b / a, "a/b steady": b / (a - a0)}
    print(f"{'measurement':28s} {'seconds':>8s} {'notebooks/s':>12s} {'plots/s':>9s}")
    for name, seconds in times.items():
        if "1 notebook" in name:
            print(f"{name:28s} {seconds:8.2f}   (fixed cost)")
        else:
            print(f"{name:28s} {seconds:8.2f} {args.notebooks / seconds:12.1f} {plot_cells / seconds:9.1f}")
    print("throughput ratios: " + "   ".join(f"{k} = {v:.2f}" for k, v in ratios.items()))

    return finish(args, tmp, {"cores": os.cpu_count(), "notebooks": args.notebooks, "plot_cells": plot_cells,
                              "seconds": times, "ratios": ratios})


if __name__ == "__main__":
    run_main(main)
