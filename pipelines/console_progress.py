"""A run's live progress on the console: a tqdm bar when stderr is a terminal, plain lines every
``--progress-interval`` seconds when it is not (a log, a pipe), closed before the summary prints.

It shows the run's tally (transforms/runtime/progress.py): the items done out of those known, the
inputs read out of those counted before the run, samples, rejected and filtered rows, the rate of
items, the ETA, and the stage at work. Items are the main work (pages, images, records); an input
that fans out (a PDF into its pages) counts as one item until it has been read. The local
FnApiRunner runs stage after stage, so the inputs are all read before the first item is done: a
rate of inputs would be spent in seconds, a rate of items is the one that predicts.

    vlcurate pdf: 40/120 pages (33%), inputs 3/3 files, 38 samples, 2 rejected, 3.9 pages/s, ETA 0:21 [pdf_page]
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import sys
import tempfile
import threading
import time

from vlcurate.transforms.runtime import progress

# What one item is, per pipeline (the run's other pipelines: "item").
ITEM_UNITS = {"pdf_pages": "page", "pdf_charts": "page", "web_screenshots": "page", "ocr_images": "image",
              "notebooks": "plot", "captions": "image", "sft": "record", "text": "document", "filter": "shard"}
_TICK_S = 0.25  # how often the bar is redrawn, and how soon a stop is noticed


@dataclasses.dataclass(frozen=True)
class Progress:
    """What a run's progress names: ``title`` ("vlcurate pdf"), the ``inputs`` counted before the
    run (None: unknown) and what they are (``input_unit``), what an item is (``unit``), and the
    seconds between plain lines (``interval``; 0: no progress at all)."""

    title: str
    inputs: int | None
    unit: str = "item"
    input_unit: str = "file"
    interval: float = 10.0

    @contextlib.contextmanager
    def showing(self, stream=None):
        """Show the progress while the body runs (the pipeline); it is closed when the body ends,
        with a final update, whether the body finished or raised."""
        stream = stream or sys.stderr
        if self.interval <= 0:
            yield
            return
        folder = tempfile.mkdtemp(prefix="vlcurate-progress-")  # worker processes' tallies
        progress.share(folder)
        view = _Bar(self, stream) if _is_terminal(stream) else _Lines(self, stream)
        stop = threading.Event()
        thread = threading.Thread(target=view.follow, args=(stop,), daemon=True, name="vlcurate-progress")
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            view.close()
            progress.share(None)
            shutil.rmtree(folder, ignore_errors=True)

    def figures(self) -> dict:
        """The tally now, with the items known: those the inputs read so far brought, plus one for
        each input not read yet."""
        tally, stage = progress.snapshot()
        known = None
        if self.inputs is not None:
            known = tally["fanned_items"] + max(self.inputs - tally["fanned_inputs"], 0)
        elif tally["fanned_inputs"]:
            known = tally["fanned_items"]
        if known is not None:
            known = max(known, tally["items"])
        return {"items": tally["items"], "known": known, "inputs": tally["inputs"], "samples": tally["samples"],
                "rejected": tally["rejected"], "filtered": tally["filtered"], "stage": stage}

    def counts(self, now: dict) -> str:
        """``inputs 3/3 files, 38 samples, 2 rejected, 1 filtered``"""
        total = f"/{self.inputs}" if self.inputs is not None else ""
        parts = [f"inputs {now['inputs']}{total} {_plural(self.input_unit, self.inputs or now['inputs'])}",
                 f"{now['samples']} {_plural('sample', now['samples'])}", f"{now['rejected']} rejected"]
        if now["filtered"]:
            parts.append(f"{now['filtered']} filtered")
        return ", ".join(parts)


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _columns(stream) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 0


def _plural(unit: str, count: int) -> str:
    return unit if count == 1 else unit + "s"


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class _Lines:
    """A plain line every ``interval`` seconds, and a last one when the run ends if any was printed."""

    def __init__(self, shown: Progress, stream):
        self._shown, self._stream = shown, stream
        self._started = time.monotonic()
        self._printed = False

    def follow(self, stop: threading.Event) -> None:
        while not stop.wait(self._shown.interval):
            self._print()

    def close(self) -> None:
        if self._printed:
            self._print()

    def line(self, now: dict, elapsed: float) -> str:
        shown = self._shown
        unit = _plural(shown.unit, 2)
        done = f"{now['items']}/{now['known']} {unit}" if now["known"] is not None else f"{now['items']} {unit}"
        if now["known"]:
            done += f" ({now['items'] / now['known']:.0%})"
        rate = now["items"] / elapsed if elapsed > 0 else 0.0
        eta = ""
        if rate > 0 and now["known"] is not None:
            eta = f", ETA {_clock(max(now['known'] - now['items'], 0) / rate)}"
        at = f" [{now['stage']}]" if now["stage"] else ""
        return (f"{shown.title}: {done}, {shown.counts(now)}, {rate:,.1f} {unit}/s{eta}{at}, "
                f"{_clock(elapsed)} elapsed")

    def _print(self) -> None:
        print(self.line(self._shown.figures(), time.monotonic() - self._started), file=self._stream, flush=True)
        self._printed = True


class _Bar:
    """A tqdm bar over the items, with the inputs, samples and rejects after it."""

    def __init__(self, shown: Progress, stream):
        from tqdm import tqdm

        self._shown = shown
        # tqdm hides its bar on a terminal that reports no size (a bare pty): give it one.
        sized = _columns(stream) > 0
        self._bar = tqdm(desc=shown.title, total=shown.inputs, unit=shown.unit, file=stream, dynamic_ncols=sized,
                         ncols=None if sized else 100, nrows=None if sized else 24, leave=True,
                         mininterval=_TICK_S, smoothing=0.1)

    def follow(self, stop: threading.Event) -> None:
        while not stop.wait(_TICK_S):
            self._update()

    def close(self) -> None:
        self._update()
        self._bar.close()

    def _update(self) -> None:
        now = self._shown.figures()
        bar = self._bar
        if now["known"] != bar.total:
            bar.total = now["known"]
        at = f" [{now['stage']}]" if now["stage"] else ""
        bar.set_postfix_str(self._shown.counts(now) + at, refresh=False)
        if now["items"] > bar.n:
            bar.update(now["items"] - bar.n)
        else:
            bar.refresh()
