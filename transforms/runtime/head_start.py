"""A head start for isolated stages on the local runner: their first calls run while the pipeline
is still being built.

Building the pipeline and starting the local runner take about 0.8 s of one core after Beam's
import (`vlcurate pdf` on one page), and the runner then runs one stage at a time: the render
children would wait for the render stage's first bundle. A head start feeds them meanwhile.
``HeadStart.submit(dofn, element)`` makes the call the stage's DoFn would make for that element
(``IsolatedStageDoFn.job``) on the same shared pool; when the DoFn later gets the element it takes
that call (``take``) instead of making it again. The head start submits nothing more once the
pipeline makes a call of its own (``stop``), so the two never compete for the children for long.
Every call it started is taken by the stage it belongs to (each element reaches its stage once):
no work is done twice or lost.

The calls are kept in this process, so a head start only helps where the pipeline's DoFns run in
this process (``stage.runs_in_this_process``); elsewhere nothing would take them, and none is made.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time

_LOG = logging.getLogger(__name__)

_LOCK = threading.Lock()
# (stage, uri, locator) -> (the call: function and arguments, its future); each is taken once.
_CALLS: dict[tuple[str, str, str], tuple[tuple, concurrent.futures.Future]] = {}
_STOPPED = threading.Event()


def take(stage: str, ref: tuple[str, str], job: tuple) -> concurrent.futures.Future | None:
    """The head start's future of this element of ``stage``, where it made the same call
    (``job``: the function and its arguments); None: make the call."""
    if not _CALLS:  # the common case, without the lock: no head start, or all of it taken
        return None
    with _LOCK:
        made = _CALLS.get((stage, *ref))
        if made is None or made[0] != job:
            return None
        del _CALLS[(stage, *ref)]
        return made[1]


def stop() -> None:
    """The pipeline makes its own calls now: submit no more."""
    _STOPPED.set()


class HeadStart:
    """Submits a stage's calls ahead of the pipeline, at most ``in_flight`` unfinished at once."""

    def __init__(self, in_flight: int):
        with _LOCK:  # a head start of an earlier pipeline in this process is over
            _CALLS.clear()
        _STOPPED.clear()
        self._slots = threading.Semaphore(in_flight)

    @staticmethod
    def stopped() -> bool:
        return _STOPPED.is_set()

    def submit(self, dofn, element) -> concurrent.futures.Future | None:
        """The call ``dofn`` (an ``IsolatedStageDoFn``) would make for ``element``, started now and
        kept for it; None once the pipeline runs its own calls. Blocks while ``in_flight`` calls
        are unfinished."""
        self._slots.acquire()
        if _STOPPED.is_set():
            self._slots.release()
            return None
        job = dofn.job(element)
        started = time.time()
        future = dofn.start_call(job)
        future.add_done_callback(lambda done: self._finished(done, started))
        with _LOCK:
            _CALLS[(dofn.stage, *dofn.ref(element))] = (job, future)
        return future

    def _finished(self, future: concurrent.futures.Future, started: float) -> None:
        future.ran = (started, time.time())  # for ``ran``
        self._slots.release()

    def run(self, feed) -> threading.Thread:
        """``feed(self)`` in a daemon thread: it submits what it can until ``stopped()``. A failure
        there costs only the head start: the pipeline makes whatever calls it did not."""

        def guarded():
            try:
                feed(self)
            except Exception:
                _LOG.exception("head start: stopped early; the pipeline does the rest")

        thread = threading.Thread(target=guarded, name="vlcurate-head-start", daemon=True)
        thread.start()
        return thread


def ran(future: concurrent.futures.Future) -> tuple[float, float] | None:
    """When a head start's call started and finished (time.time()s), for the stage's progress: its
    stage may take it long after (in a recipe, after other sources' stages); None otherwise."""
    return getattr(future, "ran", None)
