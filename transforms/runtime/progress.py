"""Stage counts as a run goes: the live tally the console shows (inputs, items, samples, rejects).

Every stage DoFn (transforms/runtime/stage.py) calls ``record`` once per element it settles, saying
what its elements count as (``counts``): ``input``, the run's input units (a file, a URL of a
list); ``item``, the units of its main work (a page rendered, a record made a sample); ``samples``,
its outputs are samples. The tally lives in the process that runs the stage. On the local
FnApiRunner that is the command's own process, which shows it (pipelines/console_progress.py);
worker processes of ``--direct_running_mode=multi_processing`` write theirs to the folder
``share`` names (inherited through ``SHARE_ENV``), where ``snapshot`` adds them up.

The same elements are also timed as Beam metrics, which ``funnel.timing`` gathers after the
run into the manifest's ``throughput`` and ``funnel`` (transforms/runtime/funnel.py).
"""

from __future__ import annotations

import collections
import functools
import json
import os
import threading
import time

from apache_beam.metrics import Metrics

from vlcurate.transforms.data.rejects import is_filtered

# What a stage's elements count as (a stage's ``counts``).
INPUTS = frozenset({"input"})  # the run's inputs, which fan out into items (a PDF into its pages)
ITEMS = frozenset({"item", "samples"})  # items, each made into samples (a page, a record)
INPUT_ITEMS = INPUTS | ITEMS  # inputs that are items themselves (an image file)

SHARE_ENV = "VLCURATE_PROGRESS_DIR"
_SHARE_EVERY_S = 0.5
_lock = threading.Lock()
_tally: collections.Counter = collections.Counter()
_last_stage = ""
_showing_here = False  # this process shows the tally: it never writes a share file
_writer: threading.Thread | None = None  # a worker process's, writing its tally to the shared folder
# When each element started and ended goes into a Beam distribution, whose sum is a signed 64-bit
# integer: microseconds since 1970 overflowed it at about 5,000 elements in one bundle (a
# 10,000-URL captions list failed so). Milliseconds since this origin stay under it for about
# 300 million elements in one distribution.
TIME_ORIGIN_S = 1_767_225_600  # 2026-01-01T00:00:00Z


def record(stage: str, started: float, outputs: int, reason: str | None, counts: frozenset = frozenset(),
           finished: float | None = None) -> None:
    """One element settled by ``stage``: ``outputs`` results, or a reject row with ``reason``;
    its work ran from ``started`` to ``finished`` (time.time()s; by default, until now)."""
    finished = time.time() if finished is None else finished
    start, end, latency = _distributions(stage)
    start.update(int((started - TIME_ORIGIN_S) * 1e3))
    end.update(int((finished - TIME_ORIGIN_S) * 1e3))
    latency.update(int((finished - started) * 1e6))
    tally(stage, outputs, reason, counts)


def tally(stage: str, outputs: int, reason: str | None, counts: frozenset = frozenset()) -> None:
    """Count one settled element in the live tally (``record`` without the metrics)."""
    global _last_stage
    with _lock:
        if "input" in counts:
            _tally["inputs"] += 1
            if "item" not in counts:  # an input that fans out: its outputs are the items it brings
                _tally["fanned_inputs"] += 1
                _tally["fanned_items"] += outputs
        if "item" in counts:
            _tally["items"] += 1
        if "samples" in counts:
            _tally["samples"] += outputs
        if reason:
            _tally["filtered" if is_filtered(reason) else "rejected"] += 1
        _last_stage = stage
    _share()


@functools.lru_cache(maxsize=None)
def _distributions(stage: str):
    """The stage's three metric handles, made once: each element updates them."""
    return tuple(Metrics.distribution(stage, name) for name in ("start_ms", "end_ms", "latency_us"))


def share(folder: str | None) -> None:
    """Start a run's tally from zero in this process, the one that shows it; worker processes it
    starts write theirs under ``folder`` (None: none will)."""
    global _showing_here, _last_stage
    with _lock:
        _tally.clear()
        _last_stage = ""
    _showing_here = True
    if folder:
        os.environ[SHARE_ENV] = folder
    else:
        os.environ.pop(SHARE_ENV, None)


def _share() -> None:
    """In a worker process, keep its tally in its file in the shared folder: a daemon thread writes
    it every half second while it changes (so the last counts are written too, not only those
    before a pause)."""
    global _writer
    if _showing_here or _writer is not None or not os.environ.get(SHARE_ENV):
        return
    with _lock:
        if _writer is None:
            _writer = threading.Thread(target=_write_every, args=(os.environ[SHARE_ENV],), daemon=True,
                                       name="vlcurate-progress-share")
            _writer.start()


def flush() -> None:
    """In a worker process, write its tally now: a stage calls this as a bundle ends, so the
    closing total the command shows counts every element (the writer thread may not wake first)."""
    folder = os.environ.get(SHARE_ENV)
    if not _showing_here and folder:
        _write_tally(folder)


def _write_every(folder: str) -> None:
    written = None
    while True:
        time.sleep(_SHARE_EVERY_S)
        written = _write_tally(folder, written)
        if written is False:  # the run has ended and its folder is gone: nothing to show any more
            return


_write_lock = threading.Lock()


def _write_tally(folder: str, written=None):
    """Write this process's tally to its file in ``folder`` unless it is ``written`` already; what
    was written (False: the folder is gone)."""
    path = os.path.join(folder, f"{os.getpid()}.json")
    with _lock:
        data = json.dumps({"tally": dict(_tally), "stage": _last_stage})
    if data == written:
        return written
    with _write_lock:  # the writer thread and a bundle's end share the temporary name
        try:
            with open(path + ".tmp", "w", encoding="utf-8") as handle:
                handle.write(data)
            os.replace(path + ".tmp", path)
        except OSError:
            return False
    return data


def snapshot() -> tuple[collections.Counter, str]:
    """(the run's tally so far, the stage that settled an element last): this process's, plus what
    worker processes wrote to the shared folder."""
    with _lock:
        total, stage = collections.Counter(_tally), _last_stage
    folder = os.environ.get(SHARE_ENV)
    for name in sorted(os.listdir(folder)) if folder and os.path.isdir(folder) else ():
        if name.endswith(".json"):
            try:
                with open(os.path.join(folder, name), encoding="utf-8") as handle:
                    shared = json.load(handle)
            except (OSError, ValueError):
                continue
            total.update(shared.get("tally") or {})
            stage = shared.get("stage") or stage
    return total, stage
